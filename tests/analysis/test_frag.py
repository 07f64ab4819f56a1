"""Linux's fragmentation indices: hand-computed cases and the live kernel's own files."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ptpair.analysis.frag import (
    blocks_allocatable, debugfs_lines, fragmentation_index, largest_free_order, unusable_index,
)
from ptpair.traces.record import parse_buddyinfo

DMA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 3]  # 256 + 512 + 3 * 1024 = 3840 free pages


def test_unusable_index_hand_computed():
    # order 9: suitable = 1 + 3*2 = 7 blocks = 3584 pages -> (3840-3584)*1000//3840 = 66
    # order 10: 3 blocks = 3072 pages -> 768000 // 3840 = 200 (the note's checked values)
    assert unusable_index(DMA).tolist() == [0] * 9 + [66, 200]
    assert unusable_index([0] * 11).tolist() == [1000] * 11  # no free memory: all unusable
    # four free single pages: order 0 fully usable, every higher order unusable
    assert unusable_index([4] + [0] * 10).tolist() == [0] + [1000] * 10


def test_fragmentation_index_hand_computed():
    assert fragmentation_index(DMA).tolist() == [-1000] * 11  # every request would succeed
    assert fragmentation_index([0] * 11).tolist() == [0] * 11  # no free blocks at all
    # 4 free single pages; order 1: 1000 - (1000 + 4*1000//2) // 4 = 1000 - 750 = 250
    # order 2: 1000 - (1000 + 1000) // 4 = 500; order 10: 1000 - (1000 + 3) // 4 = 750
    fi = fragmentation_index([4] + [0] * 10).tolist()
    assert fi[:3] == [-1000, 250, 500] and fi[10] == 750
    # one free order-3 block and nothing else; order 4: 1000 - (1000 + 8000 // 16) // 1 = -500
    # (the kernel's formula goes negative when a single block is too small: kept as is)
    fi = fragmentation_index([0, 0, 0, 1] + [0] * 7).tolist()
    assert fi[:4] == [-1000] * 4 and fi[4] == -500


def test_vectorised_rows_match_single_rows():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 50, size=(40, 11))
    rows[3] = 0
    for f in (unusable_index, fragmentation_index):
        assert np.array_equal(f(rows), np.vstack([f(r) for r in rows]))


def test_helpers():
    assert largest_free_order(DMA) == 10 and largest_free_order([0] * 11) == -1
    assert blocks_allocatable(DMA, 9) == 7 and blocks_allocatable(DMA, 10) == 3


def test_debugfs_layout():
    zones = parse_buddyinfo("Node 0, zone      DMA      0      0      0      0      0      0      0      0"
                            "      1      1      3 \n")
    assert debugfs_lines(zones, "unusable") == [
        "Node 0, zone      DMA 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.066 0.200 "]
    assert debugfs_lines(zones, "extfrag") == ["Node 0, zone      DMA " + "-1.000 " * 11]
    zones = parse_buddyinfo("Node 0, zone   Normal 4 0 0 0 0 0 0 0 0 0 0")
    assert debugfs_lines(zones, "extfrag")[0].split()[4:7] == ["-1.000", "0.250", "0.500"]


def _read(path):
    try:
        return Path(path).read_text()
    except OSError:
        return None


@pytest.mark.skipif(not Path("/sys/kernel/debug/extfrag/unusable_index").exists(),
                    reason="debugfs extfrag files not available (mount debugfs as root to run)")
def test_frag_command_matches_the_running_kernel():
    """Zones whose buddyinfo did not change while the kernel's files were read must agree
    exactly; the DMA zone is static, so at least one zone is always compared."""
    for _ in range(20):
        before = _read("/proc/buddyinfo")
        unusable = _read("/sys/kernel/debug/extfrag/unusable_index")
        extfrag = _read("/sys/kernel/debug/extfrag/extfrag_index")
        after = _read("/proc/buddyinfo")
        if None in (before, unusable, extfrag, after):
            pytest.skip("debugfs files not readable")
        stable = [b == a for b, a in zip(before.splitlines(), after.splitlines())]
        if any(stable):
            break
    zones = parse_buddyinfo(before)
    ours = debugfs_lines(zones, "unusable") + debugfs_lines(zones, "extfrag")
    theirs = unusable.splitlines() + extfrag.splitlines()
    n = len(zones)
    compared = 0
    for i in range(n):
        if stable[i]:
            assert ours[i] == theirs[i]
            assert ours[n + i] == theirs[n + i]
            compared += 1
    assert compared >= 1
    r = subprocess.run([sys.executable, "-m", "ptpair", "frag"], capture_output=True, text=True)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2 * n
