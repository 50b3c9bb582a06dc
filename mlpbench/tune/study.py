"""The study: Optuna's storage (SQLite in the search's folder), sampler and pruner, and the
state of its trials — which have ended, which points were tried, how a trial's run ended.
Shared by the search, the trials inside it and the report; optuna is imported where used."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from mlpbench.overrides import NOT_A_SETTING
from mlpbench.results import SWEEP_CONFIG, Status, lower_is_better, read_result, read_sweep_config
from mlpbench.schema import ConfigError, Objective, Pruner, Sampler, safe_name
from mlpbench.tune.space import flat, parse_space

log = logging.getLogger("mlpbench")
STUDY_FILE = "study.db"
# The search's config, saved in its folder: what the report and each trial read.
CONFIG_FILE = SWEEP_CONFIG
# Settings that may change between runs of one study: how many trials, how many at once, points
# to try first, how sweeps are reported, and what is no property of a run (resume, the console's
# settings).
RESUMABLE_CHANGES = ("tune.n_trials", "tune.n_jobs", "tune.enqueue", "tune.finalists", "report.",
                     *sorted(NOT_A_SETTING - {"experiment"}))
CONTENT_OF = "the content of "  # a data file's digest among a study's settings
# A trial cut off by a dying launcher worker is tried again this many times at most (a trial that
# kills its worker each time would otherwise be tried for ever).
MAX_ATTEMPTS = 3


def load_config(sweep_dir: Path) -> DictConfig:
    """The config the search in sweep_dir was started with; a ConfigError naming the file where
    it cannot be used (missing, damaged, not a search's)."""
    path = Path(sweep_dir) / CONFIG_FILE
    config = read_sweep_config(sweep_dir)
    if config is None:
        raise ConfigError(f"{path}: missing or damaged; a search's folder keeps the config it was started with here")
    try:
        name = str(config.tune.study_name)
        Objective(config.tune.objective)
        parse_space(config.tune.space)
        int(config.trainer.max_epochs)
    except Exception as e:  # OmegaConf's, the enum's and the space's errors alike
        raise ConfigError(f"{path}: not a search's config ({' '.join(str(e).split())[:200]})") from None
    if not safe_name(name):
        raise ConfigError(f"{path}: tune.study_name={name} is not a study's name")
    return config


def load_study(sweep_dir: Path, config: DictConfig, **kwargs):
    """The study config.tune.study_name of sweep_dir's study.db; a ConfigError naming the file
    where it is not there or cannot be opened."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    path = Path(sweep_dir) / STUDY_FILE
    if not path.is_file() or not path.stat().st_size:  # an empty file would become a new database here
        raise ConfigError(f"{path}: missing or empty; there is no study in {sweep_dir}")
    try:
        store = storage(sweep_dir)
        names = optuna.get_all_study_names(store)
        if config.tune.study_name not in names:
            raise ConfigError(f"{path}: holds no study {config.tune.study_name!r} (it holds: "
                              f"{', '.join(names) or 'none'})")
        return optuna.load_study(study_name=config.tune.study_name, storage=store, **kwargs)
    except SQLAlchemyError as e:
        raise unopenable(path, e) from None


def unopenable(path: Path, error: Exception) -> ConfigError:
    """The message for a study.db SQLite cannot open (corrupt, locked), naming the file."""
    reason = " ".join(str(getattr(error, "orig", None) or error).split())[:200]
    return ConfigError(f"{path}: cannot open the study ({reason}); if another search is using it, wait for "
                       "it; if the file is damaged, move it away to start the study again")


def storage_url(sweep_dir: Path) -> str:
    return f"sqlite:///{Path(sweep_dir).resolve() / STUDY_FILE}"


def storage(sweep_dir: Path):
    import optuna

    # Parallel trials write their epochs to the same file: wait for SQLite's lock, don't fail.
    return optuna.storages.RDBStorage(storage_url(sweep_dir), engine_kwargs={"connect_args": {"timeout": 60}})


def make_pruner(tune: DictConfig, max_epochs: int):
    import optuna

    pruner = Pruner(tune.pruner)
    if pruner is Pruner.hyperband:
        class Hyperband(optuna.pruners.HyperbandPruner):
            """Optuna's Hyperband, a retried trial judged in the bracket of the trial it repeats:
            Optuna draws the bracket from the trial's number, and a retry's new number would
            move the point to another bracket."""

            def _get_bracket_id(self, study, trial) -> int:
                first = trial.user_attrs.get("first_number", trial.number)
                return super()._get_bracket_id(study, _Numbered(trial, first))

        # Epochs are Optuna steps 0 .. max_epochs-1.
        return Hyperband(min_resource=tune.min_resource, max_resource=max_epochs,
                         reduction_factor=tune.reduction_factor)
    if pruner is Pruner.successive_halving:
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=tune.min_resource,
                                                      reduction_factor=tune.reduction_factor)
    if pruner is Pruner.median:
        return optuna.pruners.MedianPruner(n_warmup_steps=tune.min_resource)
    return optuna.pruners.NopPruner()


class _Numbered:
    """A trial as another number: all Optuna's Hyperband reads of it to choose its bracket."""

    def __init__(self, trial, number: int):
        self.trial, self.number = trial, number

    def __getattr__(self, name: str):
        return getattr(self.trial, name)


def make_sampler(tune: DictConfig, seed: int):
    import optuna

    if Sampler(tune.sampler) is Sampler.random:
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def objective_key(tune: DictConfig) -> str:
    return Objective(tune.objective).value


def direction(objective: str) -> str:
    return "minimize" if lower_is_better(objective) else "maximize"


def search_settings(config: DictConfig) -> dict[str, Any]:
    """What a study searched (everything but hydra.* and the settings a rerun may change), and
    the content of data=table's files (an edited file would mix two datasets' trials in one
    ranking); a key at null is as absent (a key added since the study began, at its default)."""
    from mlpbench.table import file_digests

    job = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    settings = comparable(flat(OmegaConf.to_container(job, resolve=True, enum_to_str=True)))
    return {**settings, **{f"{CONTENT_OF}{path}": digest for path, digest in file_digests(config.data).items()}}


def comparable(settings: dict[str, Any], saved: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Settings as two runs of one study must share them: a study's saved ones too, which an
    earlier version may have saved with keys since left out (the files' content, where `saved`
    holds none of it). A dimension's label is a name for the report, not part of the search."""
    contents = saved is None or any(k.startswith(CONTENT_OF) for k in saved)
    return {k: v for k, v in settings.items() if not k.startswith(RESUMABLE_CHANGES) and v is not None
            and not (k.startswith("tune.space.") and k.endswith(".label")) and (contents or not k.startswith(CONTENT_OF))}


def reuse_earlier(study, trial) -> bool:
    """A trial with the parameters of one that has ended would train the same network again
    (same seed): it takes that trial's epochs and outcome instead (Optuna's FAQ on duplicates)."""
    from optuna.trial import TrialState

    for earlier in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if earlier.params == trial.params and "same_as" not in earlier.user_attrs:
            for step, value in sorted(earlier.intermediate_values.items()):
                trial.report(value, step)
            trial.set_user_attr("same_as", earlier.number)
            if "values" in earlier.user_attrs:  # its seeds' values, for the report's finalists
                trial.set_user_attr("values", earlier.user_attrs["values"])
            trial.set_user_attr("epochs", 0)
            trial.set_user_attr("seconds", 0.0)
            study.tell(trial, earlier.value if earlier.state == TrialState.COMPLETE else None, state=earlier.state)
            return True
    return False


def trial_runs(trial) -> list[str]:
    """The folders of a trial's runs in the search's folder: its seeds' (tune.repeats), or its one run's."""
    return trial.user_attrs.get("runs") or ([trial.user_attrs["run"]] if trial.user_attrs.get("run") else [])


def retry(study, trial, results: list[Optional[dict]], continued_from: int = 0, reached: int = 0) -> None:
    """Fail a trial cut off before its runs ended (`results`: their records as they were left;
    `reached`: the most epochs its checkpoints hold) and ask for its point again, first. The
    repeat continues in the same run folders, its runs from their checkpoints of epoch
    `continued_from` (0: from the start, the folders cleared).
    The cut-off trial keeps the epochs and seconds it had trained; its repeat counts only those
    it adds. The repeat keeps the first attempt's number for the pruner (`first_number`)."""
    from optuna.trial import TrialState

    epochs = max([(r or {}).get("epochs") or 0 for r in results] + [continued_from, reached])
    seconds = [r["seconds"] for r in results if r and r.get("seconds") is not None]
    store = study._storage  # Optuna's storage API: the trial may be another process's, or a FrozenTrial
    if store.get_trial(trial._trial_id).state == TrialState.RUNNING:
        store.set_trial_user_attr(trial._trial_id, "epochs", epochs)
        store.set_trial_user_attr(trial._trial_id, "seconds", sum(seconds) if seconds else None)
    study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    again = {"retry_of": trial.number, "first_number": trial.user_attrs.get("first_number", trial.number),
             "attempt": trial.user_attrs.get("attempt", 1) + 1, "continued_from": continued_from,
             # A continued run's seconds include its earlier attempt's, which the cut-off trial counts.
             "seconds_before": sum(seconds) if continued_from and seconds else 0.0,
             **{key: trial.user_attrs[key] for key in ("run", "runs") if trial.user_attrs.get(key)}}
    study.enqueue_trial(dict(trial.params), user_attrs=again)


def ended_count(study) -> int:
    """Trials that count toward tune.n_trials: trained to completion or pruning, or failed and
    not tried again; not the repeats of a point tried already."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) and "same_as" not in t.user_attrs
               and t.number not in retried for t in trials)


def tried_points(study) -> set:
    from optuna.trial import TrialState

    return {point(t) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))}


def point(trial) -> tuple:
    return tuple(sorted(trial.params.items()))


def tell(study, trial, run_dirs: list[Optional[Path]], objective: str) -> None:
    """Tell the study how a trial's runs ended, from their result.json: one run, or its
    tune.repeats seeds (trained as one stack, so pruned or not together). As Keras Tuner, a run
    scores its best epoch; a trial the mean of its runs' scores, each kept (user_attrs values)."""
    from optuna.trial import TrialState

    results = [((read_result(d) if d else None) or {}) for d in run_dirs]
    statuses = [Status(r.get("status", Status.failed)) for r in results]
    pick = min if direction(objective) == "minimize" else max
    scores = []
    for result in results:
        values = [v for v in (result.get("history") or {}).get(objective, []) if v is not None and math.isfinite(v)]
        scores.append(pick(values) if values else None)
    folders = [d.name for d in run_dirs if d is not None]
    if folders:
        trial.set_user_attr("run", folders[0])
    if len(run_dirs) > 1:
        trial.set_user_attr("runs", folders)
        trial.set_user_attr("values", scores)
        trial.set_user_attr("seeds", [(r.get("config") or {}).get("seed") for r in results])
    status = next((s for s in (Status.failed, Status.interrupted, Status.running, Status.pruned, Status.diverged)
                   if s in statuses), Status.ok)
    trial.set_user_attr("status", status.value)
    if scores and all(v is not None for v in scores):
        # The trial's value as the report gives it: Optuna keeps a pruned trial's last epoch's.
        trial.set_user_attr("value", math.fsum(scores) / len(scores))
    trial.set_user_attr("epochs", max((r.get("epochs", 0) or 0 for r in results), default=0))
    seconds = [r.get("seconds") for r in results if r.get("seconds") is not None]
    trial.set_user_attr("seconds", max(0.0, sum(seconds) - trial.user_attrs.get("seconds_before", 0.0))
                        if seconds else None)
    if status is Status.pruned or (status is Status.diverged and any(s is None for s in scores)):
        # A net that diverged before its first validation is as hopeless as a pruned one.
        study.tell(trial, state=TrialState.PRUNED)
    elif status in (Status.ok, Status.diverged) and all(s is not None for s in scores) and scores:
        study.tell(trial, math.fsum(scores) / len(scores))
    else:
        study.tell(trial, state=TrialState.FAIL)
        error = next(((r.get("error") or {}) for r in results if r.get("error")), {})
        log.error("Trial %d failed (%s): %s %s", trial.number, status.value, error.get("type", ""), error.get("message", ""))
