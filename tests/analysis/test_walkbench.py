"""walkbench on traces whose VMMs end without 4-KiB pages (analysis/walkbench.py).

A VMM that unmapped all its pages, or maps only huge pages, still has an EPT under every
scheme, so it is among the processes compared; it has no 4-KiB page to look up and no
extent for the range operation, and must be left out of the walks (it used to make the
range operation take the minimum of an empty array)."""

import pytest

from ptpair.analysis.walkbench import walkbench, walkbench_sweep
from ptpair.traces.canonical import read_trace

SMALL = dict(repeats=3, warmup=1, lookups=64)
MEMORY_PAGES = 1 << 14  # 64 MiB

# pid 1 keeps three 4-KiB pages; pid 2 maps two and unmaps them; pid 3 maps one 2 MiB page
CSV = """\
pid,op,va,length,arg,order,page_size
1,spawn,,,,,
1,vmm,,,,,
1,map,0x400000,0x3000,,,
2,spawn,,,,,
2,vmm,,,,,
2,map,0x400000,0x2000,,,
2,unmap,0x400000,0x2000,,,
3,spawn,,,,,
3,vmm,,,,,
3,map,0x40000000,0x200000,,,2097152
"""


def _trace(tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_text(text)
    return read_trace(path)


def test_vmms_without_4k_pages_are_skipped(tmp_path):
    out = walkbench_sweep(_trace(tmp_path, CSV), schemes=("pair", "separate"), memories=(MEMORY_PAGES,), **SMALL)
    run, = out["runs"]
    assert run["processes"] == 1 and run["addresses"] == 3
    for s in ("pair", "separate"):
        assert run["schemes"][s]["range_pages"] == 3
        assert run["schemes"][s]["sequential"]["ns_per_lookup"] > 0


def test_no_4k_page_to_walk_is_a_clear_error(tmp_path):
    text = "\n".join(line for line in CSV.splitlines() if not line.startswith("1,")) + "\n"
    with pytest.raises(ValueError, match="no 4-KiB pages mapped at the end of the trace"):
        walkbench(_trace(tmp_path, text), schemes=("pair", "separate"), memory_pages=MEMORY_PAGES, **SMALL)
