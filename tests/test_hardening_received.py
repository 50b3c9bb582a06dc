"""Hardening, second pass, one test per class of fault: a received config reaches nothing but
mlpbench's own keys; every reader survives any file; validation refuses what would fail at run
time; paths stay where they belong; nothing is lost or mixed; reports do not mislead. Most tests
call the code in-process (no training): the whole class in seconds."""

import json
import logging

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from mlpbench import __main__ as cli
from mlpbench.overrides import command_line
from mlpbench import data, report, sweep
from mlpbench.results import read_result, read_sweep_config
from mlpbench.schema import ConfigError, checked
from tests.conftest import make_config, run_cli, write_idx
from tests.test_report import fake_run

TINY = ["data.limit=200", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]
BEST = ("defaults:\n  - base_config\n  - _self_\n"
        "hydra:\n  run:\n    dir: outputs/run/${now:%Y-%m-%d}/${now:%H-%M-%S}\n{hydra}"
        "data: {{source: mnist_small}}\nmodel: {{}}\ntrainer: {{}}\n"
        "optim: {{name: adam, lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1.0e-7, amsgrad: false}}\n")


# ---------------------------------------------------------------------------- 1. received configs


@pytest.mark.parametrize("hydra, key", [
    ("  job:\n    env_set:\n      PYTHONPATH: /tmp/planted\n", "hydra.job.env_set.PYTHONPATH"),
    ("  job_logging:\n    handlers:\n      file:\n        filename: /tmp/victim\n        mode: w\n",
     "hydra.job_logging.handlers.file.filename"),
    ("  hydra_logging:\n    root:\n      level: DEBUG\n", "hydra.hydra_logging.root.level"),
    ("  sweep:\n    dir: /tmp/elsewhere\n", "hydra.sweep.dir"),
    ("  job:\n    chdir: true\n", "hydra.job.chdir"),
    ("  sweeper:\n    params:\n      hydra.job_logging.handlers.file.filename: /tmp/victim\n",
     "hydra.sweeper.params.hydra.job_logging.handlers.file.filename"),
    ("callbacks:\n  trap: {_target_: mlpbench.run.logging.FileHandler, filename: /tmp/victim}\n",
     "callbacks.trap._target_=mlpbench.run.logging.FileHandler"),  # a trusted prefix, os's FileHandler
    ("  sweeper:\n    params:\n      +callbacks.x: '{_target_:os.makedirs,name:/tmp/planted}'\n",
     "callbacks.x._target_=os.makedirs"),  # a callable in a value the sweep sets
])
def test_a_received_config_may_not_set_hydras_environment_logging_or_folders(tmp_path, capsys, hydra, key):
    (tmp_path / "best_config.yaml").write_text(BEST.replace("{hydra}", hydra).replace("{{", "{").replace("}}", "}"))
    with pytest.raises(SystemExit) as stop:
        cli._check_received_config(command_line(["--config-dir", str(tmp_path), "--config-name", "best_config"]))
    assert stop.value.code == 2
    message = capsys.readouterr().err
    assert message.startswith(f"mlpbench: error: {key}")
    assert "a received config may" in message or "may only name mlpbench's, Hydra's or Lightning's" in message


def test_flags_that_replace_the_configs_or_unpickle_a_file_and_searches_over_hydras_keys_are_refused(tmp_path):
    from mlpbench.tune.space import parse_space

    for flag in ("--config-path", "--experimental-rerun"):
        proc = run_cli(flag, str(tmp_path), cwd=tmp_path)
        assert proc.returncode == 2 and f"{flag}: not supported by mlpbench" in proc.stderr
    with pytest.raises(ConfigError, match="tune.space.hydra: a search varies mlpbench's settings"):
        parse_space({"hydra": {"verbose": {"type": "categorical", "choices": [True]}}})
    for space in ({"callbacks": {"x": {"_target_": {"type": "categorical", "choices": ["os.getcwd"]}}}},
                  {"callbacks": {"x": {"type": "categorical", "choices": [{"_target_": "os.getcwd"}]}}}):
        with pytest.raises(ConfigError, match="not which code runs"):
            parse_space(space)


def test_a_received_config_may_keep_mlpbenchs_values_and_the_user_may_type_any(tmp_path, capsys):
    (tmp_path / "best_config.yaml").write_text(BEST.replace("{hydra}", "").replace("{{", "{").replace("}}", "}"))
    args = ["--config-dir", str(tmp_path), "--config-name", "best_config"]
    cli._check_received_config(command_line(args))  # a search's best_config.yaml: nothing refused
    cli._check_received_config(command_line([*args, "+hydra.job.env_set.OMP_NUM_THREADS=1", "hydra.run.dir=/tmp/mine"]))
    (tmp_path / "hydra" / "job_logging").mkdir(parents=True)
    (tmp_path / "hydra" / "job_logging" / "mine.yaml").write_text("version: 1\n")
    chooses = BEST.replace("  - _self_", "  - override hydra/job_logging: mine\n  - _self_", 1)
    (tmp_path / "best_config.yaml").write_text(chooses.replace("{hydra}", "").replace("{{", "{").replace("}}", "}"))
    with pytest.raises(SystemExit):  # an option of Hydra's groups that only the folder has
        cli._check_received_config(command_line(args))
    assert "hydra/job_logging: set to 'mine'" in capsys.readouterr().err


# ---------------------------------------------------------------------------- 2. readers


@pytest.mark.parametrize("change", [
    {"metrics": "high"}, {"overrides": "seed=1"}, {"overrides": ["seed=[1"]},
    {"job": "first"}, {"history": {"val_acc": ["x"]}}, {"status": "bogus"}, {"epochs": 1.5}, {"seconds": "1"},
    {"config": [1]}, {"error": "boom"}, {"overrides": ["seed=abc"], "config": {}},
    {"metrics": {"best_val_acc": 10**400}}, {"metrics": {"best_val_acc": -5.0, "val_acc": 0.5, "val_loss": 1.0}},
    {"metrics": {"val_acc": 0.5, "val_loss": 1.0}},  # ok, yet without its best_val_acc
])
def test_a_result_json_of_any_shape_is_passed_over_by_name(tmp_path, caplog, change):
    run_dir = fake_run(tmp_path / "sweep", ["model.depth=1", "seed=1"], [0.5, 0.6])
    fake_run(tmp_path / "sweep", ["model.depth=2", "seed=1"], [0.7, 0.8])
    result = json.loads((run_dir / "result.json").read_text())
    (run_dir / "result.json").write_text(json.dumps({**result, **change}))
    with caplog.at_level(logging.WARNING, logger="mlpbench"):
        assert read_result(run_dir) is None
    assert f"{run_dir / 'result.json'} is passed over" in caplog.text
    made = report.build([tmp_path / "sweep"], plots=False)  # the sweep's report, without that run
    assert [run.name for run in made.runs] == ["model.depth=2,seed=1"]
    assert sweep.plan_run(run_dir).skip is None and not (run_dir / "result.json").exists()  # trained again
    (run_dir / "result.json").mkdir()  # a folder in the record's place: it would fail the run's every save
    assert sweep.plan_run(run_dir).skip is None and not (run_dir / "result.json").exists()


def test_a_damaged_cache_meta_is_rebuilt_not_trusted(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "source.txt"
    source.write_text("x")
    build = lambda: data.Arrays(np.zeros((4, 3), np.float32), np.array([0, 1, 2, 1]), None, None, 3)  # noqa: E731
    data._disk_cached("t", [source], build)
    (meta,) = (tmp_path / "cache").glob("*/meta.json")
    for classes in (100, 2, "3", None):
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "num_classes": classes}))
        with caplog.at_level(logging.WARNING, logger="mlpbench"):
            assert data._disk_cached("t", [source], build).num_classes == 3
        assert "is damaged" in caplog.text and "num_classes" in caplog.text
    for damaged in ("[]", json.dumps({**json.loads(meta.read_text()), "fields": []})):
        meta.write_text(damaged)
        assert data._disk_cached("t", [source], build).num_classes == 3


@pytest.mark.parametrize("header, message", [
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x07" + b"\x00\x00\x00\x01" * 7, "7 dimensions"),
    (b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3, "truncated or corrupt"),
    (b"\x00\x00\x08\x03\x00\x00", "its header alone"),
])
def test_hand_made_idx_headers_are_named(tmp_path, header, message):
    (tmp_path / "f").write_bytes(header)
    with pytest.raises(data.DataError, match=message):
        data.read_idx(tmp_path / "f")


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((5, 0, 0), np.uint8), np.zeros(5, np.uint8), "expected 8-bit images"),
    (np.zeros((5, 28, 28), np.uint8), np.zeros((5, 1, 1), np.uint8), "labels must be one column"),
])
def test_idx_files_of_empty_images_or_nested_labels_are_named(tmp_path, monkeypatch, images, labels, message):
    from tests.conftest import write_fake_mnist

    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    folder = write_fake_mnist(tmp_path / "mnist")
    write_idx(folder / "train-images-idx3-ubyte", images)
    write_idx(folder / "train-labels-idx1-ubyte", labels)
    data._load_idx_source.cache_clear()
    with pytest.raises(data.DataError, match=message):
        data.load_arrays("mnist", str(folder))


def test_broken_search_folders_and_report_outputs_are_named(tmp_path, capsys):
    folder = tmp_path / "search"
    folder.mkdir()
    (folder / "multirun.yaml").write_text("hydra: [unclosed")
    assert read_sweep_config(folder) is None
    (folder / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task: []\n  sweeper:\n    _target_: hydra_plugins.mlpbench_tuner.TuneSweeper\n"
        "tune:\n  study_name: gone\n  objective: val_acc\n  space: {}\ntrainer:\n  max_epochs: 2\n")
    (folder / "study.db").write_bytes(b"")
    with pytest.raises(SystemExit):  # empty: named, and not made a database by the report
        report.main([str(folder)])
    assert "study.db: missing or empty" in capsys.readouterr().err and not (folder / "study.db").stat().st_size
    import optuna

    optuna.create_study(storage=f"sqlite:///{folder / 'study.db'}", study_name="another")
    with pytest.raises(SystemExit):
        report.main([str(folder)])
    assert "study.db: holds no study 'gone' (it holds: another)" in capsys.readouterr().err
    fake_run(tmp_path / "sweep", ["seed=1"], [0.5])
    (tmp_path / "a-file").write_text("")
    with pytest.raises(SystemExit):
        report.main([str(tmp_path / "sweep"), "--out", str(tmp_path / "a-file")])
    assert "a-file: must name a folder (it is a file)" in capsys.readouterr().err


# ---------------------------------------------------------------------------- 3. validation


@pytest.mark.parametrize("overrides, message", [
    (["seed=${oc.env:MLPBENCH_NO_SUCH_VARIABLE}"], "seed: "),
    (["model.units=${nope.key}"], "model.units: Interpolation key 'nope.key' not found"),
    (["~model"], "~model: model cannot be deleted"),
    (["~seed"], "~seed: seed cannot be deleted"),
    (["optim.eps=0"], "optim.eps=0.0: must be > 0"),
    (["optim=sgd", "optim.nesterov=true"], "optim.nesterov=true: needs optim.momentum > 0"),
    (["trainer.strategy=ddp_spawn"], "trainer.strategy=ddp_spawn: must be auto or ddp"),
    (["model.depth=1000000000000", "model.units=1"], "model.depth=1000000000000: must be an integer in [0, 1000]"),
    (["model.units=[64,32]", "model.depth=1"], "has 2 entries but model.depth=1"),
])
def test_what_would_fail_at_run_time_is_a_config_error_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as refused:
        checked(make_config(*overrides))
    assert message in str(refused.value)


def test_refused_values_leave_no_folder_and_sweeps_check_their_launcher_and_values(tmp_path):
    from mlpbench.run import compose_config
    from mlpbench.schema import validate_launcher
    from mlpbench.trainer import _callback

    proc = run_cli(*TINY, "seed=${oc.env:MLPBENCH_NO_SUCH_VARIABLE}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2 and "seed: " in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
    for args, message in ((["seed=range(5,1)"], "seed=range(5,1): gives no values"),
                          (["seed=range(0,5,0)"], "seed=range(0,5,0): range() arg 3 must not be zero"),
                          (["optim=glob(zz*)"], "optim=glob(zz*): gives no values"),
                          (["optim.lr=interval(0.001,0.1)"], "interval() is a range for a search"),
                          (["seed=1,2", "hydra.sweep.subdir=same"], "names one folder for all 2 runs"),
                          (["seed=1,2", "hydra.sweep.subdir=../../escaped"], "must name a folder inside the sweep")):
        proc = run_cli("-m", *TINY, *args, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "escaped").exists()
    for options, message in (({"n_jobs": 0}, "hydra.launcher.n_jobs=0"), ({"backend": "bogus"}, "backend=bogus")):
        launcher = compose_config(["hydra/launcher=joblib"], with_hydra=True).hydra.launcher
        launcher.update(options)
        with pytest.raises(ConfigError, match=message):
            validate_launcher(launcher)
    with pytest.raises(data.DataError, match="leave 1 training row; need at least 2"):
        data.make_splits(make_config("data.limit=2", "data.val_split=0.5").data, 1)
    (tmp_path / "a-file").write_text("")
    for spec, message in (({"monitor": "nope"}, "callbacks.es.monitor=nope: no run logs it"),
                          ({"monitor": "val_loss", "bogus": 1}, "callbacks.es: cannot be built"),
                          ({"_target_": "mlpbench.sweep.SweepSummary"}, "SweepSummary is not a Lightning callback"),
                          ({"_target_": "lightning.pytorch.callbacks.ModelCheckpoint", "dirpath": str(tmp_path / "a-file")},
                           "callbacks.es.dirpath=")):
        es = OmegaConf.create({"_target_": "lightning.pytorch.callbacks.EarlyStopping", **spec})
        with pytest.raises(ConfigError, match=message):
            _callback("es", es)


def test_a_search_refuses_pruning_that_cannot_prune_and_points_outside_its_space(tmp_path):
    proc = run_cli("experiment=tune_units", *TINY, "tune.min_resource=100", f"hydra.sweep.dir={tmp_path / 's'}",
                   cwd=tmp_path)
    assert proc.returncode == 2 and "tune.min_resource=100: must be below trainer.max_epochs=2" in proc.stderr
    from mlpbench.tune.search import Search
    from mlpbench.tune.space import parse_space

    for given, message in (("[{model.units:100}]", "tune.enqueue[0].model.units=100: outside"),
                           ("[{units:128}]", "tune.enqueue[0].units: not a dimension")):
        search = Search.__new__(Search)
        search.config = make_config("experiment=tune_units", f"tune.enqueue={given}")
        search.tune = search.config.tune
        search.distributions = {d.key: d.distribution() for d in parse_space(search.tune.space)}
        with pytest.raises(ConfigError) as refused:
            search._check_settings()
        assert message in str(refused.value)


# ---------------------------------------------------------------------------- 4. paths


def test_output_folders_are_checked_before_anything_is_written(tmp_path, monkeypatch):
    for value, message in (("", "an empty folder name"), ("/dev/null/x", "/dev/null is a file"),
                           (f"{tmp_path}/{'b' * 300}", "a folder name of 300 bytes")):
        with pytest.raises(ConfigError, match=message):
            sweep.usable_folder(value, "hydra.run.dir")
    for subdir in ("../../escaped", "/abs", "a/../../b", "", "."):
        with pytest.raises(ConfigError):
            sweep.check_subdir(subdir)
    sweep.check_subdir("${hydra.job.num}/x")
    monkeypatch.setenv("MLPBENCH_CACHE", "")
    assert data._cache_root() == data._cache_root().home() / ".cache/mlpbench/arrays"
    proc = run_cli(*TINY, "hydra.run.dir=", cwd=tmp_path)
    assert proc.returncode == 2 and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- 5. lost or mixed


def test_a_single_run_into_another_runs_folder_is_refused_and_into_its_own_skipped(tmp_path):
    folder = tmp_path / "mine"
    first = run_cli(*TINY, "model.depth=1", f"hydra.run.dir={folder}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    config = (folder / ".hydra" / "config.yaml").read_text()
    other = run_cli(*TINY, "model.depth=2", f"hydra.run.dir={folder}", cwd=tmp_path)
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert (f"hydra.run.dir={folder}: holds a run with other settings (model.depth: 1 before, 2 now); its result "
            "would pass for this command's") in other.stderr
    assert (folder / ".hydra" / "config.yaml").read_text() == config  # the earlier run's record as it was
    # The same config, a default spelled out and the overrides in another order: the same run.
    same = run_cli("model.activation=relu", *TINY, "model.depth=1", f"hydra.run.dir={folder}", cwd=tmp_path)
    assert same.returncode == 0 and "already ok" in same.stdout + same.stderr
    # Configs from another folder (--config-dir) are composed as Hydra composes them, then compared.
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "notes.yaml").write_text("{}\n")
    other = run_cli("--config-dir", str(tmp_path / "extra"), *TINY, "model.depth=5", f"hydra.run.dir={folder}",
                    cwd=tmp_path)
    assert other.returncode == 2 and "(model.depth: 1 before, 5 now)" in other.stderr
    # A record a full disk cut short (no config) is continued as the message says, not refused.
    from mlpbench.sweep import check_reused_run

    check_reused_run(folder, {"status": "failed", "error": {"resumable": True}}, {"model": {"depth": 9}})
    # A run that failed of itself starts over there: another config may take the folder.
    result = json.loads((folder / "result.json").read_text())
    (folder / "result.json").write_text(json.dumps({**result, "status": "failed", "error": {"type": "ValueError"}}))
    other = run_cli(*TINY, "model.depth=2", f"hydra.run.dir={folder}", cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert json.loads((folder / "result.json").read_text())["config"]["model"]["depth"] == 2


def test_checkpoints_stand_alone_and_a_swapped_one_is_named_and_not_used(tmp_path, caplog):
    from mlpbench.checkpoints import usable_checkpoint

    sweep_dir = tmp_path / "sweep"
    # One process (hydra.launcher.workers=1): no worker processes to start for runs this small.
    proc = run_cli("-m", "model.depth=1,2", "seed=1,2", *TINY, "hydra.launcher.workers=1",
                   f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    one, two = (next(sweep_dir.glob(f"*model.depth={d},*seed=1")) / "checkpoints" for d in (1, 2))
    assert (two / "last.ckpt").stat().st_ino != (two / "best.ckpt").stat().st_ino  # stacked: two files
    cfg = checked(make_config("model.depth=2"))
    (two / "last.ckpt").write_bytes((two / "last.ckpt").read_bytes()[:100])  # cut short: best.ckpt serves
    assert usable_checkpoint(two / "last.ckpt", cfg.model)[0] == two / "best.ckpt"
    checkpoint = torch.load(two / "best.ckpt", weights_only=True)  # bytes overwritten inside: NaN weights
    next(iter(checkpoint["state_dict"].values())).fill_(float("nan"))
    torch.save(checkpoint, two / "last.ckpt")
    with caplog.at_level(logging.WARNING, logger="mlpbench"):
        assert usable_checkpoint(two / "last.ckpt", cfg.model)[0] == two / "best.ckpt"
    assert "not finite (damaged)" in caplog.text
    for name in ("last.ckpt", "best.ckpt"):
        (two / name).write_bytes((one / name).read_bytes())  # depth 1's, copied into depth 2's run
    with caplog.at_level(logging.WARNING, logger="mlpbench"):
        assert usable_checkpoint(two / "last.ckpt", cfg.model) is None
    assert f"{two / 'last.ckpt'} cannot be used" in caplog.text
    assert "widths 784 -> 128 -> 10, this run's 784 -> 128 -> 128 -> 10" in caplog.text


def test_a_run_failed_by_its_disk_continues_and_resume_finds_its_sweep_in_any_order(tmp_path):
    run_dir = fake_run(tmp_path / "sweep", ["seed=1"], [0.5], status="failed")
    result = json.loads((run_dir / "result.json").read_text())
    (run_dir / "checkpoints").mkdir()
    torch.save({}, run_dir / "checkpoints" / "last.ckpt")
    for error, kept in (({"type": "OSError", "message": "full", "resumable": True}, True),
                        ({"type": "RuntimeError", "message": "bug"}, False)):
        (run_dir / "result.json").write_text(json.dumps({**result, "error": error}))
        assert (sweep.plan_run(run_dir, clear=False).checkpoint is not None) is kept
    assert sweep._sweep_overrides(["seed=1,2", "model.depth=2", "resume=true"]) == \
        sweep._sweep_overrides(["model.depth=2", "seed=1,2"])


def test_a_resumed_run_that_fails_again_records_its_new_error_and_trains_record_stays(tmp_path):
    from mlpbench.results import RunRecord
    from mlpbench.run import _record_failure

    cfg = make_config()
    run_dir = fake_run(tmp_path / "sweep", ["seed=1"], [0.5], status="failed")
    died = {**json.loads((run_dir / "result.json").read_text()), "error": {"type": "WorkerDied", "resumable": True}}
    (run_dir / "result.json").write_text(json.dumps(died))
    # Resumed, then refused before training (its data file edited): the record says so, not WorkerDied.
    _record_failure(run_dir, ["seed=1"], cfg, ConfigError("data.csv: its content changed"))
    assert read_result(run_dir)["error"] == {"type": "ConfigError", "message": "data.csv: its content changed"}
    # A failure train() recorded (with its epochs) is left as it is by the caller that records again.
    error = RuntimeError("bug at epoch 3")
    record = RunRecord(run_dir, ["seed=1"], {})
    record.update(epochs=3)
    record.fail(error)
    _record_failure(run_dir, ["seed=1"], cfg, error)
    assert read_result(run_dir)["epochs"] == 3
    # A finished run keeps its result when a later stack of its group fails.
    finished = fake_run(tmp_path / "sweep", ["seed=2"], [0.5])
    _record_failure(finished, ["seed=2"], cfg, RuntimeError("a stack-mate failed"))
    assert read_result(finished)["status"] == "ok"


# A study bound to its folder, a finished orphaned trial taken: tests/test_tune.py (a search's folder).


# ---------------------------------------------------------------------------- 6. reports


def test_reports_count_each_run_once_and_never_mix_objectives_silently(tmp_path):
    a = tmp_path / "a"
    for seed in (1, 2):
        fake_run(a, ["model.depth=1", f"seed={seed}"], [0.5, 0.6 + seed / 100])
    made = report.build([a, tmp_path / "a", a / "."], plots=False)
    assert len(made.runs) == 2
    b = tmp_path / "b"
    for seed in (1, 2):
        fake_run(b, ["model.depth=1", f"seed={seed}"], [0.5, 0.7], config={"seed": seed, "report": {"objective": "val_loss"}})
    both = report.build([a, b], out=tmp_path / "cmp", plots=False)
    assert "depth_linear (a) (best_val_acc)" in both.text and "depth_linear (b) (val_loss)" in both.text
    assert "each sweep's objective" in both.text
    assert {r["objective"] for r in report.setting_rows(report.read_sweeps([a, b]))} == {"best_val_acc", "val_loss"}
    c = tmp_path / "c"
    fake_run(c, ["seed=1"], [0.5], config={"report": {"objective": "val_accuracy"}})
    with pytest.raises(ConfigError, match="report.objective=val_accuracy, which is none of"):
        report.build([c], plots=False)
    d = tmp_path / "d"
    fake_run(d, ["seed=1"], [0.5], config={"report": {"objective": "val_acc"}})
    fake_run(d, ["seed=2"], [0.5], config={"report": {"objective": "val_loss"}})
    with pytest.raises(ConfigError, match=r"different objectives \(val_acc, val_loss\)"):
        report.build([d], plots=False)
