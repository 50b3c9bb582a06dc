import math

import numpy as np
import pytest
from scipy import stats as sps

from mlpbench.stats import (Comparison, Summary, Verdict, compare, headline, holm, negligible,
                            sequential_verdicts, summarize, verdicts)

VALUES = [0.91, 0.93, 0.92, 0.94, 0.90]


def test_summarize_matches_scipy():
    s = summarize(VALUES)
    n, mean, std = 5, float(np.mean(VALUES)), float(np.std(VALUES, ddof=1))
    assert (s.n, s.mean, s.std) == (5, pytest.approx(mean), pytest.approx(std))
    assert s.ci95 == pytest.approx(sps.t.ppf(0.975, n - 1) * std / math.sqrt(n))
    lo, hi = sps.t.interval(0.95, n - 1, loc=mean, scale=sps.sem(VALUES))
    assert s.ci95 == pytest.approx((hi - lo) / 2)
    assert s.mean - s.ci95 == pytest.approx(lo)
    assert s.ci95 == pytest.approx(0.019632, abs=1e-6)  # 2.776445 * 0.0158114 / sqrt(5)


def test_summarize_drops_missing_and_nonfinite():
    assert summarize([None, *VALUES, math.nan, math.inf]) == summarize(VALUES)


def test_summarize_n1_n0():
    one = summarize([0.5, None])
    assert (one.n, one.mean) == (1, 0.5) and math.isnan(one.std) and math.isnan(one.ci95)
    zero = summarize([None, math.nan])
    assert zero.n == 0 and all(math.isnan(x) for x in (zero.mean, zero.std, zero.ci95))


A = {1: 0.91, 2: 0.93, 3: 0.92, 4: 0.94, 5: 0.90}
B = {1: 0.89, 2: 0.92, 3: 0.90, 4: 0.91, 5: 0.90}


def test_compare_paired_when_seeds_match():
    c = compare(A, B)
    expected = sps.ttest_rel(list(A.values()), list(B.values())).pvalue
    welch = sps.ttest_ind(list(A.values()), list(B.values()), equal_var=False).pvalue
    assert c.test == "paired t" and c.p == pytest.approx(expected)
    assert c.p != pytest.approx(welch)  # the pairing changes the answer here
    # Seed order in the dicts does not matter: values are paired by seed.
    assert compare(dict(reversed(A.items())), B).p == pytest.approx(expected)


def test_compare_pairs_over_the_seeds_both_ran_and_welch_without_two_of_them():
    # A failed run drops its seed's pair, not the pairing (Welch here: p 0.16 instead of 0.10).
    c = compare(A, {**B, 3: None})
    expected = sps.ttest_rel([A[s] for s in (1, 2, 4, 5)], [B[s] for s in (1, 2, 4, 5)]).pvalue
    assert c.test == "paired t" and c.p == pytest.approx(expected)
    assert compare(A, {**B, 6: 0.9}) == compare(A, B)  # a seed one side ran alone is left out
    # Fewer than 2 seeds in common: unpaired, unequal variances.
    other = {6: 0.89, 7: 0.92, 8: 0.90}
    c = compare(A, other)
    assert c.test == "Welch t" and c.p == pytest.approx(
        sps.ttest_ind(list(A.values()), list(other.values()), equal_var=False).pvalue)
    assert compare(A, {**other, 1: 0.9}).test == "Welch t"


def test_compare_impossible():
    assert compare({1: 0.9}, {1: 0.8}) == Comparison(None, None)
    assert compare(A, {1: 0.8, 2: None}) == Comparison(None, None)
    assert compare(A, {}) == Comparison(None, None)


def test_compare_degenerate():
    assert compare({1: 0.5, 2: 0.7}, {1: 0.5, 2: 0.7}) == Comparison(1.0, "paired t")
    assert compare({1: 2.0, 2: 3.0}, {1: 1.0, 2: 2.0}) == Comparison(0.0, "paired t")
    assert compare({1: 0.5, 2: 0.5}, {3: 0.5, 4: 0.5}) == Comparison(1.0, "Welch t")
    assert compare({1: 0.5, 2: 0.5}, {3: 0.4, 4: 0.4}) == Comparison(0.0, "Welch t")


def test_a_difference_of_the_same_rows_on_every_seed_is_judged_with_the_measurements_rounding():
    # Adam one validation row of 800 behind RMSprop on each of 3 seeds (a user's sweep): no spread,
    # but accuracies counted in rows are rounded to 1/800, which a difference of one row is within.
    step = 1 / 800
    rmsprop = {1: 744 * step, 2: 739 * step, 3: 726 * step}
    adam = {seed: value - step for seed, value in rmsprop.items()}
    one_row = compare(rmsprop, adam, resolution=step)
    # The paired t with the two roundings' spread, step * sqrt(2 / 12): t = sqrt(18), 2 degrees of freedom.
    assert one_row.p == pytest.approx(2 * sps.t.sf(math.sqrt(18), 2)) and 0.05 < one_row.p < 0.06
    assert verdicts({"rmsprop": rmsprop, "adam": adam}, resolution=step)["adam"].verdict == "tied"
    assert compare(rmsprop, adam) == Comparison(0.0, "paired t")  # a metric of no step: as before
    # The same row on 10 seeds is a real difference; so are 3 seeds of 10 rows each.
    ten = {seed: 0.9 + seed * step for seed in range(10)}
    assert verdicts({"a": ten, "b": {s: v - step for s, v in ten.items()}}, resolution=step)["b"].verdict == "worse"
    assert compare(rmsprop, {s: v - 10 * step for s, v in rmsprop.items()}, resolution=step).p < 0.01
    # Unpaired (no seed in common), each side constant: each has the rounding's spread.
    welch = compare({1: 0.5, 2: 0.5}, {3: 0.5 - step, 4: 0.5 - step}, resolution=step)
    assert welch.test == "Welch t" and welch.p == pytest.approx(sps.ttest_ind_from_stats(
        0.5, step / math.sqrt(12), 2, 0.5 - step, step / math.sqrt(12), 2, equal_var=False).pvalue)
    # A spread larger than the rounding's is the test's own: the step changes nothing there.
    assert compare(A, B, resolution=step) == compare(A, B)


def test_holm_hand_computed():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.04, 0.5]) == pytest.approx([0.08, 0.5])
    assert holm([0.3, 0.6, 0.01]) == pytest.approx([0.6, 0.6, 0.03])  # 0.01*3, 0.3*2, 0.6*1
    assert holm([0.4, 0.45]) == pytest.approx([0.8, 0.8])  # monotone: 0.45 < 0.8
    assert holm([0.7, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([0.02]) == [0.02] and holm([]) == []


def test_verdicts_aa_never_worse():
    two = verdicts({"x": dict(A), "y": dict(A)})
    assert two == {"x": Verdict("best", None), "y": Verdict("tied", 1.0)}
    three = verdicts({"x": dict(A), "y": dict(A), "z": dict(A)})
    assert three["x"] == Verdict("best", None)
    assert three["y"] == three["z"] == Verdict("tied", 1.0)


def test_verdicts_clear_difference():
    bad = {s: v - 0.2 + 0.01 * (s % 2) for s, v in A.items()}
    v = verdicts({"b": B, "a": A, "bad": bad})
    pb, pbad, pother = compare(A, B).p, compare(A, bad).p, compare(B, bad).p
    assert pbad < pother < pb < 0.05 / 1
    assert v["a"] == Verdict("best", None)
    # Holm over the 3 pairs (b against bad too: the best is picked from these data): the
    # smallest p times 3, the next times 2, the largest times 1, monotone.
    assert v["bad"] == Verdict("worse", pytest.approx(3 * pbad))
    assert v["b"] == Verdict("worse", pytest.approx(max(pb, 2 * pother)))
    # At a stricter alpha the same difference is only a tie.
    strict = verdicts({"a": A, "b": B}, alpha=0.01)["b"]
    assert (strict.verdict, strict.p) == ("tied", pytest.approx(pb))


def test_verdicts_noisy_difference_is_tied():
    c = {1: 0.93, 2: 0.92, 3: 0.94, 4: 0.92, 5: 0.93}
    v = verdicts({"a": A, "c": c})
    assert v["c"] == Verdict("best", None)
    assert (v["a"].verdict, v["a"].p) == ("tied", pytest.approx(compare(c, A).p))
    assert v["a"].p > 0.05


def test_verdicts_n1_gives_no_verdict():
    v = verdicts({"x": {1: 0.9}, "y": {1: 0.5}, "z": {1: 0.7, 2: None}})
    assert v == {k: Verdict(None, None) for k in "xyz"}
    assert verdicts({"x": {1: None}}) == {"x": Verdict(None, None)}
    # A lone run scoring highest (its other seeds failed) is no verdict; the rest still get theirs.
    v = verdicts({"x": {1: 0.99}, "a": A, "b": B})
    assert v["x"] == Verdict(None, None) and v["a"] == Verdict("best", None) and v["b"].verdict == "worse"


def test_verdicts_without_values_or_single_run_among_others():
    v = verdicts({"a": A, "b": B, "one": {1: 0.1}, "none": {1: None, 2: math.nan}})
    assert v["a"] == Verdict("best", None) and v["b"].verdict == "worse"
    assert v["one"] == v["none"] == Verdict(None, None)


def test_verdicts_after_a_failed_seed_pair_the_rest_and_never_call_the_setting_ahead_on_them_worse():
    b = {**B, 3: None}
    v = verdicts({"a": A, "b": b})
    assert compare(A, b).test == "paired t" and v["b"].p == pytest.approx(compare(A, b).p)  # 0.10, not Welch's 0.16
    # The best mean owes its lead to seeds the other lost; on the seeds both ran the other is ahead
    # on each: however small p, the other is no `worse`.
    best = {1: 0.80, 2: 0.81, 3: 0.80, 4: 0.99, 5: 0.99, 6: 0.99}
    other = {1: 0.85, 2: 0.87, 3: 0.85, 4: None, 5: None, 6: None}
    v = verdicts({"best": best, "other": other})
    assert v["best"].verdict == "best"
    assert v["other"] == Verdict("tied", pytest.approx(compare(best, other).p), ahead=True)
    assert v["other"].p < 0.05  # (and no seeds that would make it worse)


def test_verdicts_call_equal_settings_worse_at_most_5_percent_of_the_time_however_many():
    # 5 equal settings, 5 seeds, a shared per-seed effect: Holm against the best alone (4 tests)
    # called one of them worse in 6.7% of these cases; over all 10 pairs, in 3.3%.
    rng = np.random.default_rng(20261206)
    false_worse = 0
    cases = 600
    for _ in range(cases):
        seed_effect = rng.normal(0, 1, 5)
        groups = {k: {s: float(seed_effect[s] + rng.normal(0, 0.3)) for s in range(5)} for k in "abcde"}
        false_worse += any(v.verdict == "worse" for v in verdicts(groups).values())
    assert false_worse / cases <= 0.05


def test_verdicts_minimize_picks_lowest():
    v = verdicts({"hi": A, "lo": B}, maximize=False)
    assert v["lo"] == Verdict("best", None)
    assert v["hi"] == Verdict("worse", pytest.approx(compare(A, B).p))
    assert verdicts({"hi": A, "lo": B})["hi"] == Verdict("best", None)


def test_headline_parts():
    summaries = {"relu": Summary(5, 0.9331, 0.004, 0.0049), "leaky": Summary(5, 0.931, 0.004, 0.005),
                 "tanh": Summary(5, 0.91, 0.01, 0.01), "sigmoid": Summary(5, 0.88, 0.01, 0.01),
                 "gelu": Summary(1, 0.95, math.nan, math.nan)}
    v = {"relu": Verdict("best", None), "leaky": Verdict("tied", 0.4),
         "tanh": Verdict("worse", 0.0123), "sigmoid": Verdict("worse", 0.0004),
         "gelu": Verdict(None, None)}
    order = ["leaky", "tanh", "relu", "gelu", "sigmoid"]
    assert headline(order, summaries, v, "val/acc") == (
        "val/acc: leaky, relu tied best (0.933 ± 0.005); tanh, sigmoid worse (p ≤ 0.012); "
        "gelu not compared (n = 1)")
    v2 = {"relu": Verdict("best", None), "sigmoid": Verdict("worse", 0.0004)}
    assert headline(["relu", "sigmoid"], summaries, v2, "acc", digits=2) == (
        "acc: relu best (0.93 ± 0.00); sigmoid worse (p < 0.001)")
    v3 = {"relu": Verdict("best", None), "tanh": Verdict("worse", 0.01)}
    assert headline(["relu", "tanh"], summaries, v3, "acc").endswith("tanh worse (p = 0.01)")


def test_headline_end_to_end_and_n1():
    groups = {"a": A, "b": B, "one": {1: 0.5}}
    summaries = {k: summarize(g.values()) for k, g in groups.items()}
    text = headline(list(groups), summaries, verdicts(groups), "acc")
    assert text == "acc: a best (0.920 ± 0.020); b worse (p = 0.035); one not compared (n = 1)"
    # The highest mean has one run only: the others are still compared, it is not.
    groups["one"] = {1: 0.99}
    summaries["one"] = summarize([0.99])
    assert headline(list(groups), summaries, verdicts(groups), "acc") == text
    # A single setting with several runs: nothing to compare it with, and the sentence says why.
    single = {"a": A}
    assert headline(["a"], {"a": summarize(A.values())}, verdicts(single), "acc") == (
        "acc: no verdict: a (n = 5); a verdict needs at least 2 runs of the best setting and of another")
    ones = {"x": {1: 0.9}, "y": {1: 0.8}}
    n1 = headline(list(ones), {k: summarize(g.values()) for k, g in ones.items()},
                  verdicts(ones), "acc")
    assert n1 == ("acc: no verdict: n = 1 per setting; repeat each setting over seeds to get "
                  "intervals and verdicts: the same command with seed=1,2,3,4,5 (or seed=auto)")
    # No run finished ok: nothing to repeat yet.
    assert headline(list(ones), {k: summarize([]) for k in ones}, {}, "acc") == (
        "acc: no verdict: no run finished ok (the status column says how they ended)")


def test_a_tie_says_the_seeds_that_would_decide_it_or_that_it_is_negligible():
    from mlpbench.stats import seeds_for_power

    # Paired differences of mean 1 and sd 1 (an effect of 1): 10 seeds give a paired t-test 80%
    # power at 5% (noncentral t; Cohen's tables); an effect of 0.1 needs about (2.8 / 0.1)^2.
    d = np.array([0, 2, 1, 1.5, 0.5])
    d = (d - d.mean()) / d.std(ddof=1) + 1
    zero = {i: 0.0 for i in range(5)}
    assert seeds_for_power({i: float(x) for i, x in enumerate(d)}, zero) == 10
    assert 770 <= seeds_for_power({i: float(x) for i, x in enumerate((d - 1) * 10 + 1)}, zero) <= 800
    assert seeds_for_power(zero, zero) is None  # no difference: no number of seeds detects it
    c = {1: 0.93, 2: 0.92, 3: 0.94, 4: 0.92, 5: 0.93}
    tie = verdicts({"a": A, "c": c})["a"]
    assert tie.verdict == "tied" and tie.seeds_needed == seeds_for_power(c, A) and tie.seeds_needed > 5
    small = verdicts({"a": A, "c": c}, min_difference=0.05)["a"]
    assert small.verdict == "tied" and small.negligible and small.seeds_needed is None
    # Negligible where the data show it: the difference's interval within the least that matters,
    # not its mean alone. 3 seeds, a difference of 0.0367 (95% interval 0.022-0.051): not below
    # 0.05, and a seed=auto sweep goes on; below 0.06 it is.
    best = {1: 0.9, 2: 0.9, 3: 0.9}
    other = {s: 0.9 - d for s, d in zip(best, (0.0367 - 0.0058, 0.0367, 0.0367 + 0.0058))}
    assert not negligible(best, other, 0.05) and negligible(best, other, 0.06)
    for judged in (verdicts({"best": best, "other": other}, min_difference=0.05),
                   sequential_verdicts({"best": best, "other": other}, max_seeds=10, min_difference=0.05)):
        assert not judged["other"].negligible and judged["other"].stopped is None
    assert sequential_verdicts({"best": best, "other": other}, max_seeds=10, min_difference=0.06)["other"].stopped == \
        "negligible"


def test_expected_best_of_n_trials_is_the_mean_of_the_best_of_n_random_draws():
    from itertools import product

    from mlpbench.stats import expected_best

    values = [0.91, 0.85, 0.93, 0.70, 0.93]
    for n in (1, 2, 3):  # every ordered draw of n trials, with replacement, is equally likely
        bests = [max(draw) for draw in product(values, repeat=n)]
        mean, spread = expected_best(values, n)
        assert mean == pytest.approx(np.mean(bests)) and spread == pytest.approx(np.std(bests))
        lowest = expected_best(values, n, maximize=False)[0]
        assert lowest == pytest.approx(np.mean([min(draw) for draw in product(values, repeat=n)]))
    assert expected_best(values, 1)[0] == pytest.approx(np.mean(values))
    assert expected_best(values, 1000)[0] == pytest.approx(0.93)  # enough trials find the best one


def test_a_tie_only_for_the_number_of_comparisons_is_named_undecided():
    # 6 settings, 15 pairs: "c" is behind the best on every seed (p 0.012 alone), not after Holm.
    best = {1: 0.90, 2: 0.92, 3: 0.91}
    groups = {"best": best, "c": {1: 0.87, 2: 0.90, 3: 0.88},
              **{f"same{i}": {s: v + (0.004 if (s + i) % 2 else -0.004) for s, v in best.items()} for i in range(4)}}
    found = verdicts(groups)
    alone = compare(best, groups["c"]).p
    assert alone < 0.05 <= found["c"].p and found["c"].verdict == "tied" and found["c"].by_itself
    assert found["c"].word == "undecided" and not any(found[f"same{i}"].by_itself for i in range(4))
    summaries = {k: summarize(v.values()) for k, v in groups.items()}
    answer = headline(list(groups), summaries, found, "acc")
    assert answer.startswith("acc: best, same0, same1, same2, same3 tied best (") and answer.endswith(
        "; c undecided (behind the best at p < 0.05 alone, not once adjusted for the other comparisons; more seeds "
        "decide)"), answer
