"""The stacked launcher's fork server (hydra_plugins/mlpbench_stacked: multiprocessing's
forkserver, this module preloaded): the process each worker is forked from, which imports what
every worker imports once, where spawn imported it in every worker.

SIGTERM, sent to the command's whole process group (`kill -TERM -PGID`, a batch system ending a
job): the server outlives it, because the sweep ends its workers itself, keeping their runs, and a
worker takes its server's end for its sweep's (PR_SET_PDEATHSIG). The server ends with the sweep's
process (multiprocessing closes it then, or it reads the sweep's death). A worker forked from it,
before it sets its own handler, dies of SIGTERM as a spawned one would.

The server's own end skips the interpreter's teardown: that took 1.7 s after the sweep's end,
while the server held the command's output open (a reader of a pipe waited for it). It ends with
the sweep's process at once, even during its imports. It starts with Ctrl-C ignored (the
launcher's `_start_fork_server`), and so do its workers until they set their own handling."""

import atexit
import ctypes
import importlib
import os
import signal

_SERVER = os.getpid()


def _on_sigterm(signum, frame) -> None:
    if os.getpid() == _SERVER:
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


signal.signal(signal.SIGTERM, _on_sigterm)
try:  # the server ends with the sweep's process at once, its imports unfinished too (PR_SET_PDEATHSIG)
    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
except (OSError, AttributeError):
    pass
importlib.import_module("mlpbench.stacked")  # torch, Lightning
from mlpbench.console import exit_at_once  # noqa: E402

atexit.register(exit_at_once)  # after those imports: runs first of the exit functions
