"""One compiled pass that checks a chunk of canonical rows and builds its columns.

Checking a chunk with numpy masks costs a pass over memory per rule. Here every rule of `format.validate` and of the canonical reader is
applied to a row while it is in registers, and the Trace columns are written in the
same pass. The pass only answers "is every row good?": at the first bad row it stops
and returns its index, and the reader falls back to the numpy checks, which then name
the problem (`file:line: ...`) or, leniently, skip and count the bad rows. So the
messages have one source, and this pass must accept exactly the rows those checks
accept -- tests/traces/test_rowcheck.py compares the two on generated tables.

Integer columns arrive as Arrow holds them: int64 values, and a validity bitmap (bit i
of byte i // 8, least significant first, starting at bit `off`) or an empty bitmap
when no cell is null. An absent column is an empty values array (every cell null).

Or, for a large chunk, with its shape in the types: `None` for an absent column's values,
for the bitmap of a column without nulls and for an output array not written. numba then
compiles a version of the pass for that shape with the tests of the other shapes gone
(`_present`, `_value`, `_has`, `_put` are resolved by type when the pass is compiled): on the
allocator stream of issue #21 the pass took some 24 ns a row (pyarrow's defaults) and 29
(ptpair's Parquet) with the shape tested on every row -- the flags spilled to the stack
--, against some 8 ns specialised (docs/performance.md). Each shape is a compile of its
own (a second or two, cached), so traces/columns.py specialises only chunks of
SPECIALISE_ROWS rows or more; smaller ones share the one all-arrays version.
"""

from __future__ import annotations

from numba.core import types
from numba.extending import overload

from ptpair.traces._jit import scanner
from ptpair.traces.format import (MAP_FLAGS_MAX, MAX_ORDER, MIGRATETYPES, OP_DONTNEED, OP_FORK, OP_KALLOC,
                                  OP_KFREE, OP_MAP, OP_RELEASE, OP_RESERVE, OP_UNMAP, PAGE_SIZES, VA_LIMIT)

_PS_4K, _PS_2M, _PS_1G = PAGE_SIZES
_N_MT = len(MIGRATETYPES)
_INT8_MAX = 127


SPECIALISE_ROWS = 1 << 18  # chunks this large get a pass compiled for their shape (the bundled traces do not)


def _present(vals, bits, off, i):
    """Whether cell i holds a value. (The Python body runs only without the JIT; compiled
    code gets the overload below for the arguments' types.)"""
    if vals is None or len(vals) == 0:
        return False
    if bits is None or len(bits) == 0:
        return True
    k = off + i
    return (bits[k >> 3] >> (k & 7)) & 1 != 0


def _value(vals, present, i):
    """Cell i's value, 0 where it is empty."""
    if vals is None or len(vals) == 0:
        return 0
    return vals[i] * present


def _has(vals):
    """Whether a column is present."""
    return vals is not None and len(vals) != 0


def _put(out, i, v):
    """out[i] = v, unless out is not written (None, or empty)."""
    if out is not None and len(out):
        out[i] = v


def _none(t) -> bool:
    return isinstance(t, types.NoneType)


@overload(_present, inline="always")
def _present_by_shape(vals, bits, off, i):
    if _none(vals):  # an absent column
        return lambda vals, bits, off, i: False
    if _none(bits):  # no cell is null
        return lambda vals, bits, off, i: True

    def any_shape(vals, bits, off, i):
        # (branches only on the column's shape, the same for every row: always predicted)
        if len(vals) == 0:
            return False
        if len(bits) == 0:
            return True
        k = off + i
        return (bits[k >> 3] >> (k & 7)) & 1 != 0

    return any_shape


@overload(_value, inline="always")
def _value_by_shape(vals, present, i):
    # (not one helper returning the pair (present, value): numba does not optimise tuple
    # returns away, and the pass was several times slower; docs/performance.md)
    if _none(vals):
        return lambda vals, present, i: 0

    def any_shape(vals, present, i):
        if len(vals) == 0:
            return 0
        return vals[i] * present  # not `if`: whether a cell is empty is data (see check_rows)

    return any_shape


@overload(_has, inline="always")
def _has_by_shape(vals):
    if _none(vals):
        return lambda vals: False
    return lambda vals: len(vals) != 0


@overload(_put, inline="always")
def _put_by_shape(out, i, v):
    if _none(out):
        return lambda out, i, v: None

    def any_shape(out, i, v):
        if len(out):
            out[i] = v

    return any_shape


@scanner
def check_rows(n, op_idx, op_lut, pid, pid_b, pid_o, va, va_b, va_o, ln, ln_b, ln_o, arg, arg_b, arg_o,
               order, order_b, order_o, ps, ps_b, ps_o, mt, mt_b, mt_o,
               out_op, out_pid, out_va, out_ln, out_arg, out_order, out_ps, out_mt):
    """Check rows 0..n-1 and write the Trace columns; the first bad row, or -1.

    op_idx[i] indexes op_lut (op codes, -1 for an unknown name). An empty out_* array
    is not written: the caller uses the column as it is (no empty cells) or zeros. Only
    kalloc and kfree may leave their pid empty (kernel allocations belong to no process:
    format.NEEDS_PID); it is written as 0.

    Rules combine with `&` and `|` (no short circuit) and one branch per row: whether a
    row is a kalloc or a map is data, and branching on it would mispredict about every
    other row on a mixed trace (measured: docs/performance.md)."""
    has_mt = _has(mt)
    for i in range(n):
        op = op_lut[op_idx[i]]
        kalloc = op == OP_KALLOC
        ranged = (op == OP_MAP) | (op == OP_UNMAP) | (op == OP_RESERVE) | (op == OP_RELEASE) | (op == OP_DONTNEED)
        kfree = op == OP_KFREE
        needs_arg = (op == OP_FORK) | kalloc | kfree
        has_pid = _present(pid, pid_b, pid_o, i)
        p = _value(pid, has_pid, i)
        has_va = _present(va, va_b, va_o, i)
        has_ln = _present(ln, ln_b, ln_o, i)
        has_arg = _present(arg, arg_b, arg_o, i)
        has_order = _present(order, order_b, order_o, i)
        a = _value(va, has_va, i)
        length = _value(ln, has_ln, i)
        o = _value(order, has_order, i)
        has_ps = _present(ps, ps_b, ps_o, i)
        s = _value(ps, has_ps, i) + _PS_4K * (not has_ps)  # an empty cell is a base page
        m = _value(mt, _present(mt, mt_b, mt_o, i), i)
        bad = (op < 0) | ((not has_pid) & (not (kalloc | kfree))) | (p < 0)
        # a + length <= VA_LIMIT written so that it cannot overflow
        bad |= ranged & ((not has_va) | (not has_ln) | (length <= 0) | (a < 0) | (a >= VA_LIMIT)
                         | (length > VA_LIMIT - a))
        bad |= needs_arg & (not has_arg)
        # a map's arg holds its flags: 0 anonymous, MAP_FLAGS_MAX (1) file-backed
        bad |= (op == OP_MAP) & ((_value(arg, has_arg, i) < 0) | (_value(arg, has_arg, i) > MAP_FLAGS_MAX))
        bad |= kalloc & ((not has_order) | (o < 0) | (o > MAX_ORDER))
        bad |= (s != _PS_4K) & (s != _PS_2M) & (s != _PS_1G)
        bad |= has_mt & kalloc & ((m < 0) | (m >= _N_MT))
        if bad:
            return i
        out_op[i] = op
        _put(out_pid, i, p)
        _put(out_va, i, a)
        _put(out_ln, i, length)
        _put(out_arg, i, _value(arg, has_arg, i))
        out_order[i] = min(max(o, -1), _INT8_MAX)
        _put(out_ps, i, s)
        if has_mt:
            _put(out_mt, i, m if kalloc else 0)
    return -1
