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
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(nn.BatchNorm1d) == 3
    assert kinds.count(nn.Dropout) == 3


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
