import gzip

import numpy as np
import pytest
import torch

from mlpbench.data import (DataError, TensorBatches, find_idx_folder, load_arrays, make_splits, read_idx)
from mlpbench.schema import ConfigError
from tests.conftest import make_config, write_fake_mnist, write_idx


@pytest.mark.parametrize("compress", [False, True])
def test_idx_reader_round_trips_plain_and_gzip(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "x-idx3-ubyte", images, compress)
    assert path.name.endswith(".gz") == compress
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    assert np.array_equal(out, images)


def test_idx_reader_handles_big_endian_int32(tmp_path):
    values = np.array([1, -2, 70000], dtype=np.int32)
    assert read_idx(write_idx(tmp_path / "v", values)).tolist() == [1, -2, 70000]


def test_idx_reader_rejects_truncated_and_foreign_files(tmp_path):
    good = write_idx(tmp_path / "a", np.zeros((4, 5), dtype=np.uint8))
    truncated = tmp_path / "b"
    truncated.write_bytes(good.read_bytes()[:-3])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(truncated)
    foreign = tmp_path / "c.gz"
    foreign.write_bytes(gzip.compress(b"hello world"))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(foreign)


def test_idx_folder_is_found_in_torchvision_layout(tmp_path):
    raw = write_fake_mnist(tmp_path / "root" / "MNIST" / "raw", compress=True)
    assert find_idx_folder([tmp_path / "elsewhere", tmp_path / "root"]) == raw


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_source_reads_idx_files_under_root(tmp_path, compress):
    root = write_fake_mnist(tmp_path / f"m{compress}", n_train=60, n_test=20, compress=compress)
    cfg = make_config("data=mnist", f"data.root={root}", "data.val_split=0.25")
    splits = make_splits(cfg.data, seed=1)
    assert splits.sizes() == {"train": 45, "val": 15, "test": 20}
    assert splits.x_train.shape == (45, 784) and splits.x_train.dtype == torch.float32
    assert 0.0 <= splits.x_train.min() and splits.x_train.max() == 1.0
    assert splits.num_classes == 10


def test_missing_data_folder_says_which_files_to_put_where(tmp_path):
    cfg = make_config("data=mnist", f"data.root={tmp_path / 'nowhere'}")
    with pytest.raises(DataError) as err:
        make_splits(cfg.data, seed=0)
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "data.download=true" in message


def test_mnist_small_is_the_real_bundled_digits():
    arrays = load_arrays("mnist_small")
    assert arrays.x_train.shape == (5000, 784) and arrays.x_test is None
    assert np.bincount(arrays.y_train).tolist() == [500] * 10
    assert arrays.x_train.min() == 0.0 and arrays.x_train.max() == 1.0


def test_default_splits_hold_out_a_fixed_test_set():
    cfg = make_config()
    a, b = make_splits(cfg.data, seed=1), make_splits(cfg.data, seed=2)
    assert a.sizes() == {"train": 3200, "val": 800, "test": 1000}
    # The test rows never depend on the seed; the train/val split does, reproducibly.
    assert torch.equal(a.x_test, b.x_test)
    assert not torch.equal(a.y_val, b.y_val)
    assert torch.equal(make_splits(cfg.data, seed=1).y_val, a.y_val)


def test_val_split_null_validates_on_the_test_split():
    splits = make_splits(make_config("data.val_split=null").data, seed=0)
    assert splits.sizes() == {"train": 4000, "val": 1000, "test": 1000}
    assert torch.equal(splits.x_val, splits.x_test)


def test_limit_keeps_only_the_first_rows():
    splits = make_splits(make_config("data.limit=100").data, seed=0)
    assert splits.sizes() == {"train": 80, "val": 20, "test": 1000}


def test_digits_and_xor_sources():
    digits = make_splits(make_config("data=digits").data, seed=0)
    assert digits.num_features == 64 and digits.x_train.max() <= 1.0
    assert sum(digits.sizes()[k] for k in ("train", "val", "test")) == 1797
    xor = make_splits(make_config("data=xor").data, seed=0)
    assert xor.y_test.tolist() == [0, 1, 1, 0] and xor.num_classes == 2
    # The truth table is the training, validation and test rows alike (in another order to train).
    assert torch.equal(xor.x_val, xor.x_test)
    assert sorted(map(tuple, xor.x_train.tolist())) == sorted(map(tuple, xor.x_test.tolist()))
    assert sorted(zip(map(tuple, xor.x_train.tolist()), xor.y_train.tolist())) == sorted(
        zip(map(tuple, xor.x_test.tolist()), xor.y_test.tolist()))


def test_a_split_that_leaves_nothing_is_a_config_error():
    with pytest.raises(ConfigError, match="data.val_split"):
        make_splits(make_config("data.limit=2", "data.val_split=0.1").data, seed=0)


def test_batches_cover_every_row_once_and_reshuffle_each_epoch():
    x = torch.arange(10, dtype=torch.float32).unsqueeze(1)
    y = torch.arange(10)
    epoch = [0]
    loader = TensorBatches(x, y, batch_size=4, shuffle=True, seed=3, epoch=lambda: epoch[0])
    first = [b[1].tolist() for b in loader]
    assert [b[1].tolist() for b in loader] == first  # the same epoch: the same batches
    epoch[0] = 1
    second = [b[1].tolist() for b in loader]
    assert [len(b) for b in first] == [4, 4, 2] and len(loader) == 3
    assert sorted(sum(first, [])) == list(range(10)) == sorted(sum(second, []))
    assert first != second
    again = [b[1].tolist() for b in TensorBatches(x, y, batch_size=4, shuffle=True, seed=3)]
    assert again == first  # same seed, same batches
    for xb, yb in TensorBatches(x, y, 4, shuffle=True, seed=3):
        assert torch.equal(xb[:, 0].long(), yb)  # features stay paired with labels


def test_training_batches_drop_a_lone_trailing_row_but_evaluation_keeps_it():
    x, y = torch.zeros(9, 1), torch.arange(9)
    assert [len(b[1]) for b in TensorBatches(x, y, 4, shuffle=True)] == [4, 4]
    assert [len(b[1]) for b in TensorBatches(x, y, 4, shuffle=False)] == [4, 4, 1]


def test_fashion_mnist_is_found_where_debian_installs_it(tmp_path, monkeypatch):
    import mlpbench.data as data

    debian = write_fake_mnist(tmp_path / "usr-share-datasets-fashion-mnist", compress=True)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", debian)
    monkeypatch.setenv("MLPBENCH_DATA", str(tmp_path / "empty-cache"))
    data._load_idx_source.cache_clear()
    splits = make_splits(make_config("data=fashion_mnist").data, seed=0)
    assert splits.sizes() == {"train": 48, "val": 12, "test": 20}


def test_download_fetches_into_root_in_a_child_process(tmp_path, monkeypatch):
    import subprocess

    import mlpbench.data as data

    root = tmp_path / "dl"
    calls = []

    def fake_torchvision(cmd, **kwargs):
        calls.append(cmd)
        write_fake_mnist(root / "MNIST" / "raw", compress=True)  # torchvision's layout
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(data.subprocess, "run", fake_torchvision)
    splits = make_splits(make_config("data=mnist", f"data.root={root}", "data.download=true").data, seed=0)
    assert splits.sizes()["test"] == 20
    assert "torchvision.datasets import MNIST" in calls[0][-1]


def test_a_failed_download_says_so(tmp_path, monkeypatch):
    import subprocess

    import mlpbench.data as data

    monkeypatch.setattr(data.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 1, "", "Traceback ...\nURLError: <urlopen error [Errno -3] Temporary failure in name resolution>"))
    cfg = make_config("data=fashion_mnist", f"data.root={tmp_path / 'f'}", "data.download=true")
    with pytest.raises(DataError, match="downloading fashion_mnist with torchvision failed: URLError"):
        make_splits(cfg.data, seed=0)
