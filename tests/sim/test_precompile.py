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
P.ENABLED = False  # the loop alone
from ptpair.sim.machine import Config, Machine
from ptpair.traces.format import Trace, encode
Machine(Config(memory_pages=4096)).run(encode(Trace.from_columns(pid=[1, 1], op=["spawn", "map"], va=[0, 0],
                                                                 length=[0, 4096])))
print(json.dumps([[d.py_func.__name__, str(sig), [str(s) for s in d.signatures]] for d, sig in P.callee_signatures()]))
"""


def test_the_callees_listed_are_the_loops_with_its_types(tmp_path):
    assert set(P.OFF_CHAIN) <= {name for _, name, _ in P.CALLEE_ORDER}
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
off_chain = []
P.compile_off_chain = lambda: off_chain.append(1)  # (the loop's process, when a process is ahead)
P.compile_callees = lambda: None  # a process ahead that finishes ...
with P.CalleesAhead() as a:
    a.proc.join(60)
    finished = a.proc.exitcode
P.compile_callees = lambda: time.sleep(600)  # ... and one still compiling when the loop is done
with P.CalleesAhead() as a:
    alive = a.proc.is_alive()
killed = a.proc.exitcode
with P.early():  # started before the first replay: that replay's compile takes it over
    early = P._started_early.proc
    with P.CalleesAhead() as b:
        taken = b.proc is early and P._started_early.proc is None
    taken_killed = early.exitcode
def child():  # a process forked inside the block: its first replay takes over nothing
    with P.CalleesAhead() as c:
        raise SystemExit(0 if c.proc is None else 1)
with P.early():  # no replay in the block: killed at its end
    unused = P._started_early.proc
    forked = multiprocessing.get_context("fork").Process(target=child)
    forked.start()
    forked.join(60)
    with P.early():  # (nested: starts nothing more)
        nested = P._started_early.proc is unused
print(json.dumps({"finished": finished, "alive": alive, "killed": killed, "taken": taken,
                  "taken_killed": taken_killed, "unused_killed": unused.exitcode, "off_chain": len(off_chain),
                  "forked_took_none": forked.exitcode == 0, "nested": nested,
                  "children": len(multiprocessing.active_children())}))
"""


@pytest.mark.skipif(P._cores() < 2 or sys.platform == "win32", reason="no process ahead: one core, or no fork")
def test_the_process_ahead_is_gone_when_the_loop_is_compiled():
    out = subprocess.run([sys.executable, "-c", AHEAD], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("written before the fork") == 1
    got = json.loads(out.stdout.splitlines()[-1])
    assert got["finished"] == 0 and got["alive"] and got["killed"] < 0 and got["children"] == 0
    assert got["taken"] and got["taken_killed"] < 0 and got["unused_killed"] < 0
    assert got["off_chain"] == 3  # once per loop compile with a process ahead, not for an unused early()
    assert got["forked_took_none"] and got["nested"]


# pid 1, a VMM, keeps three 4-KiB pages (something for the walk benchmark to walk)
WALKED = """\
pid,op,va,length,arg,order,page_size
1,spawn,,,,,
1,vmm,,,,,
1,map,0x400000,0x3000,,,
"""


def test_the_later_kernels_listed_are_compiled_by_their_users_with_those_types(tmp_path):
    """LATER: each kernel, run by the code that uses it, compiles the listed types (a
    drifted type would compile for nothing in the process ahead)."""
    import numpy as np

    from ptpair.analysis.walkbench import walkbench
    from ptpair.sim import akaros2015, handles
    from ptpair.traces.canonical import read_trace
    from ptpair.traces.freemap import aligned_blocks

    (tmp_path / "t.csv").write_text(WALKED)
    walkbench(read_trace(tmp_path / "t.csv"), schemes=("pair", "separate"), memory_pages=1 << 14, repeats=1,
              warmup=0, lookups=8)
    handles.grown(handles.new_handles(4), 8)
    free = np.arange(64) % 3 != 0
    akaros2015.run_lengths(free)
    akaros2015.buddyinfo_of_free_set(free)
    aligned_blocks(np.zeros(64, np.int8))
    listed = P.callee_signatures(P.LATER)
    assert len(listed) == len(P.LATER)
    wrong = [(d.py_func.__name__, sig) for d, sig in listed if sig not in d.signatures]
    assert not wrong, f"listed with types their users do not pass: {wrong}"
