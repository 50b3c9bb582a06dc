"""What a run prints on a terminal: a progress bar counted in batches, with the epoch numbered
as the log numbers it and the running loss, and log lines that keep off the bar's line.

This module is imported when Hydra sets up logging (conf/config.yaml names BarSafeHandler), so
it imports nothing heavy at the top: Lightning only once a run builds its bar.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from typing import NoReturn

# A command refused for its input (an option's value, a folder in use): argparse's code for a
# usage error (Hydra's own refusals exit 1).
EXIT_BAD_INPUT = 2


def exit_at_once(code: int = 0) -> NoReturn:
    """The process's end without the interpreter's teardown, which spends 1.1-1.5 s freeing
    torch's and Lightning's modules one by one (measured; longer than a small sweep's training):
    the log and the output flushed, then gone. The caller has run what must run at exit."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def print_out(text: str) -> None:
    """`text` on stdout, quietly cut short where its reader closed the pipe (`| head`: the reader
    has what it wanted), instead of a BrokenPipeError traceback."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own exit flush would fail


def refuse(message: str) -> NoReturn:
    """A command refused before it trains: one line that names the option and what is allowed,
    no traceback."""
    print(f"mlpbench: error: {message}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


class BarSafeHandler(logging.StreamHandler):
    """The console handler of Hydra's job logging. A line logged while a progress bar is drawn
    goes above the bar on a line of its own (tqdm.write clears the bar, prints, redraws it);
    a record logged with extra={"console": False} (a sweep's later model summaries) goes only
    to the run's log file."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "console", True) is False:
            return
        try:
            from tqdm import tqdm

            # One write of the line and its end: tqdm.write's two let another process's line in
            # between where worker processes share the console ("...params)[2026-...").
            tqdm.write(self.format(record) + self.terminator, file=self.stream, end="")
            self.flush()
        except Exception:
            self.handleError(record)


def command(name: str) -> str:
    """One of the environment's commands (tensorboard) as the user can type it here: its name
    where the shell finds this environment's, else its path (the environment is not activated)."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(here) or shutil.which(name) == here:
        return name
    relative = os.path.relpath(here)  # .venv/bin/tensorboard from the project folder
    return here if relative.startswith("..") else relative


def progress_bar():
    """Lightning's tqdm bar, counting optimizer steps rather than Lightning's steps (chunks of
    trainer.steps_per_chunk batches: data.TensorBatches), titled `Epoch 3/10` as the epoch log
    line is, and showing the epoch's running loss and accuracy as Keras' bar does. Validation
    and test take a blink on these datasets: no bars of their own."""
    from lightning.pytorch.callbacks import TQDMProgressBar
    from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

    class EpochBar(TQDMProgressBar):
        def init_validation_tqdm(self):
            return Tqdm(disable=True)

        def init_test_tqdm(self):
            return Tqdm(disable=True)

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            bar = self.train_progress_bar
            bar.reset(total=getattr(trainer.train_dataloader, "batches", None))
            bar.initial = 0
            bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            _, y, batch_size = batch
            self.train_progress_bar.n += -(-y.shape[-1] // batch_size)  # rows: the last index (stacked: (K, rows))
            self._show(trainer, pl_module)

        def on_validation_end(self, trainer, pl_module) -> None:
            super().on_validation_end(trainer, pl_module)
            if trainer.state.fn == "fit":  # validation inside training: keep the epoch's loss shown
                self._show(trainer, pl_module)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            pass  # the bar already shows the epoch's loss and validation metrics

        def _show(self, trainer, pl_module) -> None:
            if self.train_progress_bar.disable:  # DDP's other ranks
                return
            # Two numbers read once a chunk (64 steps): free on the CPU, one sync a chunk on a GPU.
            loss, score = pl_module.running_means()
            self.train_progress_bar.set_postfix(  # score: acc, or a regression's r2 (beside val_r2)
                {"loss": f"{loss:.4f}", pl_module.score: f"{score:.4f}", **self.get_metrics(trainer, pl_module)},
                refresh=False)
            self.train_progress_bar.refresh()

        def get_metrics(self, trainer, pl_module):
            metrics = super().get_metrics(trainer, pl_module)
            metrics.pop("v_num", None)  # TensorBoard's version folder: always empty here
            return metrics

    return EpochBar()
