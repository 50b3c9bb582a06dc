"""What a user reads on the terminal: the progress bar, the epoch lines, and errors without tracebacks."""

import logging
import os
import subprocess
import sys

from tests.conftest import REPO, make_config, run_cli


def test_the_progress_bar_counts_batches_of_the_epoch_the_log_names(tmp_path, capsys):
    from mlpbench.run import train

    overrides = ["data.limit=500", "trainer.max_epochs=2", "trainer.enable_progress_bar=true"]
    train(make_config(*overrides), tmp_path, overrides)
    bar = capsys.readouterr().out
    # 400 training rows at 32 a batch: 13 batches, counted as such although they come in one chunk.
    assert "Epoch 1/2: 100%" in bar and "Epoch 2/2: 100%" in bar and "13/13" in bar
    assert "Epoch 0" not in bar and "Validation" not in bar and "v_num" not in bar
    assert "loss=" in bar and "val_acc=" in bar


def test_epoch_lines_every_n_epochs_keep_the_first_and_the_last(tmp_path, caplog):
    from mlpbench.run import train

    overrides = ["experiment=xor", "trainer.max_epochs=250", "trainer.enable_progress_bar=false"]
    with caplog.at_level(logging.INFO, logger="mlpbench"):
        train(make_config(*overrides), tmp_path, overrides)
    epochs = [r.args[0] for r in caplog.records if r.msg.startswith("Epoch %d/%d")]
    assert epochs == [1, 100, 200, 250]  # the preset logs every 100th of its 1,000 epochs


def test_log_lines_start_on_their_own_line_while_a_bar_is_drawn(tmp_path):
    proc = run_cli("data.limit=300", "trainer.max_epochs=2", "trainer.enable_progress_bar=true",
                   f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.replace("\r", "\n").splitlines()
    epoch_lines = [line for line in lines if "Epoch 1/2 - " in line or "Epoch 2/2 - " in line]
    assert len(epoch_lines) == 2 and all(line.startswith("[") for line in epoch_lines)  # not after the bar


def test_a_run_refused_by_a_config_check_leaves_no_folder_and_nothing_else_is_removed(tmp_path):
    run_dir = tmp_path / "runs" / "one"
    proc = run_cli("model.depth=-1", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 2 and "model.depth=-1: must be an integer in [0, 1000]" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "runs").exists()  # refused before Hydra made it
    # A folder of the user's, named as the run's folder: only what Hydra wrote into it goes.
    (run_dir / ".hydra").mkdir(parents=True)
    for name in ("notes.log", ".hydra/mine.yaml"):
        (run_dir / name).write_text("")
    assert run_cli("model.depth=-1", f"hydra.run.dir={run_dir}", cwd=tmp_path).returncode == 2
    assert sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")) == [".hydra", ".hydra/mine.yaml",
                                                                                   "notes.log"]
    # Refused once Hydra made the folder (its data cannot be read): the folder goes too.
    proc = run_cli("data=table", "data.path=nope.csv", "data.target=label", cwd=tmp_path)
    assert proc.returncode == 2 and "data.path=nope.csv: no such file" in proc.stderr
    assert not (tmp_path / "outputs").exists()
    # Folders of the user's above the run's, empty, stay.
    (tmp_path / "results" / "exp1").mkdir(parents=True)
    proc = run_cli("data=table", "data.path=nope.csv", "data.target=label", "hydra.run.dir=results/exp1/run1",
                   cwd=tmp_path)
    assert proc.returncode == 2 and sorted(p.name for p in (tmp_path / "results").rglob("*")) == ["exp1"]


def test_help_into_a_pipe_its_reader_closed_ends_without_a_traceback(tmp_path):
    # `mlpbench --help | head -3`: head may be gone before the page is written.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "mlpbench", "--help"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before the interpreter has even started
    error = proc.stderr.read()
    proc.wait()
    assert "Traceback" not in error and "BrokenPipe" not in error, error


def test_outside_its_environment_the_tool_says_what_to_do(tmp_path):
    # -S: a Python without site-packages, as the system's python3 is after `make setup`; from the
    # project folder, where the package itself is importable.
    for module in ("mlpbench", "mlpbench.report"):
        proc = subprocess.run([sys.executable, "-S", "-m", module, "model.depth=2"], cwd=REPO,
                              capture_output=True, text=True)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "lacks mlpbench's dependencies" in proc.stderr and "source .venv/bin/activate" in proc.stderr


def test_a_console_line_is_written_whole_so_worker_processes_sharing_the_console_do_not_splice_lines():
    """Worker processes write to one console: a line and its end in one write, else another
    process's line lands between them ('... (104,906 params)[2026-...')."""
    import logging

    from mlpbench.console import BarSafeHandler

    class Writes:
        def __init__(self):
            self.calls = []

        def write(self, text):
            self.calls.append(text)

        def flush(self):
            pass

    stream = Writes()
    handler = BarSafeHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.emit(logging.LogRecord("mlpbench", logging.INFO, __file__, 1, "Run a: 3 params\n----\nLayer", None, None))
    assert [c for c in stream.calls if c] == ["Run a: 3 params\n----\nLayer\n"]
