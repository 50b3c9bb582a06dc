"""What a run writes for TensorBoard: one event file (run_logger), and what its HParams dashboard
shows of the run: the keys that matter, not every key of the config.

Each run writes a session start (its hyperparameters) when it starts and a session end (its
status) when it stops, and no experiment summary: TensorBoard then builds the experiment from
all sessions under --logdir, marks the keys whose values differ between runs (what was swept)
and lists those first, and offers every scalar tag (acc/val, loss/val, test/acc...) as a
metric column. A run that wrote its own experiment (Lightning's log_hyperparams does) would
mark nothing as differing: the swept key then hides in an alphabetical list.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Optional

from mlpbench.overrides import run_settings
from mlpbench.results import Status, flat_keys

# Besides what the run's overrides set: the keys that say which model was trained, on what
# (model.residual and the BatchNorms: the depth presets differ in them alone).
DEFINING_KEYS = ("data.source", "data.batch_size", "model.depth", "model.units", "model.activation",
                 "model.residual", "model.input_bn", "model.hidden_bn", "model.dropout", "optim.name", "optim.lr",
                 "trainer.max_epochs", "seed")

# How a finished run's session ends; an interrupted one writes no end: it continues on resume.
_SESSION_STATUS = {Status.ok: "STATUS_SUCCESS", Status.pruned: "STATUS_SUCCESS", Status.diverged: "STATUS_FAILURE"}


def run_logger(run_dir: Path, purge_step: Optional[int] = None):
    """Lightning's TensorBoardLogger for one run, writing one event file. Lightning finalizes a
    Trainer's logger after fit and again after test, and TensorBoardLogger closes its writer
    then: the test metrics and the session end each opened a file of their own (three per run).
    Here finalize flushes and keeps the file; `close()` at the run's end closes it. A resumed run
    adds one file per attempt (TensorBoard reads them as one run; purge_step drops what a killed
    attempt logged past its checkpoint)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    class RunLogger(TensorBoardLogger):
        def finalize(self, status: str) -> None:
            if self._experiment is not None:
                self._experiment.flush()
            if status == "success":
                self.save()

        def close(self) -> None:
            super().finalize("success")

        def close_failed(self) -> None:
            """After a failure: the writer's file and thread closed (a stacked worker lives on to
            train the next group), whatever the disk that may have failed the run says."""
            try:
                super().finalize("failed")
            except Exception:  # noqa: BLE001 - the run's own error is the news
                pass

    return RunLogger(save_dir=str(run_dir), name="", version="", default_hp_metric=False, purge_step=purge_step)


def run_hparams(config: dict[str, Any], overrides: Iterable[str], experiment: Optional[str] = None) -> dict[str, Any]:
    """{key: value} for one run: its preset (`experiment`), the keys its overrides set, then
    DEFINING_KEYS. Values as the resolved config has them (numbers stay numbers, so TensorBoard
    sorts and filters them as such); a group choice (optim=sgd) and a list as text, as the
    command line and the report write it ([256,128], ['Zip Code']). A null is left out: an empty
    cell (a key of numbers would otherwise hold a text)."""
    flat = flat_keys(config)
    chosen: dict[str, Any] = {"experiment": experiment}
    for key, written in run_settings(overrides).items():
        value = flat.get(key, written)
        chosen[key] = written if isinstance(value, (list, tuple)) else value
    for key in DEFINING_KEYS:
        if key in flat:
            chosen.setdefault(key, flat[key])
    return {key: value if isinstance(value, (bool, int, float, str)) else _as_text(value)
            for key, value in chosen.items() if value is not None}


def _as_text(value: Any) -> str:
    """A value not set on the command line, as it would be written there: [256,128]."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_as_text(v) for v in value) + "]"
    return str(value)


def write_session_start(writer, hparams: dict[str, Any]) -> None:
    """`writer`: a torch SummaryWriter (Lightning's TensorBoardLogger.experiment)."""
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for key, value in hparams.items():
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[key].number_value = value
        else:
            start.hparams[key].string_value = value
    _write(writer, metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start))


def write_session_end(writer, status: Status) -> None:
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(_SESSION_STATUS[Status(status)]),
                                         end_time_secs=time.time())
    _write(writer, metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))


def _write(writer, tag: str, plugin_data) -> None:
    # tensorboard.plugins.hparams.summary builds these with TensorFlow; the protos need none.
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata

    summary = Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(plugin_data))])
    writer._get_file_writer().add_summary(summary)  # as Lightning's log_hyperparams writes it
    writer.flush()
