"""hydra/launcher=stacked: a sweep's seeds trained as one stacked model must write what the
basic launcher writes, with the same numbers, and resume from either launcher's checkpoints."""

import json
import os
import signal

import torch

from tests.conftest import only_sweep, run_cli, run_rows, start_cli, wait_for_file

GRID = ["model.depth=3", "data.limit=400", "data.batch_size=16", "trainer.max_epochs=4"]


def histories(sweep):
    return {d.name: json.loads((d / "result.json").read_text())
            for d in sweep.iterdir() if (d / "result.json").is_file()}


def test_stacked_seeds_write_the_basic_launchers_runs_with_the_same_val_loss(tmp_path):
    basic = run_cli("-m", "seed=1,2,3", *GRID, f"hydra.sweep.dir={tmp_path / 'basic'}", cwd=tmp_path)
    stacked = run_cli("-m", "seed=1,2,3", *GRID, "hydra/launcher=stacked", f"hydra.sweep.dir={tmp_path / 'stacked'}",
                      cwd=tmp_path)
    assert basic.returncode == 0, basic.stderr
    assert stacked.returncode == 0, stacked.stderr
    assert "one stacked model of 3 replicas" in stacked.stdout + stacked.stderr
    expected, got = histories(tmp_path / "basic"), histories(tmp_path / "stacked")
    assert sorted(got) == sorted(expected) and [name[-6:] for name in sorted(got)] == ["seed=1", "seed=2", "seed=3"]
    for name, result in got.items():
        assert result["status"] == "ok" and result["epochs"] == 4
        assert result["stacked"]["replicas"] == 3
        for a, b in zip(result["history"]["val_loss"], expected[name]["history"]["val_loss"], strict=True):
            assert abs(a - b) <= 1e-4, name
        assert abs(result["metrics"]["test_acc"] - expected[name]["metrics"]["test_acc"]) <= 1e-3
        run = tmp_path / "stacked" / name
        # What an ordinary run leaves: Hydra's config, its own log, events, both checkpoints.
        for path in (".hydra/overrides.yaml", "run.log", "checkpoints/last.ckpt", "checkpoints/best.ckpt"):
            assert (run / path).is_file(), path
        assert list(run.glob("events.out.tfevents.*"))
        log = (run / "run.log").read_text()
        assert log.count("Epoch 4/4") == 1 and f"Run {name} ok" in log
        seed = name[-1]
        assert all(f"seed={s}" not in log for s in "123" if s != seed)  # no other replica's lines
    # A replica's checkpoint is an ordinary run's: its best epoch's weights and optimizer state as
    # the basic launcher saved them. (last.ckpt is written after every epoch here; Lightning's
    # save_last writes it only along with a new best.)
    ours = torch.load(next((tmp_path / "stacked").glob("*seed=2/checkpoints/best.ckpt")), weights_only=True)
    theirs = torch.load(next((tmp_path / "basic").glob("*seed=2/checkpoints/best.ckpt")), weights_only=True)
    assert ours["epoch"] == theirs["epoch"] and ours["global_step"] == theirs["global_step"]
    assert ours["state_dict"].keys() == theirs["state_dict"].keys()
    for key, tensor in theirs["state_dict"].items():
        assert torch.allclose(ours["state_dict"][key].float(), tensor.float(), atol=1e-6), key
    (opt_ours,), (opt_theirs,) = ours["optimizer_states"], theirs["optimizer_states"]
    assert opt_ours["param_groups"][0]["params"] == opt_theirs["param_groups"][0]["params"]
    for i, state in opt_theirs["state"].items():
        assert torch.allclose(opt_ours["state"][i]["exp_avg_sq"], state["exp_avg_sq"], atol=1e-9)
    assert ours["callbacks"].keys() == theirs["callbacks"].keys()
    assert len(run_rows(tmp_path / "stacked")) == 3


def test_runs_that_cannot_share_a_model_train_alone_and_groups_split_by_setting(tmp_path):
    grid = ["-m", "seed=1,2", "model.depth=1,2", "data.limit=200", "trainer.max_epochs=1", "hydra/launcher=stacked",
            "+callbacks.stop._target_=lightning.pytorch.callbacks.EarlyStopping", "+callbacks.stop.monitor=val_loss"]
    proc = run_cli(*grid, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert output.count("trains on its own: callbacks.stop") == 4 and "one stacked model of" not in output
    proc = run_cli("-m", "seed=1,2", "model.depth=1,2", "data.limit=200", "trainer.max_epochs=1",
                   "hydra/launcher=stacked", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert output.count("one stacked model of 2 replicas") == 2


def test_a_killed_stacked_sweep_resumes_with_histories_equal_to_uninterrupted_runs(tmp_path):
    grid = ["-m", "seed=1,2", "model.depth=2", "data.limit=400", "trainer.max_epochs=12", "hydra/launcher=stacked"]
    proc = start_cli(grid, tmp_path)
    wait_for_file(f"{tmp_path}/outputs/multirun/*/*seed=2*/checkpoints/last.ckpt", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    sweep = only_sweep(tmp_path)
    resumed = run_cli(*grid, "resume=true", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "continuing after epoch" in resumed.stdout + resumed.stderr
    # The same runs, never interrupted, by the basic launcher.
    reference = run_cli(*[a for a in grid if a != "hydra/launcher=stacked"], f"hydra.sweep.dir={tmp_path / 'ref'}",
                        cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    expected = histories(tmp_path / "ref")
    for name, result in histories(sweep).items():
        assert result["status"] == "ok" and result["epochs"] == 12 and len(result["resumed"]) == 1
        for a, b in zip(result["history"]["val_loss"], expected[name]["history"]["val_loss"], strict=True):
            assert abs(a - b) <= 1e-4, name
