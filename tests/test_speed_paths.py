"""The fast paths must not change what is computed: chunked steps, lean steps, the array cache."""

from pathlib import Path

import numpy as np
import pytest

from mlpbench import data
from tests.conftest import run_cli, run_in_process, same_numbers, write_fake_mnist

BASE = ["data.limit=300", "trainer.max_epochs=2", "model.dropout=0.1"]


def history(tmp_path: Path, *overrides: str) -> dict:
    return run_in_process(tmp_path / "-".join(overrides or ["base"]), *BASE, *overrides)["history"]


@pytest.mark.usefixtures("quiet_log")
def test_steps_per_chunk_and_lean_steps_take_the_same_updates(tmp_path):
    chunked = history(tmp_path)  # 64 optimizer steps a Lightning step, straight on the optimizer
    one_per_step = history(tmp_path, "trainer.steps_per_chunk=1")
    hooked = history(tmp_path, "diagnostics=true")  # a callback with backward hooks: Lightning's wrappers
    clipped = history(tmp_path, "trainer.gradient_clip_val=0.5")
    for other in (one_per_step, hooked):
        assert other["train_loss"] == chunked["train_loss"] and other["val_acc"] == chunked["val_acc"]
    assert clipped["train_loss"] != chunked["train_loss"]  # clipping is applied on the lean path


def test_arrays_are_cached_on_disk_after_the_first_read(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    folder = write_fake_mnist(tmp_path / "mnist", compress=True)
    data._load_idx_source.cache_clear()
    first = data.load_arrays("mnist", str(folder))
    assert len(list((tmp_path / "cache").glob("mnist-*/x_train.npy"))) == 1

    data._load_idx_source.cache_clear()
    monkeypatch.setattr(data, "read_idx", lambda path: pytest.fail("read the IDX files again"))
    again = data.load_arrays("mnist", str(folder))
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)

    # Changed input files are read again.
    monkeypatch.undo()
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    write_fake_mnist(tmp_path / "mnist", n_train=80, compress=True)
    data._load_idx_source.cache_clear()
    assert len(data.load_arrays("mnist", str(folder)).y_train) == 80
    data._load_idx_source.cache_clear()


def test_the_benchmark_runs_and_checks_that_updates_match(tmp_path, monkeypatch, capsys, quiet_log):
    # bench.main as `python -m mlpbench.bench` calls it, in this process (one torch import fewer);
    # its sweeps still run as their own commands, forked as the tests' commands are (four fresh
    # interpreters fewer: about 9 CPU-s each).
    import sys
    import types

    from mlpbench import bench

    def run(command, cwd, **kwargs):
        assert command[:3] == [sys.executable, "-m", "mlpbench"] and kwargs.get("capture_output"), command
        return run_cli(*command[3:], cwd=Path(cwd), pool=True)

    monkeypatch.setattr(bench, "subprocess", types.SimpleNamespace(run=run))
    monkeypatch.setenv("MLPBENCH_DATA", str(tmp_path))
    write_fake_mnist(tmp_path / "mnist", n_train=600, n_test=200)
    code = bench.main(["--rows", "400", "--epochs", "2", "--batch-sizes", "64", "--repeats", "1", "--no-keras",
                       "--no-startup", "--stacked-rows", "0", "--sweeps", "tiny", "--pairs", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    (loop,) = [line for line in out.splitlines() if line.startswith("| 64 |")]
    assert "| yes (" in loop
    # A sweep of 4 runs, two pairs, under both launchers: a ratio with its interval, and val_loss
    # histories equal to the bit (the K-seeds table, `--stacked-rows`, compares the same way).
    tiny = next(line for line in out.splitlines() if line.startswith("| tiny | 4 |"))
    assert ", n = 2 |" in tiny and "± " in tiny
    assert same_numbers([float(tiny.rstrip(" |").split("|")[-1])], [0.0]), tiny
