"""`python -m mlpbench`: the Hydra app. One job = one training run, recorded in result.json.

torch and Lightning are imported only once a run starts, so `--help`, `--cfg` and
config errors answer at once. In a sweep, a run that fails is recorded and the next one
starts; what a rerun does with runs already there is mlpbench/sweep.py's.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from mlpbench import sweep
from mlpbench.console import refuse
from mlpbench.files import DISK_ERRORS
from mlpbench.overrides import shown
from mlpbench.results import RunRecord, Status, read_result, score_in
from mlpbench.schema import ConfigError, checked, device_count, register_configs, targets, trusted

log = logging.getLogger("mlpbench")
# conf/ ships inside the package as mlpbench.conf (pyproject.toml): found in any install.
CONF_MODULE = "mlpbench.conf"
register_configs()
# conf/hydra/launcher/joblib.yaml takes the plugin's option name on purpose (hydra/launcher=joblib
# gets mlpbench's launcher); Hydra warns that it matches the plugin's schema, in every worker.
warnings.filterwarnings("ignore", message=r"(?s).*'hydra/launcher/joblib' is validated against ConfigStore schema")


# ---------------------------------------------------------------------------- one run


def compose_config(overrides: list[str], with_hydra: bool = False) -> DictConfig:
    """The config `python -m mlpbench OVERRIDES` runs with, composed without running it."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=with_hydra)


def quiet_lightning() -> None:
    # Lightning announces every accelerator it did not find; keep its warnings, drop that.
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 calls a torch 2.13 pytree API that warns on every run; not ours to fix.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # Small datasets have fewer batches than the logging interval; the epoch scalars still log.
    warnings.filterwarnings("ignore", message=r"The number of training batches .* logging interval")
    # A resumed run continues in its own checkpoint folder: that is the point, not a hazard.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


def checkpoint_callback(run_dir: Path, score: str = "acc"):
    """A run's checkpoints: checkpoints/last.ckpt after every epoch (what resume continues
    from), checkpoints/best.ckpt at the best val_acc (a regression's val_r2) so far."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    class RunCheckpoint(ModelCheckpoint):
        """Lightning (2.6) writes last.ckpt only along with a new best.ckpt: after an epoch that
        did not improve, last.ckpt was an earlier epoch's, not the weights the run's test metrics
        were measured with (nor the newest a resume could continue from). A diverged run's epoch
        is not saved at all: its NaN weights could score a finite val_acc (every row class 0) and
        become best.ckpt; it keeps its last finite checkpoint, as a stacked replica does."""

        def on_validation_end(self, trainer, pl_module) -> None:
            self._saving(super().on_validation_end, trainer, pl_module, at_epoch_end=False)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self._saving(super().on_train_epoch_end, trainer, pl_module, at_epoch_end=True)

        def on_train_end(self, trainer, pl_module) -> None:
            if pl_module.diverged_at is None:  # (Lightning's: last.ckpt if none was written)
                super().on_train_end(trainer, pl_module)

        def _saving(self, lightnings_hook, trainer, pl_module, at_epoch_end: bool) -> None:
            """Lightning's saving at this hook, then last.ckpt where it left it unwritten."""
            if pl_module.diverged_at is not None:
                return
            saved = self._last_global_step_saved
            lightnings_hook(trainer, pl_module)
            if (self._should_save_on_train_epoch_end(trainer) == at_epoch_end and self._last_global_step_saved == saved
                    and not self._should_skip_saving_checkpoint(trainer)):
                self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

        @property
        def state_key(self) -> str:  # as ModelCheckpoint's: checkpoints of earlier versions resume
            return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    return RunCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=f"val_{score}", mode="max",
                         save_last=True, save_top_k=1)


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


# A test split this small is a truth table (XOR): its outputs are worth reading row by row.
MAX_PREDICTION_ROWS = 16


def predictions(logits, x_test, y_test, encoding: dict[str, Any] | None = None, run: str | None = None,
                **log_extra) -> list[dict[str, Any]]:
    """The XOR tutorial's last step: the network's output (`logits` on `x_test`) for each row of
    the table (a single output unit's sigmoid, else the class probabilities), logged. A table's
    rows (`encoding`, data=table's) read as its file does: inputs as its columns' values, classes
    by name, a regression's value and target in the target's unit."""
    import torch

    from mlpbench.table import decode, is_regression, unscale_target

    regression = is_regression(encoding)
    if regression:
        outputs, y_test = (unscale_target(t.float().cpu().numpy(), encoding) for t in (logits, y_test))
    else:
        outputs = (torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, 1)).cpu()
    inputs = decode(x_test.cpu().numpy(), encoding) if encoding else x_test.tolist()
    names = None if regression or not encoding else encoding["classes"]
    rows = []
    lines = [f"Run {run}: predictions:" if run else "Predictions:"]  # a stack's runs print theirs in turn
    for x, y, out in zip(inputs, y_test.tolist(), outputs.tolist()):
        # a category no training row had is all zeros: its name is lost
        shown_x = (" ".join(f"{k}={'(unseen)' if v is None else v}" for k, v in x.items())
                   if isinstance(x, dict) else x)
        if names:
            # one sigmoid unit (mse on two classes) gives p(second class)
            p = out if len(out) > 1 else [1 - out[0], out[0]]
            predicted = names[max(range(len(p)), key=p.__getitem__)]
            rows.append({"input": x, "target": names[y], "output": out, "predicted": predicted})
            lines.append(f"  {shown_x} -> {predicted} (p {max(p):.4f}; target {names[y]})")
        else:
            rows.append({"input": x, "target": y, "output": out})
            lines.append(f"  {shown_x} -> {out[0]:.4g}  (target {y:.4g})" if regression
                         else f"  {shown_x} -> {' '.join(f'{o:.4f}' for o in out)}  (target {y})")
    log.info("\n".join(lines), extra=log_extra)
    return rows


def start_record(run_dir: Path, overrides: list[str], cfg: DictConfig, position: dict | None, previous: dict | None,
                 **fields: Any) -> RunRecord:
    """A run's result.json as it starts (alone or a replica of a stack): its config, and where it
    continues an earlier attempt's checkpoint (`position`), that attempt's seconds and resumptions
    (`previous`, its result.json)."""
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    previous = (previous or {}) if position else {}
    run_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(run_dir, overrides, config, seconds_before=previous.get("seconds") or 0.0)
    record.update(**fields)
    if position:
        record.update(resumed=[*previous.get("resumed", []), position])
    return record


def end_record(record: RunRecord, status: Status, diverged_at: dict | None, trainer, devices: int) -> None:
    """A run's result.json as it ends: how, and where it trained."""
    import torch

    record.update(status=status, diverged_at=diverged_at, device=str(trainer.strategy.root_device), devices=devices,
                  threads=torch.get_num_threads(), cpu_kernels=torch.backends.cpu.get_cpu_capability())
    record.save()


def keep_interrupted(records: list[RunRecord], stop: BaseException, message: str, *args: Any) -> NoReturn:
    """Ctrl-C or SIGTERM during training (Lightning turns them into SystemExit after its graceful
    shutdown): the runs recorded as interrupted, `message` logged (it says how to continue; its
    `{epochs}`: the epochs kept, known once the records are saved), and the shell's code for
    death by SIGTERM or SIGINT, so that a scheduler sees what happened."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    for record in records:
        record.update(status=Status.interrupted)
        record.save()
    log.warning(message.replace("{epochs}", str(records[0].payload["epochs"])), *args)
    raise SystemExit(143 if isinstance(stop, SIGTERMException) else 130) from None


def train(cfg: DictConfig, run_dir: Path, overrides: list[str], experiment: str | None = None,
          resume_from: Path | None = None, previous: dict | None = None, threads: int | None = None,
          callbacks: tuple = (), job: int | None = None) -> dict[str, Any]:
    """Train and test one configuration; returns the result.json payload.

    `resume_from`: a checkpoint of this run to continue from (epoch, optimizer, RNG, history),
    and `previous` the result.json of the attempt that wrote it.
    `callbacks`: more Lightning callbacks (the benchmark's epoch clock), besides those the config
    names in `callbacks.*` (a search trial's pruning); one that ends the run early says why in its
    `stop_status` (Status.pruned), which becomes the run's.
    Raises ConfigError (a DataError too) for settings that cannot run, before anything is written.
    """
    import lightning.pytorch as pl
    import torch
    from mlpbench.data import MLPDataModule, make_splits
    from mlpbench.hparams import run_hparams, run_logger, write_session_end, write_session_start
    from mlpbench.model import count_params, summary
    from mlpbench.module import AfterEpochMetrics, MLPModule, score_name

    quiet_lightning()
    if threads:
        torch.set_num_threads(threads)
    pl.seed_everything(cfg.seed, verbose=False)
    splits = make_splits(cfg.data, cfg.seed)
    found = usable_checkpoint(resume_from, cfg.model) if resume_from else None
    if resume_from and found is None:  # unusable: the run starts over rather than stay stuck
        sweep.clear_run(run_dir)
    resume_from, resumed_at = found or (None, None)

    # job: its place in the sweep, for the report's order
    record = start_record(run_dir, overrides, cfg, resumed_at, previous, experiment=experiment, job=job)
    # On resume, TensorBoard drops what a killed attempt logged past the checkpoint.
    logger = run_logger(run_dir, purge_step=resumed_at["step"] if resumed_at else None)
    callbacks = [*callbacks, *config_callbacks(cfg, overrides)]
    stoppers = [cb for cb in callbacks if hasattr(cb, "stop_status")]
    callbacks = [AfterEpochMetrics(lambda: record.save_every(1.0)), *callbacks]
    if cfg.diagnostics:
        from mlpbench.diagnostics import Diagnostics

        callbacks.append(Diagnostics(cfg.trainer.log_every_n_steps))
    trainer = make_trainer(cfg.trainer, run_dir, logger, *callbacks, score=score_name(splits.regression))
    record.enabled = trainer.is_global_zero
    if trainer.world_size > 1 and trainer.strategy.root_device.type == "cpu":
        torch.set_num_threads(max(1, sweep.cores() // trainer.world_size))  # DDP on CPU: share the cores
    check_memory(cfg, splits)
    module = MLPModule(cfg.model, cfg.optim, splits.num_features, splits.num_classes,
                       gradient_clip_val=cfg.trainer.gradient_clip_val,
                       log_every_n_epochs=cfg.trainer.log_every_n_epochs, regression=splits.regression)
    params = count_params(module.model)
    if record.enabled:
        log.info("Run %s: %s (%s params)", run_dir.name, shown(overrides), f"{params['total']:,}")
        # The summary goes to every run's log file; on the console once per sweep, not once per run.
        log.info("%s", summary(module.model, splits.num_features), extra={"console": job in (None, 0)})
    if resumed_at and record.enabled:
        log.info("Run %s: continuing after epoch %d (step %d) from %s", run_dir.name, resumed_at["epoch"],
                 resumed_at["step"], resume_from)
    record.source = module
    record.update(params=params, data=splits.sizes(), **({"table": splits.encoding} if splits.encoding else {}))
    try:
        record.save()
        if record.enabled:  # HParams lists a run from its start, with what was swept first
            write_session_start(logger.experiment, run_hparams(record.payload["config"], overrides, experiment))
        datamodule = MLPDataModule(splits, cfg.data.batch_size, cfg.seed, cfg.trainer.steps_per_chunk,
                                   order=cfg.data.order)
        # weights_only: a checkpoint is tensors and plain data; unpickling code from a sweep folder
        # someone sent would run it.
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None,
                    weights_only=True)
        stopped = next((cb.stop_status for cb in stoppers if cb.stop_status), None)
        if module.diverged_at is None and stopped is None:
            trainer.test(module, datamodule=datamodule, verbose=False)
            if len(splits.y_test) <= MAX_PREDICTION_ROWS:
                module.eval()
                with torch.no_grad():
                    logits = module(splits.x_test.to(module.device, module.dtype))  # 64-true: float64
                record.update(predictions=predictions(logits, splits.x_test, splits.y_test, splits.encoding))
        status = Status.diverged if module.diverged_at is not None else stopped or Status.ok
        end_record(record, status, module.diverged_at, trainer, devices=trainer.world_size)
    except (KeyboardInterrupt, SystemExit) as e:
        keep_interrupted([record], e, "Run %s interrupted after {epochs} epochs; kept %s and %s. Rerun the same "
                         "command with resume=true to continue it.", run_dir.name, record.path, run_dir / "checkpoints")
    except Exception as e:
        record.fail(e)
        raise

    if not record.enabled:  # a DDP process other than rank 0: rank 0 reports the run
        return record.payload
    write_session_end(logger.experiment, status)
    logger.close()
    log.info("%s on %s -> %s", run_line(run_dir.name, record.payload), record.payload.get("device", "?"), record.path)
    return record.payload


def run_line(name: str, payload: dict[str, Any]) -> str:
    """Run NAME ok: val_acc 0.9, test_acc 0.9, 3 epochs in 2.0 s (r2 for a regression; no
    test_acc where the run validated on the test split, data.val_split=null: it is val_acc)."""
    metrics, epochs = payload["metrics"], payload["epochs"]
    score = score_in(metrics)
    validated_on_test = (payload.get("config") or {}).get("data", {}).get("val_split", 0.2) is None
    test = "" if validated_on_test else f", test_{score} {metrics[f'test_{score}']:.4f}"
    return (f"Run {name} {payload['status']}: val_{score} {metrics[f'val_{score}']:.4f}{test}, {epochs} "
            f"{'epoch' if epochs == 1 else 'epochs'} in {payload['seconds']:.1f} s")


def check_memory(cfg: DictConfig, splits, replicas: int = 1) -> None:
    """A model too large for the memory it trains in is a config error before torch tries to
    allocate it (memory_need: weights, gradients, optimizer state, a batch's activations, times
    the replicas trained as one stacked model; on a GPU the rows too), against the GPU's free
    memory or this machine's."""
    found = _training_memory(cfg)
    if found is None:
        return
    available, where = found
    need = memory_need(cfg, splits, replicas)
    if need.total > 0.8 * available:
        raise ConfigError(f"model.units={cfg.model.units} model.depth={cfg.model.depth} data.batch_size="
                          f"{cfg.data.batch_size}: {need.params:,} parameters need about {need.weights / 1e9:.1f} GB "
                          f"(weights, gradients, optimizer state{f', {replicas} stacked replicas' if replicas > 1 else ''})"
                          f" and a batch's activations {need.activations / 1e9:.1f} GB"
                          f"{f', the rows {need.data / 1e9:.1f} GB' if need.data else ''}; {where}")


def replicas_that_fit(cfg: DictConfig, splits, wanted: int) -> int:
    """How many of `wanted` stacked replicas the memory a stack trains in holds (memory_need
    within 80% of it, as check_memory asks): `wanted` where it cannot tell; at least 1 (one
    that does not fit is check_memory's error, naming what it needs)."""
    found = _training_memory(cfg)
    if found is None:
        return wanted
    one, two = memory_need(cfg, splits, 1), memory_need(cfg, splits, 2)
    per_replica = two.total - one.total
    fit = int((0.8 * found[0] - (one.total - per_replica)) // per_replica)
    return max(1, min(wanted, fit))


@dataclass
class MemoryNeed:
    params: int  # one replica's
    weights: int  # bytes: weights, gradients and up to two optimizer moments, float32
    activations: int  # bytes: a batch's activations and their gradients
    data: int  # bytes: the rows, where they are kept on the device (a GPU)

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.data


def memory_need(cfg: DictConfig, splits, replicas: int = 1) -> MemoryNeed:
    """What training `replicas` stacked models of `cfg` takes, roughly: weights, gradients and
    up to two optimizer moments, and a batch's activations and their gradients (evaluation's
    batches are 1,024 rows or more), float32, times the replicas; on a GPU the rows (kept there,
    each tensor once: a stack's validation rows are its training tensor)."""
    from mlpbench.model import hidden_widths, output_size

    features, classes = splits.num_features, splits.num_classes
    widths = [features, *hidden_widths(cfg.model, features, classes), output_size(cfg.model, classes)]
    params = sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    rows = min(max(cfg.data.batch_size, 1024), max(splits.sizes().values()))
    data = 0
    if not sweep.trains_on_cpu(cfg):
        tensors = {t.data_ptr(): t for t in (splits.x_train, splits.y_train, splits.x_val, splits.y_val,
                                             splits.x_test, splits.y_test)}
        data = sum(t.numel() * t.element_size() for t in tensors.values())
        if splits.train_rows is not None:  # a stack's
            from mlpbench.data import GPU_CHUNK_BYTES

            # Each replica's row indices (train and its epoch's order, val, test: int64), and two
            # chunks of gathered rows (one training, the next being fetched).
            indices = 2 * splits.train_rows.shape[-1] + splits.val_rows.shape[-1] + splits.test_rows.shape[-1]
            data += 8 * indices * replicas + 2 * GPU_CHUNK_BYTES
    return MemoryNeed(params, params * 4 * 4 * replicas, rows * sum(widths) * 4 * 3 * replicas, data)


def _training_memory(cfg: DictConfig) -> Optional[tuple[int, str]]:
    """The bytes a run may use where it trains, and what that is: the free memory of the GPU it
    will train on (trainer.accelerator, trainer.devices), else this machine's memory."""
    import torch

    accelerator = str(cfg.trainer.accelerator)
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            return None  # Lightning refuses the setting, saying why (_gpu_hint)
        devices = cfg.trainer.devices
        index = int(list(devices)[0]) if OmegaConf.is_list(devices) or isinstance(devices, (list, tuple)) else 0
        free, _ = torch.cuda.mem_get_info(index)
        # What this process's allocator holds cached (an earlier stack's) is free to it too.
        free += torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index)
        return free, f"GPU {index} has {free / 1e9:.1f} GB free"
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    return available, f"this machine has {available / 1e9:.1f} GB"


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


def usable_checkpoint(path: Path, model_cfg) -> tuple[Path, dict[str, int]] | None:
    """The checkpoint a run continues from and where it stands: `path` (last.ckpt), else the
    best.ckpt beside it (an earlier epoch, but not lost); None if neither can be used."""
    for candidate in (Path(path), Path(path).with_name("best.ckpt")):
        if candidate.is_file():
            position = checkpoint_position(candidate, model_cfg)
            if position is not None:
                return candidate, position
    return None


def checkpoint_position(path: Path, model_cfg) -> dict[str, int] | None:
    """Where a checkpoint stands: epochs finished and optimizer steps taken; None, said in the
    log naming the file, when it cannot be used: cut short, corrupt, holding more than tensors
    and data, or another model's weights than `model_cfg`'s."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        history = checkpoint.get("mlpbench", {}).get("history", {})
        position = {"epoch": len(history.get("train_loss", [])), "step": int(checkpoint["global_step"])}
        other = _other_model(checkpoint["state_dict"], model_cfg)
        if other:
            raise ValueError(other)
        # Bytes overwritten inside the file load as numbers still: NaN or inf where a run that
        # kept this checkpoint had none (a diverged run keeps its last finite one).
        tensors = [*checkpoint["state_dict"].values(), *_tensors(checkpoint.get("optimizer_states"))]
        if not all(torch.isfinite(t).all() for t in tensors if t.is_floating_point()):
            raise ValueError("it holds weights or optimizer state that are not finite (damaged)")
        return position
    except Exception as e:
        first_line = re.sub(r"\x1b\[[0-9;]*m", "", (str(e).strip().splitlines() or [""])[0])[:200]
        log.warning("Run %s: its checkpoint %s cannot be used (%s: %s); %s", path.parent.parent.name, path,
                    type(e).__name__, first_line,
                    "trying best.ckpt" if path.name == "last.ckpt" else "the run starts over")
        return None


def _tensors(node: Any) -> list:
    """The tensors in nested dicts and lists (an optimizer's state)."""
    import torch

    if isinstance(node, torch.Tensor):
        return [node]
    items = node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else ()
    return [t for item in items for t in _tensors(item)]


def _other_model(state: dict, model_cfg) -> str | None:
    """Why a checkpoint's weights are not those of a model_cfg network (a checkpoint copied in
    from another run), or None: its tensors' shapes against the network's, built without memory
    (torch's meta device) for the inputs and outputs the checkpoint has."""
    import torch

    from mlpbench.model import MLP

    shapes = {k.removeprefix("model."): tuple(v.shape) for k, v in state.items()}
    dense = [s for s in shapes.values() if len(s) == 2]
    if not dense:
        return "it holds no layer's weights"
    outputs = dense[-1][0]
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in MLP(model_cfg, dense[0][1], 2 if outputs == 1 else outputs)
                    .state_dict().items()}
    if shapes == expected:
        return None

    def widths(layers: list[tuple]) -> str:
        return " -> ".join(str(w) for w in [layers[0][1], *(s[0] for s in layers)])

    theirs, ours = widths(dense), widths([s for s in expected.values() if len(s) == 2])
    if theirs == ours:
        return f"it holds another network: widths {ours} as this run's, other BatchNorm or residual layers"
    return f"it holds another network: widths {theirs}, this run's {ours}"


def _discard_unstarted(run_dir: Path, job_name: str) -> None:
    """A single run refused by a config check: remove exactly what Hydra made for it (.hydra/'s
    three files and the run's empty log), then the folder if that left it empty, so that no
    folder without a result looks like a run. Anything else in it stays, and an earlier run's
    folder (one with a result or checkpoints) is left as it is."""
    logging.shutdown()  # closes the log file Hydra opened in it
    if (run_dir / "result.json").exists() or (run_dir / "checkpoints").is_dir():
        return  # an earlier run's folder (resume=true found it): its record stays for the next resume
    made = [run_dir / ".hydra" / name for name in ("config.yaml", "hydra.yaml", "overrides.yaml")]
    made.append(run_dir / ".run.lock")  # sweep.SweepSummary's, held until this process ends
    log_file = run_dir / f"{job_name}.log"
    if log_file.is_file() and not log_file.stat().st_size:
        made.append(log_file)
    for path in made:
        path.unlink(missing_ok=True)
    for folder in (run_dir / ".hydra", run_dir):
        try:
            folder.rmdir()  # only if empty
        except OSError:
            return


def _record_failure(run_dir: Path, overrides: list[str], cfg: DictConfig, error: BaseException) -> None:
    """Record a run that failed before or while training, unless train() already has, or the
    run had finished (a later stack of its group failed: its own result stays)."""
    previous = read_result(run_dir)
    if previous is not None and (previous.get("status") == Status.failed or Status(previous["status"]).finished):
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    except Exception:  # the interpolation that failed it: kept as written
        config = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
    RunRecord(run_dir, overrides, config).fail(error)


def print_help(overrides: list[str]) -> None:
    """`--help`: conf/config.yaml's hydra.help template with the composed config.

    Hydra's own --help fills in every config group of every plugin, deep-copying its config
    store a hundred times (a second, with the launchers installed); this prints the same page
    from one composition. `--hydra-help` is still Hydra's."""
    import string

    try:
        cfg = compose_config(overrides, with_hydra=True)
    except Exception as e:  # a bad override: say which, as a run would
        refuse(str(e))
    template = cfg.hydra.help.template
    with open_dict(cfg):
        del cfg["hydra"]
    print(string.Template(template).safe_substitute(CONFIG=OmegaConf.to_yaml(cfg)))


@dataclass
class Job:
    """One run as Hydra set it up: its config (resolved and checked), folder and plan."""

    cfg: DictConfig
    run_dir: Path
    overrides: list[str]
    plan: sweep.RunPlan
    experiment: str | None
    num: int | None  # its place in the sweep; None for a single run
    threads: int | None
    position: dict[str, int] | None = None  # where plan.checkpoint stands, once read (stacked)


def train_job(job: Job) -> dict[str, Any]:
    """train() for a prepared job: its config, folder, and the checkpoint its plan continues."""
    return train(job.cfg, job.run_dir, job.overrides, job.experiment, resume_from=job.plan.checkpoint,
                 previous=job.plan.previous, threads=job.threads, job=job.num)


def prepare(cfg: DictConfig) -> Job | None:
    """The run Hydra's job `cfg` asks for, checked; None where there is nothing to train: the
    run is finished already (skipped), or its config is refused (in a sweep: recorded as
    failed, and the sweep goes on; a single run exits 2)."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    in_sweep = hc.mode == RunMode.MULTIRUN
    # Lightning's DDP starts ranks 1.. as this same command: they follow rank 0's plan.
    ddp_child = sweep.is_ddp_rank()
    # The sweep's folder as Hydra made it, from where the command started (hydra.job.chdir=true moves).
    sweep_dir = Path(hc.runtime.cwd) / hc.sweep.dir if in_sweep else None
    if in_sweep and not run_dir.resolve().is_relative_to(sweep_dir.resolve()):
        # hydra.sweep.subdir resolved per run (an interpolation) to a folder outside the sweep:
        # said on the console (its log file goes with the folder Hydra made for it)
        print(f"mlpbench: error: run {run_dir}: not run: hydra.sweep.subdir puts it outside its sweep folder "
              f"{hc.sweep.dir}", file=sys.stderr)
        _discard_unstarted(run_dir, hc.job.name)
        return None
    plan = sweep.plan_run(run_dir, clear=not ddp_child)
    if plan.skip:
        log.info("Run %s: already %s in %s; skipped", run_dir.name, plan.skip, run_dir)
        return None
    try:
        cfg = checked(cfg)
        if in_sweep and device_count(cfg.trainer.devices) > 1:
            raise ConfigError(f"trainer.devices={cfg.trainer.devices}: a DDP run starts its own processes; "
                              "run it on its own, without -m (a sweep runs each run on one device)")
    except ConfigError as e:
        if not in_sweep:
            _discard_unstarted(run_dir, hc.job.name)
            refuse(str(e))
        # One bad grid point must not end the sweep: record it, go on to the next.
        _record_failure(run_dir, overrides, cfg, e)
        log.error("Run %s: not run: %s", run_dir.name, e)
        return None
    threads = sweep.threads_per_run(hc.launcher)
    if threads:  # hydra/launcher=joblib (a search's tune.n_jobs): runs side by side
        if cfg.trainer.enable_progress_bar is None:
            cfg.trainer.enable_progress_bar = False  # they would draw over each other's bars
        cfg = sweep.spread_over_gpus(cfg, sweep_dir if in_sweep else run_dir)  # each worker process a GPU
    return Job(cfg, run_dir, overrides, plan, hc.runtime.choices.get("experiment"),
               hc.job.num if in_sweep else None, threads)


def record_failure(job: Job, error: BaseException, say: bool = True) -> None:
    """A run that failed: its record says why, its log has the traceback (not for a config
    that Lightning or the memory check refused: the message says it all)."""
    run_dir = job.run_dir
    try:
        _record_failure(run_dir, job.overrides, job.cfg, error)
    except OSError:
        pass  # the disk that failed the run may refuse its record too; the log says why
    if say:  # else the caller has said it, once for several runs
        say_failure([run_dir], error)


def say_failure(run_dirs: list[Path], error: BaseException, **log_extra) -> None:
    """Why runs failed, once: a config Lightning or the memory check refused by its message, a
    disk that failed them by the path it could not write, anything else with its traceback (in
    the runs' logs)."""
    names = ", ".join(d.name for d in run_dirs)
    runs = f"Run {names}" if len(run_dirs) == 1 else f"Runs {names}"
    if isinstance(error, ConfigError):  # Lightning's checks, memory: found once training was set up
        log.error("%s: not run: %s", runs, error, extra=log_extra)
    elif isinstance(error, FileNotFoundError) and not all(d.is_dir() for d in run_dirs):
        gone = [str(d) for d in run_dirs if not d.is_dir()]
        log.error("%s failed: %s was removed while it trained; rerun the command to train it again", runs,
                  ", ".join(gone), extra=log_extra)
    elif isinstance(error, OSError) and error.errno in DISK_ERRORS:
        where = error.filename or (run_dirs[0] if len(run_dirs) == 1 else run_dirs[0].parent)
        log.error("%s failed: cannot write %s: %s. Free some space (or fix the permission), then rerun the same "
                  "command with resume=true: the runs continue from their last checkpoint", runs, where,
                  error.strerror, extra=log_extra)
    else:  # the traceback goes to the runs' logs
        log.error("%s failed: %s: %s", runs, type(error).__name__, error, exc_info=error, extra=log_extra)


@hydra.main(version_base="1.3", config_path=f"pkg://{CONF_MODULE}", config_name="config")
def main(cfg: DictConfig) -> None:
    job = prepare(cfg)
    if job is None:
        return
    try:
        train_job(job)
    except Exception as e:
        if job.num is None and isinstance(e, ConfigError):  # found once training was set up
            _discard_unstarted(job.run_dir, HydraConfig.get().job.name)
            refuse(str(e))
        record_failure(job, e)
        if job.num is None:
            sys.exit(1)
