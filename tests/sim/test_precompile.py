"""The callees compiled ahead of the event loop (sim/precompile.py).

Every callee listed is one the loop compiles, for exactly the listed types (a callee
listed with other types would be compiled for nothing, and two entries of one kernel
saved at once): checked by compiling the loop alone on an empty cache. And the process
ahead gets in no one's way: it is gone when the loop is compiled, whether it finished or
not, and output the user's process had not flushed yet is not written twice."""

import json
import os
import subprocess
import sys

import pytest

import ptpair.sim.precompile as P

LOOP_ALONE = r"""
import json
import ptpair.sim.precompile as P
P.CalleesAhead.__enter__ = lambda self: setattr(self, "proc", None) or self  # the loop alone
from ptpair.sim.machine import Config, Machine
from ptpair.traces.format import Trace, encode
Machine(Config(memory_pages=4096)).run(encode(Trace.from_columns(pid=[1, 1], op=["spawn", "map"], va=[0, 0],
                                                                 length=[0, 4096])))
print(json.dumps([[d.py_func.__name__, str(sig), [str(s) for s in d.signatures]] for d, sig in P.callee_signatures()]))
"""


def test_the_callees_listed_are_the_loops_with_its_types(tmp_path):
    env = {**os.environ, "PTPAIR_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", LOOP_ALONE], env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.splitlines()[-1])
    assert len(rows) == len(P.CALLEE_ORDER)
    wrong = [(name, sig, compiled) for name, sig, compiled in rows if sig not in compiled]
    assert not wrong, f"listed with types the loop does not pass (or not called by it): {wrong}"


AHEAD = r"""
import json, multiprocessing, time
import ptpair.sim.precompile as P
P.loop_is_cached = lambda: False
print("written before the fork")  # (stdout is a pipe: still in the buffer at the fork)
P.compile_callees = lambda: None  # a process ahead that finishes ...
with P.CalleesAhead() as a:
    a.proc.join(60)
    finished = a.proc.exitcode
P.compile_callees = lambda: time.sleep(600)  # ... and one still compiling when the loop is done
with P.CalleesAhead() as a:
    alive = a.proc.is_alive()
print(json.dumps({"finished": finished, "alive": alive, "killed": a.proc.exitcode,
                  "children": len(multiprocessing.active_children())}))
"""


@pytest.mark.skipif(P._cores() < 2 or sys.platform == "win32", reason="no process ahead: one core, or no fork")
def test_the_process_ahead_is_gone_when_the_loop_is_compiled():
    out = subprocess.run([sys.executable, "-c", AHEAD], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("written before the fork") == 1
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["finished"] == 0 and got["alive"] and got["killed"] < 0 and got["children"] == 0
