"""style.save's shortcuts leave the files as they were: the tight box measured without a
draw, the placeholder layout engine dropped, the per-process font-subset and mathtext
memos (warm or cold, the bytes are the same; PDF fonts stay Type 42, SVG text paths)."""

from contextlib import nullcontext

import pandas as pd
import pytest

from ptpair.reports import plots, style
from ptpair.traces.format import N_ORDERS


def _failures():
    """A failures_memory figure: symlog y axis (mathtext tick labels), legend, tight_layout."""
    rows = []
    for scheme, base in (("pair", 3), ("separate", 7)):
        for i, mem in enumerate((1024, 2048, 4096)):
            rows.append({"scheme": scheme, "memory_pages": mem, "min_memory_pages": 2048,
                         **{f"failures_{k}": (base * (3 - i) * (k + 1) if k < 3 else 0) for k in range(N_ORDERS)}})
    with style.use("paper"):
        return plots.failures_memory(pd.DataFrame(rows))


def _aspect():
    """A figure with a fixed-aspect Axes, laid out by tight_layout (like vmpte's scatter)."""
    import matplotlib.pyplot as plt

    fig, (ax, sc) = plt.subplots(1, 2, figsize=style.size(wide=True))
    ax.plot([1, 10, 100], [2, 3, 1])
    ax.set_xscale("log")
    sc.plot([0, 5], [0, 5])
    sc.set_aspect("equal", adjustable="box")
    fig.tight_layout()
    return fig


def _files(tmp_path, make, name):
    with style.use("paper"):
        paths = style.save(make(), tmp_path / name)
    return {p.suffix: p.read_bytes() for p in paths}


def _bare(monkeypatch):
    """style.save without its memos."""
    monkeypatch.setattr(style, "_memo_pdf_font_subsets", nullcontext)
    monkeypatch.setattr(style, "_shared_math_parses", nullcontext)


@pytest.mark.parametrize("make", [_failures, _aspect])
def test_tight_bbox_without_a_draw_is_the_drawn_one(make):
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    with style.use("paper"):
        fig = make()
        quick = style.tight_bbox(fig)
        fig.draw_without_rendering()
        drawn = fig.get_tightbbox(fig.canvas.get_renderer()).padded(mpl.rcParams["savefig.pad_inches"])
        plt.close(fig)
    assert quick.bounds == drawn.bounds


@pytest.mark.parametrize("make", [_failures, _aspect])
def test_memos_warm_or_cold_give_the_same_bytes(make, tmp_path, monkeypatch):
    from matplotlib.backends import _backend_pdf_ps
    from matplotlib.mathtext import MathTextParser

    subset, parse = _backend_pdf_ps.get_glyphs_subset, MathTextParser.__dict__["_parse_cached"]
    style._PDF_SUBSETS.clear()
    style._MATH_PARSES.clear()
    cold = _files(tmp_path, make, "cold")
    warm = _files(tmp_path, make, "warm")
    assert style._PDF_SUBSETS and (make is not _failures or style._MATH_PARSES)
    # matplotlib's own functions are back after each save
    assert _backend_pdf_ps.get_glyphs_subset is subset and MathTextParser.__dict__["_parse_cached"] is parse
    _bare(monkeypatch)
    bare = _files(tmp_path, make, "bare")
    assert cold == warm == bare
    assert b"/CIDFontType2" in bare[".pdf"] and b"/FontFile2" in bare[".pdf"] and b"/Type3" not in bare[".pdf"]
    assert b"<text" not in bare[".svg"]


def test_placeholder_layout_engine_is_dropped_but_a_fixed_aspect_keeps_it():
    import matplotlib.pyplot as plt
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    with style.use("paper"):
        fig = _failures()
        assert isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine)
        style._drop_spent_layout_engine(fig)
        assert fig.get_layout_engine() is None
        plt.close(fig)
        fig = _aspect()
        style._drop_spent_layout_engine(fig)
        assert isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine)
        plt.close(fig)
