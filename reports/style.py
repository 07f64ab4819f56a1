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

from contextlib import contextmanager

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
    bbox = tight_bbox(fig)
    paths = []
    for fmt in formats:
        p = Path(f"{stem}.{fmt}")
        with atomic_path(p) as tmp:
            fig.savefig(tmp, format=fmt, metadata=SAVE_METADATA[fmt], dpi=PNG_DPI, bbox_inches=bbox)
        paths.append(p)
    plt.close(fig)
    return paths


def tight_bbox(fig):
    """The figure's tight bounding box (inches, padded by savefig.pad_inches), laid out
    once for all its formats: `savefig(bbox_inches="tight")` would draw the figure once
    more per format to find it, a fifth of a report's figure time. Always measured the
    same way (an Agg layout pass), so one figure saved alone (`ptpair plot`) or with
    other formats gives the same files."""
    import matplotlib as mpl

    fig.draw_without_rendering()
    return fig.get_tightbbox(fig.canvas.get_renderer()).padded(mpl.rcParams["savefig.pad_inches"])
