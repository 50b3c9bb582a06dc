import pytest
import torch
from torch import nn

from mlpbench.model import MLP, count_params, hidden_widths, summary
from tests.conftest import make_config


def build(*overrides, features=784, classes=10):
    return MLP(make_config(*overrides).model, features, classes)


def test_tutorial_model_matches_keras_parameter_counts():
    # Flatten -> BatchNorm -> Dense(128, relu) -> Dense(10): Keras reports these three numbers.
    model = build()
    assert count_params(model) == {"trainable": 103_338, "non_trainable": 1_568, "total": 104_906}
    text = summary(model, 784)
    assert "Total params: 104,906" in text
    assert "Trainable params: 103,338" in text
    assert "Non-trainable params: 1,568" in text


@pytest.mark.parametrize("overrides, widths", [
    (["model.depth=0"], []),
    (["model.depth=3", "model.units=[256,128,64]"], [256, 128, 64]),
    (["model.depth=2", "model.units=mean"], [397, 397]),
    (["model.depth=1", "model.units=geomean"], [89]),
    (["model.depth=4", "model.units=32"], [32, 32, 32, 32]),
])
def test_units_forms_give_the_hidden_widths(overrides, widths):
    cfg = make_config(*overrides)
    assert hidden_widths(cfg.model, 784, 10) == widths
    linears = [m for m in MLP(cfg.model, 784, 10).modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == widths + [10]
    assert MLP(cfg.model, 784, 10)(torch.rand(5, 784)).shape == (5, 10)


def test_depth_zero_without_batchnorm_is_a_linear_classifier():
    model = build("model.depth=0", "model.input_bn=false")
    assert count_params(model) == {"trainable": 7850, "non_trainable": 0, "total": 7850}


def test_hidden_batchnorm_and_dropout_are_added_per_layer():
    model = build("model.depth=3", "model.hidden_bn=true", "model.dropout=0.5", "model.input_bn=false")
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == 3
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 3


@pytest.mark.parametrize("name, cls", [
    ("relu", nn.ReLU), ("leaky_relu", nn.LeakyReLU), ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid),
    ("gelu", nn.GELU), ("silu", nn.SiLU), ("elu", nn.ELU), ("linear", nn.Identity),
])
def test_activation_choice(name, cls):
    model = build("model.depth=2", f"model.activation={name}")
    assert sum(isinstance(m, cls) for m in model.modules()) == 2


def test_leaky_relu_slope_is_configurable():
    model = build("model.activation=leaky_relu", "model.negative_slope=0.2")
    (act,) = [m for m in model.modules() if isinstance(m, nn.LeakyReLU)]
    assert act.negative_slope == 0.2


def test_residual_shortcuts_join_only_equal_widths():
    model = build("model.depth=3", "model.units=[64,64,32]", "model.residual=true", "model.input_bn=false")
    blocks = [layer for layer in model.layers if hasattr(layer, "residual")]
    assert [b.residual for b in blocks] == [False, True, False]
    # The shortcut is an identity: with the block's weights zeroed the input passes through.
    for p in blocks[1].body.parameters():
        nn.init.zeros_(p)
    h = torch.rand(4, 64)
    assert torch.equal(blocks[1](h), h + torch.relu(torch.zeros(4, 64)))


def test_keras_init_is_glorot_uniform_with_zero_bias():
    torch.manual_seed(0)
    model = build("model.init=keras", "model.units=500")
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    limit = (6 / (784 + 500)) ** 0.5
    assert torch.all(first.bias == 0)
    assert first.weight.abs().max() <= limit
    assert first.weight.abs().max() > 0.95 * limit  # spread over the whole glorot range
    torch_default = build("model.units=500")
    first_default = next(m for m in torch_default.modules() if isinstance(m, nn.Linear))
    assert torch.any(first_default.bias != 0)


def test_mse_with_two_classes_has_one_output_unit():
    model = build("model.loss=mse", "model.units=8", features=2, classes=2)
    assert model(torch.rand(4, 2)).shape == (4, 1)
    assert build("model.loss=mse")(torch.rand(3, 784)).shape == (3, 10)


def _train_steps(model, optimizer, x, y, steps=3):
    import torch.nn.functional as F

    for step in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(x[step]), y[step], reduction="none").mean().backward()
        optimizer.step()
    return {name: p.detach().clone() for name, p in model.state_dict().items()}


@pytest.mark.parametrize("overrides", [["model.depth=4", "model.hidden_bn=true"], ["model=keras", "model.units=7"]])
def test_a_runs_numbers_do_not_depend_on_the_thread_count(overrides):
    """torch's BatchNorm kernel and mm's kernel for a narrow layer's weight gradient round
    differently on 1 and 2 threads; mlpbench's layers must not (a worker trains with one)."""
    from mlpbench.optim import build_optimizer

    cfg = make_config(*overrides)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 32, 784, generator=generator), torch.randint(0, 10, (3, 32), generator=generator)
    threads = torch.get_num_threads()
    states = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            torch.manual_seed(1)
            model = MLP(cfg.model, 784, 10)
            states.append(_train_steps(model, build_optimizer(cfg.optim, model.parameters()), x, y))
    finally:
        torch.set_num_threads(threads)
    assert states[0].keys() == states[1].keys()
    for name, tensor in states[0].items():
        assert torch.equal(tensor, states[1][name]), name
    assert not torch.equal(states[0]["layers.1.running_mean"], torch.zeros(784))  # it trained


def test_a_stacked_model_computes_each_replicas_run_to_the_bit():
    """One step of 4 replicas stacked (different activations, one BatchNorm over all) against each
    replica alone: outputs, losses and gradients equal."""
    import torch.nn.functional as F

    from mlpbench.stacked import StackedMLP

    models = []
    # 10 rows x 13 units: no replica's slice starts on a 16-float boundary (sigmoid's and tanh's
    # vectorized kernels round by an element's place in its block).
    for k, activation in enumerate(["sigmoid", "tanh", "sigmoid", "relu"]):
        torch.manual_seed(k)
        models.append(build("model.depth=3", "model.units=13", "model.hidden_bn=true",
                            f"model.activation={activation}"))
    stacked = StackedMLP(models)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(4, 10, 784, generator=generator), torch.randint(0, 10, (4, 10), generator=generator)
    out = stacked(x)
    loss = F.cross_entropy(out.reshape(40, 10), y.reshape(-1), reduction="none").view(4, 10).mean(1)
    loss.sum().backward()
    for k, model in enumerate(models):
        alone = model(x[k])
        own = F.cross_entropy(alone, y[k], reduction="none").mean()
        own.backward()
        assert torch.equal(alone, out[k]) and torch.equal(own, loss[k])
        for name, p in model.named_parameters():
            key = name.replace(".", "__")
            stacked_grad = (stacked._parameters[key].grad[k] if key in stacked._parameters
                            else stacked._parameters[f"{key}__{k}"].grad[0])
            assert torch.equal(stacked_grad, p.grad), name
