import pytest
import torch

from mlpbench import optim
from mlpbench.optim import build_optimizer
from tests.conftest import make_config

# Keras' defaults, as the tutorials use them, with torch's own rules (optim.rules=torch).
KERAS_DEFAULTS = {
    "sgd": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.0, "nesterov": False}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.001, "alpha": 0.9, "eps": 1e-7, "momentum": 0.0}),
    "adagrad": (torch.optim.Adagrad, {"lr": 0.001, "initial_accumulator_value": 0.1, "eps": 1e-7}),
    "adam": (torch.optim.Adam, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7}),
    "nadam": (torch.optim.NAdam, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7}),
    "adamw": (torch.optim.AdamW, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7, "weight_decay": 0.004}),
}


KERAS_RULES = {"sgd": optim.KerasSGD, "rmsprop": optim.KerasRMSprop, "adagrad": optim.KerasAdagrad,
               "adam": optim.KerasAdam, "nadam": optim.KerasNAdam, "adamw": optim.KerasAdamW}


@pytest.mark.parametrize("name", KERAS_DEFAULTS)
def test_each_optimizer_defaults_to_keras_settings(name):
    cls, expected = KERAS_DEFAULTS[name]
    opt = build_optimizer(make_config(f"optim={name}", "optim.rules=torch").optim, [torch.nn.Parameter(torch.zeros(2))])
    assert type(opt) is cls
    # By default, Keras 3's update rules (tests/test_keras_parity.py checks them step by step).
    assert type(build_optimizer(make_config(f"optim={name}").optim, [torch.nn.Parameter(torch.zeros(2))])) is (
        KERAS_RULES[name])
    group = opt.param_groups[0]
    for key, value in expected.items():
        assert group[key] == pytest.approx(value), key


def test_optimizer_values_can_be_overridden():
    cfg = make_config("optim=sgd", "optim.lr=0.1", "optim.momentum=0.9", "optim.nesterov=true", "optim.rules=torch")
    group = build_optimizer(cfg.optim, [torch.nn.Parameter(torch.zeros(2))]).param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.1, 0.9, True)


def test_fused_kernels_take_the_same_steps_as_torchs_default_code():
    torch.manual_seed(0)
    w0, x = torch.randn(64, 32), torch.randn(16, 64)
    finals = []
    for use_builder in (True, False):
        w = torch.nn.Parameter(w0.clone())
        cfg = make_config("optim=adam", "optim.rules=torch").optim
        opt = build_optimizer(cfg, [w]) if use_builder else torch.optim.Adam([w], lr=cfg.lr, eps=cfg.eps)
        for _ in range(50):
            opt.zero_grad()
            (x @ w).tanh().pow(2).mean().backward()
            opt.step()
        finals.append(w.detach())
    assert build_optimizer(make_config("optim=adam").optim, [torch.nn.Parameter(w0)]).defaults["fused"]
    torch.testing.assert_close(finals[0], finals[1], rtol=1e-5, atol=1e-6)


def test_keras_adam_resumes_with_its_step_count_and_epsilon():
    # A resumed run continues Keras' epsilon schedule from the saved step, as if never stopped.
    torch.manual_seed(0)
    w0, x = torch.randn(8, 4), torch.randn(5, 8)
    cfg = make_config("optim=adam").optim

    def steps(opt, w, n):
        for _ in range(n):
            opt.zero_grad()
            (x @ w).tanh().pow(2).mean().backward()
            opt.step()

    straight = torch.nn.Parameter(w0.clone())
    steps(build_optimizer(cfg, [straight]), straight, 20)
    resumed = torch.nn.Parameter(w0.clone())
    first = build_optimizer(cfg, [resumed])
    steps(first, resumed, 10)
    second = build_optimizer(cfg, [resumed])
    second.load_state_dict(first.state_dict())
    steps(second, resumed, 10)
    torch.testing.assert_close(resumed.detach(), straight.detach(), rtol=0, atol=0)
