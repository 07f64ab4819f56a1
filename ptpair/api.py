"""The Python API: what the command line does, callable from a notebook.

    >>> from ptpair import api
    >>> trace = api.synth("mixed", seed=1, events=5000)
    >>> api.replay(trace, scheme="pair").final["ept_pages"]      # doctest: +SKIP
    >>> table, results = api.compare(trace)                     # a pandas DataFrame
"""

from __future__ import annotations

from ptpair.analysis.compare import compare, compare_results
from ptpair.sim.machine import Config, Machine, Result
from ptpair.sim.replay import replay
from ptpair.traces.canonical import read_trace, write_trace
from ptpair.traces.format import Trace, TraceError, encode
from ptpair.traces.synth import WORKLOADS, Params, synth, workload_params

__all__ = [
    "Config", "Machine", "Params", "Result", "Trace", "TraceError", "WORKLOADS", "compare",
    "compare_results", "encode", "read_trace", "replay", "synth", "workload_params", "write_trace",
]
