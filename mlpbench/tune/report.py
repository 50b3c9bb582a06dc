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
from mlpbench.report import interval
from mlpbench.results import Status, lower_is_better, read_result, resolution, run_log
from mlpbench.overrides import TRIAL_CALLBACK
from mlpbench.stats import expected_best, headline, p_cell, summarize, verdicts
from mlpbench.tune.space import Dimension, grid_size, parse_space
from mlpbench.tune.study import STUDY_FILE, direction, load_study, objective_key, trial_runs

log = logging.getLogger("mlpbench")


def _rows(trials: list, dims: list[Dimension], sweep_dir: Path, retried: dict[int, int],
          seeds: list[int]) -> list[dict[str, Any]]:
    """A row per trial that has started: trials.csv's columns; with tune.repeats, each of
    `seeds`' value after the trial's (their mean)."""
    rows = []
    for t in trials:
        if t.state.name == "WAITING":
            continue
        epochs, seconds = t.user_attrs.get("epochs"), t.user_attrs.get("seconds")
        if epochs is None:  # cut off with the tuner: what its run wrote, else what it reported
            result = read_result(sweep_dir / t.user_attrs["run"]) if t.user_attrs.get("run") else None
            epochs = (result or {}).get("epochs", len(t.intermediate_values))
            seconds = (result or {}).get("seconds")
        # A pruned trial's value: the mean of its runs' best epochs, as a completed one's (Optuna
        # keeps its last reported epoch's).
        value = t.user_attrs.get("value", t.value) if t.state.name == "PRUNED" else t.value
        row = {"trial": t.number, "state": "failed" if t.state.name == "FAIL" else t.state.name.lower(),
               "value": value}
        if len(seeds) > 1:
            values = t.user_attrs.get("values") or []
            row.update({f"seed {seed}": values[k] if k < len(values) else None for k, seed in enumerate(seeds)})
        row.update({d.key: _shown(t.params[d.key]) if d.key in t.params else None for d in dims})
        row.update({
            "epochs": epochs,
            "seconds": None if seconds is None else round(seconds, 1),
            "note": (f"retried as trial {retried[t.number]}" if t.number in retried else
                     f"retry of trial {t.user_attrs['retry_of']}" + (f", from epoch {t.user_attrs['continued_from']}"
                                                                    if t.user_attrs.get("continued_from") else "")
                     if "retry_of" in t.user_attrs else
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
    reused = {t.number for t in trials if "same_as" in t.user_attrs}  # a point tried already: not trained again
    dims = parse_space(config.tune.space)
    objective = objective_key(config.tune)
    maximize = direction(objective) == "maximize"
    per_trial = int(config.tune.get("repeats", 1))  # seeds a trial
    seeds = [int(config.seed) + k for k in range(per_trial)] if per_trial > 1 else []
    ranked = _ranked(_rows(trials, dims, sweep_dir, retried, seeds), maximize)
    if not ranked:
        return []
    trained = [r for r in ranked if r["trial"] not in reused]
    rows = trained + [r for r in ranked if r["trial"] in reused]  # reused last
    columns = list(rows[0])
    # A trial cut off and tried again is one trial of the search (its retry), not two.
    cut = sum(r["trial"] in retried for r in trained)
    counts = {s: sum(r["state"] == s and r["trial"] not in retried for r in trained)
              for s in ("complete", "pruned", "failed", "running")}
    summary = ", ".join([f"{n} {s}" for s, n in counts.items() if n] + ([f"{cut} cut off and tried again"] if cut else []))
    if len(rows) > len(trained):
        summary += f"; and {len(rows) - len(trained)} repeat(s) of a point tried already, not trained again"
    trials_md = (f"# Search {config.tune.study_name}: {objective} ({direction(objective)}), best epoch of each "
                 f"trial\n\n{len(trained) - cut} trials: {summary}.\n\n{markdown(columns, rows, _cell)}")
    write_csv(sweep_dir / "trials.csv", columns, rows)
    written = [sweep_dir / "trials.csv", sweep_dir / "trials.md"]

    max_epochs = int(config.trainer.max_epochs)
    # A retry continues its cut-off trial's runs: it adds only the epochs after theirs.
    continued = {t.number: int(t.user_attrs.get("continued_from") or 0) for t in trials}
    epochs = sum(int(r["epochs"] or 0) - continued.get(r["trial"], 0) for r in rows)
    grid = grid_size(dims)
    lines = []
    complete = [t for t in trials if t.state.name == "COMPLETE" and "same_as" not in t.user_attrs]
    all_diverged = complete and all(t.user_attrs.get("status") == Status.diverged for t in complete)
    if all_diverged:
        lines.append("Every completed trial diverged (a NaN or infinite loss): no point of this space trained; its "
                     "best is no result, and no best_config.yaml is written. Narrow tune.space (smaller learning "
                     "rates?) and search again")
        for name in ("best.yaml", "best_config.yaml"):
            (sweep_dir / name).unlink(missing_ok=True)
    if any(t.state.name == "COMPLETE" for t in trials) and not all_diverged:
        best = study.best_trial
        lines.append(f"Best trial {best.number}: {objective} {best.value:.4f}{_best_epoch(best, sweep_dir, objective)}")
        lines += [f"Best {d.label}: {_shown(best.params[d.key])}" for d in dims]
        written += _write_best(sweep_dir, best, objective)
    elif not all_diverged:
        lines.append("No trial has completed yet")
    # With tune.repeats=K a trial's epoch trains K replicas: the budget counts replica-epochs.
    unit = "epochs" if per_trial == 1 else f"replica-epochs ({per_trial} seeds a trial)"
    epochs, full = epochs * per_trial, max_epochs * per_trial
    lines.append(f"Epochs trained: {epochs} {unit} in {len(trained) - cut} trials ({summary}); the same trials "
                 f"without pruning: {(len(trained) - cut) * full}" + (f"; the full grid, {grid} points x {full} {unit.split()[0]}: "
                                                     f"{grid * full} ({1 - epochs / (grid * full):.0%} fewer)"
                                                     if grid else ""))
    lines += _more_trials(trained, objective, maximize)
    finalists = None if all_diverged else _finalists(trials, config, objective, maximize, seeds, sweep_dir)
    # Written once, the finalists' comparison with it: a reader never finds the table without it.
    write_atomic(sweep_dir / "trials.md", (trials_md + (f"\n\n{finalists}\n" if finalists else "")).encode())
    written += _figures(study, config, sweep_dir, trained, grid, continued)
    if not quiet:
        top = markdown(columns[:-1], trained[:10], _cell)
        attempts = f" rows, with {cut} cut-off attempt{'s' if cut > 1 else ''}" if cut else ""
        print("\n".join(["", f"Trials, best first ({min(10, len(trained))} of {len(trained)}{attempts}; all in trials.md):",
                         top, *lines, *([finalists] if finalists else []),
                         f"Report: {', '.join(p.name for p in written)} in {sweep_dir}",
                         f"Compare the trials: {command('tensorboard')} --logdir {sweep_dir}"]))
    return [r for r in trained if r["state"] == "failed" and r["trial"] not in retried]  # not a repeat's


def _best_epoch(trial, sweep_dir: Path, objective: str) -> str:
    """Where the best trial's value comes from: its run's best epoch, or with tune.repeats the
    mean of its seeds' best epochs (each its own)."""
    runs = trial_runs(trial)
    if len(runs) > 1:
        return f", the mean of its {len(runs)} seeds' best epochs"
    result = read_result(sweep_dir / runs[0]) if runs else None
    history = ((result or {}).get("history") or {}).get(objective, [])
    scored = [(v, i) for i, v in enumerate(history) if v is not None]
    if not scored:
        return ""
    pick = min if lower_is_better(objective) else max
    return f" at epoch {pick(scored, key=lambda vi: (vi[0], -vi[1]))[1] + 1} of {len(history)}"


def _values(rows: list[dict[str, Any]]) -> list[float]:
    """The trials' values that say what a trial got: completed ones', and pruned ones' best epoch."""
    return [r["value"] for r in rows if r["state"] in ("complete", "pruned") and r["value"] is not None]


def _more_trials(rows: list[dict[str, Any]], objective: str, maximize: bool) -> list[str]:
    """Would more trials still help? The expected best value of n trials, for n up to the trials run."""
    values = _values(rows)
    if len(values) < 2:
        return []
    m = len(values)
    shown = sorted({1, max(1, m // 4), max(1, m // 2), m})
    cells = ", ".join(f"{n}: {mean:.4f} ± {spread:.4f}" for n in shown
                      for mean, spread in [expected_best(values, n, maximize)])
    half, whole = expected_best(values, max(1, m // 2), maximize)[0], expected_best(values, m, maximize)[0]
    change = f"gained {whole - half:+.4f}" if maximize else f"fell by {half - whole:.4f}"  # a loss gains by falling
    return [f"Expected best {objective} of n of these trials, mean ± sd (Dodge et al. 2019, n drawn from these {m} "
            f"trials' values): {cells}; from {max(1, m // 2)} to {m} trials it {change} "
            "(expected_best.png; it describes the values met, it cannot exceed the best found)"]


def _finalists(trials: list, config: DictConfig, objective: str, maximize: bool, seeds: list[int],
               sweep_dir: Path) -> str:
    """The best tune.finalists completed trials judged as a sweep's settings: their seeds' values,
    mean ± 95% interval, verdicts against the best (mlpbench.stats.verdicts); "" for one trial."""
    done = [t for t in trials if t.state.name == "COMPLETE" and "same_as" not in t.user_attrs]
    count = int(config.tune.get("finalists", 3))
    best = sorted(done, key=lambda t: -t.value if maximize else t.value)[:count]
    if len(best) < 2:
        return ""
    if not seeds:
        return (f"Finalists: one seed per trial gives no interval, so the {len(best)} best trials cannot be told "
                f"apart from seed noise; tune.repeats=3 trains each trial over 3 seeds and judges the best "
                f"{len(best)} here")
    groups = {f"trial {t.number}": dict(zip(t.user_attrs.get("seeds") or seeds, t.user_attrs.get("values") or []))
              for t in best}
    results = [r for t in best for run in trial_runs(t) if (r := read_result(sweep_dir / run))]
    found = verdicts(groups, maximize=maximize, resolution=resolution(objective, results))
    summaries = {label: summarize(values.values()) for label, values in groups.items()}
    dims = parse_space(config.tune.space)
    rows = []
    for t, label in zip(best, groups):
        s = summaries[label]
        row = {"trial": t.number, **{d.key: _shown(t.params[d.key]) for d in dims if d.key in t.params}, "n": s.n,
               objective: interval(s, objective),
               "verdict": found[label].word or "-", "p": "-" if found[label].p is None else p_cell(found[label].p)}
        rows.append(row)
    answer = headline(list(groups), summaries, found, objective, digits=4,
                      shown=lambda s: interval(s, objective))
    top = next(iter(groups))
    others = [label for label in groups if label != top]
    if found[top].verdict != "best":
        verdict = "too few seeds finished to judge them"
    elif all(found[o].verdict == "worse" for o in others):
        verdict = (f"the search's best ({top}) is better than the runners-up at the 5% level over these "
                   f"{len(seeds)} seeds (the trials were chosen on them)")
    else:
        tied = [o for o in others if found[o].verdict != "worse"]
        # Tied is no evidence of a difference, not evidence of none (at 3 seeds a test has little power).
        verdict = (f"the search's best ({top}) is not told apart from {', '.join(tied)} over these {len(seeds)} "
                   "seeds: no evidence that one is better, nor that they are equal (sweep them with seed=auto to "
                   "tell)")
    return (f"Finalists: the best {len(best)} trials over their {len(seeds)} seeds, judged as a sweep's settings "
            "(paired t-test over seeds, Holm-adjusted over every pair; chosen on these same seeds, so a little optimistic):\n\n"
            f"{markdown(list(rows[0]), rows, format_cell)}\n{answer}\nSo {verdict}.")


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
        config.get("callbacks", {}).pop(TRIAL_CALLBACK, None)  # the trial's pruning: not part of the network
        text = ("# The best trial's whole config. Train it again (more epochs: add trainer.max_epochs=N):\n"
                f"#   mlpbench --config-dir {sweep_dir} --config-name best_config\n"
                "defaults:\n  - base_config\n  - _self_\n\n"
                "hydra:\n  run:\n    dir: ${mlpbench_run_dir:outputs/run,${resume}}\n\n"
                + OmegaConf.to_yaml(OmegaConf.create(config)))
        written.append(sweep_dir / "best_config.yaml")
        write_atomic(written[-1], text.encode())
    return written


def _figures(study, config: DictConfig, sweep_dir: Path, rows: list[dict[str, Any]], grid: Optional[int],
             continued: dict[int, int]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.exceptions import ExperimentalWarning

    made = []
    objective = objective_key(config.tune)
    # Optuna's plots switch matplotlib to its ggplot style: keep that to them.
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", ExperimentalWarning)
        # Optuna draws empty axes, with warnings, for a study without a completed trial.
        completed = sum(t.state.name == "COMPLETE" and "same_as" not in t.user_attrs
                        for t in study.get_trials(deepcopy=False))  # points, not their repeats
        plots = optuna_plots(objective) if completed else {}
        if completed < MIN_TRIALS_FOR_IMPORTANCE:  # a forest fitted to a few points ranks noise
            plots.pop("param_importances.png", None)
        for name, (plot, title) in plots.items():
            try:
                fig = optuna_figure(plot, study, title, objective)
            except Exception as e:  # e.g. importances need two completed trials that differ
                plt.close("all")
                log.info("%s not drawn: %s", name, e)
                continue
            made.append(save_figure(fig, sweep_dir / name))
    made.append(_plot_curves(study, rows, objective, sweep_dir / "curves.png"))
    cut = {t.user_attrs["retry_of"] for t in study.get_trials(deepcopy=False) if "retry_of" in t.user_attrs}
    made.append(_plot_epochs(rows, int(config.trainer.max_epochs), grid, sweep_dir / "epochs.png",
                             int(config.tune.get("repeats", 1)), continued, cut))
    if len(_values(rows)) >= 2:
        made.append(_plot_expected_best(rows, objective, direction(objective) == "maximize",
                                        sweep_dir / "expected_best.png"))
    return made


def _plot_expected_best(rows: list[dict[str, Any]], objective: str, maximize: bool, path: Path) -> Path:
    """The expected best value of n of these trials against n (Dodge et al. 2019): a description
    of the values the search met (it flattens at the best found), not a forecast of new points."""
    from matplotlib.ticker import MaxNLocator

    values = _values(rows)
    n = list(range(1, len(values) + 1))
    found = [expected_best(values, k, maximize) for k in n]
    mean = [f[0] for f in found]
    best = max(values) if maximize else min(values)
    # The best of n draws from these values is never past the best found: the band stops there.
    low, high = [m - s for m, s in found], [m + s for m, s in found]
    low, high = (low, [min(v, best) for v in high]) if maximize else ([max(v, best) for v in low], high)
    fig, axes = figure()
    ax = axes[0][0]
    ax.fill_between(n, low, high, color="tab:blue", alpha=0.2, lw=0, label="± 1 sd")
    ax.plot(n, mean, "-", color="tab:blue", label="expected best")
    ax.axhline(best, color="grey", ls="--", lw=0.8, label="best trial found")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trials")
    ax.set_ylabel(f"expected best {objective}")
    ax.set_title(f"expected best {objective} of n of these trials (Dodge et al. 2019)\n"
                 "flat: these values rarely beat the best found; points not tried may")
    ax.grid(alpha=0.3)
    legend_beside(ax)
    return save_figure(fig, path)


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


def optuna_figure(plot, study, title: str, objective: str = "value"):
    """One of Optuna's plots of the study at the report's size, titled `title` alone: Optuna
    titles its plots itself, plot_param_importances at the left, where a new (centred) title
    would be drawn over it rather than replace it. Its "Objective Value" is named `objective`,
    and trials are counted in whole numbers."""
    from matplotlib.ticker import MaxNLocator

    ax = plot(study)
    for loc in ("left", "right"):
        ax.set_title("", loc=loc)
    ax.set_title(title)
    if ax.get_ylabel() == "Objective Value":
        ax.set_ylabel(objective)
    if ax.get_xlabel() == "Trial":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend = ax.get_legend()
    for text in legend.get_texts() if legend is not None else []:
        text.set_text(text.get_text().replace("Objective Value", objective))
    return fit(ax.figure)


# fANOVA's importances from fewer completed trials say little (param_importances.png not drawn).
MIN_TRIALS_FOR_IMPORTANCE = 8
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
    if values and not lower_is_better(objective):  # a few hopeless trials would flatten the rest
        ax.set_ylim(bottom=max(values[0], values[len(values) // 10] - 0.1) - 0.01, top=values[-1] + 0.01)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} per epoch of each trial: pruned ones stopped early")
    ax.grid(alpha=0.3)
    legend_beside(ax)
    return save_figure(fig, path)


def _plot_epochs(rows: list[dict[str, Any]], max_epochs: int, grid: Optional[int], path: Path,
                 repeats: int = 1, continued: Optional[dict[int, int]] = None, cut: frozenset = frozenset()) -> Path:
    """Epochs trained as the search goes, against the same trials unpruned and a full grid; with
    tune.repeats=K, replica-epochs (a trial's epoch trains its K seeds); a retry's only from the
    epoch it `continued` from. A trial `cut` off and tried again adds its epochs, not a trial."""
    from matplotlib.ticker import MaxNLocator

    rows = sorted(rows, key=lambda r: r["trial"])
    x = list(range(1, len(rows) + 1))
    done, total, unpruned, whole = [], 0, [], 0
    for r in rows:
        total += (int(r["epochs"] or 0) - (continued or {}).get(r["trial"], 0)) * repeats
        done.append(total)
        whole += r["trial"] not in cut
        unpruned.append(whole)
    max_epochs *= repeats
    fig, axes = figure()
    ax = axes[0][0]
    unit = "epochs" if repeats == 1 else "replica-epochs"
    ax.plot(x, [n * max_epochs for n in unpruned], "--", color="grey", label=f"every trial {max_epochs} {unit}")
    ax.plot(x, done, "-", color="tab:blue", label=f"this search: {total} {unit}")
    for state, color in STATE_COLORS.items():
        points = [(xi, d) for xi, d, r in zip(x, done, rows) if r["state"] == state]
        if points:
            ax.scatter(*zip(*points), color=color, s=18, zorder=3, label=state)
    if grid:
        ax.axhline(grid * max_epochs, color="black", lw=0.8)
        ax.text(1, grid * max_epochs, f" full grid: {grid} points x {max_epochs} {unit} = {grid * max_epochs}",
                va="bottom", fontsize="small")
    ax.set_xlabel("trials")
    for axis in (ax.xaxis, ax.yaxis):  # both count: no tick at 1.5 trials
        axis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("epochs trained, in all" if repeats == 1 else f"replica-epochs trained ({repeats} seeds a trial)")
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
            print(f"  trial {row['trial']}: {row['note'] or 'failed'} (log: {run_log(sweep_dir / row['run'], config)})",
                  file=sys.stderr)
    return not failed
