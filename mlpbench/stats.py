"""Statistics for reports: a measurement is a mean with its 95% interval, and a
comparison between settings says whether a difference is real (t-tests over seeds,
Holm-adjusted against the best setting)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats


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
    return Summary(n, mean, std, float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n))


@dataclass(frozen=True)
class Comparison:
    p: float | None
    test: str | None  # "paired t", "Welch t", or None when no test is possible


def _by_seed(values: dict) -> dict:
    return {seed: x[0] for seed, v in values.items() if (x := _finite([v]))}


def compare(a: dict, b: dict) -> Comparison:
    a, b = _by_seed(a), _by_seed(b)
    # scipy warns about precision loss on (nearly) constant data; the exactly constant
    # cases, where it answers nan, are decided here instead.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if a.keys() == b.keys() and len(a) >= 2:
            # Same seeds on both sides: a seed's data split and initialisation are shared,
            # so pairing removes their variance from the comparison.
            seeds = sorted(a)
            d = np.array([a[s] - b[s] for s in seeds])
            if np.all(d == d[0]):
                return Comparison(1.0 if d[0] == 0 else 0.0, "paired t")
            p = stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue
            return Comparison(float(p), "paired t")
        if len(a) >= 2 and len(b) >= 2:
            # Some seed is missing on one side (a failed run): unpaired, unequal variances.
            xa, xb = np.array(list(a.values())), np.array(list(b.values()))
            if np.all(xa == xa[0]) and np.all(xb == xb[0]):
                return Comparison(1.0 if xa[0] == xb[0] else 0.0, "Welch t")
            p = stats.ttest_ind(xa, xb, equal_var=False).pvalue
            return Comparison(float(p), "Welch t")
    return Comparison(None, None)


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
    p: float | None  # Holm-adjusted p against the best; None for the best itself
    # A tie: the seeds per setting that would detect the observed difference at 80% power, at
    # Holm's strictest level alpha / m for m comparisons (None:
    # more than MAX_SEEDS, or no difference at all), or `negligible`: the difference is smaller than
    # report.min_difference, so no number of seeds makes it matter.
    seeds_needed: int | None = None
    negligible: bool = False


POWER = 0.8
MAX_SEEDS = 1000


def seeds_for_power(best: dict, other: dict, alpha: float = 0.05, power: float = POWER) -> int | None:
    """Seeds per setting that the test `compare` makes (paired t over shared seeds, else Welch's)
    needs to detect the observed difference with probability `power` at level `alpha`, taking the
    observed spread as the true one (noncentral t; Cohen 1988, ch. 2); None for no difference or
    more than MAX_SEEDS."""
    a, b = _by_seed(best), _by_seed(other)
    if len(a) < 2 or len(b) < 2:
        return None
    paired = a.keys() == b.keys()
    if paired:
        d = np.array([a[s] - b[s] for s in sorted(a)])
        difference, spread = abs(float(d.mean())), float(d.std(ddof=1))
    else:
        xa, xb = np.array(list(a.values())), np.array(list(b.values()))
        difference = abs(float(xa.mean() - xb.mean()))
        spread = math.sqrt((float(xa.var(ddof=1)) + float(xb.var(ddof=1))) / 2)
    if difference == 0:
        return None
    if spread == 0:
        return 2
    effect = difference / spread

    def power_at(n: int) -> float:
        df, nc = (n - 1, effect * math.sqrt(n)) if paired else (2 * n - 2, effect * math.sqrt(n / 2))
        critical = float(stats.t.ppf(1 - alpha / 2, df))
        exact = float(stats.nct.sf(critical, df, nc) + stats.nct.cdf(-critical, df, nc))
        # scipy's noncentral t loses itself far in the tail (nan); there the normal's is as good.
        return exact if math.isfinite(exact) else float(stats.norm.sf(critical - nc) + stats.norm.cdf(-critical - nc))

    high = 2  # power grows with n: double n until it suffices, then the least n by bisection
    while power_at(high) < power:
        if high >= MAX_SEEDS:
            return None
        high = min(2 * high, MAX_SEEDS)
    low = max(2, high // 2)
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if power_at(middle) >= power else (middle + 1, high)
    return low


def verdicts(groups: dict[str, dict[int, float | None]], maximize: bool = True,
             alpha: float = 0.05, min_difference: float | None = None) -> dict[str, Verdict]:
    none = Verdict(None, None)
    summaries = {k: summarize(v.values()) for k, v in groups.items()}
    means = {k: s.mean for k, s in summaries.items()}
    # The best among settings with an interval: a lone run (its other seeds failed) that
    # happens to score highest must not take every other setting's verdict away.
    several = {k for k, s in summaries.items() if s.n >= 2}
    best = None
    for k, mean in means.items():  # strict comparison: ties go to the first in order
        if (not several or k in several) and not math.isnan(mean) and (best is None or (mean > means[best] if maximize
                                                      else mean < means[best])):
            best = k
    out = {k: none for k in groups}
    if best is None:
        return out
    tests = {k: compare(groups[best], v) for k, v in groups.items() if k != best}
    made = [k for k, c in tests.items() if c.p is not None]
    if not made:
        # One run per setting (or nothing to compare against): no verdict for anyone,
        # not even "best", since a lone highest mean may be noise.
        return out
    # Every setting is tested against the same best: adjust for the number of tests.
    for k, p in zip(made, holm([tests[k].p for k in made])):
        if p < alpha:
            out[k] = Verdict("worse", p)
        elif min_difference is not None and abs(means[best] - means[k]) < min_difference:
            out[k] = Verdict("tied", p, negligible=True)
        else:
            # At Holm's strictest level, alpha / m: the seeds that would make the verdict `worse`
            # whatever the other comparisons' p-values.
            out[k] = Verdict("tied", p, seeds_needed=seeds_for_power(groups[best], groups[k], alpha / len(made)))
    out[best] = Verdict("best", None)
    return out


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.2g}"


def headline(labels_in_order: list[str], summaries: dict[str, Summary],
             verdicts: dict[str, Verdict], metric: str, digits: int = 3) -> str:
    def verdict(k):
        return verdicts.get(k, Verdict(None, None)).verdict

    def n(k):
        return summaries[k].n if k in summaries else 0

    top = [k for k in labels_in_order if verdict(k) in ("best", "tied")]
    worse = [k for k in labels_in_order if verdict(k) == "worse"]
    other = [k for k in labels_in_order if verdict(k) is None]
    if not top:
        if all(n(k) <= 1 for k in labels_in_order):
            return (f"{metric}: no verdict: n = 1 per setting; repeat each setting over seeds "
                    "to get intervals and verdicts, e.g. add seed=1,2,3,4,5 to the -m command")
        # Some settings have several runs, but not the best one or not two settings.
        return (f"{metric}: no verdict: " + ", ".join(f"{k} (n = {n(k)})" for k in other)
                + "; a verdict needs at least 2 runs of the best setting and of another")
    best = next(k for k in top if verdict(k) == "best")
    s = summaries[best]
    parts = [f"{', '.join(top)} {'tied best' if len(top) > 1 else 'best'} "
             f"({s.mean:.{digits}f} ± {s.ci95:.{digits}f})"]
    if worse:
        ps = [verdicts[k].p for k in worse]
        p = _p(max(ps))
        if len(set(ps)) > 1:
            p = p.replace("=", "≤")
        parts.append(f"{', '.join(worse)} worse (p {p})")
    if other:
        ns = {n(k) for k in other}
        if len(ns) == 1:
            parts.append(f"{', '.join(other)} not compared (n = {ns.pop()})")
        else:
            parts.append(", ".join(f"{k} (n = {n(k)})" for k in other) + " not compared")
    return f"{metric}: " + "; ".join(parts)
