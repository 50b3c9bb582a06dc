"""hydra/launcher=stacked, mlpbench's default launcher: a sweep's runs that differ only in what
may differ within a stack (mlpbench/sweep.py's STACKED_SETTINGS: seed, optimizer, activation,
dropout, initialisation) train together as one stacked model (mlpbench/stacked.py); every other
run trains on its own. The stacks, and the runs on their own, train in `workers` processes side by
side, one thread each: a run's numbers do not depend on the thread count (mlpbench/model.py),
so each run gives what it gives alone under the basic launcher, to the bit.
conf/hydra/launcher/stacked.yaml names it.

Hydra sets up every job first (its folder, .hydra/ and log file, as for any launcher), then the
groups train, the costliest first, each replica writing its own run folder.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import open_dict

log = logging.getLogger("mlpbench")


class RunLogFiles(logging.Handler):
    """Log records into the run folders' log files: a record with `log_to=RUN_DIR` (extra) into
    that run's only, with `log_to=()` into none (the console's summary of all), others into all.
    By folder, not by position: a stack trains its runs in its own order."""

    def __init__(self, paths: list[Path], formatter: logging.Formatter | None):
        super().__init__()
        self.files = {p.parent.resolve(): logging.FileHandler(p, mode="a") for p in paths}
        for handler in self.files.values():
            handler.setFormatter(formatter)
        self._targets: dict = {}  # log_to as the records give it -> its handler: resolved once, not per record

    def emit(self, record: logging.LogRecord) -> None:
        target = getattr(record, "log_to", None)
        if target is None:
            for handler in self.files.values():
                handler.handle(record)
        elif target != ():
            if target not in self._targets:
                self._targets[target] = self.files[Path(target).resolve()]
            self._targets[target].handle(record)

    def close(self) -> None:
        for handler in self.files.values():
            handler.close()
        super().close()


class StackedLauncher(Launcher):
    def __init__(self, max_replicas: int | None = None, cpu_max_batch_size: int | None = 64,
                 workers: int | None = None) -> None:
        self.max_replicas = max_replicas
        self.cpu_max_batch_size = cpu_max_batch_size
        self.workers = workers
        self.config = self.hydra_context = self.task_function = None
        # The worker processes, kept from one launch to the next: seed=auto launches a round at a
        # time and a search a batch of trials, and each new pool costs its processes' start (under
        # spawn, ~3 s of importing torch and Lightning: rounds of two runs took 2.4-3.1x the basic
        # launcher's time with a pool each). Ended with the sweep's process, or when a launch is
        # interrupted. A pool of one process each (_kept_pools).
        self._pools: list = []

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        _keep_compositions(hydra_context.config_loader)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from mlpbench import run
        from mlpbench.schema import CPU_MAX_REPLICAS
        from mlpbench.sweep import Progress, cores, gpus, trains_on_cpu

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        # The workers' fork server imports torch and Lightning while Hydra sets up the jobs, where
        # the overrides say there will be more than one group.
        on_cpu = trains_on_cpu(self.config)
        gpus_here = 0 if on_cpu else gpus()
        # One group per CPU core (one thread each), or one per GPU (a stack keeps a GPU busy;
        # processes sharing one each pay for a CUDA context).
        slots = cores() if on_cpu else max(1, gpus_here)
        # On several GPUs a group is cut so that each GPU trains a part (_spread): up to a worker a job.
        parts = (len(job_overrides) if gpus_here > 1
                 else _groups_foreseen(job_overrides, self.max_replicas or CPU_MAX_REPLICAS))
        workers = min(self.workers or slots, parts)
        if workers > 1 and not _socket_fits():
            log.warning("TMPDIR=%s is too long a path for the worker processes' socket (at most %d characters): "
                        "the groups train one after another in this process; a shorter TMPDIR trains them in %d "
                        "workers", tempfile.gettempdir(), MAX_TEMP_DIR, workers, extra={"log_to": ()})
            workers = slots = 1
        # SIGTERM before the groups train (a pool's first worker waits for the fork server's
        # imports, seconds): the sweep ends as interrupted, its pool ended. Training takes it over.
        # Set before the server starts: one just after its start killed the sweep without a word.
        previous = signal.signal(signal.SIGTERM, _stop_before_training) or signal.SIG_DFL
        pools: list = []
        try:
            if workers > 1:
                _start_fork_server()
            returns: list[JobReturn] = []
            for idx, overrides in enumerate(job_overrides, initial_job_idx):
                sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                with open_dict(sweep_config):
                    sweep_config.hydra.job.id = sweep_config.hydra.job.num = idx
                # The job's folder, .hydra/ and log file, and mlpbench's checks; no training yet.
                returns.append(run_job(hydra_context=self.hydra_context, task_function=run.prepare,
                                       config=sweep_config, job_dir_key="hydra.sweep.dir",
                                       job_subdir_key="hydra.sweep.subdir"))
                configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
            groups = self._groups(returns)
            if workers > 1 and gpus_here > 1:
                groups = _spread(groups, min(workers, gpus_here))
            # One group: this process's threads serve it best (kept workers are kept for the next launch).
            if len(groups) > 1 and workers > 1:
                pools = self._kept_pools(workers)
            elif len(groups) > 1 and self.workers != 1 and slots > 1:
                # More groups than the overrides foretold (runs that must train on their own).
                workers = min(self.workers or slots, len(groups))
                pools = self._kept_pools(workers)
            if pools:
                groups = _balanced(groups, workers)
            signal.signal(signal.SIGTERM, previous)
            stacks = sum(len(g) > 1 for g in groups)
            where = f"in {workers} processes of one thread each" if pools else "in this process"
            if groups:
                log.info("Launching %d jobs: %d stacked model(s) and %d run(s) on their own, %s", len(job_overrides),
                         stacks, len(groups) - stacks, where)
            else:  # every run finished already (resume=true), or refused before training
                log.info("Launching %d jobs: none to train", len(job_overrides))
            progress = Progress(sum(len(g) for g in groups))
            if pools:
                self._train_in_workers(groups, workers, progress)
            else:
                for group in groups:
                    train_stack(*self._stack_args(group))
                    progress.done(group)
        except BaseException:  # interrupted (its workers were sent SIGTERM), or broken: no workers to keep
            self._end_pools()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        for ret in returns:  # what each run did is in its result.json; the report reads those
            if ret.status is JobStatus.FAILED:  # set up by Hydra, failed in mlpbench's checks
                _record_setup_failure(ret)
                ret.status = JobStatus.COMPLETED
            ret.return_value = None
        return returns

    def _kept_pools(self, workers: int) -> list:
        """At least `workers` pools of one process each: those kept from an earlier launch that are
        whole (a worker killed while it waited breaks its pool), new ones for the rest. A pool a
        worker, not one of them all: a worker that dies (killed, out of memory) breaks its own pool
        alone (one shared pool ended every worker with it, the others' runs failed too)."""
        for slot, pool in enumerate(self._pools):
            if _broken(pool):
                self._renew(slot)
        while len(self._pools) < workers:
            # Kept before its process starts (the first waits for the fork server's imports):
            # interrupted then, it is ended as a whole one is.
            self._pools.append(_new_pool())
            _start(self._pools[-1])
        return self._pools

    def _renew(self, slot: int):
        """The pool of `slot` (its worker died) ended, and a new one in its place."""
        _end(self._pools[slot])
        self._pools[slot] = _new_pool()
        _start(self._pools[slot])
        return self._pools[slot]

    def _end_pools(self) -> None:
        """Let the kept workers go: at the end of a sweep (its sweeper calls `close`), or after an
        interruption."""
        pools, self._pools = self._pools, []
        for pool in pools:
            _end(pool)

    def close(self) -> None:
        """The sweep's end: its kept worker processes end now, not in the interpreter's teardown."""
        self._end_pools()

    def _groups(self, returns: list[JobReturn]) -> list[list[JobReturn]]:
        """The prepared jobs in groups that train together, the costliest first (so that the
        last to start are the shortest); a run given twice (seed=1,1) once."""
        from mlpbench.checkpoints import usable_checkpoint
        from mlpbench.schema import CPU_MAX_REPLICAS
        from mlpbench.sweep import alone_because, clear_run, stack_key, trains_on_cpu

        groups: dict[str, list[JobReturn]] = {}
        alone: list[list[JobReturn]] = []
        taken: dict[Path, int] = {}
        for ret in returns:
            job = ret.return_value if ret.status is JobStatus.COMPLETED else None
            if job is None:  # skipped (finished already) or refused (recorded as failed)
                continue
            if job.run_dir in taken:
                log.info("Run %s: job #%d is the same run as job #%d; it trains once", job.run_dir.name, job.num,
                         taken[job.run_dir])
                continue
            taken[job.run_dir] = job.num
            why = alone_because(job.cfg, self.cpu_max_batch_size)
            if why is not None:
                log.info("Run %s trains on its own: %s", job.run_dir.name, why)
                alone.append([ret])
                continue
            if job.plan.checkpoint is not None:
                found = usable_checkpoint(job.plan.checkpoint, job.cfg.model)  # train_group reads it from here
                if found is None:  # unusable: the run starts over, as on its own
                    clear_run(job.run_dir)
                job.plan.checkpoint, job.position = found or (None, None)
            groups.setdefault(stack_key(job.cfg, job.position), []).append(ret)
        stacks = []
        for group in groups.values():
            # Off the CPU, max_replicas=null: the whole group; train_group fits K to the GPU's memory.
            limit = self.max_replicas or (CPU_MAX_REPLICAS if trains_on_cpu(group[0].return_value.cfg) else len(group))
            stacks += [group[i:i + limit] for i in range(0, len(group), limit)]
        return sorted(stacks + alone, key=_cost, reverse=True)

    def _stack_args(self, group: list[JobReturn]) -> tuple:
        """What train_stack needs, in plain data (it may go to a worker process)."""
        from mlpbench.results import run_log

        paths = [run_log(Path(ret.hydra_cfg.hydra.runtime.output_dir), ret.hydra_cfg) for ret in group]
        return ([ret.return_value for ret in group], paths, group[0].hydra_cfg.hydra.job_logging, self.config.hydra.verbose,
                str(Path(self.config.hydra.sweep.dir).resolve()))

    def _train_in_workers(self, groups: list[list[JobReturn]], workers: int, progress) -> None:
        """Each group trained in one of `workers` kept processes of one thread each, at most one
        group a process at a time, so that nothing waits in a queue: Ctrl-C and SIGTERM reach the
        groups training (their runs keep what they trained: resume=true) and no further group
        starts. A worker that dies fails the runs of its group; the other workers train on, and a
        new process takes its place."""
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        from mlpbench.sweep import record_lost_runs, record_unstarted_runs

        for group in groups:
            for ret in group:
                job = ret.return_value
                job.threads = 1
                if job.cfg.trainer.enable_progress_bar is None:
                    job.cfg.trainer.enable_progress_bar = False  # bars side by side would draw over each other
        pending, running = list(groups), {}  # running: future -> (group, its worker's slot)
        unstarted = 0  # runs of groups a stop ended before they trained, or with their worker
        interrupted = []  # the exit code, once interrupted

        def stop(code: int) -> None:
            interrupted.append(code)
            for pool in self._pools:
                _forward(pool, signal.SIGTERM)  # Lightning turns it into an `interrupted` run

        previous = signal.signal(signal.SIGTERM, lambda *_: stop(143))
        try:
            while running or (pending and not interrupted):
                try:
                    busy = {slot for _, slot in running.values()}
                    for slot in (s for s in range(workers) if s not in busy):
                        if not pending or interrupted:
                            break
                        group = pending.pop(0)
                        try:
                            future = self._pools[slot].submit(train_stack, *self._stack_args(group))
                        except BrokenProcessPool:  # its worker died as it waited: a new one
                            future = self._renew(slot).submit(train_stack, *self._stack_args(group))
                        running[future] = (group, slot)
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:  # the workers ignore Ctrl-C; SIGTERM makes them keep their runs
                    stop(130)
                    continue
                for future in done:
                    group, slot = running.pop(future)
                    try:
                        future.result()
                    except SystemExit as e:  # its group was interrupted
                        interrupted.append(e.code or 130)
                    except BrokenProcessPool as e:
                        if interrupted:  # a worker ended by the SIGTERM sent to stop, as it started
                            unstarted += len(group)
                            continue
                        reason = f"its worker process died: {' '.join(str(e).split())[:300]}"
                        lost = record_lost_runs(Path(str(self.config.hydra.sweep.dir)), reason,
                                                [ret.return_value.run_dir for ret in group])
                        # Those that had not begun (their worker died as the group reached it)
                        # failed with it too: else they were left out of the report unsaid.
                        lost += record_unstarted_runs([ret.return_value for ret in group], reason)
                        log.error("A worker process died (killed, or out of memory?). Recorded as failed: %s. "
                                  "Rerun the same command with resume=true to run them again (from their last "
                                  "epoch's checkpoints); the other runs go on.", ", ".join(lost) or "none")
                        self._renew(slot)
                    if not interrupted:  # runs that stopped are not "trained"
                        progress.done(group)
        finally:
            signal.signal(signal.SIGTERM, previous)
        if interrupted:
            unstarted += sum(len(g) for g in pending)
            if unstarted:
                log.warning("Interrupted: %d run(s) not trained (not started, or their worker ended with the stop). "
                            "Rerun the same command with resume=true to train them (and continue any interrupted "
                            "ones).", unstarted)
            raise SystemExit(interrupted[0])




def train_stack(jobs: list, log_files: list[Path], job_logging, verbose, sweep_dir: str) -> None:
    """Train a group of prepared jobs (one stacked model, or one run), each logging into its own
    run's log file; a failure is recorded in every run of the group. In this process or a worker
    (on a machine of several GPUs, each worker process trains on a GPU of its own)."""
    from mlpbench import run
    from mlpbench.sweep import LAST_CHECKPOINT, spread_over_gpus

    # The console as Hydra's job logging sets it up, and each run's log file. A run folder deleted
    # since the launch made it (the user's rm while earlier stacks trained) is made again: logging's
    # set-up would fail, and with it the whole sweep, in a traceback.
    for path, job in zip(log_files, jobs):
        (job.run_dir / LAST_CHECKPOINT.parent).mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    configure_log(job_logging, verbose)
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    for handler in files:
        root.removeHandler(handler)
        handler.close()
    router = RunLogFiles(log_files, files[0].formatter if files else None)
    root.addHandler(router)
    try:
        for job in jobs:
            job.cfg = spread_over_gpus(job.cfg, sweep_dir)
        if len(jobs) == 1:
            run.train_job(jobs[0])
        else:
            from mlpbench.stacked import train_group

            train_group(jobs)
    except Exception as e:
        run.say_failure([job.run_dir for job in jobs], e)  # once, into every run's log
        for job in jobs:
            run.record_failure(job, e, say=False)
    finally:
        root.removeHandler(router)
        router.close()
        if _parent is not None and os.getppid() != _parent:  # a worker whose sweep was killed: no more
            from mlpbench.console import exit_at_once

            exit_at_once()


# Compositions kept from the sweeper's check to the launcher's set-up, at most (about 400 KB each).
KEPT_COMPOSITIONS = 500


def _keep_compositions(loader) -> None:
    """Hydra's sweeper composes every job's config to check the batch (Sweeper.validate_batch_is_
    legal), then the launcher composes each again: here the second call takes the first's result
    (a copy of it, 4 ms, where the first caller keeps its own), for the first KEPT_COMPOSITIONS
    jobs of a batch, and the first is mlpbench.sweep.QuickCompositions (a copy of an earlier
    job's config where only plain values differ: ~12 ms against Hydra's ~140)."""
    import copy

    from mlpbench.sweep import QuickCompositions

    if getattr(loader, "_mlpbench_kept", None) is not None:
        return
    compose = QuickCompositions(loader.load_sweep_config)
    kept: dict = {}

    def load_sweep_config(master_config, sweep_overrides):
        key = (id(master_config), tuple(sweep_overrides))
        if key in kept:
            return kept.pop(key)
        config = compose(master_config, list(sweep_overrides))
        if len(kept) < KEPT_COMPOSITIONS:
            kept[key] = copy.deepcopy(config)
        return config

    loader.load_sweep_config = load_sweep_config
    loader._mlpbench_kept = kept


def _record_setup_failure(ret: JobReturn) -> None:
    """A job that failed before training (its return value is the exception): recorded in its
    folder as failed, said once, and the sweep goes on."""
    from mlpbench import run

    error = ret._return_value
    run_dir = Path(ret.hydra_cfg.hydra.runtime.output_dir)
    job = run.Job(ret.cfg, run_dir, list(ret.overrides or []), None, None, ret.hydra_cfg.hydra.job.num, None)
    run.record_failure(job, error)


def _cuttable(group: list[JobReturn]) -> bool:
    """A stack that may train as two: not a search trial's seeds, which its pruning judges as one
    (callbacks.tune_trial: their mean, pruned together)."""
    return len(group) > 1 and not group[0].return_value.cfg.callbacks


def _halves(group: list[JobReturn]) -> list[list[JobReturn]]:
    half = (len(group) + 1) // 2
    return [group[:half], group[half:]]


def _spread(groups: list[list[JobReturn]], gpus: int) -> list[list[JobReturn]]:
    """On several GPUs, fewer groups than GPUs: the largest that may be cut (and whose runs take
    the GPU they are given: trainer.devices=1) cut in halves until each GPU has one, so that one
    group of 1,000 seeds trains on every GPU (on the CPU one group trains best in the launcher's
    own threads). Each part gives its runs' numbers as the whole would."""
    from omegaconf import OmegaConf

    def spreadable(group: list[JobReturn]) -> bool:
        devices = group[0].return_value.cfg.trainer.devices
        return _cuttable(group) and not OmegaConf.is_list(devices) and devices == 1

    groups = list(groups)
    while len(groups) < gpus:
        cut = [i for i, group in enumerate(groups) if spreadable(group)]
        if not cut:
            break
        groups += _halves(groups.pop(max(cut, key=lambda i: len(groups[i]))))
    return sorted(groups, key=_cost, reverse=True)


def _balanced(groups: list[list[JobReturn]], workers: int) -> list[list[JobReturn]]:
    """The groups, costliest first; where there are more than `workers`, the last `workers`
    stacks (the cheapest) cut in two, so that the workers end at about the same time: the main
    job's 5 stacks on 2 workers ended 3.6 s apart. Each half of a stack gives its runs' numbers as
    the whole would."""
    if len(groups) <= workers:
        return groups
    cut = []
    for i, group in enumerate(groups):
        if i >= len(groups) - workers and _cuttable(group):
            cut += _halves(group)
        else:
            cut.append(group)
    return sorted(cut, key=_cost, reverse=True)


def _groups_foreseen(job_overrides: Sequence[Sequence[str]], max_replicas: int) -> int:
    """How many groups the jobs will train as, from their overrides alone: jobs whose overrides
    are the same once those of STACKED_SETTINGS and NOT_TRAINING are left out share a stack
    (runs that must train on their own, found once their configs are composed, only add)."""
    from collections import Counter

    from mlpbench.overrides import parse
    from mlpbench.sweep import NOT_TRAINING, STACKED_SETTINGS

    free = [".".join(keys) for keys in (*STACKED_SETTINGS, *NOT_TRAINING)]
    settings = Counter()
    for overrides in job_overrides:
        kept = [o.input_line for o in parse(overrides)
                if not any(o.key_or_group == key or o.key_or_group.startswith(key + ".") for key in free)]
        settings[tuple(sorted(kept))] += 1
    return sum(-(-n // max_replicas) for n in settings.values())


def _worker_context():
    """multiprocessing's forkserver: one fresh interpreter, the fork server, imports torch and
    Lightning (about 9 CPU-s) and each worker is a fork of it; spawn imported them in every
    worker. A fork of this process would copy Hydra's state and its threads. spawn where there is
    no forkserver."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["mlpbench.fork_server"])
    return context


# The fork server listens on a socket in multiprocessing's temp folder, TMPDIR/pymp-XXXXXXXX/
# listener-XXXXXXXX, whose path a socket holds in 107 bytes: under a longer TMPDIR (a test
# runner's, a batch job's) it could not start ("AF_UNIX path too long", a traceback).
MAX_TEMP_DIR = 107 - len("/pymp-XXXXXXXX/listener-XXXXXXXX")


def _socket_fits() -> bool:
    return len(os.fsencode(tempfile.gettempdir())) <= MAX_TEMP_DIR


# The tracker's own warnings (a -W option: its message field cannot hold the warning's colon).
QUIET_TRACKER = "ignore::UserWarning:multiprocessing.resource_tracker"
# The environment variable by which the fork server learns this process's multiprocessing temp
# folder (mlpbench/fork_server.py), to remove it if this process dies without its exit.
FORK_SERVER_FOLDER = "MLPBENCH_FORK_SERVER_FOLDER"


def _start_fork_server() -> None:
    """The fork server started now, if it is not running, without waiting for its imports: they
    run while Hydra sets up the jobs here, and the first worker waits for them. It starts with
    Ctrl-C blocked (a signal mask a new program keeps): Ctrl-C in its first instants printed a
    KeyboardInterrupt traceback from its imports; it ends with the sweep's process instead.
    Blocked here too while it starts, not ignored: a Ctrl-C then waits and is taken once it has
    started (ignored, one in that instant was lost and the sweep trained on; a test caught it)."""
    context = _worker_context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver, resource_tracker, util

        # First, apart: the resource tracker, which the server's start starts else, unblocks
        # Ctrl-C as its own start ends, and the server would be started unblocked. It unlinks
        # what a sweep killed with kill -9 leaves (the pool's semaphores), and warned of each
        # after the user's prompt had come back ("7 leaked semaphore objects"): no news to whoever
        # killed it, so its warnings are off in it (a -W option it takes from sys.warnoptions).
        sys.warnoptions.append(QUIET_TRACKER)
        try:
            resource_tracker.ensure_running()
        finally:
            sys.warnoptions.remove(QUIET_TRACKER)
        # The server's socket is made in this process's multiprocessing temp folder, which only
        # this process's exit removed: after kill -9 a /tmp/pymp-* folder was left. The server,
        # which ends with this process, removes it then too.
        os.environ[FORK_SERVER_FOLDER] = util.get_temp_dir()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            forkserver.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
            del os.environ[FORK_SERVER_FOLDER]


def _stop_before_training(signum, frame) -> None:
    log.warning("Interrupted before the runs trained. Rerun the same command with resume=true to train them.")
    raise SystemExit(143)


def _new_pool():
    """A pool of one worker process."""
    from concurrent.futures import ProcessPoolExecutor

    _start_fork_server()
    return ProcessPoolExecutor(1, mp_context=_worker_context(), initializer=_worker_start)


def _start(pool) -> None:
    pool.submit(int)  # starts its worker now


def _end(pool) -> None:
    """A pool's worker let go; one that died first has the pool's own clean-up killed, which could
    wait on it for ever."""
    if _broken(pool):
        _forward(pool, signal.SIGKILL)
    pool.shutdown(wait=True, cancel_futures=True)


def _cost(group: list[JobReturn]) -> float:
    """A group's training time, roughly: replicas x epochs x weights per row."""
    cfg = group[0].return_value.cfg
    units = cfg.model.units if isinstance(cfg.model.units, int) else 128  # a list or a rule: a guess
    return len(group) * cfg.trainer.max_epochs * (1 + cfg.model.depth) * units / cfg.data.batch_size ** 0.5


_parent: int | None = None  # in a worker process: its parent, the sweep's (or its fork server, which ends with it)


_stop_asked = None  # in a worker process: mlpbench.sweep.STOP_ASKED


def _on_sigterm(signum, frame) -> None:
    """A worker outside Lightning's training (starting, loading a group's rows, between groups):
    SIGTERM from a live sweep is kept for the run about to train, which stops at its first step
    (the sweep starts no further group, and ends the pool); a worker whose sweep died (kill -9)
    ends now. During training Lightning's own handler takes SIGTERM too."""
    if os.getppid() != _parent:
        os._exit(143)
    _stop_asked.set()


def _let_go_of_fork_server() -> None:
    """A forked worker holds the pipe by which its fork server learns of the sweep's end
    (multiprocessing passes it, for the worker's own forkserver children): let go of it, else a
    sweep killed with kill -9 left its server, and the server its workers, training on for ever."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        os.close(fd)
        server._forkserver_alive_fd = None


def _worker_start() -> None:
    """A worker: one thread (its runs' numbers do not depend on it; two processes of one thread
    train more than one process of two), SIGTERM, which Lightning turns into a kept `interrupted`
    run, when the sweep's process is interrupted, and SIGKILL when it dies (kill -9: its fork
    server ends with it)."""
    import atexit
    import ctypes

    import torch

    from mlpbench import sweep
    from mlpbench.console import exit_at_once

    global _parent, _stop_asked
    _parent, _stop_asked = os.getppid(), sweep.STOP_ASKED
    _let_go_of_fork_server()
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the sweep's process, which sends SIGTERM
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # the fork server's mask (_start_fork_server)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # PR_SET_PDEATHSIG: SIGKILL, not SIGTERM: a worker whose sweep died ended at once in
    # _on_sigterm anyway (its runs stay `running`; resume continues from their checkpoints), but
    # Lightning's handler came first, each worker's "[rank: 0] Received SIGTERM: 15" after the
    # user's prompt.
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != _parent:  # the sweep died before this worker got here
        os._exit(1)
    import mlpbench.stacked  # noqa: F401  (under spawn: torch, Lightning, imported while Hydra sets up the jobs)

    # A worker's end, once the pool lets it go: multiprocessing has run its own exit work by then
    # (its process's _bootstrap); the interpreter's teardown, that the sweep would wait for, is
    # skipped. Registered after those imports, the last, so it runs first of the exit functions.
    atexit.register(exit_at_once)


def _broken(pool) -> bool:
    """A pool with a worker gone (killed, out of memory), whether or not it has noticed yet."""
    return bool(getattr(pool, "_broken", False)) or any(
        not process.is_alive() for process in list(getattr(pool, "_processes", {}).values()))


def _forward(pool, signum: int) -> None:
    for process in list(getattr(pool, "_processes", {}).values()):
        try:
            os.kill(process.pid, signum)
        except ProcessLookupError:
            pass
