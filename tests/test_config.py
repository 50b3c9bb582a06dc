import os
import subprocess
import sys

import pytest

from mlpbench.schema import ConfigError, resolved, validate
from tests.conftest import REPO, make_config, run_cli


@pytest.mark.parametrize("overrides, key, allowed", [
    (["model.depth=-1"], "model.depth=-1", "[0, 1000]"),
    (["model.depth=2", "model.units=[64]"], "model.units=[64]", "model.depth=2"),
    (["model.units=abc"], "model.units=abc", "mean, geomean"),
    (["model.units=[64,0]", "model.depth=2"], "model.units=[64,0]", "positive"),
    (["data.val_split=1.5"], "data.val_split=1.5", "(0, 1)"),
    (["data.batch_size=0"], "data.batch_size=0", ">= 1"),
    (["model.dropout=1.0"], "model.dropout=1.0", "[0, 1)"),
    (["optim.lr=0"], "optim.lr=0", "> 0"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0", ">= 1"),
    (["data=table", "data.path=t.csv", "data.target=y", "data.features=[]"], "data.features=[]",
     "names no column; leave it out (null) to read every column but the target"),
    (["data=table", "data.path=t.csv", "data.target=y", "data.features=[a,b,a]"], "data.features=[a,b,a]",
     "names a more than once (one input read twice)"),
    (["data=table", "data.path=t.csv", "data.target=y", "data.drop=[a,a]"], "data.drop=[a,a]", "names a more than once"),
    (["data=table", "data.path=arrays.npy"], "data.path=arrays.npy", "a .npy file holds one array; save the inputs "
     "and labels as one .npz"),
])
def test_out_of_range_values_name_the_key_and_what_is_allowed(overrides, key, allowed):
    with pytest.raises(ConfigError) as err:
        validate(make_config(*overrides))
    assert key in str(err.value) and allowed in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        validate(make_config("model.depth=-1", "data.batch_size=0"))
    assert "model.depth" in str(err.value) and "data.batch_size" in str(err.value)


def test_defaults_are_valid_and_are_the_tutorial_setup():
    cfg = make_config()
    validate(cfg)
    assert cfg.data.source == "mnist_small" and cfg.optim.name == "adam"
    assert cfg.model.depth is None and resolved(cfg).model.depth == 1  # null: one layer, or one per width
    assert (cfg.model.units, cfg.model.activation, cfg.model.input_bn) == (128, "relu", True)


@pytest.mark.parametrize("args, expected", [
    (["model.activation=relu6"], ["model.activation", "relu, leaky_relu, tanh, sigmoid"]),
    (["optim=foo"], ["optim/foo", "adagrad", "nadam"]),
    (["optim.rho=0.5"], ["optim.rho: optim=adam has no rho; rmsprop has it (optim=rmsprop optim.rho=0.5)"]),
    (["model.depth=-1"], ["model.depth=-1", "[0, 1000]"]),
    (["data.val_split=1.5"], ["data.val_split=1.5"]),
    (["data.batch_size=0"], ["data.batch_size=0"]),
    (["model.depth=3", "model.units=[256,128]"], ["model.units=[256,128]", "model.depth=3"]),
    (["data=mnist", "data.root=/nonexistent/mnist"], ["/nonexistent/mnist", "train-images-idx3-ubyte"]),
    (["trainer.precision=foo"], ["trainer.precision=foo", "Allowed precision values"]),
    (["trainer.devices=0"], ["trainer.devices=0", ">= 1"]),
    (["trainer.devices=2", "trainer.strategy=ddp_spawn"], ["trainer.strategy=ddp_spawn", "auto or ddp"]),
    # A mistyped name: the closest ones, before Hydra's advice of a `+` or its config search path.
    (["model.dept=3"], ["model.dept: model has no key dept; did you mean model.depth?"]),
    (["optim=adma"], ["optim=adma: optim has no option adma; did you mean adam or nadam?"]),
    (["optim=sgd", "optim.momentun=0.9"], ["did you mean optim.momentum?"]),
    (["epochs=3"], ["epochs: the config has no key epochs; did you mean trainer.max_epochs?"]),
    (["-m", "data=digits,mnist_smal"], ["data=mnist_smal: data has no option mnist_smal; did you mean mnist_small"]),
    (["experiment=depht_linear"], ["did you mean depth_linear?"]),
    (["-m", "hydra.launcher.wrkers=2"], ["hydra.launcher.wrkers: hydra/launcher=stacked has no option wrkers; did you "
                                         "mean workers?"]),
    (["-m", "hydra/launcher=joblib", "hydra.launcher.n_job=2"], ["joblib has no option n_job; did you mean n_jobs?"]),
    (["+model.dept=3"], ["model.dept: not a setting of model; did you mean depth?"]),
    # Where Hydra would advise a '+' (a key of another optimizer), trace, or say a key does not exist.
    (["optim.momentum=0.9"], ["optim.momentum: optim=adam has no momentum; sgd, rmsprop have it (optim=sgd "
                              "optim.momentum=0.9)"]),
    (["--cfg", "job", "-m", "model.depth=1,2"], ["-m with --cfg job: --cfg shows one run's config"]),
    (["~hydra/launcher"], ["~hydra/launcher: a sweep needs its launcher"]),
    (["-m", "model.depth=range(1,3),5"], ["model.depth=range(1,3),5: a range() or choice() is the whole of a key's "
                                          "values"]),
    (["~data.limit"], ["~data.limit: a key of mlpbench's config cannot be deleted; set it instead"]),
])
def test_bad_input_ends_before_training_with_one_clear_message(tmp_path, args, expected):
    proc = run_cli(*args, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for text in expected:
        assert text in output
    assert "Traceback" not in output and "Config search path" not in output
    assert "Epoch" not in output
    assert not (tmp_path / "run" / "result.json").exists()


def test_help_lists_groups_and_keys_without_importing_torch(tmp_path):
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for text in ("data: mnist_small, mnist, fashion_mnist, digits, xor", "optim: adam, sgd",
                 "model.depth=4", "activation: relu", "max_epochs: 10"):
        assert text in proc.stdout
    # --help must stay instant: the app module imports no framework until a run starts.
    code = "import sys, mlpbench.run; print(any(m in sys.modules for m in ('torch', 'lightning')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_info_plugins_lists_each_launcher_and_sweeper_once(tmp_path):
    # A fresh interpreter: Hydra's plugin scan runs once per process, as a user's command runs it.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-m", "mlpbench", "--info", "plugins"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout
    listed = [line.strip() for line in out.split("Profiling information")[0].splitlines()]
    # Ours and hydra-joblib-launcher's JoblibLauncher: two classes of one name.
    assert {name: listed.count(name) for name in ("JoblibLauncher", "StackedLauncher", "TuneSweeper", "GridSweeper")} \
        == {"JoblibLauncher": 2, "StackedLauncher": 1, "TuneSweeper": 1, "GridSweeper": 1}


def test_help_group_list_matches_the_conf_folder(tmp_path):
    proc = run_cli("--help", cwd=tmp_path)
    for group in ("data", "model", "optim", "trainer", "experiment"):
        (line,) = [ln for ln in proc.stdout.splitlines() if ln.lstrip("+").startswith(f"{group}: ")]
        listed = sorted(x.strip() for x in line.split(":", 1)[1].split(","))
        assert listed == sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml")), group


def test_run_folders_leave_out_exactly_the_keys_that_are_no_setting():
    # conf/config.yaml lists them for Hydra's override_dirname; mlpbench.overrides for reports and
    # HParams: a sweep.* key added to the schema and not to the list would name run folders.
    import dataclasses

    from omegaconf import OmegaConf

    from mlpbench.overrides import NOT_A_SETTING
    from mlpbench.schema import SweepConfig

    config = OmegaConf.load(REPO / "conf" / "config.yaml")
    excluded = set(config.hydra.job.config.override_dirname.exclude_keys)
    assert excluded == NOT_A_SETTING | {f"sweep.{f.name}" for f in dataclasses.fields(SweepConfig)}


def test_a_refused_value_is_written_as_the_command_line_writes_it():
    from mlpbench.schema import ConfigError, checked

    with pytest.raises(ConfigError, match=r"seed=null: must be an integer"):
        checked(make_config("seed=null"))
