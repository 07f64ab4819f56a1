"""Point numba's on-disk cache at a folder keyed by the compiled sources' hash.

Numba invalidates a cached function only when *its own* file changes; a compiled caller
keeps a stale copy of a callee from another module (sim/core.py inlines sim/buddy.py,
the strace scanner its byte matchers). Keying the whole cache folder on a hash of the
compiled modules makes any change to any of them (an upgrade, a local edit) start from a
clean cache, and keeps the cache out of a possibly read-only install tree.

What is hashed: every `*.py` under the folders of PACKAGES, recursively (subpackages
such as ptpair.traces.strace included), each as its path relative to its folder and its
bytes, and the modules of MODULES (the registry, whose order numbers the schemes). Hashing every module rather than picking the compiled ones means a module that
gains compiled code, or moves into a new subpackage, is covered without a list to keep;
the price is a recompile after an edit to a pure-Python module of those packages.
tests/test_jitcache.py checks that an edit to any compiled module changes the key, and
that no compiled code lives outside these packages.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

PACKAGES = ("ptpair.sim", "ptpair.traces")  # the packages that hold compiled (numba) code
# modules outside them whose values compiled code reads as constants (the simulator numbers
# schemes, allocators, policies and reclaim rules by their position in the registry)
MODULES = ("ptpair.registry",)


def package_roots() -> list[Path]:
    """The folders of PACKAGES, wherever the install put them (in an editable install,
    the repository's sim/ and traces/)."""
    import importlib.util

    out = []
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec and spec.submodule_search_locations:
            out += [Path(d) for d in spec.submodule_search_locations]
    return out


def module_files() -> list[Path]:
    """The files of MODULES."""
    import importlib.util

    return [Path(importlib.util.find_spec(name).origin) for name in MODULES]


def cache_key(roots, files=()) -> str:
    """The hex sha256 of every `*.py` under the folders `roots`, recursively, and of the
    single `files`, in a fixed order: per root (in the given order), the files sorted by
    relative path, each as (root's index, relative path, length, bytes); then each single
    file as (its name, length, bytes). It depends on nothing but those files' relative
    paths and contents, so a copy of the folders gives the same key."""
    h = hashlib.sha256()
    for p in map(Path, files):
        data = p.read_bytes()
        h.update(f"file\0{p.name}\0{len(data)}\0".encode())
        h.update(data)
    for i, root in enumerate(roots):
        root = Path(root)
        files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*.py") if p.is_file())
        for rel, p in files:
            data = p.read_bytes()
            # the lengths keep the stream unambiguous: no file's bytes can pass for a name
            h.update(f"{i}\0{rel}\0{len(data)}\0".encode())
            h.update(data)
    return h.hexdigest()


def cache_base() -> str:
    """ptpair's cache folder: $PTPAIR_CACHE_DIR, else $XDG_CACHE_HOME/ptpair or ~/.cache/ptpair."""
    return os.environ.get("PTPAIR_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "ptpair")


def configure() -> None:
    base = cache_base()
    path = os.path.join(base, "numba-" + cache_key(package_roots(), module_files())[:16])
    os.environ["NUMBA_CACHE_DIR"] = path
    if "numba" in sys.modules:  # numba already read its config: set it there too
        from numba.core import config

        config.CACHE_DIR = path
