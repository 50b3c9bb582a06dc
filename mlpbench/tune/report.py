"""The trials report of a search: trials.csv, trials.md, best.yaml, best_config.yaml and
figures (how the objective went, where pruning stopped trials, epochs saved), printed at the
end of a search and rebuilt by `python -m mlpbench.report STUDY_DIR`."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

from omegaconf import DictConfig, OmegaConf

from mlpbench.console import command
from mlpbench.files import figure, fit, format_cell, legend_beside, markdown, save_figure, write_atomic, write_csv
from mlpbench.results import Status, read_result
from mlpbench.tune.space import Dimension, grid_size, parse_space
from mlpbench.tune.study import STUDY_FILE, direction, load_study, objective_key

log = logging.getLogger("mlpbench")


def _rows(trials: list, dims: list[Dimension], sweep_dir: Path, retried: dict[int, int]) -> list[dict[str, Any]]:
    """A row per trial that has started: trials.csv's columns."""
    rows = []
    for t in trials:
        if t.state.name == "WAITING":
            continue
        epochs, seconds = t.user_attrs.get("epochs"), t.user_attrs.get("seconds")
        if epochs is None:  # cut off with the tuner: what its run wrote, else what it reported
            result = read_result(sweep_dir / t.user_attrs["run"]) if t.user_attrs.get("run") else None
            epochs = (result or {}).get("epochs", len(t.intermediate_values))
            seconds = (result or {}).get("seconds")
        row = {"trial": t.number, "state": "failed" if t.state.name == "FAIL" else t.state.name.lower(),
               "value": t.value}
        row.update({d.key: _shown(t.params[d.key]) if d.key in t.params else None for d in dims})
        row.update({
            "epochs": epochs,
            "seconds": None if seconds is None else round(seconds, 1),
            "note": (f"retried as trial {retried[t.number]}" if t.number in retried else
                     f"retry of trial {t.user_attrs['retry_of']}" if "retry_of" in t.user_attrs else
                     f"as trial {t.user_attrs['same_as']}, not trained again" if "same_as" in t.user_attrs else
                     "" if t.user_attrs.get("status") in (None, Status.ok, Status.pruned) else t.user_attrs["status"]),
            "run": t.user_attrs.get("run", ""),
        })
        rows.append(row)
    return rows


def _ranked(rows: list[dict[str, Any]], maximize: bool) -> list[dict[str, Any]]:
    """Complete, pruned, failed; best value first."""
    order = {"complete": 0, "pruned": 1, "running": 2, "failed": 3}

    def key(row: dict[str, Any]) -> tuple:
        value = row["value"]
        return (order.get(row["state"], 9), value is None, -(value or 0) if maximize else (value or 0), row["trial"])

    return sorted(rows, key=key)


def write_report(sweep_dir: Path, config: DictConfig, quiet: bool = False) -> Optional[list[dict[str, Any]]]:
    """trials.csv, trials.md, best.yaml, best_config.yaml and figures for the study in sweep_dir,
    printed unless `quiet`. Returns the failed trials that were not tried again; None if
    sweep_dir holds no study."""
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / STUDY_FILE).is_file():
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = load_study(sweep_dir, config)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs["retry_of"]: t.number for t in trials if "retry_of" in t.user_attrs}
    repeats = {t.number for t in trials if "same_as" in t.user_attrs}
    dims = parse_space(config.tune.space)
    objective = objective_key(config.tune)
    maximize = direction(objective) == "maximize"
    ranked = _ranked(_rows(trials, dims, sweep_dir, retried), maximize)
    if not ranked:
        return []
    trained = [r for r in ranked if r["trial"] not in repeats]
    rows = trained + [r for r in ranked if r["trial"] in repeats]  # repeats last
    columns = list(rows[0])
    counts = {s: sum(r["state"] == s for r in trained) for s in ("complete", "pruned", "failed", "running")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    if len(rows) > len(trained):
        summary += f"; and {len(rows) - len(trained)} repeat(s) of a point tried already, not trained again"
    write_atomic(sweep_dir / "trials.md", (
        f"# Search {config.tune.study_name}: {objective} ({direction(objective)}), best epoch of each trial\n\n"
        f"{len(trained)} trials: {summary}.\n\n{markdown(columns, rows, _cell)}").encode())
    write_csv(sweep_dir / "trials.csv", columns, rows)
    written = [sweep_dir / "trials.csv", sweep_dir / "trials.md"]

    max_epochs = int(config.trainer.max_epochs)
    epochs = sum(int(r["epochs"] or 0) for r in rows)
    grid = grid_size(dims)
    lines = []
    if any(t.state.name == "COMPLETE" for t in trials):
        best = study.best_trial
        steps = sorted(best.intermediate_values.items(), key=lambda kv: (kv[1] if maximize else -kv[1], -kv[0]))
        at = f" at epoch {steps[-1][0] + 1} of {len(steps)}" if steps else ""
        lines.append(f"Best trial {best.number}: {objective} {best.value:.4f}{at}")
        lines += [f"Best {d.label}: {_shown(best.params[d.key])}" for d in dims]
        written += _write_best(sweep_dir, best, objective)
    else:
        lines.append("No trial has completed yet")
    lines.append(f"Epochs trained: {epochs} in {len(trained)} trials ({summary}); the same trials without pruning: "
                 f"{len(trained) * max_epochs}" + (f"; the full grid, {grid} points x {max_epochs} epochs: "
                                                  f"{grid * max_epochs} ({1 - epochs / (grid * max_epochs):.0%} fewer)"
                                                  if grid else ""))
    written += _figures(study, config, sweep_dir, trained, grid)
    if not quiet:
        top = markdown(columns[:-1], trained[:10], _cell)
        print("\n".join(["", f"Trials, best first ({min(10, len(trained))} of {len(trained)}; all in trials.md):",
                         top, *lines, f"Report: {', '.join(p.name for p in written)} in {sweep_dir}",
                         f"Compare the trials: {command('tensorboard')} --logdir {sweep_dir}"]))
    return [r for r in rows if r["state"] == "failed" and r["trial"] not in retried]


def _cell(column: str, value: Any) -> str:
    return f"{value:.1f}" if column == "seconds" and value is not None else format_cell(column, value)


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _write_best(sweep_dir: Path, best, objective: str) -> list[Path]:
    """best.yaml (the trial, its value and parameters) and best_config.yaml: the whole config
    of its run, to train it again with
    python -m mlpbench --config-dir SWEEP_DIR --config-name best_config [trainer.max_epochs=50]."""
    summary = {"trial": best.number, objective: best.value, "params": dict(best.params),
               "run": best.user_attrs.get("run")}
    written = [sweep_dir / "best.yaml"]
    write_atomic(written[0], OmegaConf.to_yaml(OmegaConf.create(summary)).encode())
    result = read_result(sweep_dir / best.user_attrs["run"]) if best.user_attrs.get("run") else None
    if result and result.get("config"):
        config = dict(result["config"])
        config.get("callbacks", {}).pop("tune_trial", None)  # the trial's pruning: not part of the network
        text = ("# The best trial's whole config. Train it again (more epochs: add trainer.max_epochs=N):\n"
                f"#   mlpbench --config-dir {sweep_dir} --config-name best_config\n"
                "defaults:\n  - base_config\n  - _self_\n\n"
                "hydra:\n  run:\n    dir: outputs/run/${now:%Y-%m-%d}/${now:%H-%M-%S}\n\n"
                + OmegaConf.to_yaml(OmegaConf.create(config)))
        written.append(sweep_dir / "best_config.yaml")
        write_atomic(written[-1], text.encode())
    return written


def _figures(study, config: DictConfig, sweep_dir: Path, rows: list[dict[str, Any]], grid: Optional[int]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.exceptions import ExperimentalWarning

    made = []
    objective = objective_key(config.tune)
    # Optuna's plots switch matplotlib to its ggplot style: keep that to them.
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", ExperimentalWarning)
        for name, (plot, title) in optuna_plots(objective).items():
            try:
                fig = optuna_figure(plot, study, title)
            except Exception as e:  # e.g. importances need two completed trials that differ
                plt.close("all")
                log.info("%s not drawn: %s", name, e)
                continue
            made.append(save_figure(fig, sweep_dir / name))
    made.append(_plot_curves(study, rows, objective, sweep_dir / "curves.png"))
    made.append(_plot_epochs(rows, int(config.trainer.max_epochs), grid, sweep_dir / "epochs.png"))
    return made


def optuna_plots(objective: str) -> dict[str, tuple[Callable, str]]:
    """The figures Optuna draws for the report: file name -> (plot function, title)."""
    from functools import partial

    import optuna.visualization.matplotlib as vis
    from optuna.importance import FanovaImportanceEvaluator

    return {
        "optimization_history.png": (vis.plot_optimization_history, f"{objective} of each trial, and the best so far"),
        "param_importances.png": (partial(vis.plot_param_importances, evaluator=FanovaImportanceEvaluator(seed=0)),
                                  f"how much each parameter explains of {objective} (fANOVA)"),
    }


def optuna_figure(plot, study, title: str):
    """One of Optuna's plots of the study at the report's size, titled `title` alone: Optuna
    titles its plots itself, plot_param_importances at the left, where a new (centred) title
    would be drawn over it rather than replace it."""
    ax = plot(study)
    for loc in ("left", "right"):
        ax.set_title("", loc=loc)
    ax.set_title(title)
    return fit(ax.figure)


STATE_COLORS = {"complete": "tab:green", "pruned": "tab:orange", "failed": "tab:red", "running": "tab:purple"}


def _plot_curves(study, rows: list[dict[str, Any]], objective: str, path: Path) -> Path:
    """Each trained trial's objective per epoch, by how it ended: where Hyperband stopped trials."""
    from matplotlib.ticker import MaxNLocator

    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    best = study.best_trial.number if any(r["state"] == "complete" for r in rows) else None
    fig, axes = figure()
    ax = axes[0][0]
    for row in sorted(rows, key=lambda r: r["state"] == "complete"):  # completed trials drawn on top
        steps = sorted(trials[row["trial"]].intermediate_values.items())
        if steps:
            ax.plot([s + 1 for s, _ in steps], [v for _, v in steps], "-", marker="o", markersize=2.5, lw=1,
                    alpha=0.8, color=STATE_COLORS.get(row["state"], "grey"))
    if best is not None:
        steps = sorted(trials[best].intermediate_values.items())
        ax.plot([s + 1 for s, _ in steps], [v for _, v in steps], "-", color="black", lw=2,
                label=f"best: trial {best}")
    for state, color in STATE_COLORS.items():
        if any(r["state"] == state for r in rows):
            ax.plot([], [], color=color, label=state)
    values = sorted(v for r in rows for v in trials[r["trial"]].intermediate_values.values())
    if values and not objective.endswith("loss"):  # a few hopeless trials would flatten the rest
        ax.set_ylim(bottom=max(values[0], values[len(values) // 10] - 0.1), top=values[-1] + 0.01)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} per epoch of each trial: pruned ones stopped early")
    ax.grid(alpha=0.3)
    legend_beside(ax)
    return save_figure(fig, path)


def _plot_epochs(rows: list[dict[str, Any]], max_epochs: int, grid: Optional[int], path: Path) -> Path:
    """Epochs trained as the search goes, against the same trials unpruned and a full grid."""
    rows = sorted(rows, key=lambda r: r["trial"])
    x = list(range(1, len(rows) + 1))
    done, total = [], 0
    for r in rows:
        total += int(r["epochs"] or 0)
        done.append(total)
    fig, axes = figure()
    ax = axes[0][0]
    ax.plot(x, [n * max_epochs for n in x], "--", color="grey", label=f"every trial {max_epochs} epochs")
    ax.plot(x, done, "-", color="tab:blue", label=f"this search: {total} epochs")
    for state, color in STATE_COLORS.items():
        points = [(xi, d) for xi, d, r in zip(x, done, rows) if r["state"] == state]
        if points:
            ax.scatter(*zip(*points), color=color, s=18, zorder=3, label=state)
    if grid:
        ax.axhline(grid * max_epochs, color="black", lw=0.8)
        ax.text(1, grid * max_epochs, f" full grid: {grid} points x {max_epochs} epochs = {grid * max_epochs}",
                va="bottom", fontsize="small")
    ax.set_xlabel("trials")
    ax.set_ylabel("epochs trained, in all")
    ax.set_title("epochs trained by the search")
    ax.grid(alpha=0.3)
    legend_beside(ax)
    return save_figure(fig, path)


def finish(sweep_dir: Path, config: DictConfig) -> bool:
    """The end of a search: the report, printed, and the trials that failed; False if any did."""
    failed = write_report(sweep_dir, config) or []
    if failed:
        print(f"\n{len(failed)} trial(s) failed:", file=sys.stderr)
        for row in failed:
            print(f"  trial {row['trial']}: {row['note'] or 'failed'} (log: {sweep_dir / row['run'] / 'run.log'})",
                  file=sys.stderr)
    return not failed
