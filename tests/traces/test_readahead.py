"""Read-ahead keeps the order of items and of errors, and stops when its reader goes."""

import threading
import time

import pytest

from ptpair.traces.readahead import readahead


def test_items_in_order():
    assert list(readahead(iter(range(1000)), depth=3)) == list(range(1000))


def test_error_raised_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("bad chunk 3")

    got = []
    with pytest.raises(ValueError, match="bad chunk 3"):
        for x in readahead(items()):
            got.append(x)
    assert got == [1, 2]


def test_producer_stops_when_the_reader_stops():
    made = []

    def items():
        for i in range(10_000):
            made.append(i)
            yield i

    it = readahead(items(), depth=1)
    assert next(it) == 0
    it.close()
    time.sleep(0.5)
    n = len(made)
    time.sleep(0.3)
    assert len(made) == n <= 4  # bounded: one used, one queued, one being made
    assert not any(t.name == "ptpair-readahead" and t.is_alive() for t in threading.enumerate())
