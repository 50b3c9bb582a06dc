"""Sweeps that lose nothing: failures isolated, divergence, interruption, kill and resume, parallel runs."""

import json
import os
import signal
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mlpbench.schema import ConfigError, checked
from mlpbench.sweep import RunPlan, plan_run, threads_per_run
from tests.conftest import (fork_servers, make_config, only_sweep, run_cli, scalars, start_cli, run_rows,
                            wait_for_file, wait_for_group_end, wait_until)

TINY = ["data.limit=300", "trainer.max_epochs=2"]


def test_a_failing_run_is_recorded_and_the_sweep_goes_on_then_exits_non_zero(tmp_path):
    # A value of the grid no run can use is refused before any run trains.
    proc = run_cli("-m", "model.depth=1,-1,2", *TINY, cwd=tmp_path)
    assert proc.returncode == 2 and "model.depth=-1: this value of the grid cannot run" in proc.stderr
    assert not list(tmp_path.glob("outputs/multirun/*/*/result.json"))
    # Hydra's reason for a value it cannot merge is kept: what is allowed.
    proc = run_cli("-m", "model.activation=relu,foo", *TINY, cwd=tmp_path)
    assert proc.returncode == 2 and "model.activation=foo: this value of the grid cannot run" in proc.stderr
    assert "expected one of [relu, leaky_relu, tanh, sigmoid" in proc.stderr
    # Values wrong only together (2 widths for 3 layers) fail their runs; the others go on (in one
    # process, hydra.launcher.workers=1: no worker processes to start for runs this small).
    proc = run_cli("-m", "model.depth=2,3", "model.units=[64,32],[64,32,16]", *TINY, "hydra.launcher.workers=1",
                   cwd=tmp_path)
    assert proc.returncode == 1
    sweep = only_sweep(tmp_path)
    rows = {(r["model.depth"], r["model.units"]): r["status"] for r in run_rows(sweep)}
    assert rows == {("2", "[64,32]"): "ok", ("2", "[64,32,16]"): "failed", ("3", "[64,32]"): "failed",
                    ("3", "[64,32,16]"): "ok"}
    failed = json.loads(next(sweep.glob("*model.depth=3,model.units=[[]64,32[]]*/result.json")).read_text())
    assert failed["error"]["type"] == "ConfigError" and "has 2 entries but model.depth=3" in failed["error"]["message"]
    assert "2 run(s) failed" in proc.stderr and "Traceback" not in proc.stderr
    # A refused config fails the same way again: no resume hint for it.
    assert "Fix the values named above in the command" in proc.stderr and "resume=true" not in proc.stderr


def test_a_crash_inside_training_keeps_the_sweep_going(tmp_path):
    # The second run crashes in its second epoch; the sweep records it and goes on.
    proc = run_cli("-m", "model.depth=2,1", *TINY, "+callbacks.fault={_target_:tests.faults.CrashInSecondEpoch,depth:2}",
                   "hydra.job.name=train", cwd=tmp_path)
    assert proc.returncode == 1
    sweep = only_sweep(tmp_path)
    assert {r["model.depth"]: r["status"] for r in run_rows(sweep)} == {"2": "failed", "1": "ok"}
    failed_dir = next(sweep.glob("*model.depth=2*"))
    failed = json.loads((failed_dir / "result.json").read_text())
    assert failed["error"] == {"type": "RuntimeError", "message": "injected crash in epoch 2"}
    assert failed["epochs"] == 1  # the finished epoch is kept
    # The whole story is in the run's log, <hydra.job.name>.log, which the message names.
    assert "Traceback" in (failed_dir / "train.log").read_text() and f"log: {(failed_dir / 'train.log').relative_to(tmp_path)})" in proc.stderr


def test_one_row_batches_with_batchnorm_are_refused_by_name():
    # In a sweep such a run is recorded as failed and the others go on (the test above).
    with pytest.raises(ConfigError, match="data.batch_size=1: must be >= 2 with BatchNorm"):
        checked(make_config("data.batch_size=1"))
    checked(make_config("data.batch_size=1", "model.input_bn=false"))


def test_a_huge_learning_rate_is_recorded_as_diverged_within_the_first_epoch(tmp_path):
    proc = run_cli("-m", "optim=sgd", "optim.lr=1e6,0.01", "model.activation=linear", "model.depth=3",
                   "data.limit=500", "trainer.max_epochs=5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # diverging is a result, not an error
    sweep = only_sweep(tmp_path)
    diverged = json.loads(next(sweep.glob("*optim.lr=1000000.0*/result.json")).read_text())
    assert diverged["status"] == "diverged" and diverged["epochs"] == 1
    steps_per_epoch = 400 // 32 + 1
    assert diverged["diverged_at"]["epoch"] == 1 and diverged["diverged_at"]["step"] < steps_per_epoch
    assert {r["status"] for r in run_rows(sweep)} == {"diverged", "ok"}
    # Its run line says it was not tested, not "test_acc nan".
    log = proc.stdout + proc.stderr
    assert "Run optim.lr=1000000.0 diverged: val_acc " in log and ", not tested, 1 epoch in" in log
    assert "nan" not in log.split("Run optim.lr=1000000.0 diverged")[1].splitlines()[0]


def test_a_sweep_killed_mid_run_resumes_with_every_run_once_and_a_continuous_history(tmp_path):
    # One run at a time (hydra.launcher.workers=1), the costliest first: depth 3 has finished and
    # depth 1 has not started when depth 2 is killed.
    grid = ["-m", "model.depth=1,2,3", "data.limit=400", "trainer.max_epochs=12", "model.dropout=0.2",
            "hydra.launcher.workers=1"]
    proc = start_cli(grid, tmp_path)
    wait_for_file(f"{tmp_path}/outputs/multirun/*/*model.depth=2*/checkpoints/last.ckpt", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    sweep = only_sweep(tmp_path)
    killed = json.loads(next(sweep.glob("*model.depth=2*/result.json")).read_text())
    assert killed["status"] == "running"  # what kill -9 leaves behind
    assert not list(sweep.glob("*model.depth=1,*/result.json"))

    resumed = run_cli(*grid, "resume=true", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert only_sweep(tmp_path) == sweep  # the same folder, found from the same command
    output = resumed.stdout + resumed.stderr
    assert "already ok" in output and "continuing after epoch" in output
    rows = run_rows(sweep)
    assert sorted(r["model.depth"] for r in rows) == ["1", "2", "3"] and {r["status"] for r in rows} == {"ok"}
    again = run_cli(*grid, "resume=true", cwd=tmp_path)  # nothing left: said so (not "0 stacked model(s)")
    assert again.returncode == 0 and "Launching 3 jobs: none to train" in again.stdout + again.stderr

    result = json.loads(next(sweep.glob("*model.depth=2*/result.json")).read_text())
    (resume_point,) = result["resumed"]
    assert 1 <= resume_point["epoch"] < 12 and result["epochs"] == 12
    # Continuous: the same history, epoch for epoch, as the run never interrupted.
    reference = run_cli("model.depth=2", "data.limit=400", "trainer.max_epochs=12", "model.dropout=0.2",
                        f"hydra.run.dir={tmp_path / 'reference'}", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr
    expected = json.loads((tmp_path / "reference" / "result.json").read_text())
    assert result["history"]["train_loss"] == expected["history"]["train_loss"]
    assert result["history"]["val_acc"] == expected["history"]["val_acc"]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_stops_cleanly_with_status_interrupted_and_a_checkpoint(tmp_path, sig, code):
    # Ctrl-C to a fresh interpreter, as a user's terminal starts it (the other tests' commands are
    # forked, with a fresh interpreter's signal handling: SIGTERM's here).
    proc = start_cli(["-m", "model.depth=1", "data.limit=400", "trainer.max_epochs=200"], tmp_path,
                     fresh=sig == signal.SIGINT)
    run_dir = wait_for_file(f"{tmp_path}/outputs/multirun/*/*/checkpoints/last.ckpt", proc).parent.parent
    proc.send_signal(sig)
    output = proc.communicate()[0]
    assert proc.returncode == code
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "interrupted" and result["epochs"] >= 1
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert "resume=true" in output and "Traceback" not in output


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_reaches_the_runs_training_in_worker_processes(tmp_path, sig, code):
    proc = start_cli(["-m", "model.depth=1,2", "data.limit=400", "trainer.max_epochs=200"], tmp_path)
    for depth in (1, 2):
        wait_for_file(f"{tmp_path}/outputs/multirun/*/*model.depth={depth}*/checkpoints/last.ckpt", proc)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C: the terminal signals every process of the command
    else:
        proc.send_signal(sig)  # a scheduler's SIGTERM: the sweep's process alone
    output = proc.communicate()[0]
    assert proc.returncode == code, output
    assert "Traceback" not in output and "resume=true" in output
    assert "Received SIGTERM" not in output  # Lightning's line, from each worker the stop ends
    run_dirs = sorted(only_sweep(tmp_path).glob("*model.depth=*"))
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        result = json.loads((run_dir / "result.json").read_text())
        assert result["status"] == "interrupted" and (run_dir / "checkpoints" / "last.ckpt").is_file()
        assert f"Run {run_dir.name} interrupted after {result['epochs']} epochs" in (run_dir / "run.log").read_text()


def test_ctrl_c_while_the_workers_start_stops_their_runs_at_the_first_step(tmp_path):
    # Ctrl-C before Lightning's own SIGTERM handler is in place in the workers (loading rows,
    # building the model): their runs used to train to their end; they stop at their first step.
    gate = tmp_path / "gate"
    gate.mkdir()
    proc = start_cli(["-m", "model.depth=1,2", "data.limit=400", "trainer.max_epochs=100", "hydra.launcher.workers=2",
                      f"+callbacks.gate={{_target_:tests.faults.WaitAtStart,folder:'{gate}'}}"], tmp_path)
    wait_until(lambda: len(list(gate.glob("waiting-*"))) == 2, proc, "both workers were building their runs")
    os.killpg(proc.pid, signal.SIGINT)
    output = proc.communicate()[0]
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "resume=true" in output and "Runs done" not in output
    assert f"The report of the runs so far: python -m mlpbench.report {only_sweep(tmp_path).relative_to(tmp_path)}" \
        in output
    for run_dir in sorted(only_sweep(tmp_path).glob("*model.depth=*")):
        result = json.loads((run_dir / "result.json").read_text())
        assert result["status"] == "interrupted" and result["epochs"] <= 1, run_dir  # of 100


@pytest.mark.parametrize("sig,code,said", [
    (signal.SIGTERM, 143, "Interrupted before the runs trained. Rerun the same command with resume=true"),
    (signal.SIGINT, 130, "mlpbench: interrupted (Ctrl-C)")])
def test_a_stop_while_the_fork_server_imports_ends_the_sweep_interrupted_and_every_process_with_it(tmp_path, sig,
                                                                                                   code, said):
    # The pool's first worker waits for its fork server's imports (seconds). A stop to the
    # command's process group then: SIGTERM once killed the sweep without a word, warned of leaked
    # semaphores and left the server importing; Ctrl-C printed the server's traceback.
    proc = start_cli(["-m", "model.depth=1,2", "data.limit=400", "trainer.max_epochs=100", "hydra.launcher.workers=2"],
                     tmp_path)
    wait_until(lambda: fork_servers(proc.pid), proc, "the fork server started")
    os.killpg(proc.pid, sig)
    output = proc.communicate()[0]
    assert proc.returncode == code, output
    assert said in output, output
    assert "Traceback" not in output and "leaked" not in output and "Runs done" not in output, output
    wait_for_group_end(proc.pid, "the sweep's fork server")


def test_a_single_runs_command_with_resume_true_continues_it_in_its_folder(tmp_path):
    run = ["data.limit=200", "trainer.max_epochs=3",
           f"+callbacks.stop={{_target_:tests.faults.CtrlCOnceInSecondEpoch,marker:'{tmp_path / 'stopped'}'}}"]
    proc = run_cli(*run, cwd=tmp_path)
    assert proc.returncode == 130 and "Rerun the same command with resume=true" in proc.stdout + proc.stderr
    (run_dir,) = (tmp_path / "outputs" / "run").glob("*/*")
    assert json.loads((run_dir / "result.json").read_text())["status"] == "interrupted"
    proc = run_cli(*reversed(run), "resume=true", cwd=tmp_path)  # the same overrides, in any order
    assert proc.returncode == 0, proc.stderr
    assert f"Resuming the run in {run_dir.relative_to(tmp_path)}" in proc.stderr
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok" and result["epochs"] == 3 and [r["epoch"] for r in result["resumed"]] == [1]
    # While a run trains, the same command with resume=true is refused (both would write its files).
    training = start_cli(["data.limit=200", "trainer.max_epochs=1000", "hydra.run.dir=long"], tmp_path)
    wait_for_file(f"{tmp_path}/long/checkpoints/last.ckpt", training)
    proc = run_cli("data.limit=200", "trainer.max_epochs=1000", "hydra.run.dir=long", "resume=true", cwd=tmp_path)
    training.kill()
    training.wait()
    assert proc.returncode == 2 and "another command is running the run in long" in proc.stderr
    # A sweep's run too (its runs take no lock of their own: the sweep's is asked).
    training = start_cli(["-m", "data.limit=200", "trainer.max_epochs=1000", "seed=0,1", "hydra.sweep.dir=sw"], tmp_path)
    wait_for_file(f"{tmp_path}/sw/seed=0/checkpoints/last.ckpt", training)
    proc = run_cli("data.limit=200", "trainer.max_epochs=1000", "seed=0", "hydra.run.dir='sw/seed=0'", "resume=true",
                   cwd=tmp_path)
    training.kill()
    training.wait()
    assert proc.returncode == 2 and "hydra.run.dir=sw/seed=0: a run of the sweep still running in sw" in proc.stderr
    # Another command's run is not this one: a new folder.
    proc = run_cli("data.limit=200", "trainer.max_epochs=2", "resume=true", cwd=tmp_path)
    assert proc.returncode == 0 and "no earlier run with these overrides" in proc.stderr
    assert len(list((tmp_path / "outputs" / "run").glob("*/*"))) == 2


def test_a_rerun_skips_finished_runs_continues_stopped_ones_and_restarts_failed_ones(tmp_path):
    def run_dir(name: str, status: str | None, checkpoint: bool = False) -> Path:
        path = tmp_path / name
        (path / "checkpoints").mkdir(parents=True)
        if status:
            measured = {"val_loss": 0.5, "val_acc": 0.9, "best_val_acc": 0.9} if status == "ok" else {}
            (path / "result.json").write_text(json.dumps({"status": status, "metrics": measured}))
        if checkpoint:
            (path / "checkpoints" / "last.ckpt").write_bytes(b"ckpt")
        (path / "events.out.tfevents.1").write_bytes(b"")
        return path

    assert plan_run(run_dir("ok", "ok", checkpoint=True)).skip == "ok"
    assert plan_run(run_dir("diverged", "diverged")).skip == "diverged"
    interrupted = run_dir("interrupted", "interrupted", checkpoint=True)
    assert plan_run(interrupted).checkpoint == interrupted / "checkpoints" / "last.ckpt"
    assert plan_run(run_dir("killed", "running", checkpoint=True)).checkpoint is not None
    died = run_dir("worker-died", "failed", checkpoint=True)  # its process was killed under joblib
    (died / "result.json").write_text(json.dumps({"status": "failed", "error": {"type": "WorkerDied"}}))
    assert plan_run(died).checkpoint == died / "checkpoints" / "last.ckpt"
    failed = run_dir("failed", "failed", checkpoint=True)
    plan = plan_run(failed)
    assert plan.skip is None and plan.checkpoint is None
    assert not (failed / "result.json").exists() and not (failed / "checkpoints").exists()
    assert not list(failed.glob("events.out.tfevents*"))
    assert plan_run(tmp_path / "new") == RunPlan(skip=None, checkpoint=None, previous=None)  # start afresh


def test_parallel_runs_split_the_cores():
    cores = len(os.sched_getaffinity(0))
    joblib = lambda n: OmegaConf.create({"_target_": "hydra_plugins.mlpbench_joblib.JoblibLauncher",
                                         "n_jobs": n})  # noqa: E731
    assert threads_per_run(joblib(-1)) == 1
    assert threads_per_run(joblib(1)) == cores
    assert threads_per_run(OmegaConf.create({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"})) is None


def test_a_two_job_joblib_sweep_completes_with_a_full_report(tmp_path):
    proc = run_cli("-m", "model.depth=1,2,3", *TINY, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    sweep = only_sweep(tmp_path)
    rows = run_rows(sweep)
    assert sorted(r["model.depth"] for r in rows) == ["1", "2", "3"] and {r["status"] for r in rows} == {"ok"}
    for path in sweep.glob("*/result.json"):
        assert json.loads(path.read_text())["threads"] == max(1, len(os.sched_getaffinity(0)) // 2)
    assert (sweep / "val_acc.png").is_file()
    output = proc.stdout + proc.stderr
    assert "Joblib.Parallel(" not in output  # joblib's argument list is launcher noise
    # The model summary once per sweep on the console, and in every run's log.
    assert output.count("Trainable params:") == 1
    assert all("Trainable params:" in log.read_text() for log in sweep.glob("*/run.log"))


def test_one_run_on_two_processes_with_ddp_shards_the_batches(tmp_path):
    run_dir = tmp_path / "ddp"
    proc = run_cli("trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "data.limit=400",
                   "trainer.max_epochs=2", "trainer.log_every_n_steps=1", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok" and result["devices"] == 2 and result["epochs"] == 2
    # 320 training rows, 160 per process at 32 a batch: 5 steps an epoch instead of 10.
    assert [step for step, _ in scalars(run_dir)["step/train_loss"]] == list(range(10))
    assert (proc.stdout + proc.stderr).count("Epoch 2/2") == 1  # rank 0 reports the run


def test_ddp_inside_a_sweep_is_refused_for_that_run(tmp_path):
    proc = run_cli("-m", "trainer.devices=1,2", *TINY, cwd=tmp_path)
    assert proc.returncode == 1
    rows = {r["trainer.devices"]: r["status"] for r in run_rows(only_sweep(tmp_path))}
    assert rows == {"1": "ok", "2": "failed"} and "without -m" in proc.stderr


def test_a_sweep_whose_runs_change_into_their_folders_trains_them(tmp_path):
    # hydra.job.chdir=true: each run's working folder is its own; its sweep folder is still where
    # the command started (once every run was refused as "outside its sweep folder").
    proc = run_cli("-m", "seed=1,2", "data.limit=200", "trainer.max_epochs=1", "hydra.job.chdir=true",
                   "hydra.launcher.workers=1", "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted((r["seed"], r["status"]) for r in run_rows(tmp_path / "sweep")) == [("1", "ok"), ("2", "ok")]


def test_a_folder_of_a_sweep_with_other_fixed_settings_is_refused(tmp_path):
    """Run folders name what is swept only: a second sweep into the folder of one that held
    data.limit at another value would pass that sweep's runs off as its own."""
    sweep = tmp_path / "sweep"
    # One process (hydra.launcher.workers=1): no worker processes to start for runs this small.
    first = run_cli("-m", "model.depth=1,2", "data.limit=200", "trainer.max_epochs=1", "hydra.launcher.workers=1",
                    f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in sweep.glob("model.depth=*")) == ["model.depth=1", "model.depth=2"]
    other = run_cli("-m", "model.depth=1,2", "data.limit=300", "trainer.max_epochs=1", "hydra.launcher.workers=1",
                    f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert other.returncode == 2
    assert "holds a sweep with other fixed settings (data.limit: data.limit=200 before, data.limit=300 now)" in other.stderr
    # Another depth, the same fixed settings: the sweep continues.
    again = run_cli("-m", "model.depth=1,2,3", "data.limit=200", "trainer.max_epochs=1", "hydra.launcher.workers=1",
                    f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(list(sweep.glob("model.depth=*/result.json"))) == 3
    # One depth of it, fixed: named as what the earlier sweep swept, not as a key it left unset.
    one = run_cli("-m", "model.depth=2", "data.limit=200", "trainer.max_epochs=1", "hydra.launcher.workers=1",
                  f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert one.returncode == 2 and "(model.depth: swept before, model.depth=2 now)" in one.stderr, one.stderr
    # Another key swept, the depth left at its default: model.activation=relu would be depth 1 again
    # under a second name, and the report would compare the setting with itself.
    other_key = run_cli("-m", "model.activation=relu,tanh", "data.limit=200", "trainer.max_epochs=1",
                        "hydra.launcher.workers=1", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert other_key.returncode == 2 and "Traceback" not in other_key.stderr
    assert "holds a sweep over other keys (model.depth before, model.activation now)" in other_key.stderr
    assert not list(sweep.glob("model.activation=*"))


def test_quick_compositions_give_hydras_config_for_every_job_of_a_grid():
    """The stacked launcher and the grid's value check make a job's config from an earlier job's
    where only plain values differ (mlpbench.sweep.QuickCompositions): every job's config must be
    the one Hydra composes, config groups, lists and its own section (override_dirname) included,
    and a value only Hydra can judge must fail as Hydra fails it."""
    import itertools

    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.types import RunMode

    from mlpbench.run import CONF_MODULE
    from mlpbench.sweep import QuickCompositions

    grid = {"seed": ["1", "2"], "model.units": ["[8]", "[16,8]", "64"], "optim.lr": ["0.1", "1e-3"],
            "model": ["mlp", "keras"], "optim": ["adam", "sgd"]}
    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration(
            "config", overrides=["data.limit=100", *(f"{k}={','.join(v)}" for k, v in grid.items())],
            run_mode=RunMode.MULTIRUN)
        composed = []  # Hydra's compositions the quick ones made
        quick = QuickCompositions(lambda config, job: composed.append(job) or loader.load_sweep_config(config, job))

        def assert_as_hydra(job: list[str], master=master) -> None:
            assert OmegaConf.to_yaml(quick(master, job)) == OmegaConf.to_yaml(loader.load_sweep_config(master, job)), job

        # Every value of the grid, in 8 of its 48 jobs (each compared with Hydra's, ~0.8 s): each
        # choice of model and optim twice (composed, then copied), its plain values all changed.
        for i, (model, optim) in enumerate(itertools.product(grid["model"], grid["optim"])):
            for j in range(2):
                values = (grid["seed"][j], grid["model.units"][(2 * i + j) % 3], grid["optim.lr"][j], model, optim)
                assert_as_hydra(["data.limit=100", *(f"{k}={v}" for k, v in zip(grid, values))])
        assert len(quick.composed) == 4  # one composition per choice of model and optim; the rest copies
        # A search's trials: each its own folder and pruning callback (a mapping, added with +), copies
        # too; a mapping of other keys, or another of Hydra's settings than its folders, is composed.
        trials = [["data.limit=100", f"model.units={units}", f"seed={seed}", f"hydra.sweep.subdir='trial_{n:03d}'",
                   f"+callbacks.tune_trial={{_target_:mlpbench.tune.trial.TrialPruning,study_dir:'/a b',trial:{n}}}"]
                  for n, (units, seed) in enumerate(((32, 1), (64, 1), (64, 2)))]
        trials.append([*trials[0][:4], "+callbacks.tune_trial={_target_:mlpbench.tune.trial.TrialPruning,trial:3}"])
        trials.append([*trials[0][:3], "hydra.job.name=other", *trials[0][3:]])
        composed.clear()
        for job in trials:
            assert_as_hydra(job)
        assert composed == [trials[0], trials[3], trials[4]]
        # Found by a review: a mapping's keys in another order, a ??? in a mapping (Hydra's merge
        # keeps the default, not the earlier job's), keys of mixed types; and a + that Hydra
        # refuses where a value is already there, unless it adds a list.
        for first, then in ((["+callbacks.t={a:1,b:2}"], ["+callbacks.t={b:3,a:4}"]),
                            (["optim={lr:0.5}"], ["optim={lr:???}"]),
                            (["+callbacks.t={1:a,b:c}"], ["+callbacks.t={1:d,b:e}"])):
            assert_as_hydra(first)
            assert_as_hydra(then)
        quick(master, ["+model.units=[8]"])
        with pytest.raises(HydraException, match="Could not append to config"):
            loader.load_sweep_config(master, ["+model.units=64"])
        with pytest.raises(HydraException, match="Could not append to config"):
            quick(master, ["+model.units=64"])
        # A key inside another: Hydra applies the two in order, so only Hydra composes it.
        for job, units in ((["model.units=[16,8]", "model.units.0=3"], [3, 8]),
                           (["model.units=[8]", "model.units.0=3"], [3])):
            assert quick(master, job).model.units == units == loader.load_sweep_config(master, job).model.units
        with pytest.raises(HydraException, match="model.depth=abc"):
            loader.load_sweep_config(master, ["model.depth=abc"])
        quick(master, ["model.depth=1"])
        with pytest.raises(HydraException, match="model.depth=abc"):
            quick(master, ["model.depth=abc"])
        # A Hydra setting of the command's with ${...} in it stays as written in each job's config
        # (a copy once resolved it, and failed on `hydra.sweep.subdir=${hydra.job.num}`).
        numbered = loader.load_configuration("config", overrides=["seed=1,2", "hydra.sweep.subdir=${hydra.job.num}"],
                                             run_mode=RunMode.MULTIRUN)
        composed.clear()
        assert_as_hydra(["seed=1"], numbered)
        assert_as_hydra(["seed=2"], numbered)
        assert composed == [["seed=1"]]


def test_resume_finds_the_sweep_its_command_started_whatever_its_budget_of_seeds_or_console():
    from mlpbench.sweep import _sweep_overrides

    started = ["model.depth=2,4", "seed=auto", "experiment=activations"]
    # More seeds (sweep.max_seeds), another progress bar, resume=true: the same sweep, continued.
    again = ["seed=auto", "sweep.max_seeds=20", "model.depth=2,4", "trainer.enable_progress_bar=false", "resume=true",
             "experiment=activations"]
    assert _sweep_overrides(again) == _sweep_overrides(started)
    # Another preset or another grid: another sweep.
    assert _sweep_overrides(["model.depth=2,4", "seed=auto", "experiment=width"]) != _sweep_overrides(started)
    assert _sweep_overrides(["model.depth=2,6", "seed=auto", "experiment=activations"]) != _sweep_overrides(started)


def test_empty_sweep_folders_left_by_killed_processes_are_removed_by_a_later_sweep(tmp_path):
    from mlpbench.sweep import STALE_CLAIM_S, sweep_dir

    base = tmp_path / "multirun"
    stale, fresh, used = (base / name for name in ("2026-01-01_00-00-00", "2026-01-01_00-00-01", "2026-01-01_00-00-02"))
    for folder in (stale, fresh, used):
        folder.mkdir(parents=True)
    (used / "multirun.yaml").write_text("{}")
    (base / "mine").mkdir()  # not a name a sweep claims: the user's
    old = time.time() - STALE_CLAIM_S - 60
    for folder in (stale, used, base / "mine"):
        os.utime(folder, (old, old))
    made = Path(sweep_dir(str(base), False))
    assert not stale.exists() and fresh.is_dir() and used.is_dir() and (base / "mine").is_dir() and made.is_dir()


def test_a_run_whose_folder_cannot_be_written_fails_alone_not_its_stack(tmp_path):
    # seed 2's checkpoints folder is a file: that run fails, its stack-mates (seeds 1 and 3) train.
    sweep = tmp_path / "sweep"
    (sweep / "model.depth=1,seed=2").mkdir(parents=True)
    (sweep / "model.depth=1,seed=2" / "checkpoints").write_text("")
    proc = run_cli("-m", "model.depth=1,2", "seed=1,2,3", "data=digits", "trainer.max_epochs=1",
                   "hydra.launcher.workers=1", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 1
    assert "model.depth=1,seed=2: FileExistsError: run model.depth=1,seed=2: cannot make" in proc.stderr
    statuses = {r["run"]: r["status"] for r in run_rows(sweep)}
    assert statuses.pop("model.depth=1,seed=2") == "failed" and set(statuses.values()) == {"ok"} and len(statuses) == 5


def test_resume_asked_to_judge_a_finished_sweep_otherwise_says_how_instead_of_training_it_again(tmp_path, capsys):
    from mlpbench import report

    grid = ["-m", "model.depth=1,2", "seed=1,2", *TINY]
    assert run_cli(*grid, cwd=tmp_path).returncode == 0
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    proc = run_cli(*grid, "report.objective=val_loss", "resume=true", cwd=tmp_path)
    assert proc.returncode == 2 and len(list((tmp_path / "outputs" / "multirun").iterdir())) == 1
    assert (f"differs from this command only in report.objective=val_loss, which trains nothing; to judge its runs "
            f"by it: python -m mlpbench.report {Path('outputs/multirun') / sweep.name} report.objective=val_loss"
            ) in proc.stderr, proc.stderr
    capsys.readouterr()
    assert report.main([str(sweep), "report.objective=val_loss", "--no-plots"]) == 0
    assert capsys.readouterr().out.startswith("val_loss: ")


def test_a_run_folder_deleted_before_its_stack_starts_is_made_again_and_the_sweep_goes_on(tmp_path):
    # Stacks in turn in this process, the costlier first: depth 2 deletes a folder of depth 1 as it starts.
    gone = tmp_path / "s" / "model.depth=1,seed=1"
    proc = run_cli("-m", "model.depth=1,2", "seed=1,2", *TINY, "hydra.launcher.workers=1", "hydra.sweep.dir=s",
                   f"+callbacks.rm={{_target_:tests.faults.DeleteFolderOnce,folder:'{gone}',marker:'{tmp_path / 'rm'}'}}",
                   cwd=tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert (tmp_path / "rm").exists()
    assert {r["status"] for r in run_rows(tmp_path / "s")} == {"ok"} and len(run_rows(tmp_path / "s")) == 4
    assert json.loads((gone / "result.json").read_text())["status"] == "ok" and (gone / "run.log").is_file()


def test_a_file_error_a_library_wrapped_is_said_as_the_file_error(tmp_path, caplog):
    from mlpbench.run import say_failure

    # Lightning's TensorBoardLogger, its events file gone with its folder (a user's rm mid-stack).
    gone, mate = tmp_path / "model.depth=2,seed=1", tmp_path / "model.depth=2,seed=0"
    mate.mkdir()
    try:
        try:
            raise FileNotFoundError(2, "No such file or directory", str(gone / "events.out.tfevents.1"))
        except FileNotFoundError as e:
            raise ValueError("\n you tried to log 0.1188 which is currently not supported.") from e
    except ValueError as wrapped:
        with caplog.at_level("ERROR", logger="mlpbench"):
            say_failure([mate, gone], wrapped)
    assert caplog.messages == [f"Runs {mate.name}, {gone.name} failed: {gone} was removed while it trained; rerun the "
                               "command to train it again"]
