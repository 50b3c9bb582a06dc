"""Statistics for reports: a measurement is a mean with its 95% interval, and a
comparison between settings says whether a difference is real (t-tests over seeds,
Holm-adjusted over every pair of settings, since the best they are held against is picked from
the same data)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from scipy import integrate, special, stats


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float
    ci95: float  # half-width of the two-sided 95% t interval of the mean


def _finite(values) -> list[float]:
    # A failed run reports None (or nan/inf when it diverged): it is no measurement.
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def summarize(values) -> Summary:
    xs = _finite(values)
    n = len(xs)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan)
    mean = math.fsum(xs) / n
    if n == 1:
        return Summary(1, mean, math.nan, math.nan)
    std = float(np.std(xs, ddof=1))
    return Summary(n, mean, std, float(special.stdtrit(n - 1, 0.975)) * std / math.sqrt(n))


@dataclass(frozen=True)
class Comparison:
    p: float | None
    test: str | None  # "paired t", "Welch t", or None when no test is possible


def _by_seed(values: dict) -> dict:
    return {seed: x[0] for seed, v in values.items() if (x := _finite([v]))}


def _shared(a: dict, b: dict) -> list:
    """The seeds both sides ran, when there are enough to pair (2 or more): a seed's data split
    and initialisation are shared, so pairing removes their variance from the comparison (a
    failed run drops its seed's pair, not the pairing). Else []: the sides are unpaired."""
    shared = sorted(a.keys() & b.keys())
    return shared if len(shared) >= 2 else []


# The standard deviation of a value rounded to a step of 1 (its rounding error is uniform over
# the step): an accuracy on N rows is a count of rows, rounded to steps of 1/N.
ROUNDING_SD = 1 / math.sqrt(12)


def _spreads(a: dict, b: dict, resolution: float) -> tuple[np.ndarray | None, float, float]:
    """What the test of a against b sees: the paired differences over the seeds both ran and
    their standard deviation (twice), or, unpaired, None and each side's standard deviation.
    Each spread is at least the rounding of values measured in steps of `resolution`: 3 seeds
    each exactly one validation row apart have no spread, but say no more than 'about one row'
    (with a spread of 0, that read as p = 0)."""
    seeds = _shared(a, b)
    if seeds:
        d = np.array([a[s] - b[s] for s in seeds])
        spread = max(float(d.std(ddof=1)), resolution * ROUNDING_SD * math.sqrt(2))  # a difference of two roundings
        return d, spread, spread
    xa, xb = np.array(list(a.values())), np.array(list(b.values()))
    floor = resolution * ROUNDING_SD
    return None, max(float(xa.std(ddof=1)), floor), max(float(xb.std(ddof=1)), floor)


def compare(a: dict, b: dict, resolution: float = 0.0) -> Comparison:
    """Whether a and b (values by seed) differ: a paired t-test over the seeds both ran, else
    Welch's. `resolution`: the step the values are measured in (an accuracy on N rows: 1/N)."""
    a, b = _by_seed(a), _by_seed(b)
    if not _shared(a, b) and (len(a) < 2 or len(b) < 2):
        return Comparison(None, None)
    d, sa, sb = _spreads(a, b, resolution)
    if d is not None:
        n, mean = len(d), float(d.mean())
        if sa == 0:  # every seed the same difference, in a metric of no step: no spread to scale it by
            return Comparison(1.0 if mean == 0 else 0.0, "paired t")
        t = mean / (sa / math.sqrt(n))
        return Comparison(float(2 * special.stdtr(n - 1, -abs(t))), "paired t")
    # No two seeds in common (other seed lists): unpaired, unequal variances.
    xa, xb = np.array(list(a.values())), np.array(list(b.values()))
    if sa == 0 and sb == 0:
        return Comparison(1.0 if xa[0] == xb[0] else 0.0, "Welch t")
    p = stats.ttest_ind_from_stats(xa.mean(), sa, len(xa), xb.mean(), sb, len(xb), equal_var=False).pvalue
    return Comparison(float(p), "Welch t")


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order (as statsmodels' "holm")."""
    m = len(pvalues)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Verdict:
    verdict: str | None  # "best", "tied", "worse", or None (no test possible)
    # p against the best, adjusted for every pair of settings (Holm; seed=auto: Bonferroni's m / e);
    # None for the best itself
    p: float | None
    # A tie: the seeds per setting that would detect the observed difference at 80% power, at
    # Holm's strictest level alpha / m for m pairs of settings (None:
    # more than MAX_SEEDS, or no difference at all), or `negligible`: the difference is shown smaller
    # than report.min_difference (its interval within it: `negligible`), so no number of seeds makes it matter.
    seeds_needed: int | None = None
    negligible: bool = False
    # A tie whose test is significant the other way: ahead of the best on the seeds both ran (the
    # best's mean owing its lead to seeds this one lacks). No number of seeds makes it `worse`.
    ahead: bool = False
    # A tie only for the number of comparisons: by itself the difference from the best passes the
    # test (p < alpha), adjusted for every pair of settings it does not. More seeds decide it.
    by_itself: bool = False
    # seed=auto (`sequential_verdicts`): why this comparison takes no more seeds: "decided" (worse),
    # "negligible" (below report.min_difference), "futile" (sweep.max_seeds would not decide it);
    # None: still open.
    stopped: str | None = None

    @property
    def word(self) -> str | None:
        """The verdict as tables write it: a tie only for the number of comparisons is `undecided`."""
        return "undecided" if self.by_itself else self.verdict


POWER = 0.8
MAX_SEEDS = 1000


def _effect(best: dict, other: dict, resolution: float = 0.0) -> tuple[float, float, bool] | None:
    """(observed difference best - other, its spread, paired) as the test `compare` makes sees
    them; None without 2 measurements a side."""
    a, b = _by_seed(best), _by_seed(other)
    if len(a) < 2 or len(b) < 2:
        return None
    d, sa, sb = _spreads(a, b, resolution)
    if d is not None:
        return float(d.mean()), sa, True
    xa, xb = np.array(list(a.values())), np.array(list(b.values()))
    return float(xa.mean() - xb.mean()), math.sqrt((sa * sa + sb * sb) / 2), False


def negligible(best: dict, other: dict, min_difference: float, alpha: float = 0.05, resolution: float = 0.0) -> bool:
    """Whether the data show the difference smaller than `min_difference` (report.min_difference):
    its two-sided 1 - alpha t interval (paired over the seeds both ran, else Welch's with the
    smaller side's degrees of freedom) within +-min_difference: two one-sided tests, each at
    alpha / 2 (a textbook TOST at alpha takes the 1 - 2 alpha interval). Checked each round by
    seed=auto, a fixed test: not anytime-valid as its e-values are. A
    point estimate below it says no such thing: 0.037 at 3 seeds, its interval up to 0.051, is no
    difference under 0.05; a seed=auto sweep stopped adding seeds on it."""
    a, b = _by_seed(best), _by_seed(other)
    if len(a) < 2 or len(b) < 2:
        return False
    d, sa, sb = _spreads(a, b, resolution)
    if d is not None:
        difference, error, df = float(d.mean()), sa / math.sqrt(len(d)), len(d) - 1
    else:
        difference = float(np.mean(list(a.values())) - np.mean(list(b.values())))
        error, df = math.sqrt(sa * sa / len(a) + sb * sb / len(b)), min(len(a), len(b)) - 1
    return abs(difference) + float(special.stdtrit(df, 1 - alpha / 2)) * error < min_difference


def _favours(best: dict, other: dict, maximize: bool) -> bool:
    """Whether the data the test sees put `best` ahead of `other` (on the seeds both ran, where
    they are paired): a significant difference the other way is no `worse` for `other`."""
    found = _effect(best, other)
    return found is not None and (found[0] > 0 if maximize else found[0] < 0)


def power(effect: float, n: int, paired: bool = True, alpha: float = 0.05) -> float:
    """The chance that a two-sided t-test at level `alpha` (paired over n seeds, else two groups of
    n) detects a true difference of `effect` standard deviations (noncentral t; Cohen 1988, ch. 2)."""
    df, nc = (n - 1, effect * math.sqrt(n)) if paired else (2 * n - 2, effect * math.sqrt(n / 2))
    # scipy.special's functions, not scipy.stats' objects: the same numbers, 20x less overhead
    # (a seed=auto simulation makes tens of thousands of these).
    critical = float(special.stdtrit(df, 1 - alpha / 2))
    exact = float(1 - special.nctdtr(df, nc, critical) + special.nctdtr(df, nc, -critical))
    # The noncentral t loses itself far in the tail (nan); there the normal's is as good.
    return exact if math.isfinite(exact) else float(stats.norm.sf(critical - nc) + stats.norm.cdf(-critical - nc))


def seeds_for_power(best: dict, other: dict, alpha: float = 0.05, target: float = POWER,
                    resolution: float = 0.0) -> int | None:
    """Seeds per setting that the test `compare` makes (paired t over shared seeds, else Welch's)
    needs to detect the observed difference with probability `target` at level `alpha`, taking the
    observed spread as the true one; None for no difference or more than MAX_SEEDS."""
    found = _effect(best, other, resolution)
    if found is None or found[0] == 0:
        return None
    difference, spread, paired = abs(found[0]), found[1], found[2]
    if spread == 0:
        return 2
    effect = difference / spread
    # Power grows with n. Start where the normal approximation puts it (the t-test needs a few
    # seeds more, never fewer), then step: 2-4 evaluations instead of a bisection's 10-20.
    z = float(special.ndtri(1 - alpha / 2) + special.ndtri(target))
    n = min(MAX_SEEDS, max(2, math.ceil((z / effect) ** 2 * (1 if paired else 2))))
    if power(effect, n, paired, alpha) >= target:
        while n > 2 and power(effect, n - 1, paired, alpha) >= target:
            n -= 1
        return n
    while n < MAX_SEEDS:
        n += 1
        if power(effect, n, paired, alpha) >= target:
            return n
    return None


def verdicts(groups: dict[str, dict[int, float | None]], maximize: bool = True,
             alpha: float = 0.05, min_difference: float | None = None, resolution: float = 0.0) -> dict[str, Verdict]:
    """Each setting against the best mean: `worse`, `tied` or `best`. `resolution`: the step the
    values are measured in (an accuracy on N rows: 1/N), the least spread a difference has."""
    none = Verdict(None, None)
    summaries = {k: summarize(v.values()) for k, v in groups.items()}
    best = _best(summaries, maximize)
    out = {k: none for k in groups}
    if best is None:
        return out
    # The best is the highest mean of these same data, so a test against it alone is one of many
    # that could have been made: Holm over every pair of settings keeps a false `worse` at alpha
    # (against the best alone, 5 equal settings had one called worse in 6.7% of tests/test_stats.py's cases).
    labels = list(groups)
    tests = {(i, j): compare(groups[i], groups[j], resolution) for n, i in enumerate(labels) for j in labels[n + 1:]}
    made = [pair for pair, c in tests.items() if c.p is not None]
    adjusted = dict(zip(made, holm([tests[pair].p for pair in made])))
    against_best = {k: adjusted.get((best, k), adjusted.get((k, best))) for k in labels if k != best}
    if all(p is None for p in against_best.values()):
        # One run per setting (or nothing to compare against): no verdict for anyone,
        # not even "best", since a lone highest mean may be noise.
        return out
    for k, p in against_best.items():
        if p is None:
            continue
        if p < alpha:  # else ahead of the best where both ran: more seeds would not make it worse
            out[k] = Verdict("worse", p) if _favours(groups[best], groups[k], maximize) else Verdict("tied", p, ahead=True)
        elif min_difference is not None and negligible(groups[best], groups[k], min_difference, alpha / len(made),
                                                       resolution):
            out[k] = Verdict("tied", p, negligible=True)
        else:
            # At Holm's strictest level, alpha / m: the seeds that would make the verdict `worse`
            # whatever the other comparisons' p-values.
            alone = tests[(best, k) if (best, k) in tests else (k, best)].p
            out[k] = Verdict("tied", p, seeds_needed=seeds_for_power(groups[best], groups[k], alpha / len(made),
                                                                     resolution=resolution),
                             by_itself=alone < alpha and _favours(groups[best], groups[k], maximize))
    out[best] = Verdict("best", None)
    return out


def expected_best(values, n: int, maximize: bool = True) -> tuple[float, float]:
    """(mean, standard deviation) of the best of n values drawn at random, with replacement, from
    `values`: the expected validation performance of n trials of a search (Dodge, Gururangan,
    Card, Schwartz & Smith 2019, "Show your work: improved reporting of experimental results",
    EMNLP, eq. 1), from the trials it ran."""
    xs = np.sort(np.array(_finite(values)) * (1 if maximize else -1))
    m = len(xs)
    if m == 0 or n < 1:
        return math.nan, math.nan
    i = np.arange(1, m + 1)
    weights = (i / m) ** n - ((i - 1) / m) ** n  # the chance that the i-th smallest is the best of n
    mean = float(weights @ xs)
    spread = math.sqrt(max(0.0, float(weights @ xs ** 2) - mean ** 2))
    return (mean if maximize else -mean), spread


# ---------------------------------------------------------------------------- seed=auto
#
# Seeds are added in rounds until each comparison with the best is decided, so the data are
# optionally stopped and a t-test repeated after every round would reject far more often than its
# level. The test here stays valid whenever it is looked at: an e-value, the Bayes factor of the
# paired t-test with the right Haar prior on the spread and a two-point prior on the standardised
# difference (+-DESIGN_EFFECT), which is a test martingale under "no difference" (Lai 1976, "On
# confidence sequences", Ann. Statist. 4:265; Grunwald, de Heide & Koolen 2024, "Safe testing",
# JRSS-B 86:1091; Perez-Ortiz, Lardy, de Heide & Grunwald 2024, "E-statistics, group invariance and
# anytime-valid testing", Ann. Statist. 52:1410). By Ville's inequality P(ever e >= 1/alpha) <= alpha;
# the best is picked from the data and may change between rounds, so any pair of the K settings may
# be the one tested: each needs e >= m/alpha for m = K(K-1)/2 pairs (Bonferroni), and 1/e is an
# anytime-valid p-value. A comparison also stops, without a verdict, when it cannot end within the
# budget: a non-binding futility rule (the power of a fixed test of sweep.max_seeds seeds at the
# observed difference, not of this test), which never makes a false `worse` more likely.

# The difference, in standard deviations of the per-seed paired difference, the e-value is built
# to detect. Measured without the futility stop (2,000 simulated comparisons each, 3 to 10 seeds,
# alpha 0.05): designed for 1.0 it decides a true 1.5 in 91% of cases with 7.6 seeds on average,
# for 1.5 in 89% with 6.8, for 2.0 in 79%; the false-worse rate stays at 2-3%.
DESIGN_EFFECT = 1.0
# Futile: at the observed difference a fixed test of sweep.max_seeds seeds would detect it with
# less than this chance. Measured as above (tests/test_seeds.py): an A/A comparison then ends after
# 3.9 seeds on average, and a true 1.5 is still decided in 84% of cases, after 6.8.
FUTILE_POWER = 0.5


def evidence(best: dict, other: dict, effect: float = DESIGN_EFFECT,
             resolution: float = 0.0) -> tuple[float, int] | None:
    """(e-value against "no difference", shared seeds) of the paired differences over the seeds
    both ran; None with fewer than 2. `resolution`: as `compare`'s."""
    a, b = _by_seed(best), _by_seed(other)
    if not _shared(a, b):
        return None
    d, spread, _ = _spreads(a, b, resolution)
    n, mean = len(d), float(d.mean())
    if mean == 0:
        return _e_value(0.0, n - 1, effect * math.sqrt(n)), n
    # t / sqrt(t^2 + df): 1 where every seed has the same difference (t infinite), whose e-value
    # is finite and small at few seeds (4 at 3 seeds), not proof.
    r = math.copysign(1.0 / math.sqrt(1.0 + (n - 1) * (spread / mean) ** 2 / n), mean)
    return _e_value(r, n - 1, effect * math.sqrt(n)), n


def _e_value(r: float, df: int, shift: float) -> float:
    """The ratio of the t statistic's density under the two-point alternative (noncentrality
    +-shift) to its density under none, at t / sqrt(t^2 + df) = r: exp(-shift^2 / 2) E[cosh(shift
    r u)], u chi-distributed with df + 1 degrees of freedom (integrating out the unknown spread).
    The same number scipy's noncentral t densities give, but finite for every t, where those turn
    to nan far in the tail."""
    k, c = df + 1, abs(shift * r)
    # E[cosh(c u)] in closed form, Kummer's 1F1(k/2; 1/2; c^2/2) (its series, term by term):
    # 4 us where the integral below takes 410 (measured; equal to 1e-11). It overflows past
    # c^2/2 ~ 700 (from about 1,000 seeds), where the integral, in logs, still answers.
    kummer = float(special.hyp1f1(k / 2, 0.5, c * c / 2))
    if 0 < kummer < math.inf:
        return math.exp(min(-shift * shift / 2 + math.log(kummer), 700.0))
    log_norm = (k / 2 - 1) * math.log(2) + float(special.gammaln(k / 2))

    def log_integrand(u: float) -> float:
        return (k - 1) * math.log(u) - u * u / 2 - log_norm + c * u + math.log1p(math.exp(-2 * c * u)) - math.log(2)

    peak = (c + math.sqrt(c * c + 4 * (k - 1))) / 2  # where (k-1) log u - u^2/2 + c u is highest
    top = log_integrand(peak)
    # The integrand is a bump of width about 1 around its peak: nothing is left 40 past it.
    area, _ = integrate.quad(lambda u: math.exp(log_integrand(u) - top) if u > 0 else 0.0, 0.0,
                             peak + 40.0 + 10.0 * math.sqrt(k), points=[peak], limit=200)
    return math.exp(min(-shift * shift / 2 + top + math.log(area), 700.0))


def seeds_to_decide(settings: int, alpha: float = 0.05, limit: int = MAX_SEEDS) -> int | None:
    """The fewest seeds both sides of a comparison need before sequential_verdicts can call one
    of `settings` settings worse than the best: even where every seed shows the same difference
    (the e-value's most) it must pass m / alpha, m the pairs of settings; None past `limit`."""
    pairs = settings * (settings - 1) // 2
    return next((n for n in range(2, limit + 1) if _most_evidence(n) > pairs / alpha), None)


def _most_evidence(seeds: int) -> float:
    """The largest e-value `seeds` shared seeds can give: every seed the same difference."""
    return _e_value(1.0, seeds - 1, DESIGN_EFFECT * math.sqrt(seeds))


def sequential_verdicts(groups: dict[str, dict[int, float | None]], max_seeds: int, maximize: bool = True,
                        alpha: float = 0.05, min_difference: float | None = None,
                        resolution: float = 0.0) -> dict[str, Verdict]:
    """Verdicts against the best mean, by the anytime-valid test above (p = min(1, m / e)), each
    with why it needs no more seeds (`Verdict.stopped`), or None while it is open."""
    summaries = {k: summarize(v.values()) for k, v in groups.items()}
    best = _paired_best(groups, summaries, maximize)
    out = {k: Verdict(None, None) for k in groups}
    if best is None:
        return out
    found = {k: evidence(groups[best], v, resolution=resolution) for k, v in groups.items() if k != best}
    made = [k for k, e in found.items() if e is not None]
    if not made:
        return out
    # Every pair of the settings compared (the best among them) could be the one tested.
    m = len(made) * (len(made) + 1) // 2
    # Within max_seeds no e-value reaches m / alpha: more seeds cannot decide any comparison.
    reachable = _most_evidence(max_seeds) > m / alpha
    for k in made:
        e, _ = found[k]
        p = min(1.0, m / e) if e > 0 else 1.0
        if p < alpha:  # else ahead of the best where both ran: open, as more seeds may make it the best
            out[k] = (Verdict("worse", p, stopped="decided") if _favours(groups[best], groups[k], maximize)
                      else Verdict("tied", p, ahead=True))
            continue
        # What more seeds could do, from the seeds both ran (the pairs the test sees).
        a, b = _by_seed(groups[best]), _by_seed(groups[k])
        a, b = ({s: x[s] for s in a.keys() & b.keys()} for x in (a, b))
        needed = seeds_for_power(a, b, alpha / m, resolution=resolution)
        # Never fewer than this test can decide at all (every seed the same difference): a fixed
        # test's 3 beside a tie at 3 seeds would read as a contradiction.
        fewest = seeds_to_decide(len(made) + 1, alpha)
        needed = None if needed is None or fewest is None else max(needed, fewest)
        if min_difference is not None and negligible(a, b, min_difference, alpha / m, resolution):
            out[k] = Verdict("tied", p, negligible=True, stopped="negligible")
            continue
        difference, spread, _ = _effect(a, b, resolution)
        difference = abs(difference)
        chance = 0.0 if difference == 0 else 1.0 if spread == 0 else power(difference / spread, max_seeds, True,
                                                                              alpha / m)
        out[k] = Verdict("tied", p, seeds_needed=needed,
                         stopped="futile" if chance < FUTILE_POWER or not reachable else None)
    out[best] = Verdict("best", None, stopped=None if any(out[k].stopped is None for k in made) else "decided")
    return out


def _paired_best(groups: dict, summaries: dict[str, Summary], maximize: bool):
    """The setting at least as good as every other over the seeds both ran, else the best mean.
    Settings stopped after fewer seeds keep their means while the best gets more: compared on
    the seeds both ran, an equal setting does not take the best's place back and forth."""
    several = [k for k, s in summaries.items() if s.n >= 2] or [k for k, s in summaries.items() if s.n]
    sign = 1.0 if maximize else -1.0

    def at_least_as_good(k, j) -> bool:
        a, b = _by_seed(groups[k]), _by_seed(groups[j])
        shared = a.keys() & b.keys()
        if not shared:
            return sign * (summaries[k].mean - summaries[j].mean) >= 0
        return sign * math.fsum(a[s] - b[s] for s in shared) >= 0

    for k in several:  # the first in order among equals
        if all(at_least_as_good(k, j) for j in several if j != k):
            return k
    return _best(summaries, maximize)


def _best(summaries: dict[str, Summary], maximize: bool):
    """The setting with the best mean among those with an interval: a lone run (its other seeds
    failed) that happens to score highest must not take every other setting's verdict away.
    Ties go to the first in order."""
    several = {k for k, s in summaries.items() if s.n >= 2}
    best = None
    for k, s in summaries.items():
        if (not several or k in several) and not math.isnan(s.mean) and (
                best is None or (s.mean > summaries[best].mean if maximize else s.mean < summaries[best].mean)):
            best = k
    return best


def _p(p: float) -> str:
    """A p-value in a sentence: "p < 0.001", "p = 0.033"."""
    return "< 0.001" if p < 0.001 else f"= {p:.2g}"


def p_cell(p: float) -> str:
    """A p-value in a table cell: 0.033, small ones as 2e-05 (a "<" would be escaped in Markdown)."""
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def headline(labels_in_order: list[str], summaries: dict[str, Summary],
             verdicts: dict[str, Verdict], metric: str, digits: int = 3,
             shown: Optional[Callable[[Summary], str]] = None, unmeasured: Optional[dict[str, str]] = None,
             with_value: bool = True) -> str:
    """One sentence: the best settings, the worse, the not compared. `shown`: how the best's mean
    and interval are written (the report's table cells), else mean ± half-width. `unmeasured`:
    how the runs of a setting without a measurement ended ("3 diverged"), said beside its n = 0.
    `with_value`: the best's mean and interval in parentheses (not where a table shows them)."""
    def verdict(k):
        return verdicts.get(k, Verdict(None, None)).verdict

    def n(k):
        return summaries[k].n if k in summaries else 0

    def n_is(k):
        return f"n = {n(k)}" + (f": {unmeasured[k]}" if unmeasured and k in unmeasured and not n(k) else "")

    # Ties only for the number of comparisons: named apart, as "tied best" would read as equal.
    by_itself = [k for k in labels_in_order if verdict(k) == "tied" and verdicts[k].by_itself]
    top = [k for k in labels_in_order if verdict(k) in ("best", "tied") and k not in by_itself]
    worse = [k for k in labels_in_order if verdict(k) == "worse"]
    other = [k for k in labels_in_order if verdict(k) is None]
    if not top:
        if all(n(k) == 0 for k in labels_in_order):
            return f"{metric}: no verdict: no run finished ok (the status column says how they ended)"
        if all(n(k) <= 1 for k in labels_in_order):
            return (f"{metric}: no verdict: n = 1 per setting; repeat each setting over seeds "
                    "to get intervals and verdicts: the same command with seed=1,2,3,4,5 (or seed=auto)")
        # Some settings have several runs, but not the best one or not two settings.
        return (f"{metric}: no verdict: " + ", ".join(f"{k} ({n_is(k)})" for k in other)
                + "; a verdict needs at least 2 runs of the best setting and of another")
    best = next(k for k in top if verdict(k) == "best")
    s = summaries[best]
    value = f" ({shown(s) if shown else f'{s.mean:.{digits}f} ± {s.ci95:.{digits}f}'})" if with_value else ""
    parts = [f"{', '.join(top)} {'tied best' if len(top) > 1 else 'best'}{value}"]
    if by_itself:
        parts.append(f"{', '.join(by_itself)} undecided (behind the best at p < 0.05 alone, not once adjusted for "
                     "the other comparisons; more seeds decide)")
    if worse:
        ps = [verdicts[k].p for k in worse]
        p = _p(max(ps))
        if len(set(ps)) > 1:
            p = p.replace("=", "≤")
        parts.append(f"{', '.join(worse)} worse (p {p})")
    if other:
        ns = {n_is(k) for k in other}
        if len(ns) == 1:
            parts.append(f"{', '.join(other)} not compared ({ns.pop()})")
        else:
            parts.append(", ".join(f"{k} ({n_is(k)})" for k in other) + " not compared")
    return f"{metric}: " + "; ".join(parts)
