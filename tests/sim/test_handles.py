"""The kalloc handle table (sim/handles.py) against a dict."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ptpair.sim.handles import grown, h_delete, h_find, h_insert, new_handles


@settings(max_examples=100, deadline=None, derandomize=True)
@given(ops=st.lists(st.tuples(st.booleans(), st.one_of(st.integers(0, 30), st.integers(-(1 << 40), 1 << 40))),
                    max_size=200))
def test_handles_keep_their_blocks_through_deletes_and_growth(ops):
    """Every live handle finds its own block (frame, order, state), whatever was deleted
    around it (backward shift moves entries and their values) and however often the
    table grew."""
    hs = new_handles(4)
    ref = {}
    for n, (add, key) in enumerate(ops):
        if add and key not in ref:
            if 2 * (len(ref) + 1) > len(hs.key):
                hs = grown(hs, 2 * len(hs.key))
            i = h_insert(hs, key)
            hs.frame[i], hs.order[i], hs.state[i] = n, n % 11, 1 + n % 2
            ref[key] = (n, n % 11, 1 + n % 2)
        elif not add and key in ref:
            h_delete(hs, h_find(hs, key))
            del ref[key]
        assert h_find(hs, key) >= 0 if key in ref else h_find(hs, key) == -1
    for key, block in ref.items():
        i = h_find(hs, key)
        assert (int(hs.frame[i]), int(hs.order[i]), int(hs.state[i])) == block
    assert int(hs.used.sum()) == len(ref) and int((hs.state != 0).sum()) == len(ref)
