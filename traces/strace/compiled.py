"""The compiled strace reader's Python side: files -> call arrays -> events -> Trace.

Each file's bytes go through the compiled scanner (scan.py) into call arrays; the files
of `strace -ff` are merged by time; tids become indexes into one sorted array of pids;
the compiled model (compiled_model.py) turns the calls into canonical rows. Wherever
either compiled part gives up, `read` returns None and the reference reader (lines.py +
model.py) reads the whole log, so that every error is worded in one place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ptpair.traces.format import Trace
from ptpair.traces.strace import compiled_model as cm
from ptpair.traces.strace import scan as sc
from ptpair.traces.strace.lines import (BAD_EXIT, BAD_NO_RESULT, BAD_NOT_STRACE, BAD_TRUNCATED, LineReader,
                                        ff_pid)
from ptpair.traces.strace.model import DROPPED_HIGH
from ptpair.traces.strace.scan_words import CLONE3, FORK

# the scanner's reason codes -> Trace.skipped's keys (the reference reader's words)
_REASONS = {sc.BAD_NOT_STRACE: BAD_NOT_STRACE, sc.BAD_EXIT: BAD_EXIT, sc.BAD_TRUNCATED: BAD_TRUNCATED,
            sc.BAD_NO_RESULT: BAD_NO_RESULT}


def _scan_file(data: bytes, source: str, file_tid: int | None, lenient: bool):
    """The calls of one file's bytes as arrays (scan.py), with the lines skipped by
    `lenient` counted by reason and the first of them as `LineReader` reports it ((line,
    message) or None). None where the compiled reader leaves the file to Python."""
    size = data.count(b"\n") + 2  # a call per line at most, plus the last line unended
    calls = sc.new_calls(size)
    bad = sc.new_bad_lines(size if lenient else 1)  # (strict: the first bad line gives up, nothing is recorded)
    status, k, nb = sc.scan(np.frombuffer(data, dtype=np.uint8), -1 if file_tid is None else file_tid, lenient,
                            calls, bad)
    if status != sc.OK:
        return None
    skipped, first_bad = {}, None
    if nb:
        codes, counts = np.unique(bad.reason[:nb], return_counts=True)
        skipped = {_REASONS[int(c)]: int(n) for c, n in zip(codes, counts)}
        # the first skipped line's message, as `feed` words it: the line alone says it all
        # (a resumed call without a result has none without its start either)
        line, pos = int(bad.line[0]), int(bad.pos[0])
        end = data.find(b"\n", pos)
        lp = LineReader(source, file_tid, True)
        lp.feed(line, data[pos: len(data) if end < 0 else end].decode(), last=end < 0)
        if lp.first_bad is None or lp.first_bad[0] != line:
            return None
        first_bad = lp.first_bad
    return {key: v[:k] for key, v in calls._asdict().items()}, skipped, first_bad


def read(paths: list, populate, lenient: bool = False) -> Trace | None:
    """The files scanned into call arrays, merged by time, the process model run over
    them (`populate` already checked: "all", "none" or a fraction). None where either
    part leaves the log to the reference reader."""
    paths = [Path(p) for p in paths]
    parts, skipped, first_bad = [], {}, None
    for p in paths:
        try:
            data = p.read_bytes()
        except OSError:
            return None
        scanned = _scan_file(data, str(p), ff_pid(p, len(paths) > 1), lenient)
        if scanned is None:
            return None
        part, part_skipped, part_first_bad = scanned
        parts.append(part)
        for reason, n in part_skipped.items():
            skipped[reason] = skipped.get(reason, 0) + n
        first_bad = first_bad or part_first_bad
    calls = parts[0]
    if len(parts) > 1:
        calls = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
        if np.isnan(calls["time"]).any():
            return None  # Python names the error
        order = np.argsort(calls["time"], kind="stable")
        calls = {key: v[order] for key, v in calls.items()}
    forks = ((calls["name"] >= FORK) & (calls["name"] <= CLONE3) & ~calls["failed"] & ~calls["retnone"]
             & (calls["ret"] > 0))
    ids = np.unique(np.concatenate([calls["tid"], calls["ret"][forks]]))
    child = np.full(len(forks), -1, dtype=np.int64)
    child[forks] = np.searchsorted(ids, calls["ret"][forks])
    if populate == "all":
        mode, frac = cm.POPULATE_ALL, 1.0
    elif populate == "none":
        mode, frac = cm.POPULATE_NONE, 1.0
    else:
        mode, frac = cm.POPULATE_FRACTION, float(populate)
    status, rows, times, dropped = cm.model(
        np.searchsorted(ids, calls["tid"]), calls["name"].astype(np.int64), calls["time"], calls["line"],
        calls["ret"], calls["retnone"], calls["failed"], calls["args"], calls["flags"], calls["clone"], child,
        ids, mode, frac)
    if status != cm.OK:
        return None
    trace = Trace.from_columns(source=str(paths[0]), pid=rows[:, cm.R_PID].copy(),
                               op=rows[:, cm.R_OP].astype(np.int8), va=rows[:, cm.R_VA].copy(),
                               length=rows[:, cm.R_LEN].copy(), arg=rows[:, cm.R_ARG].copy(), time=times)
    trace.lines = rows[:, cm.R_LINE].copy()
    trace.skipped = {**skipped, **({DROPPED_HIGH: int(dropped)} if dropped else {})}
    trace.first_bad = first_bad
    return trace
