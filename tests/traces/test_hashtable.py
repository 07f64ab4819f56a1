"""The one open-addressing table (traces/_hashtable.py) against a dict."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ptpair.traces import _hashtable as ht

# keys that collide in a small table, keys far apart, and negative keys (any int64 is a key)
KEYS = st.one_of(st.integers(0, 40), st.integers(-(1 << 63), (1 << 63) - 1), st.integers(-3, 3))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(ops=st.lists(st.tuples(st.sampled_from(["put", "pop", "get"]), KEYS, st.integers(0, 1000)), max_size=300))
def test_int_map_behaves_as_a_dict(ops):
    """Through collisions, deletions by backward shift and growth, the map gives what a
    dict gives (the strace scanner's pending calls use it)."""
    m = ht.new_map(4)  # small: many collisions
    ref = {}
    for op, key, val in ops:
        if op == "put":
            if key not in ref and 2 * (len(ref) + 1) > len(m.key):
                m = ht.map_grown(m)
            ht.map_put(m, key, val)
            ref[key] = val
        elif op == "pop":
            assert ht.map_pop(m, key) == ref.pop(key, -1)
        else:
            assert ht.map_get(m, key) == ref.get(key, -1)
        assert sorted(m.key[m.used == 1].tolist()) == sorted(ref)
        assert 2 * len(ref) <= len(m.key)
    for key, val in ref.items():
        assert ht.map_get(m, key) == val


@settings(max_examples=50, deadline=None, derandomize=True)
@given(keys=st.lists(st.integers(0, 5), max_size=40))
def test_equal_keys_each_get_a_bucket_and_survive_growth(keys):
    """`insert` takes a new bucket for a key already present (the kmem scanner keeps
    strings whose hashes collide that way); a probe from the key's home meets them all."""
    m = ht.new_map(4)
    for n, key in enumerate(keys):
        if 2 * (n + 1) > len(m.key):
            m = ht.map_grown(m)
        m.val[ht.insert(m.key, m.used, key)] = n
    seen = {}
    mask = len(m.key) - 1
    for key in set(keys):
        i = ht.probe(m.key, m.used, key, ht.home(key, mask))
        while m.used[i]:
            seen.setdefault(key, []).append(int(m.val[i]))
            i = ht.probe(m.key, m.used, key, (i + 1) & mask)
    assert {k: sorted(v) for k, v in seen.items()} == {
        k: [n for n, x in enumerate(keys) if x == k] for k in set(keys)}
    assert int(np.sum(m.used)) == len(keys)
