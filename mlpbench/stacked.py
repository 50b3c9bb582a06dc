"""Replicas trained together (`hydra/launcher=stacked`, the default): K runs of one MLP
architecture as one network whose tensors have a leading replica dimension. The runs may differ
in what enters training elementwise or only at the start (mlpbench/sweep.py's STACKED_SETTINGS):
seed, optimizer and its numbers, activation, dropout, initialisation.

The K weight matrices of a layer become one batched matmul, and a BatchNorm one pass over
(K, rows, F). Replicas with one activation apply it to their slice at once; each replica draws
its own dropout masks. Replicas with one optimizer setting share parameter tensors and one
optimizer (an OptimizerStack holds one per setting); every update rule mlpbench offers is
elementwise, so one optimizer does what their K optimizers would. Gradient clipping by norm is
not elementwise, and a run that uses it is never stacked. The loss is the sum of the replicas'
mean losses, so replica k's gradient is its own run's.

Each replica is built as its own run builds it: its seed, its initialisation, its data split, its
batch order and its dropout generator. It computes what its run computes, to the bit (with
mlpbench/model.py's thread-independent layers), and its state is its run's:
- `replica_state(k)` is exactly the state_dict of replica k's MLP;
- `replica_optimizer(k)` is its optimizer's state;
- each replica's checkpoint is therefore an ordinary run's, and ordinary runs' checkpoints join a
  stack.
"""

from __future__ import annotations

import io
import logging
import math
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Checkpoint
from torch import nn

from mlpbench import sweep
from mlpbench.checkpoints import checkpoint_callback
from mlpbench.data import GPU_CHUNK_BYTES
from mlpbench.model import MLP, NARROW_UNITS, BatchNorm, HiddenBlock, autocast_operands, batch_stats
from mlpbench.module import MLPModule, epoch_line, epoch_scalars, history_keys, regression_terms, restore_cuda_rng
from mlpbench.files import write_atomic
from mlpbench.memory import check_memory, memory_need, replicas_that_fit
from mlpbench.optim import OptimizerStack, build_optimizer
from mlpbench.overrides import parse, shown
from mlpbench.results import Status
from mlpbench.run import Job, run_line
from mlpbench.schema import Loss
from mlpbench.trainer import config_callbacks, make_trainer, quiet_lightning

log = logging.getLogger("mlpbench")


# A parameter whose size is not a multiple of this many floats is kept as K tensors. torch's
# fused CPU optimizer kernels work through a tensor in 64-byte units (16 floats) and take its last
# incomplete unit by a scalar path, which rounds differently from the vector path the same
# elements fall in once stacked: the output layer's 10 biases were 1 ulp apart after 7 Adam
# steps, and a 10-layer net grew that to 0.25 of val_loss in 10 epochs. (Checked bit for bit for
# every optimizer mlpbench offers, K = 3 and 5, 25 steps.)
VECTOR_FLOATS = 16


def _mangle(name: str) -> str:
    return name.replace(".", "__")  # parameter names cannot hold dots


class _StackedLinear(torch.autograd.Function):
    """x @ W^T + b for each replica, with W (K, out, in) as nn.Linear keeps it, computed as
    model.Dense computes it for that replica. Forward and the input's gradient are batched
    matmuls where they round as addmm and mm do (checked once per operand layout), else one
    product per replica. The weight's gradient, g^T x: for a narrow layer, one bmm, which is what
    Dense computes (bmm's per-matrix kernel); for a wider one, one bmm where that rounds as each
    replica's mm, and one mm per replica where it does not. (autograd's own baddbmm backward
    computes (x^T g)^T, which for the output layer's narrow product (10 x 128) differs in the
    last bit, and a 10-layer net turned that into 0.25 of val_loss in 10 epochs.)"""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return _product(_batched_affine, _affine_per_replica, bias, x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = _product(torch.bmm, _mm_per_replica, grad, weight) if ctx.needs_input_grad[0] else None
        if weight.shape[1] < NARROW_UNITS and grad.device.type == "cpu":
            grad_weight = _product(torch.bmm, _pair_per_replica, grad.transpose(1, 2).contiguous(), x.contiguous())
        else:
            grad_weight = _product(torch.bmm, _mm_per_replica, grad.transpose(1, 2), x)
        return grad_x, grad_weight, grad.sum(1)


def _batched_affine(bias: torch.Tensor, x: torch.Tensor, weight_t: torch.Tensor) -> torch.Tensor:
    return torch.baddbmm(bias.unsqueeze(1), x, weight_t)


# The per-replica products are those the runs compute, on operands laid out as a run's own: MKL's
# sgemm rounds by the operands' memory alignment too, and a replica's slice of a stacked tensor
# starts 64-byte aligned only where the sizes before it are whole 16-float units (units=13 with 10
# rows: replicas 1 and 3 of 4 differed from their runs).
def _own(t: torch.Tensor) -> torch.Tensor:
    return t if t.data_ptr() % 64 == 0 else t.clone()  # the allocator's alignment, a run's tensors'


def _affine_per_replica(bias: torch.Tensor, x: torch.Tensor, weight_t: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.addmm(_own(bias[k]), _own(x[k]), _own(weight_t[k])) for k in range(len(x))])


def _mm_per_replica(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.mm(_own(a[k]), _own(b[k])) for k in range(len(a))])


def _pair_per_replica(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Each replica's product as model.Dense's narrow layer computes it: one matrix of a bmm over
    two copies."""
    return torch.stack([torch.bmm(torch.stack([a[k], a[k]]), torch.stack([b[k], b[k]]))[0] for k in range(len(a))])


# Whether a batched product equals each replica's own to the bit, by the operands' layout: the
# BLAS kernel, and so its rounding, is chosen by shape and strides; one product with these
# operands tells (a product of random 32-row blocks differs somewhere when the kernels differ).
_exact_cache: dict[tuple, bool] = {}


def _product(batched, per_replica, *operands: torch.Tensor) -> torch.Tensor:
    """`batched(*operands)` where it rounds as `per_replica` (the runs' own products) does for
    this layout of operands, else `per_replica(*operands)`. Off the CPU always batched: there
    the bar is the basic launcher's numbers within 1e-4, not to the bit, and K products a layer
    would leave a GPU waiting on Python."""
    if not _exact_on(operands[0]):
        return batched(*operands)
    # The dtype too: one process trains a bf16-mixed stack, then a 64-true one of the same shapes,
    # and float64's kernels round otherwise (on an AMD EPYC, its batched products did not match).
    key = (batched, per_replica, *((t.shape, t.stride(), t.dtype) for t in operands), operands[0].device.type)
    exact = _exact_cache.get(key)
    if exact is None:
        with torch.no_grad():
            exact = _exact_cache[key] = torch.equal(batched(*operands), per_replica(*operands))
    return batched(*operands) if exact else per_replica(*operands)


# Activations computed with exactly rounded operations (a max, a product) give the same bits
# wherever an element falls among SIMD blocks and threads' chunks. tanh, sigmoid, GELU, SiLU and
# ELU use vectorized approximations whose last bit depends on that place: on a stacked tensor
# sigmoid differed from the run's where rows x F is no multiple of 16 (units=mean: 397).
EXACT_ANYWHERE = (nn.ReLU, nn.LeakyReLU, nn.Identity)


def _per_replica(fn, x: torch.Tensor) -> torch.Tensor:
    """fn applied to each replica's slice of x (K, ...), as its run applies it (on the CPU; see
    _product)."""
    return torch.stack([fn(x[k]) for k in range(len(x))]) if _exact_on(x) else fn(x)


def _exact_on(x: torch.Tensor) -> bool:
    """Whether stacked replicas reproduce their runs to the bit on x's device: on the CPU, by the
    workarounds here; elsewhere they are not attempted."""
    return x.device.type == "cpu"


def _runs(values: list) -> list[tuple[int, int]]:
    """The ranges [a, b) of equal neighbouring values: _runs([x, x, y]) == [(0, 2), (2, 3)]."""
    ranges, start = [], 0
    for k in range(1, len(values) + 1):
        if k == len(values) or values[k] != values[start]:
            ranges.append((start, k))
            start = k
    return ranges


def _activation_key(model: MLP) -> tuple:
    blocks = model.hidden_blocks
    if not blocks:
        return ()
    act = blocks[0].activation
    return type(act).__name__, getattr(act, "negative_slope", None)


def _dropout_rate(model: MLP) -> float:
    return next((m.p for block in model.hidden_blocks for m in block.body if isinstance(m, nn.Dropout)), 0.0)


class StackedMLP(nn.Module):
    """K MLPs of one architecture as one module; forward takes (K, rows, ...) inputs.

    The replicas may differ in what enters training elementwise: their activation (each run of
    neighbouring replicas with one activation applies it to its slice), dropout rate (a mask
    per replica from its own generator) and optimizer settings (`optim_groups`: ranges of
    replicas with one optimizer, whose parameters are separate tensors, one per range)."""

    def __init__(self, replicas: list[MLP], optim_groups: list[tuple[int, int]] | None = None, exact: bool = True):
        super().__init__()
        # The layer structure, not a submodule: its own tensors are not used.
        object.__setattr__(self, "template", replicas[0])
        self.replicas = len(replicas)
        self.optim_groups = optim_groups or [(0, self.replicas)]
        states = [m.state_dict() for m in replicas]
        trainable = {name for name, _ in self.template.named_parameters()}
        self.names = list(states[0])  # the MLP's state_dict keys, in its order
        self.param_names = [name for name in self.names if name in trainable]  # its optimizer's order
        # Each trainable tensor as blocks of replicas [a, b), one parameter each: a block per
        # optimizer group, or, for a tensor that is no whole number of 16-float units, a block per
        # replica (see VECTOR_FLOATS; `exact`: where the stack trains on the CPU).
        self.blocks: dict[str, list[tuple[int, int]]] = {}
        self.slots: list[tuple[str, int, int]] = []  # this module's parameters, in order: (key, a, b)
        for name in self.names:
            tensors = [s[name] for s in states]
            if name not in trainable:
                self.register_buffer(_mangle(name), torch.stack(tensors))
                continue
            per_replica = exact and tensors[0].numel() % VECTOR_FLOATS != 0
            blocks = [(k, k + 1) for k in range(self.replicas)] if per_replica else self.optim_groups
            self.blocks[name] = blocks
            for a, b in blocks:
                self.register_parameter(self._block_key(name, a), nn.Parameter(torch.stack(tensors[a:b])))
                self.slots.append((name, a, b))
        # The template's Linear and BatchNorm layers by their state_dict prefix.
        self._prefix = {id(m): name for name, m in self.template.named_modules()}
        self.activations = [(a, b, replicas[a].hidden_blocks[0].activation)
                            for a, b in _runs([_activation_key(m) for m in replicas])] \
            if self.template.hidden_blocks else []
        self.dropout = [_dropout_rate(m) for m in replicas]
        # Each replica's dropout masks from its own generator: its run's draws, whatever the
        # other replicas (set_generators). Off the CPU, one generator on the device for all.
        self.generators: list[torch.Generator | None] = [None] * self.replicas
        self._device_generator: torch.Generator | None = None
        self._device_rng: tuple[int, torch.Tensor | None] = (0, None)  # its seed, a saved state
        self._keep: dict[tuple, torch.Tensor] = {}  # each replica's 1 - p, by device, dtype and rank

    def _block_key(self, name: str, a: int) -> str:
        return _mangle(name) if self.blocks[name] == [(0, self.replicas)] else f"{_mangle(name)}__{a}"

    def set_generators(self, states: list[torch.Tensor], device_state: torch.Tensor | None = None,
                       step: int = 0) -> None:
        """Each replica's dropout generator at the CPU RNG state its run would have; off the
        CPU, the stack's generator at `device_state` (a checkpoint's), else seeded from the first
        replica's state and the `step` it starts at (a stack resumed in other company draws
        neither another's masks nor its own earlier ones)."""
        self.generators = []
        for state in states:
            generator = torch.Generator()
            generator.set_state(state)
            self.generators.append(generator)
        first = torch.Generator()
        first.set_state(states[0])  # a copy: the replica's own draws stay its run's
        seed = int(torch.randint(2**62, (1,), generator=first))
        self._device_rng = ((seed + step * 0x9E3779B97F4A7C15) % 2**62, device_state)  # (odd: a step, a seed)
        self._device_generator = None

    def generator_states(self) -> list[torch.Tensor]:
        return [g.get_state() for g in self.generators]

    def device_generator_state(self) -> torch.Tensor | None:
        """The stack's generator off the CPU, where it has drawn (for a checkpoint)."""
        return None if self._device_generator is None else self._device_generator.get_state()

    def tensor(self, module: nn.Module, attr: str) -> torch.Tensor:
        """A layer's tensor `attr` of all replicas, (K, ...). Read from the module's own dicts:
        nn.Module's attribute lookup cost ~100 us a step here."""
        key = _mangle(f"{self._prefix[id(module)]}.{attr}")
        found = self._parameters.get(key)
        if found is not None:
            return found
        if key in self._buffers:
            return self._buffers[key]
        name = f"{self._prefix[id(module)]}.{attr}"
        return torch.cat([self._parameters[f"{key}__{a}"] for a, _ in self.blocks[name]])

    def group_parameters(self, group: int) -> list[nn.Parameter]:
        """The parameters optimizer group `group` steps, in slot order."""
        a, b = self.optim_groups[group]
        return [self._parameters[self._block_key(name, lo)] for name, lo, hi in self.slots if a <= lo < b]

    def _group_slots(self, group: int) -> list[tuple[str, int, int]]:
        a, b = self.optim_groups[group]
        return [(name, lo, hi) for name, lo, hi in self.slots if a <= lo < b]

    def _group_of(self, k: int) -> int:
        return next(g for g, (a, b) in enumerate(self.optim_groups) if a <= k < b)

    # ------------------------------------------------------------------ state
    def replica_state(self, k: int, stacked: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Replica k's state_dict, keyed as its own MLP's: from this module's tensors, or from
        `stacked`, a state_dict of this module (a copy on the host, say)."""
        stacked = stacked if stacked is not None else {**self._parameters, **self._buffers}
        state = {}
        for name in self.names:
            if name in self.blocks:
                a = next(lo for lo, hi in self.blocks[name] if lo <= k < hi)
                tensor = stacked[self._block_key(name, a)][k - a]
            else:
                tensor = stacked[_mangle(name)][k]
            state[name] = tensor.detach().clone()
        return state

    def stacked_state(self, states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """This module's state_dict from K replicas' (replica_state's inverse)."""
        stacked = {}
        for name in self.names:
            if name in self.blocks:
                stacked.update({self._block_key(name, a): torch.stack([s[name] for s in states[a:b]])
                                for a, b in self.blocks[name]})
            else:
                stacked[_mangle(name)] = torch.stack([s[name] for s in states])
        return stacked

    def replica_optimizer(self, state: dict, k: int) -> dict:
        """Replica k's optimizer state_dict from this module's OptimizerStack's: its slice of each
        of its group's parameters' moments or accumulators; scalars (the step count) as they are."""
        group = self._group_of(k)
        inner = state["optimizers"][group]
        per_param = {}
        for j, (name, a, b) in enumerate(self._group_slots(group)):
            if j in inner["state"] and a <= k < b:
                # Copies, the step count too (a fused optimizer adds to it in place): the
                # checkpoint may be written while training goes on (ReplicaCheckpoints).
                per_param[self.param_names.index(name)] = {
                    key: (value[k - a] if value.dim() else value).clone() if torch.is_tensor(value) else value
                    for key, value in inner["state"][j].items()}
        groups = [dict(g, params=list(range(len(self.param_names)))) for g in inner["param_groups"]]
        return {"state": per_param, "param_groups": groups}

    def stacked_optimizer(self, states: list[dict]) -> dict:
        """This module's OptimizerStack state_dict from K replicas' (replica_optimizer's inverse)."""
        optimizers = []
        for group, (first, _) in enumerate(self.optim_groups):
            per_slot = {}
            slots = self._group_slots(group)
            for j, (name, a, b) in enumerate(slots):
                p = self.param_names.index(name)
                if p not in states[a]["state"]:
                    continue
                per_slot[j] = {key: torch.stack([s["state"][p][key] for s in states[a:b]])
                               if torch.is_tensor(value) and value.dim() else value
                               for key, value in states[a]["state"][p].items()}
            groups = [dict(g, params=list(range(len(slots)))) for g in states[first]["param_groups"]]
            optimizers.append({"state": per_slot, "param_groups": groups})
        return {"optimizers": optimizers}

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, rows = x.shape[:2]
        x = x.reshape(k, rows, -1)
        for layer in self.template.layers:
            if isinstance(layer, nn.Flatten):
                continue
            x = self._layer(layer, x)
        return x

    def _layer(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if isinstance(layer, HiddenBlock):
            out = x
            for m in layer.body:
                if m is layer.activation:  # then dropout, each replica's own
                    out = self._dropout(self._activation(out))
                elif not isinstance(m, nn.Dropout):
                    out = self._layer(m, out)
            return x + out if layer.residual else out
        if isinstance(layer, nn.Linear):
            return _StackedLinear.apply(*autocast_operands(x, self.tensor(layer, "weight"), self.tensor(layer, "bias")))
        return self._batch_norm(layer, x)

    def _activation(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        for a, b, act in self.activations:
            if isinstance(act, EXACT_ANYWHERE) or not _exact_on(x):
                parts.append(act(x[a:b]))
            else:  # on each replica's (rows, F) slice, laid out as its run's
                parts += [act(x[k]).unsqueeze(0) for k in range(a, b)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        """Each replica's mask drawn as F.dropout draws it on the CPU (bernoulli_(1 - p) of the
        input's shape, scaled by 1 / (1 - p)), from the replica's own generator."""
        if not self.training or not any(self.dropout):
            return x
        if not _exact_on(x):
            return self._device_dropout(x)
        noise = torch.empty(x.shape, dtype=x.dtype)  # drawn on the CPU, as the generators are
        for k, p in enumerate(self.dropout):
            if p > 0:
                noise[k].bernoulli_(1 - p, generator=self.generators[k]).div_(1 - p)
            else:
                noise[k].fill_(1.0)
        return x * noise.to(x.device)

    def _device_dropout(self, x: torch.Tensor) -> torch.Tensor:
        """Off the CPU: all replicas' masks in one draw from the stack's generator on x's
        device. The CPU's way, K host generators and a copy of their masks, would make every
        step wait on the host; these masks are not a run's own (docs/gpu.md)."""
        if self._device_generator is None or self._device_generator.device != x.device:
            seed, state = self._device_rng
            self._device_generator = torch.Generator(device=x.device)
            if state is not None and state.numel() == self._device_generator.get_state().numel():
                self._device_generator.set_state(state)
            else:
                self._device_generator.manual_seed(seed)
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        key = (x.device, dtype, x.dim())
        keep = self._keep.get(key)
        if keep is None:  # made once: a copy to the device each step would wait for the host
            keep = self._keep[key] = torch.tensor([1.0 - p for p in self.dropout], dtype=dtype).to(
                x.device).view(-1, *([1] * (x.dim() - 1)))
        uniform = torch.rand(x.shape, dtype=dtype, device=x.device, generator=self._device_generator)
        return x * ((uniform < keep) / keep).to(x.dtype)

    def _batch_norm(self, layer: BatchNorm, x: torch.Tensor) -> torch.Tensor:
        """One BatchNorm over (K, rows, F): each replica's statistics over its own rows, as its
        run computes them (model.batch_stats)."""
        weight, bias = self.tensor(layer, "weight").unsqueeze(1), self.tensor(layer, "bias").unsqueeze(1)
        mean, var = self.tensor(layer, "running_mean"), self.tensor(layer, "running_var")
        if x.dtype != weight.dtype:  # as model.BatchNorm: statistics in the parameters' float32
            x = x.to(weight.dtype)
        if self.training:
            out, batch_mean, batch_var = batch_stats(x, weight, bias, layer.eps)
            layer.update_running(batch_mean, batch_var, x.shape[1], mean, var,
                                 self.tensor(layer, "num_batches_tracked"))
            return out
        # Evaluation: each feature scaled by its running statistics, as the columns of one
        # BatchNorm over K*F features.
        k, rows, width = x.shape
        flat = x.transpose(0, 1).reshape(rows, k * width)
        out = F.batch_norm(flat, mean.view(-1), var.view(-1), weight.view(-1), bias.view(-1), False, 0.0, layer.eps)
        return out.reshape(rows, k, width).transpose(0, 1)


# ---------------------------------------------------------------------------- training module


class StackedModule(MLPModule):
    """MLPModule over K replicas: each metric is a vector of K, each replica's history, epoch
    log line, TensorBoard scalars and divergence its own run's."""

    def __init__(self, models: list[MLP], model_cfg, optim_cfgs: list, loggers: list, log_every_n_epochs: int = 1,
                 regression: bool = False, exact: bool = True, run_dirs: list | None = None):
        optim_groups = _runs([sweep.as_text(c) for c in optim_cfgs])
        super().__init__(model_cfg, optim_cfgs[0], 0, 0, log_every_n_epochs=log_every_n_epochs,
                         model=StackedMLP(models, optim_groups, exact), regression=regression)
        self.optim_cfgs = optim_cfgs
        self.replicas = len(models)
        self.label = "stack"  # names the stack on the console, where stacks train side by side
        self.replica_loggers = loggers  # a TensorBoardLogger per replica; the Trainer has none
        self.run_dirs = run_dirs or [None] * len(models)  # whose log file takes each replica's lines
        self.histories = [{k: [] for k in history_keys(self.score)} for _ in models]
        self.replica_tests: list[dict[str, float]] = [{} for _ in models]
        self.replica_diverged: list[dict[str, int] | None] = [None for _ in models]
        self._frozen: dict[int, tuple] = {}  # a replica diverged this epoch: its sums at that step

    def configure_optimizers(self) -> OptimizerStack:
        """One optimizer per group of replicas with the same `optim.*`, each built as a run builds
        its own, over its group's parameters."""
        return OptimizerStack([build_optimizer(self.optim_cfgs[a], self.model.group_parameters(g))
                               for g, (a, _) in enumerate(self.model.optim_groups)])

    def active(self, k: int) -> bool:
        """Replica k still writes its run: it has not diverged, or did in this epoch (a run
        stopped by a NaN records that epoch and ends)."""
        diverged = self.replica_diverged[k]
        return diverged is None or diverged["epoch"] == self.current_epoch + 1

    def loss_and_correct(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each replica's mean loss and correct count: (K,) each."""
        k, rows, outputs = logits.shape
        if self.regression:
            return F.mse_loss(logits[..., 0], y, reduction="none").mean(1), regression_terms(y)
        if self.loss_kind is Loss.cross_entropy:
            loss = F.cross_entropy(logits.reshape(k * rows, outputs), y.reshape(-1), reduction="none")
            return loss.view(k, rows).mean(1), (logits.argmax(2) == y).sum(1)
        probs = _per_replica(torch.sigmoid, logits)  # see EXACT_ANYWHERE
        if outputs == 1:  # one 0/1 output unit (XOR)
            loss = F.mse_loss(probs[..., 0], y.to(probs.dtype), reduction="none").mean(1)
            return loss, ((probs[..., 0] > 0.5).long() == y).sum(1)
        target = F.one_hot(y, outputs).to(probs.dtype)
        return F.mse_loss(probs, target, reduction="none").mean((1, 2)), (probs.argmax(2) == y).sum(1)

    def objective(self, loss: torch.Tensor) -> torch.Tensor:
        return loss.sum()  # replica k's gradient is d(loss_k): its own run's

    def log_step_loss(self, loss: torch.Tensor, step: int) -> None:
        for k, value in enumerate(loss.tolist()):
            if self.active(k):
                self.replica_loggers[k].log_metrics({"step/train_loss": value}, step=step)

    def _diverged(self, loss: torch.Tensor) -> bool:
        finite = torch.isfinite(loss)
        if bool(finite.all()):
            return False
        for k, ok in enumerate(finite.tolist()):
            if not ok and self.replica_diverged[k] is None:
                self.replica_diverged[k] = {"epoch": self.current_epoch + 1, "step": self.global_step}
                # Its run stops at this step: the epoch's training loss and score end here, as
                # its own run's do, not with the rest of the stack's batches.
                self._frozen[k] = (self._sums.loss[k].clone(), self._sums.terms[k].clone(), self._sums.rows)
        # The others go on: a replica's NaN reaches no other replica's tensors.
        return all(d is not None for d in self.replica_diverged)

    def _stop_diverged(self, step: int) -> None:
        self.trainer.should_stop = True  # every replica has diverged

    def running_means(self) -> tuple[float, float]:
        loss, score = self._replica_means(self._sums)
        return _mean(loss), _mean(score)

    @staticmethod
    def _replica_means(sums) -> tuple[list[float], list[float]]:
        rows = torch.tensor(float(sums.rows or math.nan), dtype=torch.float64)
        return (sums.loss / rows).tolist(), sums.scores(sums.loss, sums.terms, rows).tolist()

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self._sums = self.new_sums((self.replicas,))
        self._frozen = {}

    def on_train_epoch_end(self) -> None:
        losses, scores = self._replica_means(self._sums)
        for k, (loss, terms, rows) in self._frozen.items():  # as far as its run trained
            count = torch.tensor(float(rows or math.nan), dtype=torch.float64)
            losses[k] = (loss / count).item()
            scores[k] = self._sums.scores(loss, terms, count).item()
        epoch = self.current_epoch + 1
        seconds = (time.perf_counter() - self._epoch_start) / self.replicas  # each replica's share
        for k in range(self.replicas):
            if not self.active(k):
                continue
            h = self.histories[k]
            h["train_loss"].append(losses[k])
            h[f"train_{self.score}"].append(scores[k])
            h["epoch_seconds"].append(seconds)
            for key in ("val_loss", f"val_{self.score}"):
                if len(h[key]) < epoch:
                    h[key].append(math.nan)
            self.replica_loggers[k].log_metrics(epoch_scalars(h, self.score), step=epoch)
        self.log("train_loss", _mean(losses), logger=False)
        if epoch == 1 or epoch % self.log_every_n_epochs == 0:
            self._log_epoch(epoch)

    def _log_epoch(self, epoch: int) -> None:
        """Each replica's Keras line in its own run's log; on the console one line for all."""
        self._logged_epoch = epoch
        for k, h in enumerate(self.histories):
            if len(h["train_loss"]) >= epoch:
                log.info("Epoch %d/%d - %.2fs - %s", epoch, self.trainer.max_epochs, h["epoch_seconds"][epoch - 1],
                         epoch_line(h, epoch, self.score), extra={"log_to": self.run_dirs[k], "console": False})
        val = f"val_{self.score}"
        last = [h[val][epoch - 1] for h in self.histories if len(h[val]) >= epoch]
        log.info("Epoch %d/%d - %s - %.2fs for %d replicas - %s %s", epoch, self.trainer.max_epochs,
                 self.label, self.histories[0]["epoch_seconds"][epoch - 1] * self.replicas, self.replicas,
                 val, " ".join(f"{a:.4f}" for a in last), extra={"log_to": ()})

    def on_train_end(self) -> None:
        epochs = max(len(h["train_loss"]) for h in self.histories)
        if epochs and self._logged_epoch != epochs:
            self._log_epoch(epochs)

    # ------------------------------------------------------------------ resuming
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mlpbench"] = {
            "histories": [{k: list(v) for k, v in h.items()} for h in self.histories],
            "diverged": list(self.replica_diverged),
            "replica_rng": self.model.generator_states(),  # each replica's dropout generator
            "device_rng": self.model.device_generator_state(),  # off the CPU, the stack's
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint["mlpbench"]
        self.histories = [{k: list(v) for k, v in h.items()} for h in saved["histories"]]
        self.replica_diverged = list(saved["diverged"])
        self.model.set_generators(saved["replica_rng"], saved.get("device_rng"), checkpoint["global_step"])
        restore_cuda_rng(saved["cuda_rng"])

    # ------------------------------------------------------------------ evaluation
    def on_validation_epoch_start(self) -> None:
        self._eval_sums = self.new_sums((self.replicas,))

    def on_validation_epoch_end(self) -> None:
        losses, scores = self._replica_means(self._eval_sums)
        val = f"val_{self.score}"
        for k in range(self.replicas):
            if self.active(k):
                self.histories[k]["val_loss"].append(losses[k])
                self.histories[k][val].append(scores[k])
        self.log_dict({"val_loss": _mean(losses), val: _mean(scores)}, prog_bar=True, logger=False)

    def on_test_epoch_start(self) -> None:
        self._eval_sums = self.new_sums((self.replicas,))

    def on_test_epoch_end(self) -> None:
        losses, scores = self._replica_means(self._eval_sums)
        for k in range(self.replicas):
            if self.replica_diverged[k] is None:
                self.replica_tests[k] = {"test_loss": losses[k], f"test_{self.score}": scores[k]}
                self.replica_loggers[k].log_metrics({"test/loss": losses[k], f"test/{self.score}": scores[k]},
                                                    step=len(self.histories[k]["train_loss"]))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


class Replica:
    """What one replica's RunRecord reads (`history`, `test_metrics`), as of a run's module."""

    def __init__(self, module: StackedModule, k: int):
        self.module, self.k = module, k

    @property
    def history(self) -> dict[str, list[float]]:
        return self.module.histories[self.k]

    @property
    def test_metrics(self) -> dict[str, float]:
        return self.module.replica_tests[self.k]


# ---------------------------------------------------------------------------- checkpoints


def _write_checkpoints(files: list[tuple[Path, Path | None, dict]]) -> None:
    for last, best, checkpoint in files:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomic(last, buffer.getvalue())
        if best is not None:  # a file of its own (a hard link would share last.ckpt's damage)
            write_atomic(best, buffer.getvalue())


class ReplicaCheckpoints(Checkpoint):
    """Each replica's checkpoints/last.ckpt (every epoch) and best.ckpt (best val_acc so far),
    each an ordinary run's checkpoint: a resumed run continues from it alone or stacked.

    `background` (a stack off the CPU): the files are serialised and written by a thread while
    the next epoch trains. The checkpoints' contents are copied at the epoch's end, so the
    thread writes that epoch's state; one epoch's files at a time; `finish()` waits for the
    last (at the end of training, and on any error or interrupt). Measured on the CPU, K = 100
    tutorial models: building the checkpoints took 35 ms an epoch, serialising and writing them
    0.27 s (0.41 s with best.ckpt), as long as a GPU epoch of 12,000 rows might take. On the CPU
    a worker has one core, which a thread would only take from training: there they are
    written before the next epoch starts."""

    def __init__(self, run_dirs: list, module: StackedModule, background: bool = False):
        self.module = module
        # A ModelCheckpoint per run, not given to the Trainer: its state is what an ordinary
        # run's checkpoint holds, and its dirpath where the files go.
        self.replicas = [checkpoint_callback(Path(d), module.score) for d in run_dirs]
        # The stack by its runs, in order: its device generator's state continues only in the
        # same stack. Resumed as several (less memory) or with other mates, each part drawing
        # from that one state would give its replicas the same masks as another part's.
        self.members = [Path(d).name for d in run_dirs]
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="replica-checkpoints") if background else None
        self._writing = None  # the epoch's files in the writer's hands

    def finish(self, raise_error: bool = True) -> None:
        """Wait for the files being written; the writer's error raised here, or (ending on
        another error or an interrupt, which must stay what the runs record) logged."""
        if self._writing is None:
            return
        error = self._writing.exception()  # an interrupt while waiting leaves it to wait for again
        self._writing = None
        if error is not None and raise_error:
            raise error
        if error is not None:
            log.error("Writing the runs' checkpoints failed: %s", error, extra={"log_to": ()})

    def close(self) -> None:
        self.finish(raise_error=False)
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    def on_train_end(self, trainer, pl_module) -> None:
        self.finish()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.finish(raise_error=False)

    def state_dict(self) -> dict:
        return {"replicas": [c.state_dict() for c in self.replicas]}

    def load_state_dict(self, state: dict) -> None:
        for checkpoint, saved in zip(self.replicas, state["replicas"]):
            checkpoint.load_state_dict(saved)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        from lightning.fabric.utilities.apply_func import move_data_to_device

        # Off the CPU each stacked tensor comes to the host once, rather than each replica's
        # slice of it (K small copies, each a wait on the GPU); on the CPU nothing moves.
        full = move_data_to_device(trainer._checkpoint_connector.dump_checkpoint(weights_only=False), "cpu")
        module = self.module
        files = []  # (last.ckpt, best.ckpt or None, the checkpoint): this epoch's state, copied
        for k, callback in enumerate(self.replicas):
            if module.replica_diverged[k] is not None:  # a diverged run keeps its last good checkpoint
                continue
            score = torch.tensor(module.histories[k][f"val_{module.score}"][-1])
            directory = Path(callback.dirpath)
            directory.mkdir(parents=True, exist_ok=True)
            last, best = directory / "last.ckpt", directory / "best.ckpt"
            improved = bool(torch.isfinite(score)) and (callback.best_model_score is None
                                                         or bool(score > callback.best_model_score))
            callback.current_score = score
            callback.last_model_path = str(last)
            if improved:
                callback.best_model_score, callback.best_model_path = score, str(best)
                callback.best_k_models = {str(best): score}
                callback.kth_best_model_path, callback.kth_value = str(best), score
            entry = (last, best if improved else None, self.replica_checkpoint(full, k))
            if self._writer is None:  # one replica's checkpoint in memory at a time
                _write_checkpoints([entry])
            else:
                files.append(entry)
        if self._writer is not None:
            self.finish()  # the previous epoch's files first
            self._writing = self._writer.submit(_write_checkpoints, files)

    def replica_checkpoint(self, full: dict, k: int) -> dict:
        """Replica k's share of the stacked Trainer's checkpoint, keyed as an ordinary run's."""
        module, callback = self.module, self.replicas[k]
        checkpoint = {key: value for key, value in full.items()
                      if key not in ("state_dict", "optimizer_states", "callbacks", "mlpbench")}
        stacked = {key.removeprefix("model."): t for key, t in full["state_dict"].items()}
        checkpoint["state_dict"] = {f"model.{name}": t for name, t in module.model.replica_state(k, stacked).items()}
        checkpoint["optimizer_states"] = [module.model.replica_optimizer(full["optimizer_states"][0], k)]
        checkpoint["callbacks"] = {callback.state_key: callback.state_dict()}
        saved = full["mlpbench"]
        checkpoint["mlpbench"] = {"history": saved["histories"][k], "diverged_at": saved["diverged"][k],
                                  "cpu_rng": saved["replica_rng"][k], "cuda_rng": saved["cuda_rng"],
                                  "device_rng": saved.get("device_rng"), "device_stack": self.members}
        return checkpoint

    def stacked_checkpoint(self, paths: list) -> dict:
        """The stacked Trainer's checkpoint from the replicas' own (all at one epoch and step)."""
        replicas = [torch.load(p, map_location="cpu", weights_only=True) for p in paths]
        first = replicas[0]
        checkpoint = {key: value for key, value in first.items()
                      if key not in ("state_dict", "optimizer_states", "callbacks", "mlpbench")}
        model = self.module.model
        states = [{name: r["state_dict"][f"model.{name}"] for name in model.names} for r in replicas]
        checkpoint["state_dict"] = {f"model.{key}": t for key, t in model.stacked_state(states).items()}
        checkpoint["optimizer_states"] = [model.stacked_optimizer([r["optimizer_states"][0] for r in replicas])]
        checkpoint["callbacks"] = {self.state_key: {"replicas": [
            r["callbacks"].get(c.state_key) or c.state_dict() for r, c in zip(replicas, self.replicas)]}}
        same_stack = all(r["mlpbench"].get("device_stack") == self.members for r in replicas)
        checkpoint["mlpbench"] = {"histories": [r["mlpbench"]["history"] for r in replicas],
                                  "diverged": [r["mlpbench"]["diverged_at"] for r in replicas],
                                  "replica_rng": [r["mlpbench"]["cpu_rng"] for r in replicas],
                                  "cuda_rng": first["mlpbench"]["cuda_rng"],
                                  # else seeded afresh from the first replica's (set_generators)
                                  "device_rng": first["mlpbench"].get("device_rng") if same_stack else None}
        return checkpoint


# ---------------------------------------------------------------------------- a group of runs

def steps_per_chunk(cfg, replicas: int, features: int, on_cpu: bool) -> int:
    """Optimizer steps per Lightning step for a stack of `replicas` (the updates are the same
    for any value). On the CPU a chunk of K replicas' batches is K times a run's: K times fewer
    steps keep it as small (K = 5, batch 32, 48k rows: 64 steps a chunk, 32 MB, took 0.68-0.77x
    of five runs' step time, 12 steps 0.53-0.70x; three measurements each). Off the CPU the
    gather is one kernel whatever its size, and each Lightning step costs the host its fixed
    overhead: a run's trainer.steps_per_chunk, while the chunk stays under GPU_CHUNK_BYTES
    (K = 100, batch 32, 784 features: 26 steps; not yet timed on a GPU)."""
    if on_cpu:
        return max(1, cfg.trainer.steps_per_chunk // replicas)
    per_step = replicas * cfg.data.batch_size * features * 4
    return max(1, min(cfg.trainer.steps_per_chunk, GPU_CHUNK_BYTES // per_step))


def train_group(jobs: list[Job]) -> list[dict]:
    """Train `jobs` (stack_key equal, which read their checkpoints' positions) as one stacked
    model; each writes its run folder as it would alone. Returns their result.json payloads.
    A failure fails every run of the group."""
    import lightning.pytorch as pl

    from mlpbench.data import MLPDataModule, make_stacked_splits
    from mlpbench.hparams import run_hparams, run_logger, write_session_end, write_session_start
    from mlpbench.model import count_params, summary
    from mlpbench.module import AfterEpochMetrics
    from mlpbench.run import MAX_PREDICTION_ROWS, end_record, keep_interrupted, predictions, start_record

    quiet_lightning()
    # Replicas with one optimizer setting, and within those one activation, side by side: each
    # such run of replicas is one tensor or one slice (StackedMLP).
    jobs = sorted(jobs, key=lambda job: [sweep.setting(job.cfg, keys) for keys in sweep.STACKED_SETTINGS])
    cfg = jobs[0].cfg
    if jobs[0].threads:
        torch.set_num_threads(jobs[0].threads)
    # Each replica as its run builds it: the same split of the rows, the same initialisation,
    # and the CPU RNG state its run draws dropout masks from.
    data = make_stacked_splits(cfg.data, [job.cfg.seed for job in jobs])
    sizes = {"train": data.train_rows.shape[1], "val": data.val_rows.shape[1], "test": data.test_rows.shape[1]}
    fit = replicas_that_fit(cfg, data, len(jobs))
    check_memory(cfg, data, replicas=fit)  # not even one replica: the error names what it needs
    if fit < len(jobs):  # K for the memory it trains in (a GPU's free memory): stacks one after another
        parts = -(-len(jobs) // fit)
        size = -(-len(jobs) // parts)  # as even as they come: 100 in 2 of 50, not 99 + 1
        log.info("%d stacked replicas need about %.1f GB, more than fits where they train: %d stacks of at most %d",
                 len(jobs), memory_need(cfg, data, len(jobs)).total / 1e9, parts, size, extra={"log_to": ()})
        # Each stack's runs are recorded as they end: a later stack's failure leaves them as they are.
        return [payload for lo in range(0, len(jobs), size) for payload in train_group(jobs[lo:lo + size])]
    on_cpu = sweep.trains_on_cpu(cfg)
    models, rng = [], []
    for job in jobs:
        pl.seed_everything(job.cfg.seed, verbose=False)
        models.append(MLP(job.cfg.model, data.num_features, data.num_classes))
        rng.append(torch.get_rng_state())
    positions = [job.position for job in jobs]

    records, loggers = [], []
    for job, position in zip(jobs, positions):
        record = start_record(job.run_dir, job.overrides, job.cfg, position, job.plan.previous,
                              experiment=job.experiment, job=job.num,
                              stacked={"replicas": len(jobs), "runs": [j.run_dir.name for j in jobs]})
        record.sharing = len(jobs)
        records.append(record)
        loggers.append(run_logger(job.run_dir, purge_step=position["step"] if position else None))
    module = StackedModule(models, cfg.model, [job.cfg.optim for job in jobs], loggers,
                           log_every_n_epochs=cfg.trainer.log_every_n_epochs, regression=data.regression,
                           exact=on_cpu, run_dirs=[job.run_dir for job in jobs])
    module.model.set_generators(rng)
    # Named by the training settings its runs share (not seed, report.*, resume, sweep.*).
    common = [o.input_line for o in parse(jobs[0].overrides)
              if (o.key_or_group.split(".")[0],) not in sweep.NOT_TRAINING
              and all(o.input_line in job.overrides for job in jobs)]
    module.label = shown(common) if common else "stack"
    checkpoints = ReplicaCheckpoints([j.run_dir for j in jobs], module, background=not on_cpu)
    # The group's own callbacks (sweep.alone_because: only a search trial's pruning, shared by its
    # seeds): they watch the stack's metrics, the means over its replicas.
    stoppers = config_callbacks(cfg, jobs[0].overrides)
    trainer = make_trainer(cfg.trainer, jobs[0].run_dir, False, checkpoints,
                           AfterEpochMetrics(lambda: [r.save_every(1.0) for r in records]), *stoppers,
                           checkpoints=False)
    params = count_params(models[0])
    settings = len(_runs([[sweep.setting(job.cfg, keys) for keys in sweep.STACKED_SETTINGS[:-1]] for job in jobs]))
    log.info("One stacked model of %d replicas (%s params each; %d setting%s): runs %s", len(jobs),
             f"{params['total']:,}", settings, "" if settings == 1 else "s", ", ".join(j.run_dir.name for j in jobs),
             extra={"log_to": ()})
    for k, job in enumerate(jobs):
        log.info("Run %s: %s (%s params), trained stacked with %d others", job.run_dir.name,
                 shown(job.overrides), f"{params['total']:,}", len(jobs) - 1,
                 extra={"log_to": job.run_dir, "console": False})
        if positions[k]:
            log.info("Run %s: continuing after epoch %d (step %d) from %s", job.run_dir.name, positions[k]["epoch"],
                     positions[k]["step"], job.plan.checkpoint, extra={"log_to": job.run_dir})
        # Its own model's summary (the layers' names say its activation); on the console the first's.
        log.info("%s", summary(models[k], data.num_features),
                 extra={"log_to": job.run_dir, "console": k == 0 and jobs[0].num in (None, 0)})
    for k, record in enumerate(records):
        record.source = Replica(module, k)
        record.update(params=params, data=sizes, **({"table": data.encoding} if data.encoding else {}))

    resume_file = None
    try:
        for job, record, logger in zip(jobs, records, loggers):
            record.save()
            write_session_start(logger.experiment, run_hparams(record.payload["config"], job.overrides, job.experiment))
        if any(positions):
            with tempfile.NamedTemporaryFile(suffix=".ckpt", delete=False) as f:
                torch.save(checkpoints.stacked_checkpoint([j.plan.checkpoint for j in jobs]), f)
            resume_file = f.name
        datamodule = MLPDataModule(data, cfg.data.batch_size, [j.cfg.seed for j in jobs],
                                   steps_per_chunk(cfg, len(jobs), data.num_features, on_cpu),
                                   order=cfg.data.order)
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_file, weights_only=True)
        stopped = next((cb.stop_status for cb in stoppers if getattr(cb, "stop_status", None)), None)
        if stopped is None and any(d is None for d in module.replica_diverged):
            trainer.test(module, datamodule=datamodule, verbose=False)
            if sizes["test"] <= MAX_PREDICTION_ROWS:
                module.eval()
                with torch.no_grad():
                    logits = module(data.x_test[data.test_rows].to(module.device, module.dtype))  # 64-true: float64
                for k, (job, record) in enumerate(zip(jobs, records)):  # printed as each run alone prints them
                    record.update(predictions=predictions(logits[k], data.x_test.cpu(), data.y_test.cpu(), data.encoding,
                                                          run=job.run_dir.name, log_to=job.run_dir))
        for record, diverged in zip(records, module.replica_diverged):
            end_record(record, Status.diverged if diverged else stopped or Status.ok, diverged, trainer, devices=1)
    except (KeyboardInterrupt, SystemExit) as e:
        keep_interrupted(records, e, jobs[0].cfg, "Runs %s interrupted after {epochs} epochs; kept their results and "
                         "checkpoints.", ", ".join(j.run_dir.name for j in jobs))
    except Exception as e:
        for record, logger in zip(records, loggers):
            record.fail(e)
            logger.close_failed()
        raise
    finally:
        checkpoints.close()
        if resume_file:
            os.unlink(resume_file)

    for k, (job, record, logger) in enumerate(zip(jobs, records, loggers)):
        write_session_end(logger.experiment, record.payload["status"])
        logger.close()
        log.info("%s (its share) on %s -> %s", run_line(job.run_dir.name, record.payload),
                 record.payload.get("device", "?"), record.path, extra={"log_to": job.run_dir})
    return [r.payload for r in records]
