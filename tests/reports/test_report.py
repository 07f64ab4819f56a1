"""End-to-end: `ptpair report` as a user runs it, its files, determinism, rebuilding a
figure, interruption, and the page in a real browser."""

import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("PTPAIR_ARTIFACTS", ROOT / ".artifacts"))
# small but complete: one trace, one synthetic workload over two seeds, the quick ladders
SMALL = ["--quick", "--workloads", "mixed", "--seeds", "2", "--seed-events", "600", "--no-progress"]


def ptpair(*args, cwd=None, **kw):
    return subprocess.run([sys.executable, "-m", "ptpair", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, **kw)


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    d = tmp_path_factory.mktemp("trace")
    p = ptpair("synth", "--workload", "mixed", "--seed", "3", "--events", "1500", "-o", d / "small.csv")
    assert p.returncode == 0, p.stderr
    return d / "small.csv"


@pytest.fixture(scope="module")
def report(trace, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "report"
    p = ptpair("report", trace, "-o", out, *SMALL, cwd=tmp_path_factory.mktemp("cwd"))
    assert p.returncode == 0, p.stderr
    return out


def test_report_has_every_part(report):
    for name in ("index.html", "report.md", "manifest.json"):
        assert (report / name).stat().st_size > 0
    man = json.loads((report / "manifest.json").read_text())
    kinds = {f["kind"] for f in man["figures"].values()}
    assert kinds == {"pt_memory", "buddyinfo", "frag_index", "failures_memory", "pt_processes", "compaction",
                     "hugepages", "minmem", "breakeven", "decomposition", "walk_cost", "akaros_2015",
                     "linux_pageblocks", "aged_pressure", "vmpte"}
    # the replay checked against Linux: the corpus's perf recordings, their samples agreeing
    agree = pd.read_csv(report / "data" / "vmpte_agreement.csv")
    assert set(agree["recording"]) == {"perf-make-j2", "perf-python-import-numpy"}
    assert (agree["within_2pct"] >= 0.95 * agree["samples"]).all()
    assert [len(r["samples_sha256"]) for r in man["vmpte_recordings"]] == [64, 64]
    assert "Checked against Linux" in (report / "report.md").read_text()
    # the allocator-pressure answer is the frame-exact margin, with its table, and says on which memory
    ans = pd.read_csv(report / "data" / "answers.csv")
    assert set(ans.loc[ans["question"] == "allocator pressure", "unit"]) == {
        "frames beyond the live data (smallest failure-free memory - peak of frames in use), on pristine memory"}
    aged_row = ans[ans["question"] == "allocator pressure (aged)"]
    assert len(aged_row) == 1 and "synthetic U=0.9" in aged_row["unit"].iloc[0] and aged_row["seeds_n"].iloc[0] == 2
    # the aged-memory section: the corpus map, the kmem-aged memory, three ager levels over two seeds
    runs = pd.read_csv(report / "data" / "aged_runs.csv")
    assert set(runs["memory"]) == {"free map", "kmem-aged", "synthetic U=0.1", "synthetic U=0.5", "synthetic U=0.9"}
    assert set(runs["scheme"]) == {"pair", "separate", "separate-eager"}
    synthetic = runs[runs["kind"] == "synthetic"]
    assert len(synthetic) == 3 * 3 * 2 and synthetic["pressure_margin_pages"].notna().all()
    assert (runs.loc[runs["kind"] == "free map", "background_pages"] > 0).all()
    assert (abs(synthetic["unusable_index"] - synthetic["unusable_target"]) < 0.1).all()
    assert set(man["aged_memory"]) >= {"freemap", "warmup", "ager_levels"} and len(
        man["aged_memory"]["freemap"]["sha256"]) == 64
    assert "Allocator pressure on aged memory" in (report / "report.md").read_text()
    mm = pd.read_csv(report / "data" / "minmem_exact.csv")
    assert (mm["pressure_margin_pages"] == mm["min_memory_pages"] - mm["peak_used_pages"]).all() and mm["verified"].all()
    assert {"pt_requests_split", "tight_compaction_pages"} <= set(pd.read_csv(report / "data" / "pressure.csv"))
    for name, f in man["figures"].items():
        assert (report / f["data"]).stat().st_size > 0
        for fmt in ("svg", "pdf", "png"):
            assert (report / "figures" / f"{name}.{fmt}").stat().st_size > 0
        assert f"figures/{name}.svg" in (report / "index.html").read_text()
    # provenance: inputs hashed, parameters and seeds, library versions
    (inp,) = man["inputs"]
    assert len(inp["sha256"]) == 64 and inp["events"] == 1500
    assert man["params"]["seeds"] == 2 and man["seeds"]["workloads"] == [1, 2]
    assert {"numpy", "numba", "pandas", "matplotlib"} <= set(man["libraries"])
    # nothing left behind beside the report
    assert [p.name for p in report.parent.iterdir()] == ["report"]


def test_report_opens_with_the_answers(report):
    md = (report / "report.md").read_text()
    first_section = md.split("\n## ")[1]
    assert first_section.startswith("The answer")
    for q in ("memory waste", "allocator pressure", "walk cost"):
        assert f"| small | {q} |" in first_section

    ans = pd.read_csv(report / "data" / "answers.csv")
    walk = ans[ans["question"] == "walk cost"].iloc[0]
    assert walk["pair"] == 0 and walk["separate"] > 0 and walk["winner"] == "pair"
    waste = ans[ans["question"] == "memory waste"].iloc[0]
    assert waste["pair"] > waste["separate"] and waste["winner"].startswith("separate")


def test_same_inputs_give_a_byte_identical_report(report, trace, tmp_path):
    again = tmp_path / "again"
    p = ptpair("report", trace, "-o", again, *SMALL, "--workers", "1")
    assert p.returncode == 0, p.stderr
    files = sorted(str(f.relative_to(report)) for f in report.rglob("*") if f.is_file())
    assert files == sorted(str(f.relative_to(again)) for f in again.rglob("*") if f.is_file())
    match, mismatch, errors = filecmp.cmpfiles(report, again, files, shallow=False)
    assert not mismatch and not errors


def test_plot_rebuilds_a_figure_from_its_data(report, tmp_path):
    man = json.loads((report / "manifest.json").read_text())
    for name in ("buddyinfo__small", "minmem", "frag_index__small"):
        p = ptpair("plot", name, "--data", report / man["figures"][name]["data"], "-o", tmp_path / name)
        assert p.returncode == 0, p.stderr
        assert (tmp_path / f"{name}.svg").read_bytes() == (report / "figures" / f"{name}.svg").read_bytes()


def test_plot_and_report_reject_bad_input_cleanly(tmp_path, trace):
    bad = tmp_path / "bad.csv"
    bad.write_text("scheme,events\npair,1\n")
    p = ptpair("plot", "pt_memory", "--data", bad)
    assert p.returncode == 2 and "needs columns" in p.stderr and "Traceback" not in p.stderr
    p = ptpair("plot", "nonsense", "--data", bad)
    assert p.returncode == 2 and "unknown figure" in p.stderr
    p = ptpair("report", tmp_path / "missing.csv", "-o", tmp_path / "r", *SMALL)
    assert p.returncode == 2 and "Traceback" not in p.stderr and not (tmp_path / "r").exists()
    p = ptpair("report", trace, "-o", tmp_path / "r", "--formats", "pdf", *SMALL)
    assert p.returncode == 2 and "--formats" in p.stderr


def test_an_interrupted_report_keeps_the_old_one(report, trace, tmp_path):
    out = tmp_path / "report"
    shutil.copytree(report, out)
    before = {f: f.read_bytes() for f in out.rglob("*") if f.is_file()}
    # a run long enough (about 17 s on 2 cores; SMALL takes about 10) to be stopped inside its replays
    longer = ["--quick", "--workloads", "mixed", "--seeds", "6", "--seed-events", "4000", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "ptpair", "report", str(trace), "-o", str(out), *longer],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    time.sleep(6)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert {f: f.read_bytes() for f in out.rglob("*") if f.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary folder left


def _browser() -> str | None:
    for b in ("chromium", "chromium-browser"):
        p = shutil.which(b)
        if p:
            return p
    return None


def test_index_html_renders_offline_in_headless_chromium(report):
    exe = _browser()
    if exe is None:
        if os.environ.get("PTPAIR_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto((report / "index.html").as_uri(), wait_until="load")
        n_images = page.evaluate("document.images.length")
        broken = page.evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        page.screenshot(path=str(ARTIFACTS / "report-screenshot.png"), full_page=True)
        browser.close()
    man = json.loads((report / "manifest.json").read_text())
    assert n_images == len(man["figures"])
    assert broken == []
    off_disk = [u for u in requests if not u.startswith("file://")]
    assert off_disk == [], "the report requested something from the network"
    assert (ARTIFACTS / "report-screenshot.png").stat().st_size > 10_000
