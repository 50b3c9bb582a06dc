"""`make gpu-check` (`python -m mlpbench.gpu_check`): mlpbench on a GPU, checked and timed in one
prepared run of about 8 minutes on one GPU (sizes chosen for an H100; docs/gpu.md):

1. tests: the test files of the paths a GPU changes (stacked, optimizers, speed paths,
   precision) run there with pytest (their runs train on the GPU; stacked numbers are compared
   within 1e-4 there, to the bit on the CPU);
2. sync: two chunks of a 100-replica stack's training steps under
   torch.cuda.set_sync_debug_mode("error"): a step that waits on the host fails it (the step
   loss logged every trainer.log_every_n_steps is such a wait, by design: none falls inside);
3. equality: depths 1 and 10, seeds 1-3, 10 epochs: the stacked launcher's val_loss against the
   basic launcher's, epoch by epoch (the bar: 1e-4);
4. throughput: the tutorial model's sweeps of K = 5, 20 and 100 seeds, stacked, against what the
   basic launcher takes for K runs (its sweeps of 1 and 5 seeds give its start-up and its cost
   per run, runs one after another), at batch 32 and 128, on wall time and on training time
   per run (target: 10x at K = 100, batch 32);
5. one run against the hand-written loop (mlpbench.bench.hand_loop), both on the GPU, in
   seconds per epoch (target: within 1.3x).

Each section prints its table and appends it to --out as it ends, so a run stopped at a time
limit keeps what it measured. `--device cpu` runs the same code at a tiny size (the test suite
does, so that the check works when a GPU comes); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlpbench.bench import REPO, hand_loop, mlpbench_run, timed_sweep
from mlpbench.run import compose_config

# The test files of the paths a GPU changes.
TEST_FILES = ("tests/test_stacked.py", "tests/test_optim.py", "tests/test_speed_paths.py", "tests/test_precision.py")
EQUALITY_BAR = 1e-4
THROUGHPUT_TARGET = 10.0  # x per run, at the largest K and batch 32
LOOP_TARGET = 1.3  # mlpbench's seconds per epoch over the hand-written loop's


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
    """Sections printed and appended to `out` as they end."""

    def __init__(self, out: Path | None):
        self.out = out
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("")

    def section(self, text: str) -> None:
        print(text, flush=True)
        if self.out is not None:
            with self.out.open("a") as f:
                f.write(text + "\n")


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


def run_tests(device: str) -> str:
    """The GPU-relevant test files under pytest, in 8 processes; their result line and the
    tests that failed."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "8", "-p", "no:cacheprovider", *TEST_FILES],
                          cwd=REPO, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    failed = [ln.split(" - ")[0] for ln in lines if ln.startswith(("FAILED", "ERROR"))]
    result = lines[-1] if lines else proc.stderr.strip()[-300:]
    return (f"## 1. Tests on the {device}\n\n`pytest -n 8 {' '.join(TEST_FILES)}`: {result} "
            f"({time.perf_counter() - start:.0f} s)\n" + "".join(f"- {f}\n" for f in failed))


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
    cfg = compose_config([*data_overrides, "data.batch_size=32"])
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
    checked = []

    class SyncCheck(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 1 and device == "cuda":
                torch.cuda.set_sync_debug_mode("error")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx == 1:
                if device == "cuda":
                    torch.cuda.set_sync_debug_mode(0)
                checked.append(int(batch[1].shape[-1]) // cfg.data.batch_size)

    # log_every_n_steps past the chunks: the step loss it logs waits on the GPU by design.
    trainer = pl.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_epochs=1,
                         limit_train_batches=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         log_every_n_steps=10**6, callbacks=[SyncCheck()])
    title = f"## 2. Host syncs in a stack's steps ({replicas} replicas, batch 32, {chunk} steps a chunk)\n\n"
    try:
        trainer.fit(module, datamodule=MLPDataModule(data, cfg.data.batch_size, seeds, chunk, order=cfg.data.order))
    except RuntimeError as e:
        return title + f"FAILED: a step synchronised with the host: {' '.join(str(e).split())[:400]}\n"
    finally:
        if device == "cuda":
            torch.cuda.set_sync_debug_mode(0)
    if not checked:
        return title + "FAILED: the second chunk did not train\n"
    if device != "cuda":
        return title + f"not checked on the CPU ({checked[0]} steps trained)\n"
    return title + f"passed: {checked[0]} optimizer steps of {replicas} replicas, no host sync\n"


def val_loss_gap(ours: list[dict], theirs: list[dict]) -> float:
    """The largest difference in val_loss between two sweeps' runs, epoch by epoch; inf where
    they did not train the same runs for as many epochs."""
    by_run = {tuple(r["overrides"]): r["history"]["val_loss"] for r in theirs}
    if not ours or len(ours) != len(theirs):
        return float("inf")
    gaps = []
    for r in ours:
        other = by_run.get(tuple(r["overrides"]))
        if other is None or len(other) != len(r["history"]["val_loss"]):
            return float("inf")
        gaps += [abs(a - b) for a, b in zip(r["history"]["val_loss"], other)]
    return max(gaps)


def equality(data_overrides: list[str], sizes: Sizes, workdir: Path) -> str:
    args = ["model.depth=1,10", "seed=1,2,3", *data_overrides, f"trainer.max_epochs={sizes.equality_epochs}"]
    _, basic, basic_error = timed_sweep([*args, "hydra/launcher=basic"], workdir / "equality-basic")
    _, stacked, stacked_error = timed_sweep(args, workdir / "equality-stacked")
    lines = [f"## 3. Stacked against basic launcher: depths 1 and 10, seeds 1-3, {sizes.equality_epochs} epochs "
             f"({' '.join(data_overrides)})\n", "| depth | runs | largest val_loss difference | bar | verdict |",
             "|---:|---:|---:|---:|---|"]
    for depth in (1, 10):
        ours = [r for r in stacked if r["config"]["model"]["depth"] == depth]
        theirs = [r for r in basic if r["config"]["model"]["depth"] == depth]
        gap = val_loss_gap(ours, theirs)
        lines.append(f"| {depth} | {len(ours)} | {gap:.1e} | {EQUALITY_BAR:.0e} | "
                     f"{'passed' if gap <= EQUALITY_BAR else 'FAILED'} |")
    for name, error in (("basic", basic_error), ("stacked", stacked_error)):
        if error:
            lines.append(f"\n{name} sweep failed: {error}")
    return "\n".join(lines) + "\n"


def per_run_training(results: list[dict]) -> float:
    """Training seconds per run (the runs' `seconds`; a stacked run's is its share of its stack's)."""
    return sum(r.get("seconds") or 0.0 for r in results) / max(1, len(results))


def throughput(data_overrides: list[str], sizes: Sizes, workdir: Path) -> str:
    """K-seed sweeps, stacked, against what the basic launcher takes for K runs: its sweeps of 1
    and `basic_runs` seeds give its start-up S and cost per run b (runs one after another, each
    the same work), so K runs take S + K b; and training seconds per run."""
    lines = [f"## 4. Throughput: K-seed sweeps stacked against the basic launcher ({' '.join(data_overrides)}, "
             f"{sizes.throughput_epochs} epochs; basic: S + K b from its sweeps of 1 and {sizes.basic_runs} seeds)\n",
             "| batch | K | basic wall s (S + K b) | stacked wall s | wall ratio | basic training s/run "
             "| stacked training s/run | training ratio | target |", "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    common = [*data_overrides, f"trainer.max_epochs={sizes.throughput_epochs}"]
    for batch in (32, 128):
        one, _, error_one = timed_sweep(["seed=1", *common, f"data.batch_size={batch}", "hydra/launcher=basic"],
                                  workdir / f"throughput-basic-{batch}-1")
        many, basic, error = timed_sweep([f"seed=range(1,{sizes.basic_runs + 1})", *common, f"data.batch_size={batch}",
                                    "hydra/launcher=basic"], workdir / f"throughput-basic-{batch}")
        if error or error_one or len(basic) != sizes.basic_runs:
            lines.append(f"| {batch} | - | basic sweep failed: {error or error_one} |")
            continue
        per_run = (many - one) / (sizes.basic_runs - 1)
        start = one - per_run
        basic_training = per_run_training(basic)
        for k in sizes.replicas:
            wall, stacked, error = timed_sweep([f"seed=range(1,{k + 1})", *common, f"data.batch_size={batch}",
                                          "hydra.launcher.cpu_max_batch_size=null"],
                                         workdir / f"throughput-stacked-{batch}-{k}")
            if error or len(stacked) != k:
                lines.append(f"| {batch} | {k} | stacked sweep failed ({len(stacked)} of {k} runs): {error} |")
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
    lines = [f"## 5. One run against the hand-written loop on the {device} ({' '.join(data_overrides)}, "
             f"{sizes.loop_epochs} epochs, the first left out)\n",
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlpbench.gpu_check",
                                     description=__doc__.split("\n\n")[0].removesuffix(":").removesuffix(".") + ".")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="cuda: the check; cpu: the same code at a tiny size (its numbers mean nothing)")
    parser.add_argument("--data-root", help="a folder with Fashion-MNIST's IDX files (else where mlpbench looks; "
                                            "else the bundled 5,000 MNIST digits)")
    parser.add_argument("--out", type=Path, help="also write the tables into this file, section by section")
    parser.add_argument("--skip", default="", help="sections to leave out, of: tests,sync,equality,throughput,loop")
    args = parser.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    unknown = skip - {"tests", "sync", "equality", "throughput", "loop"}
    if unknown:
        parser.error(f"--skip {','.join(sorted(unknown))}: not a section (tests, sync, equality, throughput, loop)")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device cuda: torch {torch.__version__} sees no GPU here "
                     f"({'a CPU build: make setup TORCH=cuda' if torch.version.cuda is None else 'no device visible'})")
    sizes = FULL if args.device == "cuda" else TINY
    report = Report(args.out)
    report.section(environment(args.device))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlpbench-gpu-check-") as tmp:
        workdir = Path(tmp)
        if "tests" not in skip:
            report.section(run_tests(args.device))
        if "sync" not in skip:
            report.section(sync_check(check_data(args.data_root, sizes.sync_rows), sizes.sync_replicas,
                                      args.device, workdir))
        if "equality" not in skip:
            report.section(equality(check_data(args.data_root, sizes.equality_rows), sizes, workdir))
        if "throughput" not in skip:
            report.section(throughput(check_data(args.data_root, sizes.throughput_rows), sizes, workdir))
        if "loop" not in skip:
            report.section(against_loop(check_data(args.data_root, sizes.loop_rows), sizes, args.device, workdir))
    report.section(f"GPU check: {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
