import pytest
import torch

from mlpbench.optim import build_optimizer
from tests.conftest import make_config

# Keras' defaults, as the tutorials use them.
KERAS_DEFAULTS = {
    "sgd": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.0, "nesterov": False}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.001, "alpha": 0.9, "eps": 1e-7, "momentum": 0.0}),
    "adagrad": (torch.optim.Adagrad, {"lr": 0.001, "initial_accumulator_value": 0.1, "eps": 1e-7}),
    "adam": (torch.optim.Adam, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7}),
    "nadam": (torch.optim.NAdam, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7}),
    "adamw": (torch.optim.AdamW, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7, "weight_decay": 0.004}),
}


@pytest.mark.parametrize("name", KERAS_DEFAULTS)
def test_each_optimizer_defaults_to_keras_settings(name):
    cls, expected = KERAS_DEFAULTS[name]
    opt = build_optimizer(make_config(f"optim={name}").optim, [torch.nn.Parameter(torch.zeros(2))])
    assert type(opt) is cls
    group = opt.param_groups[0]
    for key, value in expected.items():
        assert group[key] == pytest.approx(value), key


def test_optimizer_values_can_be_overridden():
    cfg = make_config("optim=sgd", "optim.lr=0.1", "optim.momentum=0.9", "optim.nesterov=true")
    group = build_optimizer(cfg.optim, [torch.nn.Parameter(torch.zeros(2))]).param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.1, 0.9, True)


def test_fused_kernels_take_the_same_steps_as_torchs_default_code():
    torch.manual_seed(0)
    w0, x = torch.randn(64, 32), torch.randn(16, 64)
    finals = []
    for use_builder in (True, False):
        w = torch.nn.Parameter(w0.clone())
        cfg = make_config("optim=adam").optim
        opt = build_optimizer(cfg, [w]) if use_builder else torch.optim.Adam([w], lr=cfg.lr, eps=cfg.eps)
        for _ in range(50):
            opt.zero_grad()
            (x @ w).tanh().pow(2).mean().backward()
            opt.step()
        finals.append(w.detach())
    assert build_optimizer(make_config("optim=adam").optim, [torch.nn.Parameter(w0)]).defaults["fused"]
    torch.testing.assert_close(finals[0], finals[1], rtol=1e-5, atol=1e-6)
