"""The compiled code's cache key (ptpair/_jitcache.py): an edit to any module with
compiled code, wherever it lives in the compiled packages, must change it -- else numba
would keep serving a caller compiled against the old callee."""

import re
import shutil
import tomllib
from pathlib import Path

from ptpair import _jitcache

ROOT = Path(__file__).resolve().parents[1]
# a module that may hold or shape compiled code: it names numba (njit, an import, its
# types in a comment) or uses traces/_jit.py's decorators
MENTIONS_NUMBA = re.compile(r"njit|numba|@(?:inline_)?(?:kernel|scanner)\b")
# a module that defines compiled functions
DEFINES_COMPILED = re.compile(r"@njit\b|\bnjit\(|@(?:inline_)?(?:kernel|scanner)\b")


def _sources_only(folder, names):
    # copy folders and Python files only: the corpus and data are not part of the key
    return [n for n in names if n == "__pycache__" or not (n.endswith(".py") or Path(folder, n).is_dir())]


def _copy(tmp_path) -> list[Path]:
    """The installed compiled packages' folders, copied under tmp_path, in the same order."""
    roots = []
    for i, root in enumerate(_jitcache.package_roots()):
        dst = tmp_path / str(i) / root.name
        shutil.copytree(root, dst, ignore=_sources_only)
        roots.append(dst)
    return roots


def test_the_key_covers_both_compiled_packages_and_moves_with_them(tmp_path):
    roots = _jitcache.package_roots()
    assert [r.name for r in roots] == ["sim", "traces"]
    # a pure function of the files' relative paths and bytes: a copy has the same key
    assert _jitcache.cache_key(_copy(tmp_path)) == _jitcache.cache_key(roots)


def test_editing_any_compiled_module_changes_the_key(tmp_path):
    roots = _copy(tmp_path)
    base = _jitcache.cache_key(roots)
    compiled = [p for r in roots for p in sorted(r.rglob("*.py")) if MENTIONS_NUMBA.search(p.read_text())]
    # the scanner and model of strace live in a subpackage: found only by a recursive key
    names = {p.relative_to(p.parents[1]).as_posix() for p in compiled}
    assert {"strace/scan.py", "strace/scan_words.py", "strace/compiled_model.py"} <= names
    assert len(compiled) >= 10
    for p in compiled:
        text = p.read_bytes()
        p.write_bytes(text.replace(b"\n", b"\n\n", 1))  # one blank line more
        assert _jitcache.cache_key(roots) != base, p
        p.write_bytes(text)
    assert _jitcache.cache_key(roots) == base


def test_moving_or_adding_a_module_changes_the_key(tmp_path):
    roots = _copy(tmp_path)
    base = _jitcache.cache_key(roots)
    scan = roots[1] / "strace" / "scan.py"
    scan.rename(scan.with_name("scanner.py"))
    assert _jitcache.cache_key(roots) != base
    scan.with_name("scanner.py").rename(scan)
    assert _jitcache.cache_key(roots) == base
    new = roots[1] / "strace" / "deeper"
    new.mkdir()
    (new / "__init__.py").write_text("")
    assert _jitcache.cache_key(roots) != base


def test_no_compiled_code_outside_the_keyed_packages():
    """Every package the install ships: a module that defines compiled functions must lie
    under a folder the key hashes (a new home for compiled code goes into PACKAGES)."""
    import importlib.util

    keyed = [r.resolve() for r in _jitcache.package_roots()]
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    outside = []
    for name in packages:
        for folder in importlib.util.find_spec(name).submodule_search_locations:
            for p in Path(folder).rglob("*.py"):
                if DEFINES_COMPILED.search(p.read_text()) and not any(p.resolve().is_relative_to(r) for r in keyed):
                    outside.append(str(p))
    assert not outside
    assert set(_jitcache.PACKAGES) <= set(packages)


def test_the_registry_is_in_the_key(tmp_path):
    """The simulator numbers schemes, allocators, policies and reclaims by their position in
    ptpair/registry.py: reordering it must not reuse kernels compiled with the old numbers."""
    roots = _jitcache.package_roots()
    (reg,) = _jitcache.module_files()
    assert reg.name == "registry.py"
    copy = tmp_path / "registry.py"
    copy.write_bytes(reg.read_bytes())
    assert _jitcache.cache_key(roots, [copy]) == _jitcache.cache_key(roots, [reg])
    copy.write_bytes(reg.read_bytes() + b"\n# reordered\n")
    assert _jitcache.cache_key(roots, [copy]) != _jitcache.cache_key(roots, [reg])
