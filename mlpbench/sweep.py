"""Sweeps that lose nothing: where a sweep writes, what a rerun does with each run already
there, how parallel runs share the cores, and what the sweep reports when it ends.

- `hydra.sweep.dir: ${mlpbench_sweep_dir:BASE,${resume}}` is BASE/<date>_<time>, a fresh
  folder; with `resume=true`, the newest folder under BASE that a sweep with the same
  overrides wrote, so rerunning the same command continues it.
- In a folder that already holds a run (`plan_run`): ok and diverged runs are skipped,
  interrupted or killed ones continue from their last checkpoint, failed ones start again.
  Pointing `hydra.sweep.dir` at an earlier sweep resumes it the same way.

No torch here: this runs before any training starts.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf

from mlpbench.overrides import parse
from mlpbench.results import RESULT_FILE, Status, read_result

log = logging.getLogger("mlpbench")
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def run_name(override_dirname: str, job_num: Any) -> str:
    """A run folder's name: its overrides (model.depth=4), safe as one path component, the seed
    last (model.activation=relu,seed=3), so that the seeds of a setting share a prefix that
    TensorBoard's run filter groups. The `mlpbench_run_name` resolver (hydra.sweep.subdir) and
    the search's trial folders."""
    name = (override_dirname or f"run{job_num}").replace("/", "_")
    seed = re.search(r"(?:^|,)(seed=[^,]*)(?=,|$)", name)
    if seed and not name.endswith(seed.group(1)):
        name = (name[:seed.start()] + name[seed.end():]).strip(",") + "," + seed.group(1)
    if len(name) > 200:
        name = name[:180] + "-" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return name


def _sweep_overrides(overrides: Any) -> list[str]:
    # `resume=true` is how a sweep is continued, not part of what it runs.
    return [o.input_line for o in parse(overrides) if o.key_or_group != "resume"]


def _command_overrides() -> list[str]:
    """The task overrides of this command line, as Hydra saves them in multirun.yaml."""
    overrides = [arg for arg in sys.argv[1:] if "=" in arg and not arg.startswith("-")]
    return [o.input_line for o in parse(overrides) if not o.is_hydra_override()]


def sweep_dir(base: str, resume: bool) -> str:
    """The `mlpbench_sweep_dir` resolver. Cached by OmegaConf, and the cache travels with the
    config to each job (also to joblib's worker processes): every job sees the same folder."""
    base_path = Path(base)
    if resume:
        wanted = _sweep_overrides(_command_overrides())
        for saved in sorted(base_path.glob("*/multirun.yaml"), key=lambda p: p.parent.name, reverse=True):
            try:
                task = OmegaConf.load(saved).hydra.overrides.task
            except Exception:  # a sweep killed while Hydra wrote its config: not this one
                continue
            if _sweep_overrides(task) == wanted:
                print(f"Resuming the sweep in {saved.parent}", file=sys.stderr)
                return str(saved.parent)
        print(f"resume=true: no earlier sweep with these overrides under {base_path}; starting a new one",
              file=sys.stderr)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    # Claim the folder: two sweeps started in the same second must not share one.
    for n in range(1, 1000):
        path = base_path / (stamp if n == 1 else f"{stamp}-{n}")
        created = [d for d in (path, *path.parents) if not d.exists()]
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            continue
        _claimed.extend(created)
        return str(path)
    raise RuntimeError(f"cannot create a sweep folder under {base_path}")


# OmegaConf resolves a value whenever a later config is merged over it, so every composition
# of a preset also claims a folder under the default base (outputs/multirun) that nothing uses.
# Folders this process claimed and left empty are removed when it exits.
_claimed: list[Path] = []


@atexit.register
def _release_unused_claims() -> None:
    for folder in sorted(_claimed, key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()  # only if empty
        except OSError:
            pass


OmegaConf.register_new_resolver("mlpbench_sweep_dir", sweep_dir, replace=True, use_cache=True)
OmegaConf.register_new_resolver("mlpbench_run_name", run_name, replace=True)


# ---------------------------------------------------------------------------- one run


@dataclass
class RunPlan:
    skip: Optional[Status] = None  # the status of a finished run: nothing to do
    checkpoint: Optional[Path] = None  # continue from here
    previous: Optional[dict] = None  # the result.json found, if any


def plan_run(run_dir: Path, clear: bool = True) -> RunPlan:
    """What to do in a run folder: start, skip, or continue from the last checkpoint.
    `clear=False` only reads (DDP processes other than rank 0 follow rank 0's plan)."""
    previous = read_result(run_dir)
    if previous is None and not (run_dir / LAST_CHECKPOINT).exists():
        return RunPlan()
    status = Status((previous or {}).get("status", Status.running))
    if status.finished:
        return RunPlan(skip=status, previous=previous)
    if status is not Status.failed and (run_dir / LAST_CHECKPOINT).is_file():
        return RunPlan(checkpoint=run_dir / LAST_CHECKPOINT, previous=previous)
    if clear:
        _clear(run_dir)  # failed, or stopped before its first checkpoint: start again
    return RunPlan(previous=previous)


def _clear(run_dir: Path) -> None:
    """Remove what an earlier attempt wrote, keeping its log (run.log) and Hydra's config."""
    for path in run_dir.iterdir():
        if path.name.startswith("events.out.tfevents") or path.name in (RESULT_FILE, "hparams.yaml"):
            path.unlink()
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)


def cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_per_run(launcher: DictConfig) -> Optional[int]:
    """torch threads for each of N runs in parallel under hydra/launcher=joblib (a search's
    tune.n_jobs > 1 too): cores / N; None, torch's own choice, for one run at a time."""
    n_jobs = launcher.get("n_jobs") if "joblib" in str(launcher.get("_target_", "")) else None
    if not n_jobs:
        return None
    parallel = cores() + 1 + n_jobs if n_jobs < 0 else n_jobs  # joblib: -1 = every core
    return max(1, cores() // max(1, parallel))


# ---------------------------------------------------------------------------- sweep end


class SweepSummary(HydraCallback):
    """At the end of a multirun: the report (summary.csv/.md, figures), printed; then a
    non-zero exit naming the runs that failed, if any did. A sweeper with a report of its own
    (`report_sweep(sweep_dir, config) -> ok`, as the search's) makes that instead."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.utils import get_class

        from mlpbench.report import build

        sweep = Path(config.hydra.sweep.dir)
        own_report = getattr(get_class(config.hydra.sweeper._target_), "report_sweep", None)
        if own_report is not None:
            if not own_report(sweep, config):
                sys.exit(1)
            return
        report = build([sweep])
        if report.text:
            print(f"\n{report.text}\n{len(report.runs)} runs in {sweep}; report: "
                  f"{', '.join(p.name for p in report.written)}\nCompare the curves: tensorboard --logdir {sweep}")
        failed = [run for run in report.runs if run.status == Status.failed]
        if failed:
            print(f"\n{len(failed)} run(s) failed:", file=sys.stderr)
            for run in failed:
                error = run.result.get("error") or {}
                message = " ".join(str(error.get("message", "")).split())
                print(f"  {run.name}: {error.get('type', '?')}: {message} "
                      f"(log: {sweep / run.name / 'run.log'})", file=sys.stderr)
            print("Rerun the same command with resume=true to retry them; finished runs are kept.",
                  file=sys.stderr)
            sys.exit(1)
