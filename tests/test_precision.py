"""trainer.precision and the device settings on the CPU path: every precision the CPU has
(bf16-mixed, 64-true) trains in both launchers with the same numbers, Keras BatchNorm and
clipping included. 16-mixed's gradient scaler and several GPUs need a GPU machine to check."""

import json

import pytest
import torch

from mlpbench import module, optim
from mlpbench.run import compose_config
from mlpbench.schema import ConfigError, checked, device_count
from tests.conftest import run_cli

MATRIX = ["-m", "data=digits", "model=keras", "model.hidden_bn=true", "trainer.max_epochs=2",
          "trainer.precision=bf16-mixed,64-true", "seed=1,2"]


def results(sweep):
    return {d.name: json.loads((d / "result.json").read_text()) for d in sweep.iterdir() if (d / "result.json").is_file()}


def test_bf16_mixed_and_64_true_train_stacked_as_alone_with_keras_batchnorm(tmp_path):
    basic = run_cli(*MATRIX, "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'basic'}", cwd=tmp_path)
    # One worker: each precision's two seeds one stack.
    stacked = run_cli(*MATRIX, "hydra.launcher.workers=1", f"hydra.sweep.dir={tmp_path / 'stacked'}", cwd=tmp_path)
    assert basic.returncode == 0, basic.stderr
    assert stacked.returncode == 0, stacked.stderr
    alone, together = results(tmp_path / "basic"), results(tmp_path / "stacked")
    assert sorted(alone) == sorted(together) and len(alone) == 4
    for name, result in together.items():
        assert result["status"] == "ok" and result["stacked"]["replicas"] == 2, name
        assert result["history"]["val_loss"] == alone[name]["history"]["val_loss"], name  # to the bit on the CPU
    # The precision is applied: bf16's products round otherwise than float64's.
    assert together["trainer.precision=bf16-mixed,seed=1"]["history"]["val_loss"] != \
        together["trainer.precision=64-true,seed=1"]["history"]["val_loss"]


def test_xor_in_float64_gives_its_truth_table_predictions(tmp_path):
    proc = run_cli("experiment=xor", "trainer.precision=64-true", "trainer.max_epochs=3", "seed=1,2",
                   f"hydra.sweep.dir={tmp_path / 'xor'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name, result in results(tmp_path / "xor").items():
        assert result["status"] == "ok" and len(result["predictions"]) == 4, name


def test_clipping_under_bf16_mixed_with_a_fused_optimizer_trains_and_is_applied(tmp_path):
    # Lightning refused clipping with a fused optimizer (adam, the default) under any *-mixed
    # precision. With a tiny clip every step's size is the clip's: bf16 then follows float32.
    common = ["data=digits", "seed=1", "trainer.max_epochs=2", "optim=sgd", "optim.lr=0.5",
              "trainer.gradient_clip_val=0.01"]
    losses = {}
    for precision in ("32-true", "bf16-mixed"):
        run = tmp_path / precision
        proc = run_cli(*common, f"trainer.precision={precision}", f"hydra.run.dir={run}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        losses[precision] = json.loads((run / "result.json").read_text())["history"]["val_loss"]
    assert losses["bf16-mixed"] == pytest.approx(losses["32-true"], rel=1e-3)
    unclipped = run_cli(*common[:-1], "trainer.precision=bf16-mixed", f"hydra.run.dir={tmp_path / 'free'}", cwd=tmp_path)
    assert unclipped.returncode == 0, unclipped.stderr
    free = json.loads((tmp_path / "free" / "result.json").read_text())["history"]["val_loss"]
    assert free[-1] < 0.9 * losses["bf16-mixed"][-1]  # the clip did slow it: it was applied


def test_a_checkpoints_gpu_rng_states_restore_on_as_many_gpus_as_there_are(monkeypatch):
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((int(state[0]), device)))
    module.restore_cuda_rng([torch.tensor([7], dtype=torch.uint8), torch.tensor([8], dtype=torch.uint8)])
    assert restored == [(7, 0)]  # saved on two GPUs, resumed on one
    module.restore_cuda_rng(None)  # saved on a CPU machine
    assert restored == [(7, 0)]


@pytest.mark.parametrize("devices, count", [("1", 1), ("2", 2), ("[1]", 1), ("[0,2]", 2)])
def test_trainer_devices_takes_a_number_or_device_indices(devices, count):
    cfg = checked(compose_config([f"trainer.devices={devices}"]))
    assert device_count(cfg.trainer.devices) == count


@pytest.mark.parametrize("devices", ["0", "[]", "[0,0]", "[-1]", "gpu"])
def test_trainer_devices_refuses_what_names_no_device(devices):
    with pytest.raises(ConfigError, match="trainer.devices=.*: must be an integer >= 1 .how many devices., or a list"):
        checked(compose_config([f"trainer.devices={devices}"]))


@pytest.mark.skipif(torch.version.cuda is not None, reason="a CUDA build of torch")
def test_a_gpu_asked_of_the_cpu_build_says_how_to_get_the_cuda_build(tmp_path):
    proc = run_cli("data=digits", "trainer.accelerator=gpu", cwd=tmp_path)
    assert proc.returncode == 2
    assert "is a CPU build, which cannot use a GPU" in proc.stderr and "make setup TORCH=cuda" in proc.stderr


def test_keras_adam_counts_its_steps_without_reading_the_device_and_resumes_from_older_checkpoints():
    def trained(steps, reload_at=None):
        torch.manual_seed(0)
        weight = torch.nn.Parameter(torch.randn(5))
        opt = optim.KerasAdam([weight], lr=0.1, eps=1e-3, fused=True)
        for step in range(steps):
            if step == reload_at:  # a checkpoint written before keras_step was kept
                state = opt.state_dict()
                del state["param_groups"][0]["keras_step"]
                opt = optim.KerasAdam([weight], lr=0.1, eps=1e-3, fused=True)
                opt.load_state_dict(state)
            weight.grad = torch.sin(weight.detach() * (step + 1))
            opt.step()
        return weight.detach().clone(), opt

    straight, opt = trained(6)
    assert opt.param_groups[0]["keras_step"] == 6 == int(opt.state[opt.param_groups[0]["params"][0]]["step"])
    resumed, _ = trained(6, reload_at=3)
    assert torch.equal(straight, resumed)


def test_a_model_too_large_for_the_gpus_free_memory_is_refused_naming_it(monkeypatch):
    from mlpbench.data import make_splits
    from mlpbench.run import check_memory

    cfg = checked(compose_config(["data=digits", "trainer.accelerator=gpu", "trainer.devices=[1]"]))
    splits = make_splits(cfg.data, cfg.seed)
    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index: asked.append(index) or (10**6, 8 * 10**9))
    with pytest.raises(ConfigError, match=r"the rows 0\.0 GB; GPU 1 has 0\.0 GB free"):
        check_memory(cfg, splits, replicas=100)
    assert asked == [1]  # the GPU it trains on, trainer.devices=[1]
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index: (8 * 10**9, 8 * 10**9))
    check_memory(cfg, splits, replicas=100)  # 100 tutorial-sized replicas fit in 8 GB
