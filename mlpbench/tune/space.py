"""The search space (`tune.space`): dimensions parsed from the config, as Optuna distributions
and as the overrides a trial runs with. No optuna until a distribution is asked for."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from mlpbench.results import flat_keys
from mlpbench.schema import ConfigError, targets

# ---------------------------------------------------------------------------- the search space


@dataclass(frozen=True)
class Dimension:
    """One search dimension: a config key (model.units) or config group (optim)."""

    key: str
    kind: str  # int, float or categorical
    low: Any = None
    high: Any = None
    step: Any = None
    log: bool = False
    choices: tuple = ()
    label: str = ""

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "int":
            return IntDistribution(self.low, self.high, step=self.step or 1, log=self.log)
        if self.kind == "float":
            return FloatDistribution(self.low, self.high, step=self.step, log=self.log)
        return CategoricalDistribution(self.choices)

    def override(self, value: Any) -> str:
        return f"{self.key}={override_value(value)}"

    def probes(self) -> list[Any]:
        """Values that show whether every value of the dimension composes: its ends, or each choice."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]

    def size(self) -> Optional[int]:
        """How many values a full grid takes; None for a continuous range."""
        if self.kind == "categorical":
            return len(self.choices)
        if self.kind == "int":
            return (self.high - self.low) // (self.step or 1) + 1
        return None if self.step is None else int(round((self.high - self.low) / self.step)) + 1


def override_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value) if isinstance(value, float) else str(value)


def choice_value(value: Any) -> Any:
    # Optuna's choices are scalars; a list (units=[256,128,64]) is kept as its override text.
    if isinstance(value, (ListConfig, DictConfig)):
        value = OmegaConf.to_container(value)
    if isinstance(value, (list, dict)):
        return str(value).replace(" ", "").replace("'", "")
    return value


SPACE_HELP = ("a search dimension is {type: int, low: L, high: H, step: S}, {type: float, low: L, high: H, "
              "log: true}, or {type: categorical, choices: [A, B]}; `label` is optional")


def _dimension(key: str, spec: Mapping) -> Dimension:
    name = f"tune.space.{key}"
    kind = spec.get("type")
    allowed = {"int": {"low", "high", "step", "log"}, "float": {"low", "high", "step", "log"},
               "categorical": {"choices"}}
    if kind not in allowed:
        raise ConfigError(f"{name}.type={kind}: must be one of int, float, categorical")
    unknown = set(spec) - allowed[kind] - {"type", "label"}
    if unknown:
        raise ConfigError(f"{name}: {', '.join(sorted(unknown))} not allowed with type {kind}; {SPACE_HELP}")
    label = str(spec.get("label") or key)
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, (list, ListConfig)) or not choices:
            raise ConfigError(f"{name}.choices={choices}: must be a non-empty list")
        return Dimension(key, kind, choices=tuple(choice_value(c) for c in choices), label=label)
    number = int if kind == "int" else (int, float)
    low, high, step, log_scale = spec.get("low"), spec.get("high"), spec.get("step"), bool(spec.get("log", False))
    for field, value in (("low", low), ("high", high)):
        if not isinstance(value, number) or isinstance(value, bool):
            raise ConfigError(f"{name}.{field}={value}: must be {'an integer' if kind == 'int' else 'a number'}")
    if not low < high:
        raise ConfigError(f"{name}: low={low} must be below high={high}")
    if step is not None and (not isinstance(step, number) or isinstance(step, bool) or step <= 0):
        raise ConfigError(f"{name}.step={step}: must be a positive {'integer' if kind == 'int' else 'number'}")
    if log_scale and low <= 0:
        raise ConfigError(f"{name}: log=true needs low > 0, not {low}")
    if log_scale and step not in (None, 1):
        raise ConfigError(f"{name}: log=true cannot be combined with step={step}")
    steps = None if step is None else (high - low) / step
    if steps is not None and (steps < 1 or abs(steps - round(steps)) > 1e-9 * steps):
        # Optuna would move high to the last whole step (low alone, for a step wider than the range), with a warning.
        raise ConfigError(f"{name}.step={step}: the range {low}..{high} must be a whole number of steps (at least "
                          f"one); high={low + max(1, math.floor(steps)) * step:g} would be")
    if kind == "float":
        low, high, step = float(low), float(high), None if step is None else float(step)
    return Dimension(key, kind, low, high, step, log_scale, label=label)


def parse_space(space: Mapping) -> list[Dimension]:
    """`tune.space`, nested as the config is, as a list of dimensions; ConfigError if malformed."""
    dims: list[Dimension] = []

    def walk(node: Mapping, path: str) -> None:
        for name, spec in node.items():
            key = f"{path}.{name}" if path else str(name)
            if key.split(".")[0].lstrip("+~").startswith("hydra"):  # Hydra's keys and groups: not a run's
                raise ConfigError(f"tune.space.{key}: a search varies mlpbench's settings, not Hydra's")
            plain = OmegaConf.to_container(spec, resolve=False) if isinstance(spec, DictConfig) else spec
            if "_target_" in key.split(".") or (isinstance(plain, dict) and "type" in plain and list(targets(plain))):
                raise ConfigError(f"tune.space.{key}: a search varies settings, not which code runs (_target_)")
            if isinstance(spec, Mapping) and "type" in spec:
                dims.append(_dimension(key, spec))
            elif isinstance(spec, Mapping) and spec:
                walk(spec, key)
            else:
                raise ConfigError(f"tune.space.{key}={spec}: {SPACE_HELP}")

    walk(space, "")
    if not dims:
        raise ConfigError("tune.space is empty: give at least one search dimension, e.g. "
                          "tune.space.model.units={type:int,low:32,high:512,step:32}")
    return dims


def flat(node: Any) -> dict[str, Any]:
    """{model: {units: 128}} -> {"model.units": 128}; dotted keys are kept as they are."""
    if isinstance(node, (DictConfig, ListConfig)):
        node = OmegaConf.to_container(node)
    return flat_keys(node, choice_value)


def grid_size(dims: Sequence[Dimension]) -> Optional[int]:
    sizes = [d.size() for d in dims]
    return None if None in sizes else math.prod(sizes)

