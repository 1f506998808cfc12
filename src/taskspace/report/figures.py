"""The static (PNG, PDF) drawing of an analysis' figure description, with matplotlib.

`taskspace.report.plotly_figures` draws the same description interactively: the same panels,
titles, series, bands and legend (`taskspace.study.analyses.figure.legend_entries`). plotly's own
static export would need kaleido and a Chrome download. The layout is matplotlib's constrained
layout, which makes room for rotated tick labels and for the legend outside the panels.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from taskspace.study.analyses.figure import (
    Area,
    Band,
    Dendrogram,
    Figure,
    Heatmap,
    Series,
    legend_entries,
    legend_title_lines,
)

_DASH = {"solid": "-", "dot": ":", "dash": "--", "dashdot": "-."}
_MARKER = {
    "circle": "o",
    "square": "s",
    "diamond": "D",
    "triangle-up": "^",
    "x": "x",
    "cross": "P",
    "star": "*",
    "circle-open": "o",
    "square-open": "s",
}
#: Size of one grid cell of a static figure, in inches.
CELL_WIDTH, CELL_HEIGHT = 4.2, 3.4
#: Narrowest static figure, in inches (room for a one-line title and a legend).
MIN_WIDTH = 8.0
#: Widest static figure, in inches (a page with margins at 150 dpi is ~2400 pixels).
MAX_WIDTH = 16.0
#: Font sizes of a static figure's title and subtitle, and the smallest a long title shrinks to
#: before it is wrapped.
TITLE_SIZE, SUBTITLE_SIZE, MIN_TITLE_SIZE = 11, 9, 8
#: Largest marker of a legend key, in points: the truth's 11-point diamond would crowd its
#: neighbours' lines.
LEGEND_MARKER = 8.0
#: Scale of a 3-D panel's cube inside its axes. The constrained layout places the legend by the
#: axes' box, and a 3-D axis' label stands outside that box; a smaller cube keeps the z label
#: inside it, clear of the legend.
ZOOM_3D = 0.9


def _style(s: Series) -> dict:
    style = {
        "color": s.color,
        "linestyle": _DASH[s.dash] if s.lines else "none",
        "marker": _MARKER[s.symbol] if s.markers else None,
        "markersize": s.marker_size * 0.8,
        "linewidth": s.width,
    }
    if s.symbol.endswith("-open"):
        style["markerfacecolor"] = "none"
    return style


def _series(ax, s: Series) -> None:
    args = (s.x, s.y) if s.z is None else (s.x, s.y, s.z)
    ax.plot(*args, **_style(s))
    if s.bars:
        ok = np.isfinite(s.ylow) & np.isfinite(s.yhigh)
        ax.vlines(s.x[ok], s.ylow[ok], s.yhigh[ok], color=s.color, lw=1.0)
        for end in (s.ylow, s.yhigh):  # caps
            ax.plot(s.x[ok], end[ok], linestyle="none", marker="_", markersize=6, color=s.color)


def _label_size(n: int, inches: float) -> float:
    """Font size, in points, of ``n`` labels that share ``inches`` side by side: 8, smaller when
    they would overlap (a heatmap of 75 tasks), never below 3. The axes' size before the layout
    makes room for the labels is larger than after it, hence the margin."""
    return float(np.clip(0.7 * 72 * inches / max(n, 1), 3, 8))


def _tick_labels(ax, values, labels, size: float = 8) -> None:
    labels = [str(t) for t in labels]
    # rotated only when the labels, side by side, would not fit the panel's width (~12
    # characters per inch at 8 points); upright when crowded enough to be set smaller
    widest = max((len(line) for t in labels for line in t.split("\n")), default=0)
    inches = ax.get_position().width * ax.figure.get_figwidth()
    long = (widest + 2) * len(labels) > 12 * inches
    rotation = 90 if size < 8 else 35 if long else 0
    ax.set_xticks(
        list(values),
        labels,
        rotation=rotation,
        ha="right" if rotation else "center",
        va="center" if rotation == 90 else "top",
        rotation_mode="anchor",
        fontsize=size,
    )


def _heatmap(fig, ax, h: Heatmap) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    norm = Normalize(
        vmin=h.zmin if h.zmin is not None else np.nanmin(h.z),
        vmax=h.zmax if h.zmax is not None else np.nanmax(h.z),
    )
    cmap = plt.get_cmap("viridis")
    im = ax.imshow(h.z, cmap=cmap, norm=norm, aspect="auto")
    box = ax.get_position()
    width, height = box.width * fig.get_figwidth(), box.height * fig.get_figheight()
    _tick_labels(ax, range(len(h.x)), h.x, size=_label_size(len(h.x), width))
    ax.set_yticks(range(len(h.y)), list(h.y), fontsize=_label_size(len(h.y), height))
    if h.text_format is not None and h.z.size <= 400:
        size = 7 if h.z.shape[1] <= 8 else 5
        for (i, j), v in np.ndenumerate(h.z):
            if np.isfinite(v):
                r, g, b, _ = cmap(norm(v))
                light = 0.299 * r + 0.587 * g + 0.114 * b > 0.5  # text readable on the cell
                ax.text(
                    j,
                    i,
                    format(v, h.text_format),
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="black" if light else "white",
                )
    fig.colorbar(im, ax=ax, label=h.colorbar, shrink=0.9)


def _dendrogram(ax, d: Dendrogram) -> None:
    for xs, ys in zip(d.icoord, d.dcoord, strict=True):
        ax.plot(xs, ys, color=d.color, lw=1.2)
    _tick_labels(ax, d.leaf_positions, d.leaves)
    ax.set_xlim(0, 10 * len(d.leaves))
    ax.set_ylim(bottom=0)


def _legend(fig, figure: Figure) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles, labels = [], []
    for item in legend_entries(figure):
        if isinstance(item, Band | Area):
            handles.append(Patch(color=item.color, alpha=item.opacity))
        else:
            style = _style(item)
            style["markersize"] = min(style["markersize"], LEGEND_MARKER)
            handles.append(Line2D([], [], **style))
        labels.append(item.name)
    if handles:
        fig.legend(
            handles,
            labels,
            loc="outside right center",
            fontsize=8,
            frameon=False,
            title="\n".join(legend_title_lines(figure)) or None,
            title_fontsize=9,
            ncols=1 if len(labels) <= 24 else 2,
        )


def figure_size(figure: Figure) -> tuple[float, float]:
    """Width and height in inches: one cell per grid position, the legend beside."""
    legend = 2.0 if legend_entries(figure) else 0.0
    width = min(MAX_WIDTH, max(MIN_WIDTH, CELL_WIDTH * figure.cols + legend))
    if all(p.is3d for p in figure.panels):
        return (min(MAX_WIDTH, 7.0 * figure.cols + legend), 6.5 * figure.rows + 0.6)
    return width, CELL_HEIGHT * figure.rows + 0.8


def to_matplotlib(figure: Figure):
    """A matplotlib Figure drawing ``figure`` (a `taskspace.study.analyses.figure.Figure`)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, NullFormatter

    if not isinstance(figure, Figure):
        raise ValueError(
            f"figure must be a taskspace.study.analyses.figure.Figure, got {type(figure).__name__}"
        )
    out = plt.figure(figsize=figure_size(figure), layout="constrained")
    grid = out.add_gridspec(figure.rows, figure.cols)
    for p in figure.panels:
        cell = grid[p.row : p.row + p.rowspan, p.col : p.col + p.colspan]
        ax = out.add_subplot(cell, projection="3d" if p.is3d else None)
        for item in p.items:
            if isinstance(item, Series):
                _series(ax, item)
            elif isinstance(item, Area):
                ax.fill_between(
                    item.x, item.ylow, item.yhigh, color=item.color, alpha=item.opacity, lw=0
                )
            elif isinstance(item, Heatmap):
                _heatmap(out, ax, item)
            elif isinstance(item, Dendrogram):
                _dendrogram(ax, item)
            elif isinstance(item, Band):
                ax.axvspan(item.lo, item.hi, color=item.color, alpha=item.opacity, lw=0, zorder=0)
        ax.set_title(p.title, fontsize=10)
        ax.set_xlabel(p.xlabel, fontsize=9)
        ax.set_ylabel(p.ylabel, fontsize=9)
        ax.tick_params(labelsize=8)
        if p.is3d:
            ax.set_box_aspect(None, zoom=ZOOM_3D)
            ax.set_zlabel(p.zlabel, fontsize=9)
            for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
                axis.set_major_locator(MaxNLocator(5))
        if p.xlog:
            ax.set_xscale("log")
        if p.ylog:
            ax.set_yscale("log")
        if p.xticks is not None:
            _tick_labels(ax, *p.xticks)
            if p.xlog:  # only the given ticks: no labelled minor ticks of the log axis
                ax.xaxis.set_minor_formatter(NullFormatter())
        if p.yrange is not None:
            ax.set_ylim(*p.yrange)
    _legend(out, figure)
    _title(out, figure)
    return out


def _fit(text, width: float) -> None:
    """Shrink a Text whose one line is wider than ``width`` pixels, down to
    :data:`MIN_TITLE_SIZE`; wrap it when even that is too wide."""
    renderer = text.figure.canvas.get_renderer()
    wide = text.get_window_extent(renderer).width
    if wide <= width:
        return
    size = text.get_fontsize()
    text.set_fontsize(max(MIN_TITLE_SIZE, int(2 * size * width / wide) / 2))
    wide = text.get_window_extent(renderer).width
    if wide > width:
        line = text.get_text()
        text.set_text(textwrap.fill(line, width=int(len(line) * width / wide)))


def _title(fig, figure: Figure) -> None:
    """The title on one line over the panels (smaller when it would be wider than the figure)
    and the subtitle, smaller and grey, on a line of its own under it.

    The subtitle hangs from the bottom of the title's text, whose second line is left empty
    for it: the constrained layout makes room for the title (two lines) but not for a free
    text, so the subtitle takes the title's room.
    """
    from matplotlib.text import Annotation

    if not figure.title and not figure.subtitle:
        return
    room = 0.98 * fig.bbox.width
    title = fig.suptitle(figure.title, fontsize=TITLE_SIZE)
    _fit(title, room)
    if figure.subtitle:
        title.set_text(title.get_text() + "\n")  # the empty line the subtitle is drawn on
        sub = Annotation(
            figure.subtitle,
            xy=(0.5, 0.0),
            xycoords=title,
            ha="center",
            va="bottom",
            fontsize=SUBTITLE_SIZE,
            color="#555555",
        )
        fig.add_artist(sub)
        _fit(sub, room)


def write_figures(results, out_dir) -> list[Path]:
    """Write ``<name>.png`` (150 dpi) and ``<name>.pdf`` for every result with a figure."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for r in results:
        if r.figure is None:
            continue
        mpl = to_matplotlib(r.figure)
        for ext in ("png", "pdf"):
            path = out_dir / f"{r.name}.{ext}"
            mpl.savefig(path, dpi=150)
            written.append(path)
        plt.close(mpl)
    return written
