"""Predictions of a trained run on new data, as Keras' model.predict:

    python -m mlpbench.predict RUN_OR_SWEEP_DIR --data FILE [--out FILE] [--run NAME]

The run's checkpoints/best.ckpt (the epoch of its best val_acc, a regression's val_r2;
`--checkpoint last`: the last epoch's, which the run's test metrics were measured with),
loaded as tensors only (weights_only: a checkpoint from someone else runs no code).
A data=table run: its own encoding of its file (result.json's `table`: the feature columns,
their scaling and categories, the class names or the target's scale) applied to FILE, a .csv,
.tsv, .parquet or .npz with the same columns (others are ignored, so the target column may
stay). A run on images (mnist, mnist_small, fashion_mnist, digits): FILE is a NumPy array of
images, .npy or an .npz's x, with pixels as the source has them (0-255; digits 0-16),
as `keras.datasets.mnist.load_data()` gives them. One row out per row or image in: the
predicted class and each class's probability, or a regression's value in the target's own unit.
For a sweep's folder: the run of its best setting with the best value of the objective (a
folder of sweeps: its newest), or `--run NAME`.
"""

from __future__ import annotations

import argparse
import math
import sys
import zipfile
from pathlib import Path
from typing import Optional

from mlpbench.console import print_out
from mlpbench.results import RESULT_FILE, Status, load_results, read_result
from mlpbench.schema import FASHION_CLASSES, IMAGES, ConfigError, Source
from mlpbench.table import TableError, numpy_file_kind


def choose_run(folder: Path, name: Optional[str]) -> Path:
    """The run to predict with: the folder itself, `--run NAME` in it, or the best setting's run
    with the best objective value; in a folder of sweeps (outputs/table_depth), its newest's."""
    from mlpbench.report import find_sweep, read_sweep

    if name:
        try:  # a folder of sweeps: its newest; a folder of single runs (outputs/run/<date>): itself
            sweep = folder if read_result(folder / name) is not None else find_sweep(folder)
        except ConfigError:
            sweep = folder
        if read_result(sweep / name) is None:
            found = [run.name for run, _ in load_results(sweep)]
            raise ConfigError(f"--run {name}: no run of that name in {sweep}; its runs: {', '.join(found[:20]) or 'none'}"
                              + (", ..." if len(found) > 20 else ""))
        return sweep / name
    if read_result(folder) is not None:
        return folder
    folder = find_sweep(folder)
    sweep = read_sweep(folder)
    best = [s for s in sweep.settings if s.verdict.verdict == "best"] or sweep.settings
    runs = [r for s in best for r in s.measured if r.value(sweep.objective) is not None]
    if not runs:
        below = next((p.parent for p in folder.glob(f"*/*/*/**/{RESULT_FILE}")), None)  # outputs/multirun/<date>/<run>
        raise ConfigError(f"{folder}: no finished run to predict with" + (
            f"; there are runs further down: give a sweep's or a run's folder, e.g. {below.parent}" if below else ""))
    sign = 1 if sweep.maximize else -1
    return folder / max(runs, key=lambda r: sign * r.value(sweep.objective)).name


def load_model(run: Path, checkpoint_name: str = "best"):
    """The run's network with its best.ckpt (or last.ckpt) weights, in evaluation mode, and its
    result.json."""
    import torch
    from omegaconf import OmegaConf

    from mlpbench.model import MLP
    from mlpbench.schema import ModelConfig
    from mlpbench.table import is_regression

    result = read_result(run)
    if result is None:
        raise ConfigError(f"{run}: no {RESULT_FILE}: not a run's folder")
    encoding = what_it_reads(result)
    if encoding is None:
        source = ((result.get("config") or {}).get("data") or {}).get("source", "?")
        raise ConfigError(f"{run}: trained on data={source}; predict reads new rows of a data=table run's columns, "
                          f"or new images of a run on {', '.join(s.value for s in IMAGES)}")
    status, epochs = result.get("status"), result.get("epochs") or 0
    checkpoint = run / "checkpoints" / f"{checkpoint_name}.ckpt"
    if not checkpoint.is_file():
        why = (f"it diverged (a NaN or infinite loss) after {epochs} epoch(s), with no epoch to keep"
               if status == Status.diverged.value else f"its status is {status} after {epochs} epoch(s)")
        raise ConfigError(f"{run}: no checkpoints/{checkpoint_name}.ckpt: {why}")
    if status != Status.ok.value:  # its weights are what it reached: said, as Keras' predict would not
        print(f"note: {run} is no finished run: {status} after {epochs} epoch(s)"
              + (" (resume=true continues it)" if status in (Status.interrupted.value, Status.running.value) else "")
              + f"; predicting with its {checkpoint_name}.ckpt", file=sys.stderr)
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as e:  # weights_only refuses pickled code; a damaged file
        raise ConfigError(f"{checkpoint}: cannot be loaded as weights: {type(e).__name__}: {e}") from None
    model_cfg = OmegaConf.merge(OmegaConf.structured(ModelConfig), result["config"]["model"])
    inputs = math.prod(encoding["shape"]) if "shape" in encoding else len(encoding["columns"])
    model = MLP(model_cfg, inputs, 1 if is_regression(encoding) else len(encoding["classes"]))
    weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise ConfigError(f"{checkpoint}: its weights are not this run's network: {e}") from None
    return model.eval(), result


def what_it_reads(result: dict) -> Optional[dict]:
    """A run's inputs and classes: a data=table run's encoding of its file; for a run on an image
    source, the source, its images' shape and the classes' names; else None."""
    if result.get("table"):
        return result["table"]
    source = ((result.get("config") or {}).get("data") or {}).get("source")
    if source not in {s.value for s in IMAGES}:
        return None
    classes = FASHION_CLASSES if source == Source.fashion_mnist.value else tuple(str(d) for d in range(10))
    return {"source": source, "shape": IMAGES[Source(source)][0], "classes": list(classes)}


def read_images(path: Path, encoding: dict):
    """New images for a run on an image source, scaled as its training scaled its own: an .npy
    array, or an .npz's x (or its only array), of (n, height, width) or (n, height x width)
    pixels as the source has them (0-255; digits 0-16), or one image."""
    import numpy as np

    from mlpbench.data import scale_pixels  # training's own scaling (it brings Lightning: seconds)

    where, source = f"--data={path}", encoding["source"]
    shape, top = IMAGES[Source(source)]
    example = f"x of shape (n, {shape[0]}, {shape[1]})"
    if not path.is_file():
        raise TableError(f"{where}: no such file")
    if path.suffix.lower() not in (".npy", ".npz"):
        raise TableError(f"{where}: a run on data={source} predicts images given as a NumPy array: "
                         f"np.save(path, x) (.npy) or np.savez(path, x=x) (.npz), {example}")
    if numpy_file_kind(path) is None:
        raise TableError(f"{where}: not a NumPy .npy or .npz file; save the images with np.save(path, x), {example}")
    try:
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)  # no pickled objects: loading runs no code
            arrays = {name: loaded[name] for name in loaded.files} if hasattr(loaded, "files") else {"x": loaded}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        why = "it holds Python objects, which are not loaded" if "allow_pickle" in str(e) else " ".join(
            str(e).split())[:200]
        raise TableError(f"{where}: cannot be read as a NumPy {path.suffix.lower()} file: {why}") from None
    x = arrays.get("x", next(iter(arrays.values())) if len(arrays) == 1 else None)
    if not isinstance(x, np.ndarray):
        held = "its x is no NumPy array" if x is not None else (
            f"has {'arrays ' + ', '.join(sorted(arrays)) if arrays else 'no arrays'}")
        raise TableError(f"{where}: {held}; save the images as x: np.savez(path, x=x), {example}")
    if x.shape == shape or x.shape == (math.prod(shape),):  # one image
        x = x[None]
    if x.ndim == 4 and x.shape[-1] == 1:  # Keras' channel axis: (n, height, width, 1)
        x = x[..., 0]
    if not (x.ndim == 3 and x.shape[1:] == shape or x.ndim == 2 and x.shape[1] == math.prod(shape)):
        raise TableError(f"{where}: x has shape {x.shape}; data={source}'s images are {shape[0]} x {shape[1]} "
                         f"pixels: give {example} or (n, {math.prod(shape)})")
    if not len(x):
        raise TableError(f"{where}: x holds no images")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TableError(f"{where}: x holds {x.dtype}; give pixel values, 0 to {top:g}"
                         + (f" (x * {top:g})" if x.dtype == bool else ""))
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise TableError(f"{where}: x holds {int((~np.isfinite(x)).sum())} NaN or infinite value(s)")
    if x.min() < 0 or x.max() > top:
        raise TableError(f"{where}: pixels run from {x.min():g} to {x.max():g}; data={source}'s run from 0 to "
                         f"{top:g}")
    if 0 < x.max() <= 1 < top:  # no real image of the source is this faint: scaled, or black and white
        raise TableError(f"{where}: pixels from 0 to 1 are scaled already; give them as data={source} has them, "
                         f"0 to {top:g} (x * {top:g}): the run scales them as it scaled its training images")
    return scale_pixels(x, Source(source))


def predict(run: Path, data: Path, checkpoint_name: str = "best"):
    """A DataFrame: the predicted class and each class's probability (a regression: the
    predicted value), a row per row of `data`."""
    import pandas as pd
    import torch

    from mlpbench import table

    model, result = load_model(run, checkpoint_name)
    encoding = what_it_reads(result)
    if "shape" in encoding:
        x = torch.from_numpy(read_images(data, encoding))
    else:
        frame = table.short_rows(table.read_table(data, "--data", labelled=False), f"--data={data}")
        width = sum(1 for c in frame.columns if c != "y")
        # An .npz's columns are positions. A run recorded before x_width was: its features, where
        # they are all of x (x0, x1, ...), say the width.
        trained = encoding.get("x_width") or (len(encoding["features"]) if encoding["features"] == [
            f"x{i}" for i in range(len(encoding["features"]))] else None)
        if table.table_format(data) == ".npz" and trained is not None and width != trained:
            raise table.TableError(f"--data={data}: x has {width} columns; the x the model was trained on had "
                                   f"{trained}")
        frame = table.categories_as_written(frame, data, encoding.get("categorical", []))
        x = torch.from_numpy(table.apply_encoding(frame, encoding, str(data), training=False))
        notes = [*table.unseen_categories(frame, encoding), *table.filled_note(encoding.get("fill", {}), [frame], data)]
        for line in notes:
            print(f"note: {line}", file=sys.stderr)
    with torch.no_grad():
        logits = model(x)
    if table.is_regression(encoding):  # trained on the standardised target: back to its unit
        return pd.DataFrame({"prediction": table.unscale_target(logits[:, 0].numpy(), encoding)})
    mse = (result["config"]["model"].get("loss") or "cross_entropy") == "mse"
    if logits.shape[1] == 1:  # one sigmoid unit (mse, two classes): the second class's probability
        p1 = torch.sigmoid(logits[:, 0])
        probabilities = torch.stack([1 - p1, p1], 1)
    else:
        probabilities = torch.sigmoid(logits) if mse else torch.softmax(logits, 1)
    classes = encoding["classes"]
    out = pd.DataFrame({"prediction": [classes[i] for i in probabilities.argmax(1).tolist()]})
    for i, name in enumerate(classes):
        out[f"p_{name}"] = probabilities[:, i].numpy()
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlpbench.predict",
                                     description=__doc__.split("\n\n")[0].removesuffix(":").removesuffix(".") + ".")
    parser.add_argument("dir", type=Path, help="a run's folder (data=table, or an image source's), or a sweep's "
                                               "(its best run)")
    parser.add_argument("--data", type=Path, required=True,
                        help="rows to predict: .csv, .tsv (or .csv.gz ...), .parquet or .npz; a run on images: "
                             "an .npy or .npz of images, pixels as the source has them (0-255; digits 0-16)")
    parser.add_argument("--out", type=Path, help="write the predictions here: CSV, or TSV where the name ends "
                             ".tsv, compressed where it ends .gz, .bz2 or .xz (default: print them as CSV)")
    parser.add_argument("--run", help="the run to use (its folder's name) in a sweep's folder (a folder of sweeps: "
                                      "its newest), or in a folder of single runs")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="best: the epoch of the best val_acc or val_r2 (default); last: the last epoch's, "
                             "as the test metrics")
    args = parser.parse_args(argv)
    from mlpbench.table import as_named, table_format

    try:
        if not args.dir.is_dir():
            raise ConfigError(f"{args.dir}: no such folder")
        if args.out and args.out.is_dir():
            raise ConfigError(f"--out {args.out}: a folder; give the file to write, e.g. {args.out / 'predictions.csv'}")
        if args.out and args.out.resolve() == args.data.resolve():
            raise ConfigError(f"--out {args.out}: the --data file itself; the predictions would replace the rows "
                              "they are of. Give another file")
        if args.out and table_format(args.out) in (".parquet", ".npz"):
            raise ConfigError(f"--out {args.out}: predictions are written as text; give a .csv or .tsv name "
                              "(either may end .gz, .bz2 or .xz)")
        if args.out and not args.out.resolve().parent.is_dir():
            raise ConfigError(f"--out {args.out}: no folder {args.out.parent} to write it in")
        run = choose_run(args.dir, args.run)
        out = predict(run, args.data, args.checkpoint)
    except (ConfigError, TableError, FileNotFoundError) as e:
        parser.error(str(e))
    if args.out:
        from mlpbench.files import write_atomic

        try:
            sep = "\t" if table_format(args.out) == ".tsv" else ","
            write_atomic(args.out, as_named(args.out, out.to_csv(index=False, sep=sep)))
        except OSError as e:
            parser.error(f"--out {args.out}: cannot be written ({e.strerror or e})")
        print(f"{len(out)} predictions of {run} in {args.out}", file=sys.stderr)
    else:
        print(f"{len(out)} predictions of {run} ({args.checkpoint}.ckpt):", file=sys.stderr)
        print_out(out.to_csv(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
