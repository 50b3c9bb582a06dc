"""Optimizers (`optim=...`): torch's optimizers, configured from conf/optim/*.yaml, with Keras 3's
update rules where torch's differ (`optim.rules=keras`, the default: the YAML files hold Keras'
default settings, and the tutorials ran Keras).

Where Keras 3 and torch differ (each checked against Keras 3.15 on a fixed gradient sequence,
tests/fixtures/keras_reference.json):
- Adam, AdamW: Keras adds epsilon to sqrt(v) before the bias correction; torch after it. Keras'
  step is torch's with epsilon / sqrt(1 - beta2^t): for gradients near epsilon or below, Keras'
  steps are smaller early, by up to sqrt(1 - beta2^t) (0.03x at step 1, 0.3x at step 100).
- RMSprop, Adagrad: Keras divides by sqrt(v + eps), torch by sqrt(v) + eps: for parameters with
  tiny gradients Keras' steps are up to 1/sqrt(eps) smaller (about 3,000x at eps 1e-7).
- Nadam: Keras 3's momentum schedule is beta1 (1 - 0.5 * 0.96^t): torch's NAdam with
  momentum_decay=1; torch's default 0.004 is Keras 2's schedule.
- weight_decay: Keras applies it decoupled (w -= lr * wd * w before each update) for every
  optimizer; torch's weight_decay is an L2 term in the gradient, except AdamW's.
SGD is the same in both.

SGD, Adagrad (torch rules), Adam and AdamW use torch's fused kernels (one kernel for all
parameters, CPU and CUDA): the same update to float rounding, and for a small MLP a third of the
time of a step saved. Keras' RMSprop and Adagrad are written with torch's foreach kernels.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

from mlpbench.schema import OptimRules


def _keras_decay(optimizer: torch.optim.Optimizer) -> None:
    # Keras 3: decoupled weight decay for every optimizer, applied before the update.
    for group in optimizer.param_groups:
        wd = group.get("keras_weight_decay", 0.0)
        params = [p for p in group["params"] if p.grad is not None]
        if wd and params:
            torch._foreach_mul_(params, 1.0 - group["lr"] * wd)


class _KerasDecay:
    """Mixin for torch's optimizers: Keras 3's decoupled weight decay before torch's update."""

    def __init__(self, params, keras_weight_decay: float = 0.0, **kwargs):
        super().__init__(params, **kwargs)
        for group in self.param_groups:
            group.setdefault("keras_weight_decay", keras_weight_decay)

    def step(self, closure=None):
        with torch.no_grad():  # in place on parameters that require grad (torch's own steps are no_grad)
            _keras_decay(self)
        return super().step(closure)


class KerasAdam(_KerasDecay, torch.optim.Adam):
    """Keras 3's Adam: torch's (fused) Adam with epsilon / sqrt(1 - beta2^t) at step t, which
    is Keras' epsilon added before the bias correction."""

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        for group in self.param_groups:
            group.setdefault("keras_eps", group["eps"])

    def step(self, closure=None):
        for group in self.param_groups:
            first = next((p for p in group["params"] if p.grad is not None), None)
            if first is None:
                continue
            # The step count kept in the group: the fused kernels' own is a device tensor, and
            # reading it (int(state["step"])) waited for the GPU every step. Read once where a
            # checkpoint from before keras_step resumes.
            # Under a GradScaler (16-mixed) a fused step may be skipped, and torch's count rolled
            # back: there the count is read as before.
            t = group.get("keras_step")
            if t is None or getattr(self, "found_inf", None) is not None:
                t = int(self.state[first]["step"]) if self.state[first] else 0
            group["keras_step"] = t = t + 1
            group["eps"] = group["keras_eps"] / math.sqrt(1.0 - group["betas"][1] ** t)
        return super().step(closure)


class KerasAdamW(KerasAdam, torch.optim.AdamW):
    """Keras 3's AdamW: KerasAdam's epsilon, torch AdamW's decoupled decay (Keras' own)."""


class KerasNAdam(_KerasDecay, torch.optim.NAdam):
    """Keras 3's Nadam: torch's with Keras 3's momentum schedule and decoupled weight decay."""

    def __init__(self, params, **kwargs):
        super().__init__(params, momentum_decay=1.0, **kwargs)


class KerasSGD(_KerasDecay, torch.optim.SGD):
    """Keras 3's SGD: torch's update (the same), Keras' decoupled weight decay."""


class _KerasForeach(torch.optim.Optimizer):
    """An optimizer written with torch's foreach kernels: one kernel per operation for all of a
    group's parameters, after Keras' weight decay. Subclasses make each parameter's state
    (`_new_state`) and update a group (`_update`)."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        _keras_decay(self)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if not self.state[p]:
                    self.state[p].update(self._new_state(group, p))
            self._update(group, params, [p.grad for p in params])
        return loss


class KerasRMSprop(_KerasForeach):
    """Keras 3's RMSprop: v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps) (centered:
    sqrt(v - mean(g)^2 + eps)), through a momentum buffer when momentum > 0."""

    def __init__(self, params, lr: float, rho: float, eps: float, momentum: float = 0.0, centered: bool = False,
                 keras_weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, momentum=momentum, centered=centered,
                                      keras_weight_decay=keras_weight_decay))

    def _new_state(self, group: dict, p: torch.Tensor) -> dict:
        state = {"velocity": torch.zeros_like(p)}
        if group["momentum"] > 0:
            state["momentum"] = torch.zeros_like(p)
        if group["centered"]:
            state["average_grad"] = torch.zeros_like(p)
        return state

    def _update(self, group: dict, params: list, grads: list) -> None:
        velocity = [self.state[p]["velocity"] for p in params]
        torch._foreach_mul_(velocity, group["rho"])
        torch._foreach_addcmul_(velocity, grads, grads, value=1.0 - group["rho"])
        if group["centered"]:
            average = [self.state[p]["average_grad"] for p in params]
            torch._foreach_lerp_(average, grads, 1.0 - group["rho"])
            denominator = torch._foreach_addcmul(velocity, average, average, value=-1.0)
            torch._foreach_add_(denominator, group["eps"])
        else:
            denominator = torch._foreach_add(velocity, group["eps"])
        torch._foreach_sqrt_(denominator)
        if group["momentum"] > 0:
            buffers = [self.state[p]["momentum"] for p in params]
            torch._foreach_mul_(buffers, group["momentum"])
            torch._foreach_addcdiv_(buffers, grads, denominator, value=group["lr"])
            torch._foreach_sub_(params, buffers)
        else:
            torch._foreach_addcdiv_(params, grads, denominator, value=-group["lr"])


class KerasAdagrad(_KerasForeach):
    """Keras 3's Adagrad: a += g^2; w -= lr g / sqrt(a + eps)."""

    def __init__(self, params, lr: float, initial_accumulator_value: float, eps: float,
                 keras_weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      keras_weight_decay=keras_weight_decay))

    def _new_state(self, group: dict, p: torch.Tensor) -> dict:
        return {"accumulator": torch.full_like(p, group["initial_accumulator_value"])}

    def _update(self, group: dict, params: list, grads: list) -> None:
        accumulators = [self.state[p]["accumulator"] for p in params]
        torch._foreach_addcmul_(accumulators, grads, grads)
        denominator = torch._foreach_add(accumulators, group["eps"])
        torch._foreach_sqrt_(denominator)
        torch._foreach_addcdiv_(params, grads, denominator, value=-group["lr"])


def build_optimizer(optim_cfg, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    params = list(params)
    fused = {"fused": True} if all(p.device.type in ("cpu", "cuda") for p in params) else {}
    c = optim_cfg
    name = c.name
    if OptimRules(c.rules) is OptimRules.keras:
        decay = {"keras_weight_decay": c.weight_decay}
        if name == "sgd":
            return KerasSGD(params, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov, **decay, **fused)
        if name == "rmsprop":
            return KerasRMSprop(params, lr=c.lr, rho=c.rho, eps=c.eps, momentum=c.momentum, centered=c.centered,
                                **decay)
        if name == "adagrad":
            return KerasAdagrad(params, lr=c.lr, initial_accumulator_value=c.initial_accumulator_value, eps=c.eps,
                                **decay)
        if name == "adam":
            return KerasAdam(params, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps, amsgrad=c.amsgrad, **decay,
                             **fused)
        if name == "adamw":  # AdamW's own decay is Keras' already
            return KerasAdamW(params, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps, amsgrad=c.amsgrad,
                              weight_decay=c.weight_decay, **fused)
        if name == "nadam":
            return KerasNAdam(params, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps, **decay)
        raise ValueError(f"optim.name={name}: unknown optimizer")
    if name == "sgd":
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov,
                               weight_decay=c.weight_decay, **fused)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=c.lr, alpha=c.rho, eps=c.eps, momentum=c.momentum,
                                   centered=c.centered, weight_decay=c.weight_decay)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=c.lr, initial_accumulator_value=c.initial_accumulator_value,
                                   eps=c.eps, weight_decay=c.weight_decay, **fused)
    if name == "adam":
        return torch.optim.Adam(params, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps, amsgrad=c.amsgrad,
                                weight_decay=c.weight_decay, **fused)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps, amsgrad=c.amsgrad,
                                 weight_decay=c.weight_decay, **fused)
    if name == "nadam":
        return torch.optim.NAdam(params, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps,
                                 weight_decay=c.weight_decay)
    raise ValueError(f"optim.name={name}: unknown optimizer")


class OptimizerStack(torch.optim.Optimizer):
    """Several optimizers stepped as one, for Lightning (which then counts one step per step):
    stacked replicas with different optimizer settings (mlpbench/stacked.py), one optimizer per
    setting over its replicas' parameters. Its state_dict holds each optimizer's."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        super().__init__([p for o in optimizers for g in o.param_groups for p in g["params"]], {})
        self.optimizers = optimizers
        self.param_groups = [g for o in optimizers for g in o.param_groups]

    @property
    def state(self) -> dict:
        return {p: s for o in self.optimizers for p, s in o.state.items()}

    @state.setter
    def state(self, value) -> None:  # torch's __init__ sets it; each optimizer keeps its own
        pass

    def step(self, closure=None):
        loss = None if closure is None else closure()
        for optimizer in self.optimizers:
            optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none)

    def state_dict(self) -> dict:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict) -> None:
        for optimizer, state in zip(self.optimizers, state_dict["optimizers"], strict=True):
            optimizer.load_state_dict(state)
