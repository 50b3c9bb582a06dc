"""`seed=auto`: seeds in rounds until every comparison with the best is decided.

    mlpbench -m model.depth=2,4,6,8,10 seed=auto

Every setting of the grid starts with seeds 1 .. `sweep.min_seeds`; then, round after round, each
comparison with the best mean that is still open (mlpbench.stats.sequential_verdicts: neither
decided by the anytime-valid test nor futile) gets `sweep.seeds_per_round` more seeds (1), and so
does the best, until none
is open, a setting has had `sweep.max_seeds`, or `sweep.max_minutes` have passed. A round's runs go
to the launcher together, so the stacked launcher trains them as stacks.

Nothing is kept between rounds but the runs themselves: each round is planned from the result.json
files, the way the report reads them, so a sweep continued with resume=true (after a kill in the
middle of a round) picks up where it was. hydra_plugins.mlpbench_grid.GridSweeper runs this.
"""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from omegaconf import DictConfig

from mlpbench.files import write_json_atomic
from mlpbench.overrides import run_settings
from mlpbench.report import REPEAT_KEY, Setting, Sweep, judge, read_sweep, stopped
from mlpbench.results import ROUNDS_FILE
from mlpbench.schema import AUTO_SEED
from mlpbench.stats import seeds_to_decide

log = logging.getLogger("mlpbench")
AUTO = f"{REPEAT_KEY}={AUTO_SEED}"


def _key(settings: dict[str, str]) -> tuple:
    """A setting as the report groups runs: what its overrides set, seed aside."""
    return tuple(sorted((k, v) for k, v in settings.items() if k != REPEAT_KEY))


class SeedRounds:
    def __init__(self, launcher, sweep_dir: Path, jobs: list[list[str]], rounds: DictConfig):
        self.launcher = launcher
        self.sweep_dir = Path(sweep_dir)
        self.jobs = jobs  # the grid's points, each with seed=auto among its overrides
        self.min_seeds, self.max_seeds = int(rounds.min_seeds), int(rounds.max_seeds)
        self.per_round = int(rounds.get("seeds_per_round", 1))
        self.max_minutes: Optional[float] = rounds.max_minutes
        self.next_job = 0
        self.started = time.monotonic()
        self.continued = False

    def _with_seed(self, job: list[str], seed: int) -> list[str]:
        return [f"{REPEAT_KEY}={seed}" if o == AUTO else o for o in job]

    def _settings(self, sweep: Sweep) -> dict[tuple, Setting]:
        """The report's settings, by the grid point they belong to."""
        return {_key(s.runs[0].settings): s for s in sweep.settings if s.runs}

    def _launch(self, plan: dict[int, list[int]], what: str) -> Sequence[Any]:
        batch = [self._with_seed(self.jobs[i], seed) for i, seeds in plan.items() for seed in seeds]
        log.info("seed=auto: %s: %d run%s", what, len(batch), "" if len(batch) == 1 else "s")
        returns = self.launcher.launch(batch, initial_job_idx=self.next_job)
        self.next_job += len(batch)
        return returns

    def _record(self, ended: Optional[str]) -> None:
        """rounds.json: what the report judges these runs by, and why the rounds ended (None while
        they run, and where a kill or Ctrl-C ended them)."""
        write_json_atomic(self.sweep_dir / ROUNDS_FILE, {
            "min_seeds": self.min_seeds, "max_seeds": self.max_seeds, "max_minutes": self.max_minutes,
            "seeds_per_round": self.per_round, "ended": ended})

    def run(self) -> list[Sequence[Any]]:
        keys = [_key(run_settings(job)) for job in self.jobs]
        self._record(None)
        needed = seeds_to_decide(len(self.jobs))
        if needed is None or needed > self.max_seeds:
            log.warning("seed=auto: with %d settings the test of rounds calls no difference real before %s seeds a "
                        "setting, even one every seed shows alike (its bar: 0.05 over the %d pairs); "
                        "sweep.max_seeds=%d stops before: while every setting gives results, no round is added and "
                        "every verdict stays tied. Raise "
                        "sweep.max_seeds, compare fewer settings, or give seeds (seed=1,2,3,4,5: a paired t-test)",
                        len(self.jobs), needed or "over 1000", len(self.jobs) * (len(self.jobs) - 1) // 2,
                        self.max_seeds)
        # Round 0: the first seeds, and every seed an earlier attempt of this sweep started (resume:
        # finished runs are skipped, cut-off ones continue).
        earlier = self._settings(read_sweep(self.sweep_dir)) if any(self.sweep_dir.glob("*/result.json")) else {}
        first = {i: sorted(set(range(1, self.min_seeds + 1)) | _seeds(earlier.get(key))) for i, key in enumerate(keys)}
        started = sum(len(_seeds(s)) for s in earlier.values())
        self.continued = started > 0  # its rounds counted from here: the earlier attempt's are not known
        returns = [self._launch(first, f"the first {self.min_seeds} seeds of {len(self.jobs)} settings" + (
            f", with the {started} runs an earlier attempt of this sweep started (finished ones are skipped)"
            if started else ""))]
        # Each round trains a seed some setting had not tried: at most max_seeds x settings rounds.
        planned: dict[int, list[int]] = {}
        for round_number in itertools.count(1):
            sweep = self._read(keys)
            settings = self._settings(sweep)
            plan = self._plan(sweep, [settings.get(key) for key in keys])
            if not plan:
                self._record(_why_no_round(sweep))
                self._say_end(sweep, round_number)
                break
            minutes = (time.monotonic() - self.started) / 60
            if self.max_minutes is not None and minutes >= self.max_minutes:
                self._record("max_minutes")
                log.info("seed=auto: sweep.max_minutes=%g reached after %.1f minutes; no new round", self.max_minutes,
                         minutes)
                break
            if plan == planned:  # the runs of the round before gave no result (each failed to start?)
                self._record("no new seed")
                log.error("seed=auto: round %d would train the seeds of the round before again (%s); their runs "
                          "left no result: the rounds end here", round_number, "; ".join(
                              f"{_named(run_settings(self.jobs[i]))}: seeds {seeds}" for i, seeds in plan.items()))
                break
            planned = plan
            opened = [_named(s.values, s.label) for s in sweep.settings
                      if s.verdict.verdict == "tied" and s.verdict.stopped is None]
            returns.append(self._launch(plan, f"round {round_number}, {len(opened)} comparison"
                                              f"{'' if len(opened) == 1 else 's'} open ({', '.join(opened)})"))
        return returns

    def _read(self, keys: list[tuple]) -> Sweep:
        """The sweep as the report reads it, judged among this grid's settings alone: a folder
        reused from another sweep may hold others, which would take part in the verdicts (and,
        the best among them, leave no comparison of this grid open)."""
        sweep, grid = read_sweep(self.sweep_dir), set(keys)
        sweep.settings = [s for s in sweep.settings if s.runs and _key(s.runs[0].settings) in grid]
        judge(sweep.settings, sweep)
        return sweep

    def _plan(self, sweep: Sweep, settings: list[Optional[Setting]]) -> dict[int, list[int]]:
        """{grid point: the seeds it trains next}. For each open comparison, the seeds one side
        has tried and the other has not (after a resume, or for a best that changed); where both
        have the same, sweep.seeds_per_round more each: the least seeds neither has tried, within
        sweep.max_seeds."""
        points = {id(s): i for i, s in enumerate(settings) if s is not None}
        best = next((s for s in settings if s is not None and s.verdict.verdict == "best"), None)
        plan: dict[int, set[int]] = {}
        for s in settings:
            if s is None or best is None or s.verdict.verdict != "tied" or s.verdict.stopped is not None:
                continue
            mine, theirs = _seeds(s), _seeds(best)
            if mine != theirs:
                plan.setdefault(points[id(s)], set()).update(theirs - mine)
                plan.setdefault(points[id(best)], set()).update(mine - theirs)
                continue
            seeds = [n for n in range(1, self.max_seeds + 1) if n not in mine][:self.per_round]
            for member in (s, best):
                plan.setdefault(points[id(member)], set()).update(seeds)
        return {i: sorted(seeds) for i, seeds in plan.items() if seeds}

    def _say_end(self, sweep: Sweep, rounds: int) -> None:
        reasons: dict[str, list[str]] = {}
        for s in sweep.settings:
            # n as the table counts it: the runs with a result (not those that diverged or failed).
            reason = stopped(sweep, s) or ("one setting, nothing to compare" if len(sweep.settings) == 1
                                           else "no verdict")
            reasons.setdefault(reason, []).append(f"{_named(s.values)} (n = {s.summary(sweep.objective).n})")
        minutes = (time.monotonic() - self.started) / 60
        log.info("seed=auto: ended after %d round%s%s, %.1f minutes: %s", rounds, "" if rounds == 1 else "s",
                 " of this attempt, which continued an earlier one" if self.continued else "", minutes,
                 "; ".join(f"{reason}: {', '.join(labels)}" for reason, labels in reasons.items()))


def _why_no_round(sweep: Sweep) -> str:
    """Why a round planned no seed: every comparison decided, an open one out of seeds
    (sweep.max_seeds), or no best to compare with (no run gave a result)."""
    verdicts = [s.verdict for s in sweep.settings]
    if not any(v.verdict == "best" for v in verdicts):
        return "no verdict"
    return "max_seeds" if any(v.verdict == "tied" and v.stopped is None for v in verdicts) else "decided"


def _seeds(setting: Optional[Setting]) -> set[int]:
    """The seeds a setting has tried, whatever became of them."""
    return {run.seed for run in setting.runs if run.seed is not None} if setting is not None else set()


def _named(values: dict[str, str], alone: str = "the setting") -> str:
    """A setting as its overrides write it (model.depth=4), not its bare value; its seed aside
    (`alone`: the name of a sweep's only setting, which sets nothing)."""
    return ",".join(f"{k}={v}" for k, v in values.items() if k != REPEAT_KEY) or alone
