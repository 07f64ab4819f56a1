"""The recorded corpus: its manifest is true, its raw logs convert to exactly its
canonical traces, and every trace replays under every scheme."""

import hashlib
import lzma
from pathlib import Path

import numpy as np
import pytest

from ptpair import api
from ptpair.traces import sources
from ptpair.traces.format import OP_CODE
from ptpair.traces.freemap import read_freemap

CORPUS = api.corpus()
SCHEMES = ["pair", "separate", "separate-eager", "pair-on-vmm", "separate-lazy"]
ROOT = Path(__file__).resolve().parents[2] / "traces" / "corpus"


def test_what_the_report_reads_is_installed():
    """A non-editable install (the README's main job) carries only package-data: every
    corpus file the report reads must match one of its patterns."""
    import tomllib
    from fnmatch import fnmatch

    patterns = tomllib.loads((ROOT.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["ptpair.traces"]
    needed = [f"corpus/{t['file']}" for t in CORPUS] + [f"corpus/{t['vmpte']}" for t in CORPUS if "vmpte" in t]
    needed += [f"corpus/{m['file']}" for m in sources.freemaps()] + ["corpus/MANIFEST"]
    assert [f for f in needed if not any(fnmatch(f, p) for p in patterns)] == []


def test_manifest_describes_every_file():
    assert {t["recorder"] for t in CORPUS} == {"strace", "perf kmem", "merge", "snapshot", "perf"}
    on_disk = {p.name for p in ROOT.glob("*.parquet")}
    maps = sources.freemaps()
    assert on_disk == {t["file"] for t in CORPUS} | {m["file"] for m in maps}
    for m in maps:
        assert hashlib.sha256(Path(m["path"]).read_bytes()).hexdigest() == m["sha256"], m["name"]
        fm = read_freemap(m["path"])
        assert (fm.frames, fm.counts()["free"]) == (m["frames"], m["free_frames"])
    for t in CORPUS:
        data = Path(t["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == t["sha256"], t["name"]
        assert len(api.read_trace(t["path"])) == t["events"]
        for key in ("command", "date", "kernel"):
            assert t[key]
        if "raw" in t:
            assert hashlib.sha256((ROOT / t["raw"]).read_bytes()).hexdigest() == t["raw_sha256"]


def _events(trace):
    return np.stack([trace.pid, trace.op, trace.va, trace.length, trace.arg, trace.order])


@pytest.mark.parametrize("t", [t for t in CORPUS if t.get("raw", "").endswith(".xz")], ids=lambda t: t["name"])
def test_raw_logs_convert_to_the_corpus_traces(t, tmp_path):
    raw = tmp_path / Path(t["raw"]).stem
    raw.write_bytes(lzma.decompress((ROOT / t["raw"]).read_bytes()))
    got = api.read_any(raw)
    want = api.read_trace(t["path"])
    assert np.array_equal(_events(got), _events(want))


@pytest.mark.parametrize("t", [t for t in CORPUS if t["recorder"] == "perf"], ids=lambda t: t["name"])
def test_perf_recordings_replay_to_their_vmpte_samples(t):
    """The page tables of each process replayed up to each VmPTE sample's moment (under
    --kernel linux) equal the kernel's own VmPTE then, within 2 % for at least 95 % of
    the samples (those of processes the trace holds at that moment)."""
    from ptpair.analysis.vmpte import agreement, check_vmpte, read_samples

    checked = check_vmpte(api.read_trace(t["path"]), read_samples(ROOT / t["vmpte"]))
    a = agreement(checked)
    assert a["samples"] >= 2 and a["share_within"] >= 0.95, checked.to_string()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("t", CORPUS, ids=lambda t: t["name"])
def test_every_corpus_trace_replays_under_every_scheme(t, scheme):
    trace = api.read_trace(t["path"])
    r = api.replay(trace, api.Config(scheme, "address", 1 << 20))
    assert r.events == len(trace) and sum(r.alloc_failures) == 0
    has_maps = (trace.op == OP_CODE["map"]).any()
    assert (r.peak["kpt_pages"] > 0) == bool(has_maps)
    if scheme in ("pair", "separate-eager"):
        # no VMMs in real traces: every EPT page is waste, as many as KPT pages
        assert r.peak["ept_pages"] == r.peak["kpt_pages"] == r.peak["wasted_ept_pages"]


def test_snapshot_in_the_corpus_matches_its_recorded_vmpte():
    import pandas as pd

    (t,) = [t for t in CORPUS if t["recorder"] == "snapshot"]
    v = pd.read_csv(ROOT / t["raw"])
    last = v[v["snapshot"] == v["snapshot"].max()]
    lv = api.replay(api.read_trace(t["path"]), api.Config("separate", "address", 1 << 20)).final["kpt_pages_by_level"]
    assert last["vmpte_kb"].sum() == 4 * (lv["pml3"] + lv["pml2"] + lv["pml1"])
