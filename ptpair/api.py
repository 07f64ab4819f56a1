"""The Python API: what the command line does, callable from a notebook.

    >>> from ptpair import api
    >>> trace = api.synth("mixed", seed=1, events=5000)
    >>> api.replay(trace, scheme="pair").final["ept_pages"]      # doctest: +SKIP
    >>> table, results = api.compare(trace)                     # a pandas DataFrame
"""

from __future__ import annotations

from ptpair.analysis.compare import compare, compare_results, results_frame
from ptpair.analysis.metrics import enriched_dict, series_frame, summary
from ptpair.sim.machine import Config, Machine, Result
from ptpair.sim.replay import replay
from ptpair.traces.canonical import read_trace, write_trace
from ptpair.traces.readers import detect, read_any
from ptpair.traces.format import Trace, TraceError, encode
from ptpair.traces.synth import WORKLOADS, Params, synth, workload_params



def bundled_traces() -> list:
    """Paths of the traces shipped with ptpair (synthetic presets, seed 1), sorted."""
    from importlib.resources import files

    return sorted(p for p in files("ptpair.traces").joinpath("data").iterdir() if p.name.endswith(".csv"))


def corpus() -> list[dict]:
    """The recorded corpus (traces/corpus/MANIFEST): one dict per trace with its `path`,
    command, date, kernel, sha256, events and whether the default report includes it."""
    import tomllib
    from importlib.resources import files

    root = files("ptpair.traces").joinpath("corpus")
    manifest = tomllib.loads(root.joinpath("MANIFEST").read_text())
    return [{**t, "path": root.joinpath(t["file"])} for t in manifest["trace"]]


__all__ = [
    "bundled_traces", "corpus", "enriched_dict", "series_frame", "summary",
    "Config", "Machine", "Params", "Result", "Trace", "TraceError", "WORKLOADS", "compare",
    "compare_results", "results_frame", "detect", "encode", "read_any", "read_trace", "replay", "synth", "workload_params", "write_trace",
]
