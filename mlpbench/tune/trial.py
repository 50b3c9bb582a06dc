"""Inside a trial: the Lightning callback that reports each epoch's objective to the study and
lets its pruner stop the run. The search adds it to each trial's run as
`+callbacks.tune_trial={_target_: mlpbench.tune.trial.TrialPruning, study_dir: ..., trial: N}`;
the run itself knows nothing of the search."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import optuna
from optuna_integration import PyTorchLightningPruningCallback

from mlpbench.results import Status
from mlpbench.schema import ConfigError
from mlpbench.tune.study import STUDY_FILE, load_config, make_pruner, objective_key, storage


class TrialPruning(PyTorchLightningPruningCallback):
    """optuna-integration's callback for trial `trial` of the study in `study_dir`; a pruned
    trial ends like a finished run, with status "pruned", instead of as an exception
    (mlpbench.run.train reads `stop_status`)."""

    def __init__(self, study_dir: str, trial: int):
        study_dir = Path(study_dir)
        if not (study_dir / STUDY_FILE).is_file():
            raise ConfigError(f"callbacks.tune_trial: set by the search for its own trials; there is no study "
                              f"in {study_dir}")
        config = load_config(study_dir)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        store = storage(study_dir)
        study = optuna.load_study(study_name=config.tune.study_name, storage=store,
                                  sampler=optuna.samplers.RandomSampler(),  # the search samples, not the trial
                                  pruner=make_pruner(config.tune, config.trainer.max_epochs))
        # The trial the search asked for, in another process (Optuna's storage API).
        trial_id = store.get_trial_id_from_study_id_trial_number(store.get_study_id_from_name(study.study_name),
                                                                 trial)
        super().__init__(optuna.trial.Trial(study, trial_id), monitor=objective_key(config.tune))
        self.stop_status: Optional[Status] = None

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
