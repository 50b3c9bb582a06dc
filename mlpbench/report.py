"""Sweep reports: summary.csv, summary.md, runs.csv and PNG figures from the runs' result.json.

    python -m mlpbench.report SWEEP_DIR                 rebuild one sweep's report in it
    python -m mlpbench.report DIR1 DIR2 ... [--out D]   several sweeps in one table and figure
    mlpbench.report.load(DIR, ...)                       the same numbers as pandas DataFrames

Runs that differ only in `seed` are repeats of one setting. Per setting the report gives n and,
for each metric, the mean, the standard deviation and the half-width of its 95% interval (t
distribution); then a verdict against the setting with the best mean of the objective
(`report.objective`; best_val_acc unless set, best_val_r2 for a regression): `best`, `tied` (not distinguishable at the 5%
level) or `worse`, with the p-value of a paired t-test over the seeds both ran (Welch's test
without two in common), Holm-adjusted over every pair of settings. With one run per setting there is no verdict. A sweep made
with seed=auto (its multirun.yaml says so) is judged by the anytime-valid test of its rounds
(mlpbench.stats.sequential_verdicts), and each setting says why it stopped.

A search's folder (outputs/tune/NAME) gets its trials report again, from the sweeper that made it.
A DIR is a sweep folder (runs with result.json below it), a folder of sweeps such as
outputs/depth_linear, which stands for its newest sweep, or a single run's folder. Runs still
going, cut off or failed are reported as they are. No torch here: a report never loads a framework.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Optional

from omegaconf import DictConfig

from mlpbench import overrides
from mlpbench.console import print_out
from mlpbench.files import (figure, format_cell, legend_beside, locked_elsewhere, markdown, save_figure,
                            write_atomic, write_csv)
from mlpbench.results import (RESULT_FILE, ROUNDS_FILE, SWEEP_LOCK, Status, files_read, flat_keys,
                              load_results, lower_is_better, natural_key, read_result, read_sweep_config, resolution,
                              score_in)
from mlpbench.schema import (AUTO_SEED, BASIC_SWEEPER, GRID_SWEEPER, ConfigError, Metric, SweepConfig, as_written_value,
                             safe_name, trusted)
from mlpbench.stats import MAX_SEEDS, Summary, Verdict, headline, p_cell, sequential_verdicts, summarize, verdicts

REPEAT_KEY = "seed"  # runs that differ only in it are repeats of one setting
# report.objective=null: the best epoch's validation score (Keras Tuner's objective; the epoch best.ckpt keeps, which
# predict uses): a classifier's accuracy, a regression's r2.
DEFAULT_OBJECTIVE = {"acc": "best_val_acc", "r2": "best_val_r2"}
OBJECTIVES = tuple(m.value for m in Metric)  # what report.objective may name
# Per setting: mean, std and 95% interval of each; the diagnostics' two where they were logged.
# A run's score is its accuracy, or a regression's r2 (mlpbench.module.score_name).
METRICS = {"acc": ("best_val_acc", "val_acc", "val_loss", "test_acc", "gap"),
           "r2": ("best_val_r2", "val_r2", "val_loss", "val_rmse", "test_r2", "gap")}
DIAGNOSTICS = ("first_grad_norm", "grad_ratio")
# What a comparison of diagnosed sweeps prints beside the objective: vanishing gradients against overfitting.
DIAGNOSTIC_PIVOTS = (("first_grad_norm", "the first layer's gradient norm, each run's mean over its steps; near 0: "
                                         "that layer barely learns"),
                     ("gap", "train minus validation {score} in the last epoch; above 0: overfitting"))
STATUS_ORDER = {s.value: i for i, s in enumerate((Status.ok, Status.running, Status.interrupted, Status.pruned,
                                                   Status.diverged, Status.failed))}


@dataclass
class Run:
    sweep: str
    name: str
    result: dict
    settings: dict[str, str] = field(default_factory=dict)  # key -> value, from its overrides

    @property
    def metrics(self) -> dict:
        return self.result.get("metrics") or {}

    @property
    def history(self) -> dict:
        return self.result.get("history") or {}

    @property
    def status(self) -> str:
        return self.result.get("status", "?")

    @property
    def seed(self) -> Optional[int]:
        # As its seed= override says; an interpolated one (seed=${...}) as its config has it
        # resolved; a failed run's unresolved seed pairs with none.
        typed = str(self.settings.get(REPEAT_KEY))
        if typed.isdigit():
            return int(typed)
        seed = (self.result.get("config") or {}).get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    @property
    def score(self) -> str:
        """What it is scored by besides the loss: "acc", or a regression's "r2"."""
        return score_of([self])

    def value(self, metric: str) -> Optional[float]:
        if metric == "gap":  # positive and growing: the network fits its training rows better than new ones
            train, val = (_number(self.metrics.get(f"{split}_{self.score}")) for split in ("train", "val"))
            return None if train is None or val is None else train - val
        return _number(self.metrics.get(metric))


def _validated_on_test(run) -> bool:
    data = (run.result.get("config") or {}).get("data") or {}
    return "val_split" in data and data["val_split"] is None


@dataclass
class Setting:
    """The runs of one point of a sweep: its seeds."""

    sweep: str
    values: dict[str, str]  # swept key -> value, seed aside
    runs: list[Run]
    verdict: Verdict = Verdict(None, None)

    @property
    def label(self) -> str:
        if not self.values:
            return self.sweep
        if len(self.values) == 1:
            return next(iter(self.values.values()))
        return "/".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in self.values.items())

    @property
    def measured(self) -> list[Run]:
        """The runs that are measurements: finished ok. Failed, diverged, pruned, interrupted and
        running ones count in `status`, not in n, the means or the tests."""
        return [run for run in self.runs if run.status == Status.ok]

    @property
    def test_validated(self) -> bool:
        """Its runs validated on the test split (data.val_split=null): their test_acc (test_r2)
        is no held-out number, whatever the sweep's other settings did."""
        return bool(self.runs) and all(_validated_on_test(run) for run in self.runs)

    def summary(self, metric: str) -> Summary:
        if metric.startswith("test_") and self.test_validated:
            return summarize([])  # the validation split's number again, not a held-out one
        return summarize(run.value(metric) for run in self.measured)

    def by_seed(self, metric: str) -> dict:
        return {run.seed: run.value(metric) for run in self.measured}


@dataclass
class Sweep:
    label: str
    path: Path
    runs: list[Run]
    keys: list[str]  # swept keys, seed aside, in the order they appear in the overrides
    settings: list[Setting] = field(default_factory=list)
    objective: str = DEFAULT_OBJECTIVE["acc"]
    best_over: list[str] = field(default_factory=list)
    min_difference: Optional[float] = None
    # seed=auto: the sweep's `sweep` settings (min_seeds, max_seeds, max_minutes); its verdicts are
    # then the anytime-valid test's (mlpbench.stats.sequential_verdicts). None: seeds as given.
    rounds: Optional[dict] = None
    # What every run had that the command line or the preset set, the swept keys aside:
    # {key: (value as shown, "command" or "preset")} (held_fixed).
    fixed: dict[str, tuple[str, str]] = field(default_factory=dict)
    score: str = "acc"  # "r2": a regression's runs (score_of)
    # Runs of the grid its multirun.yaml asks for that have no folder (an interrupted sweep), by
    # their swept overrides: model.depth=3,seed=2.
    never_started: list[str] = field(default_factory=list)

    @property
    def maximize(self) -> bool:
        return not lower_is_better(self.objective)

    @property
    def repeated(self) -> bool:
        return any(len(s.runs) > 1 for s in self.settings)

    @property
    def test_validated(self) -> bool:
        """Its runs validated on the test split (data.val_split=null, the tutorials'
        validation_data=(x_test, y_test)): test_acc (test_r2) is then no held-out number."""
        return bool(self.runs) and all(_validated_on_test(r) for r in self.runs)

    def metrics(self) -> tuple[str, ...]:
        """The metrics its tables show: test_acc (test_r2) left out where the test split validated."""
        return tuple(m for m in METRICS[self.score] if not (m.startswith("test_") and self.test_validated))


def score_of(runs: list[Run]) -> str:
    """"r2" where the runs are a regression's (their metrics have val_r2), else "acc"."""
    return "r2" if any(score_in(run.result.get("metrics") or {}) == "r2" or _task(run) == "regression"
                       for run in runs) else "acc"


def _one_task(path: Path, settings: list[Setting]) -> None:
    """A ConfigError where one sweep trained classifiers and regressions (data.path over a file
    of classes and one of numbers): one table cannot rank accuracy and r2 (a finished run's
    metrics tell which it was)."""
    kinds: dict[str, list[str]] = {}
    for setting in settings:
        for run in setting.runs:
            if run.result.get("metrics"):
                labels = kinds.setdefault(score_in(run.result["metrics"]), [])
                if setting.label not in labels:
                    labels.append(setting.label)
    if len(kinds) > 1:
        raise ConfigError(f"{path}: its runs are classifiers ({', '.join(kinds['acc'])}) and regressions "
                          f"({', '.join(kinds['r2'])}): accuracy and r2 are not one scale, and one table ranks by "
                          "one; sweep them apart")


def _one_version_of_each_file(path: Path, runs: list[Run]) -> None:
    """A ConfigError where the sweep's runs read a file (data=table) in more than one version
    (it was edited while the sweep ran): their settings would be compared on other data. Failed
    runs aside: they start over on the file as it is."""
    for file, by_digest in files_read([(run.name, run.result) for run in runs]).items():
        if len(by_digest) > 1:
            from mlpbench.table import content_digest

            now = content_digest(Path(file)) if Path(file).is_file() else None
            groups = "; ".join(", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                               + ("" if now is None else " (the file as it is)" if digest == now else " (earlier)")
                               for digest, names in by_digest.items())
            raise ConfigError(f"{path}: its runs read {file} in {len(by_digest)} versions, edited while the sweep ran "
                              f"({groups}); their settings would be compared on other data. Remove the folders of "
                              "the runs of the earlier versions, then run the sweep's command again with resume=true")


def _task(run: Run) -> Any:
    data = (run.result.get("config") or {}).get("data")
    return data.get("task") if isinstance(data, dict) else None


# ---------------------------------------------------------------------------- reading


def find_sweep(path: Path) -> Path:
    """A sweep folder itself, or the newest sweep inside a folder of sweeps."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder")
    if (path / RESULT_FILE).is_file() or any(path.glob(f"*/{RESULT_FILE}")) or not any(path.glob(f"*/*/{RESULT_FILE}")):
        found = path
    else:
        found = sorted({p.parent.parent for p in path.glob(f"*/*/{RESULT_FILE}")}, key=lambda p: natural_key(p.name))[-1]
    runs = [p.parent for p in found.glob(f"*/{RESULT_FILE}")]
    if runs and all(_single_run(run) for run in runs):
        raise ConfigError(f"{found}: a folder of single runs (each started without -m; outputs/run/<date>), not a "
                          "sweep: their settings were not chosen to be compared. Give one run's folder, or sweep the "
                          "settings to compare with -m")
    return found


def _single_run(run: Path) -> bool:
    """A run Hydra started on its own (hydra.mode RUN in its .hydra/hydra.yaml), not a sweep's job."""
    try:
        text = (run / ".hydra" / "hydra.yaml").read_text()
    except OSError:
        return False
    return "\n  mode: RUN\n" in text


def _load(path: Path) -> list[tuple[Path, dict]]:
    single = read_result(path)  # a single run's folder: a sweep of one
    return [(path, single)] if single is not None else load_results(path)


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _is_numeric(values: list[str]) -> bool:
    try:
        [float(v) for v in values]
    except ValueError:
        return False
    return bool(values)


def _ordered(settings: list[Setting], keys: list[str]) -> list[Setting]:
    """By the swept keys: numerically where a key's values are numbers (depth 2, 4, ... 10), else in
    the order the sweep ran them (the command's order: relu, leaky_relu, tanh, sigmoid)."""
    numeric = {k: _is_numeric([s.values[k] for s in settings]) for k in keys}
    def job(run: Run) -> float:
        number = run.result.get("job")
        return math.inf if number is None else number

    first_job = {id(s): min((job(r), natural_key(r.name)) for r in s.runs) for s in settings}
    appearance = {k: {} for k in keys}
    for s in sorted(settings, key=lambda s: first_job[id(s)]):
        for k in keys:
            appearance[k].setdefault(s.values[k], len(appearance[k]))
    return sorted(settings, key=lambda s: [float(s.values[k]) if numeric[k] else appearance[k][s.values[k]]
                                           for k in keys])


def read_sweep(path: Path, label: Optional[str] = None, judged_by: Optional[dict] = None) -> Sweep:
    """The sweep at `path`, judged as its runs' report.* config says, or by `judged_by` (report.*
    given to the report: another objective, min_difference or best_over for runs already made)."""
    config = read_sweep_config(path)  # multirun.yaml: its seeds (seed=auto?) and its grid
    runs = [Run(sweep="", name=run_dir.name, result=result, settings=overrides.run_settings(result.get("overrides", [])))
            for run_dir, result in _load(path)]
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.settings if k not in keys and k != REPEAT_KEY]
    if len(runs) > 1:
        keys = [k for k in keys if len({run.settings.get(k) for run in runs}) > 1]
    experiments = {run.result.get("experiment") for run in runs} - {None}
    label = label or (experiments.pop() if len(experiments) == 1 else path.name)
    groups: dict[tuple, Setting] = {}
    for run in runs:
        run.sweep = label
        swept = {k: run.settings.get(k, "-") for k in keys}
        groups.setdefault(tuple(swept.values()), Setting(label, swept, [])).runs.append(run)
    report_cfgs = [{**_report_config(r), **(judged_by or {})} for r in runs]
    _one_task(path, list(groups.values()))
    _one_version_of_each_file(path, runs)
    score = score_of(runs)
    objectives = sorted({str(c.get("objective") or DEFAULT_OBJECTIVE[score]) for c in report_cfgs})
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise ConfigError(f"{path}: its runs name report.objective={unknown[0]}, which is none of: "
                          f"{', '.join(OBJECTIVES)}")
    shown = [*METRICS[score][:-1], "test_loss"]
    if objectives and objectives[0] not in shown:
        task = "a regression's (data.task=regression)" if score == "r2" else "classifiers'"
        raise ConfigError(f"report.objective={objectives[0]}: these runs are {task}; compare them by one of: "
                          f"{', '.join(m for m in shown if m in OBJECTIVES)}")
    if len(objectives) > 1:  # one table ranks by one objective
        raise ConfigError(f"{path}: its runs were compared by different objectives ({', '.join(objectives)}); "
                          "a report ranks a sweep by one: report them apart")
    best_over = (report_cfgs[0].get("best_over") if report_cfgs else None) or []
    if judged_by and [k for k in judged_by.get("best_over", []) if k not in keys]:
        raise ConfigError(f"report.best_over=[{','.join(judged_by['best_over'])}]: {path} varies "
                          f"{', '.join(keys) if keys else 'no key but seed'}; name keys among those")
    sweep = Sweep(label, path, runs, keys, _ordered(list(groups.values()), keys),
                  objective=objectives[0] if objectives else DEFAULT_OBJECTIVE[score],
                  best_over=[k for k in best_over if isinstance(k, str) and k in keys],
                  min_difference=_number((report_cfgs[0] if report_cfgs else {}).get("min_difference")),
                  rounds=auto_seeds(path, config), fixed=held_fixed(runs, keys), score=score,
                  never_started=never_started(path, runs, config))
    judge(sweep.settings, sweep)
    return sweep


# A grid larger than this is not matched run by run against its folders.
MAX_MATCHED_GRID = 100_000


def never_started(path: Path, runs: list[Run], config) -> list[str]:
    """The runs of the grid the sweep's `config` (its multirun.yaml) asks for that left no result
    in `path`: an interrupted sweep's report says which settings it lacks, not only those it has.
    A search asks for its own trials, glob() is Hydra's to match, and a sweep still running has
    runs to come: nothing said for those."""
    if config is None or config.hydra.sweeper.get("_target_") not in (BASIC_SWEEPER, GRID_SWEEPER):
        return []
    if locked_elsewhere(path / SWEEP_LOCK):
        return []
    swept = overrides.grid_overrides(config)
    grid = overrides.grid_runs(swept)
    if not grid or len(grid) > MAX_MATCHED_GRID:
        return []
    keys = {o.get_key_element() for o in swept if o.is_sweep_override()}
    found = {frozenset(o for o in run.result.get("overrides", []) if o.split("=", 1)[0] in keys) for run in runs}
    return [",".join(run) for run in grid if frozenset(run) not in found]


def auto_seeds(path: Path, config=None) -> Optional[dict]:
    """The `sweep` settings of a sweep made with seed=auto (its rounds.json, or for a sweep made
    before those, its multirun.yaml, `config` where read already, says so), with why its rounds
    ended; else None."""
    try:
        record = json.loads((path / ROUNDS_FILE).read_text())
    except (OSError, ValueError):
        record = None
    if isinstance(record, dict) and isinstance(record.get("max_seeds"), int):
        return {"min_seeds": record.get("min_seeds"), "max_seeds": record["max_seeds"],
                "max_minutes": _number(record.get("max_minutes")), "ended": record.get("ended")}
    config = read_sweep_config(path) if config is None else config
    if config is None:
        return None
    # The seeds the sweeper used: the command's, else the preset's (its sweeper params)
    # (experiment=table_depth seed=1,2,3 is a sweep of three seeds).
    seed = next((o for o in overrides.grid_overrides(config) if o.key_or_group == REPEAT_KEY), None)
    if seed is None or seed.is_sweep_override() or seed.get_value_element_as_str() != AUTO_SEED:
        return None
    rounds, default = overrides.as_written(config.get("sweep")) or {}, SweepConfig()
    max_seeds = rounds.get("max_seeds")
    return {"min_seeds": rounds.get("min_seeds"),
            "max_seeds": max_seeds if isinstance(max_seeds, int) else default.max_seeds,
            "max_minutes": _number(rounds.get("max_minutes"))}


# Keys that say how a command ran (the console, resuming, seed=auto's rounds), not what it measured.
NOT_HELD = ("resume", "trainer.enable_progress_bar", "trainer.log_every_n_epochs", "callbacks.", "sweep.", "hydra.",
            "hydra/", "data.download", "report.")
TEST_VALIDATED_NOTE = ("test_{score} left out: these runs validated on the test split (data.val_split=null), so it is "
                       "not held out.")


def _shown_value(value: Any) -> str:
    return str(as_written_value(value)).replace("'", "")


def preset_settings(name: Any, depth: int = 0) -> dict[str, str]:
    """{key or group: value as written} that the preset conf/experiment/NAME.yaml sets (its
    group choices as `optim: sgd`, and what a preset it builds on sets), its Hydra section aside;
    {} for no such preset."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    if not isinstance(name, str) or not safe_name(name):  # a name, never a path
        return {}
    path = files("mlpbench.conf") / "experiment" / f"{name}.yaml"
    try:
        written = OmegaConf.to_container(OmegaConf.create(path.read_text()), resolve=False)
    except (OSError, ValueError):
        return {}
    found: dict[str, str] = {}
    for item in written.pop("defaults", None) or []:
        if isinstance(item, str) and item != "_self_" and depth < 5:  # a preset it builds on (depth_relu)
            found.update(preset_settings(item, depth + 1))
        elif isinstance(item, dict):
            for group, option in item.items():
                group = str(group).replace("override ", "").strip().lstrip("/")
                if group != "_self_":
                    found[group] = _shown_value(option)
    written.pop("hydra", None)
    found.update({k: _shown_value(v) for k, v in flat_keys(written).items()})
    return found


def held_fixed(runs: list[Run], swept: list[str]) -> dict[str, tuple[str, str]]:
    """What the command line or the preset set that every run of a sweep had alike, the swept
    keys aside: {key: (value, "command" or "preset")}, the preset's name first. The rest are
    mlpbench's defaults (each run's .hydra/config.yaml holds them all)."""
    if not runs:
        return {}
    flats = [flat_keys(r.result.get("config") or {}) for r in runs]
    experiment = runs[0].result.get("experiment")
    candidates: dict[str, tuple[str, str]] = {}
    if experiment and all(r.result.get("experiment") == experiment for r in runs):
        candidates["experiment"] = (str(experiment), "preset")
        candidates.update({k: (v, "preset") for k, v in preset_settings(experiment).items()})
    for key, written in runs[0].settings.items():
        candidates[key] = (written, "command")
    fixed = {}
    for key, (written, source) in candidates.items():
        if key in swept or key == REPEAT_KEY or key.startswith(NOT_HELD):
            continue
        if key == "experiment":
            fixed[key] = (written, source)
            continue
        # As the run's config has it (a group choice, optim=sgd, as written): alike in every run.
        values = {_shown_value(flat[key]) if key in flat else run.settings.get(key, written)
                  for run, flat in zip(runs, flats)}
        if len(values) == 1:
            fixed[key] = (values.pop(), source)
    return fixed


def fixed_text(fixed: dict[str, tuple[str, str]]) -> str:
    return ", ".join(f"{k}={v}" for k, (v, _) in fixed.items())


def fixed_differences(sweeps: list[Sweep]) -> dict[str, list[tuple[str, str]]]:
    """{key: [(value, source) per sweep]} for the settings held fixed differently between the
    sweeps (a key one sweep does not set: its default)."""
    keys: list[str] = []
    for sweep in sweeps:
        keys += [k for k in sweep.fixed if k not in keys]
    swept = set(swept_keys(sweeps))
    found = {}
    for key in keys:
        cells = [sweep.fixed.get(key) or (_run_value(sweep, key), "default") for sweep in sweeps]
        if key not in swept and len({value for value, _ in cells}) > 1:
            found[key] = cells
    return found


def _run_value(sweep: Sweep, key: str) -> str:
    """What a sweep that did not set `key` ran with: its runs' config value where they agree
    (trainer.max_epochs=10 given in one sweep is the other's default 10), else "default"."""
    values = {_shown_value(flat_keys(r.result.get("config") or {}).get(key, "default")) for r in sweep.runs}
    return values.pop() if len(values) == 1 else "default"


def check_comparable(sweeps: list[Sweep], force: bool = False) -> dict[str, list[tuple[str, str]]]:
    """The differences in what the sweeps held fixed. Where their presets differ, that is what
    is compared (depth_linear against depth_relu); a difference set on a command line
    (trainer.max_epochs=3 in one) makes the numbers incomparable: refused unless `force`."""
    found = fixed_differences(sweeps)
    typed = {k: cells for k, cells in found.items() if any(source == "command" for _, source in cells)}
    if typed and not force:
        listed = "; ".join(f"{k} (" + ", ".join(f"{sweep.label}: {value}" for sweep, (value, _) in zip(sweeps, cells))
                           + ")" for k, cells in typed.items())
        raise ConfigError(f"the sweeps were run with different fixed settings, set on their command lines: {listed}. "
                          "Their numbers are not comparable; give --force to put them side by side anyway (the "
                          "report then lists what differs)")
    return found


def _report_config(run: Run) -> dict:
    report = (run.result.get("config") or {}).get("report")
    return report if isinstance(report, dict) else {}


def judge(settings: list[Setting], sweep: Sweep) -> None:
    """Each setting's verdict against the best mean of the sweep's objective (mlpbench.stats.verdicts;
    after seed=auto's rounds, sequential_verdicts)."""
    groups = {id(s): s.by_seed(sweep.objective) for s in settings}
    step = resolution(sweep.objective, [r.result for s in settings for r in s.measured])
    if sweep.rounds:
        found = sequential_verdicts(groups, sweep.rounds["max_seeds"], maximize=sweep.maximize,
                                    min_difference=sweep.min_difference, resolution=step)
    else:
        found = verdicts(groups, maximize=sweep.maximize, min_difference=sweep.min_difference, resolution=step)
    for s in settings:
        s.verdict = found[id(s)]


def read_sweeps(paths: list[Path], judged_by: Optional[dict] = None) -> list[Sweep]:
    """The sweeps at `paths`, each once however often it is named (a folder of sweeps and its
    newest sweep are the same sweep): a run counts once. `judged_by`: as read_sweep's."""
    found: dict[Path, Path] = {}
    for path in paths:
        sweep = find_sweep(path)
        found.setdefault(sweep.resolve(), sweep)
    sweeps = [read_sweep(p, judged_by=judged_by) for p in found.values()]
    tasks = {sweep.score for sweep in sweeps if sweep.runs}
    if len(tasks) > 1:
        raise ConfigError("these sweeps are a classifier's and a regression's: accuracy and r2 are not one scale; "
                          "report them apart")
    labels = [s.label for s in sweeps]
    if len(set(labels)) < len(labels):  # e.g. two sweeps of one preset: tell them apart by folder
        folders = _shortest_unique_tails([sweep.path.resolve() for sweep in sweeps])
        for sweep, folder in zip(sweeps, folders):
            sweep.label = f"{sweep.label} ({folder})"
            for item in (*sweep.runs, *sweep.settings):
                item.sweep = sweep.label
    return sweeps


def _shortest_unique_tails(paths: list[Path]) -> list[str]:
    """The fewest last parts of each path that tell it from the others (runs/bc/depth and
    runs/wine/depth: bc/depth and wine/depth)."""
    for parts in range(1, max(len(p.parts) for p in paths) + 1):
        tails = [str(Path(*p.parts[-parts:])) for p in paths]
        if len(set(tails)) == len(tails):
            return tails
    return [str(p) for p in paths]


def best_of(sweep: Sweep) -> list[Setting]:
    """`report.best_over` (the fair optimizer comparison): each combination of the other keys at
    its best value of those keys (its best learning rate), judged again among themselves."""
    groups: dict[tuple, list[Setting]] = {}
    for s in sweep.settings:
        groups.setdefault(tuple(v for k, v in s.values.items() if k not in sweep.best_over), []).append(s)
    picked = []
    for members in groups.values():
        scored = [s for s in members if s.summary(sweep.objective).n]
        if scored:
            sign = 1 if sweep.maximize else -1
            # Settings with an interval first: a lone lucky run does not pick the rate.
            picked.append(max(scored, key=lambda s: (s.summary(sweep.objective).n >= 2,
                                                     sign * s.summary(sweep.objective).mean)))
    picked = [Setting(s.sweep, s.values, s.runs) for s in picked]
    judge(picked, sweep)
    return picked


# ---------------------------------------------------------------------------- tables


def _status(setting: Setting) -> str:
    counts: dict[str, int] = {}
    for run in setting.runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    if list(counts) == [Status.ok.value]:
        return Status.ok.value
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: STATUS_ORDER.get(kv[0], 9)))


def _metrics_of(sweeps: list[Sweep]) -> list[str]:
    with_diagnostics = any(run.value("grad_ratio") is not None for s in sweeps for run in s.runs)
    metrics = list(dict.fromkeys(m for sweep in sweeps for m in METRICS[sweep.score]))
    return metrics + (list(DIAGNOSTICS) if with_diagnostics else [])


def swept_keys(sweeps: list[Sweep]) -> list[str]:
    """The keys swept in any of the sweeps, seed aside, in order of first appearance."""
    keys: list[str] = []
    for sweep in sweeps:
        keys += [k for k in sweep.keys if k not in keys]
    return keys


def setting_rows(sweeps: list[Sweep], settings_of=lambda sweep: sweep.settings) -> list[dict[str, Any]]:
    """summary.csv: a row per setting, in the sweep's order: n, then mean, std and ci95 of each
    metric, the verdict and its p-value."""
    keys, metrics = swept_keys(sweeps), _metrics_of(sweeps)
    rows = []
    for sweep in sweeps:
        for s in settings_of(sweep):
            row: dict[str, Any] = {"sweep": sweep.label} if len(sweeps) > 1 else {}
            row.update({k: s.values.get(k, "-") for k in keys} if keys else {"setting": s.label})
            row.update({"n": s.summary(sweep.objective).n, "runs": len(s.runs), "status": _status(s)})
            for metric in metrics:
                summary = s.summary(metric) if metric in sweep.metrics() or metric in DIAGNOSTICS else summarize([])
                row.update({f"{metric}_mean": _number(summary.mean), f"{metric}_std": _number(summary.std),
                            f"{metric}_ci95": _number(summary.ci95)})
            row.update({"verdict": s.verdict.word, "p": s.verdict.p, "objective": sweep.objective,
                        "seeds_needed": s.verdict.seeds_needed, "negligible": s.verdict.negligible or None,
                        "stopped": stopped(sweep, s),
                        "params": (s.runs[0].result.get("params") or {}).get("total"),
                        "epochs": _number(summarize(r.result.get("epochs") for r in s.runs).mean),
                        "seconds": _number(summarize(r.result.get("seconds") for r in s.runs).mean),
                        "fixed": fixed_text(sweep.fixed)})
            rows.append(row)
    return rows


def run_rows(sweeps: list[Sweep]) -> list[dict[str, Any]]:
    """runs.csv: a row per run, in the order of the settings, seeds in order."""
    keys, several = swept_keys(sweeps), len(sweeps) > 1
    rows = []
    for sweep in sweeps:
        for s in sweep.settings:
            for run in sorted(s.runs, key=lambda r: (r.seed is None, r.seed or 0, natural_key(r.name))):
                m = run.metrics
                row: dict[str, Any] = {"sweep": sweep.label} if several else {}
                row.update({k: s.values.get(k, "-") for k in keys})
                score = sweep.score
                row.update({"seed": run.seed, "status": run.status, "val_loss": _number(m.get("val_loss")),
                            f"val_{score}": _number(m.get(f"val_{score}")),
                            f"best_val_{score}": _number(m.get(f"best_val_{score}")),
                            **({"val_rmse": _number(m.get("val_rmse"))} if score == "r2" else {}),
                            "best_epoch": m.get("best_epoch"),
                            f"test_{score}": None if sweep.test_validated else _number(m.get(f"test_{score}")),
                            "gap": run.value("gap"), "epochs": run.result.get("epochs"),
                            "seconds": _number(run.result.get("seconds")), "run": run.name})
                rows.append(row)
    return rows


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if column == "p":
        return p_cell(value)
    if column.startswith(DIAGNOSTICS):
        return f"{value:.3g}"
    if column.startswith("gap"):
        return f"{value:+.4f}"
    if column in ("seconds", "epochs"):
        return f"{value:.1f}" if isinstance(value, float) and not value.is_integer() else f"{value:g}"
    if column == "params":
        return f"{value:,}"
    return format_cell(column, value)


# Shown after an interval from 2 runs: its t quantile is 12.7, the interval too wide to read.
EACH_SEED_UP_TO = 3  # settings in a figure of epochs whose seeds' own curves are drawn too
FEW = "!"
FEW_NOTE = f"{FEW} from 2 runs: an interval from fewer than 3 is too wide to read; add seeds."


def interval(summary: Summary, metric: str | None = None, digits: int = 4) -> str:
    """mean ± half-width of the 95% interval of `metric`; the mean alone for one run. An interval
    that would leave the values the metric can take (an accuracy's [0, 1], a loss's [0, inf)) is
    shown as its ends inside them, [low, high]; a gap is signed."""
    if summary.n == 0:
        return "-"
    mean = f"{summary.mean:+.{digits}f}" if metric == "gap" else f"{summary.mean:.{digits}f}"
    if summary.n == 1:
        return mean
    few = FEW if summary.n < 3 else ""
    low, high = _bounds(summary, metric)
    if (low, high) != (summary.mean - summary.ci95, summary.mean + summary.ci95):
        return f"{mean} [{low:.{digits}f}, {high:.{digits}f}]{few}"
    return f"{mean} ± {summary.ci95:.{digits}f}{few}"


def _limits(metric: str | None) -> tuple[float, float]:
    """The values `metric` can take: an accuracy's [0, 1], r2's at most 1, a loss's and an
    rmse's at least 0 (a t interval over few seeds knows none of these)."""
    if metric and metric.endswith("acc"):
        return 0.0, 1.0
    if metric and metric.endswith("r2"):
        return -math.inf, 1.0
    if metric and metric.endswith(("loss", "rmse")):
        return 0.0, math.inf
    return -math.inf, math.inf


def _bounds(summary: Summary, metric: str | None) -> tuple[float, float]:
    """The 95% interval's ends, inside the values `metric` can take."""
    half = 0.0 if math.isnan(summary.ci95) else summary.ci95
    lowest, highest = _limits(metric)
    return max(summary.mean - half, lowest), min(summary.mean + half, highest)


def _to_decide(verdict: Verdict) -> str:
    """A tie's seeds per setting that would detect its difference at 80% power, or why none."""
    if verdict.verdict != "tied":
        return "-"
    if verdict.negligible:
        return "below report.min_difference"
    if verdict.ahead:
        return "ahead where both ran"
    return f"over {MAX_SEEDS}" if verdict.seeds_needed is None else str(verdict.seeds_needed)


def stopped(sweep: Sweep, setting: Setting) -> Optional[str]:
    """seed=auto: why a setting got no more seeds. A comparison still open when the sweep ended
    ran out of seeds (sweep.max_seeds), of time (sweep.max_minutes), or was cut off."""
    if not sweep.rounds or setting.verdict.verdict is None:
        return None
    reason = setting.verdict.stopped
    if reason is not None:
        return {"decided": "all compared" if setting.verdict.verdict == "best" else "decided"}.get(reason, reason)
    if len({run.seed for run in setting.runs}) >= sweep.rounds["max_seeds"]:
        return "budget: max_seeds"
    if "ended" in sweep.rounds:  # rounds.json says why the rounds ended: None where a kill or Ctrl-C did
        return "budget: max_minutes" if sweep.rounds["ended"] == "max_minutes" else "unfinished"
    return "budget: max_minutes" if sweep.rounds.get("max_minutes") else "unfinished"


def settings_table(sweep: Sweep, settings: list[Setting]) -> str:
    """summary.md's table: a row per setting, `mean ± ci95` cells, the verdict last."""
    rows = []
    for s in settings:
        row: dict[str, Any] = ({k: s.values.get(k, "-") for k in sweep.keys} if sweep.keys
                               else {"setting": s.label if len(settings) > 1 else _one_setting(sweep)})
        row["n"] = s.summary(sweep.objective).n
        for metric in sweep.metrics():
            row[metric] = interval(s.summary(metric), metric)
        row.update({"verdict": s.verdict.word or "-", "p": s.verdict.p, "seeds for 80% power": _to_decide(s.verdict)})
        if sweep.rounds:
            row["stopped"] = stopped(sweep, s) or "-"
        row["status"] = _status(s)
        rows.append(row)
    if not rows:
        return ""
    few = any(s.summary(metric).n == 2 for s in settings for metric in sweep.metrics())
    notes = [FEW_NOTE] * few + [TEST_VALIDATED_NOTE.format(score=sweep.score)] * sweep.test_validated
    on_test = [s.label for s in settings if s.test_validated and not sweep.test_validated]
    if on_test:
        notes.append(f"test_{sweep.score} of {', '.join(on_test)} left out: those runs validated on the test split "
                     "(data.val_split=null), so it is not held out.")
    notes += [note] if (note := _ahead_on_other_seeds(sweep, settings)) else []
    return markdown(list(rows[0]), rows, _cell) + "".join(f"\n{note}\n" for note in notes)


def _one_setting(sweep: Sweep) -> str:
    """A sweep of one setting (seeds only) named by what its command set, else as the defaults:
    not by its folder, a time stamp."""
    given = [f"{k}={v}" for k, (v, source) in sweep.fixed.items() if source == "command"]
    return " ".join(given) if given else (sweep.label if "experiment" in sweep.fixed else "the defaults")


def _ahead_on_other_seeds(sweep: Sweep, settings: list[Setting]) -> str:
    """Where a setting's mean passes the best's over other seeds than the best's (seed=auto
    stopped it sooner, or runs failed): its mean and the best's over the seeds both ran, which
    the verdicts compare."""
    best = next((s for s in settings if s.verdict.verdict == "best"), None)
    if best is None:
        return ""
    sign = -1.0 if lower_is_better(sweep.objective) else 1.0
    ours, parts = best.by_seed(sweep.objective), []
    for s in settings:
        theirs = {seed: v for seed, v in s.by_seed(sweep.objective).items() if v is not None}
        shared = sorted(theirs.keys() & ours.keys())
        if s is best or len(shared) < 2 or set(shared) == set(theirs) == set(ours):
            continue
        if sign * (s.summary(sweep.objective).mean - best.summary(sweep.objective).mean) > 0:
            mine, the_best = (sum(values[seed] for seed in shared) / len(shared) for values in (theirs, ours))
            parts.append(f"{s.label}: {mine:.4f} against {the_best:.4f} for the best ({best.label}) on "
                         f"seeds {', '.join(map(str, shared))}")
    if not parts:
        return ""
    return (f"n differs: means over different seeds do not rank settings, and the verdicts compare each with the "
            f"best on the seeds both ran. Ahead of the best's mean only over other seeds ({sweep.objective}): "
            + "; ".join(parts) + ".")


def comparison_table(sweeps: list[Sweep], metric: Optional[str] = None) -> str:
    """Several sweeps: the swept key's values as rows, the sweeps as columns, each cell the
    objective's mean ± interval and the verdict within its sweep; or `metric`'s, without one."""
    labels: list[str] = []
    for sweep in sweeps:
        labels += [s.label for s in sweep.settings if s.label not in labels]
    if all(_is_numeric([lab]) for lab in labels):
        labels.sort(key=float)
    keys = swept_keys(sweeps)
    first = " / ".join(keys) or "setting"
    rows = []
    for label in labels:
        row: dict[str, Any] = {first: label}
        for sweep in sweeps:
            s = next((s for s in sweep.settings if s.label == label), None)
            shown = metric or sweep.objective
            cell = "-" if s is None else interval(s.summary(shown), shown)
            if s is not None and s.verdict.verdict and metric is None:
                cell += f" ({s.verdict.word})"
            row[_column(sweep, sweeps)] = cell
        if metric is None and not _mixed(sweeps):
            row["across the sweeps"] = _across(sweeps, label)
        rows.append(row)
    if not rows:
        return ""
    few = any(FEW in str(cell) for row in rows for cell in row.values())
    return markdown(list(rows[0]), rows, _cell) + (f"\n{FEW_NOTE}\n" if few else "")


def _across(sweeps: list[Sweep], label: str) -> str:
    """A row of the comparison table judged across its sweeps (depth 8: residual against plain
    ReLU), as a sweep judges its settings: paired by seed, Holm over the row's pairs."""
    found = {_column(sweep, sweeps): s for sweep in sweeps for s in sweep.settings if s.label == label}
    if len(found) < 2:
        return "-"
    objective = sweeps[0].objective
    groups = {name: s.by_seed(objective) for name, s in found.items()}
    step = resolution(objective, [r.result for s in found.values() for r in s.measured])
    judged = verdicts(groups, maximize=sweeps[0].maximize, min_difference=sweeps[0].min_difference, resolution=step)
    summaries = {name: s.summary(objective) for name, s in found.items()}
    sentence = headline(list(found), summaries, judged, objective, with_value=False).removeprefix(f"{objective}: ")
    return sentence.replace("p < 0.001", "p ≤ 0.001")  # as a table cell writes "<": &lt;


def _mixed(sweeps: list[Sweep]) -> bool:
    return len({s.objective for s in sweeps}) > 1


def _column(sweep: Sweep, sweeps: list[Sweep]) -> str:
    """A sweep's column in the comparison, named with its objective where the sweeps' differ."""
    return f"{sweep.label} ({sweep.objective})" if _mixed(sweeps) else sweep.label


def answer(sweep: Sweep, settings: Optional[list[Setting]] = None) -> str:
    """The one-sentence answer: which settings tie for best, which are worse (mlpbench.stats)."""
    settings = sweep.settings if settings is None else settings
    names = [s.label for s in settings]
    summaries = {s.label: s.summary(sweep.objective) for s in settings}
    found = {s.label: s.verdict for s in settings}
    # Interrupted or killed (left "running"): not measured yet, whatever the seeds asked for.
    unfinished = sum(run.status in (Status.interrupted, Status.running) for s in settings for run in s.runs)
    finish = f"{unfinished} run(s) unfinished (interrupted or killed): the sweep's command with resume=true finishes them"
    missing = sweep.never_started
    if missing:
        shown = ", ".join(missing[:5]) + (f" ... ({len(missing)} in all)" if len(missing) > 5 else "")
        finish = (f"{finish}; " if unfinished else "") + (
            f"{len(missing)} run(s) of the grid never started ({shown}): the sweep's command with resume=true "
            "runs them")
        unfinished += len(missing)
    if unfinished and all(summaries[n].n <= 1 for n in names):
        return f"{sweep.objective}: no verdict yet: {finish}"
    if len(settings) == 1:
        shown = interval(summaries[names[0]], sweep.objective)
        text = (f"{sweep.objective}: {shown} (n = {summaries[names[0]].n}); a single "
                "setting, nothing to compare it with" + ("; the same command with -m and seed=1,2,3,4,5 gives its "
                                                         "interval" if summaries[names[0]].n == 1 else ""))
    else:
        text = headline(names, summaries, found, sweep.objective, digits=3,
                        shown=lambda s: interval(s, sweep.objective, digits=3),
                        unmeasured={s.label: _status(s) for s in settings if s.runs and not summaries[s.label].n})
    return f"{text}; {finish}" if unfinished else text


# ---------------------------------------------------------------------------- figures


def _colors(n: int) -> list[str]:
    import matplotlib
    from matplotlib.colors import to_hex

    if n <= 20:  # tab10's, then tab20's pairs of a dark and a light shade
        return [to_hex(c) for c in matplotlib.colormaps["tab10" if n <= 10 else "tab20"].colors[:n]]
    # More settings than tab20 tells apart: along viridis, short of its pale yellow end.
    return [to_hex(matplotlib.colormaps["viridis"](0.9 * i / (n - 1))) for i in range(n)]


LINE_STYLES = ("-", "--", ":", "-.")


def _settings_in_order(sweeps: list[Sweep]) -> list[Setting]:
    found: dict[str, Setting] = {}
    for sweep in sweeps:
        for s in sweep.settings:
            found.setdefault(s.label, s)
    return list(found.values())


def setting_looks(sweeps: list[Sweep]) -> tuple[dict[str, str], dict[str, str]]:
    """Setting label -> colour, and -> line style, in the report's setting order: a colour each,
    solid; where more than 10 settings are two or more swept keys of few values each (activation
    x depth: 4 x 3), a colour per value of the first key and a line style per combination of the
    others."""
    settings, keys = _settings_in_order(sweeps), swept_keys(sweeps)
    if len(settings) > 10 and len(keys) > 1:
        first = list(dict.fromkeys(s.values.get(keys[0], "") for s in settings))
        rest = list(dict.fromkeys(tuple(s.values.get(k, "") for k in keys[1:]) for s in settings))
        if len(first) <= 10 and len(rest) <= len(LINE_STYLES):
            colors, styles = dict(zip(first, _colors(len(first)))), dict(zip(rest, LINE_STYLES))
            return ({s.label: colors[s.values.get(keys[0], "")] for s in settings},
                    {s.label: styles[tuple(s.values.get(k, "") for k in keys[1:])] for s in settings})
    return (dict(zip([s.label for s in settings], _colors(len(settings)))), {s.label: "-" for s in settings})


def setting_colors(sweeps: list[Sweep]) -> dict[str, str]:
    """Setting label -> colour (setting_looks): a setting is drawn in its colour in every figure
    of the report, and in each sweep of a comparison."""
    return setting_looks(sweeps)[0]


def _legend_title(sweeps: list[Sweep]) -> str:
    keys = swept_keys(sweeps)  # one key: a setting's label is its value alone ("4"), say of what
    return keys[0].rsplit(".", 1)[-1] if len(keys) == 1 else "setting"


def _epoch_band(runs: list[Run], metric: str) -> tuple[list[int], list[float], list[float], list[float]]:
    """Per epoch: the mean over the runs that reached it, and its 95% interval."""
    epochs = max((len(r.history.get(metric) or []) for r in runs), default=0)
    x, mean, low, high = [], [], [], []
    for e in range(epochs):
        s = summarize((r.history.get(metric) or [])[e] if e < len(r.history.get(metric) or []) else None
                      for r in runs)
        if s.n:
            half = 0.0 if math.isnan(s.ci95) else s.ci95
            x.append(e + 1), mean.append(s.mean), low.append(s.mean - half), high.append(s.mean + half)
    return x, mean, low, high


def _curve_range(points: list[tuple[int, float, int]], accuracy: bool,
                 floor: Optional[float] = 0.0) -> tuple[float, float, str]:
    """The y range of a per-epoch figure from its (epoch, value, the curve's last epoch) points,
    bands included, padded 5%. An accuracy's early epochs far below the rest (0.1 against 0.9)
    would squeeze the differences the verdict is about into one line, a diverging run's loss
    would flatten every other curve: such a tail runs off the axis (the range of the later half
    of each curve's epochs, so that a curve that stopped early stays in view, or of the bulk),
    and the returned note says so. `accuracy` covers r2 too, with no `floor` (it can be below 0)."""
    v = sorted(y for _, y, _ in points if math.isfinite(y))
    low, high, note = v[0], v[-1], ""
    if accuracy:
        later = [y for x, y, last in points if x > last / 2 and math.isfinite(y)] or v
        if min(later) - low > max(later) - min(later):
            low, note = min(later), "; the first epochs are below it"
    else:
        bulk = v[int(0.9 * (len(v) - 1))]
        if high > 3 * bulk > 0:
            high, note = 1.5 * bulk, "; the highest values are above the top"
    pad = 0.05 * (high - low) or 0.01
    low, high = low - pad, high + pad
    if floor is not None:  # neither a loss nor an accuracy is below 0
        low = max(low, floor)
    if accuracy:
        high = min(high, 1.0 + pad)
    return low, high, note


def plot_curves(sweeps: list[Sweep], metric: str, ylabel: str, path: Path) -> Optional[Path]:
    """One panel per sweep, one curve per setting: the mean over its seeds per epoch, with its
    95% interval as a band (the tutorials' loss-per-epoch figure, with the noise shown). The y
    axis spans the data (_curve_range), and says where it starts."""
    from matplotlib.ticker import MaxNLocator

    if not any(run.history.get(metric) for sweep in sweeps for run in sweep.runs):
        return None
    accuracy = metric.endswith(("acc", "r2"))  # higher is better, at most 1
    r2 = metric.endswith("r2")
    colors, styles = setting_looks(sweeps)
    fig, axes = figure(1, len(sweeps), sharey=True)
    drawn: list[tuple[int, float, int]] = []  # (epoch, value, its curve's last epoch), bands too
    for ax, sweep in zip(axes[0], sweeps):
        each_seed = False
        for s in sweep.settings:
            x, mean, low, high = _epoch_band(s.measured or s.runs, metric)
            if not x:
                continue
            color = colors[s.label]
            n = len(s.runs)
            not_ok = [r.status for r in s.runs if r.status not in (Status.ok, Status.running)]
            note = f" (n={n})" + (f", {len(not_ok)} not ok" if not_ok else "")
            ax.plot(x, mean, styles[s.label], color=color, label=s.label + note, marker="o" if len(x) <= 12 else None,
                    markersize=3)
            drawn += [(e, y, x[-1]) for e, y in zip(x, mean)]
            if n > 1 and len(sweep.settings) <= EACH_SEED_UP_TO:
                # Few curves: each seed's own, thin, under the mean (XOR's one stuck seed of three
                # made a wide band around a mean that no seed followed).
                for run in s.measured:
                    values = run.history.get(metric) or []
                    ax.plot(range(1, len(values) + 1), values, "-", color=color, lw=0.7, alpha=0.5)
                    drawn += [(e + 1, y, len(values)) for e, y in enumerate(values)]
                each_seed = True
            if n > 1:  # a t interval over few seeds can pass 0 or 1; an accuracy cannot, nor a loss 0
                lowest, highest = _limits(metric)
                low, high = [max(lowest, v) for v in low], [min(highest, v) for v in high]
                # A light fill with its edges drawn: where bands overlap, each stays visible in
                # its colour (denser fills mixed into brown).
                ax.fill_between(x, low, high, color=color, alpha=0.10, lw=0)
                for edge in (low, high):
                    ax.plot(x, edge, "-", color=color, lw=0.6, alpha=0.55)
                drawn += [(e, y, x[-1]) for e, y in [*zip(x, low), *zip(x, high)]]
        title = f"{ylabel} per epoch" + (": mean and 95% interval over seeds" if sweep.repeated else "") + (
            " (thin: each seed)" if each_seed else "")
        ax.set_title(f"{sweep.label}\n{title}" if len(sweeps) > 1 else title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # one epoch: its tick, not 0.95-1.05
        ax.grid(alpha=0.3)
        legend_beside(ax, title=_legend_title(sweeps))
    if drawn:
        bottom, top, note = _curve_range(drawn, accuracy, floor=None if r2 else 0.0)
        axes[0][0].set_ylim(bottom, top)
        axes[0][0].set_ylabel(f"{ylabel}\n(axis from {bottom:.3g}{'' if bottom == 0 else ', not 0'}{note})")
    else:
        axes[0][0].set_ylabel(ylabel)
    return save_figure(fig, path)


def plot_against(sweeps: list[Sweep], key: str, path: Path) -> Path:
    """Metrics against a numeric swept key (depth, units), each point a setting's mean with its
    95% interval as an error bar: accuracy, the train-val gap and, with diagnostics, the first
    layer's gradient. (Not the first/last gradient ratio: where a deep ReLU net stops learning, the
    last layer's gradient shrinks with the first's, and the ratio stayed flat in depth_relu while
    its first layer's gradient fell tenfold; it is in summary.csv and TensorBoard.) One line per sweep, and per
    combination of the other swept keys. With one line a point has its setting's colour, as in
    the curves; with several, the x axis already tells the settings apart, and each line (a
    sweep: depth_linear against depth_relu) has a colour and a marker of its own."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullLocator

    with_gradient = "first_grad_norm" in _metrics_of(sweeps)
    score = sweeps[0].score  # read_sweeps: one task per report
    panels = ["accuracy", "gap"] + (["first_grad_norm"] if with_gradient else [])
    fig, grid = figure(1, len(panels))
    axes = list(grid.flat)
    colors = setting_colors(sweeps)
    lines: dict[str, list[tuple[Sweep, Setting]]] = {}
    for sweep in sweeps:
        for s in sweep.settings:
            if key in s.values and s.summary(sweep.objective).n:  # a setting without a result (diverged) has no point
                others = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in s.values.items() if k != key)
                name = " / ".join(x for x in ((sweep.label if len(sweeps) > 1 else ""), others) if x)
                lines.setdefault(name, []).append((sweep, s))
    short = key.rsplit(".", 1)[-1]
    markers = "osD^vP*X<>"
    values = sorted({float(s.values[key]) for members in lines.values() for _, s in members})
    if not values:
        values = [0.0]
    # Values over two decades and more (learning rates): a log axis, where they would otherwise
    # crowd at its left end. Offsets below are in the axis' own units (log10 there).
    log_x = values[0] > 0 and values[-1] / values[0] >= 100
    scale = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    place = (lambda v, offset: v * 10 ** offset) if log_x else (lambda v, offset: v + offset)
    scaled = [scale(v) for v in values]
    step = min((b - a for a, b in zip(scaled, scaled[1:])), default=1.0)  # the closest two values
    # Lines a little apart, so that points at one value do not hide each other; a line's test_acc
    # half-way to the next line's points.
    spacing = 0.015 * (scaled[-1] - scaled[0]) or 0.05 * step
    tested = False
    line_colors = {name: f"C{i % 10}" for i, name in enumerate(lines)} if len(lines) > 1 else {}
    for i, ((name, members), marker) in enumerate(zip(lines.items(), markers * len(lines))):
        members = sorted(members, key=lambda m: float(m[1].values[key]))
        dodge = (i - (len(lines) - 1) / 2) * spacing
        x = [place(float(s.values[key]), dodge) for _, s in members]

        def draw(ax, metric: str, linestyle: str, test: bool = False) -> None:
            summaries = [s.summary(metric) for _, s in members]
            y = [sm.mean for sm in summaries]
            # test_acc beside best_val_acc, not on it, hollow, and (with one line) in black.
            shift = (0.12 * step if len(lines) == 1 else 0.5 * spacing) if test else 0.0
            at = [place(xi, shift) for xi in x]
            ax.plot(at, y, linestyle, color=line_colors.get(name, "black" if test else "grey"), lw=1.2, zorder=1)
            for xi, yi, sm, (_, s) in zip(at, y, summaries, members):
                color = line_colors.get(name, "black" if test else colors[s.label])
                low, high = _bounds(sm, metric)
                ax.errorbar([xi], [yi], yerr=[[yi - low], [high - yi]], fmt=marker,
                            color=color, markerfacecolor="white" if test else color, capsize=3, markersize=6,
                            zorder=2)

        draw(axes[0], f"best_val_{score}", "-")
        if not any(sweep.test_validated for sweep, _ in members):
            tested = True
            draw(axes[0], f"test_{score}", "--", test=True)
        draw(axes[1], "gap", "-")
        if with_gradient:
            draw(axes[2], "first_grad_norm", "-")
    repeated = any(sweep.repeated for sweep in sweeps)
    bars = " (mean, 95% interval over seeds)" if repeated else ""
    name = "accuracy" if score == "acc" else "r2"
    titles = {"accuracy": (name, f"{name} against {short}{bars}"),
              "gap": (f"train {score} - val {score}", f"overfitting: train-val gap against {short}"),
              "first_grad_norm": ("first layer gradient norm",
                                  f"first layer's gradient against {short}\n(tiny: the layer barely learns)")}
    # Settings with no result (every run diverged or failed) have no point: said, not left out unseen.
    pointless = [f"{short}={float(s.values[key]):g}" + (f" ({_status(s)})" if s.runs else "") for sweep in sweeps
                 for s in sweep.settings if key in s.values and not s.summary(sweep.objective).n]
    if pointless:
        titles["accuracy"] = (titles["accuracy"][0], f"{titles['accuracy'][1]}\nno point, no run ended ok: "
                                                     f"{', '.join(pointless)}")
    for ax, panel in zip(axes, panels):
        ylabel, title = titles[panel]
        ax.set_xlabel(key)
        if log_x:
            ax.set_xscale("log")
        if len(values) <= 12:
            ax.set_xticks(values, [f"{v:g}" for v in values])
            ax.xaxis.set_minor_locator(NullLocator())  # a log axis' own ticks between them
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if panel == "first_grad_norm":
            ax.set_yscale("log")
        if panel == "gap":
            ax.axhline(0.0, color="grey", lw=0.8)
    # Legends for all panels, beside them: the colours; what the line styles mean.
    if line_colors:
        fig.legend(handles=[Line2D([], [], color=line_colors[name], marker=marker, label=name)
                            for name, marker in zip(lines, markers * len(lines))],
                   loc="outside right upper", fontsize="small")
    else:
        drawn = [s.label for members in lines.values() for _, s in members]
        fig.legend(handles=[Line2D([], [], ls="", marker="o", color=c, label=label)
                            for label, c in colors.items() if label in drawn],
                   loc="outside right upper", fontsize="small", title=_legend_title(sweeps))
    if tested:  # which points are which metric, inside the accuracy panel
        styles = [Line2D([], [], color="grey", ls="-", marker="o", label=f"best val {score}"),
                  Line2D([], [], color="black" if not line_colors else "grey", ls="--", marker="o",
                         markerfacecolor="white", label=f"test {score} (held out)")]
        axes[0].legend(handles=styles, loc="best", fontsize="small")
    return save_figure(fig, path)


def plot_objective(sweeps: list[Sweep], path: Path) -> Optional[Path]:
    """Each setting's objective, its mean with the 95% interval, for sweeps over non-numeric
    settings: a dot and a line, not a bar, since the axis does not start at zero."""
    items = [(sweep, s) for sweep in sweeps for s in sweep.settings if s.summary(sweep.objective).n]
    if not items:
        return None
    colors = setting_colors(sweeps)
    objective = sweeps[0].objective
    fig, axes = figure(height=1.8 + 0.45 * len(items))
    ax = axes[0][0]
    labels, lows, highs = [], [], []
    for i, (sweep, s) in enumerate(reversed(items)):  # the sweep's first setting on top
        sm = s.summary(sweep.objective)
        low, high = _bounds(sm, sweep.objective)
        ax.errorbar([sm.mean], [i], xerr=[[sm.mean - low], [high - sm.mean]], fmt="o", color=colors[s.label],
                    capsize=4, markersize=7)
        verdict = f", {s.verdict.word}" + (f" (p={_cell('p', s.verdict.p)})" if s.verdict.p is not None else "")
        note = f"  {interval(sm, sweep.objective)}  n={sm.n}" + (verdict if s.verdict.verdict else "")
        ax.annotate(note, (high, i), xytext=(4, 0), textcoords="offset points", va="center", fontsize="small")
        labels.append((f"{sweep.label}: " if len(sweeps) > 1 else "") + s.label)
        lows.append(low)
        highs.append(high)
    ax.set_yticks(range(len(labels)), labels)
    low, high = min(lows), max(highs)
    pad = max(high - low, 0.002)
    lowest, highest = _limits(objective)
    # Room for the notes on the right; on the left no value the objective cannot take (an
    # accuracy's axis from -0.086 where an interval reached 0), nor ticks past it on the right.
    ax.set_xlim(max(low - 0.3 * pad, lowest), high + 1.2 * pad)
    ax.set_xticks([t for t in ax.get_xticks() if lowest <= t <= highest and ax.get_xlim()[0] <= t <= ax.get_xlim()[1]])
    ax.set_ylim(-0.7, len(labels) - 0.3)
    start = ax.get_xlim()[0]
    ax.set_xlabel(objective if start == 0 else f"{objective} (the axis starts at {start:.3f}, not 0)")
    repeated = any(sweep.repeated for sweep in sweeps)
    ax.set_title(f"{objective} per setting" + (": mean and 95% interval over seeds" if repeated else ""))
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def figures(sweeps: list[Sweep], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    # Keras' history plot: the training loss beside the validation loss (their distance, overfitting).
    made = [plot_curves(sweeps, "train_loss", "training loss", out / "train_loss.png"),
            plot_curves(sweeps, "val_loss", "validation loss", out / "val_loss.png"),
            plot_curves(sweeps, f"val_{sweeps[0].score}", "validation accuracy" if sweeps[0].score == "acc"
                        else "validation r2", out / f"val_{sweeps[0].score}.png")]
    values = {k: [s.values[k] for sweep in sweeps for s in sweep.settings if k in s.values] for k in swept_keys(sweeps)}
    # A curve against a key needs two of its values (one run's report has each of its overrides once).
    numeric = [k for k, v in values.items() if _is_numeric(v) and len(set(v)) > 1]
    for key in numeric:
        made.append(plot_against(sweeps, key, out / f"against_{key.rsplit('.', 1)[-1]}.png"))
    if not numeric:  # one axis per objective: sweeps judged by different ones get one figure each
        curves = {p.name for p in made if p is not None}
        for objective in dict.fromkeys(s.objective for s in sweeps):
            # report.objective=val_loss (or val_acc) must not take the per-epoch curves' file
            name = f"{objective}.png" if f"{objective}.png" not in curves else f"{objective}_per_setting.png"
            made.append(plot_objective([s for s in sweeps if s.objective == objective], out / name))
    return [p for p in made if p is not None]


# ---------------------------------------------------------------------------- the report


class Report(NamedTuple):
    text: str  # the answer and the table of summary.md; "" when there was no run to report
    written: list[Path]
    runs: list[Run]


def _sweep_text(sweep: Sweep, heading: Optional[str]) -> str:
    lines = [answer(sweep), "", settings_table(sweep, sweep.settings)]
    if sweep.best_over:
        picked = best_of(sweep)
        over = ", ".join(sweep.best_over)
        lines += [f"At each setting's best {over} (chosen on the same runs, so a little optimistic):", "",
                  answer(sweep, picked), "", settings_table(sweep, picked)]
    text = "\n".join(lines)
    return f"## {heading}\n\n{text}" if heading else text


def build(paths: list[Path], out: Optional[Path] = None, plots: bool = True, force: bool = False,
          judged_by: Optional[dict] = None) -> Report:
    """Write summary.csv, summary.md, runs.csv and the figures; return the text printed at the end
    of a sweep, the files written and the runs they were made from. Sweeps held fixed differently
    on their command lines are refused unless `force` (check_comparable). `judged_by`: report.*
    to judge by instead of the runs' own (judge_by())."""
    sweeps = read_sweeps(paths, judged_by)
    runs = [run for sweep in sweeps for run in sweep.runs]
    if not runs:
        return Report("", [], runs)
    differences = check_comparable(sweeps, force) if len(sweeps) > 1 else {}
    out = Path(out) if out else (sweeps[0].path if len(sweeps) == 1 else _compare_dir(sweeps))
    out.mkdir(parents=True, exist_ok=True)
    several = len(sweeps) > 1
    parts = [_sweep_text(sweep, _column(sweep, sweeps) if several else None) for sweep in sweeps]
    objective = "each sweep's objective (in its column)" if _mixed(sweeps) else sweeps[0].objective
    if several:
        across = "" if _mixed(sweeps) else "; the last column judges each row across the sweeps, paired by seed"
        parts.insert(0, f"{objective} per setting (mean ± 95% interval, verdict within each sweep{across}):\n\n"
                        + comparison_table(sweeps))
        if "first_grad_norm" in _metrics_of(sweeps):  # diagnostics=true: why a setting falls behind, in numbers
            score = "accuracy" if sweeps[0].score == "acc" else "R²"
            parts[1:1] = [f"{metric} per setting ({title.format(score=score)}; mean ± 95% interval):\n\n"
                          + comparison_table(sweeps, metric) for metric, title in DIAGNOSTIC_PIVOTS]
    text = "\n\n".join(parts)
    title = " vs ".join(s.label for s in sweeps)
    n_settings = sum(len(s.settings) for s in sweeps)
    intro = (f"{len(runs)} runs, {n_settings} settings; cells are mean ± half-width of the 95% interval (t "
             f"distribution) over a setting's seeds; verdicts compare each setting with the best mean of "
             f"{objective} ({_test_named(sweeps)}).")
    header = "\n\n".join(h for h in (intro, _fixed_header(sweeps, differences)) if h)
    write_atomic(out / "summary.md", f"# {title}\n\n{header}\n\n{text}\n".encode())
    rows = setting_rows(sweeps)
    write_csv(out / "summary.csv", list(rows[0]), rows)
    per_run = run_rows(sweeps)
    write_csv(out / "runs.csv", list(per_run[0]), per_run)
    written = [out / "summary.csv", out / "summary.md", out / "runs.csv"]
    if plots:
        written += figures(sweeps, out)
    if any(src == "command" for cells in differences.values() for _, src in cells):
        # What --force let through, printed too (summary.md has it in its header).
        text = _differences_text(sweeps, differences) + "\n\n" + text
    return Report(text, written, runs)


def _fixed_header(sweeps: list[Sweep], differences: dict[str, list[tuple[str, str]]]) -> str:
    """summary.md's word on what was held fixed: the settings every sweep set alike, and a table
    of those set differently."""
    shared = {k: v for k, v in sweeps[0].fixed.items()
              if k not in differences and all(sweep.fixed.get(k) == v for sweep in sweeps[1:])}
    lines = [f"Held fixed: {fixed_text(shared) or 'nothing'}; everything else at mlpbench's defaults "
             "(each run's .hydra/config.yaml has them all)."]
    if differences:
        lines += ["", _differences_text(sweeps, differences)]
    return "\n".join(lines)


def _differences_text(sweeps: list[Sweep], differences: dict[str, list[tuple[str, str]]]) -> str:
    """The settings the sweeps held fixed differently, a row each, a sweep a column."""
    rows = [{"setting": k, **{sweep.label: f"{value}" + (" (command line)" if source == "command" else "")
                              for sweep, (value, source) in zip(sweeps, cells)}}
            for k, cells in differences.items()]
    forced = any(src == "command" for cells in differences.values() for _, src in cells)
    return ("Held fixed differently by the sweeps (a difference set on a command line was let through with --force):"
            if forced else "Held fixed differently by the sweeps (their presets: what they compare):") + \
        "\n\n" + markdown(list(rows[0]), rows, _cell)


SEQUENTIAL_NOTE = ("seed=auto added seeds in rounds, so the test is one that stays valid however often it is "
                   "looked at: the paired t-test's e-value (Lai 1976; Grunwald et al. 2024), p = m / e for m "
                   "pairs of settings; `stopped` says why a setting got no more seeds")
FIXED_NOTE = "paired t-test over shared seeds, else Welch; p Holm-adjusted over every pair of settings"


def _test_named(sweeps: list[Sweep]) -> str:
    kinds = {bool(s.rounds) for s in sweeps}
    if kinds == {True}:
        return SEQUENTIAL_NOTE
    if kinds == {False}:
        return FIXED_NOTE
    return f"sweeps made with seed=auto: {SEQUENTIAL_NOTE}; the others: {FIXED_NOTE}"


class Tables(NamedTuple):
    """A sweep's numbers as pandas DataFrames (`load`)."""

    runs: Any  # a row per run: runs.csv's columns
    settings: Any  # a row per setting: summary.csv's columns (means, intervals, verdicts)
    epochs: Any  # a row per run and epoch: its training and validation loss and accuracy


def load(*dirs) -> Tables:
    """The runs, the per-setting summary and the per-epoch history of one or more sweeps, as pandas
    DataFrames, for analysis of one's own:

        from mlpbench.report import load
        runs, settings, epochs = load("outputs/multirun/2026-12-05_02-29-37")
        epochs.groupby(["model.depth", "epoch"]).val_loss.mean().unstack(0).plot()

    A DIR is what `python -m mlpbench.report` takes: a sweep folder, a folder of sweeps (its
    newest), a run's folder. Nothing is written."""
    import pandas as pd

    sweeps = read_sweeps([Path(d) for d in dirs])
    if not any(sweep.runs for sweep in sweeps):
        raise FileNotFoundError(f"no run with a result.json in {', '.join(map(str, dirs))}")
    keys, several = swept_keys(sweeps), len(sweeps) > 1
    history = []
    for sweep in sweeps:
        for s in sweep.settings:
            for run in s.runs:
                h = run.history
                for e in range(len(h.get("train_loss") or [])):
                    row: dict[str, Any] = {"sweep": sweep.label} if several else {}
                    row.update({k: s.values.get(k, "-") for k in keys})
                    row.update({"seed": run.seed, "run": run.name, "epoch": e + 1})
                    row.update({m: _number((h.get(m) or [None] * (e + 1))[e]) if e < len(h.get(m) or []) else None
                                for m in ("train_loss", f"train_{sweep.score}", "val_loss", f"val_{sweep.score}")})
                    history.append(row)
    frames = [pd.DataFrame(run_rows(sweeps)), pd.DataFrame(setting_rows(sweeps)), pd.DataFrame(history)]
    for frame in frames:
        for key in keys:  # a numeric swept key as numbers (depth 2 before 10)
            if key in frame:
                try:
                    frame[key] = pd.to_numeric(frame[key])
                except (ValueError, TypeError):
                    pass
    return Tables(*frames)


def _compare_dir(sweeps: list[Sweep]) -> Path:
    name = "_vs_".join(s.label.split(" ")[0] for s in sweeps)[:120]
    return Path("outputs") / "compare" / f"{name}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"


def sweeper_report(folder: Path, config: Optional[DictConfig] = None):
    """The report of a sweep whose sweeper makes its own (`report_sweep`: the search's, which
    lives above this module and is reached only through its sweeper's class), as a function that
    returns False where the sweep failed; None for the runs' own report. `config`: the sweep's,
    else read from the folder."""
    config = read_sweep_config(folder) if config is None else config
    if config is None:
        return None
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    target = str(OmegaConf.select(config, "hydra.sweeper._target_", default="", throw_on_resolution_failure=False))
    if not trusted(target):  # a folder someone sent must not name code to import
        return None
    try:
        report_sweep = getattr(get_class(target), "report_sweep", None)
    except Exception:  # a sweeper not installed here: the runs' own report
        return None
    return None if report_sweep is None else (lambda: report_sweep(Path(folder), config))


def judge_by(given: list[str]) -> dict:
    """report.* overrides given to the report (`report.objective=val_loss`), checked as a run
    checks them, as the values read_sweep judges by."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from mlpbench.overrides import did_you_mean, parse
    from mlpbench.schema import ReportConfig

    cfg, judged = OmegaConf.structured(ReportConfig), {}
    try:
        parsed = parse(given)
    except Exception as e:  # Hydra's override grammar: a value it cannot read
        raise ConfigError(f"{' '.join(given)}: {' '.join(str(e).split())}") from None
    for o in parsed:
        key = o.key_or_group.removeprefix("report.")
        if key not in ReportConfig.__dataclass_fields__:
            raise ConfigError(f"{o.input_line}: the report takes report.objective, report.min_difference and "
                              "report.best_over" + did_you_mean(o.key_or_group, [f"report.{k}" for k in
                                                                                 ReportConfig.__dataclass_fields__]))
        if o.is_sweep_override():
            raise ConfigError(f"{o.input_line}: one value; a report judges by one (report each apart)")
        allowed = {"objective": f"one of {', '.join(m.value for m in Metric)}",
                   "min_difference": "a number > 0 (in the objective's units), or null",
                   "best_over": "a list of keys the sweep varies, e.g. [optim.lr]"}[key]
        try:
            cfg[key] = o.value()
        except OmegaConfBaseException:
            raise ConfigError(f"{o.input_line}: must be {allowed}") from None
        if key == "min_difference" and cfg.min_difference is not None and not cfg.min_difference > 0:
            raise ConfigError(f"{o.input_line}: must be {allowed}")
        value = cfg[key]
        judged[key] = value.value if isinstance(value, Metric) else (
            list(value) if key == "best_over" else value)
    return judged


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlpbench.report",
        description="Summarise sweeps as summary.csv, summary.md, runs.csv and PNG figures.",
        epilog="report.objective=M, report.min_difference=D and report.best_over=[KEY] after the folders judge "
               "the runs made by these instead of by what their runs were given, without training again "
               "(python -m mlpbench.report outputs/depth_linear report.objective=val_loss).")
    parser.add_argument("dirs", nargs="+", type=Path,
                        help="sweep folders, or folders of sweeps (their newest is used); then any report.* "
                             "to judge them by")
    parser.add_argument("--out", type=Path, help="where to write (default: the sweep folder; for "
                        "several sweeps outputs/compare/<names>_<time>)")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    parser.add_argument("--force", action="store_true", help="compare sweeps even where their command lines held "
                        "settings fixed differently (trainer.max_epochs=3 in one): the report lists the differences")
    args = parser.parse_args(argv)
    if args.out is not None and (not str(args.out).strip() or (args.out.exists() and not args.out.is_dir())):
        parser.error(f"--out {args.out}: must name a folder" + (" (it is a file)" if str(args.out).strip() else ""))
    # report.* given after the folders (a folder of that name, if one exists, is a folder).
    given = [str(d) for d in args.dirs if str(d).startswith("report.") and "=" in str(d) and not d.exists()]
    args.dirs = [d for d in args.dirs if str(d) not in given]
    try:
        if not args.dirs:
            raise ConfigError(f"{' '.join(given)}: give the sweep folders to judge first")
        judged_by = judge_by(given) if given else None
        own_report = sweeper_report(args.dirs[0]) if len(args.dirs) == 1 else None
        if own_report is not None:  # a search's folder: its sweeper's report (mlpbench.sweep.SweepSummary)
            if judged_by:
                raise ConfigError(f"{' '.join(given)}: a search's report judges its trials by its tune.objective")
            own_report()
            return 0
        report = build(args.dirs, args.out, plots=not args.no_plots, force=args.force, judged_by=judged_by)
    except (FileNotFoundError, ConfigError) as e:
        parser.error(str(e))
    except OSError as e:  # --out below a file, or a folder that cannot be written
        parser.error(f"{'--out ' + str(args.out) + ': ' if args.out else ''}cannot write {e.filename}: {e.strerror}")
    if not report.written:
        deeper = sorted({p.parts[len(Path(d).parts)] for d in args.dirs for p in Path(d).glob(f"*/*/*/{RESULT_FILE}")})
        hint = f"; give a sweep's folder or a folder of sweeps, e.g. {Path(args.dirs[0]) / deeper[0]}" if deeper else ""
        print(f"mlpbench.report: no sweep in {', '.join(map(str, args.dirs))}{hint}", file=sys.stderr)
        return 1
    folders = sorted({str(p.parent) for p in report.written})
    print_out(f"{report.text}\nWrote {', '.join(p.name for p in report.written)} in {', '.join(folders)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
