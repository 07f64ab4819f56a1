"""Before and after: one benchmark run in two checkouts alternately, in one sitting.

A change to compiled code is kept only if the benchmarks say it costs nothing, and on a
shared, noisy machine only a ratio measured in one sitting says that. This runs
`python -m benchmarks.NAME ARGS` in a base checkout and in this one, alternately (base,
this, base, this, ...), each in a fresh process, and prints for every number of the
JSON both print the best of each side and the ratio this / base (best: the largest of a
rate, a figure named `*per_s*`; the smallest of anything else, times and costs).

    git worktree add /tmp/base REV
    python -m benchmarks.ab --base /tmp/base [--rounds 2] bench_replay -- --json
    python -m benchmarks.ab --base /tmp/base bench_marginal -- --small 2000000 --large 8000000

Each side imports its own sources (a side's packages are laid out as its
pyproject.toml's package-dir says, in a folder of symbolic links under the temporary
directory, ahead of any installed ptpair) and compiles into its own cache entry (the
cache is keyed by the sources); the first round of each side is a warm-up (it compiles)
and is not counted unless it is the only one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def shim(checkout: Path) -> Path:
    """A folder where `import ptpair...` finds `checkout`'s sources as installed. Its path
    depends only on the checkout's, so that numba's cache (which files compiled code by
    its source's path) serves the next run too."""
    cfg = tomllib.loads((checkout / "pyproject.toml").read_text())
    dirs = cfg["tool"]["setuptools"]["package-dir"]
    into = Path(tempfile.gettempdir()) / f"ptpair-ab-{hashlib.sha256(str(checkout).encode()).hexdigest()[:12]}"
    shutil.rmtree(into, ignore_errors=True)
    root = into / "ptpair"
    root.mkdir(parents=True)
    for f in (checkout / dirs["ptpair"]).iterdir():
        (root / f.name).symlink_to(f)
    for name, d in dirs.items():
        if name != "ptpair":
            (root / name.split(".", 1)[1]).symlink_to(checkout / d)
    return into


def run(checkout: Path, path: Path, name: str, args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{path}{os.pathsep}{checkout}"}
    out = subprocess.run([sys.executable, "-P", "-m", f"benchmarks.{name}", *args], cwd=checkout, env=env,
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{checkout}: benchmarks.{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout[out.stdout.index("{"):])


def numbers(d: dict, prefix: str = "") -> dict:
    """The numeric leaves of a nested dict, by dotted key."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(numbers(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[prefix + k] = float(v)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="the checkout to compare against")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each side, the first a warm-up")
    ap.add_argument("name", help="a benchmark module of benchmarks/ (bench_replay, bench_marginal, ...)")
    ap.add_argument("args", nargs="*", help="its arguments (after --)")
    a = ap.parse_args(argv)
    sides = {"base": a.base.resolve(), "this": HERE}
    runs = {"base": [], "this": []}
    paths = {s: shim(c) for s, c in sides.items()}
    for r in range(a.rounds):
        for s in ("base", "this"):
            res = numbers(run(sides[s], paths[s], a.name, a.args))
            print(f"round {r + 1} {s}: " + ", ".join(f"{k} {v:.4g}" for k, v in res.items()), file=sys.stderr)
            if r > 0 or a.rounds == 1:
                runs[s].append(res)
    out = {}
    for k in [k for k in runs["this"][0] if k in runs["base"][0]]:  # (a figure new on one side: no ratio)
        pick = max if "per_s" in k else min
        base, this = pick(x[k] for x in runs["base"]), pick(x[k] for x in runs["this"])
        out[k] = {"base": base, "this": this, "this_over_base": this / base if base else None}
    print(json.dumps({"benchmark": a.name, "args": a.args, "rounds": a.rounds, "base": str(sides["base"]),
                      "figures": out}, indent=2))
    return out


if __name__ == "__main__":
    main()
