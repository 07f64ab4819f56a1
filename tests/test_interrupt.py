"""Interrupted runs (SIGINT, SIGTERM) leave the old output or the complete new one, never
half a file, and an interrupted sweep resumes without redoing finished runs."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.streams import allocator_trace
from ptpair.traces.canonical import read_trace, write_trace


def _default_sigint():
    # a test run started in the background of a non-interactive shell (`pytest &`) ignores
    # SIGINT, and an ignored signal stays ignored across exec: the child must have it back
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "ptpair", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.csv"
    write_trace(allocator_trace(3_000_000, seed=2), path)
    return path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("delay", [0.3, 1.0, 2.0])
def test_interrupted_convert_keeps_the_old_file_or_writes_the_whole_new_one(tmp_path, big_csv, sig, delay):
    out = tmp_path / "out.parquet"
    write_trace(read_trace(Path(__file__).parent / "data" / "golden.csv"), out)
    old = out.read_bytes()
    p = start("convert", big_csv, "-o", out)
    time.sleep(delay)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert "Traceback" not in err
    now = out.read_bytes()
    if now != old:  # finished before the signal: the new file is complete
        assert len(read_trace(out)) == 3_000_000
    assert [f.name for f in tmp_path.iterdir()] == ["out.parquet"]  # no temporary left


def test_interrupted_sweep_resumes_without_redoing_runs(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('schemes = ["pair", "separate"]\nmemory = ["256MiB"]\n[synth]\nworkload = ["mixed"]\n'
                    'events = [4000]\nseeds = [1, 2, 3, 4, 5, 6, 7, 8]\n')
    out = tmp_path / "r.parquet"
    p = start("sweep", grid, "-o", out, "--workers", 1, "--no-progress")
    parts = tmp_path / "r.parquet.parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("*.parquet"))) < 3:
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "Traceback" not in err
    done = len(list(parts.glob("*.parquet")))
    assert 3 <= done < 16 and not out.exists()
    p = start("sweep", grid, "-o", out, "--workers", 2, "--no-progress")
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert f"({done} already done, {16 - done} run now)" in err
    df = pd.read_parquet(out)
    assert len(df) == 16 and df["run_id"].is_unique


def test_an_interrupt_numba_wraps_is_still_an_interrupt(capsys):
    """A Ctrl-C landing while numba loads or compiles a kernel comes out of numba as a
    SystemError caused by the KeyboardInterrupt (seen in CI): exit 130, no traceback."""
    from types import SimpleNamespace

    from ptpair.commands import run

    def compiling(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise SystemError("CPUDispatcher(...) returned a result with an exception set") from e

    assert run(SimpleNamespace(func=compiling, cmd="convert")) == 130
    assert "interrupted" in capsys.readouterr().err
