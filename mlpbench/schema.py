"""Typed schema of the configuration in conf/, registered in Hydra's ConfigStore.

OmegaConf checks types and enum values while Hydra composes the config; `validate`
checks the ranges and cross-field rules that types cannot express.  Nothing here
imports torch, so `--help` and config errors stay fast.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from mlpbench.overrides import did_you_mean


class ConfigError(ValueError):
    """A configuration value is not allowed; the message names the key."""


class Source(str, Enum):
    mnist_small = "mnist_small"
    mnist = "mnist"
    fashion_mnist = "fashion_mnist"
    digits = "digits"
    xor = "xor"
    table = "table"  # your own file: data.path, data.target (mlpbench/table.py)


# The image sources: an image's height and width, and the largest pixel value their files hold.
# A pixel reaches the network as pixel / that, in training (mlpbench/data.py) and in prediction.
IMAGES = {Source.mnist: ((28, 28), 255.0), Source.mnist_small: ((28, 28), 255.0),
          Source.fashion_mnist: ((28, 28), 255.0), Source.digits: ((8, 8), 16.0)}
# Fashion-MNIST's labels 0-9, named as Keras' docs name them; the other image sources' are digits.
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


class Activation(str, Enum):
    relu = "relu"
    leaky_relu = "leaky_relu"
    tanh = "tanh"
    sigmoid = "sigmoid"
    gelu = "gelu"
    silu = "silu"
    elu = "elu"
    linear = "linear"


class Loss(str, Enum):
    # What a classifier minimises; a regression (data.task) always minimises MSE on a linear output.
    cross_entropy = "cross_entropy"
    mse = "mse"


class Task(str, Enum):
    # What the target is: classes (compared by accuracy) or a number (by val_loss, the MSE, and r2).
    classification = "classification"
    regression = "regression"


class Init(str, Enum):
    torch = "torch"
    keras = "keras"


class RunningVariance(str, Enum):
    # What BatchNorm's running variance averages: torch's unbiased batch variance, or Keras'
    # biased one (n/(n-1) smaller; it only changes evaluation).
    unbiased = "unbiased"
    biased = "biased"


class OptimRules(str, Enum):
    # Keras 3's update rules where torch's differ (mlpbench/optim.py), or torch's own.
    keras = "keras"
    torch = "torch"


class ValRows(str, Enum):
    # random: a seeded random fraction (data.split_seed); last: the last fraction of the rows,
    # unshuffled, as Keras' validation_split takes them (the same rows for every seed).
    random = "random"
    last = "last"


class Missing(str, Enum):
    # refuse: a missing value in a used column stops the run, naming the column and the count;
    # drop: rows with one are left out; mean: a number column's mean, a text column's most
    # frequent value, both of the training rows.
    refuse = "refuse"
    drop = "drop"
    mean = "mean"


class Order(str, Enum):
    # fresh: a new permutation of the training rows every epoch; fixed: one permutation for
    # every epoch, as seeded Keras 3 on TensorFlow replays it (README: Keras parity).
    fresh = "fresh"
    fixed = "fixed"


@dataclass
class DataConfig:
    source: Source = MISSING
    # Folder with the IDX files (mnist, fashion_mnist); null = the source's default places.
    root: Optional[str] = None
    download: bool = False
    batch_size: int = 32
    # Fraction of the training rows held out for validation (Keras' validation_split);
    # null = validate on the test split, as the tutorials' validation_data=(x_test, y_test).
    val_split: Optional[float] = 0.2
    # Sources without an official test split (mnist_small, digits) hold this fraction out,
    # always the same rows whatever the seed.
    test_split: float = 0.2
    # Keep only the first N training rows (after shuffling): quick runs on big sources.
    limit: Optional[int] = None
    # Seed of the train/validation split (and of `limit`'s rows); null = the run's `seed`, so that
    # repeats over seeds sample the split too, and every setting of one seed validates on the same
    # rows (comparisons are paired by seed). A number fixes the rows for every seed.
    split_seed: Optional[int] = None
    val_rows: ValRows = ValRows.random
    order: Order = Order.fresh
    # data=table: the file (.csv, .tsv, .parquet, or .npz with arrays x and y), relative to
    # data.root if given; the column of class labels or values to predict (not for .npz); the
    # feature columns (null = all the others); missing values; a second file of the same columns
    # as the test split (null = data.test_split of the rows, stratified by class, the same for
    # every seed).
    path: Optional[str] = None
    target: Optional[str] = None
    features: Optional[list[str]] = None
    # Columns left out, the others all inputs (null: none): an identifier among 3,000 columns,
    # without listing the 2,999 others in data.features.
    drop: Optional[list[str]] = None
    # Input columns read as categories whatever they hold (null: none): codes such as zip codes
    # or product numbers, whose sizes mean nothing; each value as the file writes it (02139).
    categorical: Optional[list[str]] = None
    missing: Missing = Missing.refuse
    test_path: Optional[str] = None
    # A column of the file that marks the test rows with "test" (others train and validate); it is
    # no feature. Instead of data.test_path.
    split_column: Optional[str] = None
    # null: regression where a table's target is numbers of more than 20 values, with fractions or
    # (a float column) more than one value per ten rows, said in the log; classification otherwise
    # and for every bundled source.
    task: Optional[Task] = None


@dataclass
class ModelConfig:
    # Hidden layers; null = one per width of a `units` list, else 1.
    depth: Optional[int] = None
    # int, a per-layer list such as [256, 128, 64], or "mean" / "geomean" of input and output sizes.
    units: Any = 128
    activation: Activation = Activation.relu
    negative_slope: float = 0.01
    input_bn: bool = True
    hidden_bn: bool = False
    # Torch's BatchNorm defaults; Keras' are momentum 0.01 (0.99 in Keras' convention), eps 1e-3.
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    bn_running_var: RunningVariance = RunningVariance.unbiased
    dropout: float = 0.0
    residual: bool = False
    init: Init = Init.torch
    loss: Loss = Loss.cross_entropy


@dataclass
class OptimConfig:
    name: str = MISSING
    lr: float = MISSING
    # keras: Keras 3's updates (decoupled weight decay); torch: torch's (coupled L2 weight
    # decay, decoupled for adamw).
    rules: OptimRules = OptimRules.keras
    weight_decay: float = 0.0


@dataclass
class SGDConfig(OptimConfig):
    momentum: float = MISSING
    nesterov: bool = MISSING


@dataclass
class RMSpropConfig(OptimConfig):
    rho: float = MISSING
    momentum: float = MISSING
    eps: float = MISSING
    centered: bool = MISSING


@dataclass
class AdagradConfig(OptimConfig):
    initial_accumulator_value: float = MISSING
    eps: float = MISSING


@dataclass
class NadamConfig(OptimConfig):
    beta1: float = MISSING
    beta2: float = MISSING
    eps: float = MISSING


@dataclass
class AdamConfig(NadamConfig):
    """Adam and AdamW: Nadam's moment settings plus amsgrad."""

    amsgrad: bool = MISSING


OPTIM_SCHEMAS = {
    "sgd": SGDConfig,
    "rmsprop": RMSpropConfig,
    "adagrad": AdagradConfig,
    "adam": AdamConfig,
    "nadam": NadamConfig,
    "adamw": AdamConfig,
}


@dataclass
class TrainerConfig:
    accelerator: str = "auto"
    # How many devices, or which: a list of indices as Lightning's Trainer takes them ([1]: the
    # second GPU). More than one: one run on several devices with DDP (each process takes a shard
    # of every batch).
    devices: Any = 1
    strategy: str = "auto"
    precision: str = "32-true"
    max_epochs: int = 10
    # Steps between logged values of the per-step train loss.
    log_every_n_steps: int = 50
    # null = a progress bar on a terminal; the epoch log line either way.
    enable_progress_bar: Optional[bool] = None
    # Epochs between log lines (the first and the last are always logged): XOR trains 1,000.
    log_every_n_epochs: int = 1
    deterministic: bool = False
    gradient_clip_val: Optional[float] = None
    # Optimizer steps taken inside one Lightning training step (a chunk of that many batches):
    # Lightning's fixed cost per step is paid once per chunk. The updates are the same for
    # any value; 1 is Lightning's usual one step per batch. Always 1 under DDP.
    steps_per_chunk: int = 64


class Metric(str, Enum):
    # A run's final metrics (result.json) a report compares settings by.
    best_val_acc = "best_val_acc"
    val_acc = "val_acc"
    val_loss = "val_loss"
    test_acc = "test_acc"
    # A regression's (data.task): r2 where a classifier has accuracy; val_rmse in the target's unit.
    best_val_r2 = "best_val_r2"
    val_r2 = "val_r2"
    val_rmse = "val_rmse"
    test_r2 = "test_r2"


@dataclass
class ReportConfig:
    """What a sweep's report compares (mlpbench/report.py)."""

    # The metric whose best mean over seeds the verdicts compare with (the lowest for val_loss and
    # val_rmse); null: best_val_acc, or best_val_r2 for a regression (data.task).
    objective: Optional[Metric] = None
    # Swept keys to take each setting at its best value of, then compare (a fair optimizer
    # comparison: [optim.lr] reports each optimizer at its own best learning rate).
    best_over: List[str] = field(default_factory=list)
    # A difference in the objective smaller than this matters to no one: a tie below it is said to
    # be negligible instead of given the seeds it would take to detect. null: every difference counts.
    min_difference: Optional[float] = None


class Objective(str, Enum):
    # The per-epoch metric a search optimizes; a trial's value is its best epoch's. val_r2: a
    # regression's (data.task), which has no val_acc.
    val_acc = "val_acc"
    val_loss = "val_loss"
    val_r2 = "val_r2"


class Sampler(str, Enum):
    tpe = "tpe"
    random = "random"


class Pruner(str, Enum):
    hyperband = "hyperband"
    successive_halving = "successive_halving"
    median = "median"
    none = "none"


# callbacks.tune_trial (overrides.TRIAL_CALLBACK): the search's pruning in each trial's run
# (mlpbench/tune/trial.py).


@dataclass
class TuneConfig:
    """A search with hydra/sweeper=tune (experiment=tune_units): mlpbench/tune/."""

    # Search dimensions, nested as the config is: `model: {units: {type: int, low: 32, high: 512,
    # step: 32}}`. type int or float (low, high, optional step, log) or categorical (choices);
    # an optional `label` names it in the printout ("number of units").
    space: Dict[str, Any] = field(default_factory=dict)
    n_trials: int = 30
    # Trials trained at the same time, each in its own process.
    n_jobs: int = 1
    objective: Objective = Objective.val_acc
    sampler: Sampler = Sampler.tpe
    pruner: Pruner = Pruner.hyperband
    # Optuna's pruner settings, in epochs counted from 0 (as Optuna's Lightning callback reports
    # them): min_resource 1 and reduction_factor 3 stop trials after 2, 4 or 10 epochs, as
    # Keras Tuner's Hyperband does for max_epochs=10.
    min_resource: int = 1
    reduction_factor: int = 3
    # The study's name, and its folder outputs/tune/<study_name>: the same command continues it.
    study_name: str = "study"
    # Points to try first, e.g. [{model.units: 128, optim.lr: 0.001}] (Optuna's enqueue_trial).
    enqueue: List[Dict[str, Any]] = field(default_factory=list)
    # Seeds each trial trains, as one stacked model (seeds seed .. seed + repeats - 1): the sampler
    # and the pruner see their mean every epoch, trials.csv each seed's value.
    repeats: int = 1
    # The best trials judged at the end with a sweep's statistics (needs repeats >= 2).
    finalists: int = 3


@dataclass
class SweepConfig:
    """`seed=auto` in a sweep (mlpbench/seeds.py): seeds in rounds until each comparison with the
    best is decided."""

    # Seeds every setting starts with, before the first verdicts.
    min_seeds: int = 3
    # The most seeds a setting gets: a comparison still undecided then ends at this budget.
    max_seeds: int = 10
    # Seeds each open comparison gets a round. 1 looks after every seed (the fewest seeds); more
    # make fewer, larger rounds (each round starts its processes: ~3 s on the CPU) that stack.
    seeds_per_round: int = 1
    # Start no new round after this many minutes (null: no time budget).
    max_minutes: Optional[float] = None


# `seed=auto`: the sweep chooses the seeds (mlpbench/seeds.py).
AUTO_SEED = "auto"
# Hydra's sweepers and launchers, by the `_target_` their config group (conf/hydra/) gives.
GRID_SWEEPER = "hydra_plugins.mlpbench_grid.GridSweeper"
TUNE_SWEEPER = "hydra_plugins.mlpbench_tuner.TuneSweeper"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
STACKED_LAUNCHER = "hydra_plugins.mlpbench_stacked.StackedLauncher"
JOBLIB_LAUNCHER = "hydra_plugins.mlpbench_joblib.JoblibLauncher"
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


@dataclass
class Config:
    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    optim: Any = MISSING
    trainer: TrainerConfig = MISSING
    # An integer in [0, 2^32), or `auto` in a sweep (-m): seeds in rounds until decided (sweep.*).
    seed: Any = 42
    # Per-layer gradient and weight norms, dead/saturated units and activation statistics,
    # every `trainer.log_every_n_steps` steps, to TensorBoard (mlpbench/diagnostics.py).
    diagnostics: bool = False
    # Continue the newest earlier sweep of the same command instead of starting a new one.
    resume: bool = False
    tune: TuneConfig = field(default_factory=TuneConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    # More Lightning callbacks for the run, by name: {_target_: a.Callback, arg: value}
    # (lightning-hydra-template's idiom). A search adds its trials' pruning here.
    callbacks: Dict[str, Any] = field(default_factory=dict)


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    # Schemas live apart from the groups users choose from (conf/<group>/*.yaml), which
    # pull them in with `/schema/<group>/<name>@_here_`, so they are never offered as options.
    cs.store(group="schema/data", name="data", node=DataConfig)
    cs.store(group="schema/model", name="model", node=ModelConfig)
    cs.store(group="schema/trainer", name="trainer", node=TrainerConfig)
    for name, schema in OPTIM_SCHEMAS.items():
        cs.store(group="schema/optim", name=name, node=schema)


UNIT_RULES = ("mean", "geomean")


def _check(errors: list[str], ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        errors.append(f"{key}={as_written_value(value)}: {allowed}")


def as_written_value(value: Any) -> Any:
    """A value as the command line writes it: null, true, false (not Python's None, True, False)."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else value


def resolved(cfg: DictConfig) -> DictConfig:
    """The config with the values other keys imply, as a copy: `model.depth: null` (the default)
    is the length of a list of widths, else 1, so a sweep can mix `model.units=128` and
    `model.units=[256,128,64]`; the run records that depth."""
    cfg = copy.deepcopy(cfg)
    cfg.model.depth = depth_of(cfg.model)
    if isinstance(cfg.seed, str) and cfg.seed.strip().isdigit():  # seed=${oc.env:SEED} gives text
        cfg.seed = int(cfg.seed)
    return cfg


def device_count(devices: Any) -> int:
    """How many devices trainer.devices asks for: a number, or the length of a list of indices."""
    return len(devices) if isinstance(devices, (list, tuple, ListConfig)) else int(devices)


def depth_of(model: DictConfig) -> int:
    """`model.depth`, or where it is null one hidden layer per width of a list, else one."""
    if model.depth is not None:
        return model.depth
    return len(model.units) if isinstance(model.units, (ListConfig, list)) else 1


def checked(cfg: DictConfig) -> DictConfig:
    """`resolved(cfg)`, validated: the one way into a run's config. Every interpolation is
    resolved here and every deletion noticed, so that what cannot be read (`${oc.env:NOPE}`,
    `~model`) is a ConfigError naming the key, before any folder is made."""
    from omegaconf.errors import OmegaConfBaseException

    gone = [f.name for f in dataclass_fields(Config) if f.name not in cfg]
    if gone:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(
            f"~{key}: {key} cannot be deleted; set its values instead (see --help)" for key in gone))
    try:
        # Hydra's own section holds values only a running job has (hydra.job.num): Hydra's to check.
        OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True,
                               throw_on_missing=True)
        cfg = resolved(cfg)
        validate(cfg)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "config"
        reason = " ".join(str(e).splitlines()[0].split())
        raise ConfigError(f"invalid configuration:\n  {key}: {reason}") from None
    return cfg


# `_target_`s a config file may name unless the user typed them on the command line: mlpbench's
# own, Hydra's and its plugins', Lightning's callbacks. Anything else in a config someone sent
# (a best_config.yaml) could run any code (mlpbench/__main__.py, mlpbench/trainer.py).
TRUSTED_TARGETS = ("mlpbench.", "hydra_plugins.", "hydra._internal.", "lightning.pytorch.callbacks.")


def trusted(target: Any) -> bool:
    """A `_target_` a config file may name: under TRUSTED_TARGETS, and what it names defined there
    too (Hydra follows attributes: `mlpbench.trainer.os.system` is os.system)."""
    if not isinstance(target, str) or not target.startswith(TRUSTED_TARGETS):
        return False
    from hydra._internal.utils import _locate

    try:
        found = _locate(target)
    except Exception:  # nothing of that name: nothing to trust
        return False
    return callable(found) and str(getattr(found, "__module__", "")).startswith(TRUSTED_TARGETS)


def targets(node: Any, path: str = ""):
    """(key, value) of every `_target_` in plain containers, nested ones included."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        name = f"{path}.{key}" if path else str(key)
        if key == "_target_" and isinstance(value, str):
            yield name, value
        else:
            yield from targets(value, name)


# The deepest net trained: a layer costs ~0.13 ms a step whatever its width (measured, one thread,
# batch 32, units 2: 27 ms a step at depth 201, 0.8 ms at depth 1), so 20,000 layers took minutes
# an epoch before their first step was worth anything; no tutorial goes past 10.
MAX_DEPTH = 1000
SEED_RANGE = 2**32  # numpy's and torch's seeds: 0 <= seed < 2^32
MAX_AUTO_SEEDS = 100  # seed=auto's rounds: past 100 seeds a setting, a comparison is no longer the question
CPU_MAX_REPLICAS = 64  # replicas in one stack at most on the CPU, where hydra.launcher.max_replicas is null
MAX_REPEATS = CPU_MAX_REPLICAS  # a trial's seeds are one stack
# A study's folder is outputs/tune/<study_name>, a run's log file <hydra.job.name>.log: names, never paths.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def safe_name(text: str) -> bool:
    """Letters, digits, '.', '_' and '-', at most 100 of them, no '..' (fullmatch: no newline)."""
    return bool(SAFE_NAME.fullmatch(text)) and ".." not in text


def _non_finite(node: Any, prefix: str) -> list[str]:
    """Keys whose value is a float that is nan or infinite (`optim.lr=inf` passes `> 0`)."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        name = f"{prefix}.{key}" if isinstance(node, dict) else f"{prefix}[{key}]"
        if isinstance(value, float) and not math.isfinite(value):
            found.append(f"{name}={value}: must be a finite number")
        elif isinstance(value, (dict, list)):
            found += _non_finite(value, name)
    return found


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError listing every out-of-range value, each with its key and what is allowed;
    changes nothing (it checks `resolved(cfg)`)."""
    cfg = resolved(cfg)
    errors: list[str] = []
    for section in ("data", "model", "optim", "trainer", "tune", "sweep"):
        errors += _non_finite(OmegaConf.to_container(cfg[section], resolve=True), section)
    if errors:  # every check below compares numbers: nan and inf would slip through them
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    data, model, optim, trainer = cfg.data, cfg.model, cfg.optim, cfg.trainer
    mode = str(OmegaConf.select(cfg, "hydra.mode", default=None))
    sweeper = OmegaConf.select(cfg, "hydra.sweeper._target_", default=None)
    if sweeper == TUNE_SWEEPER and mode.endswith(".RUN"):  # Hydra would train one run, tune.space unread
        errors.append("hydra/sweeper=tune: a search runs with -m (or hydra.mode=MULTIRUN, as experiment=tune_units "
                      "sets); without it one run trains, at the config's values, and tune.space is not searched")
    if cfg.seed == AUTO_SEED:
        # Only a sweep's own config holds `auto`; its runs get numbers (mlpbench/seeds.py).
        _check(errors, mode.endswith("MULTIRUN") and sweeper == GRID_SWEEPER, "seed", AUTO_SEED,
               "adds seeds in rounds to a sweep of the grid: give -m (with hydra/sweeper=grid, the default)"
               + ("; a search repeats its trials with tune.repeats" if str(sweeper) == TUNE_SWEEPER else ""))
    else:
        seed = cfg.seed
        _check(errors, isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < SEED_RANGE, "seed",
               seed, f"must be an integer in [0, {SEED_RANGE}), or auto in a sweep (-m)")
    rounds = cfg.sweep
    _check(errors, rounds.min_seeds >= 2, "sweep.min_seeds", rounds.min_seeds,
           "must be an integer >= 2 (a verdict needs 2 seeds a setting)")
    _check(errors, rounds.min_seeds <= rounds.max_seeds <= MAX_AUTO_SEEDS, "sweep.max_seeds", rounds.max_seeds,
           f"must be an integer from sweep.min_seeds={rounds.min_seeds} to {MAX_AUTO_SEEDS}")
    _check(errors, rounds.seeds_per_round >= 1, "sweep.seeds_per_round", rounds.seeds_per_round,
           "must be an integer >= 1")
    if rounds.max_minutes is not None:
        _check(errors, rounds.max_minutes > 0, "sweep.max_minutes", rounds.max_minutes, "must be > 0, or null")
    if data.split_seed is not None:
        _check(errors, 0 <= data.split_seed < SEED_RANGE, "data.split_seed", data.split_seed,
               f"must be an integer in [0, {SEED_RANGE}), or null for the run's seed")

    _check(errors, data.batch_size >= 1, "data.batch_size", data.batch_size, "must be an integer >= 1")
    if model.input_bn or model.hidden_bn:
        _check(errors, data.batch_size >= 2, "data.batch_size", data.batch_size,
               "must be >= 2 with BatchNorm (model.input_bn / model.hidden_bn): it cannot normalise one row")
    if data.val_split is not None:
        _check(errors, 0.0 < data.val_split < 1.0, "data.val_split", data.val_split,
               "must be a fraction in (0, 1), or null to validate on the test split")
    _check(errors, 0.0 < data.test_split < 1.0, "data.test_split", data.test_split, "must be a fraction in (0, 1)")
    source = Source(data.source)
    table_keys = {"data.path": data.path, "data.target": data.target, "data.features": data.features,
                  "data.drop": data.drop, "data.categorical": data.categorical, "data.test_path": data.test_path,
                  "data.split_column": data.split_column}
    if source is Source.table:
        _check(errors, bool(data.path), "data.path", data.path,
               "is required with data=table: the .csv, .tsv, .parquet or .npz file to read")
        _check(errors, not (data.test_path and data.split_column), "data.split_column", data.split_column,
               "and data.test_path both say which rows are the test split; give one")
        _check(errors, not (data.features and data.drop), "data.drop", data.drop,
               "and data.features both choose the inputs; give one (data.features: the columns to read, "
               "data.drop: those to leave out)")
        _check(errors, data.features is None or len(data.features) > 0, "data.features", "[]",
               "names no column; leave it out (null) to read every column but the target")
        for key, names, why in (("data.features", data.features, " (one input read twice)"),
                                ("data.drop", data.drop, ""), ("data.categorical", data.categorical, "")):
            twice = [str(n) for n in dict.fromkeys(names or []) if list(names).count(n) > 1]
            _check(errors, not twice, key, f"[{','.join(str(n) for n in names or [])}]",
                   f"names {', '.join(twice)} more than once{why}")
        suffix = Path(str(data.path or "")).suffix.lower()
        # One array, no labels: said before the target a .npy file could not use anyway.
        _check(errors, suffix != ".npy", "data.path", data.path,
               "a .npy file holds one array; save the inputs and labels as one .npz (numpy.savez(PATH, x=..., y=...))")
        if suffix not in (".npz", ".npy"):
            _check(errors, bool(data.target), "data.target", data.target,
                   "is required with data=table: the column that holds the class labels")
    else:
        for key, value in table_keys.items():
            _check(errors, value is None, key, value, f"applies to data=table only (this is data={source.value})")
        _check(errors, data.task in (None, Task.classification), "data.task", getattr(data.task, "value", data.task),
               f"regression applies to data=table only (data={source.value} is classes)")
    # data.root: where mnist and fashion_mnist find their IDX files and data=table its file; the
    # bundled sources read no folder, and a root given to them was silently ignored.
    if data.root is not None and source in (Source.mnist_small, Source.digits, Source.xor):
        _check(errors, False, "data.root", data.root,
               f"is not read by data={source.value} (its rows come with the installed packages); it applies to data=mnist, "
               "data=fashion_mnist (the folder of the IDX files) and data=table (the folder of data.path)")
    if data.limit is not None:
        _check(errors, data.limit >= 2, "data.limit", data.limit, "must be an integer >= 2, or null for all rows")

    _check(errors, 0 <= model.depth <= MAX_DEPTH, "model.depth", model.depth,
           f"must be an integer in [0, {MAX_DEPTH}] (0 = a linear classifier; deeper nets spend their steps "
           "in Python's per-layer overhead), or null for one layer per width of model.units")
    units = model.units
    units_help = ("must be a positive integer, a list of positive integers (one per hidden layer), "
                  "or one of: mean, geomean")
    if isinstance(units, ListConfig):
        items = list(units)
        ok = bool(items) and all(isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in items)
        _check(errors, ok, "model.units", _fmt(items), units_help)
        if ok and model.depth >= 0 and len(items) != model.depth:
            errors.append(f"model.units={_fmt(items)}: has {len(items)} entries but model.depth={model.depth}; "
                          "give one width per hidden layer")
    elif isinstance(units, str):
        _check(errors, units in UNIT_RULES, "model.units", units, units_help)
    else:
        ok = isinstance(units, int) and not isinstance(units, bool) and units > 0
        _check(errors, ok, "model.units", units, units_help)
    _check(errors, 0.0 <= model.dropout < 1.0, "model.dropout", model.dropout, "must be in [0, 1)")
    _check(errors, model.negative_slope >= 0.0, "model.negative_slope", model.negative_slope, "must be >= 0")
    _check(errors, 0.0 <= model.bn_momentum <= 1.0, "model.bn_momentum", model.bn_momentum, "must be in [0, 1]")
    _check(errors, model.bn_eps > 0.0, "model.bn_eps", model.bn_eps, "must be > 0")

    _check(errors, optim.name in OPTIM_SCHEMAS, "optim.name", optim.name,
           "must be one of: " + ", ".join(OPTIM_SCHEMAS) + " (choose with optim=NAME)")
    _check(errors, optim.lr > 0.0, "optim.lr", optim.lr, "must be > 0")
    _check(errors, optim.weight_decay >= 0.0, "optim.weight_decay", optim.weight_decay, "must be >= 0")
    for key in ("momentum", "rho", "beta1", "beta2"):
        if key in optim:
            _check(errors, 0.0 <= optim[key] < 1.0, f"optim.{key}", optim[key], "must be in [0, 1)")
    if "eps" in optim:  # 0 divides 0 by 0 wherever a gradient is 0: NaN at the first step
        _check(errors, optim.eps > 0.0, "optim.eps", optim.eps, "must be > 0")
    if "initial_accumulator_value" in optim:
        _check(errors, optim.initial_accumulator_value >= 0.0, "optim.initial_accumulator_value",
               optim.initial_accumulator_value, "must be >= 0")
    if optim.get("nesterov"):
        _check(errors, optim.momentum > 0.0, "optim.nesterov", True, "needs optim.momentum > 0 (Nesterov's "
               "look-ahead is a momentum step)")

    devices = trainer.devices
    indices = isinstance(devices, (list, tuple, ListConfig))
    _check(errors, (bool(devices) and len(set(devices)) == len(devices)
                    and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in devices)) if indices
           else isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1,
           "trainer.devices", list(devices) if indices else devices,
           "must be an integer >= 1 (how many devices), or a list of distinct device indices such as [0] or [0,2]")
    # The spawn/fork variants train in child processes this one cannot read results from.
    _check(errors, trainer.strategy in ("auto", "ddp"), "trainer.strategy", trainer.strategy,
           "must be auto or ddp (ddp with trainer.devices > 1 trains one run on several devices)")
    _check(errors, trainer.max_epochs >= 1, "trainer.max_epochs", trainer.max_epochs, "must be an integer >= 1")
    _check(errors, trainer.steps_per_chunk >= 1, "trainer.steps_per_chunk", trainer.steps_per_chunk,
           "must be an integer >= 1")
    _check(errors, trainer.log_every_n_steps >= 1, "trainer.log_every_n_steps", trainer.log_every_n_steps,
           "must be an integer >= 1")
    _check(errors, trainer.log_every_n_epochs >= 1, "trainer.log_every_n_epochs", trainer.log_every_n_epochs,
           "must be an integer >= 1")
    if trainer.gradient_clip_val is not None:
        # 0 or below would flip or cancel every gradient: training backwards, silently.
        _check(errors, trainer.gradient_clip_val > 0, "trainer.gradient_clip_val", trainer.gradient_clip_val,
               "must be > 0, or null for no clipping")
    tune = cfg.tune
    _check(errors, tune.n_trials >= 1, "tune.n_trials", tune.n_trials, "must be an integer >= 1")
    _check(errors, tune.n_jobs >= 1, "tune.n_jobs", tune.n_jobs, "must be an integer >= 1")
    _check(errors, tune.min_resource >= 1, "tune.min_resource", tune.min_resource, "must be an integer >= 1")
    _check(errors, tune.reduction_factor >= 2, "tune.reduction_factor", tune.reduction_factor,
           "must be an integer >= 2")
    _check(errors, 1 <= tune.repeats <= MAX_REPEATS, "tune.repeats", tune.repeats,
           f"must be an integer from 1 to {MAX_REPEATS} (the seeds of a trial, trained as one stack)")
    _check(errors, tune.finalists >= 2, "tune.finalists", tune.finalists, "must be an integer >= 2")
    if cfg.report.min_difference is not None:
        _check(errors, cfg.report.min_difference > 0, "report.min_difference", cfg.report.min_difference,
               "must be > 0 (in the objective's units), or null")
    for key in cfg.report.best_over:
        _check(errors, OmegaConf.select(cfg, key, default=None) is not None, "report.best_over", key,
               "must name config keys (e.g. optim.lr) that the sweep varies")
    errors += [f"{key}: not a setting of mlpbench{did_you_mean(key, Config.__dataclass_fields__)} (see --help)"
               for key in sorted(set(cfg.keys()) - set(Config.__dataclass_fields__) - {"hydra"})]
    # `+model.dept=3` (Hydra's own advice for a typo'd key) adds a key nothing reads: the run
    # would train the default depth, silently.
    for section in ("data", "model", "optim", "trainer"):
        fields = getattr(OmegaConf.get_type(cfg[section]), "__dataclass_fields__", None)
        if fields:
            errors += [f"{section}.{key}: not a setting of {section}{did_you_mean(key, fields)} (see --help)"
                       for key in sorted(set(cfg[section].keys()) - set(fields))]
    _check(errors, safe_name(tune.study_name), "tune.study_name",
           tune.study_name, "must be a name of at most 100 letters, digits, '.', '_' and '-' (it names a folder)")
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))


JOBLIB_CHOICES = {"backend": (None, "loky", "multiprocessing", "threading"), "prefer": (None, "processes", "threads"),
                  "require": (None, "sharedmem")}


def validate_launcher(launcher: DictConfig) -> None:
    """Raise ConfigError for the options of hydra/launcher=stacked or joblib out of range
    (checked before any run folder is made)."""
    errors: list[str] = []
    if str(launcher.get("_target_", "")) == JOBLIB_LAUNCHER:
        n_jobs = launcher.get("n_jobs")
        _check(errors, isinstance(n_jobs, int) and not isinstance(n_jobs, bool) and n_jobs != 0,
               "hydra.launcher.n_jobs", n_jobs, "must be an integer >= 1, or -1 for one per CPU core (-2: all but one)")
        for key, allowed in JOBLIB_CHOICES.items():
            _check(errors, launcher.get(key) in allowed, f"hydra.launcher.{key}", launcher.get(key),
                   "must be one of: " + ", ".join("null" if a is None else a for a in allowed))
        if errors:
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    if str(launcher.get("_target_", "")) != STACKED_LAUNCHER:
        return
    allowed = {"_target_", "workers", "max_replicas", "cpu_max_batch_size"}
    errors += [f"hydra.launcher.{key}: not an option of hydra/launcher=stacked (options: workers, max_replicas, "
               "cpu_max_batch_size)" for key in sorted(set(launcher.keys()) - allowed)]

    def count(key: str, nullable: bool, meaning: str) -> None:
        value = launcher.get(key)
        ok = (value is None and nullable) or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
        _check(errors, ok, f"hydra.launcher.{key}", value, "must be an integer >= 1" + (f", or null {meaning}" if nullable else ""))

    count("workers", True, "for one per CPU core (on GPUs: one per GPU)")
    count("max_replicas", True, "for 64 on the CPU and, on a GPU, as many as its free memory holds")
    count("cpu_max_batch_size", True, "to stack every batch size")
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))


def _fmt(items: List[Any]) -> str:
    return "[" + ",".join(str(i) for i in items) + "]"

