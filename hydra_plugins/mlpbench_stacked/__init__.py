"""hydra/launcher=stacked: a sweep's runs that differ only in `seed` train together, as one
stacked model in this process (mlpbench/stacked.py); every other run trains on its own, one
after another, as under the basic launcher. conf/hydra/launcher/stacked.yaml names it.

Hydra sets up every job first (its folder, .hydra/ and log file, as for any launcher), then the
groups train in the order of their first job, each replica writing its own run folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import open_dict

log = logging.getLogger("mlpbench")


class RunLogFiles(logging.Handler):
    """Log records into the run folders' log files: a record with `replica=k` (extra) into
    run k's only, with `replica=-1` into none (the console's summary of all), others into all."""

    def __init__(self, paths: list[Path], formatter: logging.Formatter | None):
        super().__init__()
        self.files = [logging.FileHandler(p, mode="a") for p in paths]
        for handler in self.files:
            handler.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        replica = getattr(record, "replica", None)
        for k, handler in enumerate(self.files):
            if replica is None or replica == k:
                handler.handle(record)

    def close(self) -> None:
        for handler in self.files:
            handler.close()
        super().close()


class StackedLauncher(Launcher):
    def __init__(self, max_replicas: int = 64, cpu_max_batch_size: int | None = 64) -> None:
        self.max_replicas = max_replicas
        self.cpu_max_batch_size = cpu_max_batch_size
        self.config = self.hydra_context = self.task_function = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from mlpbench import run

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info("Launching %d jobs locally; runs that differ only in seed train as one stacked model",
                 len(job_overrides))
        returns: list[JobReturn] = []
        for idx, overrides in enumerate(job_overrides, initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = sweep_config.hydra.job.num = idx
            # The job's folder, .hydra/ and log file, and mlpbench's checks; no training yet.
            returns.append(run_job(hydra_context=self.hydra_context, task_function=run.prepare, config=sweep_config,
                                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir"))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        for group in self._groups(returns):
            self._train(group)
        for ret in returns:  # what each run did is in its result.json; the report reads those
            ret.return_value = None
        return returns

    def _groups(self, returns: list[JobReturn]) -> list[list[JobReturn]]:
        """The prepared jobs in groups that train together, in the order of their first job."""
        from mlpbench.stacked import alone_because, stack_key

        groups: dict[str, list[JobReturn]] = {}
        alone: list[list[JobReturn]] = []
        for ret in returns:
            job = ret.return_value if ret.status is JobStatus.COMPLETED else None
            if job is None:  # skipped (finished already) or refused (recorded as failed)
                continue
            key = stack_key(job, self.cpu_max_batch_size)
            if key is None:
                log.info("Run %s trains on its own: %s", job.run_dir.name,
                         alone_because(job.cfg, self.cpu_max_batch_size))
                alone.append([ret])
                continue
            group = groups.setdefault(key, [])
            group.append(ret)
        stacks = [g[i:i + self.max_replicas] for g in groups.values() for i in range(0, len(g), self.max_replicas)]
        order = {id(ret): i for i, ret in enumerate(returns)}
        return sorted(stacks + alone, key=lambda g: order[id(g[0])])

    def _train(self, group: list[JobReturn]) -> None:
        from mlpbench import run
        from mlpbench.stacked import train_group

        jobs = [ret.return_value for ret in group]
        # The console as Hydra's job logging sets it up, and each run's log file.
        configure_log(group[0].hydra_cfg.hydra.job_logging, self.config.hydra.verbose)
        root = logging.getLogger()
        files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
        for handler in files:
            root.removeHandler(handler)
            handler.close()
        router = RunLogFiles([Path(ret.hydra_cfg.hydra.runtime.output_dir) / f"{ret.hydra_cfg.hydra.job.name}.log"
                              for ret in group], files[0].formatter if files else None)
        root.addHandler(router)
        try:
            if len(jobs) == 1:
                job = jobs[0]
                run.train_job(job)
            else:
                train_group(jobs)
        except Exception as e:
            if len(jobs) > 1:  # said once, into every run's log
                names = ", ".join(job.run_dir.name for job in jobs)
                log.error("Runs %s failed: %s: %s", names, type(e).__name__, e,
                          exc_info=None if isinstance(e, run.ConfigError) else e)
            for job in jobs:
                run.record_failure(job, e, say=len(jobs) == 1)
        finally:
            root.removeHandler(router)
            router.close()
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
