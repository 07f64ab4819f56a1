"""The recorded machine: what a trace's kernel does that changes how it frees page tables.

A recorder stores, with the trace, the kernel release, whether the kernel was built with
CONFIG_PT_RECLAIM (read from /proc/config.gz where the kernel exposes it) and the
transparent-huge-page settings; a replay under `--reclaim linux` follows them
(docs/semantics.md#page-table-reclaim). Parquet traces keep them in the file's schema
metadata (key `ptpair.machine`, JSON); CSV traces in a file beside them,
`<trace>.machine.json`.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import re
from pathlib import Path

METADATA_KEY = b"ptpair.machine"
SIDECAR_SUFFIX = ".machine.json"
# PT_RECLAIM entered Linux in 6.14 (mm/pt_reclaim.c), on by default where the
# architecture supports it (x86-64 does)
PT_RECLAIM_SINCE = (6, 14)
THP_FILES = {"thp_enabled": "/sys/kernel/mm/transparent_hugepage/enabled",
             "thp_defrag": "/sys/kernel/mm/transparent_hugepage/defrag"}


def _config_option(name: str, path: str = "/proc/config.gz") -> bool | None:
    """True/False for a CONFIG_ option in the running kernel's config; None if the
    kernel does not expose its config."""
    try:
        with gzip.open(path, "rt") as f:
            text = f.read()
    except OSError:
        return None
    return re.search(rf"^CONFIG_{name}=[ym]$", text, re.M) is not None


def _bracketed(path: str) -> str | None:
    """The selected word of a sysfs choice file ('always [madvise] never' -> 'madvise')."""
    try:
        m = re.search(r"\[(\S+)\]", Path(path).read_text())
    except OSError:
        return None
    return m.group(1) if m else None


def this_machine() -> dict:
    """The running machine, as a recorder stores it."""
    return {"kernel": platform.release(), "pt_reclaim": _config_option("PT_RECLAIM"),
            **{k: _bracketed(p) for k, p in THP_FILES.items()}}


def kernel_version(release: str | None) -> tuple[int, int] | None:
    m = re.match(r"(\d+)\.(\d+)", release or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def pt_reclaim_of(machine: dict | None) -> bool | None:
    """Whether the recorded kernel reclaims PTE tables at MADV_DONTNEED: its config if
    recorded, else from its version (6.14 and later: yes); None when nothing is known."""
    if not machine:
        return None
    if machine.get("pt_reclaim") is not None:
        return bool(machine["pt_reclaim"])
    version = kernel_version(machine.get("kernel"))
    return None if version is None else version >= PT_RECLAIM_SINCE


def sidecar(path: str | os.PathLike) -> Path:
    return Path(str(path) + SIDECAR_SUFFIX)


def read_machine(path: str | os.PathLike) -> dict | None:
    """The recorded machine of a canonical trace file, or None."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            parquet = f.read(4) == b"PAR1"
    except OSError:
        return None
    if parquet:
        import pyarrow.parquet as pq

        try:
            md = pq.read_schema(path).metadata or {}
        except Exception:  # an unreadable file: the reader reports it
            return None
        raw = md.get(METADATA_KEY)
    else:
        try:
            raw = sidecar(path).read_bytes()
        except OSError:
            return None
    try:
        machine = json.loads(raw) if raw else None
    except ValueError:
        return None
    return machine if isinstance(machine, dict) else None


def metadata(machine: dict) -> dict:
    """Parquet schema metadata holding `machine`."""
    return {METADATA_KEY: json.dumps(machine, sort_keys=True).encode()}
