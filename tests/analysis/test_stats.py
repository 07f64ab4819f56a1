"""Paired comparisons, decomposition, statistics across seeds, break-even model."""

import numpy as np
import pandas as pd
import pytest

from ptpair.analysis.breakeven import fit, phi_threshold, simulate
from ptpair.analysis.stats import decompose, paired_differences, paired_stats, run_grid, seed_runs
from ptpair.traces.synth import synth

SCHEMES = ["pair", "separate", "separate-eager", "pair-on-vmm"]


@pytest.fixture(scope="module")
def runs():
    return seed_runs("mixed", range(1, 7), SCHEMES, events=1500, memory_pages=1 << 16)


def test_decomposition_is_exact_per_seed(runs):
    for metric in ("pt_pages_final", "alloc_failures", "pt_pages_peak"):
        d = decompose(runs, metric, by="seed")
        assert (d["pair_minus_separate"] == d["waste"] + d["contiguity"]).all()
    d = decompose(runs, "pt_pages_final", by="seed")
    assert (d["waste"] > 0).all()  # non-VMM processes exist in every seed of `mixed`


def test_paired_differences_against_the_baseline(runs):
    pdiff = paired_differences(runs, "separate", by="seed", metrics=["pt_pages_final"])
    assert set(pdiff["scheme"]) == {"pair", "separate-eager", "pair-on-vmm"}
    row = pdiff[(pdiff.scheme == "pair") & (pdiff.seed == 1)].iloc[0]
    assert row["difference"] == row["value"] - row["baseline"]
    assert row["ratio"] == pytest.approx(row["value"] / row["baseline"])


def test_paired_stats_on_a_known_sample():
    # differences 1..8: mean 4.5; every difference positive -> exact Wilcoxon p = 2/2^8
    df = pd.DataFrame({"seed": list(range(8)) * 2, "scheme": ["a"] * 8 + ["b"] * 8,
                       "m": [10] * 8 + [10 + d for d in range(1, 9)]})
    s = paired_stats(df, "m", "b", baseline="a")
    assert s["n"] == 8 and s["mean_difference"] == 4.5
    assert s["p_value"] == pytest.approx(2 / 2**8)
    assert s["rank_biserial"] == 1.0
    assert s["cohens_dz"] == pytest.approx(4.5 / np.std(np.arange(1, 9), ddof=1))
    assert s["ci_low"] < 4.5 < s["ci_high"] and s["ci_level"] == 0.95
    assert "Wilcoxon" in s["test"]


def test_paired_stats_with_identical_schemes(runs):
    s = paired_stats(runs, "pt_pages_final", "separate-eager", baseline="pair")
    assert s["mean_difference"] == 0 and s["identity"] == "zero" and np.isnan(s["p_value"])


def test_break_even_model_matches_the_simulation():
    df = simulate("mixed", fractions=(0.0, 0.5, 1.0), seeds=(1, 2), events=1500)
    assert (df["failures"] == 0).all()
    assert np.allclose(df["ratio"], df["model_ratio"])
    at0 = df[df.vmm_fraction == 0.0]
    assert (at0["ratio"] == 2.0).all()  # no VMM: pair doubles page-table memory
    f = fit(df)
    assert f["exact_model_max_error_pages"] < 1e-9 and 0.5 < f["fitted_slope"] < 1.5
    assert phi_threshold(0.1) == pytest.approx(0.9 / 1.1)
    # more VMMs, less waste
    means = df.groupby("vmm_fraction")["difference"].mean()
    assert means.is_monotonic_decreasing


def test_run_grid_over_named_traces():
    df = run_grid({"a": synth("sparse", seed=1, events=500)}, ["pair", "separate"])
    assert list(df["scheme"]) == ["pair", "separate"] and (df["trace"] == "a").all()
