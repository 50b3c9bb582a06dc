"""hydra/launcher=joblib for mlpbench: hydra-joblib-launcher's launcher, except that a worker
process that dies (the OOM killer, kill -9) fails its run instead of the whole sweep: joblib
then gives up the batch, the runs it was training are recorded as failed, and the sweep ends
with its report and the resume hint. conf/hydra/launcher/joblib.yaml names it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from hydra.core.utils import JobReturn, JobStatus
# The module, not its class: Hydra's plugin scan registers every launcher class a module holds,
# and would list hydra-joblib-launcher's twice (`--info plugins`).
from hydra_plugins.hydra_joblib_launcher import joblib_launcher as hydra_joblib

log = logging.getLogger("mlpbench")
# hydra-joblib-launcher logs joblib's whole argument list (`Joblib.Parallel(n_jobs=2,backend=loky,
# prefer=processes,...) is launching 9 jobs`) before Hydra's own "Launching jobs" line: noise.
logging.getLogger("hydra_plugins.hydra_joblib_launcher._core").addFilter(
    lambda record: not str(record.msg).startswith("Joblib.Parallel("))


class JoblibLauncher(hydra_joblib.JoblibLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from concurrent.futures.process import BrokenProcessPool

        from joblib.externals.loky.process_executor import TerminatedWorkerError

        try:
            return super().launch(job_overrides, initial_job_idx)
        except (TerminatedWorkerError, BrokenProcessPool) as e:
            from mlpbench.sweep import record_lost_runs

            reason = " ".join(str(e).split())[:300]
            lost = record_lost_runs(Path(str(self.config.hydra.sweep.dir)), f"its worker process died: {reason}")
            log.error("A worker process died (killed, or out of memory?); joblib stopped the other %d run(s) of "
                      "this batch. Recorded as failed: %s. Rerun the same command with resume=true to run what "
                      "is missing; finished runs are kept.", len(job_overrides) - 1, ", ".join(lost) or "none")
            # Each job as done: the runs' own records say how they ended, and the report reads those.
            return [JobReturn(status=JobStatus.COMPLETED, _return_value=None) for _ in job_overrides]
