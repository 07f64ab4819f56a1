"""perf script's line grammar (traces/_perfline.py), shared by the kmem and page-fault readers."""

import numpy as np
import pytest

from ptpair.traces._perfline import line_head, number

HEADS = [
    # (line, pid, tid, time, command)
    ("            make  9590/9590  62240.845998:       syscalls:sys_enter_brk: brk: 0x0", 9590, 9590, 62240.845998,
     "make"),
    ("  Web Content 2  4242/4250 [001]  100.000001: exceptions:page_fault_user: address=0x1", 4242, 4250,
     100.000001, "Web Content 2"),
    ("gcc  3324 [000]  8054.731632: kmem:mm_page_alloc: page=0x1 pfn=0x1 order=0", 3324, 3324, 8054.731632, "gcc"),
    ("  :-1  -1/-1  58617.123456789: 1 kmem:mm_page_free: pfn=0x1 order=0", -1, -1, 58617.123456789, ":-1"),
    ("swapper     0/0         0.000000: PERF_RECORD_MMAP -1/0: [0xffffffff81000000(0x1)]", 0, 0, 0.0, "swapper"),
]


@pytest.mark.parametrize("line,pid,tid,time,comm", HEADS)
def test_the_columns_before_the_event(line, pid, tid, time, comm):
    buf = np.frombuffer(line.encode(), np.uint8)
    k = max(line.find(w) for w in ("syscalls:", "exceptions:", "kmem:", "PERF_RECORD_"))
    ok, p, t, s, ca, cb = line_head(buf, 0, k)
    assert ok and (p, t) == (pid, tid) and s == float(time) and line[ca:cb] == comm


@pytest.mark.parametrize("line", ["no time here: kmem:mm_page_free: pfn=1", "gcc 12x 1.5: kmem:mm_page_free:",
                                  "gcc 12 1.5.3: kmem:mm_page_free:", "1.5: kmem:mm_page_free:"])
def test_a_line_without_perf_script_columns_is_refused(line):
    buf = np.frombuffer(line.encode(), np.uint8)
    assert not line_head(buf, 0, line.index("kmem:"))[0]


def test_numbers_are_64_bit_as_syscalls_return_them():
    for text, want in [("0xffffffffffffffea", -22), ("0x7f1f34dac000", 0x7F1F34DAC000), ("-1", -1), ("42,", 42)]:
        v, _, ok = number(np.frombuffer(text.encode(), np.uint8), 0, len(text))
        assert ok and v == want
    assert not number(np.frombuffer(b"zz", np.uint8), 0, 2)[2]


@pytest.mark.parametrize("text,want", [("0xffffffffffffffff", -1), ("9223372036854775807", 2**63 - 1),
                                       ("-9223372036854775808", -2**63), ("18446744073709551615", None),
                                       ("9223372036854775808", None), ("0x10000000000000000", None),
                                       ("99999999999999999999999", None), ("-9223372036854775809", None)])
def test_a_number_that_does_not_fit_64_bits_is_refused_not_wrapped(text, want):
    v, _, ok = number(np.frombuffer(text.encode(), np.uint8), 0, len(text))
    assert ok == (want is not None)
    if ok:
        assert v == want
