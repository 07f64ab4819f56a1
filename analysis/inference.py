"""Inference on paired differences: each estimate comes with the interval and the test
that belong to it, and with the level the sample can actually reach.

Two matched families (docs/analysis.md#statistics gives the formulas and references):

* **Hodges-Lehmann** (default): the estimate is the median of the Walsh averages
  (d_i + d_j) / 2, i <= j; its interval is the exact Wilcoxon signed-rank interval (order
  statistics of the Walsh averages); its test is the Wilcoxon signed-rank test, exact
  where it can be (Hollander, Wolfe & Chicken, *Nonparametric Statistical Methods*, 3rd
  ed., 2014, ch. 3). The estimate, the interval and the test invert one another.
* **mean**: the mean difference, its Student t interval and the paired t test.

The signed-rank distribution is discrete: with n differences the smallest two-sided p is
2 / 2^n and the interval's level can only take values 1 - 2 P(T+ <= c); `attained` levels
are reported next to the level asked for.

Multiple comparisons: `adjust` (Holm's step-down; Benjamini-Hochberg; none).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ptpair.registry import ADJUSTMENTS, ESTIMATORS  # (re-exported: the choices live in the registry)

ADJUSTMENT_NAMES = {"holm": "Holm (step-down, family-wise error)",
                    "bh": "Benjamini-Hochberg (false discovery rate)", "none": "none"}

# The signed-rank null distribution is computed exactly up to this many differences
# (O(n^3) work); beyond it the normal approximation is used.
EXACT_MAX_N = 400
# Exact sign-flip enumeration of the test with tied |d| costs 2^n; beyond this many
# non-zero differences the test falls back to the normal approximation (scipy's own).
PERMUTATION_MAX_N = 20
BOOTSTRAP_RESAMPLES = 9999


def signed_rank_cdf(n: int) -> np.ndarray:
    """P(T+ <= t) for t = 0 .. n(n+1)/2 under the null: T+ is the sum of the ranks
    1..n that carry a + sign, each sign +/- with probability 1/2, independently.
    Computed by multiplying the generating functions (1 + x^i) / 2, i = 1..n."""
    m = n * (n + 1) // 2
    p = np.zeros(m + 1)
    p[0] = 1.0
    top = 0
    for i in range(1, n + 1):
        # rank i is + (shift by i) or - (stay), each with probability 1/2
        p[i: top + i + 1] = 0.5 * (p[i: top + i + 1] + p[: top + 1])
        p[:i] *= 0.5
        top += i
    return np.minimum(np.cumsum(p), 1.0)


def min_two_sided_p(n: int) -> float:
    """The smallest two-sided p the exact signed-rank test gives with n non-zero
    differences: every sign alike, 2 / 2^n (1 for n = 0)."""
    return min(1.0, 2.0 / 2.0 ** n)


def max_wilcoxon_level(n: int) -> float:
    """The highest level an exact Wilcoxon interval reaches with n differences: the
    widest interval [min d, max d] covers with probability 1 - 2 / 2^n."""
    return max(0.0, 1.0 - min_two_sided_p(n))


@dataclass
class Interval:
    estimate: float
    low: float
    high: float
    level: float  # the level asked for, in (0, 1)
    attained: float  # the level this interval has (exact for continuous differences)


def _walsh_averages(d: np.ndarray) -> np.ndarray:
    """(d_i + d_j) / 2 for every i <= j, sorted: n(n+1)/2 values."""
    i, j = np.triu_indices(len(d))
    return np.sort((d[i] + d[j]) / 2.0)


def wilcoxon_rank(n: int, level: float) -> tuple[int, float]:
    """(k, attained level) of the exact Wilcoxon interval [W_(k), W_(M+1-k)] with n
    differences: k - 1 is the largest c with P(T+ <= c) <= (1 - level) / 2, and the
    interval covers with probability 1 - 2 P(T+ <= k - 1) (continuous differences).
    When n is too small for the level (2 / 2^n > 1 - level), k = 1: the widest interval,
    [min d, max d]. Beyond EXACT_MAX_N, the normal approximation to T+ (Hollander, Wolfe &
    Chicken, section 3.2) and the level asked."""
    alpha = 1.0 - level
    if n <= EXACT_MAX_N:
        cdf = signed_rank_cdf(n)
        ok = np.nonzero(cdf <= alpha / 2 * (1 + 1e-12))[0]  # tolerance: float sums of 2^-n terms
        c = int(ok[-1]) if len(ok) else 0
        return c + 1, 1.0 - 2.0 * float(cdf[c])
    from scipy import stats

    z = stats.norm.ppf(1 - alpha / 2)
    m = n * (n + 1) / 2
    return max(1, int(np.floor(m / 2 - z * np.sqrt(n * (n + 1) * (2 * n + 1) / 24)))), level


def hodges_lehmann(d, level: float = 0.95) -> Interval:
    """Hodges-Lehmann estimate of the centre of the paired differences `d` (the median of
    the M = n(n+1)/2 Walsh averages) with the exact Wilcoxon signed-rank interval
    [W_(k), W_(M+1-k)] of the sorted Walsh averages (`wilcoxon_rank`).

    For distinct, non-zero differences the interval is exactly the set of shifts the
    exact signed-rank test does not reject at 1 - `attained`. With tied or zero
    differences (integer page counts) the same order statistics are used, while the test
    (`wilcoxon`) handles ties and zeros its own way: the two can then disagree near the
    boundary (see `agrees`). n >= 2 needed (NaNs otherwise); NaN differences are an error."""
    d = np.asarray(d, float)
    if np.isnan(d).any():
        raise ValueError("differences contain NaN: leave out the units without a value first")
    n = len(d)
    if n < 2:
        return Interval(float(d[0]) if n else np.nan, np.nan, np.nan, level, np.nan)
    w = _walsh_averages(d)
    k, attained = wilcoxon_rank(n, level)
    return Interval(float(np.median(w)), float(w[k - 1]), float(w[len(w) - k]), level, attained)


def agrees(iv: Interval, p: float) -> bool | None:
    """Whether interval and test tell the same story about 0: the interval excludes 0
    exactly when the test rejects at 1 - its attained level (p <= that, up to float
    rounding). None when either is missing."""
    if np.isnan(iv.low) or np.isnan(p) or np.isnan(iv.attained):
        return None
    excludes = iv.low > 0 or iv.high < 0
    return bool(excludes == (p <= (1 - iv.attained) * (1 + 1e-9)))


def t_interval(d, level: float = 0.95) -> Interval:
    """The mean of `d` with its Student t interval (exact for normal differences; n >= 2
    and a non-zero spread needed, NaNs otherwise)."""
    from scipy import stats

    d = np.asarray(d, float)
    if len(d) < 2 or np.ptp(d) == 0:
        m = float(d.mean()) if len(d) else np.nan
        return Interval(m, np.nan, np.nan, level, np.nan)
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(level)
    return Interval(float(d.mean()), float(ci.low), float(ci.high), level, level)


@dataclass
class Test:
    name: str
    statistic: float
    p_value: float
    method: str  # how p was computed


def wilcoxon(d) -> Test:
    """Two-sided Wilcoxon signed-rank test of `d` (zero differences dropped, Wilcoxon's
    convention). Exact where it can be: without ties, the signed-rank distribution (n <=
    50, scipy); with tied |d|, every one of the 2^n sign flips of the mid-ranks (n <=
    PERMUTATION_MAX_N); otherwise the normal approximation with the tie correction."""
    from scipy import stats

    d = np.asarray(d, float)
    nz = d[d != 0]
    if len(nz) == 0:
        return Test("Wilcoxon signed-rank", np.nan, np.nan, "no non-zero difference")
    ties = len(np.unique(np.abs(nz))) < len(nz)
    if not ties and len(nz) <= 50:
        method, how = "exact", "exact"
    elif ties and len(nz) <= PERMUTATION_MAX_N:
        method = stats.PermutationMethod(n_resamples=np.inf)
        how = "exact (every sign flip; tied differences)"
    else:
        method, how = "asymptotic", "normal approximation"
    r = stats.wilcoxon(nz, zero_method="wilcox", alternative="two-sided", method=method)
    return Test("Wilcoxon signed-rank", float(r.statistic), float(r.pvalue), how)


def t_test(d) -> Test:
    """Two-sided paired t test (one-sample t test of the differences)."""
    from scipy import stats

    d = np.asarray(d, float)
    if len(d) < 2 or np.ptp(d) == 0:
        return Test("paired t", np.nan, np.nan, "no spread")
    r = stats.ttest_1samp(d, 0.0)
    return Test("paired t", float(r.statistic), float(r.pvalue), "exact (Student t)")


def adjust(p, method: str = "holm") -> np.ndarray:
    """p values adjusted for testing them all: `holm` (Holm 1979, step-down, controls the
    family-wise error rate), `bh` (Benjamini & Hochberg 1995, the false discovery rate;
    scipy.stats.false_discovery_control) or `none`. NaNs are not tests: left out of the
    family and kept as NaN."""
    p = np.asarray(p, float)
    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    if method == "none" or len(q) == 0:
        out[ok] = q
    elif method == "holm":
        m = len(q)
        order = np.argsort(q, kind="stable")
        # the i-th smallest p (0-based) is multiplied by m - i; monotone from the smallest up
        stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * q[order]))
        adj = np.empty(m)
        adj[order] = stepped
        out[ok] = adj
    elif method == "bh":
        from scipy import stats

        out[ok] = stats.false_discovery_control(q, method="bh")
    else:
        raise ValueError(f"unknown adjustment {method!r}; choose from {', '.join(ADJUSTMENTS)}")
    return out


@dataclass
class Ratio:
    estimate: float  # mean(x) / mean(y)
    low: float
    high: float
    method: str  # how the interval was found: "BCa", "percentile" (BCa undefined), "exact" or ""


def ratio_of_means(x, y, level: float = 0.95, n_resamples: int = BOOTSTRAP_RESAMPLES,
                   random_state: int = 0) -> Ratio:
    """mean(x) / mean(y) of paired samples with a paired bootstrap interval at `level`
    (scipy.stats.bootstrap, pairs resampled): BCa, or the percentile interval where BCa is
    undefined (few pairs). The bootstrap's level is nominal, not exact. NaN when mean(y)
    is 0; a point when x / y is the same for every pair; NaN bounds when some resample's
    baseline mean is 0 (a ratio without a finite bound)."""
    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) == 0 or y.mean() == 0:
        return Ratio(np.nan, np.nan, np.nan, "")
    r = float(x.mean() / y.mean())
    if len(x) < 2 or (np.all(y != 0) and np.ptp(x / np.where(y != 0, y, 1)) == 0):
        return Ratio(r, r, r, "exact")
    ci = (np.nan, np.nan)
    for method in ("BCa", "percentile"):  # BCa's acceleration can be undefined (NaN) with few pairs
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's DegenerateDataWarning: answered by the fallback
            res = stats.bootstrap((x, y), lambda a, b, axis: a.mean(axis) / b.mean(axis), paired=True,
                                  vectorized=True, confidence_level=level, n_resamples=n_resamples, method=method,
                                  random_state=random_state)
        ci = (float(res.confidence_interval.low), float(res.confidence_interval.high))
        if np.isfinite(ci).all():
            return Ratio(r, ci[0], ci[1], method)
    return Ratio(r, np.nan, np.nan, "")


def level_text(level: float) -> str:
    """0.95 -> '95%', 0.975 -> '97.5%', 0.9375 -> '93.75%', 0.99999 -> '99.999%': rounded
    to 0.01 %, with more digits where that would read 100 %; never truncated."""
    v = level * 100
    for digits in (2, 4, 6, 8):
        t = round(v, digits)
        if t < 100 or v >= 100:
            break
    return f"{t:g}%"


__all__ = ["ADJUSTMENTS", "ESTIMATORS", "Interval", "Ratio", "Test", "adjust", "agrees", "hodges_lehmann",
           "level_text", "max_wilcoxon_level", "min_two_sided_p", "ratio_of_means", "signed_rank_cdf", "t_interval",
           "t_test", "wilcoxon", "wilcoxon_rank"]
