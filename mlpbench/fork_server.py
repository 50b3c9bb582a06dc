"""The stacked launcher's fork server (hydra_plugins/mlpbench_stacked: multiprocessing's
forkserver, this module preloaded): the process each worker is forked from, which imports what
every worker imports once, where spawn imported it in every worker.

SIGTERM, sent to the command's whole process group (`kill -TERM -PGID`, a batch system ending a
job): the server outlives it, because the sweep ends its workers itself, keeping their runs, and a
worker takes its server's end for its sweep's (PR_SET_PDEATHSIG). The server ends with the sweep's
process (multiprocessing closes it then, or it reads the sweep's death), and removes that
process's multiprocessing temp folder, which holds the server's socket: the sweep's own exit
removes it, but one killed with kill -9 left a /tmp/pymp-* folder. A worker forked from it,
before it sets its own handler, dies of SIGTERM as a spawned one would.

The server's own end skips the interpreter's teardown: that took 1.7 s after the sweep's end,
while the server held the command's output open (a reader of a pipe waited for it). It ends with
the sweep's process at once, even during its imports. It starts with Ctrl-C ignored (the
launcher's `_start_fork_server`), and so do its workers until they set their own handling."""

import atexit
import ctypes
import importlib
import os
import shutil
import signal

_SERVER, _SWEEP = os.getpid(), os.getppid()
# The sweep's multiprocessing temp folder, given by the launcher (FORK_SERVER_FOLDER) to this
# process alone: taken out of the environment its workers inherit.
_FOLDER = os.environ.pop("MLPBENCH_FORK_SERVER_FOLDER", None)


def _remove_folder() -> None:
    """The sweep's temp folder, once its process has ended (gone already after its own exit)."""
    if _FOLDER:
        shutil.rmtree(_FOLDER, ignore_errors=True)


def _on_sigterm(signum, frame) -> None:
    if os.getpid() == _SERVER:
        if os.getppid() != _SWEEP:  # the sweep's process died (PR_SET_PDEATHSIG), no group's SIGTERM
            _remove_folder()
            os._exit(143)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _end() -> None:
    """The server's end where multiprocessing closes it (the sweep's process closed the server's
    pipe as it ended): the folder removed too, which the SIGTERM just after would come too late for."""
    _remove_folder()
    exit_at_once()


signal.signal(signal.SIGTERM, _on_sigterm)
try:  # the server ends with the sweep's process at once, its imports unfinished too (PR_SET_PDEATHSIG):
    # SIGTERM, which _on_sigterm takes, to remove the folder first (SIGKILL left it)
    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)
except (OSError, AttributeError):
    pass
importlib.import_module("mlpbench.stacked")  # torch, Lightning
from mlpbench.console import exit_at_once  # noqa: E402

atexit.register(_end)  # after those imports: runs first of the exit functions
