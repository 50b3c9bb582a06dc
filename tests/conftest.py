import gzip
import logging
import tempfile
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlpbench.run import compose_config

REPO = Path(__file__).resolve().parent.parent


def make_config(*overrides: str):
    """The config `python -m mlpbench OVERRIDES` would run with (no hydra.* section)."""
    return compose_config(list(overrides))


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "mlpbench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    array = np.asarray(array)
    if array.dtype == np.int32:
        array = array.astype(">i4")
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    data = header + array.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_fake_mnist(folder: Path, n_train: int = 60, n_test: int = 20, compress: bool = False) -> Path:
    """Four small IDX files shaped like MNIST: digit k is a bright k-th row band."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k: 2 * k + 3, :] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels, compress)
    return folder


def run_in_process(run_dir: Path, *overrides: str) -> dict:
    """A run as `python -m mlpbench OVERRIDES` makes it, in this process; its result.json payload."""
    from mlpbench.run import train

    overrides = (*overrides, "trainer.enable_progress_bar=false")
    return train(make_config(*overrides), run_dir, list(overrides))


@pytest.fixture
def quiet_log():
    """In-process runs log a model summary and a line per epoch: keep pytest's output short."""
    logging.getLogger("mlpbench").setLevel(logging.WARNING)
    yield
    logging.getLogger("mlpbench").setLevel(logging.NOTSET)


@pytest.fixture
def fake_mnist(tmp_path: Path) -> Path:
    return write_fake_mnist(tmp_path / "mnist")


# The on-disk array cache (mlpbench/data.py) of this test session, not the user's.
os.environ.setdefault("MLPBENCH_CACHE", str(Path(tempfile.mkdtemp(prefix="mlpbench-test-cache-"))))
