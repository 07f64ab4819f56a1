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
    # the model, from the pair replay's K and K_v, predicts the separate replay to the page
    assert (df["pt_separate"] == df["model_pt_separate"]).all() and (df["model_error_pages"] == 0).all()
    assert np.allclose(df["ratio"], df["model_ratio"])
    at0 = df[df.vmm_fraction == 0.0]
    assert (at0["ratio"] == 2.0).all() and (at0["vmm_kpt_pages"] == 0).all()  # no VMM: pair doubles
    f = fit(df)
    assert f["exact_model_max_error_pages"] == 0 and 0.5 < f["fitted_slope"] < 1.5
    assert phi_threshold(0.1) == pytest.approx(0.9 / 1.1)
    # forked children are not VMMs: the realised share is below the nominal fraction
    assert (df.loc[df.vmm_fraction > 0, "vmm_process_share"] < df.loc[df.vmm_fraction > 0, "vmm_fraction"]).all()
    # more VMMs, less waste
    means = df.groupby("vmm_fraction")["difference"].mean()
    assert means.is_monotonic_decreasing


def test_break_even_check_fails_when_the_scheme_changes():
    # separate-eager gives every process EPT twins: the model of `separate` misses by K - K_v
    df = simulate("mixed", fractions=(0.5, 1.0), seeds=(1, 2), events=1500, against="separate-eager")
    assert (df["failures"] == 0).all() and (df["vmm_kpt_pages"] < df["kpt_pages"]).all()
    assert (df["model_error_pages"] == -(df["kpt_pages"] - df["vmm_kpt_pages"])).all()
    assert fit(df)["exact_model_max_error_pages"] == (df["kpt_pages"] - df["vmm_kpt_pages"]).max() > 0


def test_break_even_fit_against_the_realised_and_the_nominal_share():
    # difference / K = 1 - s exactly, while the nominal f is 0.2 higher on half the rows
    s = np.array([0.0, 0.2, 0.4, 0.6])
    f = np.array([0.0, 0.4, 0.4, 0.8])
    k = 100
    df = pd.DataFrame({"vmm_fraction": f, "vmm_process_share": s, "kpt_pages": k,
                       "difference": k * (1 - s), "model_difference": k * (1 - s)})
    r = fit(df)
    assert r["naive_model_r2"] == pytest.approx(1.0) and r["fitted_slope"] == pytest.approx(1.0)
    assert r["exact_model_max_error_pages"] == 0
    # against the fixed line 1 - f: SS_res = 2 (0.2)^2, SS_tot = sum (y - 0.7)^2 = 0.2
    assert r["naive_model_r2_nominal"] == pytest.approx(1 - 0.08 / 0.2)
    u = 1 - f
    assert r["fitted_slope_nominal"] == pytest.approx(np.dot(u, 1 - s) / np.dot(u, u))


def test_run_grid_over_named_traces():
    df = run_grid({"a": synth("sparse", seed=1, events=500)}, ["pair", "separate"])
    assert list(df["scheme"]) == ["pair", "separate"] and (df["trace"] == "a").all()
