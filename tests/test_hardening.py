"""Hardening: no code runs from a received checkpoint or config, no silent wrong result, no stuck
run, no raw traceback. Each test injects one fault or bad input, as a user or the machine would."""

import json
import os
import pickle
import signal

import numpy as np
import pytest

from mlpbench import data
from mlpbench.files import markdown
from mlpbench.schema import ConfigError, resolved, validate
from mlpbench.sweep import run_name
from tests.conftest import make_config, run_cli, run_rows, start_cli, wait_for_file, write_fake_mnist

TINY = ["data.limit=200", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]


class Planted:
    """A pickle that runs code when loaded: it creates the file it names."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_planted_checkpoint_runs_no_code_on_resume_and_the_run_starts_over(tmp_path):
    first = run_cli("-m", "model.depth=1", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (run_dir,) = [p.parent for p in (tmp_path / "sweep").glob("*/result.json")]
    # Someone sends you the folder with the run left "interrupted" and a checkpoint that is a trap.
    result = json.loads((run_dir / "result.json").read_text())
    (run_dir / "result.json").write_text(json.dumps({**result, "status": "interrupted"}))
    marker = tmp_path / "code-ran"
    for name in ("last.ckpt", "best.ckpt"):
        (run_dir / "checkpoints" / name).write_bytes(pickle.dumps({"state_dict": Planted(str(marker))}))
    again = run_cli("-m", "model.depth=1", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert not marker.exists()
    assert "cannot be used" in again.stdout + again.stderr and "the run starts over" in again.stdout + again.stderr
    rerun = json.loads((run_dir / "result.json").read_text())
    assert rerun["status"] == "ok" and rerun["epochs"] == 2 and "resumed" not in rerun


def test_a_received_config_cannot_name_an_arbitrary_callable(tmp_path):
    folder = tmp_path / "received"
    folder.mkdir()
    # tempfile.mkdtemp: a callable Hydra's own blocklist lets through; it leaves a trace if called.
    (folder / "best_config.yaml").write_text(
        "defaults:\n  - base_config\n  - _self_\n"
        "data: {source: mnist_small}\nmodel: {}\ntrainer: {}\n"
        "optim: {name: adam, lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1.0e-7, amsgrad: false}\n"
        f"callbacks:\n  trap: {{_target_: tempfile.mkdtemp, dir: '{tmp_path}', prefix: TRAP_}}\n")
    for flags in (["--config-dir", str(folder), "--config-name", "best_config"],
                  [f"-cd={folder}", "-cn", "best_config"]):
        proc = run_cli(*flags, *TINY, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
        assert proc.returncode == 2 and not list(tmp_path.glob("TRAP_*"))
        assert "callbacks.trap._target_=tempfile.mkdtemp" in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "run" / "result.json").exists()


@pytest.mark.parametrize("override, message", [
    ("optim.lr=inf", "optim.lr=inf: must be a finite number"),
    ("optim.weight_decay=inf", "optim.weight_decay=inf: must be a finite number"),
    ("model.bn_eps=nan", "model.bn_eps=nan: must be a finite number"),
    ("seed=-1", "seed=-1: must be an integer in [0, 4294967296)"),
    ("seed=4294967296", "seed=4294967296: must be an integer in [0, 4294967296)"),
    ("data.batch_size=1", "data.batch_size=1: must be >= 2 with BatchNorm"),
    ("tune.study_name=../../x", "tune.study_name=../../x: must be a name"),
    ("model.units=[]", "model.units=[]: must be a positive integer"),
    ("+foo=1", "foo: not a setting of mlpbench"),
    ("+model.dept=3", "model.dept: not a setting of model"),
    ("report.best_over=[nope.key]", "report.best_over=nope.key: must name config keys"),
])
def test_values_that_would_train_wrongly_are_refused_by_name(override, message):
    with pytest.raises(ConfigError) as err:
        validate(resolved(make_config(override, "model.depth=3")))
    assert message in str(err.value)


@pytest.mark.parametrize("override, message", [
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1.0: must be > 0"),
    ("hydra.job.name=../..", "hydra.job.name=../..: must be a name"),
    ("hydra.job.name=" + "a" * 101, "must be a name of at most 100 letters"),
    ("model.units=2000000", "parameters need about"),
    ("=5", "=5: an override is KEY=VALUE"),
    ("data.features=x1", "data.features=x1: data.features is a list; write data.features=[x1]"),  # Hydra: ListConfig
    ("data.drop=true", "data.drop=true: data.drop is a list; write data.drop=['true']"),  # a column named true
    ("data.drop='[a]'", "data.drop='[a]': data.drop is a list; write data.drop=[a]"),
    ("data.drop=a,b", "data.drop=a,b: data.drop is a list; write data.drop=[a,b] for one list, or data.drop=[a],[b] "
     "to sweep over lists"),
    ("data.features=[größe,alter]", "write \"data.features=['größe','alter']\""),
    # Hydra's own error for it is a lexer's exception, saying nothing of quotes
    ("data.target=étiquette", "data.target=étiquette: Hydra reads a value with letters beyond ASCII (é, ß, 中) only in "
     "quotes; write \"data.target='étiquette'\""),
    # A column named with parentheses: Hydra's message is "Unknown function 'Price'"
    ("data.target=Price ($)", "data.target=Price ($): Hydra reads NAME(...) as a function; a column's name with "
     "parentheses is quoted: write \"data.target='Price ($)'\""),
    # A home folder's ~, a # or [ in a file's name: Hydra's grammar, its message a lexer's
    ("data.path=~/x.csv", "data.path=~/x.csv: Hydra cannot read this value unquoted (~ # & [ ] = and the like are "
     "its grammar's); a file's or column's name is quoted: write \"data.path='~/x.csv'\""),
])
def test_bad_values_stop_the_command_with_one_message_and_nothing_written(tmp_path, override, message):
    proc = run_cli(override, "model.depth=3", *TINY, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "result.json").exists()
    assert not list(tmp_path.parent.glob("*.log"))  # hydra.job.name=../.. wrote no log outside


def test_a_typo_in_a_list_is_hydras_to_point_at_not_a_name_to_quote(tmp_path):
    proc = run_cli("data.features=[a,b", cwd=tmp_path)
    assert proc.returncode != 0 and "no viable alternative at input '[a,b'" in proc.stderr, proc.stderr
    assert "quoted" not in proc.stderr


def test_a_list_key_given_by_an_interpolation_is_left_to_omegaconf(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(40)))
    proc = run_cli("data=table", "data.path=t.csv", "data.target=label", 'data.features=${oc.decode:"[a,b]"}',
                   "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "run" / "result.json").read_text())["table"]["features"] == ["a", "b"]


def test_overrides_on_both_sides_of_a_flag_are_refused_with_the_order_hydra_reads(tmp_path):
    proc = run_cli("model.depth=3", "-m", "seed=1,2", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("mlpbench: error: seed=1,2: the overrides must come together, after the flags")
    assert not (tmp_path / "outputs").exists()


def test_a_damaged_array_cache_is_detected_and_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    folder = write_fake_mnist(tmp_path / "mnist")
    data._load_idx_source.cache_clear()
    first = data.load_arrays("mnist", str(folder))
    (cached,) = (tmp_path / "cache").glob("mnist-*/x_train.npy")
    raw = bytearray(cached.read_bytes())
    raw[128:] = bytes(len(raw) - 128)  # a valid header over a zeroed body
    cached.write_bytes(bytes(raw))
    data._load_idx_source.cache_clear()
    again = data.load_arrays("mnist", str(folder))
    np.testing.assert_array_equal(again.x_train, first.x_train)
    assert "array cache" in caplog.text and "damaged" in caplog.text
    data._load_idx_source.cache_clear()


def test_truncated_and_mislabelled_idx_files_are_named(tmp_path, monkeypatch):
    from mlpbench.data import DataError, read_idx
    from tests.conftest import write_idx

    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    good = write_idx(tmp_path / "labels-idx1-ubyte", np.arange(10, dtype=np.uint8), compress=True)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good.read_bytes()[:-6])
    with pytest.raises(DataError, match="cut.gz: truncated or corrupt gzip file"):
        read_idx(cut)
    folder = write_fake_mnist(tmp_path / "bad")
    write_idx(folder / "train-labels-idx1-ubyte", (np.arange(60) % 13).astype(np.uint8))
    data._load_idx_source.cache_clear()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: labels must be the digits 0-9, found 0..12"):
        data.load_arrays("mnist", str(folder))
    data._load_idx_source.cache_clear()
    assert not list((tmp_path / "cache").glob("*/meta.json"))  # nothing cached from them


@pytest.mark.parametrize("name, images, labels, message", [
    ("float pixels", np.full((60, 28, 28), 1e30, ">f4"), np.arange(60) % 10, "expected 8-bit images"),
    ("flat images", np.zeros((60, 784), np.uint8), np.arange(60) % 10, "expected 8-bit images"),
    ("no rows", np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8), "expected 8-bit images"),
    ("float labels", np.zeros((60, 28, 28), np.uint8), np.full(60, 3.5, ">f4"), "labels must be integers"),
    ("smaller images", np.zeros((60, 5, 5), np.uint8), np.arange(60) % 10, "the training images have"),
    ("16 x 16 images", np.zeros((60, 16, 16), np.uint8), np.arange(60) % 10,  # predict could not read its runs
     "images of 16 x 16 pixels; data=mnist reads 28 x 28. Images of another size: data=table with an .npz"),
])
def test_idx_files_with_the_wrong_content_are_named_before_training(tmp_path, monkeypatch, name, images, labels,
                                                                     message):
    from mlpbench.data import DataError
    from tests.conftest import write_idx

    monkeypatch.setenv("MLPBENCH_CACHE", str(tmp_path / "cache"))
    folder = write_fake_mnist(tmp_path / "mnist")
    split = "t10k" if name == "smaller images" else "train"
    write_idx(folder / f"{split}-images-idx3-ubyte", images)
    write_idx(folder / f"{split}-labels-idx1-ubyte", labels if labels.dtype.kind == "f" else labels.astype(np.uint8))
    data._load_idx_source.cache_clear()
    with pytest.raises(DataError, match=message):
        data.load_arrays("mnist", str(folder))
    data._load_idx_source.cache_clear()


def test_an_override_hydra_cannot_read_and_a_folder_it_cannot_write_get_messages(tmp_path):
    proc = run_cli("model.activation=réLU", *TINY, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "model.activation=réLU: Hydra reads a value with letters beyond ASCII" in proc.stderr
    (tmp_path / "a-file").write_text("")
    proc = run_cli("-m", "model.depth=1", *TINY, f"hydra.sweep.dir={tmp_path / 'a-file' / 'sweep'}", cwd=tmp_path)
    assert proc.returncode == 2 and f"cannot write into {tmp_path / 'a-file' / 'sweep'}" in proc.stderr
    assert "Traceback" not in proc.stderr
    # A folder no access check refuses but no one can make (/proc's: even root cannot).
    proc = run_cli(*TINY, "hydra.run.dir=/proc/mlpbench-run", cwd=tmp_path)
    assert proc.returncode == 2 and "hydra.run.dir=/proc/mlpbench-run: cannot write into /proc/mlpbench-run" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_failure_before_training_is_recorded_not_left_running(tmp_path):
    proc = run_cli("-m", "model.depth=1", *TINY, "+callbacks.missing={_target_:nowhere.Callback}",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert proc.returncode == 1
    (row,) = run_rows(tmp_path / "sweep")
    assert row["status"] == "failed"


def test_a_full_disk_ends_the_run_with_one_message_naming_the_path(tmp_path):
    target = tmp_path / "run" / "checkpoints" / "last.ckpt"
    proc = run_cli(*TINY, f"+callbacks.disk={{_target_:tests.faults.DiskFullInSecondEpoch,path:'{target}'}}",
                   f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 1
    assert f"cannot write {target}: No space left on device" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "failed" and result["epochs"] == 1
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_a_second_sweep_into_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    sweep = tmp_path / "sweep"
    # Two seeds: one stack, trained in the sweep's own process (no worker processes to start).
    first = start_cli(["-m", "seed=1,2", "data.limit=400", "trainer.max_epochs=200",
                       f"hydra.sweep.dir={sweep}"], tmp_path)
    try:
        wait_for_file(f"{sweep}/*/checkpoints/last.ckpt", first)
        second = run_cli("-m", "seed=1,2", "data.limit=400", "trainer.max_epochs=200",
                         f"hydra.sweep.dir={sweep}", cwd=tmp_path)
        assert second.returncode == 2 and f"another sweep is running in {sweep}" in second.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    runs = [d for d in sweep.iterdir() if d.is_dir()]
    assert runs and all(len(list(d.glob("events.out.tfevents.*"))) == 1 for d in runs)  # trained by one sweep


def test_a_refused_second_sweep_leaves_the_first_sweeps_folder_as_it_was(tmp_path):
    import fcntl

    # The first sweep in its first seconds: its lock and config written, no run folder yet.
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    with open(sweep / ".sweep.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        second = run_cli("-m", "seed=1,2", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
        assert second.returncode == 2 and f"another sweep is running in {sweep}" in second.stderr
        assert sorted(p.name for p in sweep.iterdir()) == [".sweep.lock", "multirun.yaml"]


def test_a_lock_taken_for_an_instant_to_ask_does_not_refuse_a_sweep_starting_then(tmp_path, monkeypatch):
    import threading

    from mlpbench import files
    from mlpbench.files import locked_elsewhere, try_lock

    lock = tmp_path / ".sweep.lock"
    asking = try_lock(lock)  # what locked_elsewhere holds while it asks (a report of the folder)
    threading.Timer(0.01, asking.close).start()
    starting = try_lock(lock, wait=30)  # let go while this one waits: taken
    assert starting is not None
    assert locked_elsewhere(lock) and try_lock(lock, wait=0.05) is None  # held for good: refused
    with monkeypatch.context() as patched:  # this process's own lock (a sweep's own report): known, not waited for
        patched.setattr(files.time, "sleep", lambda seconds: pytest.fail("waited for this process's own lock"))
        assert locked_elsewhere(lock)
    starting.close()
    assert not locked_elsewhere(lock)


def test_a_huge_grid_is_refused_at_once_and_a_search_reports_its_own_settings(tmp_path):
    proc = run_cli("-m", "model.depth=range(0,100000)", cwd=tmp_path)
    assert proc.returncode == 2 and "the grid has 100,000 runs" in proc.stderr
    search = run_cli("experiment=tune_units", "tune.n_trials=0", cwd=tmp_path)
    assert search.returncode == 2 and "tune.n_trials=0: must be an integer >= 1" in search.stderr
    assert "tune.space" not in search.stderr


def test_a_corrupt_study_is_named(tmp_path):
    study = tmp_path / "outputs" / "tune" / "tune_units"
    study.mkdir(parents=True)
    (study / "study.db").write_bytes(b"this is not a database" * 100)
    proc = run_cli("experiment=tune_units", "tune.n_trials=1", *TINY, cwd=tmp_path)
    assert proc.returncode == 2 and "outputs/tune/tune_units/study.db: cannot open the study" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_report_passes_over_json_that_is_no_run(tmp_path):
    from mlpbench import report
    from tests.test_report import fake_run

    fake_run(tmp_path / "sweep", ["model.depth=1"], [0.5])
    (tmp_path / "sweep" / "other").mkdir()
    (tmp_path / "sweep" / "other" / "result.json").write_text("[1, 2]")
    assert report.main([str(tmp_path / "sweep"), "--no-plots"]) == 0
    assert len(run_rows(tmp_path / "sweep")) == 1


def test_names_and_table_cells_stay_what_they_are():
    long = "model.label=" + "é" * 150
    assert len(run_name(long, 0).encode()) <= 255
    table = markdown(["value"], [{"value": "a|b"}, {"value": "<img src=x onerror=alert(1)>"}])
    assert "a\\|b" in table and "<img" not in table and table.count("\n") == 4


def test_a_dead_worker_fails_its_run_and_the_sweep_ends_with_its_report(tmp_path):
    import subprocess

    sweep = tmp_path / "sweep"
    proc = start_cli(["-m", "model.depth=1,2,3", "data.limit=400", "trainer.max_epochs=300",
                      "trainer.enable_progress_bar=false", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                      f"hydra.sweep.dir={sweep}"], tmp_path)
    wait_for_file(f"{sweep}/*/checkpoints/last.ckpt", proc)
    workers = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "LokyProcess"], capture_output=True,
                             text=True).stdout.split()
    os.kill(int(workers[0]), signal.SIGKILL)  # as the OOM killer would
    output = proc.communicate()[0]
    assert proc.returncode == 1
    assert "A worker process died" in output and "resume=true" in output and "Traceback" not in output
    rows = run_rows(sweep)
    assert rows and {r["status"] for r in rows} <= {"failed", "ok"} and "failed" in {r["status"] for r in rows}
    failed = [json.loads(p.read_text()) for p in sweep.glob("*/result.json")]
    assert {f["error"]["type"] for f in failed if f["status"] == "failed"} == {"WorkerDied"}
    assert "validated against ConfigStore schema" not in output
