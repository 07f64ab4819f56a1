"""The perf kmem reader: pairing of allocations and frees, the counted cases, errors,
and a real recording where perf can trace."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ptpair.traces.format import OPS, TraceError
from ptpair.traces.kmem import read_kmem

DATA = Path(__file__).resolve().parents[1] / "data" / "kmem"
SMALL = DATA / "small.txt"


def rows(t):
    return [(OPS[o], int(p), int(a), int(k)) for o, p, a, k in zip(t.op, t.pid, t.arg, t.order)]


def test_allocations_and_frees_pair_by_pfn():
    t = read_kmem(SMALL)
    # line 1 alloc pfn 0x100000 (handle 0) freed at line 3; line 4 repeats that free
    # (mm_page_free_batched); line 5 frees a page allocated before the recording;
    # line 6 allocates pfn 0x100001 again while line 2's allocation is live (a lost
    # free): both stay, line 8 frees the newer one; line 7 failed; line 9 is never freed
    assert rows(t) == [("kalloc", 3324, 0, 0), ("kalloc", 3324, 1, 2), ("kfree", 17, 0, 0),
                       ("kalloc", 3324, 5, 0), ("kfree", 3324, 5, 0), ("kalloc", 3324, 8, 9)]
    assert t.skipped == {"unmatched_frees": 1, "repeated_frees": 1, "lost_frees": 1, "failed allocations": 1}
    assert t.lines.tolist() == [1, 2, 3, 6, 8, 9]
    assert t.migratetype.tolist() == [1, 0, 0, 2, 0, 1]  # 4 (CMA) -> movable
    assert t.gfp_flags[1] == "GFP_KERNEL_ACCOUNT|__GFP_ZERO" and t.comm[2] == "kworker/0:1"


def test_replay_of_a_kmem_trace_holds_what_was_not_freed():
    from ptpair import api

    r = api.replay(read_kmem(SMALL), api.Config("pair", "address", 1 << 12))
    assert r.final["kalloc_pages"] == 4 + 512  # the order-2 block whose free was lost, the order-9 block
    assert r.skipped_lines["unmatched_frees"] == 1


def test_bad_kmem_lines_are_located(tmp_path):
    lines = SMALL.read_text().splitlines(keepends=True)
    bad = tmp_path / "bad.txt"
    bad.write_text("".join(lines[:2]) + lines[2].replace("order=0", "order=12"))
    with pytest.raises(TraceError, match=r"bad\.txt:3: order outside 0\.\.10"):
        read_kmem(bad)
    cut = tmp_path / "cut.txt"
    cut.write_text("".join(lines[:3]) + lines[3][:50])
    with pytest.raises(TraceError, match=r"cut\.txt:4: truncated last line"):
        read_kmem(cut)
    t = read_kmem(cut, lenient=True)
    assert t.skipped["truncated line"] == 1 and len(t) == 3
    garbled = tmp_path / "garbled.txt"
    garbled.write_text(lines[0] + "   bash 3324 [000] kmem:mm_page_alloc: pfn=zz\n")
    with pytest.raises(TraceError, match=r"garbled\.txt:2:"):
        read_kmem(garbled)


def test_convert_detects_kmem(tmp_path):
    out = tmp_path / "k.csv"
    p = subprocess.run([sys.executable, "-m", "ptpair", "convert", SMALL, "-o", out], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "unmatched_frees: 1" in p.stderr
    head = out.read_text().splitlines()[0]
    assert "migratetype" in head and "gfp_flags" in head


def _perf_can_trace() -> bool:
    if shutil.which("perf") is None:
        return False
    p = subprocess.run(["perf", "record", "-q", "-k", "mono", "-e", "kmem:mm_page_alloc", "-a", "-o", "/dev/null",
                        "--", "true"], capture_output=True)
    return p.returncode == 0


@pytest.mark.skipif(not _perf_can_trace(), reason="perf cannot trace kmem tracepoints here")
def test_record_kmem_of_a_real_command(tmp_path):
    out = tmp_path / "k.parquet"
    p = subprocess.run([sys.executable, "-m", "ptpair", "record", "kmem", "-o", out, "--", sys.executable, "-c",
                        "x = bytearray(8 << 20)"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    from ptpair import api

    t = api.read_trace(out)
    assert len(t) > 100 and t.gfp_flags is not None
    r = api.replay(t, api.Config("pair", "address", 1 << 20, "linux", "empty"))
    assert sum(r.alloc_failures) == 0 and r.final["kalloc_pages"] > 0


@pytest.mark.parametrize("lenient", [False, True])
def test_a_log_scanned_in_two_halves_reads_as_one(tmp_path, monkeypatch, lenient):
    """Large logs are scanned as two halves on two threads: the same trace, line numbers,
    strings and counts as one pass, wherever the cut falls (here: every small log, and one
    with bad lines in both halves)."""
    import lzma

    import numpy as np

    from ptpair.traces import kmem

    raw = Path(__file__).resolve().parents[2] / "traces" / "corpus" / "raw" / "make-j4-kmem.kmem.txt.xz"
    lines = lzma.decompress(raw.read_bytes()).decode().splitlines(keepends=True)[:4000]
    if lenient:  # bad lines on both sides of the middle
        lines[100] = "junk kmem:mm_page_alloc: nonsense\n"
        lines[3000] = lines[3000].replace("pfn=", "pfn=zz")
    p = tmp_path / "k.txt"
    p.write_text("".join(lines))

    def read():
        t = read_kmem(p, lenient=lenient)
        return ([getattr(t, c).tolist() for c in ("pid", "op", "arg", "order", "migratetype", "time", "lines")]
                + [list(t.comm), list(t.gfp_flags), t.skipped, t.first_bad])

    whole = read()
    monkeypatch.setattr(kmem, "PARALLEL_BYTES", 1)
    assert read() == whole
    assert np.isfinite(whole[5]).all() and len(whole[0]) > 1000
