"""Sweeps that lose nothing: where a sweep writes, what a rerun does with each run already
there, how parallel runs share the cores, and what the sweep reports when it ends.

- `hydra.sweep.dir: ${mlpbench_sweep_dir:BASE,${resume}}` is BASE/<date>_<time>, a fresh
  folder; with `resume=true`, the newest folder under BASE that a sweep with the same
  overrides (in any order) wrote, so rerunning the same command continues it. A single run's
  `hydra.run.dir: ${mlpbench_run_dir:BASE,${resume}}` alike (BASE/<date>/<time>).
- In a folder that already holds a run (`plan_run`): ok and diverged runs are skipped,
  interrupted or killed ones continue from their last checkpoint, and so do runs that failed
  through no fault of their own (a dead worker, a full disk); other failed ones start again.
  Pointing `hydra.sweep.dir` at an earlier sweep resumes it the same way.

No torch here: this runs before any training starts.
"""

from __future__ import annotations

import atexit
import glob
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from hydra.core.override_parser.types import Glob, IntervalSweep, OverrideType
from hydra.errors import HydraException
from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import MISSING, DictConfig, OmegaConf

from mlpbench.console import command, refuse
from mlpbench.files import locked_elsewhere, try_lock
from mlpbench.overrides import (NOT_A_SETTING, TRIAL_CALLBACK, as_written as _as_written, command_line, grid_overrides,
                                parse)
from mlpbench.results import (RESULT_FILE, SWEEP_CONFIG, SWEEP_LOCK, Status, files_read, load_results,
                              read_result, read_sweep_config, run_log)
from mlpbench.schema import BASIC_SWEEPER, GRID_SWEEPER, JOBLIB_LAUNCHER, ConfigError, device_count
from mlpbench.table import check_unchanged

log = logging.getLogger("mlpbench")
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
WORKER_DIED = "WorkerDied"


def run_name(override_dirname: str, job_num: Any) -> str:
    """A run folder's name: its overrides (model.depth=4), safe as one path component, the seed
    last (model.activation=relu,seed=3), so that the seeds of a setting share a prefix that
    TensorBoard's run filter groups. The `mlpbench_run_name` resolver (hydra.sweep.subdir) and
    the search's trial folders."""
    name = (override_dirname or f"run{job_num}").replace("/", "_")
    seed = re.search(r"(?:^|,)(seed=[^,]*)(?=,|$)", name)
    if seed and not name.endswith(seed.group(1)):
        name = (name[:seed.start()] + name[seed.end():]).strip(",") + "," + seed.group(1)
    if len(name.encode()) > 200:  # file systems count bytes (255 at most), not characters
        head = name.encode()[:180].decode(errors="ignore")
        name = head + "-" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return name


def grid_constants(config: DictConfig) -> dict[str, str]:
    """{key: override} for what a sweep's grid gives one value (the preset's sweeper params and
    the command's overrides, the last of a key winning, as in Hydra); the seed, and what steers
    the sweep or the console, aside."""
    return {o.key_or_group: o.input_line for o in grid_overrides(config)
            if not o.is_hydra_override() and not o.is_sweep_override() and o.key_or_group != "seed"
            and o.key_or_group not in NOT_A_SETTING and not o.key_or_group.startswith("sweep.")}


def name_runs_by_swept_keys(config: DictConfig) -> None:
    """Run folders, and so TensorBoard's run names, from the keys the sweep varies: a key given
    one value (grid_constants) joins hydra.job.config.override_dirname.exclude_keys. Its value is in
    every run's .hydra/ and in the report's header; in each run's name (data.limit=1000,
    model.activation=sigmoid,trainer.max_epochs=3,seed=1) it hid the one word that differs. The
    seed always stays in the name (seed=auto adds seeds). Set as a Hydra override of the sweep's
    own config, which Hydra composes every job's config with (load_sweep_config). A folder
    that holds a sweep of other fixed settings is refused first (check_reused_folder)."""
    from omegaconf import read_write

    dirname = config.hydra.job.config.override_dirname
    excluded = list(dirname.exclude_keys)
    excluded += sorted(set(grid_constants(config)) - set(excluded))
    if excluded == list(dirname.exclude_keys):
        return
    quoted = ",".join(f"'{key}'" for key in excluded)  # Hydra's keys hold no quote or backslash
    with read_write(config.hydra):
        dirname.exclude_keys = excluded
        config.hydra.overrides.hydra.append(f"hydra.job.config.override_dirname.exclude_keys=[{quoted}]")


def check_reused_folder(config: DictConfig) -> None:
    """A sweep into a folder that holds an earlier sweep continues it (its finished runs are
    skipped). Run folders name only what is swept, so an earlier sweep that held a setting fixed
    otherwise (data.limit=1000 against 2000) would pass its runs off as this one's: refused,
    naming the settings. More values or seeds of what is swept are fine."""
    # Its runs' files as they read them (data=table): an edited file would give the runs continued
    # or added a dataset the others did not see. Failed runs start over: a file fixed for them is fine.
    read = files_read([(run_dir.name, result) for run_dir, result in load_results(Path(config.hydra.sweep.dir))])
    check_unchanged([(path, digest, f"run {runs[0]}" + (f" and {len(runs) - 1} more" if len(runs) > 1 else ""))
                     for path, versions in read.items() for digest, runs in versions.items()])
    earlier = read_sweep_config(Path(config.hydra.sweep.dir))
    if earlier is None:
        return
    try:
        before = grid_constants(earlier)
        # A key the earlier sweep swept is "swept", not "not set", before.
        swept = {o.key_or_group: "swept" for o in grid_overrides(earlier) if o.is_sweep_override()}
        swept_before = _swept_keys(earlier)
    except Exception:  # an earlier multirun.yaml that Hydra's parser cannot read: nothing to compare
        return
    shown = _differences(before, grid_constants(config), shown_absent=swept)
    if shown:
        raise ConfigError(f"hydra.sweep.dir={config.hydra.sweep.dir}: holds a sweep with other fixed settings ({shown}); "
                          "its runs are named by what is swept and would pass for this command's. Give another folder, "
                          "or the same settings to continue that sweep")
    # Keys one sweep varies and the other leaves at their default: a run folder names only its
    # own sweep's keys, so one setting would be two (model.depth=1 and model.activation=relu).
    now = _swept_keys(config)
    if swept_before != now:
        listed = lambda keys: ", ".join(sorted(keys)) or "seeds only"  # noqa: E731
        raise ConfigError(f"hydra.sweep.dir={config.hydra.sweep.dir}: holds a sweep over other keys "
                          f"({listed(swept_before)} before, {listed(now)} now); its runs are named by what "
                          "each sweep varies, so a setting of both would be reported twice, under two names. Give "
                          "another folder, or sweep the same keys (more values or seeds) to continue that sweep")


def _swept_keys(config: DictConfig) -> set[str]:
    """The keys a sweep's grid varies, the seed aside (it is in every run's name)."""
    return {o.key_or_group for o in grid_overrides(config) if o.is_sweep_override() and o.key_or_group != "seed"
            and not o.is_hydra_override() and o.key_or_group not in NOT_A_SETTING
            and not o.key_or_group.startswith("sweep.")}


def _differences(before: dict, now: dict, listed: int = 6, shown_absent: Optional[dict] = None) -> str:
    """The settings an earlier run or sweep had otherwise, as a refusal names them; "" if none.
    `shown_absent`: what to say of a key absent before ("swept"), where not "not set"."""
    absent = shown_absent or {}
    differ = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    shown = "; ".join(f"{k}: {before.get(k, absent.get(k, 'not set'))} before, {now.get(k, 'not set')} now"
                      for k in differ[:listed])
    return shown + (f" and {len(differ) - listed} more" if len(differ) > listed else "")


def reused_run_folder(overrides: list[str]) -> Optional[tuple[Path, dict]]:
    """The folder `hydra.run.dir=DIR` names and the record of the run it holds, where a single run
    would skip it (finished) or continue it (killed: a checkpoint), else None. (A run that failed
    for its own reasons starts over there: nothing of it would be passed off.) An override
    Hydra's grammar refuses: None, for Hydra to name."""
    try:
        given = [o for o in parse(overrides) if o.key_or_group == "hydra.run.dir" and not o.is_sweep_override()]
    except HydraException:
        return None
    folder = str(given[-1].value()) if given else ""
    if not folder or "${" in folder:
        return None
    plan = plan_run(Path(folder), clear=False)  # as Hydra takes it: relative to here, no ~ expanded
    return (Path(folder), plan.previous) if plan.previous and (plan.skip or plan.checkpoint) else None


def check_reused_run(folder: Path, previous: dict, config: dict) -> None:
    """A single run into a folder that holds an earlier run of another config (another file,
    more epochs, another preset) would pass that run's result off as its own: refused, naming
    the settings that differ (the resolved configs compared, so a default spelled out or a
    value quoted is the same run). Checked before Hydra writes this run's config over the
    earlier run's (.hydra/)."""
    from mlpbench.results import flat_keys

    if locked_elsewhere(folder.parent / SWEEP_LOCK):  # a sweep's runs take no lock of their own
        raise ConfigError(f"hydra.run.dir={folder}: a run of the sweep still running in {folder.parent}; two "
                          "commands would train it at once. Wait for the sweep to end")
    if not previous.get("config"):  # a record cut short (a full disk): nothing to compare
        return

    def kept(cfg: dict) -> dict:
        return {k: v for k, v in flat_keys(cfg).items() if k not in NOT_A_SETTING and k != "resume"}

    shown = _differences(kept(previous["config"]), kept(config))
    if shown:
        raise ConfigError(f"hydra.run.dir={folder}: holds a run with other settings ({shown}); its result would "
                          "pass for this command's. Give another folder, or the same settings to continue that run")
    check_run_files(previous, folder)


def check_run_files(previous: dict, folder: Path) -> None:
    """ConfigError where a file the run in `folder` read (its record, `previous`) was edited since:
    a resume would train the rest of its epochs on other data."""
    check_unchanged([(path, digest, f"the run in {folder}") for path, digest in (previous.get("files") or {}).items()])


def _sweep_overrides(overrides: Any) -> list[str]:
    """What a command sweeps, in one order whatever the order typed (the last value of a key
    counts, as in Hydra); not what is no property of a run (`resume=true`, how a sweep is
    continued; the console's settings) nor seed=auto's budgets (sweep.*: more seeds continue it)."""
    last = {(o.key_or_group, o.package): o.input_line for o in parse(overrides)
            if o.key_or_group not in NOT_A_SETTING - {"experiment"} and not o.key_or_group.startswith("sweep.")}
    return sorted(last.values())


def _command_overrides() -> list[str]:
    """The task overrides of this command line, as Hydra saves them in multirun.yaml."""
    return [o.input_line for o in parse(command_line(sys.argv[1:]).overrides or []) if not o.is_hydra_override()]


def _earlier(what: str, base: Path, saved) -> Optional[Path]:
    """resume=true: the first folder of `saved` ((folder, its overrides or None), newest first)
    that this command's overrides started (in any order), said on stderr, or None (said too)."""
    command = _command_overrides()
    wanted = _sweep_overrides(command)
    saved = [(folder, overrides) for folder, overrides in saved if overrides is not None]
    for folder, overrides in saved:
        if _sweep_overrides(overrides) == wanted:
            print(f"Resuming the {what} in {folder}", file=sys.stderr)
            return folder
    # The same runs judged otherwise: report.* trains nothing, and a new sweep would train them all again.
    judged = [o for o in command if o.startswith("report.")]
    for folder, overrides in saved:
        if judged and _sweep_overrides(o for o in overrides if not o.startswith("report.")) == _sweep_overrides(
                o for o in command if not o.startswith("report.")):
            # Said and ended here: this runs inside OmegaConf's resolver, which would wrap an error.
            refuse(f"resume=true: the {what} in {folder} differs from this command only in {', '.join(judged)}, "
                   f"which trains nothing; to judge its runs by it: python -m mlpbench.report {folder} "
                   f"{' '.join(_quoted(o) for o in judged)}")
    print(f"resume=true: no earlier {what} with these overrides under {base}; starting a new one", file=sys.stderr)
    return None


def _quoted(override: str) -> str:
    """An override as a shell takes it: quoted where it holds brackets or spaces."""
    return f"'{override}'" if any(c in override for c in "[] ()*?") else override


def sweep_dir(base: str, resume: bool) -> str:
    """The `mlpbench_sweep_dir` resolver. Cached by OmegaConf, and the cache travels with the
    config to each job (also to joblib's worker processes): every job sees the same folder."""
    base_path = Path(base)
    if resume:
        def task_overrides(folder: Path) -> Optional[list]:
            config = read_sweep_config(folder)  # None: a sweep killed while Hydra wrote it
            return None if config is None else _as_written(config.hydra.overrides.task)

        saved = sorted((p.parent for p in base_path.glob(f"*/{SWEEP_CONFIG}")), key=lambda p: p.name, reverse=True)
        earlier = _earlier("sweep", base_path, ((folder, task_overrides(folder)) for folder in saved))
        if earlier is not None:
            return str(earlier)
    _remove_stale_claims(base_path)
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


def run_dir(base: str, resume: bool) -> str:
    """The `mlpbench_run_dir` resolver (hydra.run.dir): BASE/<date>/<time>, as Hydra's `now` gives
    it; with resume=true, the newest single run under BASE that the same overrides (in any order)
    started (its .hydra/overrides.yaml), so that rerunning an interrupted run's command with
    resume=true continues it there. In a sweep (-m) the run folder is unused: not searched."""
    base_path = Path(base)
    multirun = command_line(sys.argv[1:]).multirun
    if resume and not multirun:
        def saved_overrides(path: Path) -> Optional[list]:
            try:
                overrides = OmegaConf.to_container(OmegaConf.load(path))
            except Exception:  # a run killed while Hydra wrote it, or not Hydra's file
                return None
            return overrides if isinstance(overrides, list) else None

        saved = sorted(base_path.glob("*/*/.hydra/overrides.yaml"), key=lambda p: p.parts[-4:-2], reverse=True)
        earlier = _earlier("run", base_path, ((path.parent.parent, saved_overrides(path)) for path in saved))
        if earlier is not None:
            return str(earlier)
    now = time.localtime()
    return str(base_path / time.strftime("%Y-%m-%d", now) / time.strftime("%H-%M-%S", now))


# OmegaConf resolves a value whenever a later config is merged over it, so every composition
# of a preset also claims a folder under the default base (outputs/multirun) that nothing uses.
# Folders this process claimed and left empty are removed when it exits.
_claimed: list[Path] = []


STALE_CLAIM_S = 3600  # an empty folder this old was claimed by a process killed before it could remove it
_STAMPED = re.compile(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-\d+)?")


def _remove_stale_claims(base: Path) -> None:
    """Empty time-stamped folders under `base` that processes killed with kill -9 claimed and could
    not remove (a search's trials compose configs a few times each); a sweep's own folder holds
    its multirun.yaml within its first second."""
    now = time.time()
    for folder in base.glob("*"):
        try:
            if _STAMPED.fullmatch(folder.name) and now - folder.stat().st_mtime > STALE_CLAIM_S:
                folder.rmdir()  # only if empty
        except OSError:
            pass


@atexit.register
def _release_unused_claims() -> None:
    for folder in sorted(_claimed, key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()  # only if empty
        except OSError:
            pass


OmegaConf.register_new_resolver("mlpbench_sweep_dir", sweep_dir, replace=True, use_cache=True)
OmegaConf.register_new_resolver("mlpbench_run_name", run_name, replace=True)
OmegaConf.register_new_resolver("mlpbench_run_dir", run_dir, replace=True, use_cache=True)


# ---------------------------------------------------------------------------- one run


@dataclass
class RunPlan:
    skip: Optional[Status] = None  # the status of a finished run: nothing to do
    checkpoint: Optional[Path] = None  # continue from here
    previous: Optional[dict] = None  # the result.json found, if any


def plan_run(run_dir: Path, clear: bool = True) -> RunPlan:
    """What to do in a run folder: start, skip, or continue from the last checkpoint.
    `clear=False` only reads (DDP processes other than rank 0 follow rank 0's plan)."""
    if clear and (run_dir / RESULT_FILE).is_dir():  # no record, and in the way of the run's own
        shutil.rmtree(run_dir / RESULT_FILE)
    previous = read_result(run_dir)
    if previous is None and not (run_dir / LAST_CHECKPOINT).exists():
        if clear and (run_dir / RESULT_FILE).exists():  # a record that cannot be used: start over
            clear_run(run_dir)
        return RunPlan()
    status = Status((previous or {}).get("status", Status.running))
    if status.finished:
        return RunPlan(skip=status, previous=previous)
    # A run whose worker process died (record_lost_runs) or whose disk failed it failed through
    # no fault of its own: it continues from its checkpoint like a killed one.
    error = (previous or {}).get("error") or {}
    resumable = error.get("type") == WORKER_DIED or error.get("resumable") is True
    if (status is not Status.failed or resumable) and (run_dir / LAST_CHECKPOINT.parent).is_dir():
        return RunPlan(checkpoint=run_dir / LAST_CHECKPOINT, previous=previous)
    if clear:
        clear_run(run_dir)  # failed, or stopped before its first checkpoint: start again
    return RunPlan(previous=previous)


class Progress:
    """"Runs done: k of N (F failed), T so far, about T' left" after each group of runs, the time
    left from the runs so far (a sweep of many groups is otherwise a wall of epoch lines without
    an end); failed ones counted from their records, so that "done" never hides that none trained."""

    def __init__(self, total: int):
        self.total, self.done_runs, self.failed, self.started = total, 0, 0, time.monotonic()

    def done(self, group: list) -> None:
        """`group`: the JobReturns of the runs that just ended."""
        self.done_runs += len(group)
        self.failed += sum((read_result(_run_dir(ret)) or {}).get("status") == Status.failed for ret in group)
        if self.total < 2:
            return
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done_runs * (self.total - self.done_runs)
        log.info("Runs done: %d of %d%s, %s so far%s", self.done_runs, self.total,
                 f" ({self.failed} failed)" if self.failed else "", _duration(elapsed),
                 f", about {_duration(left)} left" if self.done_runs < self.total else "")


def _run_dir(ret) -> Path:
    """A JobReturn's run folder: the stacked launcher's Job has it; Hydra's own launchers' returns
    carry the run's Hydra config."""
    job = ret.return_value
    return job.run_dir if hasattr(job, "run_dir") else Path(ret.hydra_cfg.hydra.runtime.output_dir)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class ProgressLauncher:
    """Hydra's basic launcher, given the grid a run at a time (it runs them one by one anyway)
    and saying Progress's line after each. The stacked launcher says its own; joblib's gets the
    grid whole, as its workers then take the next run as soon as they are free (batches would
    wait for their slowest run)."""

    def __init__(self, launcher, total: int):
        self.launcher, self.progress = launcher, Progress(total)

    def launch(self, job_overrides, initial_job_idx: int):
        returns = self.launcher.launch(job_overrides, initial_job_idx=initial_job_idx)
        self.progress.done(returns)
        return returns

    def __getattr__(self, name: str):
        return getattr(self.launcher, name)


def record_lost_runs(sweep: Path, message: str, run_dirs: Optional[Iterable[Path]] = None) -> list[str]:
    """Runs of a sweep (of them, `run_dirs` alone, where given) left `running` by a process that
    died: recorded as failed, with why. Returns their names."""
    from mlpbench.files import write_json_atomic

    lost = []
    found = sorted(p.parent for p in Path(sweep).glob(f"*/{RESULT_FILE}"))
    if run_dirs is not None:
        given = {Path(d).resolve() for d in run_dirs}
        found = [d for d in found if d.resolve() in given]
    for run_dir in found:
        result = read_result(run_dir)
        if result is not None and result.get("status") == Status.running:
            result.update(status=Status.failed, error={"type": WORKER_DIED, "message": message})
            write_json_atomic(run_dir / RESULT_FILE, result)
            lost.append(run_dir.name)
    return lost


def record_unstarted_runs(jobs: Iterable[Any], message: str) -> list[str]:
    """Runs of a group whose worker process died before they wrote a record (killed, or out of
    memory, as the group reached it: loading its rows, building its stack): recorded as failed
    the same way (WorkerDied: resume=true trains them), not left without a word, and without a
    row in the report. `jobs`: mlpbench.run.Job's. Returns their names."""
    from mlpbench.results import RunRecord

    lost = []
    for job in jobs:
        if read_result(job.run_dir) is not None:  # started (record_lost_runs), or an earlier attempt's
            continue
        try:
            config = OmegaConf.to_container(job.cfg, resolve=True, enum_to_str=True)
        except Exception:
            config = OmegaConf.to_container(job.cfg, resolve=False, enum_to_str=True)
        job.run_dir.mkdir(parents=True, exist_ok=True)
        record = RunRecord(job.run_dir, list(job.overrides), config)
        record.update(status=Status.failed, error={"type": WORKER_DIED, "message": message})
        record.save()
        lost.append(job.run_dir.name)
    return lost


def clear_run(run_dir: Path) -> None:
    """Remove what an earlier attempt wrote, keeping its log (run_log) and Hydra's config."""
    for path in run_dir.iterdir():
        if path.name.startswith("events.out.tfevents") or path.name in (RESULT_FILE, "hparams.yaml"):
            path.unlink()
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)


def is_ddp_rank() -> bool:
    """A process Lightning's DDP started as rank 1.. of a run (the same command again): it follows
    rank 0, which planned the run and holds its folder."""
    return int(os.environ.get("LOCAL_RANK", "0")) > 0 or int(os.environ.get("NODE_RANK", "0")) > 0


def cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_per_run(launcher: DictConfig) -> Optional[int]:
    """torch threads for each of N runs in parallel under hydra/launcher=joblib (a search's
    tune.n_jobs > 1 too): cores / N; None, torch's own choice, for one run at a time."""
    n_jobs = launcher.get("n_jobs") if launcher.get("_target_") == JOBLIB_LAUNCHER else None
    if not n_jobs:
        return None
    parallel = cores() + 1 + n_jobs if n_jobs < 0 else n_jobs  # joblib: -1 = every core
    return max(1, cores() // max(1, parallel))


# ---------------------------------------------------------------------------- stacks

# Runs train together as one stacked model (mlpbench/stacked.py; hydra/launcher=stacked, the
# default) when their configs differ only in what may differ between the replicas of a stack:
# what enters training elementwise or only at the start, each replica its own: the seed
# (initialisation, split, batch order, dropout masks), the optimizer and its numbers (an optimizer
# per setting), the activation and dropout (per slice of replicas), the initialisation. `report.*`,
# `sweep.*` and `resume` do not train. Everything else (shapes, data, batch size, epochs, BatchNorm's
# settings, the loss) is one for the whole stack.
STACKED_SETTINGS = (("optim",), ("model", "activation"), ("model", "negative_slope"), ("model", "dropout"),
                    ("model", "init"))
NOT_TRAINING = (("seed",), ("report",), ("resume",), ("sweep",))


def setting(cfg: DictConfig, keys: tuple[str, ...]) -> str:
    """The value at `keys` (("model", "activation")) as comparable text."""
    return as_text(OmegaConf.select(cfg, ".".join(keys)))


def as_text(node: Any) -> str:
    """A config value or node as comparable text."""
    if OmegaConf.is_config(node):
        node = OmegaConf.to_container(node, resolve=True)
    return json.dumps(node, sort_keys=True, default=str)


def alone_because(cfg: DictConfig, cpu_max_batch_size: Optional[int] = None) -> Optional[str]:
    """Why a run cannot join a stack (it then trains on its own, as usual); None if it can.
    `cpu_max_batch_size`: on the CPU, larger batches train alone: there a step is already
    arithmetic-bound, and a stack of K took 1.05-1.2x the time of K runs at batch 128."""
    # A search trial's seeds (tune.repeats) are one stack whatever the batch size: its pruning
    # callback must see their mean.
    trial = cfg.tune.repeats > 1 and set(cfg.callbacks) == {TRIAL_CALLBACK}
    if cpu_max_batch_size is not None and not trial and cfg.data.batch_size > cpu_max_batch_size and trains_on_cpu(cfg):
        return (f"data.batch_size={cfg.data.batch_size}: on the CPU only batches up to "
                f"hydra.launcher.cpu_max_batch_size={cpu_max_batch_size} train faster stacked")
    if cfg.diagnostics:
        return "diagnostics=true measures one network's gradients"
    if cfg.trainer.gradient_clip_val:
        return "trainer.gradient_clip_val clips by the norm over one network's gradients"
    if cfg.callbacks and not trial:
        return f"callbacks.{next(iter(cfg.callbacks))} watches one run (early stopping, a search's pruning)"
    if device_count(cfg.trainer.devices) != 1:
        return f"trainer.devices={cfg.trainer.devices}"
    return None


def trains_on_cpu(cfg: DictConfig) -> bool:
    accelerator = str(cfg.trainer.accelerator)
    if accelerator != "auto":
        return accelerator == "cpu"
    if "torch" not in sys.modules and not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/dxg")
                                           or os.path.exists("/proc/driver/nvidia")):
        return True  # no NVIDIA GPU (nor WSL's): said without importing torch, 1-2 s the launcher would wait for
    import torch  # only here: the launcher otherwise leaves torch to the processes that train

    return not torch.cuda.is_available()


def gpus() -> int:
    """The GPUs torch sees here (0 on a CPU build)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


_gpu_slots: dict[Path, tuple[int, Any]] = {}  # this process's slot in each sweep folder, and its held lock


def gpu_slot(sweep_dir: str | Path) -> int:
    """This process's place among the processes of one sweep training side by side: the lowest
    slot no live process holds (a lock file in the sweep's folder, let go when its process ends),
    kept for every run the process trains. Not a job's number: jobs end out of order, and job
    n + GPUs would share a GPU still busy with a slower job n while another GPU idles."""
    folder = Path(sweep_dir).resolve()
    if folder not in _gpu_slots:
        slot = 0
        while (handle := try_lock(folder / f".gpu-slot-{slot}.lock", wait=0)) is None:  # held: the next
            slot += 1
        _gpu_slots[folder] = (slot, handle)
    return _gpu_slots[folder][0]


def spread_over_gpus(cfg: DictConfig, sweep_dir: str | Path) -> DictConfig:
    """Runs side by side each on a GPU of their own: a run with trainer.devices=1 in a process
    that trains runs of the sweep in `sweep_dir` (a launcher's worker) trains on GPU
    gpu_slot % GPUs of a machine with several. Devices the user listed, a run on the CPU or a
    machine of one GPU: as they are."""
    if trains_on_cpu(cfg) or OmegaConf.is_list(cfg.trainer.devices) or cfg.trainer.devices != 1 or gpus() < 2:
        return cfg
    cfg.trainer.devices = [gpu_slot(sweep_dir) % gpus()]
    return cfg


def stack_key(cfg: DictConfig, position: Optional[dict] = None) -> str:
    """Runs with equal keys train as one stack: the same config but for what STACKED_SETTINGS
    and NOT_TRAINING name, at the same point (`position`: fresh, or the epoch and step of the
    checkpoint they continue from)."""
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    for keys in (*STACKED_SETTINGS, *NOT_TRAINING):
        node = config
        for key in keys[:-1]:
            node = node[key]
        node.pop(keys[-1], None)
    return json.dumps([config, position], sort_keys=True, default=str)


# ---------------------------------------------------------------------------- sweep end


_held_locks: list = []
# The sweep folders this process started: an interrupted sweep's command names them (mlpbench.__main__).
started_sweeps: list[Path] = []

# Set in a sweep's worker process by the SIGTERM its sweep sends to stop it when Lightning's own
# handler is not in place yet (the worker starting, a run loading its rows): the run then stops
# at its first step (mlpbench.trainer.make_trainer's callback) instead of training to its end.
STOP_ASKED = threading.Event()
# Error types of a run its config refused (mlpbench.schema.ConfigError, its DataError and
# TableError): the same command fails them the same way again.
REFUSED = ("ConfigError", "DataError", "TableError")

# Hydra's basic sweeper composes every grid point before the first run: 100,000 points are 11
# silent minutes. Beyond this the sweep is refused with a message.
MAX_GRID = 10_000


def _swept_counts(config: DictConfig) -> Optional[dict[str, int]]:
    """{swept override: how many values it gives}; None where Hydra alone can count them
    (glob(), interval())."""
    counts = {}
    for o in grid_overrides(config):
        if not o.is_sweep_override():
            continue
        if isinstance(o.value(), IntervalSweep):
            raise ConfigError(f"{o.input_line}: interval() is a range for a search (hydra/sweeper=tune, "
                              "tune.space); a grid sweeps a list, range() or glob()")
        if isinstance(o.value(), Glob):  # a glob picks among the options of a config group
            from hydra.core.global_hydra import GlobalHydra

            loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
            if loader is None:
                return None
            counts[o.input_line] = len(o.value().filter(loader.get_group_options(o.key_or_group)))
            continue
        try:
            counts[o.input_line] = sum(1 for _ in o.sweep_string_iterator())
        except ValueError as e:  # range(0,5,0)
            raise ConfigError(f"{o.input_line}: {e}") from None
        except HydraException:
            return None
    return counts


def _grid(config: DictConfig) -> bool:
    """A sweep of the grid given with -m: Hydra's basic sweeper or mlpbench's (hydra/sweeper=grid)."""
    return config.hydra.sweeper.get("_target_") in (BASIC_SWEEPER, GRID_SWEEPER)


def grid_size(config: DictConfig) -> Optional[int]:
    """Runs in a basic sweep: the product of its swept values; None for another sweeper (a
    search asks for its own trials) or values Hydra alone can count."""
    if not _grid(config):
        return None
    try:
        counts = _swept_counts(config)
    except ConfigError:  # said by the sweep's own check (empty_sweeps)
        return None
    return None if counts is None else math.prod(counts.values())


def usable_folder(value: Any, key: str) -> Path:
    """An output folder `key` names, or a ConfigError saying why it cannot be one (empty, below
    a file, not writable): checked before anything is written there."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise ConfigError(f"{key}=: an empty folder name would write into the current folder; give a folder")
    path = Path(text).expanduser()
    long = next((part for part in path.parts if len(part.encode()) > 255), None)
    if long is not None:  # file systems take 255 bytes a name
        raise ConfigError(f"{key}={text[:80]}...: a folder name of {len(long.encode())} bytes; at most 255")
    existing = next(p for p in (path, *path.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise ConfigError(f"{key}={text}: cannot write into {text}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={text}: cannot write into {existing}: permission denied")
    return path


def check_subdir(subdir: Any, runs: int = 1) -> None:
    """hydra.sweep.subdir as written: a path inside the sweep folder, never outside it."""
    text = str(subdir or "")
    if not text.strip() or text.startswith(("/", "~")) or ".." in Path(text).parts or not Path(text).parts:
        raise ConfigError(f"hydra.sweep.subdir={text}: must name a folder inside the sweep folder "
                          "(relative, without '..')")
    if runs > 1 and "${" not in text:  # every run would write into the one folder
        raise ConfigError(f"hydra.sweep.subdir={text}: names one folder for all {runs} runs; make it name each "
                          "run's own, e.g. ${hydra.job.num} (the default names it by its overrides)")


class QuickCompositions:
    """Hydra's `load_sweep_config(master_config, overrides)`, quicker for a sweep's jobs: Hydra
    composes each job from its files (~140 ms on 2 cores; a sweep of 100 seeds spent most of its
    39 s composing each seed twice, to check it and to run it). A job whose overrides differ from
    one composed already only in plain values (`seed=7` for `seed=3`: same keys, same order, same
    = or +, no config group's option, no ~ or @, no key inside another; a mapping only of plain
    values, none ???, with the same keys in the same order; of Hydra's own settings only
    hydra.sweep.* and hydra.run.*) is that composition's copy with those values set as Hydra sets
    them (OmegaConf.update, merging) and what Hydra's ConfigLoaderImpl sets from the overrides,
    environment and folder redone (~12 ms). Anything else, or a value the copy refuses, is Hydra's
    own composition (and its message). Kept per master config: what a job takes from it (Hydra's
    own overrides, override_dirname's settings) is that master's. A search's trials (their folder
    and pruning callback each their own) are copies too: a 6-trial search composed 20 times, 6 s
    of its 29 s."""

    # Configs kept to copy from, at most (~0.2 MB each).
    MAX_KEPT = 20

    def __init__(self, compose):
        self.compose = compose
        # by (master config, shape): (the master, kept alive so that its id stays its own; a
        # composed job's config; that job's overrides)
        self.composed: dict[tuple, tuple[DictConfig, DictConfig, list]] = {}

    def __call__(self, master_config: DictConfig, sweep_overrides) -> DictConfig:
        import copy

        parsed = parse(sweep_overrides)
        shape = self._shape(master_config, parsed)
        key = (id(master_config), shape)
        if shape is not None and key in self.composed:
            config = self._like(*self.composed[key], parsed)
            if config is not None:
                return config
        config = self.compose(master_config, list(sweep_overrides))
        if shape is not None and key not in self.composed and len(self.composed) < self.MAX_KEPT:
            self.composed[key] = (master_config, copy.deepcopy(config), parsed)
        return config

    @staticmethod
    def _plain(o, groups) -> bool:
        value = o.value()
        # A mapping's ??? would keep the earlier job's value where Hydra's merge keeps the default's.
        return (o.type in (OverrideType.CHANGE, OverrideType.ADD) and o.package is None
                and (not o.is_hydra_override() or o.key_or_group.startswith(("hydra.sweep.", "hydra.run.")))
                and o.key_or_group not in groups and not o.is_sweep_override()
                and not (isinstance(value, dict) and any(isinstance(v, (dict, list)) or v == MISSING
                                                         for v in value.values())))

    def _shape(self, master_config: DictConfig, parsed: list) -> Optional[tuple]:
        """The overrides with plain values left out, or None where a key comes twice or inside
        another (`model.units=[8] model.units.0=3`: Hydra applies them in order)."""
        groups = master_config.hydra.runtime.choices or {}
        # A group's option is chosen before any value is set; values are set in their order.
        keys = sorted(o.key_or_group for o in parsed if o.key_or_group not in groups)
        if any(b == a or b.startswith(a + ".") for a, b in zip(keys, keys[1:])):
            return None
        return tuple((o.key_or_group, o.type.name, self._kind(o) if self._plain(o, groups) else o.input_line)
                     for o in parsed)

    @staticmethod
    def _kind(o) -> Optional[tuple]:
        """What of a plain value is shape: a mapping's keys in their order (merged over the
        earlier mapping, the same keys leave nothing of it, in Hydra's order); for + whether it
        is a list (Hydra adds a list or mapping over a value already there, nothing else)."""
        value = o.value()
        if isinstance(value, dict):
            return ("mapping", *value)
        return ("list",) if o.type is OverrideType.ADD and isinstance(value, list) else None

    @staticmethod
    def _like(master_config: DictConfig, reference: DictConfig, reference_overrides: list,
              parsed: list) -> Optional[DictConfig]:
        import copy

        from hydra._internal.config_loader_impl import get_overrides_dirname
        from omegaconf.errors import OmegaConfBaseException

        config = copy.deepcopy(reference)
        try:
            for theirs, ours in zip(reference_overrides, parsed):
                if ours.input_line != theirs.input_line:
                    OmegaConf.update(config, ours.key_or_group, ours.value(), merge=True,
                                     force_add=ours.type is OverrideType.ADD)
        except OmegaConfBaseException:
            return None
        # What Hydra's composition sets from the overrides, the environment and the folder.
        task = [o for o in parsed if not o.is_hydra_override()]
        config.hydra.overrides.task = [o.input_line for o in task]
        # As written: iterating the master's list would resolve a ${...} in its strings.
        config.hydra.overrides.hydra = [*OmegaConf.to_container(master_config.hydra.overrides.hydra),
                                        *(o.input_line for o in parsed if o.is_hydra_override())]
        config.hydra.runtime.cwd = os.getcwd()
        for name in config.hydra.job.env_copy:
            config.hydra.job.env_set[name] = os.environ[name]
        dirname = config.hydra.job.config.override_dirname
        config.hydra.job.override_dirname = get_overrides_dirname(
            overrides=task, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys)
        return config


# Grid values checked one by one before the first run (check_grid_values): beyond this many a
# key's values are left to each run (a config group's option is composed, ~140 ms; a plain
# value is a copy of an earlier value's config, ~12 ms).
MAX_CHECKED_VALUES = 100


def _check_data_files(cfg: DictConfig) -> None:
    """A data file that is not there: said once, before the first run, not by each run that would
    read it. Not on resume=true, whose finished runs read nothing (their file may have moved)."""
    from mlpbench.table import check_files

    if not cfg.resume:
        check_files(cfg.data)


def check_grid_values(config: DictConfig) -> None:
    """The grid's values checked before its first run trains, each composed with the command's
    other settings: `-m model.depth=2,-1` is refused, naming the value, before depth 2 trains. A
    value is refused where it fails both beside the other swept keys' first values and alone (they
    at their defaults): keys swept together (`data.path=a.csv,b.csv` with data=table) pass, and
    values only wrong in some combinations (`model.depth=3` with two widths) are each run's to
    refuse. A ConfigError; a long list's values after its first are each run's to check, and a
    glob() Hydra's to match (its key left at its default here)."""
    from hydra.core.global_hydra import GlobalHydra

    from mlpbench.schema import checked

    if not GlobalHydra.instance().is_initialized():
        _check_data_files(checked(config))
        return
    parsed = grid_overrides(config)
    swept: dict[str, list[str]] = {}
    # Run folders named by their overrides (the default subdir; not hydra.sweep.subdir=${hydra.job.num}).
    named_by_overrides = "mlpbench_run_name" in str(OmegaConf.to_container(config.hydra.sweep).get("subdir"))
    for o in parsed:
        if o.is_sweep_override() and o.is_discrete_sweep():
            try:
                values = list(o.sweep_string_iterator())
            except HydraException:  # glob(): the group's options, checked by Hydra as it matches them
                continue
            if named_by_overrides:
                _check_folder_names(o.get_key_element(), values)
            swept[o.get_key_element()] = values[:1] if len(values) > MAX_CHECKED_VALUES else values
    compose = QuickCompositions(GlobalHydra.instance().config_loader().load_sweep_config)
    # seed=auto is mlpbench's grid sweeper's, given to its runs as numbers (another sweeper refuses it).
    auto = config.hydra.sweeper.get("_target_") == GRID_SWEEPER
    fixed = ["seed=1" if auto and o.input_line == "seed=auto" else o.input_line
             for o in parsed if not o.is_sweep_override()]

    def refusal(overrides: list[str]) -> Optional[Exception]:
        try:
            _check_data_files(checked(compose(config, [*fixed, *overrides])))
            return None
        except (ConfigError, HydraException) as e:
            return e

    first = {key: f"{key}={values[0]}" for key, values in swept.items()}
    shared = refusal([])
    if shared is not None:  # the command's own settings, unless a swept key supplies what they lack
        refused = refusal(list(first.values())) if first else shared
        if refused is not None and (not first or _reason(refused) == _reason(shared)):
            raise refused  # the same without the swept values: the command's own settings
        if refused is not None:
            raise ConfigError(f"the grid's first run ({' '.join(first.values())}) cannot run: {_reason(refused)}")
    for key, values in swept.items():
        others = [o for k, o in first.items() if k != key]
        for value in values:
            override = f"{key}={value}"
            refused = refusal([*others, override])
            if refused is not None and others and refusal([override]) is None:
                refused = None  # right in another combination: that run's to refuse, if any
            if refused is not None:
                raise ConfigError(f"{override}: this value of the grid cannot run: {_reason(refused)}")


def _check_folder_names(key: str, values: list[str]) -> None:
    """A ConfigError where two values of a swept key would name one run folder (run_name: a / in
    a value becomes _): the second run would be taken for the first and skipped."""
    named: dict[str, str] = {}
    for value in values:
        name = run_name(f"{key}={value}", 0)
        if named.get(name, value) != value:
            raise ConfigError(f"{key}={named[name]} and {key}={value} would share a run folder ({name}: a / in a "
                              "folder's name becomes _); give one of them another name")
        named[name] = value


def _reason(e: Exception) -> str:
    """A composition's refusal on one line, with what Hydra's own message leaves in its cause
    ("Error merging override model.activation=foo" says neither what is wrong nor what is allowed)."""
    text = " ".join(str(e).replace("invalid configuration:", "").split())
    cause = e.__cause__
    if isinstance(e, HydraException) and cause is not None and str(cause).split("\n")[0] not in text:
        text += ": " + " ".join(str(cause).split("\n")[0].split())
    return text


def empty_sweeps(config: DictConfig) -> Optional[str]:
    """The first swept override that gives no values (`seed=range(5,1)`, a glob that matches no
    option), or None; a ConfigError for one that cannot be swept."""
    return next((o for o, n in (_swept_counts(config) or {}).items() if n == 0), None)


# What a sweep that trained nothing leaves (refused by a check after its folder was made).
_BOOKKEEPING = {SWEEP_LOCK, ".tune.lock", SWEEP_CONFIG}


def _remove_if_unused(folder: Path) -> None:
    """At exit: a sweep folder holding nothing but locks and Hydra's config goes, so that a refused
    sweep leaves no folder that looks like a sweep."""
    try:
        entries = {p.name for p in folder.iterdir()}
        if entries and entries <= _BOOKKEEPING:
            for name in entries:
                (folder / name).unlink()
            folder.rmdir()
    except OSError:
        pass


class SweepSummary(HydraCallback):
    """A multirun's bracket. At the start, a lock on the sweep folder: a second sweep started
    into it stops instead of training the same runs twice. At the end, the report
    (summary.csv/.md, figures), printed; then a non-zero exit naming the runs that failed, if
    any did. A sweeper with a report of its own (`report_sweep(sweep_dir, config) -> ok`, as the
    search's) makes that instead."""

    LOCK_FILE = SWEEP_LOCK
    RUN_LOCK_FILE = ".run.lock"  # a single run's, in its folder

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A single run's config and folder, checked before Hydra makes the folder."""
        from mlpbench.schema import checked

        try:
            checked(config)
            folder = usable_folder(OmegaConf.select(config, "hydra.run.dir", throw_on_resolution_failure=False),
                                   "hydra.run.dir")
            try:  # made here, where Hydra's own mkdir would fail with a traceback (/sys, /proc: no access check tells)
                folder.mkdir(parents=True, exist_ok=True)
                # One command a run folder at a time (a rerun with resume=true while the first still
                # trains would write the same files); DDP's ranks 1.. are rank 0's run, under its lock.
                lock = None if is_ddp_rank() else try_lock(folder / self.RUN_LOCK_FILE)
            except OSError as e:
                raise ConfigError(f"hydra.run.dir={folder}: cannot write into {folder}: {e.strerror}") from None
        except ConfigError as e:
            refuse(str(e))
        if is_ddp_rank():
            return
        if lock is None:
            refuse(f"another command is running the run in {folder}; wait for it to end or stop it (then the same "
                   "command with resume=true continues it)")
        _held_locks.append(lock)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mlpbench.schema import checked, validate_launcher

        self.started = time.monotonic()
        try:  # what every run shares is checked once, before any folder is made
            validate_launcher(config.hydra.launcher)
            if not _grid(config):  # a grid's are checked as its runs' (check_grid_values)
                checked(config)
            usable_folder(config.hydra.sweep.dir, "hydra.sweep.dir")
            check_subdir(OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir"),
                         grid_size(config) or 1)
            empty = empty_sweeps(config) if _grid(config) else None
            if empty:
                hint = " (a range counts up: range(1,5) is 1, 2, 3, 4)" if "range(" in empty else ""
                raise ConfigError(f"{empty}: gives no values, so the sweep would run nothing{hint}")
            if _grid(config):
                check_grid_values(config)
                check_reused_folder(config)
        except ConfigError as e:
            refuse(str(e))
        folder = Path(config.hydra.sweep.dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock = try_lock(folder / self.LOCK_FILE)
        except OSError as e:  # Hydra would turn it into a warning, then fail with a traceback
            refuse(f"cannot write into {folder}: {e.strerror}")
        if lock is None:  # the folder is the other sweep's: left as it is
            refuse(f"another sweep is running in {folder}; wait for it to end, or give this one another folder "
                   "(hydra.sweep.dir=...)")
        # Held until this process ends; kept off the callback, which joblib pickles to its workers.
        _held_locks.append(lock)
        atexit.register(_remove_if_unused, folder)
        started_sweeps.append(folder)
        runs = grid_size(config)
        if runs is not None and runs > MAX_GRID:
            refuse(f"the grid has {runs:,} runs, more than {MAX_GRID:,}: Hydra composes every one before the first "
                   "starts. Split it into several sweeps.")
        if runs is not None and runs > 200:
            print(f"Checking the {runs:,} runs of the grid before the first starts ...", file=sys.stderr)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._report(config)
        except ConfigError as e:  # a file the report needs that cannot be used: its message names it
            print(f"mlpbench: error: the sweep's report could not be made: {e}", file=sys.stderr)
            sys.exit(1)
        except OSError as e:  # a full disk or a folder that cannot be written: what, and how to make it later
            print(f"mlpbench: error: the sweep's report could not be written: {e.strerror or e}"
                  f"{f' ({e.filename})' if e.filename else ''}. Free the space (or the folder), then: python -m "
                  f"mlpbench.report {config.hydra.sweep.dir}", file=sys.stderr)
            sys.exit(1)
        except Exception as e:  # Hydra would turn it into a warning and exit 0
            log.exception("The sweep's report could not be made: %s: %s", type(e).__name__, e)
            sys.exit(1)

    def _report(self, config: DictConfig) -> None:
        from mlpbench.report import build, sweeper_report

        sweep = Path(config.hydra.sweep.dir)
        own_report = sweeper_report(sweep, config)
        if own_report is not None:
            if not own_report():
                sys.exit(1)
            return
        report = build([sweep])
        took = time.monotonic() - getattr(self, "started", time.monotonic())
        if report.text:
            trained = any(run.status != Status.failed for run in report.runs)  # else no curve to compare
            print(f"\n{report.text}\n{len(report.runs)} runs in {sweep} ({took / 60:.1f} min); report: "
                  f"{', '.join(p.name for p in report.written)}"
                  + (f"\nCompare the curves: {command('tensorboard')} --logdir {sweep}" if trained else ""))
        failed = [run for run in report.runs if run.status == Status.failed]
        if failed:
            print(f"\n{len(failed)} run(s) failed:", file=sys.stderr)
            # Runs that failed alike (a data file every run reads) are named together, the error once.
            alike: dict[tuple[str, str], list[str]] = {}
            for run in failed:
                error = run.result.get("error") or {}
                why = (str(error.get("type", "?")), " ".join(str(error.get("message", "")).split()))
                alike.setdefault(why, []).append(run.name)
            for (kind, message), names in alike.items():
                where = (f"log: {run_log(sweep / names[0], config)}" if len(names) == 1 else
                         f"{len(names)} runs; logs: each run's {run_log(sweep, config).name} in {sweep}")
                print(f"  {'; '.join(names)}: {kind}: {message} ({where})", file=sys.stderr)
            # A refused config fails the same way every time: only the others can succeed again.
            refused = {run.name for run in failed if (run.result.get("error") or {}).get("type") in REFUSED}
            if refused:
                many = len(refused) > 1
                print(f"Fix the value{'s' if many else ''} named above in the command (or the file "
                      f"{'they name' if many else 'it names'}): run again as it is, {'they' if many else 'it'} would "
                      "fail the same way.", file=sys.stderr)
            if len(refused) < len(failed):
                print("Rerun the same command with resume=true to retry "
                      f"{'the others' if refused else 'them'}; finished runs are kept.", file=sys.stderr)
            sys.exit(1)
