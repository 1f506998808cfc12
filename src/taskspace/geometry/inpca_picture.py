"""The interactive 3-D picture of an embedding, for notebooks and trackers.

The one figure drawn outside ``taskspace.report``: an ``InPCA`` fit shows itself in a notebook
(``_repr_html_``), and the geometry may import nothing else of taskspace. plotly (a dependency of
taskspace) is imported only when a picture is drawn.
"""

from __future__ import annotations

import html

import numpy as np


def embedding_figure(embedding, *, hover=None, colour=None, signature=None, title=None):
    """A plotly 3-D scatter of the first three axes of an embedding.

    Parameters
    ----------
    embedding : array_like, shape (M, k)
        Coordinates; with k < 3 the missing axes are drawn at 0.
    hover : sequence of str, length M, optional
        Text shown on each point.
    colour : sequence, length M, optional
        A category per point (task, run): one trace, one colour and one legend entry each.
    signature : array_like of int, shape (k,), optional
        ``sign(λ)`` of each axis: time-like axes (−1) are marked "(time-like)" on the axis title.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    E = np.asarray(embedding, dtype=np.float64)
    if E.ndim != 2 or E.shape[0] == 0:
        raise ValueError(f"`embedding` must be (M, k) with M ≥ 1, got shape {E.shape}")
    xyz = np.zeros((E.shape[0], 3))
    xyz[:, : min(3, E.shape[1])] = E[:, :3]
    hover = None if hover is None else np.asarray([str(h) for h in hover], dtype=object)
    groups = (
        [(None, np.arange(len(E)))]
        if colour is None
        else [
            (str(c), np.flatnonzero(np.asarray(colour, dtype=object) == c))
            for c in dict.fromkeys(colour)
        ]
    )
    fig = go.Figure()
    for name, rows in groups:
        fig.add_trace(
            go.Scatter3d(
                x=xyz[rows, 0],
                y=xyz[rows, 1],
                z=xyz[rows, 2],
                mode="markers",
                name=name,
                showlegend=name is not None,
                marker={"size": 3},
                text=None if hover is None else hover[rows],
                hoverinfo="text" if hover is not None else "x+y+z",
            )
        )
    signs = list(np.asarray(signature).tolist()) if signature is not None else []
    axes = {}
    for i, key in enumerate(("xaxis", "yaxis", "zaxis")):
        label = f"axis {i + 1}"
        if i < len(signs) and signs[i] < 0:
            label += " (time-like)"
        axes[key] = {"title": {"text": label}}
    fig.update_layout(
        scene=axes,
        margin={"l": 0, "r": 0, "t": 30 if title else 0, "b": 0},
        title=None if title is None else html.escape(title),
        height=480,
        legend={"itemsizing": "constant"},
    )
    return fig


def figure_html(fig) -> str:
    """A figure as an HTML fragment that loads plotly.js from its CDN (small; a notebook or a
    browser that is online draws it)."""
    return fig.to_html(full_html=False, include_plotlyjs="cdn")


def inpca_html(estimator) -> str:
    """A fitted InPCA (or LandmarkInPCA) as HTML: the 3-D picture of its embedding (hover: the
    record coordinates of a fitted DataArray, else the row) and its axes' eigenvalues and
    explained stress."""
    E = np.asarray(estimator.embedding_)
    records = getattr(estimator, "records_", None)
    hover = colour = None
    if records is not None:
        coords = {name: values for name, (_, values) in records.coords().items()}
        names = [n for n in (records.dim, "run", "task", "step") if n in coords]
        hover = ["<br>".join(f"{n} {coords[n][i]}" for n in names) for i in range(len(E))]
        colour = coords.get("task", coords.get("run"))
    else:
        hover = [f"model {i}" for i in range(len(E))]
    fig = embedding_figure(
        E,
        hover=hover,
        colour=None if colour is None else list(colour),
        signature=estimator.signature_,
        title=f"{type(estimator).__name__}: {len(E):,} models",
    )
    rows = "".join(
        f"<tr><td>{k}</td><td>{lam:.4g}</td><td>{s:+d}</td><td>{stress:.3f}</td></tr>"
        for k, (lam, s, stress) in enumerate(
            zip(
                estimator.eigenvalues_,
                estimator.signature_,
                estimator.explained_stress_,
                strict=True,
            ),
            start=1,
        )
    )
    table = (
        "<table><tr><th>axis</th><th>eigenvalue</th><th>sign</th>"
        "<th>explained stress (axes 1..k)</th></tr>" + rows + "</table>"
    )
    return f"<div class='taskspace-inpca'>{figure_html(fig)}{table}</div>"
