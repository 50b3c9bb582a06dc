"""The network (`model.*`): a configurable MLP, its initialisation and Keras-style summary."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mlpbench.schema import Activation, Init, Loss, RunningVariance, depth_of

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


class _BatchStats(torch.autograd.Function):
    """Training-mode BatchNorm of x (..., rows, features) over its rows: (x - mean) /
    sqrt(var + eps) * weight + bias with the batch's mean and biased variance (returned too, for
    the running averages), and its gradients, from sums over the rows whose order depends on
    neither the thread count nor a leading dimension. torch's own kernel sums each thread's share
    of the rows apart: its outputs differed in the last bit between 1 and 2 threads, and a
    depth-10 net turned that into 0.27 of val_loss in 10 epochs. The sums over rows of a
    (K, rows, F) tensor give each of the K what its own (rows, F) gives (measured: 1 and 2
    threads, 4-1,024 rows, 2-1,000 features), so stacked replicas get their runs' numbers."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float):
        rows = x.shape[-2]
        # Sums, not torch.var_mean: its column reduction took 220 us on 32 x 784, these 10.
        mean = x.sum(-2, keepdim=True) / rows
        centered = x - mean
        var = centered.square().sum(-2, keepdim=True) / rows
        invstd = torch.rsqrt(var + eps)
        xhat = centered * invstd
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.mark_non_differentiable(mean, var)
        return torch.addcmul(bias, xhat, weight), mean.squeeze(-2), var.squeeze(-2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor, _mean, _var):
        xhat, invstd, weight = ctx.saved_tensors
        rows = grad.shape[-2]
        grad_bias = grad.sum(-2, keepdim=True)
        grad_weight = (grad * xhat).sum(-2, keepdim=True)
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad - grad_bias / rows - xhat * (grad_weight / rows)) * (weight * invstd)
        return grad_x, grad_weight.reshape(weight.shape), grad_bias.reshape(weight.shape), None


def batch_stats(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BatchNorm's training output of x (..., rows, features), and the batch's mean and biased
    variance (..., features); weight and bias broadcast against (..., 1, features)."""
    return _BatchStats.apply(x, weight, bias, eps)


class BatchNorm(nn.BatchNorm1d):
    """nn.BatchNorm1d (the same parameters, buffers and state_dict) whose training outputs do not
    depend on the thread count (_BatchStats). Its running variance averages the batch's
    unbiased variance, as torch's does; evaluation is torch's kernel on the running statistics."""

    biased_running_var = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if x.dtype != weight.dtype:  # *-mixed autocast: statistics in the parameters' float32
            x = x.to(weight.dtype)
        if not self.training:
            return super().forward(x)
        out, mean, var = batch_stats(x, weight, self.bias, self.eps)
        self.update_running(mean, var, x.shape[0])
        return out

    @torch.no_grad()
    def update_running(self, mean: torch.Tensor, var: torch.Tensor, rows: int, running_mean=None,
                       running_var=None, batches=None) -> None:
        """The running averages after a batch of `rows` with this mean and biased variance (of
        this layer's own buffers, or of the ones given: stacked replicas')."""
        if not self.biased_running_var:
            var = var * (rows / (rows - 1))
        (self.running_mean if running_mean is None else running_mean).lerp_(mean, self.momentum)
        (self.running_var if running_var is None else running_var).lerp_(var, self.momentum)
        (self.num_batches_tracked if batches is None else batches).add_(1)


class KerasBatchNorm1d(BatchNorm):
    """BatchNorm whose running variance averages the batch's biased variance, as Keras' does
    (torch's averages the unbiased one, n/(n-1) larger); training outputs are the same."""

    biased_running_var = True


# Output widths below this many units take their products from bmm's per-matrix kernel (below).
NARROW_UNITS = 16


class _PerMatrixWeightGrad(torch.autograd.Function):
    """x @ W^T + b as F.linear computes it, with the weight's gradient g^T x computed as one matrix
    of a batched matmul over two copies. mm's kernel for that product of a narrow layer (5-11
    outputs: the 10-class output layer) depends on the thread count, and a 1-ulp difference
    grew to 0.05 of a depth-10 net's val_loss in 10 epochs; bmm over a batch of two or more
    computes each matrix alike for every batch size and thread count (measured over widths 1-512,
    batches 4-128, inputs 2-784, 1 and 2 threads). So a run gives the same numbers whatever its
    thread count, and stacked replicas (mlpbench/stacked.py, bmm over K) give their run's."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad.mm(weight) if ctx.needs_input_grad[0] else None
        pair = torch.stack([grad.t(), grad.t()]), torch.stack([x, x])
        return grad_x, torch.bmm(*pair)[0], grad.sum(0)


class Dense(nn.Linear):
    """nn.Linear (the same parameters and state_dict keys) whose products do not depend on the
    thread count: a narrow layer's weight gradient through _PerMatrixWeightGrad; the other
    products are mm's, the same for every thread count (measured as above)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.out_features < NARROW_UNITS and x.dim() == 2 and x.device.type == "cpu" and torch.is_grad_enabled():
            return _PerMatrixWeightGrad.apply(*autocast_operands(x, self.weight, self.bias))
        return F.linear(x, self.weight, self.bias)


def autocast_operands(*operands: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A custom Function's operands as autocast gives F.linear's (trainer.precision=bf16-mixed,
    16-mixed): autocast casts no operand of a Function, and its backward then met a bf16
    gradient with a float32 weight. The casts are autograd ops: the gradients go back to float32."""
    device = operands[0].device.type
    if not torch.is_autocast_enabled(device):
        return operands
    dtype = torch.get_autocast_dtype(device)
    return tuple(t.to(dtype) for t in operands)


def batch_norm(width: int, model_cfg) -> BatchNorm:
    cls = KerasBatchNorm1d if RunningVariance(model_cfg.bn_running_var) is RunningVariance.biased else BatchNorm
    return cls(width, eps=model_cfg.bn_eps, momentum=model_cfg.bn_momentum)


def hidden_widths(model_cfg, num_features: int, num_outputs: int) -> list[int]:
    """Width of each hidden layer from `model.units` (int, list, or a rule of thumb)."""
    units, depth = model_cfg.units, depth_of(model_cfg)
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
        layers: list[nn.Module] = [Dense(n_in, n_out)]
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
        layers.append(Dense(n_in, output_size(model_cfg, num_classes)))
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
