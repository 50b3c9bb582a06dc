"""hydra/launcher=stacked (the default): runs trained as one stacked model must write what the
basic launcher writes, with the same numbers whatever their stack-mates, and resume from either
launcher's checkpoints."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import torch

import pytest

from tests.conftest import (ON_GPU, REPO, fork_server_workers, only_sweep, run_cli, run_rows, same_numbers,
                            start_cli, wait_for_group_end, wait_until)

# Two settings of 3 seeds: two stacks, side by side in worker processes.
GRID = ["seed=1,2,3", "model.depth=1,3", "data.limit=400", "data.batch_size=16", "trainer.max_epochs=4"]


def histories(sweep):
    return {d.name: json.loads((d / "result.json").read_text())
            for d in sweep.iterdir() if (d / "result.json").is_file()}


def test_stacked_seeds_train_in_worker_processes_and_write_the_basic_launchers_runs_with_the_same_val_loss(tmp_path):
    """Two settings' stacks, side by side in processes of one thread (on a machine of one core,
    in this process): the runs and numbers of the basic launcher's, which train with every thread."""
    basic = run_cli("-m", *GRID, "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'basic'}", cwd=tmp_path)
    stacked = run_cli("-m", *GRID, f"hydra.sweep.dir={tmp_path / 'stacked'}", cwd=tmp_path, pool=True)
    assert basic.returncode == 0, basic.stderr
    assert stacked.returncode == 0, stacked.stderr
    # The basic launcher says how far the grid is after each run, as the stacked one after each stack.
    done = [line.split("Runs done: ")[1].split(",")[0] for line in (basic.stdout + basic.stderr).splitlines()
            if "Runs done: " in line]
    assert done == [f"{k} of 6" for k in range(1, 7)]
    output = stacked.stdout + stacked.stderr
    assert "One stacked model of 3 replicas" in output
    # A worker process per core on the CPU, per GPU on a GPU (one GPU: this process).
    if (torch.cuda.device_count() if ON_GPU else len(os.sched_getaffinity(0))) > 1:
        assert "in 2 processes of one thread each" in output
        assert output.count("One stacked model of 3 replicas") == 2
    expected, got = histories(tmp_path / "basic"), histories(tmp_path / "stacked")
    assert sorted(got) == sorted(expected)
    assert [name[-6:] for name in sorted(got)] == ["seed=1", "seed=2", "seed=3"] * 2
    for name, result in got.items():
        assert result["status"] == "ok" and result["epochs"] == 4
        assert result["stacked"]["replicas"] == 3
        assert same_numbers(result["history"]["val_loss"], expected[name]["history"]["val_loss"]), name  # to the bit on the CPU
        assert same_numbers(result["metrics"]["test_acc"], expected[name]["metrics"]["test_acc"])
        assert result["threads"] == (1 if "in 2 processes" in output else expected[name]["threads"])
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
    # the basic launcher saved them.
    ours = torch.load(tmp_path / "stacked" / "model.depth=3,seed=2" / "checkpoints" / "best.ckpt", weights_only=True)
    theirs = torch.load(tmp_path / "basic" / "model.depth=3,seed=2" / "checkpoints" / "best.ckpt", weights_only=True)
    assert ours["epoch"] == theirs["epoch"] and ours["global_step"] == theirs["global_step"]
    assert ours["state_dict"].keys() == theirs["state_dict"].keys()
    for key, tensor in theirs["state_dict"].items():
        assert same_numbers(ours["state_dict"][key], tensor), key
    (opt_ours,), (opt_theirs,) = ours["optimizer_states"], theirs["optimizer_states"]
    assert opt_ours["param_groups"][0]["params"] == opt_theirs["param_groups"][0]["params"]
    for i, state in opt_theirs["state"].items():
        assert same_numbers(opt_ours["state"][i]["exp_avg_sq"], state["exp_avg_sq"])
    assert ours["callbacks"].keys() == theirs["callbacks"].keys()
    assert len(run_rows(tmp_path / "stacked")) == 6


def test_worker_processes_let_go_while_they_start_end_quietly(tmp_path):
    """A sweep that foresaw several groups but trains one, or none (all finished), lets its
    starting workers go without waiting for them: they must end quietly (once they failed to
    unpickle a start counter freed with the pool: tracebacks in README's check)."""
    script = tmp_path / "let_go.py"
    script.write_text(textwrap.dedent("""
        import gc
        from hydra_plugins.mlpbench_stacked import _new_pool, _start
        if __name__ == "__main__":
            pool = _new_pool()
            _start(pool)
            pool.shutdown(wait=False, cancel_futures=True)
            del pool
            gc.collect()  # as Python's collector may at any moment
    """))
    proc = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


def test_worker_processes_are_kept_from_one_launch_to_the_next_and_end_with_the_sweep(tmp_path):
    """seed=auto launches a round at a time, a search a batch of trials: the same workers serve
    them all (a new pool a round cost ~3 s of imports each time), and a sweep that ends with its
    workers idle ends quietly, without waiting on them."""
    script = tmp_path / "kept.py"
    script.write_text(textwrap.dedent("""
        import os
        import signal
        import time
        from hydra_plugins.mlpbench_stacked import StackedLauncher
        if __name__ == "__main__":
            # A pool of one process a worker: each process costs seconds of imports.
            launcher = StackedLauncher()
            [first] = launcher._kept_pools(1)
            worker = first.submit(os.getpid).result()
            assert launcher._kept_pools(1) == [first]  # the next launch
            assert first.submit(os.getpid).result() == worker
            pools = list(launcher._kept_pools(2))  # more processes asked for: one more
            assert pools[0] is first and len(pools) == 2 and launcher._kept_pools(1) == pools
            # A worker killed while it waited for the next round (the OOM killer): a new one in
            # its place, the other kept.
            victim = pools[1].submit(os.getpid).result()
            os.kill(victim, signal.SIGKILL)
            while victim in {p.pid for p in list(pools[1]._processes.values()) if p.is_alive()}:
                time.sleep(0.02)
            again = launcher._kept_pools(1)
            assert again[0] is first and again[1] is not pools[1]
            assert again[1].submit(os.getpid).result() not in (os.getpid(), victim, worker)
            print("ok", worker != os.getpid(), flush=True)
            launcher.close()  # the sweep's end
            assert launcher._pools == []
            launcher._kept_pools(1)  # and a pool left to the interpreter's end: ends quietly too
    """))
    proc = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.startswith("ok True")


def test_a_sweep_under_a_tmpdir_too_long_for_the_workers_socket_trains_in_its_own_process(tmp_path, monkeypatch):
    # The workers' fork server listens on a socket under TMPDIR, whose path has at most 107 bytes:
    # a deeper TMPDIR (a batch job's) stopped the sweep with "AF_UNIX path too long".
    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    monkeypatch.setenv("TMPDIR", str(deep))
    proc = run_cli("-m", "seed=1,2", "model.depth=1,2", "data.limit=200", "trainer.max_epochs=1",
                   "hydra.launcher.workers=2", cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "is too long a path for the worker processes' socket" in output
    assert "2 stacked model(s) and 0 run(s) on their own, in this process" in output
    assert [row["status"] for row in run_rows(only_sweep(tmp_path))] == ["ok"] * 4


def test_a_worker_killed_fails_its_own_stacks_runs_and_the_other_worker_trains_on(tmp_path, monkeypatch, request):
    # Two stacks in two workers; one worker killed (the OOM killer): its stack's runs fail
    # (WorkerDied), the other stack trains to its end (one pool of both workers ended both).
    grid = ["-m", "seed=1,2", "model.depth=1,2", "data.limit=400", "trainer.max_epochs=400", "hydra.launcher.workers=2"]
    scratch = Path(tempfile.mkdtemp(prefix="mp", dir="/tmp"))  # a short socket path (see the kill -9 test)
    monkeypatch.setenv("TMPDIR", str(scratch))
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))
    proc = start_cli(grid, tmp_path)
    wait_until(lambda: len(glob.glob(f"{tmp_path}/outputs/multirun/*/*seed=2*/checkpoints/last.ckpt")) == 2, proc,
               "both stacks trained an epoch")
    os.kill(wait_until(lambda: fork_server_workers(proc.pid), proc, "the workers")[0], signal.SIGKILL)
    output = proc.communicate()[0]
    assert proc.returncode == 1 and "A worker process died" in output and "Traceback" not in output, output
    sweep = only_sweep(tmp_path)
    results = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}
    by_depth = {depth: sorted(r["status"] for name, r in results.items() if f"model.depth={depth}" in name)
                for depth in (1, 2)}
    assert sorted(by_depth.values()) == [["failed", "failed"], ["ok", "ok"]], by_depth
    assert {r["error"]["type"] for r in results.values() if r["status"] == "failed"} == {"WorkerDied"}
    assert all(len(r["history"]["val_loss"]) == 400 for r in results.values() if r["status"] == "ok")
    resumed = run_cli(*grid, "resume=true", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert [row["status"] for row in run_rows(sweep)] == ["ok"] * 4


def test_a_worker_that_dies_before_its_groups_runs_begin_records_them_as_failed(tmp_path):
    """A worker killed as its group reaches it (the OOM killer while the group loads its rows),
    before any of its runs wrote a record: those runs fail (WorkerDied), named, as a group's
    whose runs had begun; they were left without a record, "Recorded as failed: none", and the
    report went on without them unsaid. The other worker's group trains."""
    script = tmp_path / "dies.py"
    script.write_text(textwrap.dedent(f"""
        import json
        import os
        from pathlib import Path
        from types import SimpleNamespace
        from omegaconf import OmegaConf
        import hydra_plugins.mlpbench_stacked as stacked

        def train(jobs, *rest):
            if jobs[0].cfg.model.depth == 2:
                os._exit(9)  # before the group's runs wrote anything
            for job in jobs:
                (job.run_dir / "result.json").write_text(json.dumps({{"status": "ok", "overrides": job.overrides}}))

        if __name__ == "__main__":
            sweep = Path({str(tmp_path / "sweep")!r})
            launcher = stacked.StackedLauncher()
            launcher.config = OmegaConf.create({{"hydra": {{"sweep": {{"dir": str(sweep)}}}}}})
            launcher._stack_args = lambda group: ([ret.return_value for ret in group],)
            stacked.train_stack = train
            groups = []
            for depth in (1, 2):
                group = []
                for seed in (1, 2):
                    run_dir = sweep / f"model.depth={{depth}},seed={{seed}}"
                    run_dir.mkdir(parents=True)
                    cfg = OmegaConf.create({{"model": {{"depth": depth}}, "seed": seed,
                                             "trainer": {{"enable_progress_bar": None}}}})
                    job = SimpleNamespace(cfg=cfg, run_dir=run_dir, threads=None,
                                          overrides=[f"model.depth={{depth}}", f"seed={{seed}}"])
                    group.append(SimpleNamespace(return_value=job))
                groups.append(group)
            launcher._kept_pools(2)
            launcher._train_in_workers(groups, 2, SimpleNamespace(done=lambda group: None))
            launcher.close()
            for run_dir in sorted(sweep.iterdir()):
                result = json.loads((run_dir / "result.json").read_text())
                print(run_dir.name, result["status"], (result.get("error") or {{}}).get("type"), result["overrides"])
    """))
    proc = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.splitlines() == [
        "model.depth=1,seed=1 ok None ['model.depth=1', 'seed=1']",
        "model.depth=1,seed=2 ok None ['model.depth=1', 'seed=2']",
        "model.depth=2,seed=1 failed WorkerDied ['model.depth=2', 'seed=1']",
        "model.depth=2,seed=2 failed WorkerDied ['model.depth=2', 'seed=2']"], proc.stdout
    assert "Recorded as failed: model.depth=2,seed=1, model.depth=2,seed=2." in proc.stderr, proc.stderr


def test_runs_that_cannot_share_a_model_train_alone(tmp_path):
    # Seeds of one setting, which would stack but for the callback; one process
    # (hydra.launcher.workers=1): no worker processes to start for runs this small.
    grid = ["-m", "seed=1,2", "data.limit=200", "trainer.max_epochs=1", "hydra.launcher.workers=1",
            "+callbacks.stop._target_=lightning.pytorch.callbacks.EarlyStopping", "+callbacks.stop.monitor=val_loss"]
    proc = run_cli(*grid, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert output.count("trains on its own: callbacks.stop") == 2 and "One stacked model of" not in output
    # (Groups split by setting, each a stack: test_stacked_seeds_train_in_worker_processes_...)


def test_a_sweep_killed_with_kill_9_ends_its_workers_and_resumes_with_histories_equal_to_uninterrupted_runs(
        tmp_path, monkeypatch, request):
    # Two stacks, in two of the launcher's worker processes (as many as cores or GPUs by default:
    # on one GPU the stacks would train in turn, the first ended before the kill). kill -9 of the
    # sweep's process alone: its workers, forks of its fork server, end with it.
    grid = ["-m", "seed=1,2", "model.depth=1,2", "data.limit=400", "trainer.max_epochs=12"]
    # Where multiprocessing makes its pymp-* folder: short, as the fork server's socket path within
    # it must be (108 bytes; under pytest-xdist's tmp_path it was too long).
    scratch = Path(tempfile.mkdtemp(prefix="mp", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(scratch))
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))
    proc = start_cli([*grid, "hydra.launcher.workers=2"], tmp_path)
    wait_until(lambda: len(glob.glob(f"{tmp_path}/outputs/multirun/*/*seed=2*/checkpoints/last.ckpt")) == 2, proc,
               "both stacks trained an epoch")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_for_group_end(proc.pid, "a killed sweep's worker process")
    # What the resource tracker cleaned up after it is no news to whoever killed it, nor is each
    # worker's end (Lightning's "[rank: 0] Received SIGTERM: 15" once came after the prompt).
    output = proc.communicate()[0]
    assert "leaked semaphore" not in output and "Received SIGTERM" not in output, output
    assert not list(scratch.glob("pymp-*"))  # the fork server's socket folder went with it
    sweep = only_sweep(tmp_path)
    resumed = run_cli(*grid, "resume=true", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "continuing after epoch" in resumed.stdout + resumed.stderr
    # The same runs, never interrupted, by the basic launcher.
    reference = run_cli(*grid, "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'ref'}", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    expected = histories(tmp_path / "ref")
    assert len(expected) == 4
    for name, result in histories(sweep).items():
        assert result["status"] == "ok" and result["epochs"] == 12 and len(result["resumed"]) == 1
        assert same_numbers(result["history"]["val_loss"], expected[name]["history"]["val_loss"]), name


@pytest.mark.skipif(ON_GPU, reason="on a GPU a run draws its dropout masks from the GPU's generator, a stacked "
                    "replica from its own (docs/sweeps.md)")
def test_a_run_gives_the_same_numbers_alone_and_with_any_stack_mates(tmp_path):
    """Dropout masks from each replica's own generator: seed 2 with dropout 0.5 alone (basic
    launcher), and stacked with seeds 1 and 3 and another optimizer."""
    common = ["model.dropout=0.5", "data.limit=300", "trainer.max_epochs=3"]
    alone = run_cli("-m", "seed=2", *common, "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'alone'}",
                    cwd=tmp_path)
    mates = run_cli("-m", "seed=1,2,3", "optim=adam,sgd", *common, f"hydra.sweep.dir={tmp_path / 'mates'}",
                    cwd=tmp_path)
    for proc in (alone, mates):
        assert proc.returncode == 0, proc.stderr
    assert "One stacked model of 6 replicas (104,906 params each; 2 settings)" in mates.stdout + mates.stderr

    reference = histories(tmp_path / "alone")["seed=2"]["history"]
    assert len(set(reference["val_loss"])) == 3  # it trained
    stacked = histories(tmp_path / "mates")["optim=adam,seed=2"]
    assert stacked["history"] == {**reference, "epoch_seconds": stacked["history"]["epoch_seconds"]}
    assert stacked["stacked"]["replicas"] == 6


def test_runs_that_differ_in_optimizer_activation_and_rate_stack_and_equal_their_basic_runs(tmp_path):
    grid = ["-m", "seed=1", "optim=sgd,nadam", "optim.lr=0.01,0.001", "model.activation=relu,sigmoid",
            "model=keras", "model.depth=2", "data.limit=300", "trainer.max_epochs=2"]
    stacked = run_cli(*grid, f"hydra.sweep.dir={tmp_path / 'stacked'}", cwd=tmp_path)
    basic = run_cli(*grid, "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'basic'}", cwd=tmp_path)
    assert stacked.returncode == 0 and basic.returncode == 0, stacked.stderr + basic.stderr
    assert "One stacked model of 8 replicas (121,418 params each; 8 settings)" in stacked.stdout + stacked.stderr
    ours, theirs = histories(tmp_path / "stacked"), histories(tmp_path / "basic")
    assert len(ours) == len(theirs) == 8
    for name, result in theirs.items():
        assert same_numbers(ours[name]["history"]["val_loss"], result["history"]["val_loss"]), name
        assert ours[name]["config"]["optim"] == result["config"]["optim"]
        # Its log is its own, though the stack trains its runs in another order than the sweep's:
        # its own lines, numbers and model summary, no other run's.
        log = (tmp_path / "stacked" / name / "run.log").read_text()
        assert f"Run {name} ok" in log and not any(f"Run {other}" in log for other in ours if other != name)
        assert f"val_loss {ours[name]['history']['val_loss'][-1]:.4f}" in log.split("Epoch 2/2")[1]
        activation = result["config"]["model"]["activation"]
        assert f"\n{activation}_" in log and ("sigmoid_" if activation == "relu" else "relu_") not in log


@pytest.mark.skipif(ON_GPU, reason="to the bit on the CPU only; off it a NaN is checked every log_every_n_steps")
def test_a_replica_that_diverges_records_its_runs_history_while_its_stack_mates_train_on(tmp_path):
    """A run stops at the step its loss is NaN; stacked, the others go on through the epoch: the
    diverged replica's training loss and accuracy of that epoch must still end at that step."""
    grid = ["-m", "optim=sgd", "optim.lr=0.01,1e12", "seed=1,2", "data.limit=400", "trainer.max_epochs=2"]
    stacked = run_cli(*grid, f"hydra.sweep.dir={tmp_path / 'stacked'}", cwd=tmp_path)
    basic = run_cli(*grid, "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'basic'}", cwd=tmp_path)
    assert stacked.returncode == 0 and basic.returncode == 0, stacked.stderr + basic.stderr
    ours, theirs = histories(tmp_path / "stacked"), histories(tmp_path / "basic")
    assert sorted(ours) == sorted(theirs)
    for name, result in theirs.items():
        assert ours[name]["status"] == result["status"], name
        assert ours[name]["diverged_at"] == result["diverged_at"], name
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):  # null where not finite
            assert ours[name]["history"][key] == result["history"][key], (name, key)
    assert {r["status"] for r in ours.values()} == {"ok", "diverged"}


def test_a_run_given_twice_trains_once_and_launcher_options_are_checked(tmp_path):
    proc = run_cli("-m", "seed=1,1,2", "data.limit=200", "trainer.max_epochs=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "job #1 is the same run as job #0; it trains once" in proc.stdout + proc.stderr
    sweep = only_sweep(tmp_path)
    assert sorted(histories(sweep)) == ["seed=1", "seed=2"]
    log = (sweep / "seed=1" / "run.log").read_text()
    assert log.count("Epoch 1/1") == 1
    assert json.loads((sweep / "seed=1" / "result.json").read_text())[
        "stacked"]["replicas"] == 2
    bad = run_cli("-m", "seed=1,2", "hydra.launcher.max_replicas=0", "hydra.launcher.workers=-1",
                  "hydra.sweep.dir=bad", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "hydra.launcher.max_replicas=0: must be an integer >= 1" in bad.stderr
    assert "hydra.launcher.workers=-1: must be an integer >= 1, or null for one per CPU core" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_a_stack_off_the_cpu_keeps_each_tensor_whole_and_computes_what_its_replicas_do(monkeypatch):
    # exact=False, and no device with bit-equality workarounds: a stack as it trains on a GPU, where
    # bit-equality with the basic launcher is not attempted (within 1e-4 is the bar): no
    # per-replica blocks, products or activations.
    from mlpbench import stacked
    from mlpbench.model import MLP
    from mlpbench.stacked import StackedMLP
    from tests.conftest import make_config

    cfg = make_config("model.units=100", "model.depth=2", "model.activation=tanh")  # 100: no 16-float units
    models = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        models.append(MLP(cfg.model, 64, 10))
    exact, whole = StackedMLP(models), StackedMLP(models, exact=False)
    assert len(list(whole.parameters())) == len(list(models[0].parameters())) < len(list(exact.parameters()))
    for k, model in enumerate(models):
        assert all(torch.equal(whole.replica_state(k)[name], t) for name, t in model.state_dict().items())
    x = torch.randn(3, 32, 64)
    expected = torch.stack([model(x[k]) for k, model in enumerate(models)])  # training mode: batch statistics
    assert torch.allclose(exact(x), expected, atol=1e-5)
    per_replica = []
    monkeypatch.setattr(stacked, "_affine_per_replica", lambda *a: per_replica.append(a) or None)
    monkeypatch.setattr(stacked, "_exact_on", lambda x: False)
    out = whole(x)
    assert torch.allclose(out, expected, atol=1e-5) and not per_replica  # one batched product a layer
    out.sum().backward()  # the batched backward: each replica's gradients
    for k, model in enumerate(models):
        model.zero_grad()
        model(x[k]).sum().backward()
        grad = whole.tensor(whole.template.output_layer, "weight").grad[k]
        assert torch.allclose(grad, model.output_layer.weight.grad, atol=1e-4), k


def test_dropout_off_the_cpu_draws_every_replicas_mask_at_once_on_the_device_and_resumes_its_draws(monkeypatch):
    # Off the CPU (forced here) a stack's dropout masks come from one generator on the device in
    # one draw: K host generators and a copy of their masks would make each step wait on the host.
    from mlpbench import stacked
    from mlpbench.model import MLP
    from mlpbench.stacked import StackedMLP
    from tests.conftest import make_config

    models = []
    for rate in (0.5, 0.0, 0.25):
        torch.manual_seed(1)
        models.append(MLP(make_config(f"model.dropout={rate}").model, 64, 10))
    states = [torch.get_rng_state()] * 3

    def stack(device_state=None):
        made = StackedMLP(models, exact=False)
        made.set_generators(states, device_state)
        return made.train()

    monkeypatch.setattr(stacked, "_exact_on", lambda x: False)
    x = torch.ones(3, 2000, 64)
    first = stack()
    out = first._dropout(x)
    assert torch.equal(out[1], x[1])  # rate 0: untouched
    for k, rate in ((0, 0.5), (2, 0.25)):  # each replica its own rate, kept values scaled by 1 / (1 - p)
        assert out[k].unique().tolist() == [0.0, pytest.approx(1 / (1 - rate))]
        assert abs((out[k] > 0).float().mean().item() - (1 - rate)) < 0.01, k
    assert torch.equal(stack()._dropout(x), out)  # the same seeds, the same masks
    saved = first.device_generator_state()
    following = first._dropout(x)
    assert not torch.equal(following, out)
    assert torch.equal(stack(saved)._dropout(x), following)  # resumed from a checkpoint's state: its draws go on
    # The replicas' own generators (the CPU's masks) are left as they were.
    assert all(torch.equal(a, b) for a, b in zip(first.generator_states(), states))


def test_a_stack_off_the_cpu_resumed_as_several_stacks_gives_each_its_own_dropout_masks(tmp_path, monkeypatch):
    # A stack that saved its device generator's state and resumes split in two (less memory
    # where it resumes) must not start both parts from that one state: the first replica of
    # each part would get the same masks, and their seeds' runs would share their noise.
    from mlpbench import stacked, sweep
    from mlpbench.checkpoints import checkpoint_position
    from mlpbench.results import read_result
    from mlpbench.run import Job, compose_config
    from mlpbench.schema import checked

    monkeypatch.setattr(stacked, "_exact_on", lambda x: False)  # the GPU's dropout path, on the CPU
    first_masks = {}
    device_dropout = stacked.StackedMLP._device_dropout

    def noting_masks(self, x):
        if id(self) not in first_masks:  # a stack's first draw, on ones: the mask, not ReLU's zeros
            first_masks[id(self)] = device_dropout(self, torch.ones_like(x)) != 0
        return device_dropout(self, x)

    monkeypatch.setattr(stacked.StackedMLP, "_device_dropout", noting_masks)

    def jobs(epochs, resume):
        made = []
        for seed in (1, 2, 3, 4):
            overrides = [f"seed={seed}", "data=digits", "data.limit=300", "model.dropout=0.5",
                         f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false"]
            run_dir = tmp_path / f"seed={seed}"
            cfg, plan, position = checked(compose_config(overrides)), sweep.RunPlan(), None
            if resume:
                plan = sweep.RunPlan(checkpoint=run_dir / sweep.LAST_CHECKPOINT, previous=read_result(run_dir))
                position = checkpoint_position(plan.checkpoint, cfg.model)
            made.append(Job(cfg, run_dir, overrides, plan, None, seed - 1, None, position))
        return made

    stacked.train_group(jobs(1, resume=False))
    first_masks.clear()
    monkeypatch.setattr(stacked, "replicas_that_fit", lambda cfg, data, wanted: min(wanted, 2))
    resumed = stacked.train_group(jobs(2, resume=True))
    assert [(r["stacked"]["replicas"], len(r["resumed"]), r["epochs"]) for r in resumed] == [(2, 1, 2)] * 4
    one, other = first_masks.values()  # each part's first masks, (2 replicas, batch, units)
    assert not torch.equal(one[0], other[0]) and not torch.equal(one[1], other[1])
    # Resumed again as the same two stacks, each continues its own saved draws.
    saved = [torch.load(tmp_path / f"seed={seed}" / sweep.LAST_CHECKPOINT, weights_only=True)["mlpbench"]["device_rng"]
             for seed in (1, 3)]
    first_masks.clear()
    stacked.train_group(jobs(3, resume=True))
    for state, mask in zip(saved, first_masks.values(), strict=True):
        # The stack's generator lives on its device (a CUDA generator's state is 16 bytes, a CPU one's 5,056).
        generator = torch.Generator(device=mask.device)
        generator.set_state(state)
        assert torch.equal(mask, torch.rand(mask.shape, generator=generator, device=mask.device) < 0.5)
