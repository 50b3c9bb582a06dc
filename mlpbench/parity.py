"""`python -m mlpbench.parity`: mlpbench's Keras mode against real Keras, on the same arrays.

For developers and the curious, where TensorFlow is installed (never part of the set-up or of
CI). It trains the tutorials' models both ways over a few seeds on the very arrays mlpbench
trains on — Keras fed a fresh permutation every epoch, as mlpbench does — and prints a
side-by-side table of the final training and validation loss and accuracy, mean ± 95% interval
over the seeds, and each loss's difference (mlpbench - Keras, paired by seed: the same arrays)
with its 95% interval, told apart from no difference by a paired t-test adjusted for the
table's tests (Holm). An interval that includes 0 bounds a mismatch, it does not rule one out:
the proof of parity is the step-by-step test (tests/test_keras_parity.py). The `seeded` case compares data.order=fixed
with a seeded Keras script, which replays one batch order every epoch.

    python -m mlpbench.parity --keras-python /path/to/tf-env/bin/python [--seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from mlpbench.files import markdown, write_atomic, write_json_atomic
from mlpbench.stats import compare as paired_p, holm, summarize

KERAS_SIDE = Path(__file__).with_name("parity_keras.py")
TUTORIAL = dict(depth=1, units=128, input_bn=True, negative_slope=0.01, batch_size=32, epochs=10,
                keras_seeded_order=False)
KERAS_DEFAULT_LR = {"sgd": 0.01, "rmsprop": 0.001, "adagrad": 0.001, "adam": 0.001, "nadam": 0.001}


def cases() -> dict[str, tuple[list[str], dict]]:
    """name -> (mlpbench overrides, the Keras model and training)."""
    found: dict[str, tuple[list[str], dict]] = {}
    for activation in ("relu", "leaky_relu", "tanh", "sigmoid"):
        found[f"{activation}/adam"] = ([f"model.activation={activation}", "optim=adam"],
                                       dict(TUTORIAL, activation=activation, optimizer="adam", lr=0.001))
    for optimizer in ("sgd", "rmsprop", "adagrad", "nadam"):
        found[f"relu/{optimizer}"] = ([f"optim={optimizer}"], dict(TUTORIAL, activation="relu", optimizer=optimizer,
                                                                  lr=KERAS_DEFAULT_LR[optimizer]))
    for depth in (2, 5, 10):  # the depth tutorial: Dense(128) without activation, SGD, batch 128
        found[f"depth_linear {depth}"] = (
            ["experiment=depth_linear", f"model.depth={depth}", "diagnostics=false"],
            dict(TUTORIAL, depth=depth, input_bn=False, activation="linear", optimizer="sgd", lr=0.01,
                 batch_size=128, epochs=20))
    found["seeded relu/adam"] = (["model.activation=relu", "optim=adam", "data.order=fixed"],
                                 dict(TUTORIAL, activation="relu", optimizer="adam", lr=0.001,
                                      keras_seeded_order=True))
    return found


def _mlpbench_run(overrides: list[str], seed: int, workdir: Path, arrays_path: Path) -> dict:
    from mlpbench.data import make_splits
    from mlpbench.run import compose_config, train

    args = ["model=keras", *overrides, f"seed={seed}", "trainer.enable_progress_bar=false"]
    cfg = compose_config(args)
    splits = make_splits(cfg.data, seed)
    np.savez(arrays_path, x_train=splits.x_train.numpy(), y_train=splits.y_train.numpy(),
             x_val=splits.x_val.numpy(), y_val=splits.y_val.numpy())
    result = train(cfg, Path(tempfile.mkdtemp(dir=workdir)), args)
    return result["history"]


def _finals(histories: list[dict], key: str) -> list[float]:
    return [h[key][-1] for h in histories if h.get(key) and h[key][-1] is not None]


def _interval(values: list[float]) -> str:
    s = summarize(values)
    return "-" if not s.n else f"{s.mean:.4f} ± {s.ci95:.4f}"


def _difference(ours: list[dict], theirs: list[dict], key: str) -> tuple[str, Optional[float]]:
    """mlpbench - Keras in `key`, paired by seed, as a share of Keras' mean with its 95%
    interval ("+1% [-5%, +7%]"), and the paired t-test's p (None without two pairs)."""
    pairs = [(a[key][-1], b[key][-1]) for a, b in zip(ours, theirs)
             if a.get(key) and b.get(key) and a[key][-1] is not None and b[key][-1] is not None]
    s = summarize([a - b for a, b in pairs])
    scale = statistics.fmean(b for _, b in pairs) if pairs else math.nan
    if s.n < 2 or not scale:
        return "-", None
    low, high = (s.mean - s.ci95) / scale, (s.mean + s.ci95) / scale
    p = paired_p(dict(enumerate(a for a, _ in pairs)), dict(enumerate(b for _, b in pairs))).p
    return f"{s.mean / scale:+.0%} [{low:+.0%}, {high:+.0%}]", p


def compare(ours: list[dict], theirs: list[dict]) -> dict:
    """The table's row for one case (`ours` and `theirs` by seed, in the same order): final
    metrics both ways, and each loss's paired difference (its p in `p train_loss`, `p val_loss`)."""
    row: dict = {}
    for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
        row[f"mlpbench {key}"] = _interval(_finals(ours, key))
        row[f"keras {key}"] = _interval(_finals(theirs, key))
    for key in ("train_loss", "val_loss"):
        row[f"{key} difference"], row[f"p {key}"] = _difference(ours, theirs, key)
    return row


def tell_apart(rows: list[dict]) -> None:
    """Each row's `told apart`: a loss whose paired test is significant at 0.05 once adjusted
    (Holm) for every loss of every row: among 24 tests about one falls below 0.05 alone by chance."""
    tests = [(row, key) for row in rows for key in ("p train_loss", "p val_loss") if row.get(key) is not None]
    adjusted = holm([row[key] for row, key in tests])
    for row in rows:
        row["told apart"] = "no"
    for (row, key), p in zip(tests, adjusted):
        if p < 0.05:
            row["told apart"] = f"yes: {key.removeprefix('p ')} (p = {p:.2g})"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlpbench.parity",
                                     description=__doc__.split("\n\n")[0].removesuffix(":").removesuffix(".") + ".")
    parser.add_argument("--keras-python", default=sys.executable,
                        help="a Python with tensorflow and keras installed (default: this one)")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (default 1,2,3)")
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--out", type=Path, help="also write the table and the histories (JSON) here")
    args = parser.parse_args(argv)
    probe = subprocess.run([args.keras_python, "-c", "import keras, tensorflow"], capture_output=True, text=True)
    if probe.returncode != 0:
        parser.error(f"--keras-python {args.keras_python}: cannot import keras and tensorflow there "
                     "(pip install tensorflow-cpu into an environment of its own, and pass its python)")
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = {k: v for k, v in cases().items() if not args.cases or k in args.cases.split(",")}
    logging.getLogger("mlpbench").setLevel(logging.WARNING)
    ours: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="mlpbench-parity-") as tmp:
        workdir, runs = Path(tmp), []
        for name, (overrides, keras_case) in chosen.items():
            for seed in seeds:
                arrays = workdir / f"arrays-{len(runs)}.npz"
                print(f"mlpbench: {name}, seed {seed}", file=sys.stderr, flush=True)
                ours.setdefault(name, []).append(_mlpbench_run(overrides, seed, workdir, arrays))
                runs.append({"key": f"{name}|{seed}", "case": keras_case, "seed": seed, "arrays": str(arrays)})
        (workdir / "cases.json").write_text(json.dumps({"runs": runs}))
        keras_run = subprocess.run([args.keras_python, str(KERAS_SIDE), str(workdir / "cases.json"),
                                    str(workdir / "keras.json")])
        if keras_run.returncode != 0:
            print("mlpbench.parity: the Keras side failed (its output is above)", file=sys.stderr)
            return 1
        keras_results = json.loads((workdir / "keras.json").read_text())
    theirs = {name: [keras_results[f"{name}|{seed}"] for seed in seeds] for name in chosen}
    rows = [{"case": name, **compare(ours[name], theirs[name])} for name in chosen]
    tell_apart(rows)
    columns = ["case", "mlpbench train_loss", "keras train_loss", "train_loss difference", "mlpbench val_loss",
               "keras val_loss", "val_loss difference", "mlpbench val_acc", "keras val_acc", "told apart"]
    table = markdown(columns, rows)
    print(f"\nFinal epoch, mean ± 95% interval over seeds {args.seeds} (n = {len(seeds)}); a difference is "
          f"mlpbench - Keras, paired by seed, as a share of Keras' mean [its 95% interval]; told apart: a loss "
          f"whose paired t-test gives p < 0.05 adjusted (Holm) for the table's {2 * len(rows)} tests.\n\n{table}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out / "parity.md", table.encode())
        write_json_atomic(args.out / "histories.json", {"mlpbench": ours, "keras": theirs})
    return 0 if all(r["told apart"] == "no" for r in rows if not r["case"].startswith("seeded")) else 1


if __name__ == "__main__":
    sys.exit(main())
