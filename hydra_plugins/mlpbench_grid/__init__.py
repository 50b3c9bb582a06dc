"""hydra/sweeper=grid, mlpbench's default sweeper: Hydra's basic sweeper (the grid given with -m),
and with `seed=auto` seeds in rounds until every comparison with the best is decided
(mlpbench/seeds.py, imported only then). conf/hydra/sweeper/grid.yaml names it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf


class GridSweeper(Sweeper):
    # Hydra's basic sweeper held, not subclassed: Hydra's plugin scan executes its module again,
    # and a subclass of the class it replaced then fails in the base's own super() call.
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[DictConfig] = None) -> None:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        self.basic = BasicSweeper(max_batch_size=max_batch_size, params=params)

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.basic.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from mlpbench.schema import AUTO_SEED

        basic = self.basic
        parser = OverridesParser.create(config_loader=basic.hydra_context.config_loader)
        from mlpbench.sweep import name_runs_by_swept_keys

        name_runs_by_swept_keys(basic.config)
        (jobs,) = basic.split_arguments(parser.parse_overrides([*basic._parse_config(), *arguments]), None)
        jobs = _auto_seeds_alone(jobs)
        try:
            if not jobs or f"seed={AUTO_SEED}" not in jobs[0]:
                unread = [o for o in jobs[0] if o.lstrip("+").startswith("sweep.")] if jobs else []
                if unread:  # else silently without effect: the seeds are the ones given
                    logging.getLogger("mlpbench").warning(
                        "%s: seed=auto's budget, read with seed=auto alone; this sweep trains the seeds it gives",
                        " ".join(unread))
                from mlpbench.schema import BASIC_LAUNCHER
                from mlpbench.sweep import ProgressLauncher

                if basic.config.hydra.launcher.get("_target_") == BASIC_LAUNCHER and basic.max_batch_size is None:
                    basic.max_batch_size = 1  # a run a launch, and how far the grid is after each
                    basic.launcher = ProgressLauncher(basic.launcher, len(jobs))
                return basic.sweep(arguments)
            from mlpbench.seeds import SeedRounds

            sweep_dir = Path(basic.config.hydra.sweep.dir)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(basic.config, sweep_dir / "multirun.yaml")  # as Hydra's basic sweeper does
            return SeedRounds(basic.launcher, sweep_dir, jobs, basic.config.sweep).run()
        finally:
            close = getattr(basic.launcher, "close", None)  # the stacked launcher's kept worker processes
            if close is not None:
                close()


def _auto_seeds_alone(jobs: list[list[str]]) -> list[list[str]]:
    """The grid's jobs, with `seed=auto` written one way ('auto' quoted too); refused before any
    run where auto is swept with seeds (seed=auto,1: the rounds choose every seed of a setting)."""
    from mlpbench.console import refuse
    from mlpbench.schema import AUTO_SEED

    def seed_of(job: list[str]) -> Optional[str]:
        given = [o.split("=", 1)[1] for o in job if o.split("=", 1)[0].lstrip("+") == "seed"]
        return given[-1].strip("'\"") if given else None

    autos = [seed_of(job) == AUTO_SEED for job in jobs]
    if any(autos) and not all(autos):
        shown = ",".join(dict.fromkeys(str(seed_of(job)) for job in jobs))
        refuse(f"seed={shown}: auto chooses every seed of a setting itself; give seed=auto alone, or seeds "
               "(seed=1,2,3)")
    if not any(autos):
        return jobs
    return [[f"seed={AUTO_SEED}" if o.split("=", 1)[0].lstrip("+") == "seed" else o for o in job] for job in jobs]
