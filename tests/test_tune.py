"""The tuner (+experiment=tune_units, hydra/sweeper=tune): a search that prunes, reports and
continues where it stopped."""

import csv
import json
import os
import signal
import sqlite3
from pathlib import Path

import pytest
from matplotlib.image import imread
from omegaconf import OmegaConf

from mlpbench.run import compose_config
from mlpbench.schema import ConfigError
from mlpbench.tune.space import grid_size, parse_space
from tests.conftest import REPO, fork_server_workers, run_cli, start_cli, wait_until

# One run a trial (the preset repeats each over 3 seeds: test_repeats_* below).
TINY = ["experiment=tune_units", "data.limit=300", "trainer.max_epochs=3", "trainer.enable_progress_bar=false",
        "tune.repeats=1"]


def study_dir(cwd: Path) -> Path:
    return cwd / "outputs" / "tune" / "tune_units"


def trial_rows(cwd: Path) -> list[dict]:
    with open(study_dir(cwd) / "trials.csv") as f:
        return list(csv.DictReader(f))


def trained(cwd: Path) -> list[dict]:
    """The trials that trained (not the repeats of a point tried already)."""
    return [r for r in trial_rows(cwd) if not r["note"].startswith("as trial")]


def checkpoint_epochs(run_dir: Path) -> int:
    """The epochs a run's checkpoint holds: where the run continues; 0 without one."""
    import torch

    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        return 0
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return len(checkpoint["mlpbench"]["history"]["train_loss"])


def cut_off_run(sweep: Path, source: str, name: str, checkpoint_epochs: int) -> None:
    """A run of a trial cut off after `checkpoint_epochs` epochs (its checkpoint's), copied from
    the finished run `source`; its result.json, saved before the last checkpoints, says 1."""
    import shutil

    import torch

    shutil.copytree(sweep / source, sweep / name)
    (sweep / name / "result.json").write_text(json.dumps({"status": "interrupted", "epochs": 1}))
    checkpoint = torch.load(sweep / name / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["mlpbench"]["history"]["train_loss"] = [0.5] * checkpoint_epochs
    torch.save(checkpoint, sweep / name / "checkpoints" / "last.ckpt")
    (sweep / name / "checkpoints" / "best.ckpt").unlink(missing_ok=True)


def test_the_tutorial_space_parses_as_keras_tuner_declares_it():
    space = OmegaConf.load(REPO / "conf" / "experiment" / "tune_units.yaml").tune.space
    units, lr = parse_space(space)
    assert (units.key, units.kind, units.low, units.high, units.step) == ("model.units", "int", 32, 512, 32)
    assert (lr.key, lr.kind, lr.choices) == ("optim.lr", "categorical", (1e-2, 1e-3, 1e-4))
    assert units.label == "number of units" and grid_size([units, lr]) == 48
    assert units.override(224) == "model.units=224" and lr.override(0.001) == "optim.lr=0.001"


def test_float_log_ranges_and_list_choices_are_search_dimensions():
    dims = parse_space({"optim": {"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
                        "model": {"units": {"type": "categorical", "choices": [64, [256, 128, 64]]}}})
    lr, units = dims
    assert lr.distribution().log and grid_size(dims) is None  # continuous: no grid to compare with
    assert units.override(units.choices[1]) == "model.units=[256,128,64]"


@pytest.mark.parametrize("space, message", [
    ({}, "tune.space is empty"),
    ({"model": {"units": {"type": "integer", "low": 1, "high": 2}}}, "tune.space.model.units.type=integer"),
    ({"model": {"units": {"type": "int", "low": 64, "high": 32}}}, "low=64 must be below high=32"),
    ({"model": {"units": {"type": "int", "low": 32.5, "high": 64}}}, "tune.space.model.units.low=32.5"),
    ({"optim": {"lr": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}}, "log=true needs low > 0"),
    ({"optim": {"lr": {"type": "categorical", "choices": []}}}, "must be a non-empty list"),
    ({"optim": {"lr": {"type": "categorical", "choices": [1], "step": 2}}}, "step not allowed"),
    ({"model": {"units": 128}}, "tune.space.model.units=128"),
    # Optuna would quietly search 32 alone, or 32..480: a step must fit the range whole.
    ({"model": {"units": {"type": "int", "low": 32, "high": 64, "step": 1000}}}, "high=1032 would be"),
    ({"model": {"units": {"type": "int", "low": 32, "high": 500, "step": 32}}}, "step=32: the range 32..500"),
    ({"optim": {"lr": {"type": "float", "low": 0.1, "high": 0.25, "step": 0.1}}}, "high=0.2 would be"),
])
def test_a_malformed_search_dimension_names_its_key(space, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_space(space)


def test_the_search_sweeper_without_multirun_is_refused_not_run_as_one_plain_run(tmp_path):
    proc = run_cli("hydra/sweeper=tune", "+tune.space.model.units={type:int,low:32,high:64,step:32}",
                   "trainer.max_epochs=1", "data.limit=200", cwd=tmp_path)
    assert proc.returncode == 2 and "hydra/sweeper=tune: a search runs with -m" in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_retried_trial_is_pruned_in_the_hyperband_bracket_of_the_trial_it_repeats():
    from types import SimpleNamespace

    from mlpbench.tune.study import make_pruner

    pruner = make_pruner(compose_config(["experiment=tune_units"]).tune, max_epochs=10)
    pruner._try_initialization(None)  # max_resource given: the brackets need no trials
    study = SimpleNamespace(study_name="tune_units")
    bracket = {n: pruner._get_bracket_id(study, SimpleNamespace(number=n, user_attrs={})) for n in range(40)}
    first, retried = next((a, b) for a in bracket for b in bracket if bracket[a] != bracket[b])
    assert pruner._get_bracket_id(study, SimpleNamespace(number=retried, user_attrs={"first_number": first})) == \
        bracket[first]


def test_a_retry_that_continued_its_runs_counts_only_the_seconds_it_added(tmp_path):
    import optuna

    from mlpbench.tune.study import retry, tell

    study = optuna.create_study(direction="maximize")
    cut = study.ask({"x": optuna.distributions.IntDistribution(0, 3)})
    cut.set_user_attr("run", "run")
    (tmp_path / "run").mkdir()
    left = {"status": "interrupted", "epochs": 2, "seconds": 5.0}
    retry(study, cut, [left], continued_from=2)
    again = study.ask()
    (tmp_path / "run" / "result.json").write_text(json.dumps({
        "status": "ok", "epochs": 3, "seconds": 8.0, "overrides": [], "config": {},
        "history": {"val_acc": [0.5, 0.6, 0.7]}, "metrics": {"val_loss": 0.4, "val_acc": 0.7, "best_val_acc": 0.7}}))
    tell(study, again, [tmp_path / "run"], "val_acc")
    trials = study.get_trials()
    assert trials[cut.number].user_attrs["seconds"] == 5.0 and trials[again.number].user_attrs["seconds"] == 3.0
    assert trials[again.number].user_attrs["first_number"] == cut.number


def test_more_trials_of_a_loss_say_how_far_the_expected_best_fell():
    from mlpbench.tune.report import _more_trials

    rows = [{"state": "complete", "value": v} for v in (0.5, 0.4, 0.3, 0.45)]
    (line,) = _more_trials(rows, "val_loss", maximize=False)
    assert "from 2 to 4 trials it fell by 0." in line and "-0." not in line.split("it fell by")[1]
    (line,) = _more_trials([{**r, "value": 1 - r["value"]} for r in rows], "val_acc", maximize=True)
    assert "from 2 to 4 trials it gained +0." in line


def test_a_repeat_held_in_a_batch_whose_trial_was_cut_off_is_no_failure_and_no_trial(tmp_path):
    import optuna

    from mlpbench.tune.report import write_report
    from mlpbench.tune.search import _take_result_of
    from mlpbench.tune.study import ended_count, retry, storage

    config = compose_config(["experiment=tune_units", "tune.repeats=1"])
    study = optuna.create_study(storage=storage(tmp_path), study_name="tune_units", direction="maximize")
    space = {"model.units": optuna.distributions.IntDistribution(32, 512, step=32),
             "optim.lr": optuna.distributions.CategoricalDistribution([0.01, 0.001, 0.0001])}
    first = study.ask(space)
    study.enqueue_trial(first.params)
    repeat = study.ask(space)  # the same point, held for first's result
    repeat.set_user_attr("same_as", first.number)
    retry(study, first, [None])  # first cut off (Ctrl-C): its retry waits in the queue
    _take_result_of(study, repeat)
    assert study.get_trials()[repeat.number].state.name == "FAIL" and ended_count(study) == 0
    assert write_report(tmp_path, config, quiet=True) == []  # no trial failed: the search ends ok
    # Told once: resolving it again (the batch's end after its interrupt) leaves it as it is.
    _take_result_of(study, repeat)


def test_a_space_value_no_run_can_use_stops_the_search_before_any_trial(tmp_path):
    proc = run_cli(*TINY, "tune.space.model.units.low=0", cwd=tmp_path)
    assert proc.returncode == 2
    assert "tune.space.model.units: the value 0 cannot run" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(study_dir(tmp_path).glob("trial_*"))
    # Every reason, each once, apart: not run together as one line.
    proc = run_cli(*TINY, "+tune.space.data.batch_size={type:categorical,choices:[32,0]}", cwd=tmp_path)
    assert "the value 0 cannot run: data.batch_size=0: must be an integer >= 1; data.batch_size=0: must be >= 2 " \
           "with BatchNorm" in proc.stderr
    proc = run_cli(*TINY, "model.depth=1,2", cwd=tmp_path)  # a grid: the tuner samples instead
    assert proc.returncode == 2 and "make model.depth a search dimension in tune.space" in proc.stderr
    # A seed searched would be overridden by tune.repeats' seeds; trainer.max_epochs is the pruner's budget.
    proc = run_cli(*TINY, "+tune.space.seed={type:int,low:1,high:100}", cwd=tmp_path)
    assert proc.returncode == 2 and "tune.space.seed: a seed is no design choice" in proc.stderr
    proc = run_cli(*TINY, "+tune.space.trainer.max_epochs={type:int,low:2,high:9}", cwd=tmp_path)
    assert proc.returncode == 2 and "is trainer.max_epochs=3 for every trial" in proc.stderr


def test_a_tiny_search_reports_its_trials_and_a_best_config_that_trains_again(tmp_path):
    proc = run_cli(*TINY, "tune.n_trials=4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = trained(tmp_path)
    assert len(rows) == 4 and {r["state"] for r in rows} <= {"complete", "pruned"}
    assert rows[0]["state"] == "complete"  # best first
    for name in ("trials.md", "best.yaml", "best_config.yaml", "optimization_history.png", "curves.png",
                 "epochs.png"):
        assert (study_dir(tmp_path) / name).is_file(), name
    for png in study_dir(tmp_path).glob("*.png"):  # readable: Optuna's figures too
        assert imread(png).shape[1] >= 1000, png.name
    best = OmegaConf.load(study_dir(tmp_path) / "best.yaml")
    assert f"Best number of units: {best.params['model.units']}" in proc.stdout
    assert f"Best learning rate: {best.params['optim.lr']:g}" in proc.stdout
    assert "Epochs trained:" in proc.stdout and "the full grid, 48 points x 3 epochs: 144" in proc.stdout
    # Each trial is an ordinary run: result.json and TensorBoard events in its own folder, named
    # by its number and the values it tried.
    for row in rows:
        run_dir = study_dir(tmp_path) / row["run"]
        assert row["run"] == f"trial_{int(row['trial']):03d}_model.units={row['model.units']},optim.lr={row['optim.lr']}"
        result = json.loads((run_dir / "result.json").read_text())
        assert result["status"] == row["state"].replace("complete", "ok")
        assert result["epochs"] == int(row["epochs"]) and list(run_dir.glob("events.out.tfevents.*"))
        # A completed trial trained every epoch; a pruned one stopped at a rung before the last.
        assert int(row["epochs"]) == 3 if row["state"] == "complete" else int(row["epochs"]) < 3

    again = run_cli("--config-dir", str(study_dir(tmp_path)), "--config-name", "best_config",
                    "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'best'}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    retrained = json.loads((tmp_path / "best" / "result.json").read_text())
    # Its own output folder is mlpbench's (outputs/run/<date>/<time>): the received-config check passes it.
    from mlpbench import __main__ as cli
    from mlpbench.overrides import command_line

    cli._check_received_config(command_line(["--config-dir", str(study_dir(tmp_path)), "--config-name", "best_config"]))
    assert retrained["config"]["model"]["units"] == best.params["model.units"]

    # The folder holds its study: another study there would take over its trials' folders.
    other = run_cli(*TINY, "tune.n_trials=1", "tune.study_name=other", f"hydra.sweep.dir={study_dir(tmp_path)}",
                    cwd=tmp_path)
    assert other.returncode == 2 and "holds the study 'tune_units', not 'other'" in other.stderr
    # A search killed while a worker went on with its trial: the trial, left running, is taken as
    # its run ended (here: the first trial's folder), not trained again.
    from mlpbench.tune.search import Search
    from mlpbench.tune.study import load_config, load_study

    study = load_study(study_dir(tmp_path), load_config(study_dir(tmp_path)))
    first = study.get_trials()[0]
    orphan = study.ask(first.distributions)
    orphan.set_user_attr("run", first.user_attrs["run"])
    search = Search.__new__(Search)
    search.sweep_dir, search.objective, search.config = study_dir(tmp_path), "val_acc", load_config(study_dir(tmp_path))
    search._recover(study)
    taken = study.get_trials()[orphan.number]
    assert taken.state.name == first.state.name and taken.user_attrs["run"] == first.user_attrs["run"]
    assert not [t for t in study.get_trials() if t.state.name == "WAITING"]  # nothing queued to train again
    # A launcher's worker that died stops its batch: a trial whose run failed on its own is failed,
    # one cut off is tried again, at most MAX_ATTEMPTS times in all.
    from optuna.trial import TrialState

    from mlpbench.tune.study import MAX_ATTEMPTS

    (study_dir(tmp_path) / "own_failure").mkdir()
    (study_dir(tmp_path) / "own_failure" / "result.json").write_text(json.dumps({"status": "failed", "epochs": 1}))
    cut_off_run(study_dir(tmp_path), first.user_attrs["run"], "cut_off", checkpoint_epochs=1)
    failed, cut_off, last = (study.ask(first.distributions) for _ in range(3))
    failed.set_user_attr("run", "own_failure")
    for trial, attempt in ((cut_off, 1), (last, MAX_ATTEMPTS)):
        trial.set_user_attr("run", "cut_off")
        trial.set_user_attr("attempt", attempt)
    for trial in (failed, cut_off, last):
        search._settle(study, trial, "a launcher failure", attempts=MAX_ATTEMPTS)
    states = {t.number: t.state.name for t in study.get_trials()}
    assert states[failed.number] == states[cut_off.number] == states[last.number] == "FAIL"
    queued = [t for t in study.get_trials() if t.state.name == "WAITING"]
    assert [(t.user_attrs["retry_of"], t.user_attrs["attempt"], t.user_attrs["continued_from"]) for t in queued] == [
        (cut_off.number, 2, 1)]
    popped = study.ask(first.distributions)
    assert popped.number == queued[0].number  # tried again first
    study.tell(popped, state=TrialState.FAIL)
    # A trial cut off with its seeds at different epochs: tried again from the start, so that its
    # seeds train as one stack again (continued apart, each would report its own value to the pruner).
    # Their checkpoints tell, not result.json, saved at most once a second: here it says 1 for both.
    cut = study.ask(first.distributions)
    for name, epochs in (("cut_seed_1", 2), ("cut_seed_2", 1)):
        cut_off_run(study_dir(tmp_path), first.user_attrs["run"], name, checkpoint_epochs=epochs)
    cut.set_user_attr("runs", ["cut_seed_1", "cut_seed_2"])
    search._recover(study)
    assert not (study_dir(tmp_path) / "cut_seed_1").exists() and not (study_dir(tmp_path) / "cut_seed_2").exists()
    queued = [t for t in study.get_trials() if t.state.name == "WAITING"]
    assert [t.user_attrs["retry_of"] for t in queued] == [cut.number]
    assert queued[0].user_attrs["continued_from"] == 0 and study.trials[cut.number].user_attrs["epochs"] == 2
    assert retrained["config"]["optim"]["lr"] == best.params["optim.lr"]

    # The study continues only with the settings it was started with.
    other = run_cli(*TINY[:1], "data.limit=400", *TINY[2:], "tune.n_trials=4", cwd=tmp_path)
    assert other.returncode == 2 and "data.limit: 300 -> 400" in other.stderr


def test_repeats_train_a_trials_seeds_as_one_stack_prune_on_their_mean_and_judge_the_finalists(tmp_path):
    import numpy as np
    import optuna

    proc = run_cli(*TINY[:-1], "tune.repeats=2", "tune.n_trials=3", "tune.finalists=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    log = proc.stdout + proc.stderr
    assert log.count("One stacked model of 2 replicas") == 3
    assert "Trials ended: 1 of 3" in log and "min left" in log and "Trials ended: 3 of 3" in log
    # A trial's runs are logged with what they set, not with the callback the search gives them.
    assert "_target_:mlpbench.tune.trial.TrialPruning" not in log and "optim.lr=" in log
    rows = trained(tmp_path)
    assert len(rows) == 3
    study = optuna.load_study(study_name="tune_units", storage=f"sqlite:///{study_dir(tmp_path) / 'study.db'}")
    for row in rows:
        values = [float(row["seed 42"]), float(row["seed 43"])]  # each seed's best epoch
        assert float(row["value"]) == pytest.approx(np.mean(values))  # the trial's: their mean
        trial = study.trials[int(row["trial"])]
        runs = [json.loads((study_dir(tmp_path) / run / "result.json").read_text()) for run in trial.user_attrs["runs"]]
        assert [r["config"]["seed"] for r in runs] == [42, 43]
        assert [max(r["history"]["val_acc"]) for r in runs] == pytest.approx(values)
        # What the pruner saw every epoch: the mean over the seeds; pruned or not, together.
        mean = np.mean([r["history"]["val_acc"] for r in runs], axis=0)
        assert [trial.intermediate_values[e] for e in range(len(mean))] == pytest.approx(list(mean))
        assert {r["status"] for r in runs} == {row["state"].replace("complete", "ok")}
    assert "replica-epochs (2 seeds a trial)" in proc.stdout
    assert "Finalists: the best 2 trials over their 2 seeds" in proc.stdout
    assert "So the search's best (trial " in proc.stdout
    assert "Expected best val_acc of n of these trials" in proc.stdout and (study_dir(tmp_path) / "expected_best.png").is_file()
    # A trial's seeds cannot train one after another: its pruning must see their mean.
    refused = run_cli(*TINY[:-1], "tune.repeats=2", "hydra/launcher=basic", "hydra.sweep.dir=other", cwd=tmp_path)
    assert refused.returncode == 2 and "tune.repeats=2 trains each trial's seeds as one stacked model: it needs " \
        "hydra/launcher=stacked" in refused.stderr


def test_a_clearly_bad_learning_rate_is_pruned_after_the_first_rung(tmp_path):
    # A good trial first, then Adam at lr 10: successive halving stops the second at epoch 2.
    proc = run_cli(*TINY, "tune.n_trials=2", "tune.pruner=successive_halving",
                   "tune.space.optim.lr.choices=[0.01,10.0]",
                   "tune.enqueue=[{model:{units:64},optim:{lr:0.01}},{model:{units:64},optim:{lr:10.0}}]",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {r["optim.lr"]: r for r in trial_rows(tmp_path)}
    assert rows["0.01"]["state"] == "complete" and rows["0.01"]["epochs"] == "3"
    assert rows["10"]["state"] == "pruned" and rows["10"]["epochs"] == "2"
    pruned = json.loads((study_dir(tmp_path) / rows["10"]["run"] / "result.json").read_text())
    assert pruned["status"] == "pruned" and pruned["epochs"] == 2


def test_a_search_whose_every_trial_diverged_says_it_found_nothing(tmp_path):
    proc = run_cli(*TINY, "optim=sgd", "tune.space.optim.lr.choices=[1000.0]", "tune.n_trials=1",
                   "trainer.max_epochs=1", "tune.pruner=none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert trial_rows(tmp_path)[0]["note"] == "diverged"
    assert "Every completed trial diverged" in proc.stdout and "Narrow tune.space" in proc.stdout
    assert not (study_dir(tmp_path) / "best_config.yaml").exists()  # nothing to train again
    assert "Best trial" not in proc.stdout and "Finalists" not in proc.stdout


def _states(db: Path) -> dict[int, str]:
    try:
        with sqlite3.connect(db, timeout=10) as con:
            return dict(con.execute("select number, state from trials"))
    except sqlite3.OperationalError:  # the tuner is still creating its tables
        return {}


def test_a_killed_search_continues_the_study_without_repeating_finished_trials(tmp_path):
    # Two trials: the one killed is retried, and the study ends at n_trials ended.
    args = [*TINY, "tune.n_trials=2", "trainer.max_epochs=30", "tune.pruner=none", "data.limit=300"]
    proc = start_cli(args, tmp_path)
    db = study_dir(tmp_path) / "study.db"
    # kill -9 once trial 0 has ended and trial 1 is training
    wait_until(lambda: db.exists() and _states(db).get(1) == "RUNNING"
               and list(study_dir(tmp_path).glob("trial_001*/result.json")), proc, "trial 1 started")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _states(db)
    assert before[0] == "COMPLETE" and before[1] == "RUNNING"
    first = json.loads(next(study_dir(tmp_path).glob("trial_000*/result.json")).read_text())
    cut_run = next(study_dir(tmp_path).glob("trial_001*"))
    cut_at = checkpoint_epochs(cut_run)  # where it continues: its checkpoint's epoch (result.json may lag)

    rerun = run_cli(*args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "Trial 1 was cut off" in rerun.stdout
    rows = {int(r["trial"]): r for r in trial_rows(tmp_path)}
    assert rows[0]["state"] == "complete"
    assert rows[1]["state"] == "failed" and rows[1]["note"] == "retried as trial 2"
    assert rows[2]["note"] == "retry of trial 1" + (f", from epoch {cut_at}" if cut_at else "")
    assert rows[2]["model.units"] == rows[1]["model.units"]
    # The cut-off trial keeps the epochs it trained; its retry continues its run and counts only
    # the epochs it adds: 30 + 30 in all, not the retry's 30 twice.
    assert rows[1]["epochs"] == str(cut_at) and rows[2]["epochs"] == "30"
    assert "Epochs trained: 60 epochs in 2 trials (2 complete, 1 cut off and tried again); the same trials " \
           "without pruning: 60" in rerun.stdout
    assert "Trials, best first (3 of 3 rows, with 1 cut-off attempt; all in trials.md)" in rerun.stdout
    # And the seconds: the retry's own, not the cut-off attempt's again (a continued run's result has both).
    run_seconds = json.loads((cut_run / "result.json").read_text())["seconds"]
    before = float(rows[1]["seconds"]) if cut_at else 0.0
    assert float(rows[2]["seconds"]) == pytest.approx(run_seconds - before, abs=0.15)
    assert sum(r["state"] in ("complete", "pruned") for r in trained(tmp_path)) == 2  # n_trials ended
    # Trial 0 was not run again: its result is the first run's, to the second.
    again = json.loads(next(study_dir(tmp_path).glob("trial_000*/result.json")).read_text())
    assert again["seconds"] == first["seconds"] and "Trial 0 (" not in rerun.stdout


def test_ctrl_c_mid_search_writes_the_report_and_says_to_run_the_command_again(tmp_path):
    args = [*TINY, "tune.n_trials=3", "trainer.max_epochs=30", "tune.pruner=none"]
    proc = start_cli(args, tmp_path)
    db = study_dir(tmp_path) / "study.db"
    wait_until(lambda: db.exists() and _states(db).get(1) == "RUNNING"
               and list(study_dir(tmp_path).glob("trial_001*/checkpoints/last.ckpt")), proc, "trial 1 trained")
    os.killpg(proc.pid, signal.SIGINT)
    output = proc.communicate()[0]
    assert proc.returncode == 130, output
    assert "trial(s) 1 will be tried again. Run the same command to continue the study" in output
    assert "Rerun the same command to continue the search." in output  # the trial's run says so too
    assert "resume=true" not in output and "mlpbench.report" not in output  # a search needs neither
    assert [r["state"] for r in trial_rows(tmp_path)] == ["complete", "failed"]  # the report so far


def test_a_study_continued_on_an_edited_data_file_is_refused(tmp_path):
    # Trials of two datasets ranked in one table, the best config the old data's: refused.
    table = tmp_path / "rows.csv"
    rows = [f"{a},{b},{int(a > b)}" for a in range(12) for b in range(12)]
    table.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    args = ["experiment=tune_units", "data=table", f"data.path={table}", "data.target=label", "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false", "tune.repeats=1", "tune.pruner=none",
            "tune.space.model.units.label=width"]  # a label names a dimension: no part of the search
    assert run_cli(*args, "tune.n_trials=1", cwd=tmp_path).returncode == 0
    table.write_text("a,b,label\n" + "\n".join(r[:-1] + str(1 - int(r[-1])) for r in rows) + "\n")
    refused = run_cli(*args[:-1], "tune.n_trials=2", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert f"the content of {table}: " in refused.stderr and "Only tune.n_trials, " in refused.stderr
    assert len(trial_rows(tmp_path)) == 1


def test_a_worker_killed_mid_trial_has_its_trials_tried_again_not_failed(tmp_path):
    # Two trials side by side, each its 2 seeds' stack, in the stacked launcher's 2 workers: one
    # worker killed (the OOM killer) fails its runs, and its trial is tried again from their
    # checkpoints, as a search killed whole would try it; its neighbour trains on to its end.
    args = [*TINY[:-1], "tune.repeats=2", "tune.n_jobs=2", "tune.n_trials=2", "trainer.max_epochs=40",
            "tune.pruner=none"]
    proc = start_cli(args, tmp_path)
    wait_until(lambda: len(list(study_dir(tmp_path).glob("trial_00[01]*/checkpoints/last.ckpt"))) >= 2, proc,
               "both trials trained an epoch")
    os.kill(wait_until(lambda: fork_server_workers(proc.pid), proc, "the workers")[0], signal.SIGKILL)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    assert "cut off by a worker process's death" in output
    rows = {int(r["trial"]): r for r in trial_rows(tmp_path)}
    assert sorted(rows) == [0, 1, 2] and sorted(rows[n]["state"] for n in (0, 1)) == ["complete", "failed"]
    killed = next(n for n in (0, 1) if rows[n]["state"] == "failed")
    assert rows[killed]["note"] == "retried as trial 2" and rows[2]["state"] == "complete"
    assert rows[2]["note"].startswith(f"retry of trial {killed}")


def test_parallel_trials_share_the_study_and_the_cores(tmp_path):
    proc = run_cli(*TINY, "tune.n_trials=4", "tune.n_jobs=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Joblib.Parallel(" not in proc.stdout  # launcher noise; the threads below show the parallelism
    rows = trained(tmp_path)
    assert len(rows) == 4 and {r["state"] for r in rows} <= {"complete", "pruned"}
    for row in rows:  # two trials at a time: each takes half the cores
        result = json.loads((study_dir(tmp_path) / row["run"] / "result.json").read_text())
        assert result["threads"] == max(1, len(os.sched_getaffinity(0)) // 2)
    # A point proposed twice in one batch trains once (a one-point space: the second is the first's).
    # Its trials of 2 seeds each: the one that trains is one stack, trained in this process (joblib
    # would start its two processes again).
    one = run_cli(*TINY, "tune.n_trials=2", "tune.n_jobs=2", "tune.study_name=one", "tune.repeats=2",
                  "~tune.space.model.units", "+tune.space.model.units={type:categorical,choices:[32]}",
                  "tune.space.optim.lr.choices=[0.001]",
                  cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert "is trial 0's, in this batch: trained once, its result taken" in one.stdout
    with open(tmp_path / "outputs" / "tune" / "one" / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["trial"], r["state"], r["note"]) for r in rows] == [
        ("0", "complete", ""), ("1", "complete", "as trial 0, not trained again")]
    assert {p.name[:9] for p in (tmp_path / "outputs" / "tune" / "one").glob("trial_*")} == {"trial_000"}


def test_the_epochs_figure_ticks_whole_trials_and_epochs(tmp_path, monkeypatch):
    """Three trials of 1-2 epochs: matplotlib's own ticks would fall at 1.5 and 2.5 trials."""
    import matplotlib

    from mlpbench.tune import report as tune_report

    matplotlib.use("Agg")
    drawn = {}
    monkeypatch.setattr(tune_report, "save_figure", lambda fig, path: drawn.setdefault("fig", fig) and path)
    rows = [{"trial": t, "epochs": e, "state": s} for t, e, s in ((0, 2, "complete"), (1, 1, "pruned"), (2, 2, "complete"))]
    tune_report._plot_epochs(rows, max_epochs=2, grid=None, path=tmp_path / "epochs.png")
    ax = drawn["fig"].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "complete" in legend and "pruned" in legend and "this search: 5 epochs" in legend
    for ticks in (ax.get_xticks(), ax.get_yticks()):
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def test_a_search_of_a_regression_is_asked_for_its_own_metric_before_any_trial(tmp_path):
    from tests.test_table import sklearn_csv

    path = sklearn_csv(tmp_path, "diabetes")
    proc = run_cli(*TINY, "data=table", f"data.path={path}", "data.target=target", cwd=tmp_path)
    assert proc.returncode == 2
    assert f"tune.objective=val_acc: data.path={path} is a regression" in proc.stderr
    assert "set tune.objective=val_loss or val_r2" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(study_dir(tmp_path).glob("trial_*"))


def test_a_study_saved_by_an_earlier_version_continues_despite_keys_added_at_null():
    # An earlier version saved report.objective=best_val_acc (now null: chosen by task) and had
    # no data.task or data.split_column (now null): the same search.
    from mlpbench.tune.study import comparable, search_settings

    now = search_settings(compose_config(["experiment=tune_units"]))
    assert "data.task" not in now and not any(k.startswith("report.") for k in now)
    earlier = now | {"report.objective": "best_val_acc", "data.path": None}
    assert comparable(earlier) == now
    assert comparable(earlier | {"model.units": 64}) != now  # a real difference still counts
