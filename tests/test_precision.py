"""The GPU path, checked on the CPU: every precision the CPU has (bf16-mixed, 64-true) trains in
both launchers with the same numbers, Keras BatchNorm and clipping included; the device settings;
a stack's size for a GPU's free memory, its chunks, a GPU for each of the runs side by side; and
the GPU check's code at a tiny size. 16-mixed's gradient scaler (in the matrix on a GPU), several
GPUs and the check's numbers need a GPU machine (make gpu-check, docs/gpu.md)."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from mlpbench import module, optim
from mlpbench.run import compose_config
from mlpbench.schema import ConfigError, checked, device_count
from tests.conftest import ON_GPU, REPO, run_cli, run_in_process, same_numbers

# 16-mixed (float16 with a gradient scaler) only on a GPU: Lightning has it for CUDA alone.
PRECISIONS = ["bf16-mixed", "64-true", *(["16-mixed"] if ON_GPU else [])]
MATRIX = ["-m", "data=digits", "data.limit=400", "model=keras", "model.hidden_bn=true", "trainer.max_epochs=2",
          f"trainer.precision={','.join(PRECISIONS)}", "seed=1,2"]
# On a GPU, runs in half precision round each product's output to 8 (bf16) or 11 (fp16) bits,
# and a batched product sums in another order than a run's own: stacked and basic runs differ
# by such roundings (bf16's unit, 2^-8, is 0.4%), not by GPU_TOLERANCE's 1e-4.
HALF_TOLERANCE = 2e-2


def results(sweep):
    return {d.name: json.loads((d / "result.json").read_text()) for d in sweep.iterdir() if (d / "result.json").is_file()}


def test_bf16_mixed_and_64_true_train_stacked_as_alone_with_keras_batchnorm(tmp_path):
    basic = run_cli(*MATRIX, "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'basic'}", cwd=tmp_path)
    # One worker: each precision's two seeds one stack.
    stacked = run_cli(*MATRIX, "hydra.launcher.workers=1", f"hydra.sweep.dir={tmp_path / 'stacked'}", cwd=tmp_path)
    assert basic.returncode == 0, basic.stderr
    assert stacked.returncode == 0, stacked.stderr
    alone, together = results(tmp_path / "basic"), results(tmp_path / "stacked")
    assert sorted(alone) == sorted(together) and len(alone) == 2 * len(PRECISIONS)
    for name, result in together.items():
        assert result["status"] == "ok" and result["stacked"]["replicas"] == 2, name
        ours, theirs = result["history"]["val_loss"], alone[name]["history"]["val_loss"]
        if ON_GPU and "16-mixed" in name:
            assert torch.allclose(torch.tensor(ours), torch.tensor(theirs), rtol=HALF_TOLERANCE, atol=0), name
        else:
            assert same_numbers(ours, theirs), name  # to the bit on the CPU
    # The precision is applied: bf16's products round otherwise than float64's.
    assert together["trainer.precision=bf16-mixed,seed=1"]["history"]["val_loss"] != \
        together["trainer.precision=64-true,seed=1"]["history"]["val_loss"]


def test_xor_in_float64_gives_its_truth_table_predictions(tmp_path):
    proc = run_cli("experiment=xor", "trainer.precision=64-true", "trainer.max_epochs=3", "seed=1,2",
                   f"hydra.sweep.dir={tmp_path / 'xor'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name, result in results(tmp_path / "xor").items():
        assert result["status"] == "ok" and len(result["predictions"]) == 4, name


@pytest.mark.usefixtures("quiet_log")
def test_clipping_under_bf16_mixed_with_a_fused_optimizer_trains_and_is_applied(tmp_path):
    # Lightning refused clipping with a fused optimizer (adam, the default) under any *-mixed
    # precision. With a tiny clip every step's size is the clip's: bf16 then follows float32.
    # In this process: the runs train as a command's do (one torch import instead of three).
    common = ["data=digits", "seed=1", "trainer.max_epochs=2", "optim=sgd", "optim.lr=0.5",
              "trainer.gradient_clip_val=0.01"]
    losses = {}
    for precision in ("32-true", "bf16-mixed"):
        result = run_in_process(tmp_path / precision, *common, f"trainer.precision={precision}")
        assert result["status"] == "ok", result
        losses[precision] = result["history"]["val_loss"]
    assert losses["bf16-mixed"] == pytest.approx(losses["32-true"], rel=1e-3)
    unclipped = run_in_process(tmp_path / "free", *common[:-1], "trainer.precision=bf16-mixed")
    assert unclipped["status"] == "ok", unclipped
    free = unclipped["history"]["val_loss"]
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
    from mlpbench.memory import check_memory, memory_need

    cfg = checked(compose_config(["data=digits", "trainer.accelerator=gpu", "trainer.devices=[1]"]))
    splits = make_splits(cfg.data, cfg.seed)
    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # GPU 1 need not exist (a machine of one GPU): its allocator is asked nothing real.
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda index: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda index: 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index: asked.append(index) or (10**6, 8 * 10**9))
    with pytest.raises(ConfigError, match=r"the rows 0\.0 GB; GPU 1 has 0\.0 GB free"):
        check_memory(cfg, splits, replicas=100)
    assert asked == [1]  # the GPU it trains on, trainer.devices=[1]
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index: (8 * 10**9, 8 * 10**9))
    check_memory(cfg, splits, replicas=100)  # 100 tutorial-sized replicas fit in 8 GB
    # In float64 (64-true) weights and activations take twice the bytes.
    wide = memory_need(checked(compose_config(["data=digits", "trainer.accelerator=gpu", "trainer.precision=64-true"])),
                       splits, replicas=100)
    narrow = memory_need(cfg, splits, replicas=100)
    assert (wide.weights, wide.activations) == (2 * narrow.weights, 2 * narrow.activations)


def test_a_stack_takes_as_many_replicas_as_the_gpus_free_memory_holds(monkeypatch):
    from mlpbench.data import make_stacked_splits
    from mlpbench.memory import check_memory, replicas_that_fit

    cfg = checked(compose_config(["data=digits", "trainer.accelerator=gpu"]))
    splits = make_stacked_splits(cfg.data, [1, 2])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda index: 10**7)  # cached by an earlier stack:
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda index: 0)  # free to this process
    for free in (10**9, 2 * 10**9, 8 * 10**9):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index, free=free: (free, 8 * 10**9))
        fit = replicas_that_fit(cfg, splits, 10000)
        assert 1 < fit < 10000, free
        check_memory(cfg, splits, replicas=fit)  # K fits ...
        with pytest.raises(ConfigError, match=f"{fit + 1} stacked replicas"):
            check_memory(cfg, splits, replicas=fit + 1)  # ... and K + 1 would not
    assert replicas_that_fit(cfg, splits, 7) == 7  # fewer wanted than fit


def test_a_group_larger_than_the_memory_trains_as_several_stacks_with_the_same_numbers(tmp_path, monkeypatch):
    from mlpbench import stacked, sweep
    from mlpbench.run import Job

    def jobs(folder):
        made = []
        for seed in (1, 2, 3):
            overrides = [f"seed={seed}", "data=digits", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]
            made.append(Job(checked(compose_config(overrides)), tmp_path / folder / f"seed={seed}", overrides,
                            sweep.RunPlan(), None, seed - 1, None))
        return made

    whole = stacked.train_group(jobs("whole"))
    monkeypatch.setattr(stacked, "replicas_that_fit", lambda cfg, data, wanted: min(wanted, 2))
    split = stacked.train_group(jobs("split"))
    assert [r["stacked"]["replicas"] for r in whole] == [3, 3, 3]
    assert [r["stacked"]["replicas"] for r in split] == [2, 2, 1]
    for ours, theirs in zip(split, whole):  # to the bit on the CPU (a GPU's batched kernels may change with K)
        assert same_numbers(ours["history"]["val_loss"], theirs["history"]["val_loss"]) and ours["status"] == "ok"
    # A later stack of the group failing (its error recorded in the group's runs) leaves the runs
    # that ended as they are.
    from mlpbench.run import record_failure
    from mlpbench.results import read_result

    record_failure(jobs("split")[0], RuntimeError("CUDA out of memory in a later stack"), say=False)
    assert read_result(tmp_path / "split" / "seed=1")["status"] == "ok"


def test_runs_side_by_side_get_a_gpu_each_where_a_machine_has_several(tmp_path, monkeypatch):
    from mlpbench import sweep

    monkeypatch.setattr(sweep, "trains_on_cpu", lambda cfg: False)
    monkeypatch.setattr(sweep, "gpus", lambda: 3)
    # This process keeps the lowest free slot, GPU 0, for every run it trains.
    devices = [sweep.spread_over_gpus(compose_config([]), tmp_path).trainer.devices for _ in range(2)]
    assert [list(d) for d in devices] == [[0], [0]]
    # Other processes of the sweep (a launcher's workers): the lowest slots free, 1, 2, then 3 (on
    # GPU 0 again); a slot is free again once its process ends, whatever the order.
    claim = ("import sys; from mlpbench.sweep import gpu_slot; print(gpu_slot(sys.argv[1]), flush=True); "
             "sys.stdin.read()")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))

    def start():
        proc = subprocess.Popen([sys.executable, "-c", claim, str(tmp_path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=env)
        return proc, int(proc.stdout.readline())

    workers = [start() for _ in range(3)]
    assert [slot for _, slot in workers] == [1, 2, 3]
    workers[1][0].communicate("")  # the worker of slot 2 ends
    later, slot = start()
    assert slot == 2
    for proc, _ in (*workers, (later, slot)):
        proc.communicate("")
    listed = sweep.spread_over_gpus(compose_config(["trainer.devices=[2]"]), tmp_path).trainer.devices
    assert list(listed) == [2]  # the user's choice stays
    monkeypatch.setattr(sweep, "gpus", lambda: 1)
    assert sweep.spread_over_gpus(compose_config([]), tmp_path).trainer.devices == 1
    monkeypatch.setattr(sweep, "gpus", lambda: 3)
    monkeypatch.setattr(sweep, "trains_on_cpu", lambda cfg: True)
    assert sweep.spread_over_gpus(compose_config([]), tmp_path).trainer.devices == 1


def test_one_group_is_cut_over_the_gpus_and_runs_alone_stay_whole():
    from types import SimpleNamespace

    from hydra_plugins.mlpbench_stacked import _spread

    def jobs(n, depth=1, *overrides):
        cfg = compose_config([f"model.depth={depth}", *overrides])
        return [SimpleNamespace(return_value=SimpleNamespace(cfg=cfg), name=f"d{depth}s{i}") for i in range(n)]

    def names(groups):
        return [[job.name for job in group] for group in groups]

    # 1,000 seeds on 4 GPUs: four stacks of 250, every run once.
    thousand = jobs(1000)
    parts = _spread([thousand], 4)
    assert sorted(len(g) for g in parts) == [250] * 4
    assert sorted(job.name for g in parts for job in g) == sorted(job.name for job in thousand)
    # Two settings of 3 seeds on 4 GPUs: each cut in two, the costliest part first (a depth-5 run
    # costs more than two of depth 1).
    deep, shallow = jobs(3, depth=5), jobs(3)
    assert names(_spread([deep, shallow], 4)) == [["d5s0", "d5s1"], ["d5s2"], ["d1s0", "d1s1"], ["d1s2"]]
    # Runs that train on their own cannot be cut; as many groups as GPUs already: as they are.
    assert names(_spread([jobs(1), jobs(1, depth=2)], 4)) == [["d2s0"], ["d1s0"]]
    assert names(_spread([deep, shallow], 2)) == names([deep, shallow])
    # A search trial's seeds (its pruning judges their mean) and runs given their own GPUs stay whole.
    trial = jobs(4, 1, "tune.repeats=4", "+callbacks.trial._target_=mlpbench.tune.trial.TrialPruning")
    listed = jobs(4, 2, "trainer.devices=[0]")
    assert [len(g) for g in _spread([trial], 4)] == [4] and [len(g) for g in _spread([listed], 4)] == [4]


def test_a_stacks_chunk_off_the_cpu_keeps_a_runs_steps_within_its_byte_bound():
    from mlpbench.stacked import GPU_CHUNK_BYTES, steps_per_chunk

    cfg = compose_config(["data.batch_size=32"])  # trainer.steps_per_chunk: 64
    assert steps_per_chunk(cfg, 100, 784, on_cpu=True) == 1
    assert steps_per_chunk(cfg, 5, 784, on_cpu=True) == 12
    assert steps_per_chunk(cfg, 5, 784, on_cpu=False) == 64
    k100 = steps_per_chunk(cfg, 100, 784, on_cpu=False)
    assert k100 == 26 and k100 * 100 * 32 * 784 * 4 <= GPU_CHUNK_BYTES < (k100 + 1) * 100 * 32 * 784 * 4


def test_the_gpu_check_runs_its_sections_on_the_cpu_and_writes_its_tables(tmp_path, monkeypatch):
    from mlpbench import gpu_check

    def broken(*args):  # as a sweep's run with no history broke it: KeyError
        raise KeyError("val_loss")

    monkeypatch.setattr(gpu_check, "equality", broken)
    out = tmp_path / "check.md"
    assert gpu_check.main(["--device", "cpu", "--skip", "tests,throughput", "--out", str(out)]) == 0
    text = out.read_text()
    assert "## 1. Host syncs" in text and "not checked on the CPU" in text
    # A section that fails says why in its place, and the next one runs.
    equality = text.split("## 2. Stacked against basic launcher")[1].split("## 3.")[0]
    assert "FAILED: KeyError: 'val_loss'" in equality and "in broken" in equality
    loop_rows = [line for line in text.split("## 3. One run against the hand-written loop")[1].splitlines()
                 if line.startswith(("| 128 |", "| 32 |"))]
    assert len(loop_rows) == 2
    for row in loop_rows:  # on the CPU the hand-written loop reaches mlpbench's weights
        assert float(row.rstrip(" |").split("|")[-1]) < 1e-6, row
    assert text.rstrip().splitlines()[-1].startswith("GPU check: ")
    gap = gpu_check.val_loss_gap
    assert gap([{"overrides": ["seed=1"], "history": {"val_loss": [0.5, 0.4]}}],
               [{"overrides": ["seed=1"], "history": {"val_loss": [0.5, 0.40002]}}]) == pytest.approx(2e-5)
    # The check's own callbacks do not make a run another; runs that differ, or failed before
    # training (no history), cannot be compared.
    assert gpu_check.val_loss_gaps([{"overrides": ["seed=1", "+callbacks.nudge._target_=x"],
                                     "history": {"val_loss": [0.5, 0.4]}}],
                                   [{"overrides": ["seed=1"], "history": {"val_loss": [0.5, 0.1]}}]) == \
        pytest.approx([0.0, 0.3])
    assert gap([{"overrides": ["seed=1"], "history": {"val_loss": [0.5]}}],
               [{"overrides": ["seed=2"], "history": {"val_loss": [0.5]}}]) == float("inf")
    assert gap([{"overrides": ["seed=1"], "history": {}}], [{"overrides": ["seed=1"], "history": {}}]) == float("inf")


def test_the_gpu_check_keeps_to_its_budget_and_to_its_own_logs_file(tmp_path, monkeypatch):
    from mlpbench import gpu_check
    from tests.test_report import fake_run

    out = tmp_path / "check.md"
    (tmp_path / "check-logs.txt").write_text("a user's file")  # a file the check did not write
    assert gpu_check.main(["--device", "cpu", "--minutes", "0", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("not run: the budget (0 min) was spent") == 5 and "## 5. Tests on the cpu" in text
    # The measurements end by the share of the budget kept for the tests (here all of it).
    monkeypatch.setattr(gpu_check, "TESTS_SHARE", 1.0)
    monkeypatch.setattr(gpu_check, "run_tests", lambda report, seconds: f"given {seconds:.0f} s\n")
    assert gpu_check.main(["--device", "cpu", "--minutes", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("not run: the budget (1 min, 1.0 of them kept for the tests) was spent") == 4
    assert "## 5. Tests on the cpu\n\ngiven 60 s" in text or "## 5. Tests on the cpu\n\ngiven 59 s" in text
    # A sweep still training when the budget ends is stopped; one due after it is not run.
    wall, _, error = gpu_check.sweep_until(["seed=1,2", "data=mnist_small", "data.limit=200", "trainer.max_epochs=100000",
                                            "trainer.accelerator=cpu"], tmp_path / "long", time.perf_counter() + 8)
    assert error.startswith("stopped at its time limit") and wall < 100
    assert gpu_check.sweep_until(["seed=1"], tmp_path / "late", time.perf_counter() - 1)[2] == \
        "not run: the budget was spent"
    assert not (tmp_path / "late").exists()
    # What failures need, in one flat file (a device's tool brings back few files, none deep or
    # named like a run folder): a failed run's result.json and its log's last lines.
    sweep = tmp_path / "sweep"
    for seed, status in ((1, "failed"), (2, "ok")):
        run = fake_run(sweep, ["model.depth=1", f"seed={seed}"], [0.5, 0.6], status=status)
        (run / "run.log").write_text("".join(f"line {i}\n" for i in range(300)))
    report = gpu_check.Report(out)
    assert report.keep("equality-stacked", sweep) == " (its failed runs: check-logs-2.txt, ===== equality-stacked)"
    assert report.keep("tests", text="pytest's output") == " (all of it: check-logs-2.txt, ===== tests)"
    logs = (tmp_path / "check-logs-2.txt").read_text()
    assert logs.startswith(gpu_check.Report.LOGS_HEADER) and "--- model.depth=1,seed=1/run.log" in logs
    assert "seed=2" not in logs and "line 99\n" not in logs and "line 100\n" in logs and "line 299\n" in logs
    assert logs.index("===== equality-stacked") < logs.index("===== tests") and "pytest's output" in logs
    assert report.keep("nothing-failed", tmp_path / "long-gone") == ""
    gpu_check.Report(out)  # the next check's: its own earlier file goes, the user's stays
    assert not (tmp_path / "check-logs-2.txt").exists() and (tmp_path / "check-logs.txt").read_text() == "a user's file"


def test_the_gpu_checks_tests_are_counted_when_the_budget_stops_them():
    from mlpbench.gpu_check import outcomes_of_tests

    ended = ("[gw0] [ 25%] PASSED tests/test_a.py::test_one \n[gw1] [ 50%] FAILED tests/test_a.py::test_two \n"
             "[gw0] [ 75%] SKIPPED tests/test_b.py::test_three \n")
    assert outcomes_of_tests("header\n" + ended, stopped=True) == (
        "1 passed, 1 failed, 0 errors, 1 skipped so far", ["tests/test_a.py::test_two"])
    done = ended + "FAILED tests/test_a.py::test_two - assert 1 == 2\n===== 1 failed, 1 passed, 1 skipped in 3.0s ====="
    assert outcomes_of_tests(done, stopped=False) == ("1 failed, 1 passed, 1 skipped in 3.0s",
                                                      ["tests/test_a.py::test_two"])


def test_a_stacks_checkpoints_written_by_a_thread_hold_their_epochs_state(tmp_path, monkeypatch):
    """Off the CPU a thread writes the K checkpoints while the next epoch trains: each epoch's
    files must hold that epoch's state, as when written in turn (the off-CPU path, on the CPU)."""
    from mlpbench import stacked, sweep
    from mlpbench.run import Job

    monkeypatch.setattr(sweep, "trains_on_cpu", lambda cfg: False)
    write, written = stacked._write_checkpoints, {}
    stepped: dict[int, threading.Event] = {}  # epoch -> a training step of it has run
    moved_on = []  # per threaded write: the next epoch trained before it (else the check shows nothing)
    step = stacked.StackedModule.training_step

    def noting_step(self, batch, batch_idx):
        loss = step(self, batch, batch_idx)
        stepped.setdefault(self.current_epoch, threading.Event()).set()
        return loss

    monkeypatch.setattr(stacked.StackedModule, "training_step", noting_step)

    def recording(folder, threaded):
        def write_files(files):
            epoch = files[0][2]["epoch"]
            if threaded and epoch + 1 < 3:  # the next epoch trains meanwhile: a checkpoint not copied would show it
                moved_on.append(stepped.setdefault(epoch + 1, threading.Event()).wait(timeout=600))
            written.setdefault(folder, []).append([(ckpt["epoch"], {k: t.clone() for k, t in ckpt["state_dict"].items()},
                                                    ckpt["optimizer_states"][0]) for _, _, ckpt in files])
            write(files)
        return write_files

    def train(folder, threaded):
        monkeypatch.setattr(stacked, "_write_checkpoints", recording(folder, threaded))
        jobs = []
        for seed in (1, 2):
            overrides = [f"seed={seed}", "data=digits", "trainer.max_epochs=3", "trainer.enable_progress_bar=false"]
            jobs.append(Job(checked(compose_config(overrides)), tmp_path / folder / f"seed={seed}", overrides,
                            sweep.RunPlan(), None, seed - 1, None))
        return stacked.train_group(jobs)

    threaded = train("threaded", True)
    in_turn = stacked.ReplicaCheckpoints.__init__
    monkeypatch.setattr(stacked.ReplicaCheckpoints, "__init__",
                        lambda self, run_dirs, module, background=False: in_turn(self, run_dirs, module, False))
    written_in_turn = train("in_turn", False)
    assert [r["history"]["val_loss"] for r in threaded] == [r["history"]["val_loss"] for r in written_in_turn]
    # The thread writes an epoch's files at a time, in turn they are written a replica at a time.
    assert len(written["threaded"]) == 3 and len(written["in_turn"]) == 6 and moved_on == [True, True]
    ours, theirs = sum(written["threaded"], []), sum(written["in_turn"], [])
    for (epoch, state, optimizer), (their_epoch, their_state, their_optimizer) in zip(ours, theirs, strict=True):
        assert epoch == their_epoch and all(torch.equal(state[k], t) for k, t in their_state.items()), epoch
        for i, moments in their_optimizer["state"].items():
            assert all(torch.equal(optimizer["state"][i][k], v) for k, v in moments.items()), epoch
    for seed in (1, 2):  # and the files are those of the last epoch
        ours, theirs = (torch.load(tmp_path / folder / f"seed={seed}" / "checkpoints" / "last.ckpt", weights_only=True)
                        for folder in ("threaded", "in_turn"))
        assert all(torch.equal(ours["state_dict"][k], t) for k, t in theirs["state_dict"].items())
