"""Command-line overrides (`model.depth=4`, `+experiment=width`, `model.depth=2,4`), read with
Hydra's own parser, so a key means here what it means to Hydra."""

from __future__ import annotations

from typing import Iterable, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override

# Overrides that choose a preset or steer the sweep or the console, not a property of one run.
NOT_A_SETTING = {"experiment", "resume", "trainer.enable_progress_bar", "trainer.log_every_n_epochs"}
# The callback a search adds to each trial's run (callbacks.tune_trial: its pruning), not a setting.
TRIAL_CALLBACK = "tune_trial"


def did_you_mean(name: str, names: Iterable[str], shown: Optional[dict[str, str]] = None) -> str:
    """"; did you mean X?" for the (at most two) names closest to a mistyped one, or "".
    `shown`: how to write a name found (a key's leaf -> its whole dotted name)."""
    import difflib

    close = difflib.get_close_matches(name, list(names), n=2, cutoff=0.6)
    return f"; did you mean {' or '.join((shown or {}).get(c, c) for c in close)}?" if close else ""


def command_line(argv: list[str]):
    """The command line as Hydra reads it: its flags (multirun, config_dir, help, ...),
    `overrides`, the KEY=VALUE arguments, which Hydra takes as one run of arguments, and
    `unread`, what Hydra's parser does not take (it refuses them)."""
    from hydra._internal.utils import get_args_parser

    known, unread = get_args_parser().parse_known_args(argv)
    known.unread = unread
    return known


def parse(overrides: Iterable[str]) -> list[Override]:
    return OverridesParser.create().parse_overrides([str(o) for o in overrides])


def as_written(node):
    """A config node as plain data, interpolations as typed (`seed=${oc.env:X}` stays text):
    overrides read back from a sweep's config."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node


def grid_overrides(config) -> list[Override]:
    """The overrides a sweep config's grid sweeps and fixes, as Hydra's basic sweeper takes them:
    the preset's (hydra.sweeper.params), then the command's (hydra.overrides.task), the command's
    winning for a key both give. Values as written: interpolations unresolved."""
    from omegaconf import OmegaConf

    params = as_written(OmegaConf.select(config, "hydra.sweeper.params", default=None)) or {}
    merged = {str(k): f"{k}={v}" for k, v in params.items()}
    for o in parse(as_written(config.hydra.overrides.task) or []):
        merged[o.key_or_group] = o.input_line
    return parse(merged.values())


def grid_runs(overrides: list[Override]) -> Optional[list[tuple[str, ...]]]:
    """Each run of the grid `overrides` sweep, as its swept `key=value` overrides, written as
    Hydra's basic sweeper writes them into the run's; None where the values are Hydra's to find
    (glob(): a group's options) or no grid's (interval())."""
    import itertools

    from hydra.errors import HydraException

    values = []
    for o in overrides:
        if not o.is_sweep_override():
            continue
        if not o.is_discrete_sweep():
            return None
        try:
            values.append([f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()])
        except (HydraException, ValueError):
            return None
    return list(itertools.product(*values))


def settings(overrides: Iterable[str]) -> dict[str, Optional[str]]:
    """{key or group: value as written} ("2,4" for a sweep, "null" for null, None for a deletion
    ~key); hydra.* left out."""
    found: dict[str, Optional[str]] = {}
    for o in parse(overrides):
        if o.is_hydra_override():
            continue
        if o.is_delete():
            found[o.key_or_group] = None
        elif o.value() is None:
            found[o.key_or_group] = "null"  # set, to nothing: a setting a report shows (not as a gap)
        elif o.is_sweep_override():
            found[o.key_or_group] = o.input_line.split("=", 1)[1]
        else:
            found[o.key_or_group] = o.get_value_element_as_str()
    return found


def shown(run_overrides: Iterable[str]) -> str:
    """A run's overrides as its log line shows them: what it sets, not Hydra's folder or a search
    trial's callback (a dict of the study's path and the trial's number)."""
    kept = [o for o in run_overrides if not o.lstrip("+~").startswith(("hydra.", f"callbacks.{TRIAL_CALLBACK}"))]
    return " ".join(kept) or "(defaults)"


def run_settings(run_overrides: Iterable[str]) -> dict[str, str]:
    """What a run's overrides set about the run itself: the settings a report groups runs by
    and TensorBoard's HParams lists first (a search trial's own callback and seed=auto's rounds
    left out)."""
    return {key: value for key, value in settings(run_overrides).items()
            if value is not None and key not in NOT_A_SETTING and not key.startswith(("callbacks.", "sweep."))}
