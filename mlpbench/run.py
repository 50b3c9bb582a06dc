"""`python -m mlpbench`: the Hydra app. One job = one training run, recorded in result.json.

torch and Lightning are imported only once a run starts, so `--help`, `--cfg` and
config errors answer at once.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf

from mlpbench.results import RunRecord, load_results
from mlpbench.schema import ConfigError, register_configs, validate

log = logging.getLogger("mlpbench")
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
EXIT_BAD_INPUT = 2


def _run_name(override_dirname: str, job_num: Any) -> str:
    """A run folder's name: its overrides (model.depth=4), safe as one path component."""
    name = (override_dirname or f"run{job_num}").replace("/", "_")
    if len(name) > 200:
        name = name[:180] + "-" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return name


OmegaConf.register_new_resolver("mlpbench_run_name", _run_name, replace=True)
register_configs()


# ---------------------------------------------------------------------------- one run


def _fail(message: str) -> None:
    print(f"mlpbench: error: {message}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def _quiet_lightning() -> None:
    # Lightning announces every accelerator it did not find; keep its warnings, drop that.
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 calls a torch 2.13 pytree API that warns on every run; not ours to fix.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # Small datasets have fewer batches than the logging interval; the epoch scalars still log.
    warnings.filterwarnings("ignore", message=r"The number of training batches .* logging interval")


def _flat_hparams(config: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat_hparams(value, name + "."))
        else:
            flat[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat


def _make_trainer(t: DictConfig, run_dir: Path, logger, *callbacks):
    """The Lightning Trainer for `trainer.*`; Lightning's own checks of these values become
    a config error here, before anything is trained or written."""
    import lightning.pytorch as pl
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import ModelCheckpoint

    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val_acc",
                                 mode="max", save_last=True, save_top_k=1)
    progress_bar = sys.stderr.isatty() if t.enable_progress_bar is None else t.enable_progress_bar
    try:
        return pl.Trainer(
            accelerator=t.accelerator, devices=t.devices, strategy=t.strategy, precision=t.precision,
            max_epochs=t.max_epochs, log_every_n_steps=t.log_every_n_steps,
            enable_progress_bar=progress_bar, deterministic=t.deterministic,
            gradient_clip_val=t.gradient_clip_val, logger=logger, callbacks=[checkpoint, *callbacks],
            enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=str(run_dir),
        )
    except (ValueError, ImportError, MisconfigurationException) as e:
        _fail(f"trainer.accelerator={t.accelerator} trainer.strategy={t.strategy} "
              f"trainer.precision={t.precision}: Lightning rejects this setting: {e}")


def train(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """Train and test one configuration; returns the result.json payload."""
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import TensorBoardLogger

    from mlpbench.data import DataError, MLPDataModule, make_splits
    from mlpbench.model import count_params, summary
    from mlpbench.module import AfterEpochMetrics, MLPModule

    _quiet_lightning()
    pl.seed_everything(cfg.seed, verbose=False)
    try:
        splits = make_splits(cfg.data, cfg.seed)
    except (DataError, ConfigError) as e:
        _fail(str(e))

    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(run_dir, overrides, config)
    logger = TensorBoardLogger(save_dir=str(run_dir), name="", version="", default_hp_metric=False)
    trainer = _make_trainer(cfg.trainer, run_dir, logger, AfterEpochMetrics(lambda: record.save_every(1.0)))
    module = MLPModule(cfg.model, cfg.optim, splits.num_features, splits.num_classes)
    log.info("Run %s: %s\n%s", run_dir.name, " ".join(overrides) or "(defaults)",
             summary(module.model, splits.num_features))
    record.source = module
    record.update(params=count_params(module.model), data=splits.sizes())
    try:
        record.save()
        datamodule = MLPDataModule(splits, cfg.data.batch_size, cfg.seed)
        trainer.fit(module, datamodule=datamodule)
        if module.diverged_at is None:
            trainer.test(module, datamodule=datamodule, verbose=False)
        status = "ok" if module.diverged_at is None else "diverged"
        record.update(status=status, diverged_at=module.diverged_at,
                      device=str(trainer.strategy.root_device))
        record.save()
    except (KeyboardInterrupt, SystemExit):
        # Lightning turns Ctrl-C and SIGTERM into SystemExit after its graceful shutdown.
        record.update(status="interrupted")
        record.save()
        log.warning("Run %s interrupted after %d epochs; kept %s and %s", run_dir.name,
                    record.payload["epochs"], record.path, run_dir / "checkpoints")
        raise
    except Exception as e:
        record.update(status="failed", error={"type": type(e).__name__, "message": str(e)})
        record.save()
        raise

    # Hyperparameters with the final metrics, for TensorBoard's HParams dashboard.
    metrics = record.payload["metrics"]
    logger.log_hyperparams(_flat_hparams(config), {f"hp/{k}": v for k, v in metrics.items()
                                                   if isinstance(v, (int, float)) and math.isfinite(v)})
    logger.finalize("success")
    log.info("Run %s %s: val_acc %.4f, test_acc %.4f, %d epochs in %.1f s -> %s", run_dir.name, status,
             metrics["val_acc"], metrics["test_acc"], record.payload["epochs"], record.payload["seconds"],
             record.path)
    return record.payload


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        validate(cfg)
    except ConfigError as e:
        _fail(str(e))
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    train(cfg, run_dir, list(hc.overrides.task))


# ---------------------------------------------------------------------------- sweep end


class SweepSummary(HydraCallback):
    """At the end of a multirun: one line per run and the TensorBoard command."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = []
        for run_dir, result in load_results(sweep_dir):
            m = result.get("metrics", {})
            rows.append((run_dir.name, result.get("status", "?"), m.get("val_acc"), m.get("test_acc"),
                         result.get("seconds")))
        if not rows:
            return
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        width = max(len(r[0]) for r in rows)
        print(f"\n{'run':<{width}}  {'status':<11} {'val_acc':>8} {'test_acc':>8} {'seconds':>8}")
        for name, status, val_acc, test_acc, seconds in rows:
            print(f"{name:<{width}}  {status:<11} {fmt(val_acc):>8} {fmt(test_acc):>8} {seconds or 0:>8.1f}")
        print(f"\n{len(rows)} runs in {sweep_dir}\nCompare them: tensorboard --logdir {sweep_dir}")
