"""`make gpu-check` (`python -m mlpbench.gpu_check`): mlpbench on a GPU, checked and timed in one
prepared run of at most `--minutes` (8) on one GPU (sizes chosen for an H100; docs/gpu.md): a
section due after the budget is spent is not run, a sweep training at its end is stopped, and
the tests, last, stop at its end. The sections, in the order they run (the measurements first,
ending by the last fifth of the budget: the tests, whose time on a GPU is not known yet, get that
fifth and what else is left):

1. sync: two chunks of a 100-replica stack's training steps (dropout 0.1) under
   torch.cuda.set_sync_debug_mode("error"): a step that waits on the host fails it, named by
   where it waited (the step loss logged every trainer.log_every_n_steps is such a wait, by
   design: none falls inside);
2. equality: depths 1 and 10, seeds 1-3, 10 epochs: the stacked launcher's val_loss against the
   basic launcher's, epoch by epoch (the bar: 1e-4), beside the rounding's own reach: the basic
   runs again with the first layer's weights moved by one rounding unit (a deep net's training
   amplifies any rounding difference; a gap of that size is rounding, not a stacking error);
3. one run against the hand-written loop (mlpbench.bench.hand_loop), both on the GPU, in
   seconds per epoch (target: within 1.3x);
4. throughput: the tutorial model's sweeps of K = 5, 20 and 100 seeds, stacked, against what the
   basic launcher takes for K runs (its sweeps of 1 and 5 seeds give its start-up and its cost
   per run, runs one after another), at batch 32 and 128, on wall time and on training time
   per run (target: 10x at K = 100, batch 32);
5. tests: the test files of the paths a GPU changes (stacked, optimizers, speed paths,
   precision) run there with pytest (their runs train on the GPU; stacked numbers are compared
   within 1e-4 there, to the bit on the CPU), stopped at the budget's end.

Each section prints its table and appends it to --out as it ends, so a run stopped at a time
limit keeps what it measured; a section that fails says why in its place and the next runs.
Beside --out, one file `<out>-logs.txt` keeps what a failure needs: pytest's whole output and
the logs of failed sweeps' runs. `--device cpu` runs the same code at a tiny size (the test
suite does, so that the check works when a GPU comes); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl

from mlpbench.bench import REPO, hand_loop, mlpbench_run, timed_sweep
from mlpbench.results import RESULT_FILE, read_result
from mlpbench.run import compose_config

# The test files of the paths a GPU changes.
TEST_FILES = ("tests/test_stacked.py", "tests/test_optim.py", "tests/test_speed_paths.py", "tests/test_precision.py")
EQUALITY_BAR = 1e-4
THROUGHPUT_TARGET = 10.0  # x per run, at the largest K and batch 32
LOOP_TARGET = 1.3  # mlpbench's seconds per epoch over the hand-written loop's
TESTS_SHARE = 0.2  # of the budget, kept for the tests: the sections before them end earlier


@dataclass
class Sizes:
    """How much each section trains: `full` on a GPU (about 8 minutes on an H100, measured
    section by section in docs/gpu.md once run), `tiny` to check the code on the CPU."""

    equality_rows: int
    equality_epochs: int
    throughput_rows: int
    throughput_epochs: int
    replicas: tuple[int, ...]
    basic_runs: int
    loop_rows: int
    loop_epochs: int
    sync_rows: int  # at least two chunks of the stack's steps
    sync_replicas: int


FULL = Sizes(equality_rows=6000, equality_epochs=10, throughput_rows=12000, throughput_epochs=3,
             replicas=(5, 20, 100), basic_runs=5, loop_rows=60000, loop_epochs=4, sync_rows=12000,
             sync_replicas=100)
TINY = Sizes(equality_rows=200, equality_epochs=2, throughput_rows=200, throughput_epochs=2, replicas=(2, 3),
             basic_runs=2, loop_rows=200, loop_epochs=2, sync_rows=2000, sync_replicas=3)


class Report:
    """Sections printed and appended to `out` as they end; `logs` (beside `out`) keeps what a
    failure needs, in one flat file: a machine lent for the check may bring back a few files, and
    not nested folders or names like a run folder's (model.depth=1,seed=1)."""

    LOGS_HEADER = "# mlpbench GPU check: what its failures need\n"  # a file that begins so is a check's
    LOG_LINES = 200  # of a failed run's run.log, its last

    def __init__(self, out: Path | None):
        self.out = out
        self.logs = None
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("")
            # OUT-logs.txt, or OUT-logs-2.txt, ... where a file of that name is not one a check wrote.
            names = (out.with_name(f"{out.stem}-logs{f'-{n}' if n > 1 else ''}.txt") for n in range(1, 100))
            self.logs = next(p for p in names if not p.exists() or _begins_with(p, self.LOGS_HEADER))
            self.logs.unlink(missing_ok=True)

    def section(self, title: str, make) -> None:
        """`make()`'s text under `title`; where it raises, why, in its place (the traceback's last
        lines), and the check goes on."""
        try:
            text = make()
        except Exception as e:  # one broken section must not cost the others' numbers
            frames = "".join(traceback.format_exception(e)[-12:])
            text = f"FAILED: {type(e).__name__}: {' '.join(str(e).split())[:400]}\n\n```text\n{frames}```\n"
        self.write(f"{title}\n\n{text}")

    def write(self, text: str) -> None:
        print(text, flush=True)
        if self.out is not None:
            with self.out.open("a") as f:
                f.write(text + "\n")

    def keep(self, name: str, sweep: Path | None = None, text: str | None = None) -> str:
        """Appended to the logs file under `===== NAME`: `text`, or the result.json and the end of
        the run.log of each run of `sweep` that did not end ok. Where, for the report ('' if nowhere)."""
        if self.logs is None:
            return ""
        parts = [] if text is None else [text]
        for result in sorted(sweep.glob(f"*/{RESULT_FILE}")) if sweep and sweep.is_dir() else []:
            if (read_result(result.parent) or {}).get("status") != "ok":
                parts.append(f"--- {result.parent.name}/{RESULT_FILE}\n{result.read_text(errors='replace')}\n")
                log = result.parent / "run.log"
                if log.is_file():
                    lines = log.read_text(errors="replace").splitlines()[-self.LOG_LINES:]
                    parts.append(f"--- {result.parent.name}/run.log, its last {len(lines)} lines\n" + "\n".join(lines)
                                 + "\n")
        if not parts:
            return ""
        with self.logs.open("a") as f:
            f.write((self.LOGS_HEADER if not f.tell() else "") + f"\n===== {name}\n" + "".join(parts))
        return f" ({'all of it' if text is not None else 'its failed runs'}: {self.logs.name}, ===== {name})"


def _begins_with(path: Path, text: str) -> bool:
    with path.open("rb") as f:
        return f.read(len(text.encode())) == text.encode()


def sweep_until(args: list[str], folder: Path, deadline: float) -> tuple[float, list[dict], str]:
    """timed_sweep, stopped at `deadline` (time.perf_counter()'s), or not run after it: a
    device's time limit would otherwise cut the check where it is, its last tables lost."""
    left = deadline - time.perf_counter()
    if left <= 0:
        return 0.0, [], "not run: the budget was spent"
    return timed_sweep(args, folder, timeout=left)


def environment(device: str) -> str:
    import lightning
    import torch

    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (CPU)"
    return (f"# mlpbench GPU check\n\ndevice: {gpu}; torch {torch.__version__} (CUDA {torch.version.cuda}), "
            f"Lightning {lightning.__version__}, Python {sys.version.split()[0]}; "
            f"{time.strftime('%Y-%m-%d %H:%M')}\n")


def check_data(root: str | None, rows: int) -> list[str]:
    """Fashion-MNIST where its IDX files are (--data-root, or where mlpbench looks), else the
    bundled 5,000 MNIST digits."""
    from mlpbench.data import DataError, load_arrays

    try:
        load_arrays("fashion_mnist", root)
        return ["data=fashion_mnist", *([f"data.root={root}"] if root else []), f"data.limit={rows}"]
    except DataError:
        return ["data=mnist_small", f"data.limit={min(rows, 4000)}"]


def outcomes_of_tests(output: str, stopped: bool) -> tuple[str, list[str]]:
    """pytest -v's output: its result line (or, for a run stopped before it, the counts of the
    tests that ended so far), and the tests that failed or errored."""
    lines = output.strip().splitlines()
    if not stopped:
        failed = {ln.split(" - ")[0].split(" ", 1)[1] for ln in lines if ln.startswith(("FAILED ", "ERROR "))}
        return (lines[-1].strip("= ") if lines else ""), sorted(failed)
    # pytest-xdist's lines as tests end: "[gw3] [ 12%] PASSED tests/test_x.py::test_y"
    ended = [ln.split("] ")[-1].split(" ")[:2] for ln in lines if ln.startswith("[gw")]
    counts = {outcome: sum(e[0] == outcome for e in ended) for outcome in ("PASSED", "FAILED", "ERROR", "SKIPPED")}
    failed = {e[1] for e in ended if len(e) == 2 and e[0] in ("FAILED", "ERROR")}
    return (f"{counts['PASSED']} passed, {counts['FAILED']} failed, {counts['ERROR']} errors, "
            f"{counts['SKIPPED']} skipped so far"), sorted(failed)


def _descendants(pid: int) -> list[int]:
    """The processes below `pid` (children, theirs, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def run_tests(report: Report, seconds: float) -> str:
    """The GPU-relevant test files under pytest, in 8 processes, for at most `seconds` (then
    stopped: what ran is reported); their result line and the tests that failed."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-v", "-n", "8", "-p", "no:cacheprovider", *TEST_FILES],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, stopped = proc.communicate(timeout=seconds)[0], False
    except subprocess.TimeoutExpired:
        # pytest-xdist's workers, and the commands tests start in sessions of their own (on a GPU
        # fresh interpreters, start_new_session), with it: none may train on after the check.
        for pid in [proc.pid, *_descendants(proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # (a process started after the search above may hold the pipe: not waited for long)
        try:
            output = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            output = ""
        stopped = True
    result, failed = outcomes_of_tests(output, stopped)
    if stopped:
        result = f"stopped at the budget's end ({seconds:.0f} s): {result}"
    elif not output.strip():
        result = f"no output (exit code {proc.returncode})"
    kept = report.keep("tests", text=output)
    return (f"`pytest -n 8 {' '.join(TEST_FILES)}`: {result} ({time.perf_counter() - start:.0f} s){kept}\n"
            + "".join(f"- {f}\n" for f in failed))


def sync_check(data_overrides: list[str], replicas: int, device: str, workdir: Path) -> str:
    """Two chunks of a stack's training steps, the second under set_sync_debug_mode("error")
    on CUDA (on the CPU the same steps, unchecked)."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import Callback

    from mlpbench.data import MLPDataModule, make_stacked_splits
    from mlpbench.hparams import run_logger
    from mlpbench.model import MLP
    from mlpbench.trainer import quiet_lightning
    from mlpbench.stacked import StackedModule, steps_per_chunk

    quiet_lightning()
    # Dropout: its masks' generator on the device is a path of a GPU's alone.
    cfg = compose_config([*data_overrides, "data.batch_size=32", "model.dropout=0.1"])
    seeds = list(range(1, replicas + 1))
    data = make_stacked_splits(cfg.data, seeds)
    models = []
    for seed in seeds:
        pl.seed_everything(seed, verbose=False)
        models.append(MLP(cfg.model, data.num_features, data.num_classes))
    loggers = [run_logger(workdir / f"sync-{k}") for k in range(replicas)]
    module = StackedModule(models, cfg.model, [cfg.optim] * replicas, loggers, regression=data.regression,
                           exact=device == "cpu")
    chunk = steps_per_chunk(cfg, replicas, data.num_features, device == "cpu")
    checked, where = [], []

    class SyncCheck(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 1 and device == "cuda":
                torch.cuda.set_sync_debug_mode("error")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx == 1:
                if device == "cuda":
                    torch.cuda.set_sync_debug_mode(0)
                checked.append(int(batch[1].shape[-1]) // cfg.data.batch_size)

        def on_exception(self, trainer, pl_module, exception):
            # Before Lightning's teardown (which moves the module to the CPU: a sync of its own,
            # whose error would hide this one), and with the frames of the step that waited.
            if device == "cuda":
                torch.cuda.set_sync_debug_mode(0)
            where.append("".join(traceback.format_exception(exception)[-8:]))

    # log_every_n_steps past the chunks: the step loss it logs waits on the GPU by design.
    trainer = pl.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_epochs=1,
                         limit_train_batches=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         log_every_n_steps=10**6, callbacks=[SyncCheck()])
    described = f"{replicas} replicas, batch 32, {chunk} steps a chunk"
    try:
        trainer.fit(module, datamodule=MLPDataModule(data, cfg.data.batch_size, seeds, chunk, order=cfg.data.order))
    except RuntimeError as e:
        frames = f"\n```text\n{where[0]}```\n" if where else ""
        return f"FAILED ({described}): a step synchronised with the host: {' '.join(str(e).split())[:400]}\n{frames}"
    finally:
        if device == "cuda":
            torch.cuda.set_sync_debug_mode(0)
    if not checked:
        return f"FAILED ({described}): the second chunk did not train\n"
    if device != "cuda":
        return f"not checked on the CPU ({described}; {checked[0]} steps trained)\n"
    return f"passed: {checked[0]} optimizer steps of {replicas} replicas ({described}), no host sync\n"


def _run_key(result: dict) -> tuple:
    """A run by its overrides, the check's own callbacks left out."""
    return tuple(o for o in result["overrides"] if not o.startswith("+callbacks."))


def val_loss_gaps(ours: list[dict], theirs: list[dict]) -> list[float] | None:
    """Epoch by epoch, the largest difference in val_loss between two sweeps' runs; None where
    they did not train the same runs for as many epochs (a run failed, or had no history)."""
    def history(result: dict) -> list[float]:
        return (result.get("history") or {}).get("val_loss") or []

    by_run = {_run_key(r): history(r) for r in theirs}
    if not ours or len(ours) != len(theirs):
        return None
    gaps: list[float] | None = None
    for result in ours:
        mine, other = history(result), by_run.get(_run_key(result))
        if not mine or other is None or len(other) != len(mine):
            return None
        row = [abs(a - b) for a, b in zip(mine, other)]
        gaps = row if gaps is None else [max(g, x) for g, x in zip(gaps, row)]
    return gaps


def val_loss_gap(ours: list[dict], theirs: list[dict]) -> float:
    """The largest of val_loss_gaps; inf where the runs cannot be compared."""
    gaps = val_loss_gaps(ours, theirs)
    return max(gaps) if gaps else float("inf")


class NudgeWeights(pl.Callback):
    """The first layer's weights moved by one rounding unit each as training starts: how far a
    run goes from its own numbers after a difference of rounding (a deep net's training
    amplifies it, epoch by epoch). One weight is not enough: the first weight meets MNIST's
    corner pixel, 0 in every image."""

    def on_train_start(self, trainer, pl_module) -> None:
        import torch

        weight = next(p for p in pl_module.parameters() if p.dim() == 2)
        with torch.no_grad():
            weight.copy_(torch.nextafter(weight, torch.full_like(weight, float("inf"))))


def equality(data_overrides: list[str], sizes: Sizes, workdir: Path, report: Report, deadline: float) -> str:
    args = ["model.depth=1,10", "seed=1,2,3", *data_overrides, f"trainer.max_epochs={sizes.equality_epochs}"]
    sweeps = {"basic": ["hydra/launcher=basic"], "stacked": [],
              "nudged": ["hydra/launcher=basic", "+callbacks.nudge._target_=mlpbench.gpu_check.NudgeWeights"]}
    runs, failures = {}, []
    for name, extra in sweeps.items():
        folder = workdir / f"equality-{name}"
        _, runs[name], error = sweep_until([*args, *extra], folder, deadline)
        if error:
            failures.append(f"\n{name} sweep failed: {error}{report.keep(folder.name, folder)}")
    lines = [f"{' '.join(data_overrides)}; one rounding unit: the basic runs again with every weight of the "
             f"first layer moved by one unit as training starts\n",
             "| depth | runs | largest val_loss difference (epoch) | in epoch 1 | one rounding unit's (largest) "
             "| bar | verdict |", "|---:|---:|---:|---:|---:|---:|---|"]
    for depth in (1, 10):
        ours, theirs, nudged = ([r for r in runs[name] if r["config"]["model"]["depth"] == depth]
                                for name in ("stacked", "basic", "nudged"))
        gaps, floor = val_loss_gaps(ours, theirs), val_loss_gaps(nudged, theirs)
        if gaps is None:
            lines.append(f"| {depth} | {len(ours)} | - | - | - | {EQUALITY_BAR:.0e} | FAILED: runs missing |")
            continue
        worst = max(range(len(gaps)), key=gaps.__getitem__)
        reach = max(floor) if floor else None
        if gaps[worst] <= EQUALITY_BAR:
            verdict = "passed"
        elif gaps[0] <= EQUALITY_BAR and reach is not None and reach >= gaps[worst]:
            # Within the bar after an epoch, then no further than rounding goes: a stacking error
            # (another replica's weights, a wrong gradient) shows in the first epoch already.
            verdict = "over the bar after epoch 1, as far as one rounding unit's difference goes"
        else:
            verdict = "FAILED"
        lines.append(f"| {depth} | {len(ours)} | {gaps[worst]:.1e} ({worst + 1}) | {gaps[0]:.1e} | "
                     f"{'-' if reach is None else f'{reach:.1e}'} | {EQUALITY_BAR:.0e} | {verdict} |")
    return "\n".join(lines + failures) + "\n"


def per_run_training(results: list[dict]) -> float:
    """Training seconds per run (the runs' `seconds`; a stacked run's is its share of its stack's)."""
    return sum(r.get("seconds") or 0.0 for r in results) / max(1, len(results))


def throughput(data_overrides: list[str], sizes: Sizes, workdir: Path, report: Report, deadline: float) -> str:
    """K-seed sweeps, stacked, against what the basic launcher takes for K runs: its sweeps of 1
    and `basic_runs` seeds give its start-up S and cost per run b (runs one after another, each
    the same work), so K runs take S + K b; and training seconds per run."""
    lines = [f"{' '.join(data_overrides)}, {sizes.throughput_epochs} epochs; basic: S + K b from its sweeps of 1 "
             f"and {sizes.basic_runs} seeds\n",
             "| batch | K | basic wall s (S + K b) | stacked wall s | wall ratio | basic training s/run "
             "| stacked training s/run | training ratio | target |", "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    common = [*data_overrides, f"trainer.max_epochs={sizes.throughput_epochs}"]
    for batch in (32, 128):
        one_folder, many_folder = workdir / f"throughput-basic-{batch}-1", workdir / f"throughput-basic-{batch}"
        one, _, error_one = sweep_until(["seed=1", *common, f"data.batch_size={batch}", "hydra/launcher=basic"],
                                        one_folder, deadline)
        many, basic, error = sweep_until([f"seed=range(1,{sizes.basic_runs + 1})", *common, f"data.batch_size={batch}",
                                          "hydra/launcher=basic"], many_folder, deadline)
        if error or error_one or len(basic) != sizes.basic_runs:
            kept = report.keep(one_folder.name, one_folder) + report.keep(many_folder.name, many_folder)
            lines.append(f"| {batch} | - | basic sweep failed: {error or error_one}{kept} |")
            continue
        per_run = (many - one) / (sizes.basic_runs - 1)
        start = one - per_run
        basic_training = per_run_training(basic)
        for k in sizes.replicas:
            folder = workdir / f"throughput-stacked-{batch}-{k}"
            wall, stacked, error = sweep_until([f"seed=range(1,{k + 1})", *common, f"data.batch_size={batch}",
                                                "hydra.launcher.cpu_max_batch_size=null"], folder, deadline)
            if error or len(stacked) != k:
                lines.append(f"| {batch} | {k} | stacked sweep failed ({len(stacked)} of {k} runs): "
                             f"{error}{report.keep(folder.name, folder)} |")
                continue
            basic_wall, stacked_training = start + k * per_run, per_run_training(stacked)
            target = (f">= {THROUGHPUT_TARGET:.0f}x: {'met' if basic_wall / wall >= THROUGHPUT_TARGET else 'NOT met'}"
                      if batch == 32 and k == max(sizes.replicas) else "")
            lines.append(f"| {batch} | {k} | {basic_wall:.1f} | {wall:.1f} | {basic_wall / wall:.1f}x "
                         f"| {basic_training:.2f} | {stacked_training:.3f} | "
                         f"{basic_training / max(stacked_training, 1e-9):.1f}x | {target} |")
    return "\n".join(lines) + "\n"


def against_loop(data_overrides: list[str], sizes: Sizes, device: str, workdir: Path) -> str:
    """One run (mlpbench's Trainer, checkpoints, TensorBoard) against the hand-written loop,
    seconds per epoch, the first epoch left out."""
    lines = [f"{' '.join(data_overrides)}, {sizes.loop_epochs} epochs, the first left out\n",
             "| batch | loop s/epoch | mlpbench s/epoch | mlpbench / loop | target | val_loss difference |",
             "|---:|---:|---:|---:|---|---:|"]
    accelerator = "gpu" if device == "cuda" else "cpu"
    for batch in (128, 32):
        overrides = [*data_overrides, "data.val_split=null", f"data.batch_size={batch}", "optim.rules=torch",
                     "trainer.enable_progress_bar=false", f"trainer.accelerator={accelerator}"]
        cfg = compose_config([*overrides, f"trainer.max_epochs={sizes.loop_epochs}"])
        loop_times, loop_val = hand_loop(cfg, sizes.loop_epochs, fused=True, device=device)
        ours_times, ours_val = mlpbench_run(overrides, sizes.loop_epochs, workdir)
        loop, ours = statistics.mean(loop_times[1:]), statistics.mean(ours_times[1:])
        lines.append(f"| {batch} | {loop:.3f} | {ours:.3f} | {ours / loop:.2f}x | <= {LOOP_TARGET}x: "
                     f"{'met' if ours / loop <= LOOP_TARGET else 'NOT met'} | {abs(loop_val - ours_val):.1e} |")
    return "\n".join(lines) + "\n"


SECTIONS = ("sync", "equality", "loop", "throughput", "tests")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlpbench.gpu_check",
                                     description=__doc__.split("\n\n")[0].removesuffix(":").removesuffix(".") + ".")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="cuda: the check; cpu: the same code at a tiny size (its numbers mean nothing)")
    parser.add_argument("--data-root", help="a folder with Fashion-MNIST's IDX files (else where mlpbench looks; "
                                            "else the bundled 5,000 MNIST digits)")
    parser.add_argument("--out", type=Path, help="also write the tables into this file, section by section (and "
                                                 "what a failure needs into the file OUT-logs.txt beside it)")
    parser.add_argument("--skip", default="", help=f"sections to leave out, of: {','.join(SECTIONS)}")
    parser.add_argument("--minutes", type=float, default=8.0,
                        help="the check's budget: a sweep still training at its end is stopped, a section due "
                             "after it is not run, and the tests, last, stop at its end (default 8)")
    args = parser.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    unknown = skip - set(SECTIONS)
    if unknown:
        parser.error(f"--skip {','.join(sorted(unknown))}: not a section ({', '.join(SECTIONS)})")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device cuda: torch {torch.__version__} sees no GPU here "
                     f"({'a CPU build: make setup TORCH=cuda' if torch.version.cuda is None else 'no device visible'})")
    # Its sweeps run from folders of their own: a relative folder would be looked for there.
    root = str(Path(args.data_root).resolve()) if args.data_root else None
    sizes = FULL if args.device == "cuda" else TINY
    report = Report(args.out)
    report.write(environment(args.device))
    started = time.perf_counter()
    budget = args.minutes * 60
    deadline = started + budget
    # The measurements' own end, before the budget's: a share kept for the tests (their result on
    # a GPU is part of the check; the throughput's sweeps alone could take the whole budget).
    kept = TESTS_SHARE * budget if "tests" not in skip else 0.0
    measured_until = deadline - kept
    # The sweeps train where the check runs, said outright: the launcher's guess of a GPU before
    # importing torch (sweep.trains_on_cpu) would size its stacks for the CPU if it guessed wrong.
    sweeps_on = [f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}"]
    with tempfile.TemporaryDirectory(prefix="mlpbench-gpu-check-") as tmp:
        workdir = Path(tmp)
        sections = {
            "sync": ("Host syncs in a stack's steps", lambda: sync_check(check_data(root, sizes.sync_rows),
                                                                        sizes.sync_replicas, args.device, workdir)),
            "equality": (f"Stacked against basic launcher: depths 1 and 10, seeds 1-3, {sizes.equality_epochs} epochs",
                         lambda: equality([*check_data(root, sizes.equality_rows), *sweeps_on], sizes, workdir, report,
                                          measured_until)),
            "loop": (f"One run against the hand-written loop on the {args.device}",
                     lambda: against_loop(check_data(root, sizes.loop_rows), sizes, args.device, workdir)),
            "throughput": ("Throughput: K-seed sweeps stacked against the basic launcher",
                           lambda: throughput([*check_data(root, sizes.throughput_rows), *sweeps_on], sizes, workdir,
                                              report, measured_until)),
            "tests": (f"Tests on the {args.device}", lambda: run_tests(report, deadline - time.perf_counter())),
        }
        for number, name in enumerate((n for n in SECTIONS if n not in skip), 1):
            title, make = sections[name]
            now = time.perf_counter()
            if now > (deadline if name == "tests" else measured_until):  # a time limit would cut what
                # follows anyway: say so, in its place
                share = f", {kept / 60:.1f} of them kept for the tests" if kept and name != "tests" else ""
                report.write(f"## {number}. {title}\n\nnot run: the budget ({args.minutes:g} min{share}) was spent "
                             f"({(now - started) / 60:.1f} min)\n")
                continue
            report.section(f"## {number}. {title}", make)
    report.write(f"GPU check: {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
