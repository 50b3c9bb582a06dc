"""`python -m mlpbench.bench`: how fast mlpbench trains, against a hand-written loop and Keras.

The tutorial model (784 -> BatchNorm -> Dense(128, relu) -> Dense(10), Adam at Keras'
defaults) on a full-size dataset (60k training rows, validation on 10k each epoch), at batch
128 and 32, measured side by side in this one process:

- loop: the minimal hand-written PyTorch loop below, over the same in-memory tensors;
- mlpbench: its own training path (`mlpbench.run.train`: Lightning Trainer, checkpoints,
  TensorBoard), as a user's run takes it;
- keras: Keras' model.fit on TensorFlow, where tensorflow is importable (in a process of
  its own, so that TensorFlow's threads cannot slow the others).

Epoch times leave out the first epoch (warm-up, tracing); mlpbench's run from one epoch's
end to the next, so they count everything a run does per epoch (validation, checkpoints,
logging) and nothing it does once. Each stack runs --repeats times in turn and its fastest
repeat counts. The loop and mlpbench must reach the same weights: the table says how far
apart their final validation losses are.

Before that table (--only-stacked: instead of it), the stacked launcher (hydra/launcher=stacked)
as whole sweeps, each in processes of its own:
- 5 seeds of the tutorial model on all rows, 10 epochs, basic against stacked;
- K = 1, 5, 20 seeds at batch 32 and 128 on --stacked-rows rows;
- the main job's wall time against its runs' training seconds.

After it, start-up: `python -m mlpbench --help`, and the cost of each run of a sequential multirun
beyond its training. Prints tables; asserts nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mlpbench.results import load_results
from mlpbench.run import compose_config

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------- data


def bench_data(rows: int) -> tuple[dict[str, np.ndarray], str, list[str]]:
    """Fashion-MNIST or MNIST when their files are here, else a generated array like them."""
    from mlpbench.data import DataError, load_arrays

    for source in ("fashion_mnist", "mnist"):
        try:
            a = load_arrays(source)
        except DataError:
            continue
        arrays = {"x": np.asarray(a.x_train[:rows]), "y": np.asarray(a.y_train[:rows]),
                  "xv": np.asarray(a.x_test), "yv": np.asarray(a.y_test)}
        return arrays, f"{source} ({len(arrays['y'])} train, {len(arrays['yv'])} validation rows)", [
            f"data={source}", f"data.limit={rows}"]
    raise SystemExit("mlpbench.bench needs Fashion-MNIST or MNIST: apt-get install dataset-fashion-mnist, "
                     "or data.root with the four MNIST IDX files (see README)")


# ---------------------------------------------------------------------------- the stacks


def hand_loop(cfg, epochs: int, fused: bool, device: str = "cpu") -> tuple[list[float], float]:
    """The baseline, as plain as PyTorch gets: the same model, initialisation, rows, batch
    order and Adam settings as mlpbench's run of `cfg`, on `device` (the rows kept there, as
    mlpbench keeps them). With `fused` (torch's one-kernel Adam, which mlpbench uses) it must
    end with exactly mlpbench's weights on the CPU; without, it is the eager default, whose
    rounding drifts apart over thousands of steps.
    Returns the epoch times and the final validation loss."""
    import torch
    import torch.nn.functional as F

    from mlpbench.data import make_splits
    from mlpbench.model import MLP

    s = make_splits(cfg.data, cfg.seed)
    torch.manual_seed(cfg.seed)
    model = MLP(cfg.model, s.num_features, s.num_classes).to(device)
    x_train, y_train, x_val, y_val = (t.to(device) for t in (s.x_train, s.y_train, s.x_val, s.y_val))
    o = cfg.optim
    optimizer = torch.optim.Adam(model.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, fused=fused)
    n, bs = len(y_train), cfg.data.batch_size
    rows = n - 1 if n % bs == 1 else n  # BatchNorm cannot train on a lone last row
    times, val_loss = [], float("nan")
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)).to(device)
        for lo in range(0, rows, bs):
            idx = order[lo:min(lo + bs, rows)]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            total = sum(F.cross_entropy(model(x_val[i:i + 1024]), y_val[i:i + 1024], reduction="sum").item()
                        for i in range(0, len(y_val), 1024))
        val_loss = total / len(y_val)
        times.append(time.perf_counter() - start)
    return times, val_loss


def mlpbench_run(overrides: list[str], epochs: int, workdir: Path) -> tuple[list[float], float]:
    """mlpbench's epoch times, from one epoch's end to the next (validation, checkpoints and
    logging included), and the final validation loss."""
    from lightning.pytorch.callbacks import Checkpoint

    from mlpbench.run import train

    class EpochClock(Checkpoint):  # a Checkpoint: Lightning runs it after the checkpoint callbacks
        ends: list[float] = []

        def on_train_start(self, trainer, pl_module):
            self.ends = [time.perf_counter()]

        def on_train_epoch_end(self, trainer, pl_module):
            self.ends.append(time.perf_counter())

    clock = EpochClock()
    args = [*overrides, f"trainer.max_epochs={epochs}"]
    result = train(compose_config(args), Path(tempfile.mkdtemp(dir=workdir)), args, callbacks=(clock,))
    return [b - a for a, b in zip(clock.ends, clock.ends[1:])], result["history"]["val_loss"][-1]


def keras_in_subprocess(arrays: dict, batch_size: int, epochs: int, workdir: Path) -> list[float] | None:
    """keras_fit in a process of its own: TensorFlow's thread pools keep spinning after fit and
    would slow every torch measurement taken after them in this process."""
    path = workdir / "arrays.npz"
    if not path.exists():
        np.savez(path, **arrays)
    proc = subprocess.run([sys.executable, "-m", "mlpbench.bench", "--keras-worker", str(path), str(batch_size),
                           str(epochs)], capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("KERAS ")]
    return json.loads(lines[-1][6:]) if proc.returncode == 0 and lines else None


def keras_fit(arrays: dict, batch_size: int, epochs: int) -> list[float] | None:
    """Keras 3's model.fit on the same rows, with its default settings; None without tensorflow."""
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
    except ImportError:
        return None
    model = keras.Sequential([keras.Input((arrays["x"].shape[1],)), keras.layers.BatchNormalization(),
                              keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

    class EpochTimes(keras.callbacks.Callback):
        times: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    timer = EpochTimes()
    model.fit(arrays["x"], arrays["y"], batch_size=batch_size, epochs=epochs, verbose=0,
              validation_data=(arrays["xv"], arrays["yv"]), callbacks=[timer])
    return timer.times


# ---------------------------------------------------------------------------- start-up


def _wall(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlpbench", *args], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def startup(workdir: Path, repeats: int) -> dict[str, float]:
    """`--help`'s wall time, and what each run of a sequential multirun costs beyond its
    training: runs of 2 training steps, so that a run's cost is all overhead (Hydra's job
    set-up, data splits, Trainer, logger, checkpoints, validation and test, result.json)."""
    help_s = statistics.median(_wall(["--help"], workdir) for _ in range(repeats))
    tiny = ["data=mnist_small", "data.limit=80", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]
    one = many = math.inf
    for i in range(repeats):  # the fastest of each: noise only adds
        one = min(one, _wall(["-m", "seed=1", *tiny, f"hydra.sweep.dir={workdir / f'one{i}'}"], workdir))
        many = min(many, _wall(["-m", "seed=range(1,11)", *tiny, f"hydra.sweep.dir={workdir / f'ten{i}'}"], workdir))
    return {"help": help_s, "first": one, "per_run": (many - one) / 9}


def compositions(jobs: int) -> dict[str, float]:
    """A sweep of `jobs` seeds' configs, per job: Hydra's composition against mlpbench's quick one
    (mlpbench.sweep.QuickCompositions, which the stacked launcher and the grid's value check use),
    in turn over the same jobs in this process; the two must give the same config."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from mlpbench.run import CONF_MODULE
    from mlpbench.sweep import QuickCompositions

    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", overrides=[f"seed=range(1,{jobs + 1})"],
                                           run_mode=RunMode.MULTIRUN)
        quick = QuickCompositions(loader.load_sweep_config)
        spent = {"hydra": 0.0, "quick": 0.0}
        for seed in range(1, jobs + 1):
            made = {}
            for name, compose in (("hydra", loader.load_sweep_config), ("quick", quick)):
                start = time.perf_counter()
                made[name] = compose(master, [f"seed={seed}"])
                spent[name] += time.perf_counter() - start
            if OmegaConf.to_yaml(made["hydra"]) != OmegaConf.to_yaml(made["quick"]):
                raise AssertionError(f"seed={seed}: the quick composition differs from Hydra's")
    return {name: seconds / jobs for name, seconds in spent.items()}


# ---------------------------------------------------------------------------- stacked replicas


def timed_sweep(args: list[str], folder: Path, timeout: float | None = None) -> tuple[float, list[dict], str]:
    """`mlpbench -m ARGS` into `folder` (from the folder above it): its wall time, its runs'
    results (in the runs' order) and, where it failed, the end of its error output. `timeout`:
    killed after that many seconds (its workers end with it: PR_SET_PDEATHSIG), said as its error."""
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "mlpbench", "-m", *args, "trainer.enable_progress_bar=false",
                               f"hydra.sweep.dir={folder}"], cwd=folder.parent, capture_output=True, text=True,
                              timeout=timeout)
        error = "" if proc.returncode == 0 else " ".join((proc.stderr or proc.stdout).split()[-60:])
    except subprocess.TimeoutExpired:
        error = f"stopped at its time limit ({timeout:.0f} s)"
    wall = time.perf_counter() - start
    return wall, [result for _, result in load_results(folder)], error


def _sweep(args: list[str], folder: Path) -> tuple[float, list[dict]]:
    wall, results, error = timed_sweep(args, folder)
    if error:
        raise RuntimeError(f"the sweep into {folder} failed: {error}")
    return wall, results


def _epoch_seconds(results: list[dict]) -> float:
    """Training seconds of one epoch of all the runs together (the first epoch left out): under
    the stacked launcher each run's epoch_seconds is its share of the stack's."""
    epochs = min(len(r["history"]["epoch_seconds"]) for r in results)
    return statistics.median(sum(r["history"]["epoch_seconds"][e] for r in results) for e in range(1, epochs))


def _max_diff(a: list[dict], b: list[dict]) -> float:
    """How far apart two sweeps' val_loss histories are, run by run (the same runs in both)."""
    assert [r["overrides"] for r in a] == [r["overrides"] for r in b], "the two sweeps ran different runs"
    return max(abs(x - y) for p, q in zip(a, b) for x, y in zip(p["history"]["val_loss"], q["history"]["val_loss"],
                                                                  strict=True))


def pairs(workdir: Path, name: str, args: list[str], n: int) -> dict:
    """`n` pairs of one sweep, the default launcher against hydra/launcher=basic, in turn (which
    goes first alternates): the ratio of their wall times per pair, and each launcher's wall and
    training seconds (the sum of the runs' `seconds`)."""
    walls = {"default": [], "basic": []}
    training = {"default": [], "basic": []}
    diff = 0.0
    for i in range(n):
        order = ("default", "basic") if i % 2 == 0 else ("basic", "default")
        results = {}
        for launcher in order:
            extra = [] if launcher == "default" else ["hydra/launcher=basic"]
            wall, results[launcher] = _sweep([*args, *extra], workdir / f"{name}-{launcher}-{i}")
            walls[launcher].append(wall)
            training[launcher].append(sum(r["seconds"] for r in results[launcher]))
        diff = max(diff, _max_diff(results["default"], results["basic"]))
    return {"name": name, "runs": len(results["basic"]), "walls": walls, "training": training, "diff": diff,
            "ratios": [d / b for d, b in zip(walls["default"], walls["basic"])]}


def replicas(workdir: Path, data_overrides: list[str], batch_sizes: list[int], epochs: int,
             ks: list[int]) -> list[tuple]:
    """K seeds of the tutorial model as one sweep, default launcher (one stack of K) against the
    basic one: wall time, per-epoch training time, and how far apart their val_loss histories are."""
    rows = []
    for bs in batch_sizes:
        for k in ks:
            args = [f"seed=range(1,{k + 1})", *data_overrides, f"data.batch_size={bs}",
                    f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false"]
            basic_wall, basic = _sweep([*args, "hydra/launcher=basic"], workdir / f"basic-{bs}-{k}")
            # Stacked at every batch size, to show what stacking does where the launcher would not.
            stacked_wall, stack = _sweep([*args, "hydra.launcher.cpu_max_batch_size=null"],
                                         workdir / f"stacked-{bs}-{k}")
            rows.append((bs, k, basic_wall, stacked_wall, _epoch_seconds(basic), _epoch_seconds(stack),
                         _max_diff(stack, basic)))
    return rows


# ---------------------------------------------------------------------------- the table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlpbench.bench",
                                     description=__doc__.split("\n\n")[0].removesuffix(":").removesuffix(".") + ".")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per measured run (first left out; default 4)")
    parser.add_argument("--rows", type=int, default=60_000, help="training rows (default: all 60k)")
    parser.add_argument("--batch-sizes", default="128,32", help="the batch sizes to time, comma-separated")
    parser.add_argument("--repeats", type=int, default=2, help="measure each stack this many times; keep the fastest (default 2)")
    parser.add_argument("--no-keras", action="store_true", help="leave Keras out (it needs tensorflow in this Python)")
    parser.add_argument("--no-startup", action="store_true", help="leave out the start-up times (a run's, per job)")
    parser.add_argument("--stacked-rows", type=int, default=24_000,
                        help="training rows of the K-seeds comparison (0: leave it out)")
    parser.add_argument("--replicas", default="1,3,5,20", help="seeds per sweep in the K-seeds comparison")
    parser.add_argument("--only-stacked", action="store_true", help="only the launcher comparisons")
    parser.add_argument("--sweeps", default="main,activations,optimizers_tuned",
                        help=f"whole sweeps timed in pairs, default launcher against basic (of: {', '.join(SWEEPS)}; "
                             "empty: none)")
    parser.add_argument("--pairs", type=int, default=3, help="pairs of each whole sweep (default 3)")
    parser.add_argument("--sweep-epochs", type=int, default=0, help="trainer.max_epochs of the whole sweeps (0: theirs)")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        help="where the loop and mlpbench's run train (default: cuda where torch sees a GPU)")
    parser.add_argument("--keras-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [n for n in args.sweeps.split(",") if n and n not in SWEEPS]
    if unknown:
        parser.error(f"--sweeps {','.join(unknown)}: not one of {', '.join(SWEEPS)}")
    if args.keras_worker:
        path, bs, epochs = args.keras_worker
        times = keras_fit(dict(np.load(path)), int(bs), int(epochs))
        if times is None:
            return 1
        print("KERAS " + json.dumps(times))
        return 0
    logging.getLogger("mlpbench").setLevel(logging.WARNING)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    # The same weights to the bit on the CPU; on a GPU to rounding (its kernels need not repeat it).
    same_weights = 1e-6 if device == "cpu" else 1e-4
    accelerator = "gpu" if device == "cuda" else "cpu"

    if args.only_stacked and not args.stacked_rows:  # whole sweeps only: their own data
        arrays, described, data_overrides = None, "each sweep's own", []
    else:
        arrays, described, data_overrides = bench_data(args.rows)
    print(f"data: {described}; torch {torch.__version__} on the {device}, {torch.get_num_threads()} threads; "
          f"{args.epochs} epochs a run, the first left out")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlpbench-bench-") as tmp:
        workdir = Path(tmp)
        if args.sweeps or args.stacked_rows:
            print_stacked(workdir, args)
        if args.only_stacked:
            return 0
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            # optim.rules=torch: torch's Adam, the hand-written loop's (Keras' rules change
            # epsilon's placement, not the cost of a step).
            overrides = [*data_overrides, "data.val_split=null", f"data.batch_size={bs}", "optim.rules=torch",
                         "trainer.enable_progress_bar=false", f"trainer.accelerator={accelerator}"]
            cfg = compose_config([*overrides, f"trainer.max_epochs={args.epochs}"])
            # Each stack `--repeats` times, in turn; the fastest repeat counts (a shared machine's
            # noise only ever adds time).
            loop = eager = ours = keras_s = math.inf
            for _ in range(args.repeats):
                times, loop_val = hand_loop(cfg, args.epochs, fused=True, device=device)
                loop = min(loop, statistics.mean(times[1:]))
                eager = min(eager, statistics.mean(hand_loop(cfg, args.epochs, fused=False, device=device)[0][1:]))
                times, ours_val = mlpbench_run(overrides, args.epochs, workdir)
                ours = min(ours, statistics.mean(times[1:]))
                keras_times = None if args.no_keras else keras_in_subprocess(arrays, bs, args.epochs, workdir)
                keras_s = min(keras_s, statistics.mean(keras_times[1:])) if keras_times else None
                if keras_s is None:
                    args.no_keras = True  # not importable: do not try again
            rows.append((bs, loop, eager, ours, keras_s, abs(loop_val - ours_val)))
        print("\ns/epoch; loop: the hand-written loop with fused Adam (mlpbench's optimizer), eager: the same "
              "loop with torch's default Adam")
        print("| batch | loop | eager | mlpbench | keras | mlpbench / loop | mlpbench / eager | keras / mlpbench "
              "| same weights as loop (val loss diff) |\n|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for bs, loop, eager, ours, keras_s, diff in rows:
            k = "-" if keras_s is None else f"{keras_s:.3f}"
            kr = "-" if keras_s is None else f"{keras_s / ours:.2f}x"
            print(f"| {bs} | {loop:.3f} | {eager:.3f} | {ours:.3f} | {k} | {ours / loop:.2f}x | {ours / eager:.2f}x "
                  f"| {kr} | {'yes' if diff < same_weights else 'NO'} ({diff:.1e}) |")
        if any(r[3] is None for r in rows) and not args.no_keras:
            print("keras: tensorflow is not importable here (pip install tensorflow-cpu to compare)")
        if not args.no_startup:
            s = startup(workdir, repeats=3)
            print(f"\nstart-up: python -m mlpbench --help {s['help']:.2f} s (median of 3); a one-run multirun "
                  f"{s['first']:.2f} s; each further run of a sequential multirun {s['per_run']:.2f} s "
                  f"(runs of 2 training steps: all of it overhead)")
            c = compositions(100)
            print(f"a job's config, 100 seeds: Hydra's composition {c['hydra'] * 1e3:.1f} ms, mlpbench's quick one "
                  f"{c['quick'] * 1e3:.1f} ms ({c['hydra'] / c['quick']:.1f}x; the same configs)")
    return 0


# The sweeps timed in pairs (--sweeps): README's main job with 5 seeds and with seed=auto, two presets, and a sweep
# of seconds that checks the table works (the tests run it).
SWEEPS = {
    "main": ["model.depth=2,4,6,8,10", "seed=1,2,3,4,5"],
    # README's main job as `make run` runs it: seeds in rounds, a launch a round.
    "main_auto": ["model.depth=2,4,6,8,10", "seed=auto"],
    "activations": ["experiment=activations"],
    "optimizers_tuned": ["experiment=optimizers_tuned"],
    # One stack of 4 in the sweep's own process: no worker processes to start (seconds of imports each).
    "tiny": ["seed=1,2,3,4", "data.limit=200", "trainer.max_epochs=1"],
}


def print_stacked(workdir: Path, args) -> None:
    from mlpbench.stats import summarize

    print(f"\nWhole sweeps, the default launcher (stacks, {args.pairs} pairs run in turn) against hydra/launcher=basic; "
          "training s: the sum of the runs' seconds (under the default launcher, each run's share of its stack)")
    print("| sweep | runs | basic wall s | default wall s | default / basic (wall): mean ± 95% interval, n "
          "| basic training s | default training s | max val_loss diff |\n|---|---:|---:|---:|---|---:|---:|---:|")
    epochs = [f"trainer.max_epochs={args.sweep_epochs}"] if args.sweep_epochs else []
    for name in [n for n in args.sweeps.split(",") if n]:
        r = pairs(workdir, name, [*SWEEPS[name], *epochs], args.pairs)
        ratio = summarize(r["ratios"])
        interval = f"± {ratio.ci95:.2f}" if ratio.n > 1 else "(one pair: no interval)"
        print(f"| {name} | {r['runs']} | {statistics.mean(r['walls']['basic']):.1f} | "
              f"{statistics.mean(r['walls']['default']):.1f} | {ratio.mean:.2f}x {interval}, n = {ratio.n} | "
              f"{statistics.mean(r['training']['basic']):.1f} | {statistics.mean(r['training']['default']):.1f} | "
              f"{r['diff']:.1e} |")
    if not args.stacked_rows:
        return
    _, _, data_overrides = bench_data(args.stacked_rows)
    epochs = max(3, args.epochs)
    rows = replicas(workdir, [*data_overrides, "optim.rules=torch"], [int(b) for b in args.batch_sizes.split(",")],
                    epochs, [int(k) for k in args.replicas.split(",")])
    print(f"\nK seeds as one sweep: the default launcher (one stack of K) against hydra/launcher=basic "
          f"({args.stacked_rows} rows, {epochs} epochs; s/epoch: all K runs' training, the first epoch left out)")
    print("| batch | K | basic wall s | stacked wall s | stacked / basic (wall) | basic s/epoch | stacked s/epoch "
          "| stacked / basic (epoch) | max val_loss diff |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for bs, k, bw, sw, be, se, diff in rows:
        print(f"| {bs} | {k} | {bw:.1f} | {sw:.1f} | {sw / bw:.2f}x | {be:.3f} | {se:.3f} | {se / be:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    sys.exit(main())
