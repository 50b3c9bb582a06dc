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

from mlpbench.results import RunRecord
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


def _log_predictions(module, splits) -> list[dict[str, Any]]:
    """The XOR tutorial's last step: the network's output for each row of the table."""
    import torch

    module.eval()
    with torch.no_grad():
        outputs = torch.sigmoid(module(splits.x_test.to(module.device))).cpu()
    rows = []
    lines = ["Predictions:"]
    for x, y, out in zip(splits.x_test.tolist(), splits.y_test.tolist(), outputs.tolist()):
        rows.append({"input": x, "target": y, "output": out})
        lines.append(f"  {x} -> {' '.join(f'{o:.4f}' for o in out)}  (target {y})")
    log.info("\n".join(lines))
    return rows


def train(cfg: DictConfig, run_dir: Path, overrides: list[str], experiment: str | None = None) -> dict[str, Any]:
    """Train and test one configuration; returns the result.json payload."""
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import TensorBoardLogger

    from mlpbench.data import DataError, MLPDataModule, make_splits
    from mlpbench.model import count_params, summary
    from mlpbench.module import AfterEpochMetrics, MLPModule
    from mlpbench.schema import Source

    _quiet_lightning()
    pl.seed_everything(cfg.seed, verbose=False)
    try:
        splits = make_splits(cfg.data, cfg.seed)
    except (DataError, ConfigError) as e:
        _fail(str(e))

    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(run_dir, overrides, config)
    record.update(experiment=experiment)
    logger = TensorBoardLogger(save_dir=str(run_dir), name="", version="", default_hp_metric=False)
    callbacks = [AfterEpochMetrics(lambda: record.save_every(1.0))]
    if cfg.diagnostics:
        from mlpbench.diagnostics import Diagnostics

        callbacks.append(Diagnostics(cfg.trainer.log_every_n_steps))
    trainer = _make_trainer(cfg.trainer, run_dir, logger, *callbacks)
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
            if Source(cfg.data.source) is Source.xor:
                record.update(predictions=_log_predictions(module, splits))
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
    train(cfg, run_dir, list(hc.overrides.task), hc.runtime.choices.get("experiment"))


# ---------------------------------------------------------------------------- sweep end


class SweepSummary(HydraCallback):
    """At the end of a multirun: the sweep's report (summary.csv/.md, figures), printed too."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mlpbench.report import build

        sweep_dir = Path(config.hydra.sweep.dir)
        table, written = build([sweep_dir])
        if not table:
            return
        print(f"\n{table}\n{table.count(chr(10)) - 2} runs in {sweep_dir}; report: "
              f"{', '.join(p.name for p in written)}\nCompare the curves: tensorboard --logdir {sweep_dir}")
