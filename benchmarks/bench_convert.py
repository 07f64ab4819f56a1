"""Conversion speed of the recorded formats: `ptpair convert` on a large perf kmem log and
a large strace log, against reading the same file from the page cache.

The logs are the corpus's real recordings (traces/corpus/raw/), repeated until they reach
the target size, each copy's times shifted so the log stays in time order. Reported:
MB/s of the whole `ptpair convert` process (reading, parsing, pairing, writing Parquet)
and, measured in the same run, MB/s of `cat FILE > /dev/null` (the disk-ish bar). For
strace also, in one process, the compiled reader against the Python reference reader on
the first `--reference-mb` of the log (the same events; ratio).

    python -m benchmarks.bench_convert [--kmem-mb 1024] [--strace-mb 200] [--reference-mb 30]
"""

from __future__ import annotations

import argparse
import lzma
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAW = Path(__file__).resolve().parent.parent / "traces" / "corpus" / "raw"


def _build(src: bytes, target_mb: float, out: Path, shift) -> int:
    size = 0
    with open(out, "wb") as f:
        i = 0
        while size < target_mb * (1 << 20):
            chunk = shift(src, i)
            f.write(chunk)
            size += len(chunk)
            i += 1
    return size


def _kmem_shift(src: bytes, i: int) -> bytes:
    if i == 0:
        return src
    return re.sub(rb"(\s)(\d+)\.(\d{6}):", lambda m: m.group(1) + str(int(m.group(2)) + 10 * i).encode() + b"."
                  + m.group(3) + b":", src)


def _strace_shift(src: bytes, i: int) -> bytes:
    # another copy of the same process tree, with pids and times moved out of the way
    if i == 0:
        return src
    src = re.sub(rb"^(\d+) (\d+)\.(\d+)", lambda m: str(int(m.group(1)) + 100000 * i).encode() + b" "
                 + str(int(m.group(2)) + 10 * i).encode() + b"." + m.group(3), src, flags=re.M)
    return re.sub(rb"(clone3?\(.*\) = |vfork\(\) = |<\.\.\. (?:clone3?|vfork) resumed>.*\) = )(\d+)",
                  lambda m: m.group(1) + str(int(m.group(2)) + 100000 * i).encode(), src)


def _time(cmd) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def bench(name: str, path: Path, size: int, repeats: int = 3) -> dict:
    out = path.with_suffix(".parquet")
    conv, cat = [], []
    for _ in range(repeats):
        cat.append(_time(["sh", "-c", f"cat '{path}' > /dev/null"]))
        conv.append(_time([sys.executable, "-m", "ptpair", "convert", str(path), "-o", str(out)]))
    mb = size / (1 << 20)
    c, r = min(conv), min(cat)
    print(f"{name}: {mb:.0f} MB: convert {c:.2f} s = {mb / c:.0f} MB/s; cat {r:.3f} s = {mb / r:.0f} MB/s; "
          f"convert/cat = {c / r:.1f}x", flush=True)
    return {"mb": mb, "convert_s": c, "cat_s": r}


def strace_reference(path: Path, repeats: int = 3) -> dict:
    """In-process reading of one strace log: the compiled path (best of `repeats`, after a
    first call that loads it) against the Python reference (once); both must give the
    same events."""
    import numpy as np

    from ptpair.traces.strace import compiled_read, reference_read

    compiled_read([path], "all")  # load the compiled code from the cache
    fast = []
    for _ in range(repeats):
        t = time.perf_counter()
        got = compiled_read([path], "all")
        fast.append(time.perf_counter() - t)
    t = time.perf_counter()
    ref = reference_read([path], "all", False)
    slow = time.perf_counter() - t
    same = got is not None and all(np.array_equal(getattr(got, c), getattr(ref, c), equal_nan=True)
                                   for c in ("pid", "op", "va", "length", "arg", "time", "lines"))
    mb = path.stat().st_size / (1 << 20)
    f = min(fast)
    print(f"strace reading in process, {mb:.0f} MB: compiled {f:.2f} s = {mb / f:.0f} MB/s; Python reference "
          f"{slow:.2f} s = {mb / slow:.0f} MB/s; {slow / f:.1f}x; same events: {same}", flush=True)
    return {"mb": mb, "compiled_s": f, "python_s": slow, "same": same}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kmem-mb", type=float, default=1024)
    ap.add_argument("--strace-mb", type=float, default=200)
    ap.add_argument("--reference-mb", type=float, default=30)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        if args.kmem_mb:
            src = lzma.decompress((RAW / "make-j4-kmem.kmem.txt.xz").read_bytes())
            p = d / "kmem.txt"
            bench("perf kmem", p, _build(src, args.kmem_mb, p, _kmem_shift))
            p.unlink()
        if args.strace_mb:
            src = lzma.decompress((RAW / "make-j4.strace.log.xz").read_bytes())
            p = d / "strace.log"
            bench("strace", p, _build(src, args.strace_mb, p, _strace_shift))
            if args.reference_mb:
                r = d / "reference.log"
                _build(src, args.reference_mb, r, _strace_shift)
                if not strace_reference(r)["same"]:
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
