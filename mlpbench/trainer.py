"""The Lightning Trainer a run trains with: `trainer.*` (accelerator, precision, devices, ...),
the callbacks `callbacks.*` names, and mlpbench's own (checkpoints, a sweep's stop)."""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mlpbench import sweep
from mlpbench.checkpoints import checkpoint_callback
from mlpbench.schema import ConfigError, targets, trusted


def quiet_lightning() -> None:
    # Lightning announces every accelerator it did not find; keep its warnings, drop that.
    # And "[rank: 0] Received SIGTERM: 15" from each worker a stopped sweep ends: its runs say
    # that they were interrupted, and the sweep what to do.
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda", "lightning.pytorch.trainer.connectors.signal_connector"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 calls a torch 2.13 pytree API that warns on every run; not ours to fix.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # Small datasets have fewer batches than the logging interval; the epoch scalars still log.
    warnings.filterwarnings("ignore", message=r"The number of training batches .* logging interval")
    # A resumed run continues in its own checkpoint folder: that is the point, not a hazard.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


def make_trainer(t: DictConfig, run_dir: Path, logger, *callbacks, checkpoints: bool = True, score: str = "acc"):
    """The Lightning Trainer for `trainer.*`; Lightning's own checks of these values become
    a config error here, before anything is trained or written. `checkpoints=False`: the
    caller writes them (stacked replicas, each into its own run folder)."""
    import lightning.pytorch as pl
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import ProgressBar

    from mlpbench.console import progress_bar

    own = [checkpoint_callback(run_dir, score)] if checkpoints else []
    own.append(_stop_if_asked())

    # Lightning draws its bar on stdout; a callback of the user's may be a bar of its own.
    bar = sys.stdout.isatty() if t.enable_progress_bar is None else t.enable_progress_bar
    ours = bar and not any(isinstance(cb, ProgressBar) for cb in callbacks)
    try:
        return pl.Trainer(
            accelerator=t.accelerator, strategy=t.strategy, precision=t.precision,
            devices=OmegaConf.to_object(t.devices) if OmegaConf.is_config(t.devices) else t.devices,
            max_epochs=t.max_epochs, log_every_n_steps=t.log_every_n_steps,
            enable_progress_bar=bar, deterministic=t.deterministic,
            logger=logger, callbacks=[*own, *([progress_bar()] if ours else []), *callbacks],
            enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=str(run_dir),
        )
    except (ValueError, TypeError, ImportError, MisconfigurationException) as e:
        hint = _gpu_hint(t.accelerator)
        raise ConfigError(f"trainer.accelerator={t.accelerator} trainer.devices={t.devices} trainer.strategy="
                          f"{t.strategy} trainer.precision={t.precision}: Lightning rejects this setting: {e}"
                          + (f" ({hint})" if hint else "")) from None


def _stop_if_asked():
    """A Lightning callback: a run whose process its sweep asked to stop before Lightning's SIGTERM
    handler was in place (sweep.STOP_ASKED) stops at its first step, as if the signal came then
    (Lightning's handler; the run kept as interrupted, resume=true continues it)."""
    import signal

    from lightning.pytorch.callbacks import Callback

    class StopIfAsked(Callback):
        def on_train_start(self, trainer, pl_module):
            if sweep.STOP_ASKED.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

    return StopIfAsked()


def _gpu_hint(accelerator: str) -> str:
    """Why a GPU is not found, where torch can tell: a CPU build of torch (the default set-up's),
    or a CUDA build that sees no GPU."""
    import torch

    if accelerator not in ("gpu", "cuda"):
        return ""
    if torch.version.cuda is None:
        return (f"torch {torch.__version__} is a CPU build, which cannot use a GPU; on a machine with an NVIDIA "
                "GPU install the CUDA build: make setup TORCH=cuda")
    if not torch.cuda.is_available():
        return f"torch is a CUDA {torch.version.cuda} build, but it sees no GPU: the driver, CUDA_VISIBLE_DEVICES?"
    return ""


# What a run logs for Lightning's callbacks to watch (EarlyStopping, ModelCheckpoint: `monitor`).
MONITORED = ("train_loss", "val_loss", "val_acc", "val_r2")  # val_r2: a regression's


def config_callbacks(cfg: DictConfig, overrides: list[str]) -> list:
    """The Lightning callbacks `callbacks.*` names, built; a ConfigError for one that cannot be."""
    # Every _target_ instantiate would build, nested and interpolated ones too, is trusted or was
    # typed by the user on the command line; a config file cannot bring its own.
    typed = set(re.findall(r"_target_\s*[:=]\s*'?([\w.]+)", " ".join(overrides)))
    for key, target in targets(OmegaConf.to_container(cfg.callbacks, resolve=True), "callbacks"):
        if target not in typed and not trusted(target):
            raise ConfigError(f"{key}={target}: a config file may name only mlpbench's or Lightning's "
                              "callbacks; give this one on the command line if you trust it")
    # `+callbacks.NAME=null` is no callback (as Hydra drops a null config).
    return [_callback(key, spec) for key, spec in cfg.callbacks.items() if spec is not None]


def _callback(key: str, spec: DictConfig):
    """`callbacks.KEY` built, or a ConfigError naming it: arguments its class does not take, or
    a metric to watch that no run logs (found before training, not at the first epoch's end)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from lightning.pytorch import Callback

    try:
        callback = instantiate(spec)
    except (InstantiationException, TypeError, ValueError, ImportError, OSError) as e:
        raise ConfigError(f"callbacks.{key}: cannot be built ({' '.join(str(e).split())[:300]})") from None
    if not isinstance(callback, Callback):
        raise ConfigError(f"callbacks.{key}: {type(callback).__name__} is not a Lightning callback "
                          "(lightning.pytorch.Callback)")
    monitor = getattr(callback, "monitor", None)
    if isinstance(monitor, str) and monitor not in MONITORED:
        raise ConfigError(f"callbacks.{key}.monitor={monitor}: no run logs it; watch one of: {', '.join(MONITORED)}")
    folder = getattr(callback, "dirpath", None)  # ModelCheckpoint's: checked as output folders are
    if folder:
        sweep.usable_folder(folder, f"callbacks.{key}.dirpath")
    return callback
