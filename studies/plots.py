"""Figures for studies: plain matplotlib ``Figure`` objects (no pyplot state, the Agg canvas on save).

Each helper takes a tidy DataFrame and column names and returns a Figure, so a study's figure function
is two lines and every figure in the suite looks the same: log axes where the data spans decades, one
marker (and colour) per group, a legend outside the data, points labelled when there are few.
"""
from __future__ import annotations

import io

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def new_figure(width_in: float = 7.0, height_in: float = 4.5):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=110, layout="constrained")
    return fig, fig.add_subplot()


def scatter_by_group(df, *, x: str, y: str, group: str, label: str | None = None, logx: bool = False,
                     logy: bool = False, xlabel: str | None = None, ylabel: str | None = None,
                     title: str | None = None, max_labels: int = 30):
    """One marker shape and colour per value of ``group``; points labelled by ``label`` if few."""
    fig, ax = new_figure()
    d = df.dropna(subset=[x, y])
    if logx:
        d = d[d[x] > 0]
    if logy:
        d = d[d[y] > 0]
    for i, (g, sub) in enumerate(d.groupby(group, sort=True)):
        ax.scatter(sub[x], sub[y], marker=MARKERS[i % len(MARKERS)], s=36, alpha=0.85, label=str(g),
                   color=f"C{i % 10}", edgecolors="black", linewidths=0.4)
    if label and len(d) <= max_labels:
        for _, r in d.iterrows():
            ax.annotate(str(r[label]), (r[x], r[y]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    _finish(ax, logx, logy, xlabel or x, ylabel or y, title, legend_title=group)
    return fig


def lines_by_group(df, *, x: str, y: str, group: str, logx: bool = False, logy: bool = False,
                   xlabel: str | None = None, ylabel: str | None = None, title: str | None = None):
    """One line with markers per value of ``group``, sorted by ``x``."""
    fig, ax = new_figure()
    for i, (g, sub) in enumerate(df.dropna(subset=[x, y]).groupby(group, sort=True)):
        sub = sub.sort_values(x)
        ax.plot(sub[x], sub[y], marker=MARKERS[i % len(MARKERS)], label=str(g), color=f"C{i % 10}")
    _finish(ax, logx, logy, xlabel or x, ylabel or y, title, legend_title=group)
    return fig


def bars(df, *, x: str, y: str, group: str | None = None, logy: bool = False, xlabel: str | None = None,
         ylabel: str | None = None, title: str | None = None):
    """Grouped bars: categories ``x`` on the axis, one bar colour per ``group``."""
    import numpy as np

    fig, ax = new_figure()
    cats = list(dict.fromkeys(df[x]))
    groups = list(dict.fromkeys(df[group])) if group else [None]
    width = 0.8 / len(groups)
    pos = np.arange(len(cats))
    for i, g in enumerate(groups):
        sub = df if g is None else df[df[group] == g]
        vals = [sub.loc[sub[x] == c, y].mean() if (sub[x] == c).any() else np.nan for c in cats]
        ax.bar(pos + (i - (len(groups) - 1) / 2) * width, vals, width, label=None if g is None else str(g),
               color=f"C{i % 10}")
    ax.set_xticks(pos, [str(c) for c in cats], rotation=45, ha="right", fontsize=7)
    _finish(ax, False, logy, xlabel or x, ylabel or y, title, legend_title=group if group else None)
    return fig


def _finish(ax, logx, logy, xlabel, ylabel, title, legend_title=None):
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title=legend_title, fontsize=7, title_fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5),
                  frameon=False)


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes (Agg)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
