"""Static (PNG, PDF) versions of the analyses' plotly figures, drawn with matplotlib.

plotly's own static export needs kaleido and a Chrome download; matplotlib redraws the traces the
analyses use (3-D lines, 2-D lines and markers, heatmaps), subplot by subplot.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np


def _axis_names(trace) -> tuple[str, str]:
    return (getattr(trace, "xaxis", None) or "x", getattr(trace, "yaxis", None) or "y")


def _title(layout_axis) -> str:
    try:
        return layout_axis.title.text or ""
    except AttributeError:
        return ""


def to_matplotlib(fig):
    """A matplotlib Figure drawing the traces of a plotly Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    traces = list(fig.data)
    if any(t.type == "scatter3d" for t in traces):
        out = plt.figure(figsize=(8, 7))
        ax = out.add_subplot(projection="3d")
        for t in traces:
            ax.plot(t.x, t.y, t.z, color=t.line.color, lw=1.2, marker=".", ms=2)
        scene = fig.layout.scene
        ax.set_xlabel(_title(scene.xaxis)), ax.set_ylabel(_title(scene.yaxis))
        ax.set_zlabel(_title(scene.zaxis))
    else:
        panels = list(dict.fromkeys(_axis_names(t) for t in traces)) or [("x", "y")]
        out, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), squeeze=False)
        for ax, (xa, ya) in zip(axes[0], panels, strict=True):
            lx = fig.layout[xa.replace("x", "xaxis")]
            ly = fig.layout[ya.replace("y", "yaxis")]
            for t in traces:
                if _axis_names(t) != (xa, ya):
                    continue
                if t.type == "heatmap":
                    z = np.asarray(t.z, dtype=float)
                    im = ax.imshow(z, cmap="viridis", aspect="auto")
                    ax.set_xticks(range(len(t.x)), list(t.x), rotation=45, ha="right")
                    ax.set_yticks(range(len(t.y)), list(t.y))
                    for (i, j), v in np.ndenumerate(z):
                        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                                color="white")
                    out.colorbar(im, ax=ax)
                elif t.type == "scatter":
                    mode = t.mode or "lines"
                    style = ("-" if "lines" in mode else "") + ("o" if "markers" in mode else "")
                    color = (t.line.color if "lines" in mode else t.marker.color) or None
                    dash = {"dot": ":", "dash": "--"}.get(t.line.dash, "-")
                    named = t.name and t.showlegend is not False   # plotly's default: shown
                    ax.plot(t.x, t.y, style.replace("-", dash) if "-" in style else style,
                            color=color, ms=3, lw=1.2, label=t.name if named else None)
                else:
                    raise NotImplementedError(f"static export of {t.type!r} traces")
            if lx is not None and lx.tickvals is not None:
                ax.set_xticks(list(lx.tickvals), [str(s).replace("<br>", "\n")
                                                  for s in lx.ticktext], rotation=30,
                              ha="right")
            ax.set_xlabel(_title(lx)), ax.set_ylabel(_title(ly))
            if ax.get_legend_handles_labels()[1]:
                ax.legend(fontsize=8, frameon=False)
    title = fig.layout.title.text if fig.layout.title else None
    if title:
        # wrapped to the figure's width (~10 characters per inch at the default size)
        out.suptitle(textwrap.fill(title, width=int(10 * out.get_figwidth())))
    out.tight_layout()
    return out


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
