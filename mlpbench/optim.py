"""Optimizers (`optim=...`): torch's optimizers, configured from conf/optim/*.yaml.

The YAML files hold Keras' default settings. Torch's update rules differ from Keras'
in one detail worth knowing: RMSprop adds eps outside the square root (Keras inside).

SGD, Adagrad, Adam and AdamW use torch's fused kernels (one kernel for all parameters,
CPU and CUDA): the same update to float rounding, and for a small MLP a third of the
time of a step saved. RMSprop and NAdam have none and run torch's default code.
"""

from __future__ import annotations

from typing import Iterable

import torch


def build_optimizer(optim_cfg, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    params = list(params)
    fused = {"fused": True} if all(p.device.type in ("cpu", "cuda") for p in params) else {}
    c = optim_cfg
    name = c.name
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
