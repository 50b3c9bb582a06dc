"""seed=auto: seeds in rounds until decided. The procedure's error rate and power by simulation
(statistics only), its rounds with a launcher that writes results instead of training, and one
real sweep."""

import json
import math
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy import stats as sps

from mlpbench.report import read_sweep, stopped
from mlpbench.seeds import SeedRounds
from mlpbench.stats import Verdict, sequential_verdicts
from tests.conftest import run_cli, summary_rows
from tests.test_report import fake_run

MAX_SEEDS = 10


def simulate(effect: float, cases: int = 2000, min_seeds: int = 3, max_seeds: int = MAX_SEEDS):
    """Two settings whose per-seed paired difference is normal with `effect` standard deviations
    of mean, judged after min_seeds, min_seeds + 1, ... seeds, as seed=auto's rounds do, until the
    comparison stops. (false or true `worse` rate, mean seeds)."""
    rng = np.random.default_rng(20261205)
    worse, seeds = 0, []
    for _ in range(cases):
        d = rng.normal(effect, 1.0, max_seeds)
        for n in range(min_seeds, max_seeds + 1):
            found = sequential_verdicts({"a": dict(enumerate(map(float, d[:n]))), "b": dict.fromkeys(range(n), 0.0)},
                                        max_seeds)
            other = found["b"] if found["a"].verdict == "best" else found["a"]
            if other.stopped is not None or n == max_seeds:
                worse += other.verdict == "worse"
                seeds.append(n)
                break
    return worse / cases, float(np.mean(seeds))


def test_no_difference_is_called_worse_at_most_5_percent_of_the_time_however_often_it_is_looked_at():
    false_worse, seeds = simulate(0.0)
    # A t-test repeated after every round, as a fixed design would, is wrong far more often: the
    # reason for the sequential test (0.166 over the 8 looks, in 2,000 such cases).
    assert false_worse <= 0.05
    assert seeds < 5  # an A/A comparison is found futile early, not run to the budget


def test_a_difference_of_1_5_standard_deviations_is_decided_in_80_percent_within_10_seeds_with_fewer_on_average():
    decided, seeds = simulate(1.5)
    assert decided >= 0.8
    assert seeds < MAX_SEEDS



def test_every_seed_the_same_difference_is_evidence_that_grows_with_the_seeds_not_proof():
    # Accuracies are discrete: two settings may differ by the same amount on every seed. That is
    # t = infinity, whose e-value is finite: 4 at 3 seeds, 42.6 at 6 (the first over 1 / 0.05).
    from mlpbench.stats import evidence

    same = [evidence(dict.fromkeys(range(n), 0.978), dict.fromkeys(range(n), 0.967))[0] for n in range(2, 8)]
    assert same == pytest.approx([1.8615, 4.0, 8.7800, 19.333, 42.596, 93.867], rel=1e-4)
    found = sequential_verdicts({"a": dict.fromkeys(range(3), 0.978), "b": dict.fromkeys(range(3), 0.967)}, 10)
    # A fixed t-test would need 2 seeds; this test decides at 6 at the earliest, and says 6.
    assert found["b"] == Verdict("tied", pytest.approx(0.25), seeds_needed=6)
    six = sequential_verdicts({"a": dict.fromkeys(range(6), 0.978), "b": dict.fromkeys(range(6), 0.967)}, 10)
    assert six["b"].verdict == "worse" and six["b"].p == pytest.approx(1 / 42.596, rel=1e-4)


def test_the_e_value_is_the_ratio_of_noncentral_t_densities_and_stays_finite_past_scipys_reach():
    from mlpbench.stats import DESIGN_EFFECT, evidence

    for n, t in ((3, 0.5), (5, 2.0), (10, -3.0), (50, 4.0)):
        d = np.random.default_rng(n).normal(0, 1, n)
        d = (d - d.mean()) / d.std(ddof=1) + t / np.sqrt(n)  # its t statistic is t
        shift = DESIGN_EFFECT * np.sqrt(n)
        expected = (sps.nct.pdf(t, n - 1, shift) + sps.nct.pdf(t, n - 1, -shift)) / 2 / sps.t.pdf(t, n - 1)
        e, seeds = evidence(dict(enumerate(map(float, d))), dict.fromkeys(range(n), 0.0))
        assert seeds == n and e == pytest.approx(expected, rel=1e-6)
    # Many seeds: scipy's density of the -shift side is nan at 200 (it read as no evidence, e = 0)
    # and overflows at 400 (an exception).
    for n, effect in ((200, 0.5), (400, 1.0)):
        d = np.random.default_rng(0).normal(effect, 1, n)  # t 7.6, 19.3
        e, _ = evidence(dict(enumerate(map(float, d))), dict.fromkeys(range(n), 0.0))
        assert 100 < e < math.inf


def test_the_e_values_integral_where_its_closed_form_overflows_gives_the_closed_forms_numbers(monkeypatch):
    # The e-value is Kummer's 1F1 in closed form; from about 1,000 seeds that overflows and the
    # integral answers instead. Forced everywhere, the integral must give the same numbers.
    from mlpbench import stats

    grid = [(r, n - 1, stats.DESIGN_EFFECT * math.sqrt(n)) for n in (2, 3, 10, 50, 400) for r in (-1, -0.3, 0, 0.2, 0.7, 1)]
    closed = [stats._e_value(*point) for point in grid]
    monkeypatch.setattr(stats.special, "hyp1f1", lambda a, b, x: math.inf)
    assert [stats._e_value(*point) for point in grid] == pytest.approx(closed, rel=1e-8)
    assert 0 < stats._e_value(0.7, 999, math.sqrt(1000)) < math.inf  # overflows the closed form


def test_a_setting_ahead_of_the_best_on_every_seed_both_ran_is_never_worse():
    # b stopped after seeds 0-7, where a is ahead of it on each; a and c ran on, to seeds where
    # every setting scores far lower. No setting is ahead of all others on the seeds they share,
    # so the best is the highest mean, b's: a is no `worse` for it, however large the evidence.
    high = [0.9, 0.91, 0.89, 0.9, 0.92, 0.9, 0.91, 0.9]
    a = {s: high[s] + 0.05 + 0.001 * (s % 3) for s in range(8)} | {8 + s: high[s] - 0.4 for s in range(8)}
    b = {s: high[s] + 0.03 + 0.001 * (s % 2) for s in range(8)}
    c = {s: high[s] + 0.01 for s in range(8)} | {8 + s: high[s] - 0.3 + 0.001 * (s % 2) for s in range(8)}
    found = sequential_verdicts({"a": a, "b": b, "c": c}, 16)
    assert found["b"].verdict == "best" and found["a"] == Verdict("tied", pytest.approx(found["a"].p), ahead=True)
    assert found["a"].p < 0.05 and found["a"].stopped is None  # open: more seeds may make it the best

# ---------------------------------------------------------------------------- rounds


def value(setting: str, seed: int) -> float:
    """Each setting's best_val_acc per seed: b clearly below a; c equal to a, seed for seed."""
    noise = np.random.default_rng(zlib.crc32(f"{setting}{seed}".encode())).normal(0, 0.01)
    shared = np.random.default_rng(seed).normal(0, 0.01)
    return {"a": 0.90 + shared, "b": 0.87 + shared + noise, "c": 0.90 + shared}[setting]


class FakeLauncher:
    """Writes each job's result.json instead of training; a finished run is skipped, an
    interrupted one finished, as plan_run does. `stop_after`: interrupted after that many runs."""

    def __init__(self, sweep: Path, stop_after: int | None = None):
        self.sweep, self.stop_after, self.batches, self.trained = sweep, stop_after, [], 0

    def launch(self, batch, initial_job_idx):
        self.batches.append([list(job) for job in batch])
        for job in batch:
            setting = next(o.split("=")[1] for o in job if o.startswith("model.activation"))
            seed = int(next(o.split("=")[1] for o in job if o.startswith("seed=")))
            run_dir = self.sweep / ",".join(job)
            if (run_dir / "result.json").is_file():
                if json.loads((run_dir / "result.json").read_text())["status"] == "ok":
                    continue
                (run_dir / "result.json").unlink()
                run_dir.rmdir()
            interrupted = self.stop_after is not None and self.trained == self.stop_after
            fake_run(self.sweep, job, [0.5, value(setting, seed)], status="interrupted" if interrupted else "ok",
                     config={"seed": seed})
            if interrupted:
                raise SystemExit(130)
            self.trained += 1
        return []


def auto_sweep(sweep: Path, max_seeds: int = MAX_SEEDS) -> list[list[str]]:
    """A sweep folder as the grid sweeper leaves it before the first round (its multirun.yaml)."""
    sweep.mkdir(parents=True)
    OmegaConf.save({"hydra": {"overrides": {"task": ["model.activation=a,b,c", "seed=auto"]},
                              "sweeper": {"params": None}},
                    "sweep": {"min_seeds": 3, "max_seeds": max_seeds, "max_minutes": None}}, sweep / "multirun.yaml")
    return [[f"model.activation={s}", "seed=auto"] for s in "abc"]


ROUNDS = OmegaConf.create({"min_seeds": 3, "max_seeds": MAX_SEEDS, "max_minutes": None})


def seeds_of(sweep: Path) -> dict[str, list[int]]:
    return {s.label: sorted(r.seed for r in s.runs) for s in read_sweep(sweep).settings}


def test_rounds_add_seeds_only_where_a_comparison_is_open_and_stop_with_a_reason(tmp_path):
    sweep = tmp_path / "sweep"
    launcher = FakeLauncher(sweep)
    SeedRounds(launcher, sweep, auto_sweep(sweep), ROUNDS).run()
    # First round: seeds 1-3 of every setting, in one batch (the stacked launcher stacks it).
    assert sorted(launcher.batches[0]) == sorted([[f"model.activation={s}", f"seed={n}"] for s in "abc"
                                                  for n in (1, 2, 3)])
    # Then one seed a round, for b (open) and a (the best); c, equal to a, is futile at once.
    assert all(sorted(batch) == [["model.activation=a", f"seed={n}"], ["model.activation=b", f"seed={n}"]]
               for n, batch in enumerate(launcher.batches[1:], start=4))
    seeds = seeds_of(sweep)
    assert seeds["c"] == [1, 2, 3] and seeds["a"] == seeds["b"] and 3 < len(seeds["b"]) < MAX_SEEDS
    rows = {r["model.activation"]: r for r in summary_rows(sweep)} if (sweep / "summary.csv").exists() else None
    assert rows is None  # the report is the sweep callback's, not the rounds'
    found = {s.label: (s.verdict.verdict, s.verdict.stopped) for s in read_sweep(sweep).settings}
    assert found == {"a": ("best", "decided"), "b": ("worse", "decided"), "c": ("tied", "futile")}
    assert json.loads((sweep / "rounds.json").read_text())["ended"] == "decided"


def test_seeds_per_round_adds_that_many_seeds_to_each_open_comparison_and_the_best(tmp_path):
    sweep = tmp_path / "sweep"
    launcher = FakeLauncher(sweep)
    SeedRounds(launcher, sweep, auto_sweep(sweep), OmegaConf.create(
        {"min_seeds": 3, "max_seeds": MAX_SEEDS, "max_minutes": None, "seeds_per_round": 2})).run()
    assert sorted(launcher.batches[1]) == [["model.activation=a", "seed=4"], ["model.activation=a", "seed=5"],
                                           ["model.activation=b", "seed=4"], ["model.activation=b", "seed=5"]]
    assert all(len(batch) <= 4 for batch in launcher.batches[1:])
    seeds = seeds_of(sweep)
    assert seeds["a"] == seeds["b"] and len(seeds["b"]) % 2 == 1  # 3, then two a round


def test_a_sweep_cut_off_in_the_middle_of_a_round_continues_to_the_same_end(tmp_path, caplog):
    import logging

    whole = tmp_path / "whole"
    SeedRounds(FakeLauncher(whole), whole, auto_sweep(whole), ROUNDS).run()
    cut = tmp_path / "cut"
    jobs = auto_sweep(cut)
    with pytest.raises(SystemExit):  # killed in round 2, after its first run
        SeedRounds(FakeLauncher(cut, stop_after=9 + 2), cut, jobs, ROUNDS).run()
    (interrupted,) = [r for s in read_sweep(cut).settings for r in s.runs if r.status == "interrupted"]
    assert interrupted.seed == 5 and len(read_sweep(cut).runs) == 9 + 2 + 1
    again = FakeLauncher(cut)
    with caplog.at_level(logging.INFO, logger="mlpbench"):
        SeedRounds(again, cut, jobs, ROUNDS).run()
    assert interrupted.name.split(",") in again.batches[0]  # continued in the first round
    # Its rounds are this attempt's (not the sweep's: fewer than the whole one's), said as such.
    assert " of this attempt, which continued an earlier one" in caplog.text
    assert seeds_of(cut) == seeds_of(whole)


def test_a_budget_of_seeds_ends_an_open_comparison_and_says_so(tmp_path, monkeypatch):
    # b 0.01 below a (its noise 0.01 a seed): 7 seeds cannot decide it, 8 can.
    def closer(setting: str, seed: int, apart=value) -> float:
        return apart(setting, seed) + (0.02 if setting == "b" else 0.0)

    monkeypatch.setattr(sys.modules[__name__], "value", closer)
    sweep = tmp_path / "sweep"
    SeedRounds(FakeLauncher(sweep), sweep, auto_sweep(sweep, max_seeds=7), OmegaConf.create(
        {"min_seeds": 3, "max_seeds": 7, "max_minutes": None})).run()
    result = read_sweep(sweep)
    assert {s.label: (len(s.runs), stopped(result, s)) for s in result.settings} == {
        "a": (7, "budget: max_seeds"), "b": (7, "budget: max_seeds"), "c": (3, "futile")}
    assert json.loads((sweep / "rounds.json").read_text())["ended"] == "max_seeds"


def test_a_budget_too_small_for_any_verdict_adds_no_round_and_says_so(tmp_path, caplog):
    # Three settings: even a difference every seed shows alike is called real at 7 seeds, not before.
    sweep = tmp_path / "sweep"
    launcher = FakeLauncher(sweep)
    SeedRounds(launcher, sweep, auto_sweep(sweep, max_seeds=6), OmegaConf.create(
        {"min_seeds": 3, "max_seeds": 6, "max_minutes": None})).run()
    assert len(launcher.batches) == 1  # the first seeds only: no round could decide anything
    assert "calls no difference real before 7 seeds a setting" in caplog.text and "sweep.max_seeds=6" in caplog.text
    result = read_sweep(sweep)
    assert {s.label: (len(s.runs), stopped(result, s)) for s in result.settings} == {
        "a": (3, "all compared"), "b": (3, "futile"), "c": (3, "futile")}


def test_a_time_budget_starts_no_new_round_and_the_report_says_so(tmp_path):
    sweep = tmp_path / "sweep"
    launcher = FakeLauncher(sweep)
    jobs = auto_sweep(sweep)
    config = OmegaConf.load(sweep / "multirun.yaml")
    config.sweep.max_minutes = 1e-9  # spent by the first round
    OmegaConf.save(config, sweep / "multirun.yaml")
    SeedRounds(launcher, sweep, jobs, config.sweep).run()
    assert len(launcher.batches) == 1
    result = read_sweep(sweep)
    assert {s.label: stopped(result, s) for s in result.settings} == {
        "a": "budget: max_minutes", "b": "budget: max_minutes", "c": "futile"}


def test_rounds_cut_off_say_unfinished_and_stay_judged_as_rounds_when_seeds_are_added_by_hand(tmp_path):
    sweep = tmp_path / "sweep"
    jobs = auto_sweep(sweep)
    with pytest.raises(SystemExit):  # Ctrl-C in round 1, with a time budget far from spent
        SeedRounds(FakeLauncher(sweep, stop_after=9), sweep, jobs, OmegaConf.create(
            {"min_seeds": 3, "max_seeds": 10, "max_minutes": 60})).run()
    result = read_sweep(sweep)
    assert stopped(result, next(s for s in result.settings if s.label == "b")) == "unfinished"
    SeedRounds(FakeLauncher(sweep), sweep, jobs, ROUNDS).run()
    judged = {s.label: s.verdict for s in read_sweep(sweep).settings}
    # A later sweep into the folder with seeds given (seed=1,2) writes its own multirun.yaml: the
    # runs the rounds chose are still judged by the test of rounds, not by a t-test they would fool.
    config = OmegaConf.load(sweep / "multirun.yaml")
    config.hydra.overrides.task = ["model.activation=a,b,c", "seed=1,2"]
    OmegaConf.save(config, sweep / "multirun.yaml")
    again = read_sweep(sweep)
    assert again.rounds is not None and {s.label: s.verdict for s in again.settings} == judged


def test_settings_of_an_earlier_sweep_in_the_folder_take_no_part_in_the_rounds(tmp_path):
    # The folder held a better setting d from another sweep: the rounds of a, b and c go as they
    # would alone (d as the best would have left none of their comparisons open).
    whole = tmp_path / "whole"
    SeedRounds(FakeLauncher(whole), whole, auto_sweep(whole), ROUNDS).run()
    reused = tmp_path / "reused"
    jobs = auto_sweep(reused)
    for seed in (1, 2, 3):
        fake_run(reused, ["model.activation=d", f"seed={seed}"], [0.5, 0.99], config={"seed": seed})
    SeedRounds(FakeLauncher(reused), reused, jobs, ROUNDS).run()
    assert {k: v for k, v in seeds_of(reused).items() if k != "d"} == seeds_of(whole)


def test_a_round_whose_runs_leave_no_result_ends_the_rounds_instead_of_repeating_them(tmp_path, caplog):
    class Skipping(FakeLauncher):  # b's seed 4 never trains (as seed=1 of a grid mixing 1 and auto did)
        def launch(self, batch, initial_job_idx):
            return super().launch([job for job in batch if job != ["model.activation=b", "seed=4"]], initial_job_idx)

    sweep = tmp_path / "sweep"
    launcher = Skipping(sweep)
    SeedRounds(launcher, sweep, auto_sweep(sweep), ROUNDS).run()
    assert len(launcher.batches) <= 4 and "would train the seeds of the round before again" in caplog.text
    assert "model.activation=b: seeds [4]" in caplog.text


def test_rounds_where_every_run_failed_end_with_no_verdict_not_decided(tmp_path):
    class Failing(FakeLauncher):
        def launch(self, batch, initial_job_idx):
            for job in batch:
                fake_run(self.sweep, job, [0.5], status="failed", config={"seed": int(job[1].split("=")[1])})
            self.batches.append(batch)
            return []

    sweep = tmp_path / "sweep"
    launcher = Failing(sweep)
    SeedRounds(launcher, sweep, auto_sweep(sweep), ROUNDS).run()
    assert len(launcher.batches) == 1
    assert json.loads((sweep / "rounds.json").read_text())["ended"] == "no verdict"


# ---------------------------------------------------------------------------- a real sweep


def test_seed_auto_trains_rounds_and_reports_seeds_and_reasons(tmp_path):
    out = run_cli("-m", "data=digits", "model.units=16", "trainer.max_epochs=1", "data.limit=300",
                  "model.activation=relu,sigmoid", "seed=auto", "sweep.max_seeds=6", "hydra.launcher.workers=1",
                  "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    log = out.stdout + out.stderr
    assert "seed=auto: the first 3 seeds of 2 settings: 6 runs" in log and "seed=auto: ended after" in log
    assert "model.activation=relu (n = " in log  # settings named as the command writes them
    rows = summary_rows(tmp_path / "sweep")
    assert {r["model.activation"] for r in rows} == {"relu", "sigmoid"}
    assert all(r["stopped"] for r in rows) and all(3 <= int(r["n"]) <= 6 for r in rows)
    assert "stopped" in (tmp_path / "sweep" / "summary.md").read_text()
    # The run folders carry the seed the rounds gave them.
    assert len(list((tmp_path / "sweep").glob("*model.activation=relu*,seed=1"))) == 1
    assert not list((tmp_path / "sweep").glob("*seed=auto*"))


@pytest.mark.parametrize("args, message", [
    (["seed=auto"], "seed=auto: adds seeds in rounds to a sweep of the grid: give -m"),
    (["-m", "seed=auto", "sweep.max_seeds=2"], "sweep.max_seeds=2: must be an integer from sweep.min_seeds=3"),
    (["-m", "seed=auto", "sweep.min_seeds=1"], "sweep.min_seeds=1: must be an integer >= 2"),
    (["-m", "seed=auto", "hydra/sweeper=basic"], "seed=auto: adds seeds in rounds to a sweep of the grid"),
    (["-m", "seed=abc"], "seed=abc: must be an integer in [0, 4294967296), or auto in a sweep (-m)"),
    # auto swept with seeds: its rounds never trained the seed the other value held (an endless loop).
    (["-m", "seed=auto,1"], "seed=auto,1: auto chooses every seed of a setting itself"),
    (["-m", "seed=1,'auto'"], "seed=1,auto: auto chooses every seed of a setting itself"),
])
def test_seed_auto_refused_where_it_cannot_work(tmp_path, args, message):
    out = run_cli(*args, "hydra.sweep.dir=sweep", "hydra.run.dir=run", cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "run").exists()


def test_one_setting_over_seed_auto_ends_saying_there_is_nothing_to_compare(tmp_path, caplog):
    import logging

    sweep = tmp_path / "sweep"
    sweep.mkdir(parents=True)
    OmegaConf.save({"hydra": {"overrides": {"task": ["model.activation=a", "seed=auto"]}, "sweeper": {"params": None}},
                    "sweep": {"min_seeds": 3, "max_seeds": MAX_SEEDS, "max_minutes": None}}, sweep / "multirun.yaml")
    with caplog.at_level(logging.INFO, logger="mlpbench"):
        SeedRounds(FakeLauncher(sweep), sweep, [["model.activation=a", "seed=auto"]], ROUNDS).run()
    end = next(r.getMessage() for r in caplog.records if "seed=auto: ended after" in r.getMessage())
    # Named as the setting it is, not by the sweep's folder (2026-12-08_01-03-46).
    assert end.endswith(": one setting, nothing to compare: the setting (n = 3)"), end


def test_seed_autos_budget_given_to_a_sweep_of_given_seeds_is_said_to_do_nothing(tmp_path):
    out = run_cli("-m", "seed=1", "sweep.max_seeds=5", "data.limit=100", "trainer.max_epochs=1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "sweep.max_seeds=5: seed=auto's budget, read with seed=auto alone" in out.stdout + out.stderr
