"""Read ahead: produce the next items of an iterator on a background thread.

A long trace is replayed chunk by chunk. Decoding and checking chunk k+1 (pyarrow and
compiled code, both of which release the GIL) can then run on one core while the
compiled replay of chunk k (also GIL-free) runs on another, so the time per event is
about the larger of the two instead of their sum.

Order and errors are kept: items come out in the order the iterator made them, and an
exception the iterator raises is raised by `next()` at the place it would have been
raised without read-ahead -- after every item before it has been consumed. At most
`depth` items wait in the queue, so memory stays bounded by depth + 2 items (one
being made, `depth` waiting, one being used).
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_S = 0.1  # how often a blocked producer checks whether the consumer has gone


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


def readahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Iterate over `items`, producing up to `depth` of them ahead on a daemon thread.

    Closing the returned generator (or dropping it) stops the producer at its next item."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(x) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for x in items:
                if not put(x):
                    return
        except BaseException as e:  # handed to the consumer, raised there in order
            put(_Raised(e))
            return
        put(_DONE)

    t = threading.Thread(target=produce, name="ptpair-readahead", daemon=True)
    t.start()
    try:
        while True:
            x = q.get()
            if x is _DONE:
                return
            if isinstance(x, _Raised):
                raise x.exc
            yield x
            del x  # do not keep the item alive while waiting for the next
    finally:
        stop.set()
