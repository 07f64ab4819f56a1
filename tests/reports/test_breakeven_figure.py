"""The breakeven figure and its caption from a small constructed table (no replay)."""

import pandas as pd

from ptpair.analysis.experiments import ReportData, ReportParams
from ptpair.reports import plots
from ptpair.reports.build import _breakeven_caption

# two fractions, two seeds; the realised share s below the nominal f, the model exact
ROWS = pd.DataFrame({
    "vmm_fraction": [0.0, 0.0, 1.0, 1.0], "seed": [1, 2, 1, 2], "vmm_process_share": [0.0, 0.0, 0.75, 0.8],
    "kpt_pages": [100, 120, 100, 100], "vmm_kpt_pages": [0, 0, 90, 95],
    "difference": [100, 120, 10, 5], "model_difference": [100, 120, 10, 5],
})
ROWS["phi"] = ROWS["vmm_kpt_pages"] / ROWS["kpt_pages"]
ROWS["ratio"] = 2 * ROWS["kpt_pages"] / (ROWS["kpt_pages"] + ROWS["vmm_kpt_pages"])


def test_breakeven_plots_nominal_and_realised_share():
    fig = plots.breakeven(ROWS)
    left, right = fig.axes
    labels = set(left.get_legend_handles_labels()[1])
    assert labels == {"naive model 2/(1+x)", "against nominal f", "against realised s"}
    realised = left.collections[1].get_offsets()[:, 0]
    assert list(realised) == list(ROWS["vmm_process_share"])
    assert set(right.get_legend_handles_labels()[1]) == {"model 2/(1+φ)", "simulated"}


def test_breakeven_caption_states_both_fits():
    cap = _breakeven_caption(ReportData(traces={}, params=ReportParams(), breakeven=ROWS))
    assert "R² " in cap and "against s" in cap and "against f" in cap and "largest error 0 pages" in cap
