"""The package as a user installs it: a wheel into a fresh environment, run from another folder;
and the layout's promise that the grid path never loads the search."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import REPO

IGNORED = shutil.ignore_patterns(".git", ".venv", "outputs", "build", "dist", "*.egg-info", "__pycache__",
                                 ".pytest_cache")


def _fresh_environment(path: Path) -> Path:
    """A new virtual environment without mlpbench, which sees this environment's other packages
    (torch, Lightning, ...) through a .pth file: pip resolves mlpbench's dependencies against
    constraints.txt from what is installed, with no download."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    ours = Path(sysconfig.get_paths()["purelib"])
    shared = path / "shared-packages"
    shared.mkdir()
    for entry in ours.iterdir():  # everything but mlpbench itself (installed editable here)
        if "mlpbench" not in entry.name:
            (shared / entry.name).symlink_to(entry)
    (site / "shared-packages.pth").write_text(f"{shared}\n")
    return python


def test_the_wheel_installs_into_a_fresh_environment_and_runs_from_any_folder(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=IGNORED)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(tmp_path / "dist"), str(source)], check=True)
    (wheel,) = (tmp_path / "dist").glob("mlpbench-*.whl")
    python = _fresh_environment(tmp_path / "env")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index",
                              "--disable-pip-version-check", "-c", str(REPO / "constraints.txt"), str(wheel)],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYDRA_FULL_ERROR")}
    script = tmp_path / "env" / "bin" / "mlpbench"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(script), *args], cwd=work, env=env, capture_output=True, text=True)

    located = subprocess.run([str(python), "-c", "import mlpbench, mlpbench.conf; print(mlpbench.__file__)"],
                             cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    assert str(tmp_path / "env") in located and str(REPO) not in located  # the wheel's copy, not the checkout

    helped = run("--help")
    assert helped.returncode == 0, helped.stderr
    assert "experiment: activations, optimizers" in helped.stdout and "max_epochs: 10" in helped.stdout

    # A single run into mlpbench's own folder (outputs/run/<date>/<time>, its resolver's), which
    # loads no module of the search: cli() ends the process after the exit functions, and one of
    # those lists the modules.
    code = ("import atexit, sys\n"
            "from mlpbench.__main__ import cli\n"
            "sys.argv = ['mlpbench', 'data.limit=200', 'trainer.max_epochs=1']\n"
            "atexit.register(lambda: print(sorted(m for m in sys.modules\n"
            "                                     if m.startswith('mlpbench.tune') or m.startswith('optuna'))))\n"
            "cli()\n")
    single = subprocess.run([str(python), "-c", code], cwd=work, env=env, capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    (result,) = (work / "outputs" / "run").glob("*/*/result.json")
    assert json.loads(result.read_text())["status"] == "ok"
    assert single.stdout.strip().splitlines()[-1] == "[]"

    # A sweep through mlpbench's own sweeper (seed=auto: 3 seeds of one setting, one round).
    one = run("-m", "data.limit=200", "trainer.max_epochs=1", "seed=auto", "hydra.sweep.dir=one",
              "hydra.launcher.workers=1")
    assert one.returncode == 0, one.stderr
    results = [json.loads(p.read_text()) for p in sorted((work / "one").glob("*/result.json"))]
    assert [(r["config"]["seed"], r["status"], r["epochs"]) for r in results] == [(1, "ok", 1), (2, "ok", 1),
                                                                                  (3, "ok", 1)]

    search = run("experiment=tune_units", "data.limit=200", "trainer.max_epochs=2", "tune.n_trials=2",
                 "trainer.enable_progress_bar=false")
    assert search.returncode == 0, search.stderr
    trials = (work / "outputs" / "tune" / "tune_units" / "trials.csv").read_text().splitlines()
    assert len(trials) == 1 + 2 and "Best number of units:" in search.stdout


def test_plus_experiment_says_how_presets_are_chosen_now(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mlpbench", "+experiment=xor"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "presets are chosen with experiment=xor" in proc.stderr
    assert "Traceback" not in proc.stderr


def _pins(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(re.split("===?", line, maxsplit=1) for line in lines if line and not line.startswith("#"))


def test_the_cuda_constraints_pin_what_the_cpu_ones_do_with_the_cuda_build_of_torch():
    cpu, cuda = _pins(REPO / "constraints.txt"), _pins(REPO / "constraints-cuda.txt")
    assert cpu["torch"] == cuda["torch"] + "+cpu" and "+" not in cuda["torch"]  # PyPI's Linux wheel: CUDA
    # `===`: that version string exactly; `==2.13.0` would take a local 2.13.0+cpu wheel too.
    assert "torch===2.13.0" in (REPO / "constraints-cuda.txt").read_text().splitlines()
    assert not any("+cpu" in version for version in cuda.values())
    assert {k: v for k, v in cpu.items() if k != "torch"} == {k: v for k, v in cuda.items() if k != "torch"}
    makefile = (REPO / "Makefile").read_text()
    assert "constraints-cuda.txt" in makefile and "TORCH ?=" in makefile
    # The documented command: README says how to set up on a GPU machine.
    assert "make setup TORCH=cuda" in (REPO / "README.md").read_text()


def test_the_tests_forked_command_is_the_command_a_fresh_interpreter_runs(tmp_path):
    """run_cli forks its commands from a process that imported torch, Lightning and Hydra already
    (tests/forked_cli.py): what they print, write and exit with must be a fresh `python -m
    mlpbench`'s, or the other tests would test something else."""
    from tests.conftest import run_cli

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.pop("HYDRA_FULL_ERROR", None)

    def fresh(*args):
        return subprocess.run([sys.executable, "-m", "mlpbench", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True)

    refused = ("model.depth=-1", "model.units=[3]")
    a, b = run_cli(*refused, cwd=tmp_path), fresh(*refused)
    assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr) and a.returncode == 2
    run = ("data.limit=100", "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
           "+callbacks.lightning_logs={_target_:tests.faults.LightningLogs}")
    a, b = run_cli(*run, f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path), fresh(*run, f"hydra.run.dir={tmp_path / 'b'}")
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert len(a.stdout.splitlines()) == len(b.stdout.splitlines()) and len(a.stderr.splitlines()) == len(b.stderr.splitlines())
    for proc, name in ((a, "a"), (b, "b")):  # Lightning's records go where mlpbench's go
        assert "[lightning.pytorch.trainer][WARNING] - a warning of Lightning's own" in proc.stdout
        assert "a warning of Lightning's own" in (tmp_path / name / "run.log").read_text()
    first, second = (json.loads((tmp_path / name / "result.json").read_text()) for name in "ab")
    first["history"].pop("epoch_seconds"), second["history"].pop("epoch_seconds")
    assert first["history"] == second["history"] and len(first["history"]["val_loss"]) == 2
    assert first["threads"] == second["threads"] and first["device"] == second["device"]
