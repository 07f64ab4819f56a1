"""Where traces come from: files, the traces bundled with ptpair, the recorded corpus, and
synthetic workloads named by a text spec.

A *source* is a string: a path, or `synth:WORKLOAD?seed=S&events=N[&param=value...]`
(`synth_spec`), so that an experiment can name its traces in a form a worker process or a
manifest can carry, and regenerate a synthetic trace instead of shipping it.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

SYNTH_PREFIX = "synth:"


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


def freemaps() -> list[dict]:
    """The recorded free maps of the corpus (MANIFEST [[freemap]]): one dict each with its
    `path`, command, date, kernel and sha256."""
    import tomllib
    from importlib.resources import files

    root = files("ptpair.traces").joinpath("corpus")
    manifest = tomllib.loads(root.joinpath("MANIFEST").read_text())
    return [{**m, "path": root.joinpath(m["file"])} for m in manifest.get("freemap", [])]


def vmpte_recordings() -> list[dict]:
    """The corpus's `record perf` recordings with VmPTE samples beside them (MANIFEST
    `vmpte`): one dict each with its `name`, trace `path` and `samples` path."""
    from importlib.resources import files

    root = files("ptpair.traces").joinpath("corpus")
    return [{"name": t["name"], "path": str(t["path"]), "samples": str(root.joinpath(t["vmpte"]))}
            for t in corpus() if t.get("vmpte")]


def warmup_trace() -> str | None:
    """The corpus trace that ages memory in the report (MANIFEST `warmup = true`: the perf
    kmem trace, the whole machine's allocations), or None."""
    return next((str(t["path"]) for t in corpus() if t.get("warmup")), None)


def default_freemap() -> str | None:
    """The corpus's recorded free map (the first of MANIFEST [[freemap]]), or None."""
    maps = freemaps()
    return str(maps[0]["path"]) if maps else None


def default_traces() -> dict:
    """The bundled traces (synthetic presets, seed 1) and the recorded corpus, by name."""
    out = {Path(p).name.split(".")[0]: str(p) for p in bundled_traces()}
    out.update({t["name"]: str(t["path"]) for t in corpus() if t.get("report", True)})
    return out


def name_traces(paths) -> dict:
    """name -> absolute path for trace files: the file name without extensions, made unique."""
    out = {}
    for p in paths:
        base = Path(p).name.split(".")[0] or "trace"
        name, k = base, 2
        while name in out:
            name, k = f"{base}-{k}", k + 1
        out[name] = str(Path(p).resolve())
    return out


def synth_spec(workload: str, seed: int, events: int, params: dict | None = None) -> str:
    """A source that names a synthetic workload instead of a file:
    'synth:mixed?seed=1&events=5000[&name=value...]' (parameters sorted)."""
    items = [("seed", seed), ("events", events)] + sorted((params or {}).items())
    return SYNTH_PREFIX + workload + "?" + "&".join(f"{k}={v}" for k, v in items)


def workload_of(source: str) -> str | None:
    """The synthetic workload a source is a seed of: for a `synth:` spec its workload, for
    a bundled preset file its name; a recorded trace has none."""
    if source.startswith(SYNTH_PREFIX):
        return source[len(SYNTH_PREFIX):].split("?", 1)[0]
    bundled = {str(Path(p).resolve()) for p in bundled_traces()}
    return Path(source).name.split(".")[0] if str(Path(source).resolve()) in bundled else None


@functools.lru_cache(maxsize=64)  # every input of an experiment stays read (the corpus is small)
def load(source: str):
    """The Trace of a source: a file in any format ptpair reads, or a `synth_spec`."""
    if source.startswith(SYNTH_PREFIX):
        from ptpair.traces.synth import synth

        workload, _, query = source[len(SYNTH_PREFIX):].partition("?")
        kv = dict(item.split("=", 1) for item in query.split("&") if item)
        seed, events = int(kv.pop("seed")), int(kv.pop("events"))
        return synth(workload, seed=seed, events=events, **{k: float(v) for k, v in kv.items()})
    from ptpair.traces.readers import read_any

    return read_any(source)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def source_sha256(source: str) -> str:
    """A file's sha256; for a synthetic source, that of its canonical CSV as `ptpair synth`
    would write it (the trace is regenerated from its spec, deterministically)."""
    if not source.startswith(SYNTH_PREFIX):
        return file_sha256(source)
    import tempfile

    from ptpair.traces.canonical import write_trace

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "t.csv"
        write_trace(load(source), f)
        return file_sha256(f)
