"""The Python API: what the command line does, callable from a notebook.

    >>> from ptpair import api
    >>> trace = api.synth("mixed", seed=1, events=5000)
    >>> api.replay(trace, scheme="pair").final["ept_pages"]      # doctest: +SKIP
    >>> table, results = api.compare(trace)                     # a pandas DataFrame
"""

from __future__ import annotations

import importlib

# name -> the module that defines it. Imported on first use (PEP 562), so that a command
# needing only the simulator (`ptpair replay`) does not pay for pandas and the analysis.
_WHERE = {
    **dict.fromkeys(("compare", "compare_results", "results_frame"), "ptpair.analysis.compare"),
    **dict.fromkeys(("enriched_dict", "series_frame", "summary"), "ptpair.analysis.metrics"),
    **dict.fromkeys(("Config", "Machine", "Result"), "ptpair.sim.machine"),
    "replay": "ptpair.sim.replay",
    **dict.fromkeys(("read_trace", "write_trace", "iter_trace", "write_parquet_chunks"), "ptpair.traces.canonical"),
    **dict.fromkeys(("detect", "read_any"), "ptpair.traces.readers"),
    **dict.fromkeys(("bundled_traces", "corpus", "default_traces", "synth_spec"), "ptpair.traces.sources"),
    **dict.fromkeys(("ReportParams", "collect", "grid_inputs"), "ptpair.analysis.experiments"),
    **dict.fromkeys(("stats_table", "seed_runs", "recording_runs"), "ptpair.analysis.stats"),
    "min_memory": "ptpair.analysis.minmem",
    "report": "ptpair.reports.build",
    **dict.fromkeys(("Trace", "TraceError", "encode"), "ptpair.traces.format"),
    **dict.fromkeys(("WORKLOADS", "Params", "synth", "workload_params"), "ptpair.traces.synth"),
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))


__all__ = [*_WHERE]
