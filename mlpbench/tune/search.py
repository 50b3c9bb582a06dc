"""The search loop, Keras Tuner's job done with Optuna (`hydra/sweeper=tune`,
`python -m mlpbench experiment=tune_units`): ask the study for trials, run each as an ordinary
mlpbench run through Hydra's launcher (its own folder, result.json and TensorBoard logs), tell
the study how it ended; then the trials report.

- The study lives in SQLite in the sweep folder (study.db), so the same command continues it.
  A trial still running when the search died is marked failed and tried again, same parameters.
- `tune.n_jobs` > 1: trials run in batches of that many processes: with tune.repeats > 1 the
  stacked launcher's workers (each trial's seeds one stack), else hydra/launcher=joblib, unless
  another launcher than basic or stacked was chosen, which then gets the batches.

Hydra finds the sweeper as hydra_plugins.mlpbench_tuner.TuneSweeper, which imports this module
only when a search starts.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from mlpbench.checkpoints import usable_checkpoint
from mlpbench.console import refuse
from mlpbench.files import try_lock
from mlpbench.overrides import TRIAL_CALLBACK
from mlpbench.results import Status, read_result, run_log
from mlpbench.schema import BASIC_LAUNCHER, JOBLIB_LAUNCHER, STACKED_LAUNCHER, ConfigError, Pruner, checked
from mlpbench.sweep import WORKER_DIED, alone_because, plan_run, run_name, started_sweeps
from mlpbench.tune.report import write_report
from mlpbench.tune.space import flat, grid_size, parse_space
from mlpbench.tune.study import (CONFIG_FILE, MAX_ATTEMPTS, RESUMABLE_CHANGES, STUDY_FILE, comparable, direction,
                                 ended_count, make_pruner, make_sampler, objective_key, point, retry, reuse_earlier,
                                 search_settings, storage, tell, trial_runs, tried_points, unopenable)

log = logging.getLogger("mlpbench")
# Points tried already, proposed in a row, after which the sampler is taken to have converged.
MAX_PROPOSED_AGAIN = 100
_ABSENT = object()


class Tuner:
    """What hydra_plugins.mlpbench_tuner.TuneSweeper does: Hydra's Sweeper interface for `tune.*`."""

    def __init__(self) -> None:
        self.config: Optional[DictConfig] = None
        self.launcher = None
        self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        launcher_config = config
        # Trials side by side: joblib's processes, which live through the whole search, where a
        # trial is one run (the stacked launcher's do too, kept from one batch to the next); with
        # tune.repeats, the stacked launcher, each trial's seeds one stack (its pruning sees their
        # mean), the trials side by side in tune.n_jobs processes.
        if config.tune.repeats > 1 and config.hydra.launcher._target_ == STACKED_LAUNCHER:
            launcher_config = copy.deepcopy(config)
            with read_write(launcher_config), open_dict(launcher_config):
                launcher_config.hydra.launcher.workers = config.tune.n_jobs
        elif config.tune.n_jobs > 1 and config.hydra.launcher._target_ in (BASIC_LAUNCHER, STACKED_LAUNCHER):
            from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf

            launcher_config = copy.deepcopy(config)
            joblib = JobLibLauncherConf(_target_=JOBLIB_LAUNCHER, n_jobs=config.tune.n_jobs)
            with read_write(launcher_config), open_dict(launcher_config):
                launcher_config.hydra.launcher = OmegaConf.structured(joblib)
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=launcher_config)

    def sweep(self, arguments: list[str]) -> Any:
        try:
            return Search(self, arguments).run()
        except ConfigError as e:
            refuse(str(e))


class Search:
    """One run of the tuner over a study: ask, launch, tell, until tune.n_trials have ended."""

    def __init__(self, sweeper: Tuner, arguments: list[str]):
        self.sweeper = sweeper
        self.config = sweeper.config
        self.tune = self.config.tune
        self.arguments = list(arguments)
        self.dims = parse_space(self.tune.space)
        self.sweep_dir = Path(self.config.hydra.sweep.dir)
        self.objective = objective_key(self.tune)
        self.distributions = {d.key: d.distribution() for d in self.dims}
        self.grid = grid_size(self.dims)
        self.proposed_again = 0  # points tried already that the sampler proposed, in a row

    # -- setting up
    def _check_arguments(self) -> None:
        parser = OverridesParser.create(config_loader=self.sweeper.hydra_context.config_loader)
        for override in parser.parse_overrides(self.arguments):
            if override.is_sweep_override():
                raise ConfigError(f"{override.input_line}: the tuner chooses the values it tries; make "
                                  f"{override.get_key_element()} a search dimension in tune.space instead")

    def _check_objective(self) -> None:
        """A regression (data.task, or a table's float target) logs val_r2, not val_acc: every
        trial would end without a value."""
        from mlpbench.table import Task, task_of

        if self.objective == "val_loss":
            return
        regression = task_of(self.config.data) is Task.regression
        if self.objective == "val_acc" and regression:
            raise ConfigError(f"tune.objective=val_acc: data.path={self.config.data.path} is a regression (a number to "
                              "predict), scored by val_loss and val_r2; set tune.objective=val_loss or val_r2")
        if self.objective == "val_r2" and not regression:
            raise ConfigError(f"tune.objective=val_r2: data={self.config.data.source} is classes, scored by val_acc and "
                              "val_loss (val_r2 is a regression's: data.task=regression on a table)")

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
                    checked(cfg)
                except Exception as e:  # Hydra's own errors and ours read the same to a user
                    lines = str(e).removeprefix("invalid configuration:").splitlines()
                    message = "; ".join(" ".join(line.split()) for line in lines if line.strip())
                    raise ConfigError(f"tune.space.{dim.key}: the value {value} cannot run: {message}") from None

    def _check_settings(self) -> None:
        """What Optuna would pass over in silence: pruning that can never stop a trial, points to
        try first outside the space."""
        tune, epochs, pruner = self.tune, self.config.trainer.max_epochs, Pruner(self.tune.pruner)
        if "seed" in self.distributions:
            raise ConfigError("tune.space.seed: a seed is no design choice to search; tune.repeats=K trains each "
                              "trial over K seeds (seed .. seed+K-1) and judges the best trials over them")
        if "trainer.max_epochs" in self.distributions:
            raise ConfigError(f"tune.space.trainer.max_epochs: the pruner's budget (its rungs, a trial's last epoch) "
                              f"is trainer.max_epochs={epochs} for every trial; set that instead")
        if tune.repeats > 1:  # a trial's seeds are one stack: what keeps runs out of stacks cannot be
            launcher = str(OmegaConf.select(self.config, "hydra.launcher._target_", default=STACKED_LAUNCHER))
            alone = ("it needs hydra/launcher=stacked (the default)" if launcher != STACKED_LAUNCHER else
                     alone_because(self.config))
            if alone:
                raise ConfigError(f"tune.repeats={tune.repeats} trains each trial's seeds as one stacked model: "
                                  f"{alone}")
        if pruner is not Pruner.none and epochs > 1 and tune.min_resource >= epochs:
            raise ConfigError(f"tune.min_resource={tune.min_resource}: must be below trainer.max_epochs={epochs}, "
                              f"or tune.pruner={pruner.value} never stops a trial (tune.pruner=none for no pruning)")
        for i, given in enumerate(self.tune.enqueue):
            for key, value in flat(given).items():
                if key not in self.distributions:
                    raise ConfigError(f"tune.enqueue[{i}].{key}: not a dimension of tune.space (its dimensions: "
                                      f"{', '.join(self.distributions)})")
                distribution = self.distributions[key]
                try:
                    inside = distribution._contains(distribution.to_internal_repr(value))
                except (ValueError, TypeError):
                    inside = False
                if not inside:
                    raise ConfigError(f"tune.enqueue[{i}].{key}={value}: outside tune.space.{key} ({distribution})")

    def _lock(self):
        handle = try_lock(self.sweep_dir / ".tune.lock")
        if handle is None:
            raise ConfigError(f"another search is running on the study in {self.sweep_dir}; wait for it to end, "
                              "or choose another tune.study_name")
        return handle

    def _open_study_file(self):
        """The study, or a message naming its file when SQLite cannot open it (corrupt, locked)."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return self._open_study()
        except SQLAlchemyError as e:
            raise unopenable(self.sweep_dir / STUDY_FILE, e) from None

    def _open_study(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        store = storage(self.sweep_dir)
        # A folder holds one study: its trials' run folders are that study's (a second study
        # there would take them over as its own).
        others = [name for name in optuna.get_all_study_names(store) if name != self.tune.study_name]
        if others:
            raise ConfigError(f"{self.sweep_dir} holds the study {others[0]!r}, not {self.tune.study_name!r}: a "
                              f"folder holds one study. Give this one its own folder (hydra.sweep.dir), or continue "
                              f"that one with tune.study_name={others[0]}")
        study = optuna.create_study(
            storage=store, study_name=self.tune.study_name,
            direction=direction(self.objective), load_if_exists=True,
            pruner=make_pruner(self.tune, self.config.trainer.max_epochs))
        # Seeded by how far the study has come: a continued study draws new points, not the
        # first run's again, and the same commands still give the same search.
        study.sampler = make_sampler(self.tune, self.config.seed + len(study.get_trials(deepcopy=False)))
        settings = search_settings(self.config)
        saved = study.user_attrs.get("settings")
        if saved is None:
            study.set_user_attr("settings", settings)
        elif comparable(saved) != comparable(settings, saved):
            saved, settings = comparable(saved), comparable(settings, saved)
            changed = sorted(k for k in set(saved) | set(settings) if saved.get(k, "-") != settings.get(k, "-"))
            shown = ", ".join(f"{k}: {saved.get(k, '-')} -> {settings.get(k, '-')}" for k in changed[:6])
            may = ", ".join(k.rstrip(".") + ("*" if k.endswith(".") else "") for k in RESUMABLE_CHANGES)
            raise ConfigError(f"{self.sweep_dir} holds the study {self.tune.study_name!r} of another search "
                              f"({shown}{', ...' if len(changed) > 6 else ''}). Only {may} may change when a study "
                              "is continued: choose another tune.study_name, or delete the folder to start again")
        return study

    def _recover(self, study) -> None:
        """Trials left running by a tuner that died: taken as their runs ended where they did
        (a worker may have finished one after the search died), else failed and tried again first."""
        import optuna
        from optuna.trial import TrialState

        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for trial in sorted(running, key=lambda t: "same_as" in t.user_attrs):  # a held repeat after its trial
            if "same_as" in trial.user_attrs:
                _take_result_of(study, optuna.trial.Trial(study, trial._trial_id))
            else:
                self._settle(study, optuna.trial.Trial(study, trial._trial_id), "the end of an earlier search")

    def _settle(self, study, trial, cut_off_by: str, attempts: Optional[int] = None) -> bool:
        """A trial whose runs a dying search or launcher worker left: taken as its runs ended
        where each has (a worker may finish one after the search died; a run that failed failed),
        else failed and tried again first, up to `attempts` times where given. True: tried again."""
        from optuna.trial import TrialState

        runs = trial_runs(trial)
        results = [read_result(self.sweep_dir / run) for run in runs]
        if runs and not any(_cut_off(r) for r in results):
            tell(study, trial, [self.sweep_dir / run for run in runs], self.objective)
            log.warning("Trial %d: its run(s) %s ended despite %s; the result is taken", trial.number,
                        ", ".join(runs), cut_off_by)
            return False
        if attempts is not None and trial.user_attrs.get("attempt", 1) >= attempts:
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            log.error("Trial %d was cut off by %s %d times: failed, not tried again (its log: %s)", trial.number,
                      cut_off_by, attempts, run_log(self.sweep_dir / runs[0], self.config) if runs else "none")
            return False
        stopped_at = sorted(set(self._continues_from(runs, results)))
        if len(stopped_at) > 1:
            # A trial's seeds train as one stack and report their mean to the pruner; seeds
            # continued from different epochs would train apart, each reporting its own value
            # for the steps (a partial mean, Optuna warning of steps reported twice).
            import shutil

            for run in runs:
                shutil.rmtree(self.sweep_dir / run, ignore_errors=True)
        continued_from = stopped_at[0] if len(stopped_at) == 1 else 0
        retry(study, trial, results, continued_from=continued_from, reached=stopped_at[-1] if stopped_at else 0)
        log.warning("Trial %d was cut off by %s: marked failed, tried again %s", trial.number, cut_off_by,
                    f"from the start (its seeds had stopped after {', '.join(map(str, stopped_at))} epochs; they "
                    "train together)" if len(stopped_at) > 1 else
                    f"(its runs continue after epoch {continued_from})" if continued_from else "from the start")
        return True

    def _continues_from(self, runs: list[str], results: list[Optional[dict]]) -> list[int]:
        """The epoch each run of a cut-off trial would continue after, as the launcher will decide
        it (sweep.plan_run, then the checkpoint it can use): a finished run's last, a continued
        one's checkpoint's (result.json is saved at most once a second, and a stack's checkpoints
        are written one after another: a kill can fall between them), else 0."""
        epochs = []
        for run, result in zip(runs, results):
            folder = self.sweep_dir / run
            plan = plan_run(folder, clear=False)
            if plan.skip:
                epochs.append((result or {}).get("epochs") or 0)
                continue
            model = ((result or {}).get("config") or {}).get("model")
            if model is None and (folder / ".hydra" / "config.yaml").is_file():
                model = OmegaConf.load(folder / ".hydra" / "config.yaml").get("model")
            found = usable_checkpoint(plan.checkpoint, OmegaConf.create(model)) if plan.checkpoint and model else None
            epochs.append(found[1]["epoch"] if found else 0)
        return epochs

    # -- the loop
    def run(self) -> Any:
        checked(self.config)  # tune.* itself first: its errors are not the space's
        self._check_arguments()
        self._check_settings()
        self._check_objective()
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        lock = self._lock()
        study = None
        try:
            self._check_space()
            study = self._open_study_file()
            OmegaConf.save(self.config, self.sweep_dir / CONFIG_FILE)  # what the report and the trials read
            for first in self.tune.enqueue:
                study.enqueue_trial(flat(first), skip_if_exists=True)
            self._recover(study)
            ended = ended_count(study)
            started = (ended, time.monotonic())
            log.info("Search %s in %s: %s; %s", self.tune.study_name, self.sweep_dir,
                     ", ".join(d.key for d in self.dims) + (f" ({self.grid} grid points)" if self.grid else ""),
                     f"{ended} of {self.tune.n_trials} trials ended already" if ended < self.tune.n_trials else
                     f"{ended} trials ended already, tune.n_trials={self.tune.n_trials} reached (more: "
                     f"tune.n_trials={ended + 10} and the like)")
            while ended < self.tune.n_trials:
                if self._exhausted(study):
                    log.info("Every one of the %d grid points has been tried: the search ends here", self.grid)
                    break
                if self.proposed_again >= MAX_PROPOSED_AGAIN:
                    log.warning("The sampler proposed only points tried already, %d times in a row: the search "
                                "ends here, with %d trials", self.proposed_again, ended)
                    break
                self._batch(study, min(self.tune.n_jobs, self.tune.n_trials - ended), ended)
                ended = ended_count(study)
                self._say_progress(ended, started)
        except KeyboardInterrupt:  # between trials (one in training: _launch says it)
            if study is not None:  # this study's, not one of other settings the folder may hold
                write_report(self.sweep_dir, self.config, quiet=True)
            self._say_interrupted()
            raise SystemExit(130) from None
        finally:
            lock.close()
            close = getattr(self.sweeper.launcher, "close", None)  # the stacked launcher's kept worker processes
            if close is not None:
                close()
        return None

    def _say_interrupted(self, retried: str = "") -> None:
        log.warning("Search interrupted%s. Run the same command to continue the study in %s%s", retried,
                    self.sweep_dir, " (its report so far is there)" if (self.sweep_dir / "trials.md").is_file() else "")
        # Said all: the command's own lines for an interrupted sweep (resume=true, how to make
        # the report) are not for a search, which continues without resume=true.
        if self.sweep_dir in started_sweeps:
            started_sweeps.remove(self.sweep_dir)

    def _say_progress(self, ended: int, started: tuple[int, float]) -> None:
        """Trials ended of tune.n_trials, the time so far, and the time left from this run's trials."""
        first, at = started
        elapsed, done = time.monotonic() - at, ended - first
        left = f", about {elapsed / done * (self.tune.n_trials - ended) / 60:.1f} min left" \
            if 0 < done and ended < self.tune.n_trials else ""
        log.info("Trials ended: %d of %d, %.1f min so far%s", ended, self.tune.n_trials, elapsed / 60, left)

    def _trial_jobs(self, trial, overrides: list[str]) -> list[list[str]]:
        """A trial's jobs: one run, or with tune.repeats=K its K seeds (seed .. seed+K-1), which
        the stacked launcher trains as one stack. Each in its own folder
        (trial_007_model.units=224,optim.lr=0.001[,seed=43]), with the callback that reports the
        trial's epochs to the study (a stack's: the mean over its seeds) and prunes it."""
        repeats = int(self.tune.repeats)
        seeds = [[]] if repeats == 1 else [[f"seed={self.config.seed + k}"] for k in range(repeats)]
        # A trial tried again (retry) continues in the run folders of the trial it repeats.
        folders = trial_runs(trial) or [
            f"trial_{trial.number:03d}_{run_name(','.join(sorted(overrides + seed)), trial.number)}" for seed in seeds]
        # Known even if the search dies before the trial ends.
        trial.set_user_attr("run", folders[0])
        if repeats > 1:
            trial.set_user_attr("runs", folders)
        callback = (f"+callbacks.{TRIAL_CALLBACK}={{_target_:mlpbench.tune.trial.TrialPruning,"
                    f"study_dir:{_quoted(str(self.sweep_dir.resolve()))},trial:{trial.number},search_pid:{os.getpid()}}}")
        return [[*self.arguments, *overrides, *seed, f"hydra.sweep.subdir={_quoted(folder)}", callback]
                for seed, folder in zip(seeds, folders)]

    def _exhausted(self, study, asked: Sequence = ()) -> bool:
        """Every point of a finite grid has been tried (or is in the batch being asked for)."""
        return self.grid is not None and len(tried_points(study) | {point(t) for t in asked}) >= self.grid

    def _batch(self, study, size: int, ended: int) -> None:
        trials, batch, held = [], [], []
        while len(trials) < size and self.proposed_again < MAX_PROPOSED_AGAIN:
            trial = study.ask(self.distributions)
            overrides = [d.override(trial.params[d.key]) for d in self.dims]
            tried = " ".join(overrides)
            if reuse_earlier(study, trial):
                # As Keras Tuner, a point is trained once: a repeat costs nothing and is not counted.
                self.proposed_again += 1
                log.info("Trial %d: %s was tried in trial %d: result reused, nothing trained", trial.number,
                         tried, trial.user_attrs["same_as"])
                if self._exhausted(study, trials):
                    break
                continue
            same = next((t for t in trials if t.params == trial.params), None)
            if same is not None:  # proposed again in this batch (tune.n_jobs > 1): it takes that trial's result
                self.proposed_again += 1
                log.info("Trial %d: %s is trial %d's, in this batch: trained once, its result taken", trial.number,
                         tried, same.number)
                trial.set_user_attr("same_as", same.number)  # a repeat from now: never counted, nor retried
                held.append(trial)
                if self._exhausted(study, trials):
                    break
                continue
            self.proposed_again = 0
            ended += 1
            log.info("Trial %d (%d of %d): %s", trial.number, ended, self.tune.n_trials, tried)
            trials.append(trial)
            batch += self._trial_jobs(trial, overrides)
        if not trials:
            return
        try:
            self._launch(study, trials, batch, held)
        finally:
            for trial in held:
                _take_result_of(study, trial)

    def _launch(self, study, trials: list, batch: list[list[str]], held: list) -> None:
        try:
            returns = self.sweeper.launcher.launch(batch, initial_job_idx=trials[0].number)
        except (KeyboardInterrupt, SystemExit) as e:
            again = [t.number for t in trials if self._settle(study, t, "the interrupt")]
            for trial in held:  # before the report so far
                _take_result_of(study, trial)
            write_report(self.sweep_dir, self.config, quiet=True)
            self._say_interrupted(f"; trial(s) {', '.join(map(str, again))} will be tried again" if again else "")
            raise SystemExit(e.code if isinstance(e, SystemExit) else 130) from None
        except Exception as e:  # a launcher's worker died (joblib's pool stops the batch's other trials too)
            log.error("Trials %s: the launcher failed: %s: %s", [t.number for t in trials], type(e).__name__, e)
            for trial in trials:
                self._settle(study, trial, "a launcher failure", attempts=MAX_ATTEMPTS)
            return
        repeats = int(self.tune.repeats)
        for i, trial in enumerate(trials):
            jobs = returns[i * repeats:(i + 1) * repeats]
            dirs = [Path(job.hydra_cfg.hydra.runtime.output_dir) if job is not None and job.hydra_cfg else None
                    for job in jobs]
            if any(d is not None and _cut_off(read_result(d)) for d in dirs):
                # A worker died (the launcher recorded its runs failed; joblib's stopped the others'):
                # the trial is tried again, not failed for what its network did.
                self._settle(study, trial, "a worker process's death", attempts=MAX_ATTEMPTS)
            else:
                tell(study, trial, dirs, self.objective)


def _take_result_of(study, trial) -> None:
    """A trial proposed again in the batch that trained its point (`same_as`): that trial's
    result, or where it did not end (failed, cut off and tried again) failed with it; a repeat
    either way, not counted as a trial. Once: a trial already told is left as it is."""
    from optuna.trial import TrialState

    if study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
        return
    if not reuse_earlier(study, trial):
        study.tell(trial, state=TrialState.FAIL)


def _cut_off(result: Optional[dict]) -> bool:
    """A run that ended with no outcome of its own: killed, stopped with its pool, or failed
    because its worker process died (not by anything its network did)."""
    if result is None:
        return True
    error = result.get("error") or {}
    return result.get("status") in (Status.running, Status.interrupted) or (
        result.get("status") == Status.failed and error.get("type") == WORKER_DIED)


def _quoted(text: str) -> str:
    """A value as a quoted string in an override: commas, brackets and = are kept as they are."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
