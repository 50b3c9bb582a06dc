"""`python -m mlpbench` for the tests, without its imports: a server process that has imported
what every command imports first (torch, Lightning, Hydra: 4-5 s of a command's 6 on 2 cores,
most of the suite's time) forks one child per command. The child is the command as a fresh
interpreter runs it: its own process, arguments, folder, environment, stdin (empty), stdout and
stderr, exceptions printed and exit code as Python gives them, and Python's own exit (its threads
waited for, exit functions run). A command started in the background (start_cli) is also the
leader of its own process group, with the signal handling a fresh interpreter starts with (Ctrl-C
a KeyboardInterrupt, SIGTERM the system's default), so that a test signals or kills it, or its
whole group, as a user would. What only a fresh interpreter shows (import order, environment read
at import) is tested with fresh processes: `start_cli(..., fresh=True)`, tests/test_packaging.py.
Known differences: the children share one hash seed (a fresh interpreter draws its own), and a
traceback out of a command shows this server's frames too.

Protocol: one JSON line per request on the server's stdin, one line back on its stdout:
- a command ({args, cwd, env}): once it has ended and every process holding its output has
  closed it (its own worker processes too), as subprocess.run waits: {code, stdout, stderr}, the
  output base64-encoded bytes;
- a command in the background ({args, cwd, env, output}: its stdout and stderr into the file
  `output`): at once, {pid};
- {wait: pid, block}: a background command's exit code as subprocess.Popen gives it (-N for
  signal N), or null while it runs (block false)."""

import base64
import json
import os
import selectors
import sys

# Imported once, in the server; a command imports the rest (mlpbench itself included) as usual.
PRELOADED = ("lightning.pytorch", "hydra", "hydra.main", "omegaconf", "torch.utils.tensorboard")


def serve() -> None:
    import logging

    # Lightning keeps its records from the root logger where that has no handler when it is
    # imported; a command imports it after Hydra's logging is set up: as there.
    placeholder = logging.NullHandler()
    logging.getLogger().addHandler(placeholder)
    for module in PRELOADED:
        __import__(module)
    logging.getLogger().removeHandler(placeholder)
    exit_codes: dict[int, int] = {}  # background commands already waited for
    for line in sys.stdin:
        request = json.loads(line)
        if "wait" in request:
            reply = {"code": _exit_code(request["wait"], request["block"], exit_codes)}
        elif request.get("output"):
            reply = {"pid": _start_in_background(request)}
        else:
            reply = _run_to_end(request)
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def _run_to_end(request: dict) -> dict:
    (out_read, out_write), (err_read, err_write) = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_read)
        os.close(err_read)
        _run_command(request, out_write, err_write)  # raises SystemExit (or the command's error): the child ends
    os.close(out_write)
    os.close(err_write)
    out, err = _read_to_end(out_read, err_read)
    _, status = os.waitpid(pid, 0)
    return {"code": os.waitstatus_to_exitcode(status), "stdout": base64.b64encode(out).decode(),
            "stderr": base64.b64encode(err).decode()}


def _start_in_background(request: dict) -> int:
    import signal

    pid = os.fork()
    if pid == 0:
        os.setsid()  # as subprocess.Popen(start_new_session=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        output = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        _run_command(request, output, os.dup(output))  # the child ends there
    return pid


def _exit_code(pid: int, block: bool, exit_codes: dict[int, int]) -> int | None:
    if pid not in exit_codes:
        ended, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if ended == 0:
            return None
        exit_codes[pid] = os.waitstatus_to_exitcode(status)
    return exit_codes[pid]


def _read_to_end(*fds: int) -> list[bytes]:
    chunks: dict[int, list[bytes]] = {fd: [] for fd in fds}
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select():
                data = os.read(key.fd, 1 << 16)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
                    os.close(key.fd)
    return [b"".join(chunks[fd]) for fd in fds]


def _run_command(request: dict, stdout: int, stderr: int) -> None:
    import runpy

    # The server's request and reply channels (fds 0 and 1) become the command's stdin and output.
    null = os.open(os.devnull, os.O_RDONLY)
    for source, fd in ((null, 0), (stdout, 1), (stderr, 2)):
        os.dup2(source, fd)
        os.close(source)
    import tempfile

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # read again from this environment's TMPDIR
    sys.path[0] = request["cwd"]  # as `python -m` puts the folder it starts in first
    sys.argv = ["-m", *request["args"]]  # run_module sets argv[0] to the module's file, as -m does
    runpy.run_module("mlpbench", run_name="__main__", alter_sys=True)
    sys.exit(0)


if __name__ == "__main__":
    serve()
