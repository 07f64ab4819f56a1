"""Point numba's on-disk cache at a folder keyed by the compiled sources' hash.

Numba invalidates a cached function only when *its own* file changes; a compiled caller
keeps a stale copy of a callee from another module (sim/core.py inlines sim/buddy.py).
Keying the whole cache folder on a hash of every compiled module makes any change to
any of them (an upgrade, a local edit) start from a clean cache, and keeps the cache
out of a possibly read-only install tree.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path


def _compiled_sources() -> list[Path]:
    # the folders of ptpair.sim and ptpair.traces, wherever setuptools put them
    import importlib.util

    out = []
    for name in ("ptpair.sim", "ptpair.traces"):
        spec = importlib.util.find_spec(name)
        if spec and spec.submodule_search_locations:
            for d in spec.submodule_search_locations:
                out += sorted(Path(d).glob("*.py"))
    return out


def configure() -> None:
    h = hashlib.sha256()
    for p in _compiled_sources():
        h.update(p.name.encode())
        h.update(p.read_bytes())
    base = os.environ.get("PTPAIR_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "ptpair")
    path = os.path.join(base, "numba-" + h.hexdigest()[:16])
    os.environ["NUMBA_CACHE_DIR"] = path
    if "numba" in sys.modules:  # numba already read its config: set it there too
        from numba.core import config

        config.CACHE_DIR = path
