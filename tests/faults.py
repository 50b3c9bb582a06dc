"""Faults for tests to inject into real runs through the config (`+callbacks.NAME={_target_: ...}`)."""

import lightning.pytorch as pl


class CrashInSecondEpoch(pl.Callback):
    """Raises at the start of the second epoch, in the runs whose model has `depth` hidden layers."""

    def __init__(self, depth: int):
        self.depth = depth

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1 and len(pl_module.model.hidden_blocks) == self.depth:
            raise RuntimeError("injected crash in epoch 2")


class DiskFullInSecondEpoch(pl.Callback):
    """The disk fills up at the start of the second epoch, as a checkpoint or result.json write
    would find it."""

    def __init__(self, path: str):
        self.path = path

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1:
            import errno
            import os

            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)


class LightningLogs(pl.Callback):
    """Logs a warning on Lightning's own logger as training starts, as Lightning does of what it
    finds: it must reach the console and run.log as mlpbench's lines do."""

    def on_train_start(self, trainer, pl_module) -> None:
        import logging

        logging.getLogger("lightning.pytorch.trainer").warning("a warning of Lightning's own")


class WaitAtStart(pl.Callback):
    """Built as its run starts, before Lightning's signal handlers are in place: leaves a file
    `waiting-PID` in `folder`, then waits there until its process is asked to stop (a sweep's
    worker, mlpbench.sweep.STOP_ASKED) or, without that, for `seconds`."""

    def __init__(self, folder: str, seconds: float = 60):
        import os
        from pathlib import Path

        from mlpbench.sweep import STOP_ASKED

        Path(folder, f"waiting-{os.getpid()}").touch()
        STOP_ASKED.wait(seconds)


class CtrlCOnceInSecondEpoch(pl.Callback):
    """Ctrl-C at the start of the second epoch, once: the file `marker` says it happened (a rerun
    of the same command, with this callback, trains on)."""

    def __init__(self, marker: str):
        self.marker = marker

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        from pathlib import Path

        if trainer.current_epoch == 1 and not Path(self.marker).exists():
            Path(self.marker).touch()
            raise KeyboardInterrupt


class DeleteFolderOnce(pl.Callback):
    """At the start of training, once (the file `marker` says it happened), delete `folder`: a
    run of the sweep that has not started yet, as a user's rm while the sweep runs."""

    def __init__(self, folder: str, marker: str):
        self.folder, self.marker = folder, marker

    def on_train_start(self, trainer, pl_module) -> None:
        import shutil
        from pathlib import Path

        if not Path(self.marker).exists():
            Path(self.marker).touch()
            shutil.rmtree(self.folder)


class EditFileOnce(pl.Callback):
    """At the end of training, once (the file `marker` says it happened), add `line` to the file
    `path`: a user's edit of the data while the sweep runs."""

    def __init__(self, path: str, line: str, marker: str):
        self.path, self.line, self.marker = path, line, marker

    def on_train_end(self, trainer, pl_module) -> None:
        from pathlib import Path

        if not Path(self.marker).exists():
            Path(self.marker).touch()
            with open(self.path, "a") as f:
                f.write(self.line + "\n")
