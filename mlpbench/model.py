"""The network (`model.*`): a configurable MLP, its initialisation and Keras-style summary."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mlpbench.schema import Activation, Init, Loss, RunningVariance

ACTIVATIONS: dict[Activation, Callable[[float], nn.Module]] = {
    Activation.relu: lambda slope: nn.ReLU(),
    Activation.leaky_relu: lambda slope: nn.LeakyReLU(slope),
    Activation.tanh: lambda slope: nn.Tanh(),
    Activation.sigmoid: lambda slope: nn.Sigmoid(),
    Activation.gelu: lambda slope: nn.GELU(),
    Activation.silu: lambda slope: nn.SiLU(),
    Activation.elu: lambda slope: nn.ELU(),
    Activation.linear: lambda slope: nn.Identity(),
}


class KerasBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm whose running variance averages the batch's biased variance, as Keras' does
    (torch's averages the unbiased one, n/(n-1) larger); training outputs are the same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        var, mean = torch.var_mean(x, dim=0, correction=0)
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var, self.momentum)
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def batch_norm(width: int, model_cfg) -> nn.BatchNorm1d:
    cls = KerasBatchNorm1d if RunningVariance(model_cfg.bn_running_var) is RunningVariance.biased else nn.BatchNorm1d
    return cls(width, eps=model_cfg.bn_eps, momentum=model_cfg.bn_momentum)


def hidden_widths(model_cfg, num_features: int, num_outputs: int) -> list[int]:
    """Width of each hidden layer from `model.units` (int, list, or a rule of thumb)."""
    units, depth = model_cfg.units, model_cfg.depth
    if units == "mean":
        units = max(1, round((num_features + num_outputs) / 2))
    elif units == "geomean":
        units = max(1, round(math.sqrt(num_features * num_outputs)))
    if isinstance(units, int):
        return [units] * depth
    return [int(u) for u in units]


def output_size(model_cfg, num_classes: int) -> int:
    # MSE on a sigmoid output with two classes is the XOR tutorial's single 0/1 unit.
    return 1 if Loss(model_cfg.loss) is Loss.mse and num_classes == 2 else num_classes


class HiddenBlock(nn.Module):
    """Dense -> [BatchNorm] -> activation -> [Dropout], with an identity shortcut if `residual`."""

    def __init__(self, n_in: int, n_out: int, model_cfg):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
        if model_cfg.hidden_bn:
            layers.append(batch_norm(n_out, model_cfg))
        self._activation_index = len(layers)
        layers.append(ACTIVATIONS[Activation(model_cfg.activation)](model_cfg.negative_slope))
        if model_cfg.dropout > 0:
            layers.append(nn.Dropout(model_cfg.dropout))
        self.body = nn.Sequential(*layers)
        # Shortcuts only join layers of equal width: no projection weights are added.
        self.residual = bool(model_cfg.residual) and n_in == n_out

    @property
    def linear(self) -> nn.Linear:
        return self.body[0]

    @property
    def activation(self) -> nn.Module:
        return self.body[self._activation_index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class MLP(nn.Module):
    def __init__(self, model_cfg, num_features: int, num_classes: int):
        super().__init__()
        widths = hidden_widths(model_cfg, num_features, num_classes)
        layers: list[nn.Module] = [nn.Flatten()]
        if model_cfg.input_bn:
            layers.append(batch_norm(num_features, model_cfg))
        n_in = num_features
        for width in widths:
            layers.append(HiddenBlock(n_in, width, model_cfg))
            n_in = width
        layers.append(nn.Linear(n_in, output_size(model_cfg, num_classes)))
        self.layers = nn.Sequential(*layers)
        if Init(model_cfg.init) is Init.keras:
            keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    @property
    def hidden_blocks(self) -> list[HiddenBlock]:
        return [m for m in self.layers if isinstance(m, HiddenBlock)]

    @property
    def output_layer(self) -> nn.Linear:
        return self.layers[-1]


def keras_init(module: nn.Module) -> None:
    """Keras' Dense defaults: glorot-uniform kernel, zero bias."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def count_params(module: nn.Module) -> dict[str, int]:
    """Counts as Keras reports them: BatchNorm's running mean and variance are
    non-trainable weights; the integer batch counter torch keeps is not a weight."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    stats = sum(b.numel() for b in module.buffers() if b.is_floating_point())
    non_trainable = frozen + stats
    return {"trainable": trainable, "non_trainable": non_trainable, "total": trainable + non_trainable}


def summary(model: MLP, num_features: int) -> str:
    """A Keras-style table: layer, output shape, parameters, then the three totals."""
    rows = [("Layer (type)", "Output Shape", "Param #")]
    width = num_features
    for i, layer in enumerate(model.layers):
        modules = list(layer.body) if isinstance(layer, HiddenBlock) else [layer]
        for m in modules:
            if isinstance(m, nn.Linear):
                width = m.out_features
            params = sum(t.numel() for t in (*m.parameters(), *m.buffers()) if t.is_floating_point())
            rows.append((f"{type(m).__name__.lower()}_{i}", f"(None, {width})", f"{params:,}"))
        if isinstance(layer, HiddenBlock) and layer.residual:
            rows.append((f"add_{i} (shortcut)", f"(None, {width})", "0"))
    counts = count_params(model)
    w0 = max(len(r[0]) for r in rows) + 2
    w1 = max(len(r[1]) for r in rows) + 2
    line = "-" * (w0 + w1 + 12)
    text = [line] + [f"{a:<{w0}}{b:<{w1}}{c:>10}" for a, b, c in rows[:1]] + [line]
    text += [f"{a:<{w0}}{b:<{w1}}{c:>10}" for a, b, c in rows[1:]] + [line]
    text += [f"Total params: {counts['total']:,}",
             f"Trainable params: {counts['trainable']:,}",
             f"Non-trainable params: {counts['non_trainable']:,}", line]
    return "\n".join(text)
