"""The callees compiled ahead of the event loop (sim/precompile.py) are the loop's own:
the kernels it calls, with the types it calls them with. Checked by compiling the loop
alone on an empty cache (no process ahead) and reading which signatures each callee
was compiled for."""

import json
import os
import subprocess
import sys

from ptpair.sim.precompile import CALLEE_ORDER

CHILD = r"""
import json
import ptpair.sim.precompile as P
P.CalleesAhead.__enter__ = lambda self: setattr(self, "proc", None) or self  # the loop alone
from ptpair.sim.machine import Config, Machine
from ptpair.traces.format import Trace, encode
trace = Trace.from_columns(pid=[1, 1], op=["spawn", "map"], va=[0, 0], length=[0, 4096])
Machine(Config(memory_pages=4096)).run(encode(trace))
print(json.dumps([[d.py_func.__name__, str(sig), [str(s) for s in d.signatures]]
                  for d, sig in P.callee_signatures()]))
"""


def test_callees_ahead_are_the_loops_callees_with_its_types(tmp_path):
    env = {**os.environ, "PTPAIR_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.splitlines()[-1])
    assert [r[0] for r in rows] == [name for _, name, _ in CALLEE_ORDER]
    wrong = [(name, sig, compiled) for name, sig, compiled in rows if sig not in compiled]
    assert not wrong, f"listed with types the loop does not pass (or not called by it): {wrong}"
