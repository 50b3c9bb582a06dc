"""mlpbench's search as a Hydra sweeper (hydra/sweeper=tune). Hydra accepts plugins only from the
hydra_plugins package and imports every one at each start: this shim loads the search
(mlpbench.tune) only when a search starts, so a plain run never does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig


class TuneSweeper(Sweeper):
    def __init__(self, **_: Any) -> None:
        from mlpbench.tune.search import Tuner

        self.tuner = Tuner()

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.tuner.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.tuner.sweep(arguments)

    @staticmethod
    def report_sweep(sweep_dir: Path, config: DictConfig) -> bool:
        """The report of a search's folder (mlpbench.sweep.SweepSummary, mlpbench.report); False if
        trials failed."""
        from mlpbench.tune.report import finish

        return finish(Path(sweep_dir), config)
