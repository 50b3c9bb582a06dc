"""The tutorial presets (conf/experiment/): what each runs, and one of them end to end."""

import json

import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from mlpbench.run import compose_config
from mlpbench.schema import resolved, validate
from tests.conftest import REPO, make_config, run_cli, run_rows, summary_rows

PRESETS = {  # name -> number of runs in its grid: its settings times its seeds
    "activations": 4 * 5, "optimizers": 5 * 5, "optimizers_tuned": 5 * 4 * 5, "width": 8 * 5,
    "depth_linear": 9 * 5, "depth_relu": 9 * 5, "depth_residual": 9 * 5, "xor": 5,
}


def grid(name: str) -> list[list[str]]:
    """The per-run overrides Hydra's basic sweeper makes of the preset's `hydra.sweeper.params`."""
    cfg = compose_config([f"experiment={name}"], with_hydra=True)
    if str(cfg.hydra.mode) != "RunMode.MULTIRUN":
        return [[]]
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    (batch,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)
    return batch


def settings(name: str) -> list[str]:
    """The preset's settings in its order: each run's first override, seeds aside."""
    return list(dict.fromkeys(run[0] for run in grid(name)))


SEARCHES = ["tune_units"]  # hydra/sweeper=tune: tests/test_tune.py
OWN_DATA = ["table_depth"]  # a user's data.path: tests/test_table.py


def test_every_preset_file_is_listed():
    assert sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")) == sorted(
        [*PRESETS, *SEARCHES, *OWN_DATA])


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_composes_and_every_grid_point_is_a_valid_run(name):
    runs = grid(name)
    assert len(runs) == PRESETS[name]
    composed = {}  # the seed only sets `seed`: each setting is composed once, each seed checked on it
    for overrides in runs:
        setting = tuple(o for o in overrides if not o.startswith("seed="))
        if setting not in composed:
            composed[setting] = make_config(f"experiment={name}", *setting)
        cfg = composed[setting].copy()
        cfg.seed = int(next(o for o in overrides if o.startswith("seed=")).split("=")[1])
        validate(resolved(cfg))


def test_comparisons_repeat_each_setting_over_seeds_and_the_tuned_optimizers_take_their_best_rate():
    for name in ("activations", "optimizers", "optimizers_tuned", "width", "depth_linear", "depth_relu",
                 "depth_residual"):
        assert {run[-1] for run in grid(name)} == {f"seed={s}" for s in range(1, 6)}, name
    tuned = grid("optimizers_tuned")
    assert {run[1] for run in tuned} == {f"optim.lr={lr}" for lr in ("0.0001", "0.001", "0.01", "0.1")}
    assert list(make_config("experiment=optimizers_tuned").report.best_over) == ["optim.lr"]


def test_presets_fix_the_tutorials_settings():
    assert settings("activations") == [
        f"model.activation={a}" for a in ("relu", "leaky_relu", "tanh", "sigmoid")]
    cfg = make_config("experiment=activations", "model.activation=leaky_relu")
    assert cfg.model.negative_slope == 0.01 and cfg.data.val_split is None and cfg.trainer.max_epochs == 10
    assert cfg.model.init == "keras" and cfg.optim.name == "adam"

    assert settings("optimizers") == [f"optim={o}" for o in ("sgd", "rmsprop", "adagrad", "adam", "nadam")]

    taper = make_config("experiment=width", "model.units=[256,128,64]")
    validate(resolved(taper))
    assert resolved(taper).model.depth == 3 and taper.model.depth is None  # a list of widths sets the depth
    assert settings("width")[-3:] == ["model.units=[256,128,64]", "model.units=mean", "model.units=geomean"]

    assert settings("depth_linear") == [f"model.depth={d}" for d in range(2, 11)]
    linear = make_config("experiment=depth_linear")
    assert (linear.model.activation, linear.model.units, linear.optim.name, linear.optim.lr) == ("linear", 128, "sgd", 0.01)
    assert (linear.data.batch_size, linear.trainer.max_epochs, linear.data.val_split) == (128, 20, 0.2)
    assert linear.diagnostics
    residual = make_config("experiment=depth_residual")
    assert residual.model.activation == "relu" and residual.model.residual

    xor = make_config("experiment=xor")
    assert (xor.data.source, xor.model.units, xor.model.loss, xor.optim.name, xor.trainer.max_epochs) == (
        "xor", 8, "mse", "adam", 1000)


def test_a_preset_runs_end_to_end_and_reports_one_row_per_setting(tmp_path):
    sweep = tmp_path / "sweep"
    # The preset's grid with two of its five seeds: 4 settings x 2 runs.
    proc = run_cli("experiment=activations", "seed=1,2", "data.limit=200", "trainer.max_epochs=2",
                   f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    activations = ("relu", "leaky_relu", "tanh", "sigmoid")
    # Run folders are named by what the sweep varies (not the preset's name, not the constants), the seed last.
    assert sorted(p.parent.name for p in sweep.glob("*/result.json")) == sorted(
        f"model.activation={a},seed={s}" for a in activations for s in (1, 2))
    rows = summary_rows(sweep)
    # A row per setting, in the preset's order, each over its two seeds.
    assert [r["model.activation"] for r in rows] == list(activations)
    assert {r["n"] for r in rows} == {"2"} and len(run_rows(sweep)) == 8
    assert sorted(r["verdict"] for r in rows).count("best") == 1
    for name in ("summary.md", "val_loss.png", "val_acc.png", "best_val_acc.png"):
        assert (sweep / name).stat().st_size > 0, name
    # The text printed at the end opens with the answer, then summary.md's table.
    assert proc.stdout.index("best_val_acc: ") < proc.stdout.index("| model.activation | n |")
    result = json.loads(next(sweep.glob("*/result.json")).read_text())
    assert result["experiment"] == "activations"
    # Composing a preset resolves the default sweep folder too: no empty folder is left behind.
    assert not (tmp_path / "outputs").exists()


def test_xor_preset_prints_the_four_predictions_of_each_run(tmp_path):
    sweep = tmp_path / "sweep"
    # Two seeds: one stack, whose runs print theirs as a run alone does.
    proc = run_cli("experiment=xor", "seed=1,2", "trainer.max_epochs=20", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = sweep / "seed=1"
    output = proc.stdout + proc.stderr
    assert json.loads((run_dir / "result.json").read_text())["stacked"]["replicas"] == 2
    assert "Run seed=1: predictions:" in output and "Run seed=2: predictions:" in output
    # It validates on its test split (the truth table): its run line has no test_acc, which is val_acc.
    (run_line,) = [line for line in output.splitlines() if "Run seed=1 ok: val_acc" in line]
    assert "test_acc" not in run_line
    for x, target in (("[0.0, 0.0]", 0), ("[0.0, 1.0]", 1), ("[1.0, 0.0]", 1), ("[1.0, 1.0]", 0)):
        assert x in output and f"(target {target})" in output
    predictions = json.loads((run_dir / "result.json").read_text())["predictions"]
    assert [p["target"] for p in predictions] == [0, 1, 1, 0]
    # What the log prints is the network's one sigmoid output, as result.json records it.
    for p in predictions:
        assert f"{p['input']} -> {p['output'][0]:.4f}  (target {p['target']})" in output
    assert len({p["output"][0] for p in predictions}) > 1  # not one constant
