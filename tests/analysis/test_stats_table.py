"""`stats_table`'s rules (issue: statistics that hold up to a reviewer): identities are
named and not tested, p is adjusted across the table, the estimate, interval and test
belong together, attained levels are shown and a too-small n is warned about."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ptpair.analysis.stats import level_warnings, paired_stats, per_unit_columns, stats_table
from ptpair.reports.text import stats_rows, stats_title, units_text


def _runs(columns: dict, n: int, baseline: dict | None = None) -> pd.DataFrame:
    """Per-seed values: `columns` maps scheme -> {metric: values over seeds 1..n}; the
    baseline `separate` has `baseline` (default 100 for every metric and seed)."""
    metrics = sorted({m for v in columns.values() for m in v})
    rows = []
    for s in range(n):
        rows.append({"seed": s + 1, "scheme": "separate",
                     **{m: (baseline or {}).get(m, [100.0] * n)[s] for m in metrics}})
        for scheme, vals in columns.items():
            rows.append({"seed": s + 1, "scheme": scheme, **{m: vals[m][s] for m in metrics}})
    return pd.DataFrame(rows)


D = [12.0, 15.0, 9.0, 30.0, 21.0, 18.0, 25.0, 11.0, 40.0, 14.0]  # pair - separate, seeds 1-10


def _table(**kw):
    df = _runs({"pair": {"pt": [100 + d for d in D], "wasted": [100 + d for d in D], "zero": [100.0] * 10,
                         "const": [103.0] * 10, "loads": [100 - d / 10 for d in D]},
                "eager": {"pt": [100 + d for d in D], "wasted": [100 + 2 * d for d in D], "zero": [100.0] * 10,
                          "const": [100.0] * 10, "loads": [100 + d / 7 for d in D]}}, 10)
    return df, stats_table(df, "separate", ["pt", "wasted", "zero", "const", "loads"], **kw)


def _row(t, metric, scheme):
    return t[(t["metric"] == metric) & (t["scheme"] == scheme)].iloc[0]


def test_identities_are_named_and_not_tested():
    _, t = _table()
    zero, const = _row(t, "zero", "pair"), _row(t, "const", "pair")
    assert zero["identity"] == "zero" and np.isnan(zero["p_value"])  # was p = 1.000, d_z = 0
    assert const["identity"] == "constant" and const["estimate"] == 3.0 and np.isnan(const["p_value"])
    assert _row(t, "wasted", "pair")["identity"] == "same as pt/pair"  # an earlier row of the same scheme
    assert _row(t, "pt", "eager")["identity"] == "same as pt/pair"  # an earlier row of another scheme
    assert pd.isna(_row(t, "wasted", "eager")["identity"])  # different differences: tested
    text = stats_rows(t)
    assert "n/a (all differences 0)" in set(text["difference"]) and "all 10 differences = 3" in set(text["difference"])
    assert "same as pt/pair" in set(text["p"])


def test_p_values_are_adjusted_across_the_tests_only():
    _, t = _table()
    tested = t[t["identity"].isna()]
    assert len(tested) == 4  # pt/pair, loads/pair, wasted/eager, loads/eager
    raw = tested["p_value"].to_numpy()
    m = len(raw)
    order = np.argsort(raw)
    holm = np.maximum.accumulate(np.minimum(1, (m - np.arange(m)) * raw[order]))
    assert np.allclose(np.sort(tested["p_adjusted"].to_numpy()), np.sort(holm))
    assert t.loc[t["identity"].notna(), "p_adjusted"].isna().all()
    _, bh = _table(adjustment="bh")
    assert np.allclose(bh.loc[bh["identity"].isna(), "p_adjusted"], stats.false_discovery_control(raw))
    _, none = _table(adjustment="none")
    assert np.allclose(none.loc[none["identity"].isna(), "p_adjusted"], raw)


def test_estimate_interval_and_test_belong_together():
    df, t = _table()
    r = _row(t, "pt", "pair")
    d = np.array(D)
    walsh = np.sort([(d[i] + d[j]) / 2 for i in range(10) for j in range(i, 10)])
    # Hodges-Lehmann, the exact Wilcoxon interval (k = 9 at n = 10, 95 %) and test
    assert r["estimate"] == np.median(walsh) and r["estimator"] == "Hodges-Lehmann"
    assert (r["ci_low"], r["ci_high"]) == (walsh[8], walsh[55 - 9])
    assert r["ci_level_attained"] == pytest.approx(1 - 2 * 25 / 1024)  # P(T+ <= 8) = 25 / 2^10
    assert r["p_value"] == pytest.approx(stats.wilcoxon(d, method="exact").pvalue)
    m = _row(stats_table(df, "separate", ["pt"], estimator="mean"), "pt", "pair")
    ref = stats.ttest_1samp(d, 0)
    assert m["estimate"] == d.mean() and (m["ci_low"], m["ci_high"]) == pytest.approx(tuple(ref.confidence_interval()))
    assert m["p_value"] == pytest.approx(ref.pvalue) and m["test"].startswith("paired t")


def test_attained_levels_and_warnings_for_small_n():
    df = _runs({"pair": {"pt": [100 + d for d in D[:5]]}}, 5)
    t = stats_table(df, "separate", ["pt"])
    r = _row(t, "pt", "pair")
    assert r["ci_level"] == 0.95 and r["ci_level_attained"] == 0.9375 and r["p_value"] == 0.0625
    w = level_warnings(t, 0.95)
    assert any("smallest two-sided Wilcoxon p is 0.0625 > 0.05" in x for x in w)
    assert any("at most 93.75%" in x for x in w)
    df6 = _runs({"pair": {"pt": [100 + d for d in D[:6]]}}, 6)
    assert not any("smallest" in x for x in level_warnings(stats_table(df6, "separate", ["pt"]), 0.95))
    assert level_warnings(stats_table(df, "separate", ["pt"], estimator="mean"), 0.95) == []


def test_ratio_sd_and_per_seed_values():
    df, t = _table()
    r = _row(t, "pt", "pair")
    assert r["ratio"] == pytest.approx(np.mean([100 + d for d in D]) / 100) and r["ratio_ci_low"] < r["ratio"]
    assert r["sd_difference"] == pytest.approx(np.std(D, ddof=1))
    wide = per_unit_columns(df, t, "seed")
    row = wide[(wide["metric"] == "pt") & (wide["scheme"] == "pair")].iloc[0]
    assert [row[f"difference_seed{s}"] for s in range(1, 11)] == D
    assert row["value_seed4"] == 130.0 and row["baseline_seed4"] == 100.0


def test_labels_keep_the_level_and_the_seeds_as_given():
    df, t = _table(confidence=0.975)
    title = stats_title("mixed", "seed", [1, 5, 9], "separate", t)
    assert "97.5%" in title and "97%" not in title.replace("97.5%", "")
    assert "seeds 1, 5, 9 (n = 3)" in title and "Seeds measure the synthetic generator's variance" in title
    assert units_text([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9, 10" and units_text(list(range(1, 11))) == "1-10"


def test_paired_stats_leaves_out_units_without_a_value():
    df = _runs({"pair": {"pt": [110.0, 120.0, np.nan, 130.0]}}, 4)
    assert paired_stats(df, "pt", "pair")["n"] == 3


def test_warnings_count_each_rows_non_zero_differences():
    """The smallest Wilcoxon p depends on the non-zero differences of the row, not on n."""
    df = _runs({"pair": {"pt": [110.0, 120.0, 100.0, 130.0, 115.0, 125.0],  # one zero: 5 non-zero
                         "loads": [101.0, 102.0, 103.0, 104.0, 105.0, 106.0]}}, 6)
    t = stats_table(df, "separate", ["pt", "loads"])
    assert _row(t, "pt", "pair")["p_value"] == 0.0625 and _row(t, "pt", "pair")["nonzero"] == 5
    w = level_warnings(t, 0.95)
    assert len(w) == 1 and "5 non-zero differences" in w[0] and "pt/pair" in w[0] and "loads/pair" not in w[0]


def test_interval_and_test_that_part_over_ties_are_flagged():
    # tied differences: the exact sign-flip test over mid-ranks and the Walsh-average
    # interval disagree about 0 here (p < 0.05, yet the interval reaches 0)
    d = [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0]
    df = _runs({"pair": {"pt": [100 + x for x in d]}}, 10)
    t = stats_table(df, "separate", ["pt"])
    r = _row(t, "pt", "pair")
    excludes = r["ci_low"] > 0 or r["ci_high"] < 0
    assert excludes != (r["p_value"] <= 1 - r["ci_level_attained"])  # they do part here
    assert not r["agrees"]
    assert any("disagree" in x for x in level_warnings(t, 0.95))
    assert stats_rows(t)["p"].iloc[0].endswith("*")


def test_a_ratio_without_a_finite_bound_is_missing_not_infinite():
    from ptpair.analysis.inference import ratio_of_means

    r = ratio_of_means([1.0, 2.0, 5.0, 4.0], [0.0, 0.0, 4.0, 0.0])  # resamples with a zero baseline mean
    assert r.estimate == 3.0 and np.isnan(r.low) and np.isnan(r.high)
