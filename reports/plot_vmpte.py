"""The figure that checks the replay against Linux itself: for each `ptpair record perf`
recording, each process's page-table memory as the replay gives it, over time, next to
the VmPTE the kernel reported for it at the same moments (analysis/vmpte.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptpair.analysis.vmpte import TOLERANCE
from ptpair.registry import OKABE_ITO
from ptpair.reports import style
from ptpair.reports.plotkit import load_pyplot, need

# commands in order of first appearance take these colours, then repeat them
COMM_COLORS = [OKABE_ITO[c] for c in ("blue", "orange", "green", "vermillion", "purple", "sky", "black", "yellow")]


def vmpte(df: pd.DataFrame):
    """Per recording (rows): left, each process's replayed page-table memory over time
    (lines, coloured by command) and the kernel's VmPTE samples of it (open circles);
    right, every sample's VmPTE against the replay at its moment, on the diagonal where
    they agree.

    Columns: recording, time (s), pid, comm, replayed_kb, vmpte_kb (empty between samples).
    """
    need(df, ["recording", "time", "pid", "comm", "replayed_kb", "vmpte_kb"], "vmpte")
    plt = load_pyplot()
    from matplotlib.lines import Line2D

    recordings = list(dict.fromkeys(df["recording"]))
    fig, axes = plt.subplots(len(recordings), 2, figsize=style.size(wide=True, rows=len(recordings)),
                             squeeze=False, gridspec_kw={"width_ratios": [3, 1.15]})
    for (ax, sc), name in zip(axes, recordings):
        d = df[df["recording"] == name]
        comms = list(dict.fromkeys(d["comm"]))
        color = {c: COMM_COLORS[i % len(COMM_COLORS)] for i, c in enumerate(comms)}
        for pid, g in d.groupby("pid", sort=True):
            c = color[g["comm"].iloc[-1]]
            ax.plot(g["time"], g["replayed_kb"], drawstyle="steps-post", color=c, lw=0.9)
            s = g[g["vmpte_kb"].notna()]
            ax.plot(s["time"], s["vmpte_kb"].astype(float), ls="none", marker="o", ms=3.2, mfc="none", mec=c,
                    mew=0.7)
        ax.set_title(name, loc="left")
        ax.set_xlabel("seconds since the recording's first event")
        ax.set_ylabel("page tables (kB)")
        ax.set_ylim(bottom=0)
        handles = [Line2D([], [], color=color[c], lw=1.2, label=c) for c in comms[:8]]
        ax.legend(handles=handles, loc="upper left", ncol=min(4, len(handles)), fontsize="x-small", frameon=False)

        s = d[d["vmpte_kb"].notna()]
        real, rep = s["vmpte_kb"].astype(float).to_numpy(), s["replayed_kb"].astype(float).to_numpy()
        top = max(real.max(), rep.max()) * 1.08 if len(s) else 1.0
        sc.plot([0, top], [0, top], color="#999999", lw=0.6, zorder=0)
        sc.plot(real, rep, ls="none", marker="o", ms=3.2, mfc="none", mec=OKABE_ITO["blue"], mew=0.7)
        within = int((np.abs(rep - real) <= TOLERANCE * np.maximum(real, 1)).sum())
        exact = int((rep == real).sum())
        sc.set_title(f"{len(s)} samples: {exact} exact,\n{within} within {TOLERANCE:.0%}", fontsize="small")
        sc.set_xlim(0, top)
        sc.set_ylim(0, top)
        sc.set_aspect("equal", adjustable="box")
        sc.set_xlabel("VmPTE (kB)")
        sc.set_ylabel("replayed (kB)")
    fig.tight_layout()
    return fig
