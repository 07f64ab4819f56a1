"""One look for every ptpair figure: palette, a fixed colour per scheme, sizes, fonts.

The palette is Okabe & Ito's (2008) colour-blind-safe set. Every scheme keeps its colour and
marker (ptpair/registry.py) in every figure, so a reader learns them once. Two styles:

* ``paper``: fits a two-column paper; single-column figures are 3.4 in wide, wide
  figures 7.0 in (the usual ACM/IEEE text width); 8-pt type.
* ``slides``: 16:9 slides; 10 in wide, 14-pt type.

Outputs are deterministic: no dates or random ids in SVG/PDF/PNG metadata, so the same
data gives byte-identical files.
"""

from __future__ import annotations

import io
import os
from contextlib import contextmanager, nullcontext

from ptpair import registry
from ptpair.registry import OKABE_ITO

SCHEME_COLORS = {s.name: s.color for s in registry.SCHEMES}
SCHEME_MARKERS = {s.name: s.marker for s in registry.SCHEMES}
SCHEME_ORDER = list(registry.SCHEME_NAMES)

# parts of page-table memory, stacked bottom to top
PART_COLORS = {"KPT": OKABE_ITO["blue"], "EPT (VMMs)": OKABE_ITO["sky"], "EPT wasted": OKABE_ITO["orange"]}
ORDER_LINESTYLES = {0: "-", 1: "--", 2: ":", 3: "-."}

STYLES = {
    "paper": {"width": 3.4, "wide": 7.0, "panel_height": 2.0, "font": 8},
    "slides": {"width": 10.0, "wide": 10.0, "panel_height": 3.6, "font": 14},
}
FORMATS = registry.FIGURE_FORMATS
PNG_DPI = 200

_current = {"name": "paper"}


def scheme_color(scheme: str) -> str:
    return SCHEME_COLORS.get(scheme, OKABE_ITO["black"])


def sort_schemes(schemes) -> list[str]:
    """Schemes in the fixed display order (unknown ones last, by name)."""
    schemes = set(schemes)  # any iterable, read once
    return [s for s in SCHEME_ORDER if s in schemes] + sorted(schemes - set(SCHEME_ORDER))


def size(wide: bool = False, rows: int = 1, height: float | None = None) -> tuple[float, float]:
    """Figure size in inches for the current style."""
    st = STYLES[_current["name"]]
    return (st["wide"] if wide else st["width"], height or st["panel_height"] * rows + 0.4)


def rc(name: str = "paper") -> dict:
    st = STYLES[name]
    f = st["font"]
    return {
        "font.size": f, "axes.titlesize": f, "axes.labelsize": f, "legend.fontsize": f - 1,
        "xtick.labelsize": f - 1, "ytick.labelsize": f - 1, "font.family": "DejaVu Sans",
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
        "grid.linewidth": 0.5, "lines.linewidth": 1.2, "lines.markersize": 4, "legend.frameon": False,
        "figure.dpi": 100, "savefig.bbox": "tight", "savefig.pad_inches": 0.03,
        "svg.hashsalt": "ptpair", "svg.fonttype": "path", "pdf.fonttype": 42,
        "image.cmap": "viridis",
    }


@contextmanager
def use(name: str = "paper"):
    """Matplotlib settings of a style, for the duration of a `with` block."""
    if name not in STYLES:
        raise ValueError(f"unknown style {name!r}; known: {', '.join(STYLES)}")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    prev = _current["name"]
    _current["name"] = name
    try:
        with plt.rc_context(rc(name)):
            yield
    finally:
        _current["name"] = prev


# Metadata that would make the files differ between runs (creation dates, versions).
SAVE_METADATA = {
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
    "png": {"Software": None},
}


def save(fig, stem, formats=FORMATS) -> list:
    """Write `fig` as STEM.<fmt> for each format (atomically) and close it; returns the paths."""
    from pathlib import Path

    import matplotlib.pyplot as plt

    from ptpair.traces.atomic import atomic_path

    for fmt in formats:
        if fmt not in SAVE_METADATA:
            raise ValueError(f"unknown figure format {fmt!r}; known: {', '.join(FORMATS)}")
    _drop_spent_layout_engine(fig)
    paths = []
    with _shared_math_parses():
        bbox = tight_bbox(fig)
        for fmt in formats:
            p = Path(f"{stem}.{fmt}")
            with atomic_path(p) as tmp, (_memo_pdf_font_subsets() if fmt == "pdf" else nullcontext()):
                fig.savefig(tmp, format=fmt, metadata=SAVE_METADATA[fmt], dpi=PNG_DPI, bbox_inches=bbox)
            paths.append(p)
    plt.close(fig)
    return paths


def tight_bbox(fig):
    """The figure's tight bounding box (inches, padded by savefig.pad_inches), measured
    once for all its formats: `savefig(bbox_inches="tight")` would draw the figure once
    more per format to find it. Always measured the same way (on the figure's Agg
    renderer, at the figure's dpi), so one figure saved alone (`ptpair plot`) or with
    other formats gives the same files.

    No draw first: `get_tightbbox` places what a draw would place before measuring it
    (titles, axis labels, tick labels, legend offsets, annotations, aspect), so the box is
    the one a draw-then-measure gives (the same on all 86 figures of the default report
    when this was written; tests/reports/test_figure_save.py checks a log-scale figure
    with a legend and a fixed-aspect one), ~0.08 s a figure cheaper than drawing first."""
    import matplotlib as mpl

    return fig.get_tightbbox(fig.canvas.get_renderer()).padded(mpl.rcParams["savefig.pad_inches"])


def _drop_spent_layout_engine(fig) -> None:
    """Forget the placeholder layout engine `fig.tight_layout()` leaves behind.

    `tight_layout()` lays the figure out once and then installs a PlaceHolderLayoutEngine
    (whose layout step does nothing); but `savefig` sees *a* layout engine and draws the
    whole figure once more per format before printing it, ~0.18 s a figure (an eighth)
    for nothing. A real engine (tight or constrained, re-laying out on every draw) is kept.

    Kept too when an Axes has a fixed aspect or a locator (the vmpte scatter): `savefig`
    then freezes the Axes' position as the last draw placed it, and that extra draw
    places it at the format's own dpi; without it the position would differ in its last
    bits (an SVG clip id with it) with which formats were saved before."""
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    placed_by_draw = any(ax.get_aspect() != "auto" or ax.get_box_aspect() is not None
                         or ax.get_axes_locator() is not None for ax in fig.axes)
    if isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine) and not placed_by_draw:
        import matplotlib.pyplot as plt

        # set_layout_engine(None) falls back to the rc's autolayout/constrained engine, if set
        with plt.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            fig.set_layout_engine(None)


def _remembered(cache: dict, kept: int, key, make):
    """cache[key], made by make() the first time; at most `kept` entries, the oldest
    forgotten first."""
    hit = cache.get(key)
    if hit is None:
        hit = make()
        if len(cache) >= kept:
            cache.pop(next(iter(cache)))
        cache[key] = hit
    return hit


# PDF font subsets already made in this process: (font file, face index, glyph ids) ->
# (subset font file bytes, glyph id map). A report's PDFs embed DejaVu Sans subset to
# their glyphs, and many figures use the same glyphs (same kind of figure, other trace).
_PDF_SUBSETS: dict = {}
PDF_SUBSETS_KEPT = 256  # a subset is ~10-40 KB: at most a few MB per process


@contextmanager
def _memo_pdf_font_subsets():
    """Within the block, matplotlib's PDF backend reuses this process's font subsets.

    Embedding a TrueType (Type 42) font, the PDF backend has fontTools subset the whole
    font file for every PDF (a third of a PDF's time, mostly decompiling DejaVu Sans's
    layout tables); the subset depends only on the font and the glyphs. matplotlib has
    no public hook for this, so the block swaps its private
    `_backend_pdf_ps.get_glyphs_subset` for a memoised one and puts it back on exit; if
    a matplotlib version lacks what the swap relies on, nothing is swapped. The subset
    comes back as a font read from the same bytes (no recomputed bounds or timestamp), so
    the PDF is byte for byte the one without the memo."""
    try:
        from fontTools.ttLib import TTFont
        from matplotlib.backends import _backend_pdf_ps as pdfps

        make, result, as_file = pdfps.get_glyphs_subset, pdfps.SubsetResults, pdfps.font_as_file
        result._as_cm  # noqa: B018 -- checks the context-manager form the backend uses
    except (ImportError, AttributeError):
        yield
        return

    def memoised(fontfile, glyphs):
        key = (os.fspath(fontfile), getattr(fontfile, "face_index", 0), frozenset(glyphs))

        def subset():
            with make(fontfile, glyphs) as sub:
                return as_file(sub.font).getvalue(), dict(sub.glyph_index_map)

        data, index_map = _remembered(_PDF_SUBSETS, PDF_SUBSETS_KEPT, key, subset)
        font = TTFont(io.BytesIO(data), recalcBBoxes=False, recalcTimestamp=False)
        return result(font, dict(index_map))._as_cm()

    pdfps.get_glyphs_subset = memoised
    try:
        yield
    finally:
        pdfps.get_glyphs_subset = make


# Mathtext layouts already made in this process: (output type, rc settings, expression,
# dpi, font, antialiasing, glyph-loading flags) -> the parse. Log-scale tick labels
# ("$\mathdefault{10^{3}}$") repeat in figure after figure.
_MATH_PARSES: dict = {}
MATH_PARSES_KEPT = 1024  # a parse is a few glyph positions (or, for Agg, a small bitmap)
_MATH_RC_PREFIXES = ("mathtext.", "text.", "font.")  # the rc a parse may read


@contextmanager
def _shared_math_parses():
    """Within the block, every renderer reuses the mathtext layouts of this process.

    matplotlib caches a mathtext layout per parser, but every renderer (one per format,
    one more for the tight box) makes its own parser, so each figure re-parses its log
    tick labels four times with pyparsing, ~0.1 s a figure. No public hook: the block
    swaps the private `MathTextParser._parse_cached` for one keyed without the parser
    instance (its result depends only on the parser's output type, its arguments and the
    rc read here), and puts it back on exit; if a matplotlib version lacks it, nothing is
    swapped. The layouts are the ones the parser makes, so the files are unchanged."""
    import matplotlib as mpl

    try:
        from matplotlib.mathtext import MathTextParser

        parse = MathTextParser.__dict__["_parse_cached"]
    except (ImportError, KeyError):
        yield
        return
    rc_key = tuple((k, str(v)) for k, v in sorted(mpl.rcParams.items()) if k.startswith(_MATH_RC_PREFIXES))

    def shared(self, s, dpi, prop, antialiased, load_glyph_flags):
        key = (self._output_type, rc_key, s, dpi, prop, antialiased, load_glyph_flags)
        return _remembered(_MATH_PARSES, MATH_PARSES_KEPT, key,
                           lambda: parse(self, s, dpi, prop, antialiased, load_glyph_flags))

    MathTextParser._parse_cached = shared
    try:
        yield
    finally:
        MathTextParser._parse_cached = parse
