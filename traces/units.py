"""Sizes and their units: the page size, the user address space, memory sizes as text.

Numpy-free, so that the command line can check `--memory 4GiB` before it loads anything.
Every other module takes these names from here (traces/format.py re-exports them).
"""

from __future__ import annotations

import re

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT  # bytes in a base (4 KiB) page, a frame
HUGE_2M_SHIFT = 21
HUGE_1G_SHIFT = 30
VA_BITS = 47
VA_LIMIT = 1 << VA_BITS  # user half of 4-level paging: [0, 2^47) bytes
MIB_PAGES = (1 << 20) // PAGE_SIZE  # frames in a MiB

# Binary units: 1 GB = 1 GiB = 2^30 bytes, as memory is sized.
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40,
          "tib": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(text: str) -> int:
    """'4GiB', '512M', '1.5g', '1048576' (bytes) -> bytes; ValueError if unreadable."""
    m = _SIZE.fullmatch(str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"cannot read size {text!r} (examples: 4GiB, 512MiB, 1048576)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def size_pages(text) -> int:
    """A memory size (text as `parse_size` reads it, or an int of bytes) in 4-KiB frames;
    ValueError unless it is a positive multiple of 4 KiB."""
    size = text if isinstance(text, int) else parse_size(text)
    if size <= 0 or size % PAGE_SIZE:
        raise ValueError(f"{text}: must be a positive multiple of 4 KiB")
    return size // PAGE_SIZE
