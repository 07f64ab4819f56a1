"""Estimates, intervals and tests on paired differences (analysis/inference.py), checked
against scipy, brute-force enumeration, test inversion and R's p.adjust."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ptpair.analysis.inference import (adjust, hodges_lehmann, level_text, max_wilcoxon_level, min_two_sided_p,
                                       ratio_of_means, signed_rank_cdf, t_interval, t_test, wilcoxon)


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_signed_rank_distribution_is_the_enumerated_one(n):
    sums = [sum(r for r, s in zip(range(1, n + 1), signs) if s) for signs in itertools.product((0, 1), repeat=n)]
    counts = np.bincount(sums, minlength=n * (n + 1) // 2 + 1)
    assert np.allclose(signed_rank_cdf(n), np.cumsum(counts) / 2**n)


def test_attainable_levels():
    assert min_two_sided_p(5) == 0.0625 and max_wilcoxon_level(5) == 0.9375
    assert min_two_sided_p(10) == pytest.approx(2 / 1024)


@settings(max_examples=25, deadline=None)
@given(st.integers(5, 14), st.integers(0, 2**31), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_hodges_lehmann_interval_inverts_the_exact_wilcoxon_test(n, seed, level):
    """The interval is the set of shifts the exact test does not reject at the attained
    level, and the estimate is the median of the Walsh averages."""
    d = np.random.default_rng(seed).normal(1.0, 2.0, n)
    iv = hodges_lehmann(d, level)
    walsh = [(d[i] + d[j]) / 2 for i in range(n) for j in range(i, n)]
    assert iv.estimate == pytest.approx(np.median(walsh))
    assert iv.attained >= min(level, max_wilcoxon_level(n)) - 1e-12
    alpha = 1 - iv.attained
    eps = 1e-7 * (1 + abs(iv.low) + abs(iv.high))
    for theta, inside in ((iv.low + eps, True), (iv.high - eps, True), (iv.low - eps, False), (iv.high + eps, False)):
        p = stats.wilcoxon(d - theta, method="exact").pvalue
        assert (p > alpha + 1e-12) == inside, (theta, p, alpha)


def test_a_sample_too_small_for_the_level_gets_the_widest_interval_and_says_so():
    d = np.array([3.0, 1.0, 4.0, 1.5, 5.0])
    iv = hodges_lehmann(d, 0.95)
    assert (iv.low, iv.high) == (1.0, 5.0) and iv.attained == 0.9375 and iv.level == 0.95


def test_wilcoxon_is_exact_with_and_without_ties():
    d = np.array([1.0, 2.5, -0.5, 4.0, 3.0, 6.0])
    assert wilcoxon(d).p_value == pytest.approx(stats.wilcoxon(d, method="exact").pvalue)
    assert wilcoxon(d).method == "exact"
    tied = np.array([2.0, 2.0, -2.0, 5.0, 5.0, 1.0, 0.0])  # tied |d| and a zero (dropped)
    nz = tied[tied != 0]
    ranks = stats.rankdata(np.abs(nz))
    obs = min(ranks[nz > 0].sum(), ranks[nz < 0].sum())
    flips = [min(ranks[np.array(s)].sum(), ranks[~np.array(s)].sum())
             for s in itertools.product((False, True), repeat=len(nz))]
    brute = np.mean(np.array(flips) <= obs + 1e-9)
    t = wilcoxon(tied)
    assert t.p_value == pytest.approx(brute) and t.method.startswith("exact")


def test_mean_estimator_is_the_t_interval_and_the_paired_t_test():
    d = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    iv, t = t_interval(d, 0.9), t_test(d)
    ref = stats.ttest_1samp(d, 0.0)
    assert (iv.low, iv.high) == pytest.approx(tuple(ref.confidence_interval(0.9)))
    assert iv.estimate == d.mean() and iv.attained == 0.9 and t.p_value == pytest.approx(ref.pvalue)


def test_adjustments_agree_with_r_p_adjust():
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") and "BH"
    assert np.allclose(adjust(p, "holm"), [0.03, 0.06, 0.06, 0.02, np.nan], equal_nan=True)
    assert np.allclose(adjust(p, "bh"), [0.02, 0.04, 0.04, 0.02, np.nan], equal_nan=True)
    assert np.allclose(adjust(p, "none"), p, equal_nan=True)
    with pytest.raises(ValueError):
        adjust(p, "bonferroni")


def test_ratio_of_means():
    x, y = np.array([10.0, 12, 13, 15, 11]), np.array([5.0, 6, 6, 8, 5])
    r = ratio_of_means(x, y)
    assert r.estimate == pytest.approx(61 / 30) and r.low < r.estimate < r.high
    assert ratio_of_means(2 * y, y).low == ratio_of_means(2 * y, y).high == 2.0  # the same ratio every pair
    assert r.method == "BCa" and ratio_of_means(2 * y, y).method == "exact"
    assert np.isnan(ratio_of_means(x, 0 * y).estimate)  # baseline mean 0: no ratio


def test_levels_are_shown_without_truncation():
    assert [level_text(v) for v in (0.95, 0.975, 0.9375, 0.951171875, 0.99999)] == [
        "95%", "97.5%", "93.75%", "95.12%", "99.999%"]


def test_large_samples_use_the_normal_approximation_to_the_rank_distribution():
    from ptpair.analysis.inference import EXACT_MAX_N, wilcoxon_rank

    n = EXACT_MAX_N + 100
    k, attained = wilcoxon_rank(n, 0.95)
    m = n * (n + 1) / 2
    z = stats.norm.ppf(0.975)
    assert k == int(np.floor(m / 2 - z * np.sqrt(n * (n + 1) * (2 * n + 1) / 24))) and attained == 0.95
    exact_k, exact_attained = wilcoxon_rank(EXACT_MAX_N, 0.95)  # the two paths meet at the boundary
    assert abs(exact_attained - 0.95) < 0.001
    d = np.random.default_rng(3).normal(0.5, 1.0, n)
    iv = hodges_lehmann(d)
    assert iv.low < iv.estimate < iv.high


def test_nan_differences_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        hodges_lehmann([1.0, np.nan, 3.0])
