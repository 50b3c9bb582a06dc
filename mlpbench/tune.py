"""Hyperparameter search, Keras Tuner's job done with Optuna: `hydra/sweeper=tune`
(`python -m mlpbench +experiment=tune_units`).

The sweeper asks an Optuna study for trials (ask/tell), runs each one as an ordinary mlpbench
run through Hydra's launcher (its own folder, result.json and TensorBoard logs), and tells the
study how it ended. Inside a trial, optuna-integration's Lightning callback reports each epoch's
`tune.objective` and the study's pruner (Hyperband by default) stops poor trials early.

- The study lives in SQLite in the sweep folder (study.db), so the same command continues it.
  A trial still running when the tuner died is marked failed and tried again, same parameters.
- `tune.n_jobs` > 1: trials run in batches of that many processes (hydra/launcher=joblib, unless
  another launcher was chosen, which then gets the batches).
- At the end: trials.csv, trials.md, best.yaml, best_config.yaml and figures (`write_report`).

Hydra imports this module at every start (hydra_plugins/mlpbench_tuner): optuna, torch and
Lightning are imported only where a search or a trial needs them.
"""

from __future__ import annotations

import copy
import fcntl
import logging
import math
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict, read_write

from mlpbench.results import flat_keys, read_result
from mlpbench.schema import ConfigError, Objective, Pruner, Sampler, validate

log = logging.getLogger("mlpbench")
STUDY_FILE = "study.db"
# Settings that may change between runs of one study: how many trials, how many at once, points
# to try first, and what the console shows.
RESUMABLE_CHANGES = ("tune.n_trials", "tune.n_jobs", "tune.enqueue", "tune.trial", "resume",
                     "trainer.enable_progress_bar")
# Points tried already, proposed in a row, after which the sampler is taken to have converged.
MAX_REPEATS = 100
_ABSENT = object()


# ---------------------------------------------------------------------------- the search space


@dataclass(frozen=True)
class Dimension:
    """One search dimension: a config key (model.units) or config group (optim)."""

    key: str
    kind: str  # int, float or categorical
    low: Any = None
    high: Any = None
    step: Any = None
    log: bool = False
    choices: tuple = ()
    label: str = ""

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "int":
            return IntDistribution(self.low, self.high, step=self.step or 1, log=self.log)
        if self.kind == "float":
            return FloatDistribution(self.low, self.high, step=self.step, log=self.log)
        return CategoricalDistribution(self.choices)

    def override(self, value: Any) -> str:
        return f"{self.key}={_override_value(value)}"

    def probes(self) -> list[Any]:
        """Values that show whether every value of the dimension composes: its ends, or each choice."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]

    def size(self) -> Optional[int]:
        """How many values a full grid takes; None for a continuous range."""
        if self.kind == "categorical":
            return len(self.choices)
        if self.kind == "int":
            return (self.high - self.low) // (self.step or 1) + 1
        return None if self.step is None else int(round((self.high - self.low) / self.step)) + 1


def _override_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value) if isinstance(value, float) else str(value)


def _choice(value: Any) -> Any:
    # Optuna's choices are scalars; a list (units=[256,128,64]) is kept as its override text.
    if isinstance(value, (ListConfig, DictConfig)):
        value = OmegaConf.to_container(value)
    if isinstance(value, (list, dict)):
        return str(value).replace(" ", "").replace("'", "")
    return value


SPACE_HELP = ("a search dimension is {type: int, low: L, high: H, step: S}, {type: float, low: L, high: H, "
              "log: true}, or {type: categorical, choices: [A, B]}; `label` is optional")


def _dimension(key: str, spec: Mapping) -> Dimension:
    name = f"tune.space.{key}"
    kind = spec.get("type")
    allowed = {"int": {"low", "high", "step", "log"}, "float": {"low", "high", "step", "log"},
               "categorical": {"choices"}}
    if kind not in allowed:
        raise ConfigError(f"{name}.type={kind}: must be one of int, float, categorical")
    unknown = set(spec) - allowed[kind] - {"type", "label"}
    if unknown:
        raise ConfigError(f"{name}: {', '.join(sorted(unknown))} not allowed with type {kind}; {SPACE_HELP}")
    label = str(spec.get("label") or key)
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, (list, ListConfig)) or not choices:
            raise ConfigError(f"{name}.choices={choices}: must be a non-empty list")
        return Dimension(key, kind, choices=tuple(_choice(c) for c in choices), label=label)
    number = int if kind == "int" else (int, float)
    low, high, step, log_scale = spec.get("low"), spec.get("high"), spec.get("step"), bool(spec.get("log", False))
    for field, value in (("low", low), ("high", high)):
        if not isinstance(value, number) or isinstance(value, bool):
            raise ConfigError(f"{name}.{field}={value}: must be {'an integer' if kind == 'int' else 'a number'}")
    if not low < high:
        raise ConfigError(f"{name}: low={low} must be below high={high}")
    if step is not None and (not isinstance(step, number) or isinstance(step, bool) or step <= 0):
        raise ConfigError(f"{name}.step={step}: must be a positive {'integer' if kind == 'int' else 'number'}")
    if log_scale and low <= 0:
        raise ConfigError(f"{name}: log=true needs low > 0, not {low}")
    if log_scale and step not in (None, 1):
        raise ConfigError(f"{name}: log=true cannot be combined with step={step}")
    if kind == "float":
        low, high, step = float(low), float(high), None if step is None else float(step)
    return Dimension(key, kind, low, high, step, log_scale, label=label)


def parse_space(space: Mapping) -> list[Dimension]:
    """`tune.space`, nested as the config is, as a list of dimensions; ConfigError if malformed."""
    dims: list[Dimension] = []

    def walk(node: Mapping, path: str) -> None:
        for name, spec in node.items():
            key = f"{path}.{name}" if path else str(name)
            if isinstance(spec, Mapping) and "type" in spec:
                dims.append(_dimension(key, spec))
            elif isinstance(spec, Mapping) and spec:
                walk(spec, key)
            else:
                raise ConfigError(f"tune.space.{key}={spec}: {SPACE_HELP}")

    walk(space, "")
    if not dims:
        raise ConfigError("tune.space is empty: give at least one search dimension, e.g. "
                          "tune.space.model.units={type:int,low:32,high:512,step:32}")
    return dims


def _flat(node: Any) -> dict[str, Any]:
    """{model: {units: 128}} -> {"model.units": 128}; dotted keys are kept as they are."""
    if isinstance(node, (DictConfig, ListConfig)):
        node = OmegaConf.to_container(node)
    return flat_keys(node, _choice)


def grid_size(dims: Sequence[Dimension]) -> Optional[int]:
    sizes = [d.size() for d in dims]
    return None if None in sizes else math.prod(sizes)


# ---------------------------------------------------------------------------- the study


def storage_url(sweep_dir: Path) -> str:
    return f"sqlite:///{Path(sweep_dir).resolve() / STUDY_FILE}"


def _storage(sweep_dir: Path):
    import optuna

    # Parallel trials write their epochs to the same file: wait for SQLite's lock, don't fail.
    return optuna.storages.RDBStorage(storage_url(sweep_dir), engine_kwargs={"connect_args": {"timeout": 60}})


def make_pruner(tune: DictConfig, max_epochs: int):
    import optuna

    pruner = Pruner(tune.pruner)
    if pruner is Pruner.hyperband:
        # Epochs are Optuna steps 0 .. max_epochs-1.
        return optuna.pruners.HyperbandPruner(min_resource=tune.min_resource, max_resource=max_epochs,
                                              reduction_factor=tune.reduction_factor)
    if pruner is Pruner.successive_halving:
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=tune.min_resource,
                                                      reduction_factor=tune.reduction_factor)
    if pruner is Pruner.median:
        return optuna.pruners.MedianPruner(n_warmup_steps=tune.min_resource)
    return optuna.pruners.NopPruner()


def _make_sampler(tune: DictConfig, seed: int):
    import optuna

    if Sampler(tune.sampler) is Sampler.random:
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _objective(tune: DictConfig) -> str:
    return Objective(tune.objective).value


def _direction(objective: str) -> str:
    return "minimize" if objective.endswith("loss") else "maximize"


def _search_settings(config: DictConfig) -> dict[str, Any]:
    """What a study searched (everything but hydra.* and the settings a rerun may change)."""
    job = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    settings = _flat(OmegaConf.to_container(job, resolve=True, enum_to_str=True))
    return {k: v for k, v in settings.items() if not k.startswith(RESUMABLE_CHANGES)}


# ---------------------------------------------------------------------------- inside a trial


def trial_callbacks(cfg: DictConfig, sweep_dir: Path, run_dir: Path) -> list:
    """The Lightning callback that reports each epoch to trial `tune.trial` and prunes it."""
    import optuna
    from optuna_integration import PyTorchLightningPruningCallback

    if not (Path(sweep_dir) / STUDY_FILE).is_file():
        raise ConfigError(f"tune.trial={cfg.tune.trial}: set by the tuner for its own trials; "
                          f"there is no study in {sweep_dir}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(sweep_dir)
    study = optuna.load_study(study_name=cfg.tune.study_name, storage=storage,
                              sampler=optuna.samplers.RandomSampler(),  # the tuner samples, not the trial
                              pruner=make_pruner(cfg.tune, cfg.trainer.max_epochs))
    # The trial the tuner asked for, in another process (Optuna's storage API).
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name),
                                                               cfg.tune.trial)
    trial = optuna.trial.Trial(study, trial_id)
    trial.set_user_attr("run", run_dir.name)  # known even if the tuner dies before the trial ends

    class TrialPruning(PyTorchLightningPruningCallback):
        """optuna-integration's callback; a pruned trial ends like a finished run, with status
        "pruned", instead of as an exception (mlpbench.run.train reads `stop_status`)."""

        stop_status: Optional[str] = None

        def on_validation_end(self, trainer, pl_module) -> None:
            if pl_module.current_epoch + 1 >= trainer.max_epochs and not trainer.sanity_checking:
                # The last epoch: stopping saves nothing, and the trial completes with its value.
                score = trainer.callback_metrics.get(self.monitor)
                if score is not None:
                    self._trial.report(score.item(), step=pl_module.current_epoch)
                return
            try:
                super().on_validation_end(trainer, pl_module)
            except optuna.TrialPruned:
                self.stop_status = "pruned"
                trainer.should_stop = True

    return [TrialPruning(trial, monitor=_objective(cfg.tune))]


# ---------------------------------------------------------------------------- the sweeper


class TuneSweeper(Sweeper):
    """Hydra's sweeper for `tune.*`; registered by hydra_plugins/mlpbench_tuner."""

    def __init__(self, **_: Any) -> None:
        self.config: Optional[DictConfig] = None
        self.launcher = None
        self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        launcher_config = config
        if config.tune.n_jobs > 1 and config.hydra.launcher._target_.endswith("BasicLauncher"):
            from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf

            launcher_config = copy.deepcopy(config)
            with read_write(launcher_config), open_dict(launcher_config):
                launcher_config.hydra.launcher = OmegaConf.structured(JobLibLauncherConf(n_jobs=config.tune.n_jobs))
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=launcher_config)

    def sweep(self, arguments: list[str]) -> Any:
        try:
            return Search(self, arguments).run()
        except ConfigError as e:
            print(f"mlpbench: error: {e}", file=sys.stderr)
            sys.exit(2)


class Search:
    """One run of the tuner over a study: ask, launch, tell, until tune.n_trials have ended."""

    def __init__(self, sweeper: TuneSweeper, arguments: list[str]):
        self.sweeper = sweeper
        self.config = sweeper.config
        self.tune = self.config.tune
        self.arguments = list(arguments)
        self.dims = parse_space(self.tune.space)
        self.sweep_dir = Path(self.config.hydra.sweep.dir)
        self.objective = _objective(self.tune)
        self.distributions = {d.key: d.distribution() for d in self.dims}
        self.grid = grid_size(self.dims)
        self.repeats = 0  # points tried already that the sampler proposed, in a row

    # -- setting up
    def _check_arguments(self) -> None:
        parser = OverridesParser.create(config_loader=self.sweeper.hydra_context.config_loader)
        for override in parser.parse_overrides(self.arguments):
            if override.is_sweep_override():
                raise ConfigError(f"{override.input_line}: the tuner chooses the values it tries; make "
                                  f"{override.get_key_element()} a search dimension in tune.space instead")

    def _check_space(self) -> None:
        """Compose the config at each end of each dimension (each choice of a categorical one),
        so that a value no run could use stops the search before it starts."""
        loader = self.sweeper.hydra_context.config_loader
        for dim in self.dims:
            if OmegaConf.select(self.config, dim.key, default=_ABSENT) is _ABSENT:
                raise ConfigError(f"tune.space.{dim.key}: {dim.key} is not a config key or group")
            for value in dim.probes():
                try:
                    cfg = loader.load_sweep_config(self.config, [*self.arguments, dim.override(value)])
                    validate(cfg)
                except Exception as e:  # Hydra's own errors and ours read the same to a user
                    message = " ".join(str(e).split())
                    raise ConfigError(f"tune.space.{dim.key}: the value {value} cannot run: {message}") from None

    def _lock(self):
        handle = open(self.sweep_dir / ".tune.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another search is running on the study in {self.sweep_dir}; wait for it to end, "
                              "or choose another tune.study_name") from None
        return handle

    def _open_study(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            storage=_storage(self.sweep_dir), study_name=self.tune.study_name,
            direction=_direction(self.objective), load_if_exists=True,
            pruner=make_pruner(self.tune, self.config.trainer.max_epochs))
        # Seeded by how far the study has come: a continued study draws new points, not the
        # first run's again, and the same commands still give the same search.
        study.sampler = _make_sampler(self.tune, self.config.seed + len(study.get_trials(deepcopy=False)))
        settings = _search_settings(self.config)
        saved = study.user_attrs.get("settings")
        if saved is None:
            study.set_user_attr("settings", settings)
        elif saved != settings:
            changed = sorted(k for k in set(saved) | set(settings) if saved.get(k, "-") != settings.get(k, "-"))
            shown = ", ".join(f"{k}: {saved.get(k, '-')} -> {settings.get(k, '-')}" for k in changed[:6])
            raise ConfigError(f"{self.sweep_dir} holds the study {self.tune.study_name!r} of another search "
                              f"({shown}{', ...' if len(changed) > 6 else ''}). Only tune.n_trials, tune.n_jobs "
                              "and tune.enqueue may change when a study is continued: choose another "
                              "tune.study_name, or delete the folder to start again")
        return study

    def _recover(self, study) -> None:
        """Trials left running by a tuner that died: failed, and tried again first."""
        from optuna.trial import TrialState

        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            _retry(study, trial)
            log.warning("Trial %d was cut off by the end of an earlier search: marked failed, tried again",
                        trial.number)

    # -- the loop
    def run(self) -> Any:
        self._check_arguments()
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        lock = self._lock()
        try:
            self._check_space()
            study = self._open_study()
            OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")  # what the report reads
            for point in self.tune.enqueue:
                study.enqueue_trial(_flat(point), skip_if_exists=True)
            self._recover(study)
            ended = _ended(study)
            log.info("Search %s in %s: %s; %d of %d trials ended already", self.tune.study_name, self.sweep_dir,
                     ", ".join(d.key for d in self.dims) + (f" ({self.grid} grid points)" if self.grid else ""),
                     ended, self.tune.n_trials)
            while ended < self.tune.n_trials:
                if self._exhausted(study):
                    log.info("Every one of the %d grid points has been tried: the search ends here", self.grid)
                    break
                if self.repeats >= MAX_REPEATS:
                    log.warning("The sampler proposed only points tried already, %d times in a row: the search "
                                "ends here, with %d trials", self.repeats, ended)
                    break
                self._batch(study, min(self.tune.n_jobs, self.tune.n_trials - ended), ended)
                ended = _ended(study)
        finally:
            lock.close()
        return None

    def _exhausted(self, study, asked: Sequence = ()) -> bool:
        """Every point of a finite grid has been tried (or is in the batch being asked for)."""
        return self.grid is not None and len(_tried_points(study) | {_point(t) for t in asked}) >= self.grid

    def _batch(self, study, size: int, ended: int) -> None:
        trials, batch = [], []
        while len(trials) < size and self.repeats < MAX_REPEATS:
            trial = study.ask(self.distributions)
            overrides = [d.override(trial.params[d.key]) for d in self.dims]
            tried = " ".join(overrides)
            if _reuse_earlier(study, trial):
                # As Keras Tuner, a point is trained once: a repeat costs nothing and is not counted.
                self.repeats += 1
                log.info("Trial %d: %s was tried in trial %d: result reused, nothing trained", trial.number,
                         tried, trial.user_attrs["same_as"])
                if self._exhausted(study, trials):
                    break
                continue
            self.repeats = 0
            ended += 1
            log.info("Trial %d (%d of %d): %s", trial.number, ended, self.tune.n_trials, tried)
            trials.append(trial)
            batch.append([*self.arguments, *overrides, f"tune.trial={trial.number}"])
        if not trials:
            return
        try:
            returns = self.sweeper.launcher.launch(batch, initial_job_idx=trials[0].number)
        except (KeyboardInterrupt, SystemExit):
            for trial in trials:
                _retry(study, trial)
            write_report(self.sweep_dir, self.config, quiet=True)
            log.warning("Search interrupted; trial(s) %s will be tried again. Run the same command to continue "
                        "the study in %s", ", ".join(str(t.number) for t in trials), self.sweep_dir)
            raise
        except Exception as e:  # a launcher's worker died: these trials failed, the search goes on
            log.error("Trials %s: the launcher failed: %s: %s", [t.number for t in trials], type(e).__name__, e)
            returns = [None] * len(trials)
        for trial, job in zip(trials, returns):
            run_dir = Path(job.hydra_cfg.hydra.runtime.output_dir) if job is not None and job.hydra_cfg else None
            _tell(study, trial, run_dir, self.objective)


def _reuse_earlier(study, trial) -> bool:
    """A trial with the parameters of one that has ended would train the same network again
    (same seed): it takes that trial's epochs and outcome instead (Optuna's FAQ on duplicates)."""
    from optuna.trial import TrialState

    for earlier in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if earlier.params == trial.params and "same_as" not in earlier.user_attrs:
            for step, value in sorted(earlier.intermediate_values.items()):
                trial.report(value, step)
            trial.set_user_attr("same_as", earlier.number)
            trial.set_user_attr("epochs", 0)
            trial.set_user_attr("seconds", 0.0)
            study.tell(trial, earlier.value if earlier.state == TrialState.COMPLETE else None, state=earlier.state)
            return True
    return False


def _retry(study, trial) -> None:
    from optuna.trial import TrialState

    study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})


def _ended(study) -> int:
    """Trials that count toward tune.n_trials: trained to completion or pruning, or failed and
    not tried again; not the repeats of a point tried already."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    return sum((t.state in (TrialState.COMPLETE, TrialState.PRUNED) and "same_as" not in t.user_attrs)
               or (t.state == TrialState.FAIL and t.number not in retried) for t in trials)


def _tried_points(study) -> set:
    from optuna.trial import TrialState

    return {_point(t) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))}


def _point(trial) -> tuple:
    return tuple(sorted(trial.params.items()))


def _tell(study, trial, run_dir: Optional[Path], objective: str) -> None:
    """Tell the study how a trial's run ended, from its result.json."""
    from optuna.trial import TrialState

    result = (read_result(run_dir) if run_dir else None) or {}
    status = result.get("status", "failed")
    values = [v for v in (result.get("history") or {}).get(objective, []) if v is not None and math.isfinite(v)]
    if run_dir is not None:
        trial.set_user_attr("run", run_dir.name)
    trial.set_user_attr("status", status)
    trial.set_user_attr("epochs", result.get("epochs", 0))
    trial.set_user_attr("seconds", result.get("seconds"))
    if status == "pruned" or (status == "diverged" and not values):
        # A net that diverged before its first validation is as hopeless as a pruned one.
        study.tell(trial, state=TrialState.PRUNED)
    elif status in ("ok", "diverged") and values:
        # As Keras Tuner: a trial scores its best epoch.
        study.tell(trial, (min if _direction(objective) == "minimize" else max)(values))
    else:
        study.tell(trial, state=TrialState.FAIL)
        error = (result.get("error") or {})
        log.error("Trial %d failed (%s): %s %s", trial.number, status, error.get("type", ""), error.get("message", ""))


# ---------------------------------------------------------------------------- the report


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
                     "" if t.user_attrs.get("status") in (None, "ok", "pruned") else t.user_attrs["status"]),
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

    from mlpbench.report import markdown, write_atomic, write_csv

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=config.tune.study_name, storage=_storage(sweep_dir))
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs["retry_of"]: t.number for t in trials if "retry_of" in t.user_attrs}
    repeats = {t.number for t in trials if "same_as" in t.user_attrs}
    dims = parse_space(config.tune.space)
    objective = _objective(config.tune)
    maximize = _direction(objective) == "maximize"
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
        f"# Search {config.tune.study_name}: {objective} ({_direction(objective)}), best epoch of each trial\n\n"
        f"{len(trained)} trials: {summary}.\n\n{markdown(columns, rows)}").encode())
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
        top = markdown(columns[:-1], trained[:10])
        print("\n".join(["", f"Trials, best first ({min(10, len(trained))} of {len(trained)}; all in trials.md):",
                         top, *lines, f"Report: {', '.join(p.name for p in written)} in {sweep_dir}",
                         f"Compare the trials: tensorboard --logdir {sweep_dir}"]))
    return [r for r in rows if r["state"] == "failed" and r["trial"] not in retried]


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _write_best(sweep_dir: Path, best, objective: str) -> list[Path]:
    """best.yaml (the trial, its value and parameters) and best_config.yaml: the whole config
    of its run, to train it again with
    python -m mlpbench --config-dir SWEEP_DIR --config-name best_config [trainer.max_epochs=50]."""
    from mlpbench.report import write_atomic

    summary = {"trial": best.number, objective: best.value, "params": dict(best.params),
               "run": best.user_attrs.get("run")}
    written = [sweep_dir / "best.yaml"]
    write_atomic(written[0], OmegaConf.to_yaml(OmegaConf.create(summary)).encode())
    result = read_result(sweep_dir / best.user_attrs["run"]) if best.user_attrs.get("run") else None
    if result and result.get("config"):
        config = dict(result["config"])
        config["tune"] = {**config.get("tune", {}), "trial": None}
        text = ("# The best trial's whole config. Train it again (more epochs: add trainer.max_epochs=N):\n"
                f"#   python -m mlpbench --config-dir {sweep_dir} --config-name best_config\n"
                "defaults:\n  - base_config\n  - _self_\n\n"
                "hydra:\n  run:\n    dir: outputs/run/${now:%Y-%m-%d}/${now:%H-%M-%S}\n\n"
                + OmegaConf.to_yaml(OmegaConf.create(config)))
        written.append(sweep_dir / "best_config.yaml")
        write_atomic(written[-1], text.encode())
    return written


def _figures(study, config: DictConfig, sweep_dir: Path, rows: list[dict[str, Any]], grid: Optional[int]) -> list[Path]:
    from functools import partial

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis
    from optuna.exceptions import ExperimentalWarning
    from optuna.importance import FanovaImportanceEvaluator

    from mlpbench.report import save_figure

    made = []
    objective = _objective(config.tune)
    plots = {  # name: (draw, title)
        "optimization_history.png": (vis.plot_optimization_history, f"{objective} of each trial, and the best so far"),
        "param_importances.png": (partial(vis.plot_param_importances,
                                          evaluator=FanovaImportanceEvaluator(seed=0)),
                                  f"how much each parameter explains of {objective} (fANOVA)"),
    }
    # Optuna's plots switch matplotlib to its ggplot style: keep that to them.
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", ExperimentalWarning)
        for name, (plot, title) in plots.items():
            try:
                ax = plot(study)
            except Exception as e:  # e.g. importances need two completed trials that differ
                plt.close("all")
                log.info("%s not drawn: %s", name, e)
                continue
            ax.set_title(title)
            ax.figure.set_size_inches(8, 4.8)
            ax.figure.tight_layout()
            made.append(save_figure(ax.figure, sweep_dir / name))
    made.append(_plot_curves(study, rows, objective, sweep_dir / "curves.png"))
    made.append(_plot_epochs(rows, int(config.trainer.max_epochs), grid, sweep_dir / "epochs.png"))
    return made


STATE_COLORS = {"complete": "tab:green", "pruned": "tab:orange", "failed": "tab:red", "running": "tab:purple"}


def _plot_curves(study, rows: list[dict[str, Any]], objective: str, path: Path) -> Path:
    """Each trained trial's objective per epoch, by how it ended: where Hyperband stopped trials."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from mlpbench.report import save_figure

    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    best = study.best_trial.number if any(r["state"] == "complete" for r in rows) else None
    fig, ax = plt.subplots(figsize=(8, 4.8))
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
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_epochs(rows: list[dict[str, Any]], max_epochs: int, grid: Optional[int], path: Path) -> Path:
    """Epochs trained as the search goes, against the same trials unpruned and a full grid."""
    import matplotlib.pyplot as plt

    from mlpbench.report import save_figure

    rows = sorted(rows, key=lambda r: r["trial"])
    x = list(range(1, len(rows) + 1))
    done, total = [], 0
    for r in rows:
        total += int(r["epochs"] or 0)
        done.append(total)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.plot(x, [n * max_epochs for n in x], "--", color="grey", label=f"every trial {max_epochs} epochs")
    ax.plot(x, done, "-", color="tab:blue", label=f"this search: {total} epochs")
    for state, color in STATE_COLORS.items():
        points = [(xi, d) for xi, d, r in zip(x, done, rows) if r["state"] == state]
        if points:
            ax.scatter(*zip(*points), color=color, s=18, zorder=3, label=state)
    if grid:
        ax.axhline(grid * max_epochs, color="black", lw=0.8)
        ax.text(1, grid * max_epochs, f" full grid: {grid} points x {max_epochs} epochs = {grid * max_epochs}",
                va="bottom", fontsize=8)
    ax.set_xlabel("trials")
    ax.set_ylabel("epochs trained, in all")
    ax.set_title("epochs trained by the search")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return save_figure(fig, path)


def finish(sweep_dir: Path, config: DictConfig) -> bool:
    """The end of a search (SweepSummary): the report, printed; exit 1 if trials failed.
    False if sweep_dir holds no study (an ordinary sweep)."""
    failed = write_report(sweep_dir, config)
    if failed is None:
        return False
    if failed:
        print(f"\n{len(failed)} trial(s) failed:", file=sys.stderr)
        for row in failed:
            print(f"  trial {row['trial']}: {row['note'] or 'failed'} (log: {sweep_dir / row['run'] / 'run.log'})",
                  file=sys.stderr)
        sys.exit(1)
    return True
