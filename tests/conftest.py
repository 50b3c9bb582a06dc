import csv
import glob
import gzip
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One torch thread in each test process and in every command it starts (OpenMP reads this when
# torch starts, so before any import of it). Two test processes share the 2 cores (pytest -n 2), and
# torch's own choice, a thread per core in each, oversubscribes them: waiting OpenMP threads spin.
# Two tutorial-sized training loops side by side took 8.9x as long at 2 threads each as at one
# (n = 5, 95% interval 2.7x-29.7x); test_sweeps.py and test_stacked.py under -n 2, 0.73x the time
# at one thread (docs/tests.md). Runs' numbers do not depend on the thread count
# (mlpbench/model.py); tests of a thread count set theirs.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mlpbench.run import compose_config

REPO = Path(__file__).resolve().parent.parent


def _gpu() -> bool:
    import torch

    return torch.cuda.is_available()


# Where the tests' runs train (trainer.accelerator=auto): a GPU where torch sees one (make
# gpu-check runs the stacked, optimizer, speed-path and precision tests there), else the CPU.
# Stacked replicas give their runs' numbers to the bit on the CPU, to rounding on a GPU.
ON_GPU = _gpu()
# Commands forked from a process that imported torch, Lightning and Hydra (tests/forked_cli.py);
# on a GPU (CUDA cannot be used in a child forked after it started) or without fork, fresh.
FORKED = not ON_GPU and hasattr(os, "fork")
GPU_TOLERANCE = 1e-4


def same_numbers(ours, theirs) -> bool:
    """Two lists of numbers or two tensors alike: equal on the CPU; within GPU_TOLERANCE on a GPU."""
    import torch

    a, b = torch.as_tensor(ours, dtype=torch.float64), torch.as_tensor(theirs, dtype=torch.float64)
    if a.shape != b.shape:
        return False
    return torch.equal(a, b) if not ON_GPU else bool(torch.allclose(a, b, rtol=0, atol=GPU_TOLERANCE))


def make_config(*overrides: str):
    """The config `python -m mlpbench OVERRIDES` would run with (no hydra.* section)."""
    return compose_config(list(overrides))


def run_cli(*args: str, cwd: Path, pool: bool = False) -> subprocess.CompletedProcess:
    """`python -m mlpbench ARGS` in cwd, forked from a process that imported torch, Lightning and
    Hydra already (tests/forked_cli.py); on a GPU (CUDA cannot be used in a child forked after it
    started) or without fork, a fresh interpreter. No time limit: a busy machine is slow, not
    broken. tests/ is importable there, for the faults a test injects (tests/faults.py).
    A sweep that chooses nothing of its launcher trains in this process (hydra.launcher.workers=1):
    the stacked launcher's worker processes, each importing torch and Lightning again (about 7 s
    for a sweep of two tiny runs, of its 14), are tested where they are the point (`pool=True`,
    or an explicit hydra.launcher setting)."""
    if not pool and any(a in ("-m", "--multirun") for a in args) and not any(
            a.lstrip("~+").startswith(("hydra.launcher", "hydra/launcher")) for a in args):
        args = (*args, "hydra.launcher.workers=1")
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.pop("HYDRA_FULL_ERROR", None)
    if not FORKED:
        return subprocess.run([sys.executable, "-m", "mlpbench", *args], cwd=cwd, env=env,
                              capture_output=True, text=True)
    return _forked_cli(list(args), Path(cwd), env)


_server: subprocess.Popen | None = None


def _ask_server(request: dict, env: dict) -> dict:
    """One request to tests/forked_cli.py's server (started with the first), its reply."""
    global _server
    if _server is None or _server.poll() is not None:
        _server = subprocess.Popen([sys.executable, "-m", "tests.forked_cli"], cwd=REPO, env=env, text=True,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        _server.stdin.write(json.dumps(request) + "\n")
        _server.stdin.flush()
        reply = _server.stdout.readline()
        if not reply:
            raise RuntimeError(f"tests/forked_cli.py ended (exit code {_server.wait()})")
        return json.loads(reply)
    except BaseException:  # interrupted mid-command: its reply must not become the next request's
        _server.kill()
        _server.wait()
        _server = None
        raise


def _as_text(data: bytes) -> str:
    """As subprocess.run(text=True) decodes: the locale's encoding, universal newlines."""
    import locale

    text = data.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _forked_cli(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    import base64

    reply = _ask_server({"args": args, "cwd": str(cwd), "env": env}, env)
    return subprocess.CompletedProcess([sys.executable, "-m", "mlpbench", *args], reply["code"],
                                       _as_text(base64.b64decode(reply["stdout"])),
                                       _as_text(base64.b64decode(reply["stderr"])))


class ForkedCommand:
    """start_cli's command, forked by the server in the background: the calls of
    subprocess.Popen the tests make (its pid is the leader of its own process group)."""

    def __init__(self, args: list[str], pid: int, output: Path, env: dict):
        self.args, self.pid, self._output, self._env = args, pid, output, env
        self.returncode: int | None = None

    def _exit_code(self, block: bool) -> int | None:
        if self.returncode is None:
            self.returncode = _ask_server({"wait": self.pid, "block": block}, self._env)["code"]
        return self.returncode

    def poll(self) -> int | None:
        return self._exit_code(block=False)

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            return self._exit_code(block=True)
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.05)
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, None]:
        """Its stdout and stderr together, once it has ended."""
        self.wait(timeout)
        return _as_text(self._output.read_bytes()), None

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


# start_cli's forked commands' output, one file each, for this test session.
_OUTPUTS = tempfile.mkdtemp(prefix="mlpbench-test-output-")


def start_cli(args: list[str], cwd: Path, fresh: bool = False) -> subprocess.Popen | ForkedCommand:
    """`python -m mlpbench ARGS` in the background, in its own process group, with Ctrl-C's
    default handling (background jobs may ignore it); its stdout and stderr together. Forked like
    run_cli's commands (on a GPU, without fork, or `fresh`: a fresh interpreter, a
    subprocess.Popen). tests/ is importable there (tests/faults.py)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if fresh or not FORKED:
        return subprocess.Popen([sys.executable, "-m", "mlpbench", *args], cwd=cwd, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    handle, output = tempfile.mkstemp(prefix="start-cli-", suffix=".txt", dir=_OUTPUTS)
    os.close(handle)
    reply = _ask_server({"args": args, "cwd": str(cwd), "env": env, "output": str(output)}, env)
    return ForkedCommand(args, reply["pid"], Path(output), env)


def wait_until(condition, proc: subprocess.Popen, what: str):
    """Poll `condition()` until it returns something true, for as long as `proc` runs: a slow
    machine only makes this wait longer. Fails if proc ends first."""
    while True:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"the process ended before {what}:\n{proc.communicate()[0]}")
        time.sleep(0.02)


def processes() -> dict[int, tuple[int, int, str, str]]:
    """The machine's live processes: pid -> (parent pid, process group, state, command line)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        found[int(stat.parent.name)] = (int(parent), int(group), state, command)
    return found


def fork_servers(pid: int, found: dict | None = None) -> set[int]:
    """The fork servers (multiprocessing's forkserver, hydra_plugins/mlpbench_stacked) the command
    `pid` started."""
    found = processes() if found is None else found
    return {p for p, (parent, _, _, command) in found.items() if parent == pid and "forkserver" in command}


def fork_server_workers(pid: int) -> list[int]:
    """The stacked launcher's worker processes of the command `pid`: forks of its fork server."""
    found = processes()
    servers = fork_servers(pid, found)
    return [p for p, (parent, _, _, _) in found.items() if parent in servers]


def wait_for_group_end(group: int, what: str) -> None:
    """Wait until no process of the process group `group` lives (a zombie, waiting to be reaped,
    does not): at once, or seconds on a busy machine; fails after 300 s, naming `what` lives on."""
    deadline = time.monotonic() + 300
    while any(g == group and state != "Z" for _, g, state, _ in processes().values()):
        assert time.monotonic() < deadline, f"{what} lives on"
        time.sleep(0.05)


def wait_for_file(pattern: str, proc: subprocess.Popen) -> Path:
    return Path(wait_until(lambda: sorted(glob.glob(pattern)), proc, f"{pattern} appeared")[0])


def summary_rows(sweep: Path) -> list[dict]:
    """summary.csv: a row per setting."""
    with open(sweep / "summary.csv") as f:
        return list(csv.DictReader(f))


def run_rows(sweep: Path) -> list[dict]:
    """runs.csv: a row per run."""
    with open(sweep / "runs.csv") as f:
        return list(csv.DictReader(f))


def only_sweep(cwd: Path) -> Path:
    (sweep,) = (cwd / "outputs" / "multirun").iterdir()
    return sweep


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """A run's TensorBoard scalars: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    array = np.asarray(array)
    if array.dtype == np.int32:
        array = array.astype(">i4")
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    data = header + array.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_fake_mnist(folder: Path, n_train: int = 60, n_test: int = 20, compress: bool = False) -> Path:
    """Four small IDX files shaped like MNIST: digit k is a bright k-th row band."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k: 2 * k + 3, :] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels, compress)
    return folder


def run_in_process(run_dir: Path, *overrides: str) -> dict:
    """A run as `python -m mlpbench OVERRIDES` makes it, in this process; its result.json payload."""
    from mlpbench.run import train

    overrides = (*overrides, "trainer.enable_progress_bar=false")
    return train(make_config(*overrides), run_dir, list(overrides))


@pytest.fixture
def quiet_log():
    """In-process runs log a model summary and a line per epoch: keep pytest's output short."""
    logging.getLogger("mlpbench").setLevel(logging.WARNING)
    yield
    logging.getLogger("mlpbench").setLevel(logging.NOTSET)


# The on-disk array cache (mlpbench/data.py) of this test session, not the user's. Made once, by
# the process that loads this first (pytest-xdist's workers inherit it), which removes it at the
# end: 20 MB of arrays were left in the temporary folder per run of the suite.
_CACHE_MADE_HERE = "MLPBENCH_CACHE" not in os.environ
if _CACHE_MADE_HERE:
    os.environ["MLPBENCH_CACHE"] = tempfile.mkdtemp(prefix="mlpbench-test-cache-")


def pytest_unconfigure(config):
    if _CACHE_MADE_HERE:
        shutil.rmtree(os.environ["MLPBENCH_CACHE"], ignore_errors=True)


def pytest_collection_modifyitems(items):
    """Tests that start the command or a tool's main (each start costs seconds of imports) first,
    the most starts first, the rest in their order: under pytest-xdist the long ones then spread
    over the workers at the start and the short ones fill in at the end, so that no worker ends
    long after the other."""
    import inspect

    def starts(item) -> int:
        try:
            source = inspect.getsource(item.function)
        except (AttributeError, OSError, TypeError):
            return 0
        return sum(source.count(call) for call in ("run_cli(", "start_cli(", "subprocess.run(", ".main("))

    items.sort(key=lambda item: -starts(item))
