"""The synthetic ager (traces/ager.py): its text form, exact free counts, the order-9
unusable free space index it reaches, and the index itself against hand-computed cases
and analysis/frag.py (Linux's integer formula)."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptpair.analysis import frag
from ptpair.traces import ager as A
from ptpair.traces.freemap import FREE, HOLE, USED, aligned_blocks

PB = A.PAGEBLOCK_FRAMES
BIG = 1 << 20  # 4 GiB

fractions_open = st.floats(min_value=0, max_value=1, exclude_min=True, exclude_max=True)
fractions_closed = st.floats(min_value=0, max_value=1)


# --- the text form --------------------------------------------------------------------
def test_spec_text_is_canonical():
    assert A.AgerSpec(0.3, 0.5, 1).spec() == "synthetic:free=0.3,unusable=0.5,seed=1"
    assert A.AgerSpec(0.25, 0, 0).spec() == "synthetic:free=0.25,unusable=0.0,seed=0"
    assert A.parse_ager("synthetic:seed=7,unusable=1,free=0.1") == A.AgerSpec(0.1, 1.0, 7)
    assert A.is_ager("synthetic:free=0.1,unusable=1,seed=7") and not A.is_ager("map.parquet")


@given(fractions_open, fractions_closed, st.integers(min_value=0, max_value=2**64))
def test_spec_round_trip(free, unusable, seed):
    s = A.AgerSpec(free, unusable, seed)
    assert A.parse_ager(s.spec()) == s
    assert A.parse_ager(s.spec()).spec() == s.spec()


@pytest.mark.parametrize("text, message", [
    ("synthetic:free=1.5,unusable=0.5,seed=1", "free must be a fraction in (0, 1), got 1.5"),
    ("synthetic:free=0,unusable=0.5,seed=1", "free must be a fraction in (0, 1), got 0.0"),
    ("synthetic:free=nan,unusable=0.5,seed=1", "free must be a fraction in (0, 1), got nan"),
    ("synthetic:free=0.3,unusable=1.01,seed=1", "unusable must be a fraction in [0, 1], got 1.01"),
    ("synthetic:free=0.3,unusable=-0.1,seed=1", "unusable must be a fraction in [0, 1], got -0.1"),
    ("synthetic:free=0.3,unusable=0.5,seed=-1", "seed must be an integer >= 0, got '-1'"),
    ("synthetic:free=0.3,unusable=0.5,seed=1.5", "seed must be an integer >= 0, got '1.5'"),
    ("synthetic:free=lots,unusable=0.5,seed=1", "free must be a number, got 'lots'"),
    ("synthetic:free=0.5,unusable=half,seed=1", "unusable must be a number, got 'half'"),
    ("synthetic:free=0.3,unusable=0.5,seed=1,size=4", "unknown key 'size'; known keys: free, unusable, seed"),
    ("synthetic:free=0.3,free=0.4,unusable=0.5,seed=1", "free given twice"),
    ("synthetic:free=0.3,seed=1", "missing unusable"),
    ("synthetic:", "'' is not key=value"),
    ("synthetic:free=0.3,unusable,seed=1", "'unusable' is not key=value"),
    ("synthetic:free=0.3,unusable=,seed=1", "'unusable=' is not key=value"),
    ("free=0.3,unusable=0.5,seed=1", "expected text starting with 'synthetic:'"),
])
def test_parse_errors_say_what_to_fix(text, message):
    with pytest.raises(ValueError) as e:
        A.parse_ager(text)
    assert str(e.value).startswith("synthetic ager: " + message)
    assert "synthetic:free=F,unusable=U,seed=S" in str(e.value)


@pytest.mark.parametrize("args", [(1, 0.5, 0), (0.5, 2, 0), (0.5, 0.5, -3), (0.5, 0.5, 1.0), (True, 0.5, 0),
                                  ("0.5", 0.5, 0)])
def test_spec_checks_its_fields(args):
    with pytest.raises(ValueError, match="synthetic ager"):
        A.AgerSpec(*args)


# --- the map --------------------------------------------------------------------------
def test_same_inputs_same_bytes_other_seed_other_map():
    a = A.age(BIG, A.AgerSpec(0.3, 0.5, 1))
    assert a.dtype == np.uint8 and len(a) == BIG
    assert np.array_equal(a, A.age(BIG, A.AgerSpec(0.3, 0.5, 1)))
    b = A.age(BIG, A.AgerSpec(0.3, 0.5, 2))
    assert (a != b).sum() > BIG // 10


def test_same_bytes_in_another_process():
    """No dependence on Python's hash randomisation or process state."""
    code = ("import hashlib; from ptpair.traces.ager import age, parse_ager; "
            "print(hashlib.sha256(age(100_000, parse_ager('synthetic:free=0.4,unusable=0.6,seed=9'))"
            ".tobytes()).hexdigest())")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    here = hashlib.sha256(A.age(100_000, A.parse_ager("synthetic:free=0.4,unusable=0.6,seed=9")).tobytes())
    assert out.stdout.strip() == here.hexdigest()


@settings(deadline=None, max_examples=300)
@given(st.integers(min_value=0, max_value=6 * PB + 7), fractions_open, fractions_closed,
       st.integers(min_value=0, max_value=1000))
def test_exact_free_count_and_only_free_or_used(n, free, unusable, seed):
    s = A.age(n, A.AgerSpec(free, unusable, seed))
    assert len(s) == n and s.dtype == np.uint8
    assert set(np.unique(s).tolist()) <= {FREE, USED} and HOLE not in s
    assert (s == FREE).sum() == round(free * n)


@pytest.mark.parametrize("n", [BIG, BIG + 300, 3 * BIG // 2 + 1])
@pytest.mark.parametrize("free", [0.01, 0.1, 0.3, 0.6, 0.9, 0.999])
def test_exact_free_count_large(n, free):
    assert (A.age(n, A.AgerSpec(free, 0.4, 3)) == FREE).sum() == round(free * n)


@pytest.mark.parametrize("free", [0.1, 0.3, 0.6])
@pytest.mark.parametrize("unusable", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_index_reaches_the_target(free, unusable):
    s = A.age(BIG, A.AgerSpec(free, unusable, 11))
    assert abs(A.unusable_index(s) - unusable) < 0.02
    # and the same with a trailing partial pageblock
    s = A.age(BIG + 333, A.AgerSpec(free, unusable, 11))
    assert abs(A.unusable_index(s) - unusable) < 0.02


@pytest.mark.parametrize("free, unusable", [(0.95, 0.95), (0.99, 0.5), (0.5, 0.999), (0.3, 0.0)])
def test_only_the_chosen_pageblocks_are_wholly_free(free, unusable):
    """Dense free runs never cover a pageblock by chance: every pageblock but the W the
    construction chose keeps a used frame, and the 2 MiB blocks are exactly those W."""
    s = A.age(BIG, A.AgerSpec(free, unusable, 5))
    n_free = round(free * BIG)
    w = round((1 - unusable) * n_free / PB)
    rows = s.reshape(-1, PB)
    wholly_free = (rows == FREE).all(axis=1)
    assert wholly_free.sum() == w
    assert ((rows[~wholly_free] == USED).sum(axis=1) >= 1).all()
    b = aligned_blocks(s)
    assert b[9] + 2 * b[10] == w
    assert A.unusable_index(s) == pytest.approx((n_free - w * PB) / n_free, abs=1e-12)


def test_unreachable_targets_get_as_close_as_possible():
    # U = 0: all free memory would have to be whole pageblocks; 205 frames are left over
    s = A.age(BIG, A.AgerSpec(0.3, 0.0, 1))
    n_free = round(0.3 * BIG)
    assert A.unusable_index(s) == pytest.approx((n_free % PB) / n_free, abs=1e-12)
    # U = 1 with almost everything free: the free frames cannot all fit beside one used
    # frame per pageblock, so the fewest whole free pageblocks that make room are taken
    s = A.age(BIG, A.AgerSpec(0.999, 1.0, 1))
    n_free = round(0.999 * BIG)
    w = n_free - (PB - 1) * (BIG // PB)
    assert w > 0 and A.unusable_index(s) == pytest.approx((n_free - w * PB) / n_free, abs=1e-12)
    assert (s.reshape(-1, PB) == FREE).all(axis=1).sum() == w


@pytest.mark.parametrize("n", [0, 1, 100, 511, 512, 513, 1000, 1535])
def test_small_memories(n):
    for free in (0.01, 0.5, 0.99):
        s = A.age(n, A.AgerSpec(free, 0.0, 4))
        assert (s == FREE).sum() == round(free * n)
        # no whole pageblock, or too few free frames for one: all free memory unusable
        if n < PB or round(free * n) < PB:
            assert A.unusable_index(s) == 1.0


def test_bad_frame_counts():
    for n in (-1, 2.5, True):
        with pytest.raises(ValueError, match="n_frames must be an integer >= 0"):
            A.age(n, A.AgerSpec(0.5, 0.5, 0))


# --- the index ------------------------------------------------------------------------
def test_unusable_index_hand_computed():
    s = np.full(4 * PB, USED, np.uint8)
    s[PB:2 * PB] = FREE  # one aligned order-9 block
    s[[3, 10, 3 * PB + 100]] = FREE  # three single frames
    assert A.unusable_index(s) == (515 - 512) / 515
    assert A.unusable_index(s, order=0) == 0.0
    # order 8: suitable = 2 halves of the order-9 block -> (515 - 512) / 515 as well
    assert A.unusable_index(s, order=8) == (515 - 512) / 515
    assert A.unusable_index(s, order=10) == 1.0
    s[:PB] = FREE  # frames 0..1023 free: one order-10 block, 2 order-9 blocks' worth
    assert A.unusable_index(s) == 1 / (1024 + 1)


def test_unusable_index_of_blocks():
    assert A.unusable_index_of_blocks([4] + [0] * 10, 0) == 0.0
    assert A.unusable_index_of_blocks([4] + [0] * 10, 1) == 1.0
    assert A.unusable_index_of_blocks([0] * 10 + [1]) == 0.0
    assert A.unusable_index_of_blocks([2, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0], 9) == 4 / 516
    assert A.unusable_index_of_blocks([0] * 11) == 1.0  # nothing free: Linux's 1000
    with pytest.raises(ValueError, match="order 11 is outside 0..10"):
        A.unusable_index_of_blocks([0] * 11, 11)


def test_unusable_index_agrees_with_linux_formula():
    """analysis/frag.py computes mm/vmstat.c's integer index (x1000, truncated)."""
    rng = np.random.default_rng(0)
    for free, unusable in [(0.2, 0.4), (0.5, 0.8), (0.05, 0.05)]:
        s = A.age(8 * PB + 77, A.AgerSpec(free, unusable, int(rng.integers(1000))))
        b = aligned_blocks(s)
        linux = frag.unusable_index(b)
        for order in range(11):
            ours = A.unusable_index(s, order)
            assert int(linux[order]) <= ours * 1000 < int(linux[order]) + 1
