"""`diagnostics=true`: why a network trains badly, per layer, in TensorBoard.

Every `trainer.log_every_n_steps` steps, for each Dense layer: the norm of its weight
gradient and of its weights; for each hidden layer's activation output: its mean and std,
the fraction of dead units (ReLU-family: zero or negative for every row of the batch) or
of saturated values (sigmoid outside [0.025, 0.975], tanh beyond +-0.95: where the slope
is under a tenth of its peak); and, at the first of those steps in each epoch, histograms
of activations and gradients (they cost ten times the scalars).

The ratio of the first to the last Dense layer's gradient makes vanishing gradients one
number: history["grad_ratio"] per epoch, metrics["grad_ratio"] averaged over the run. It
compares root-mean-square gradients (norm / sqrt(weights)), so that the 784x128 first
layer and the 128x10 output layer are compared per weight, not by their sizes. A network
whose signal dies in the forward pass has small gradients everywhere, so the ratio stays
near its usual value: history["first_grad_norm"] (the first layer's gradient norm) shows
that case as a number far below that of a network that learns.
Nothing is computed on the other steps; with diagnostics off the callback is not added.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
from torch import nn

from mlpbench.model import MLP

DEAD_WHEN_NONPOSITIVE = (nn.ReLU, nn.LeakyReLU, nn.ELU)
SIGMOID_FLAT = 0.025  # sigmoid' < 0.1 * sigmoid'(0) outside [0.025, 0.975]
TANH_FLAT = 0.95  # tanh' < 0.1 * tanh'(0) beyond |0.95|
# 64 even buckets: event files a tenth the size of the default "tensorflow" buckets.
HISTOGRAM_BINS = 64


def _layer_name(index: int) -> str:
    return f"layer_{index:02d}"


class Diagnostics(pl.Callback):
    def __init__(self, every_n_steps: int):
        self.every_n_steps = every_n_steps
        self._activations: dict[int, torch.Tensor] = {}
        self._hooks: list = []
        self._epoch_ratios: list[float] = []
        self._epoch_first_norms: list[float] = []
        self._histograms_due = True

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        model: MLP = pl_module.model
        self.blocks = model.hidden_blocks
        self.linears = [b.linear for b in self.blocks] + [model.output_layer]
        self._hooks = [block.activation.register_forward_hook(self._keeper(i))
                       for i, block in enumerate(self.blocks, start=1)]
        pl_module.history.setdefault("grad_ratio", [])
        pl_module.history.setdefault("first_grad_norm", [])

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def _keeper(self, index: int):
        # Each training forward keeps a reference to its activations (no copy); the
        # backward of a step that is due for statistics reads them.
        def keep(module, inputs, output):
            if torch.is_grad_enabled():
                self._activations[index] = output.detach()
        return keep

    def on_after_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Several optimizer steps run inside one Lightning step: global_step is this step's index.
        if trainer.global_step % self.every_n_steps != 0:
            return
        writer = trainer.logger.experiment if trainer.logger is not None else None
        step = trainer.global_step
        names = [_layer_name(i) for i in range(1, len(self.blocks) + 1)] + ["output"]
        grads = [lin.weight.grad for lin in self.linears]
        stats: dict[str, torch.Tensor] = {}
        for name, lin, grad in zip(names, self.linears, grads):
            stats[f"weight_norm/{name}"] = lin.weight.detach().norm()
            if grad is not None:
                stats[f"grad_norm/{name}"] = grad.norm()
        for index, out in self._activations.items():
            name = _layer_name(index)
            stats[f"activation_mean/{name}"] = out.mean()
            stats[f"activation_std/{name}"] = out.std()
            act = self.blocks[index - 1].activation
            if isinstance(act, DEAD_WHEN_NONPOSITIVE):
                stats[f"dead_units/{name}"] = (out <= 0).all(dim=0).float().mean()
            elif isinstance(act, nn.Sigmoid):
                stats[f"saturated/{name}"] = ((out < SIGMOID_FLAT) | (out > 1 - SIGMOID_FLAT)).float().mean()
            elif isinstance(act, nn.Tanh):
                stats[f"saturated/{name}"] = (out.abs() > TANH_FLAT).float().mean()
        # One host sync for all of them.
        values = dict(zip(stats, torch.stack([v.float() for v in stats.values()]).tolist()))
        first, last = values.get(f"grad_norm/{names[0]}"), values.get("grad_norm/output")
        if first is not None:
            self._epoch_first_norms.append(first)
        if len(self.linears) > 1 and first is not None and last:
            first /= math.sqrt(self.linears[0].weight.numel())
            last /= math.sqrt(self.linears[-1].weight.numel())
            values["grad_ratio/first_to_last"] = first / last
            self._epoch_ratios.append(first / last)
        if writer is None:
            return
        for tag, value in values.items():
            writer.add_scalar(tag, value, step)
        self._write_histograms(writer, names, grads, step)

    def _write_histograms(self, writer, names: list[str], grads: list, step: int) -> None:
        if not self._histograms_due:
            return
        self._histograms_due = False
        for index, out in self._activations.items():
            writer.add_histogram(f"activations/{_layer_name(index)}", out, step, bins=HISTOGRAM_BINS)
        for name, grad in zip(names, grads):
            if grad is not None:
                writer.add_histogram(f"gradients/{name}", grad, step, bins=HISTOGRAM_BINS)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._histograms_due = True

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Runs before the module's own epoch end, so the epoch's history rows stay aligned.
        for key, samples in (("grad_ratio", self._epoch_ratios), ("first_grad_norm", self._epoch_first_norms)):
            finite = [v for v in samples if math.isfinite(v)]
            pl_module.history[key].append(sum(finite) / len(finite) if finite else math.nan)
            samples.clear()
