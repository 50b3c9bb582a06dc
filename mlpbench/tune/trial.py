"""Inside a trial: the Lightning callback that reports each epoch's objective to the study and
lets its pruner stop the run. The search adds it to each trial's run as
`+callbacks.tune_trial={_target_: mlpbench.tune.trial.TrialPruning, study_dir: ..., trial: N}`;
the run itself knows nothing of the search."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Optional

import optuna
from optuna_integration import PyTorchLightningPruningCallback

from mlpbench.results import Status
from mlpbench.schema import ConfigError
from mlpbench.tune.study import STUDY_FILE, load_config, load_study, make_pruner, objective_key


_watching = False


class TrialPruning(PyTorchLightningPruningCallback):
    """optuna-integration's callback for trial `trial` of the study in `study_dir`; a pruned
    trial ends like a finished run, with status "pruned", instead of as an exception
    (mlpbench.run.train reads `stop_status`)."""

    def __init__(self, study_dir: str, trial: int, search_pid: Optional[int] = None):
        study_dir = Path(study_dir)
        if not (study_dir / STUDY_FILE).is_file():
            raise ConfigError(f"callbacks.tune_trial: set by the search for its own trials; there is no study "
                              f"in {study_dir}")
        config = load_config(study_dir)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = load_study(study_dir, config,
                           sampler=optuna.samplers.RandomSampler(),  # the search samples, not the trial
                           pruner=make_pruner(config.tune, config.trainer.max_epochs))
        store = study._storage
        # The trial the search asked for, in another process (Optuna's storage API).
        trial_id = store.get_trial_id_from_study_id_trial_number(store.get_study_id_from_name(study.study_name),
                                                                 trial)
        super().__init__(optuna.trial.Trial(study, trial_id), monitor=objective_key(config.tune))
        self.stop_status: Optional[Status] = None
        if search_pid is not None and search_pid != os.getpid():  # a worker process of the search
            _end_with_parent(os.getppid())


    def on_fit_start(self, trainer, pl_module) -> None:
        # A classifier logs val_acc, a regression val_r2 (data.task): an objective the run never
        # logs would leave every trial without a value.
        logged = ("val_loss", f"val_{pl_module.score}")
        if self.monitor not in logged:
            raise ConfigError(f"tune.objective={self.monitor}: these runs log {' and '.join(logged)}"
                              f"{' (a regression)' if pl_module.score == 'r2' else ''}; search one of them")
        super().on_fit_start(trainer, pl_module)

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
            self.stop_status = Status.pruned
            trainer.should_stop = True


def _end_with_parent(parent: int) -> None:
    """A trial in a worker process of the search (tune.n_jobs > 1) stops as Ctrl-C stops a run
    (SIGTERM: interrupted, its checkpoint kept) when the search dies: orphaned, it would go on
    training a trial the next search tries again, in the same folder."""
    global _watching
    if _watching:  # one watch per worker process, whichever trial it trains
        return
    _watching = True

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
        # The trial records itself as interrupted within a second; the worker then waits for a
        # search that is gone: it ends here.
        time.sleep(10.0)
        os._exit(143)

    threading.Thread(target=watch, name="mlpbench-parent-watch", daemon=True).start()
