"""Sweep reports: summary.csv, summary.md and PNG figures from the runs' result.json files.

    python -m mlpbench.report SWEEP_DIR                 rebuild one sweep's report in it
    python -m mlpbench.report DIR1 DIR2 ... [--out D]   several sweeps in one table and figure

A search's folder (outputs/tune/NAME) gets its trials report again, from the sweeper that made it.
A DIR is a sweep folder (runs with result.json below it), a folder of sweeps such as
outputs/depth_linear, which stands for its newest sweep, or a single run's folder. Runs still going, cut off or failed
are reported as they are. No torch here: a report never loads a framework.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Optional

from mlpbench import overrides
from mlpbench.files import format_cell, markdown, save_figure, write_atomic, write_csv
from mlpbench.results import RESULT_FILE, Status, load_results, natural_key, read_result

# Overrides that choose a preset or steer the sweep, not a property of one run.
NOT_A_SETTING = {"experiment", "resume"}
OBJECTIVE = "best_val_acc"  # as Keras Tuner's objective='val_accuracy': the best epoch's
STATUS_ORDER = {s.value: i for i, s in enumerate((Status.ok, Status.running, Status.interrupted, Status.pruned,
                                                   Status.diverged, Status.failed))}


@dataclass
class Run:
    sweep: str
    name: str
    result: dict
    settings: dict[str, str] = field(default_factory=dict)  # key -> value, from its overrides
    swept: dict[str, str] = field(default_factory=dict)  # the settings that vary in its sweep

    @property
    def metrics(self) -> dict:
        return self.result.get("metrics") or {}

    @property
    def history(self) -> dict:
        return self.result.get("history") or {}

    @property
    def status(self) -> str:
        return self.result.get("status", "?")

    def label(self, short: bool = True) -> str:
        if not self.swept:
            return self.name
        return ", ".join(f"{key.rsplit('.', 1)[-1] if short else key}={value}" for key, value in self.swept.items())


@dataclass
class Sweep:
    label: str
    path: Path
    runs: list[Run]
    keys: list[str]  # swept keys, in the order they appear in the overrides


# ---------------------------------------------------------------------------- reading


def _settings(run_overrides: list[str]) -> dict[str, str]:
    return {key: value for key, value in overrides.settings(run_overrides).items()
            if value is not None and key not in NOT_A_SETTING and not key.startswith("callbacks.")}


def find_sweep(path: Path) -> Path:
    """A sweep folder itself, or the newest sweep inside a folder of sweeps."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder")
    if (path / RESULT_FILE).is_file() or any(path.glob(f"*/{RESULT_FILE}")) or not any(path.glob(f"*/*/{RESULT_FILE}")):
        return path
    sweeps = sorted({p.parent.parent for p in path.glob(f"*/*/{RESULT_FILE}")}, key=lambda p: natural_key(p.name))
    return sweeps[-1]


def _load(path: Path) -> list[tuple[Path, dict]]:
    single = read_result(path)  # a single run's folder: a sweep of one
    return [(path, single)] if single is not None else load_results(path)


def read_sweep(path: Path, label: Optional[str] = None) -> Sweep:
    runs = [Run(sweep="", name=run_dir.name, result=result, settings=_settings(result.get("overrides", [])))
            for run_dir, result in _load(path)]
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.settings if k not in keys]
    if len(runs) > 1:
        keys = [k for k in keys if len({run.settings.get(k) for run in runs}) > 1]
    experiments = {run.result.get("experiment") for run in runs} - {None}
    label = label or (experiments.pop() if len(experiments) == 1 else path.name)
    for run in runs:
        run.sweep = label
        run.swept = {k: run.settings.get(k, "-") for k in keys}
    return Sweep(label, path, runs, keys)


def read_sweeps(paths: list[Path]) -> list[Sweep]:
    sweeps = [read_sweep(find_sweep(p)) for p in paths]
    labels = [s.label for s in sweeps]
    if len(set(labels)) < len(labels):  # e.g. two sweeps of one preset: tell them apart by folder
        for sweep in sweeps:
            sweep.label = f"{sweep.label} ({sweep.path.name})"
            for run in sweep.runs:
                run.sweep = sweep.label
    return sweeps


# ---------------------------------------------------------------------------- the table


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def swept_keys(sweeps: list[Sweep]) -> list[str]:
    """The keys swept in any of the sweeps, in order of first appearance."""
    keys: list[str] = []
    for sweep in sweeps:
        keys += [k for k in sweep.keys if k not in keys]
    return keys


def table_rows(sweeps: list[Sweep]) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and one row per run, best objective first; runs without a result last."""
    keys = swept_keys(sweeps)
    several = len(sweeps) > 1
    runs = [run for sweep in sweeps for run in sweep.runs]
    with_ratio = any(run.metrics.get("grad_ratio") is not None for run in runs)
    rows = []
    for run in runs:
        m = run.metrics
        train_acc, val_acc = _number(m.get("train_acc")), _number(m.get("val_acc"))
        row: dict[str, Any] = {"sweep": run.sweep} if several else {}
        row.update({k: run.settings.get(k, "-") for k in keys} if keys else {"run": run.name})
        row.update({
            "status": run.status,
            "val_loss": _number(m.get("val_loss")),
            "val_acc": val_acc,
            "best_val_acc": _number(m.get("best_val_acc")),
            "best_epoch": m.get("best_epoch"),
            "test_acc": _number(m.get("test_acc")),
            # Positive and growing: the network fits its training rows better than new ones.
            "gap": None if train_acc is None or val_acc is None else train_acc - val_acc,
            "params": (run.result.get("params") or {}).get("total"),
            "epochs": run.result.get("epochs"),
            "seconds": _number(run.result.get("seconds")),
        })
        if with_ratio:
            row["first_grad_norm"] = _number(m.get("first_grad_norm"))
            row["grad_ratio"] = _number(m.get("grad_ratio"))
        rows.append(row)
    rows.sort(key=lambda r: (r[OBJECTIVE] is None, -(r[OBJECTIVE] or 0.0), STATUS_ORDER.get(r["status"], 9)))
    columns = list(rows[0]) if rows else []
    return columns, rows


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column in ("grad_ratio", "first_grad_norm"):
        return f"{value:.3g}"
    if column == "gap":
        return f"{value:+.4f}"
    if column == "seconds":
        return f"{value:.1f}"
    if column == "params":
        return f"{value:,}"
    return format_cell(column, value)


# ---------------------------------------------------------------------------- figures


def _is_numeric(values: list[str]) -> bool:
    try:
        [float(v) for v in values]
    except ValueError:
        return False
    return bool(values)


def _colors(n: int):
    import matplotlib

    cmap = matplotlib.colormaps["viridis" if n > 10 else "tab10"]
    return [cmap(i / max(n - 1, 1)) if n > 10 else cmap(i % 10) for i in range(n)]


def plot_curves(sweeps: list[Sweep], metric: str, ylabel: str, path: Path) -> Optional[Path]:
    """One panel per sweep, one curve per run: the tutorials' loss/accuracy-per-epoch figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if not any(run.history.get(metric) for sweep in sweeps for run in sweep.runs):
        return None
    fig, axes = plt.subplots(1, len(sweeps), figsize=(6.4 * len(sweeps), 4.2), sharey=True, squeeze=False)
    for ax, sweep in zip(axes[0], sweeps):
        runs = sorted(sweep.runs, key=lambda r: natural_key(r.name))
        for run, color in zip(runs, _colors(len(runs))):
            values = [math.nan if v is None else v for v in run.history.get(metric, [])]
            if values:
                style = "-" if run.status in (Status.ok, Status.running) else ":"
                status = "" if run.status in (Status.ok, Status.running) else f" ({run.status})"
                ax.plot(range(1, len(values) + 1), values, style, color=color, label=run.label() + status,
                        marker="o" if len(values) <= 12 else None, markersize=3)
        ax.set_title(f"{sweep.label}: {ylabel} per epoch" if len(sweeps) > 1 else f"{ylabel} per epoch")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[0][0].set_ylabel(ylabel)
    if metric.endswith("loss"):
        # A diverging or very bad run would flatten every other curve: clip to the bulk.
        finite = sorted(v for s in sweeps for r in s.runs for v in r.history.get(metric, [])
                        if v is not None and math.isfinite(v))
        if finite:
            bulk = finite[int(0.9 * (len(finite) - 1))]
            top = finite[-1] if finite[-1] <= 3 * bulk else 1.5 * bulk
            axes[0][0].set_ylim(bottom=0, top=top * 1.05 if top > 0 else None)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_against(sweeps: list[Sweep], key: str, path: Path) -> Path:
    """Final metrics against a numeric swept key (depth, units): accuracy, the train-val gap
    and, with diagnostics, the first/last gradient-norm ratio. One line per sweep, and per
    combination of the other swept keys."""
    import matplotlib.pyplot as plt

    with_ratio = any(run.metrics.get("grad_ratio") is not None for s in sweeps for run in s.runs)
    panels = ["accuracy", "gap"] + (["first_grad_norm", "grad_ratio"] if with_ratio else [])
    columns = 2 if len(panels) == 4 else len(panels)
    rows = len(panels) // columns
    fig, grid = plt.subplots(rows, columns, figsize=(5.6 * columns, 4.2 * rows), squeeze=False)
    axes = [list(grid.flat)]
    lines: dict[str, list[Run]] = {}
    for sweep in sweeps:
        for run in sweep.runs:
            if key in run.swept:
                others = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in run.swept.items() if k != key)
                name = " / ".join(x for x in ((sweep.label if len(sweeps) > 1 else ""), others) if x)
                lines.setdefault(name, []).append(run)
    short = key.rsplit(".", 1)[-1]
    for (name, runs), color in zip(lines.items(), _colors(len(lines))):
        runs = sorted(runs, key=lambda r: float(r.swept[key]))
        x = [float(r.swept[key]) for r in runs]

        def values(metric: str) -> list[float]:
            return [_number(r.metrics.get(metric)) or math.nan for r in runs]

        ax = axes[0][0]
        prefix = f"{name}: " if name else ""
        ax.plot(x, values("best_val_acc"), "o-", color=color, label=f"{prefix}best val")
        ax.plot(x, values("test_acc"), "s--", color=color, alpha=0.7, label=f"{prefix}test")
        gap = [(_number(r.metrics.get("train_acc")) or math.nan) - (_number(r.metrics.get("val_acc")) or math.nan)
               for r in runs]
        axes[0][1].plot(x, gap, "o-", color=color, label=name or None)
        if with_ratio:
            axes[0][2].plot(x, values("first_grad_norm"), "o-", color=color, label=name or None)
            axes[0][3].plot(x, values("grad_ratio"), "o-", color=color, label=name or None)
    titles = {"accuracy": ("accuracy", f"accuracy against {short}"),
              "gap": ("train acc - val acc", f"overfitting: train-val gap against {short}"),
              "first_grad_norm": ("first layer gradient norm",
                                  f"first layer's gradient against {short}\n(tiny: the layer barely learns)"),
              "grad_ratio": ("first / last layer gradient (RMS)",
                             f"first to last layer gradient against {short}\n(per weight; below 1: smaller at the input)")}
    for ax, panel in zip(axes[0], panels):
        ylabel, title = titles[panel]
        ax.set_xlabel(key)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=7, loc="best")
        if panel in ("grad_ratio", "first_grad_norm"):
            ax.set_yscale("log")
        if panel == "gap":
            ax.axhline(0.0, color="grey", lw=0.8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_objective(sweeps: list[Sweep], path: Path) -> Optional[Path]:
    """Best validation accuracy per run as bars: for sweeps over non-numeric settings."""
    import matplotlib.pyplot as plt

    runs = [run for sweep in sweeps for run in sweep.runs if _number(run.metrics.get(OBJECTIVE)) is not None]
    if not runs:
        return None
    runs.sort(key=lambda r: r.metrics[OBJECTIVE])
    labels = [(f"{r.sweep}: " if len(sweeps) > 1 else "") + r.label() for r in runs]
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.38 * len(runs)))
    values = [r.metrics[OBJECTIVE] for r in runs]
    bars = ax.barh(labels, values, color=_colors(len(runs)))
    for bar, value, run in zip(bars, values, runs):
        test = _number(run.metrics.get("test_acc"))
        note = f"{value:.4f}" + (f"  (test {test:.4f})" if test is not None else "")
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + note, va="center", fontsize=8)
    low = min(values)
    ax.set_xlim(max(0.0, low - (1.0 - low) * 0.5 - 0.02), 1.0)
    ax.set_xlabel("best validation accuracy")
    ax.set_title("best validation accuracy per run")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def figures(sweeps: list[Sweep], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    made = [plot_curves(sweeps, "val_loss", "validation loss", out / "val_loss.png"),
            plot_curves(sweeps, "val_acc", "validation accuracy", out / "val_acc.png")]
    numeric = [k for k in swept_keys(sweeps) if _is_numeric([r.swept[k] for s in sweeps for r in s.runs if k in r.swept])]
    for key in numeric:
        made.append(plot_against(sweeps, key, out / f"against_{key.rsplit('.', 1)[-1]}.png"))
    if not numeric:
        made.append(plot_objective(sweeps, out / "best_val_acc.png"))
    return [p for p in made if p is not None]


# ---------------------------------------------------------------------------- the report


class Report(NamedTuple):
    table: str  # the Markdown table of summary.md; "" when there was no run to report
    written: list[Path]
    runs: list[Run]


def build(paths: list[Path], out: Optional[Path] = None, plots: bool = True) -> Report:
    """Write summary.csv, summary.md and the figures; return the table, the files written and
    the runs they were made from."""
    sweeps = read_sweeps(paths)
    runs = [run for sweep in sweeps for run in sweep.runs]
    out = Path(out) if out else (sweeps[0].path if len(sweeps) == 1 else _compare_dir(sweeps))
    out.mkdir(parents=True, exist_ok=True)
    columns, rows = table_rows(sweeps)
    if not rows:
        return Report("", [], runs)
    table = markdown(columns, rows, _cell)
    title = " vs ".join(s.label for s in sweeps)
    text = f"# {title}\n\n{len(rows)} runs, best validation accuracy (any epoch) first.\n\n{table}"
    write_atomic(out / "summary.md", text.encode())
    write_csv(out / "summary.csv", columns, rows)
    written = [out / "summary.csv", out / "summary.md"]
    if plots:
        written += figures(sweeps, out)
    return Report(table, written, runs)


def _compare_dir(sweeps: list[Sweep]) -> Path:
    name = "_vs_".join(s.label.split(" ")[0] for s in sweeps)[:120]
    return Path("outputs") / "compare" / f"{name}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"


def _sweeper_report(folder: Path):
    """The report of a sweep whose sweeper makes its own (`report_sweep`, as the search's), or None."""
    saved = Path(folder) / "multirun.yaml"
    if not saved.is_file():
        return None
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    config = OmegaConf.load(saved)
    target = OmegaConf.select(config, "hydra.sweeper._target_")
    try:
        report_sweep = getattr(get_class(target), "report_sweep", None) if target else None
    except Exception:  # a sweeper not installed here: the runs' own report
        return None
    return None if report_sweep is None else (lambda: report_sweep(Path(folder), config))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlpbench.report",
        description="Summarise sweeps as summary.csv, summary.md and PNG figures.")
    parser.add_argument("dirs", nargs="+", type=Path,
                        help="sweep folders, or folders of sweeps (their newest is used)")
    parser.add_argument("--out", type=Path, help="where to write (default: the sweep folder; for "
                        "several sweeps outputs/compare/<names>_<time>)")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    args = parser.parse_args(argv)
    own_report = _sweeper_report(args.dirs[0]) if len(args.dirs) == 1 else None
    if own_report is not None:  # a search's folder: its sweeper's report (mlpbench.sweep.SweepSummary)
        own_report()
        return 0
    try:
        report = build(args.dirs, args.out, plots=not args.no_plots)
    except FileNotFoundError as e:
        parser.error(str(e))
    if not report.written:
        print(f"mlpbench.report: no {RESULT_FILE} under {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 1
    print(report.table)
    print("Wrote " + ", ".join(str(p) for p in report.written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
