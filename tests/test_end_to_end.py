"""Whole runs as a user starts them: `python -m mlpbench`, single and multirun, and in-process runs."""

import json
import re
import threading

import pytest
from tensorboard.backend.event_processing.event_accumulator import HISTOGRAMS, EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata

from tests.conftest import run_cli, run_in_process, scalars

FAST = ["data.limit=400", "trainer.max_epochs=2", "trainer.log_every_n_steps=2"]
METRIC_KEYS = {"val_loss", "val_acc", "best_val_acc", "best_epoch", "test_loss", "test_acc"}


def assert_complete_result(result: dict, epochs: int) -> None:
    assert result["status"] == "ok"
    assert METRIC_KEYS <= set(result["metrics"])
    assert 1 <= result["metrics"]["best_epoch"] <= epochs
    assert 0.0 <= result["metrics"]["test_acc"] <= 1.0
    for key in ("train_loss", "val_loss", "val_acc", "epoch_seconds"):
        assert len(result["history"][key]) == epochs, key
    assert result["metrics"]["val_acc"] == result["history"]["val_acc"][-1]
    assert result["metrics"]["best_val_acc"] == max(result["history"]["val_acc"])
    assert result["params"]["total"] == result["params"]["trainable"] + result["params"]["non_trainable"]
    assert result["seconds"] > 0


def test_single_run_writes_result_tensorboard_and_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(*FAST, "model.depth=2", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert "Trainable params:" in output and "Epoch 2/2" in output

    result = json.loads((run_dir / "result.json").read_text())
    assert_complete_result(result, epochs=2)
    assert result["overrides"] == [*FAST, "model.depth=2"]
    assert result["config"]["model"]["depth"] == 2 and result["config"]["model"]["activation"] == "relu"
    assert result["data"] == {"train": 320, "val": 80, "test": 1000}

    tb = scalars(run_dir)
    # One event file: the test metrics and the session end in the file the epochs went to.
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    assert [step for step, _ in tb["loss/train"]] == [1, 2]  # per epoch, x = epoch number
    assert [v for _, v in tb["acc/val"]] == pytest.approx(result["history"]["val_acc"])
    # The report's objective as a curve and, by its last value, an HParams metric to sort by.
    running_best = [max(result["history"]["val_acc"][:e]) for e in (1, 2)]
    assert [v for _, v in tb["acc/best_val"]] == pytest.approx(running_best)
    assert tb["acc/best_val"][-1][1] == pytest.approx(result["metrics"]["best_val_acc"])
    assert len(tb["step/train_loss"]) == 10 * 2 // 2  # 10 batches an epoch, logged every 2 steps
    assert tb["test/acc"][-1][1] == pytest.approx(result["metrics"]["test_acc"])
    assert not any(tag.startswith("hp/") for tag in tb)  # no group of single points ahead of the curves
    # HParams: the run's session with what it set and what defines it, its status, and no experiment
    # of its own (which would hide what differs between a sweep's runs).
    hparams = EventAccumulator(str(run_dir))
    hparams.Reload()
    content = hparams.PluginTagToContent("hparams")
    assert set(content) == {"_hparams_/session_start_info", "_hparams_/session_end_info"}
    start = metadata.parse_session_start_info_plugin_data(content["_hparams_/session_start_info"])
    assert set(start.hparams) == {"data.limit", "trainer.max_epochs", "trainer.log_every_n_steps", "model.depth",
                                  "data.source", "data.batch_size", "model.units", "model.activation",
                                  "model.residual", "model.input_bn", "model.hidden_bn", "model.dropout", "optim.name",
                                  "optim.lr", "seed"}
    assert start.hparams["model.depth"].number_value == 2 and start.hparams["optim.name"].string_value == "adam"
    end = metadata.parse_session_end_info_plugin_data(content["_hparams_/session_end_info"])
    assert end.status == api_pb2.Status.Value("STATUS_SUCCESS")
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_multirun_gives_each_run_a_folder_named_by_what_it_sweeps(tmp_path):
    sweep = tmp_path / "sweep"
    # One process (hydra.launcher.workers=1): no worker processes to start for runs this small.
    proc = run_cli("-m", "model.depth=0,2", "data.limit=200", "trainer.max_epochs=1", "hydra.launcher.workers=1",
                   f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = sorted(p.parent.name for p in sweep.glob("*/result.json"))
    assert runs == ["model.depth=0", "model.depth=2"]  # the constant keys are in .hydra/ and the report
    for name in runs:
        result = json.loads((sweep / name / "result.json").read_text())
        assert_complete_result(result, epochs=1)
        assert "loss/val" in scalars(sweep / name)
    depth0 = json.loads((sweep / runs[0] / "result.json").read_text())
    assert depth0["params"]["trainable"] == 784 * 2 + 7850  # input BatchNorm + one Dense(10)
    # The sweep ends with a line per run and the command that overlays them.
    assert "model.depth=2" in proc.stdout and f"tensorboard --logdir {sweep}" in proc.stdout
    # Progress: runs trained of the sweep's, the time so far and left; the whole sweep's time; where
    # each run trained.
    log = proc.stdout + proc.stderr
    assert "Runs done: 1 of 2" in log and "about" in log and "Runs done: 2 of 2" in log
    assert re.search(rf"2 runs in {re.escape(str(sweep))} \(\d+\.\d min\)", log)
    assert re.search(r"Run model\.depth=0 ok: .* on cpu ->", log)


# ---------------------------------------------------------------------------- in-process runs


pytestmark = pytest.mark.usefixtures("quiet_log")


def test_same_seed_gives_identical_runs_and_another_seed_does_not(tmp_path):
    a = run_in_process(tmp_path / "a", *FAST)
    b = run_in_process(tmp_path / "b", *FAST)
    c = run_in_process(tmp_path / "c", *FAST, "seed=7")
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    assert a["metrics"]["test_acc"] == b["metrics"]["test_acc"]
    assert a["history"]["train_loss"] != c["history"]["train_loss"]


def test_xor_tutorial_network_learns_the_truth_table(tmp_path):
    result = run_in_process(tmp_path, "data=xor", "model.units=8", "model.loss=mse", "model.input_bn=false",
                            "optim.lr=0.05", "trainer.max_epochs=200")
    assert result["params"]["trainable"] == 2 * 8 + 8 + 8 + 1  # Dense(8) + Dense(1)
    assert result["metrics"]["test_acc"] == 1.0
    assert result["history"]["train_loss"][-1] < 0.05


def test_a_diverging_run_stops_and_is_recorded_as_diverged(tmp_path):
    result = run_in_process(tmp_path, "optim=sgd", "optim.lr=1e6", "model.activation=linear", "model.depth=3",
                            "data.limit=500", "trainer.max_epochs=5")
    assert result["status"] == "diverged"
    assert result["epochs"] == 1 and result["diverged_at"]["epoch"] == 1
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "diverged" and saved["history"]["train_loss"] == [None]
    assert not list((tmp_path / "checkpoints").glob("*.ckpt"))  # no checkpoint of NaN weights


def test_a_crash_mid_run_keeps_the_finished_epochs(tmp_path, monkeypatch):
    from mlpbench.module import MLPModule

    original = MLPModule.training_step

    def crash_in_second_epoch(self, batch, batch_idx):
        if self.current_epoch == 1:
            raise RuntimeError("boom")
        return original(self, batch, batch_idx)

    def event_writers() -> int:  # TensorBoard's writer thread, one per open event file
        return sum(type(t).__name__ == "_AsyncWriterThread" for t in threading.enumerate())

    monkeypatch.setattr(MLPModule, "training_step", crash_in_second_epoch)
    writers_before = event_writers()
    with pytest.raises(RuntimeError, match="boom"):
        run_in_process(tmp_path, "data.limit=200", "trainer.max_epochs=3")
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "failed"
    assert saved["error"] == {"type": "RuntimeError", "message": "boom"}
    assert len(saved["history"]["train_loss"]) == 1 and saved["epochs"] == 1
    # Its event file closed: a process that trains on (a stacked worker) keeps no writer per failure.
    assert event_writers() == writers_before


def test_ctrl_c_mid_run_records_interrupted_and_keeps_a_checkpoint(tmp_path, monkeypatch, caplog):
    import logging
    import signal

    from mlpbench.module import MLPModule

    original = MLPModule.training_step

    def ctrl_c_in_third_epoch(self, batch, batch_idx):
        if self.current_epoch == 2:
            raise KeyboardInterrupt
        return original(self, batch, batch_idx)

    monkeypatch.setattr(MLPModule, "training_step", ctrl_c_in_third_epoch)
    sigint = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit), caplog.at_level(logging.WARNING, logger="mlpbench"):
            run_in_process(tmp_path, "data.limit=200", "trainer.max_epochs=5")
    finally:
        signal.signal(signal.SIGINT, sigint)  # Lightning ignores further Ctrl-C while it shuts down
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "interrupted" and saved["epochs"] == 2
    assert f"Run {tmp_path.name} interrupted after 2 epochs; kept" in caplog.text
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_diagnostics_log_per_layer_scalars_and_histograms(tmp_path):
    result = run_in_process(tmp_path, "diagnostics=true", "model.depth=2", "model.activation=sigmoid",
                            "data.limit=200", "trainer.max_epochs=2", "trainer.log_every_n_steps=2")
    tb = scalars(tmp_path)
    for layer in ("layer_01", "layer_02"):
        for group in ("grad_norm", "weight_norm", "activation_mean", "activation_std", "saturated"):
            assert f"{group}/{layer}" in tb, (group, layer)
    assert "grad_norm/output" in tb and "dead_units/layer_01" not in tb  # sigmoid units saturate, not die
    steps = [step for step, _ in tb["grad_norm/layer_01"]]
    assert steps == list(range(0, 10, 2))  # 5 batches an epoch, every 2nd step
    assert all(0.0 <= v <= 1.0 for _, v in tb["saturated/layer_02"])
    acc = EventAccumulator(str(tmp_path), size_guidance={HISTOGRAMS: 0})
    acc.Reload()
    assert {"activations/layer_01", "gradients/output"} <= set(acc.Tags()["histograms"])
    # The vanishing-gradient number: per epoch in the history, averaged in the metrics.
    ratios = result["history"]["grad_ratio"]
    assert len(ratios) == 2 and all(r > 0 for r in ratios)
    assert result["metrics"]["grad_ratio"] == pytest.approx(sum(ratios) / 2)
    first = result["history"]["first_grad_norm"]
    assert len(first) == 2 and result["metrics"]["first_grad_norm"] == pytest.approx(sum(first) / 2)
    assert first[0] == pytest.approx(sum(v for step, v in tb["grad_norm/layer_01"] if step < 5) / 3)
    assert [v for _, v in tb["grad_ratio/first_to_last"]] and result["status"] == "ok"


def test_relu_diagnostics_count_dead_units_and_are_off_by_default(tmp_path):
    run_in_process(tmp_path / "on", "diagnostics=true", "data.limit=200", "trainer.max_epochs=1")
    assert 0.0 <= scalars(tmp_path / "on")["dead_units/layer_01"][0][1] <= 1.0
    off = run_in_process(tmp_path / "off", "data.limit=200", "trainer.max_epochs=1")
    assert not any(tag.startswith("grad_norm") for tag in scalars(tmp_path / "off"))
    assert "grad_ratio" not in off["history"] and off["metrics"]["grad_ratio"] is None


@pytest.mark.usefixtures("quiet_log")
def test_predict_on_a_digits_run_reads_raw_pixels_and_reproduces_its_test_accuracy(tmp_path, capsys):
    """A run on images predicts images as Keras' model.predict does: pixels as the source has them
    (digits 0-16, MNIST 0-255), scaled as the run's training scaled its own."""
    import numpy as np
    import pandas as pd

    from mlpbench.data import make_splits
    from mlpbench.predict import main as predict_main
    from tests.conftest import make_config

    overrides = ("data=digits", "trainer.max_epochs=2", "seed=3")
    result = run_in_process(tmp_path / "run", *overrides)
    splits = make_splits(make_config(*overrides).data, 3)
    raw = (splits.x_test.numpy() * 16).round().reshape(-1, 8, 8)  # the test images, as load_digits gives them
    np.save(tmp_path / "test.npy", raw)
    out = tmp_path / "predicted.csv"
    # test_acc was measured with the last epoch's weights: --checkpoint last gives them.
    assert predict_main([str(tmp_path / "run"), "--data", str(tmp_path / "test.npy"), "--out", str(out),
                         "--checkpoint", "last"]) == 0
    predicted = pd.read_csv(out)
    assert list(predicted.columns) == ["prediction", *(f"p_{d}" for d in range(10))] and len(predicted) == len(raw)
    accuracy = float((predicted.prediction.to_numpy() == splits.y_test.numpy()).mean())
    assert accuracy == pytest.approx(result["metrics"]["test_acc"])
    # Flat rows, an .npz's x, or Keras' channel axis (n, 8, 8, 1) are the same images.
    np.savez(tmp_path / "flat.npz", x=raw.reshape(len(raw), 64))
    np.save(tmp_path / "channel.npy", raw[..., None].astype(np.uint8))
    for same in ("flat.npz", "channel.npy"):
        assert predict_main([str(tmp_path / "run"), "--data", str(tmp_path / same), "--out", str(out),
                             "--checkpoint", "last"]) == 0
        assert pd.read_csv(out).equals(predicted), same
    # Images the run cannot read are refused, saying what it reads.
    np.save(tmp_path / "scaled.npy", raw / 16)
    np.save(tmp_path / "black_and_white.npy", raw > 8)
    (tmp_path / "not_numpy.npy").write_text("1,2,3\n")
    np.save(tmp_path / "mnist.npy", np.zeros((2, 28, 28), dtype=np.uint8))
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    for data, message in (("scaled.npy", "pixels from 0 to 1 are scaled already; give them as data=digits has "
                                         "them, 0 to 16 (x * 16)"),
                          ("mnist.npy", "x has shape (2, 28, 28); data=digits's images are 8 x 8 pixels: give x of "
                                        "shape (n, 8, 8) or (n, 64)"),
                          ("black_and_white.npy", "x holds bool; give pixel values, 0 to 16 (x * 16)"),
                          ("not_numpy.npy", "not a NumPy .npy or .npz file"),
                          ("rows.csv", "a run on data=digits predicts images given as a NumPy array")):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            predict_main([str(tmp_path / "run"), "--data", str(tmp_path / data)])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err, data
