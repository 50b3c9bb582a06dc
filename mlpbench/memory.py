"""Will a model fit where it trains: memory_need (weights, gradients, optimizer state, a batch's
activations, the rows kept on a GPU), a refusal naming what it needs (check_memory), and how
many stacked replicas the device holds (replicas_that_fit)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from mlpbench import sweep
from mlpbench.schema import ConfigError


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
    weights: int  # bytes: weights, gradients and up to two optimizer moments (float32; float64 under 64-true)
    activations: int  # bytes: a batch's activations and their gradients
    data: int  # bytes: the rows, where they are kept on the device (a GPU)

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.data


def memory_need(cfg: DictConfig, splits, replicas: int = 1) -> MemoryNeed:
    """What training `replicas` stacked models of `cfg` takes, roughly: weights, gradients and
    up to two optimizer moments, and a batch's activations and their gradients (evaluation's
    batches are 1,024 rows or more), float32 (float64 under 64-true), times the replicas; on a
    GPU the rows (kept there, each tensor once: a stack's validation rows are its training tensor)."""
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
    size = 8 if str(cfg.trainer.precision).startswith("64") else 4
    return MemoryNeed(params, params * size * 4 * replicas, rows * sum(widths) * size * 3 * replicas, data)


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
