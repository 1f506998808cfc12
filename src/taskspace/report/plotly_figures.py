"""The interactive (plotly) drawing of an analysis' figure description.

`taskspace.report.figures` draws the same description with matplotlib; both follow the legend
rule of `taskspace.study.analyses.figure.legend_entries`.
"""

from __future__ import annotations

import numpy as np

from taskspace.study.analyses.figure import (
    Area,
    Band,
    Dendrogram,
    Figure,
    Heatmap,
    Panel,
    Series,
    legend_title_lines,
)

_DASH = {"solid": "solid", "dot": "dot", "dash": "dash", "dashdot": "dashdot"}
#: plotly's 3-D markers are characters of a font, and fewer: the 2-D shapes it lacks get one it
#: has. Its "x" is the emoji ❌, which a browser without an emoji font draws as an empty box, so
#: "x" gets the plain "+" (cross) instead; the other seven are geometric shapes every font has.
_SYMBOL_3D = {
    "circle": "circle",
    "square": "square",
    "diamond": "diamond",
    "triangle-up": "diamond-open",
    "x": "cross",
    "cross": "cross",
    "star": "diamond",
    "circle-open": "circle-open",
    "square-open": "square-open",
}
#: Marker size (pixels) of a legend key in a 3-D panel: the scene's markers are small, and
#: plotly draws each legend entry at its trace's size.
LEGEND_KEY_3D = 10
#: 3-D axes: a few short ticks, so that neighbouring tick labels do not run into each other.
_SCENE_AXIS = {
    "nticks": 5,
    "tickformat": ".2~g",
    "tickfont": {"size": 11},
    "title": {"font": {"size": 12}},
}


def _html(text: str) -> str:
    return text.replace("\n", "<br>")


def _log_ticks(p: Panel) -> dict:
    """A log y axis over a decade or more: labels at the powers of ten, gridlines at 2 and 5.

    plotly labels a log axis of a few decades "0.01, 2, 5, 0.1, 2, 5": the lone "5" at the top
    reads as five, not 0.5. matplotlib labels the decades only; so does this.
    """
    values = [p.yrange] if p.yrange is not None else []
    for item in p.items:
        for name in ("y", "ylow", "yhigh"):
            v = getattr(item, name, None)
            if v is not None:
                values.append(np.asarray(v, dtype=np.float64).ravel())
    v = np.concatenate(values) if values else np.array([])
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 2 or np.log10(v.max() / v.min()) < 1:
        return {}
    return {"dtick": 1, "minor": {"dtick": "D2", "showgrid": True}}


def _series_trace(s: Series, shown: set):
    import plotly.graph_objects as go

    legend = s.name is not None and s.group not in shown
    if legend:
        shown.add(s.group)
    common = {"mode": s.mode, "name": s.name or "", "legendgroup": s.group, "showlegend": legend}
    if s.hover is not None:
        common.update(text=[_html(h) for h in s.hover], hovertemplate="%{text}<extra></extra>")
    elif s.name is None:
        common["hoverinfo"] = "skip"
    # a series without points carries a legend entry: plotly needs one (empty) point for it
    x, y = (s.x, s.y) if s.x.size else ([None], [None])
    if s.z is not None:
        return go.Scatter3d(
            x=x,
            y=y,
            z=s.z if s.z.size else [None],
            line={"color": s.color, "width": 2 * s.width, "dash": _DASH[s.dash]},
            marker={
                # a key without points is drawn only in the legend: at a size it can be read
                "size": s.marker_size / 1.5 if s.x.size else max(s.marker_size, LEGEND_KEY_3D),
                "color": s.color,
                "symbol": _SYMBOL_3D[s.symbol],
            },
            **common,
        )
    if s.bars:
        common["error_y"] = {
            "type": "data",
            "symmetric": False,
            "color": s.color,
            "thickness": 1.2,
            "width": 4,
            "array": np.nan_to_num(np.maximum(s.yhigh - s.y, 0)),
            "arrayminus": np.nan_to_num(np.maximum(s.y - s.ylow, 0)),
        }
    return go.Scatter(
        x=x,
        y=y,
        line={"color": s.color, "width": s.width, "dash": _DASH[s.dash]},
        marker={"size": s.marker_size + 2, "color": s.color, "symbol": s.symbol},
        **common,
    )


def _rgba(colour: str, opacity: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{opacity})"


def _area_traces(a: Area, shown: set):
    """The lower bound (no line), then the upper one filled down to it."""
    import plotly.graph_objects as go

    legend = a.name is not None and a.group not in shown
    if legend:
        shown.add(a.group)
    if not a.x.size:  # a legend entry only: plotly lists no trace without a point
        return (
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=a.name or "",
                legendgroup=a.group,
                showlegend=legend,
                marker={
                    "symbol": "square",
                    "size": 14,
                    "color": _rgba(a.color, min(1.0, 2 * a.opacity)),
                },
            ),
        )
    lower = go.Scatter(
        x=a.x,
        y=a.ylow,
        mode="lines",
        line={"width": 0},
        showlegend=False,
        legendgroup=a.group,
        hoverinfo="skip",
    )
    upper = go.Scatter(
        x=a.x,
        y=a.yhigh,
        mode="lines",
        line={"width": 0},
        fill="tonexty",
        fillcolor=_rgba(a.color, a.opacity),
        name=a.name or "",
        legendgroup=a.group,
        showlegend=legend,
        hoverinfo="skip",
    )
    return lower, upper


def _heatmap_trace(h: Heatmap, domain_x, domain_y):
    import plotly.graph_objects as go

    nx, ny, nz = h.hover_names
    text = {}
    if h.text_format is not None:
        text = {
            "text": [[format(v, h.text_format) for v in row] for row in h.z],
            "texttemplate": "%{text}",
        }
    return go.Heatmap(
        z=h.z,
        x=list(h.x),
        y=list(h.y),
        colorscale="Viridis",
        zmin=np.nanmin(h.z) if h.zmin is None else h.zmin,  # plotly ignores one end alone
        zmax=np.nanmax(h.z) if h.zmax is None else h.zmax,
        colorbar={
            "title": {"text": h.colorbar, "side": "right"},
            "x": domain_x[1] + 0.01,
            "xanchor": "left",
            "y": sum(domain_y) / 2,
            "len": domain_y[1] - domain_y[0],
            "thickness": 12,
        },
        hovertemplate=f"{ny} %{{y}}<br>{nx} %{{x}}<br>{nz} %{{z:.3f}}<extra></extra>",
        **text,
    )


def _dendrogram_trace(d: Dendrogram):
    import plotly.graph_objects as go

    # All links as one polyline, broken by None between links.
    gap = np.full((len(d.icoord), 1), None, dtype=object)
    x = np.hstack([d.icoord.astype(object), gap]).ravel()
    y = np.hstack([d.dcoord.astype(object), gap]).ravel()
    return go.Scatter(
        x=x, y=y, mode="lines", line={"color": d.color}, showlegend=False, hoverinfo="skip"
    )


def _band_legend(b: Band):
    import plotly.graph_objects as go

    return go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        name=b.name,
        legendgroup=b.name,
        marker={
            "symbol": "square",
            "size": 14,
            "color": b.color,
            "opacity": min(1.0, 2 * b.opacity),
        },
    )


def _colouring_menu(panels_traces: list[tuple[Panel, list[int]]]) -> list[dict]:
    menus = []
    for panel, traces in panels_traces:
        if len(panel.colourings) < 2:
            continue
        buttons = []
        for c in panel.colourings:
            shown, legend = set(), []
            for g, n in zip(c.groups, c.names, strict=True):
                legend.append(n is not None and g not in shown)
                shown.add(g)
            # "update": the traces' colours and legend groups, and the legend's title
            buttons.append(
                {
                    "label": f"colour by {c.label}",
                    "method": "update",
                    "args": [
                        {
                            "line.color": list(c.colors),
                            "marker.color": list(c.colors),
                            "legendgroup": list(c.groups),
                            "name": [n or "" for n in c.names],
                            "showlegend": legend,
                        },
                        {"legend.title.text": c.label},
                        traces,
                    ],
                }
            )
        menus.append(
            {
                "buttons": buttons,
                "x": 0.0,
                "y": 1.0,
                "xanchor": "left",
                "yanchor": "bottom",
                "pad": {"b": 4},
            }
        )
    return menus


def to_plotly(figure: Figure):
    """A plotly Figure drawing ``figure`` (a `taskspace.study.analyses.figure.Figure`)."""
    from plotly.subplots import make_subplots

    if not isinstance(figure, Figure):
        raise ValueError(
            f"figure must be a taskspace.study.analyses.figure.Figure, got {type(figure).__name__}"
        )
    panels = sorted(figure.panels, key=lambda p: (p.row, p.col))
    specs = [[None] * figure.cols for _ in range(figure.rows)]
    for p in panels:
        specs[p.row][p.col] = {
            "type": "scene" if p.is3d else "xy",
            "rowspan": p.rowspan,
            "colspan": p.colspan,
        }
    fig = make_subplots(
        rows=figure.rows,
        cols=figure.cols,
        specs=specs,
        subplot_titles=[p.title for p in panels],
        horizontal_spacing=min(0.1, 0.35 / figure.cols),
        vertical_spacing=min(0.12, 0.45 / figure.rows),
    )
    shown: set = set()
    coloured = []
    for p in panels:
        at = {"row": p.row + 1, "col": p.col + 1}
        series = []
        for item in p.items:
            if isinstance(item, Series):
                series.append(len(fig.data))
                fig.add_trace(_series_trace(item, shown), **at)
            elif isinstance(item, Area):
                for trace in _area_traces(item, shown):
                    fig.add_trace(trace, **at)
            elif isinstance(item, Heatmap):
                sub = fig.get_subplot(**at)
                x0, x1 = sub.xaxis.domain
                # the colour bar takes the right end of the panel's width, not the neighbour's
                x1 = x1 - min(0.09, (x1 - x0) / 3)
                sub.xaxis.domain = (x0, x1)
                fig.add_trace(_heatmap_trace(item, (x0, x1), sub.yaxis.domain), **at)
                fig.update_yaxes(autorange="reversed", **at)  # first row on top
            elif isinstance(item, Dendrogram):
                fig.add_trace(_dendrogram_trace(item), **at)
                fig.update_xaxes(
                    tickvals=list(item.leaf_positions), ticktext=list(item.leaves), **at
                )
            elif isinstance(item, Band):
                if item.name is not None and item.name not in shown:
                    shown.add(item.name)
                    fig.add_trace(_band_legend(item), **at)
        for item in p.items:
            if isinstance(item, Band):  # after the traces: plotly skips empty subplots
                fig.add_vrect(
                    x0=item.lo,
                    x1=item.hi,
                    fillcolor=item.color,
                    opacity=item.opacity,
                    line_width=0,
                    layer="below",
                    **at,
                )
        coloured.append((p, series))
        if p.is3d:
            fig.update_scenes(
                xaxis={**_SCENE_AXIS, "title": {"text": p.xlabel}},
                yaxis={**_SCENE_AXIS, "title": {"text": p.ylabel}},
                zaxis={**_SCENE_AXIS, "title": {"text": p.zlabel}},
                aspectmode="cube",
                camera={"eye": {"x": 1.45, "y": 1.45, "z": 0.95}},
                **at,
            )
        else:
            fig.update_xaxes(title_text=p.xlabel, **at)
            fig.update_yaxes(title_text=p.ylabel, **at)
            if p.xlog:
                fig.update_xaxes(type="log", **at)
            if p.ylog:
                fig.update_yaxes(type="log", **_log_ticks(p), **at)
            if p.yrange is not None:  # a log axis' range is in powers of ten
                fig.update_yaxes(range=list(np.log10(p.yrange) if p.ylog else p.yrange), **at)
            if p.xticks is not None:
                fig.update_xaxes(
                    tickvals=list(p.xticks[0]), ticktext=[_html(t) for t in p.xticks[1]], **at
                )
    title = {"text": figure.title, "x": 0.5, "xanchor": "center"}
    if figure.subtitle:
        title["subtitle"] = {"text": figure.subtitle, "font": {"size": 12, "color": "#555555"}}
    fig.update_layout(
        title=title,
        height=figure.height,
        legend={"title": {"text": "<br>".join(legend_title_lines(figure))}, "tracegroupgap": 0},
        updatemenus=_colouring_menu(coloured),
        margin={"t": 90, "b": 10, "l": 10, "r": 10} if all(p.is3d for p in panels) else {"t": 90},
    )
    return fig


__all__ = ["to_plotly"]
