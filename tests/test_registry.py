"""Every vocabulary is declared once (ptpair/registry.py): each registry walked through the
parts that derive from it -- the simulator, the command line, sweep validation, the report."""

import subprocess
import sys

import pytest

from ptpair import registry


def _help(*verb) -> str:
    r = subprocess.run([sys.executable, "-m", "ptpair", *verb, "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_the_machine_knows_every_scheme_allocator_policy_and_reclaim():
    from ptpair.sim.allocator import ALLOCATORS
    from ptpair.sim.buddy import POLICIES
    from ptpair.sim.machine import Config
    from ptpair.sim.pagetable import RECLAIMS
    from ptpair.sim.schemes import SCHEMES, SPAWN_KIND, VMM_KIND

    assert tuple(SCHEMES) == registry.SCHEME_NAMES and len(SPAWN_KIND) == len(VMM_KIND) == len(SCHEMES)
    assert tuple(ALLOCATORS) == registry.ALLOCATORS
    assert tuple(POLICIES) == registry.POLICIES and tuple(RECLAIMS) == registry.RECLAIMS
    for k in registry.KERNELS:
        Config(allocator=k.allocator, reclaim=k.reclaim)
        assert set(k.report_schemes or ()) <= set(registry.SCHEME_NAMES)
    with pytest.raises(ValueError, match="choose from pair, separate"):
        Config(scheme="bogus")


def test_readers_workloads_and_plots_derive_from_the_registry():
    from ptpair.reports import plots, style
    from ptpair.traces.readers import FORMATS
    from ptpair.traces.synth import WORKLOADS

    assert FORMATS == registry.FORMATS
    assert set(WORKLOADS) == set(registry.WORKLOADS)
    assert tuple(plots.FIGURES) == registry.FIGURES
    assert style.FORMATS == registry.FIGURE_FORMATS
    for s in registry.SCHEMES:
        assert style.scheme_color(s.name) == s.color and style.SCHEME_MARKERS[s.name] == s.marker
    assert style.sort_schemes(reversed(registry.SCHEME_NAMES)) == list(registry.SCHEME_NAMES)


def test_the_command_line_offers_every_name():
    text = _help("replay") + _help("compare") + _help("synth") + _help("plot")
    for names in (registry.SCHEME_NAMES, registry.ALLOCATORS, registry.POLICIES, registry.RECLAIMS,
                  registry.FORMATS, registry.WORKLOADS, [k.name for k in registry.KERNELS]):
        for name in names:
            assert name in text, name
    for kind in registry.FIGURES:
        assert kind in _help("plot")


def test_sweep_grids_accept_every_name_and_refuse_others(tmp_path):
    from ptpair.analysis.sweep import GridError, expand_grid

    runs = expand_grid({"schemes": list(registry.SCHEME_NAMES), "policies": list(registry.POLICIES),
                        "allocators": list(registry.ALLOCATORS), "reclaims": list(registry.RECLAIMS),
                        "synth": {"workload": list(registry.WORKLOADS), "events": [10]}})
    n = (len(registry.SCHEME_NAMES) * len(registry.POLICIES) * len(registry.ALLOCATORS) * len(registry.RECLAIMS)
         * len(registry.WORKLOADS))
    assert len(runs) == n
    assert {r["scheme"] for r in runs} == set(registry.SCHEME_NAMES)
    for key, value in (("schemes", "bogus"), ("policies", "bogus"), ("allocators", "bogus"), ("reclaims", "bogus")):
        with pytest.raises(GridError, match="bogus"):
            expand_grid({key: [value], "synth": {"workload": ["mixed"]}})
    with pytest.raises(GridError, match="unknown workload 'bogus'"):
        expand_grid({"synth": {"workload": ["bogus"]}})


def test_the_report_defaults_come_from_the_registry():
    from ptpair.analysis.experiments import ReportParams, kernel_schemes

    p = ReportParams()
    assert p.schemes == registry.DEFAULT_SCHEMES and p.workloads == registry.WORKLOADS
    assert p.kernels == tuple(k.name for k in registry.KERNELS)
    assert kernel_schemes("akaros-2015", p) == ("separate-lazy", "pair")
    assert kernel_schemes("linux", p) == registry.DEFAULT_SCHEMES
