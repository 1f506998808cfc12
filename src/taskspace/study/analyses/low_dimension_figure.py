"""The figure of analysis 1 (`low_dimension`): every trajectory on the first three InPCA axes,
coloured by task, styled by method, with the start, end, truth and ignorance models marked."""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import colours
from taskspace.study.analyses.figure import Figure, Panel, Series
from taskspace.study.analyses.stats import unique


def _axis_title(i: int, eigenvalue: float, signature: int) -> str:
    kind = "imaginary, λ<0" if signature < 0 else "real, λ>0" if signature > 0 else "λ=0"
    return f"PC{i + 1} ({kind})"


#: Line style and end marker of each method, in order of first appearance.
METHOD_DASHES = ("solid", "dash", "dot", "dashdot")
METHOD_SYMBOLS = ("circle", "square", "cross", "triangle-up", "circle-open", "star")
#: Marks of the two reference models: the truth (the one-hot labels), a full diamond, and the
#: ignorance model, an empty square; both shapes exist in plotly's 3-D markers, and neither is a
#: start (open circle) or one of the first four methods' end markers.
TRUTH_MARK, IGNORANCE_MARK = ("diamond", "#000000"), ("square-open", "#000000")


def reference_points(store, records: pd.DataFrame, inpca, d=None) -> dict[str, np.ndarray]:
    """The truth (one-hot probe labels) and the ignorance model (uniform prediction) placed in
    the fitted embedding out of sample (`InPCA.transform` of their ``d_B`` to every record):
    name → coordinates, shape (k,). ``d``: those distances, shape (2, M), when already known;
    else they are computed, streaming the store's collection in sample blocks."""
    from taskspace import pairwise_distances

    if d is None:
        N, C = store.n_samples, store.n_classes
        refs = np.stack([np.eye(C)[store.labels], np.full((N, C), 1.0 / C)])
        d = pairwise_distances(refs, store.models(list(records["model_id"])))
    X = inpca.transform(d)
    return {"truth (labels)": X[0], "ignorance (uniform prediction)": X[1]}


def _legend_keys(colour: dict, styles: dict) -> list[Series]:
    """Point-less series that carry the legend: one colour per task, one line style and marker
    per method."""
    empty = np.array([])
    keys = [
        Series(empty, empty, empty, name=k, color=c, mode="lines", width=3)
        for k, c in colour.items()
    ]
    keys += [
        Series(
            empty,
            empty,
            empty,
            name=k,
            group=f"style {k}",
            color="#333333",
            mode="lines+markers",
            dash=d,
            symbol=m,
            marker_size=7,
        )
        for k, (d, m) in styles.items()
    ]
    return keys


def figure(
    records: pd.DataFrame,
    inpca,
    color_by: str,
    references: dict[str, np.ndarray] | None = None,
    weighting: str = "each model weighted equally",
) -> Figure:
    """One 3-D line per run in the first three axes, from its start (open circle) to its end
    (the method's marker); colour by ``color_by`` (task or method), line style and end marker
    by the other; the truth and the ignorance model marked; the run, step, accuracy and
    progress on hover; the explained stress of the three axes in the title, ``weighting`` (how
    each model counts in the fit, in words) under it."""
    X, lam, sig = _three_axes(inpca)
    by, styled = ("task", "method") if color_by == "task" else ("method", "task")
    colour = colours(records[by].astype(str))
    styles = _styles(unique(records[styled].astype(str)))
    lines, ends, starts = _run_lines(records, X, by, styled, colour, styles)
    marks = [
        *_end_marks(records, X, ends, by, styled, colour, styles),
        _start_marks(records, X, starts),
        *_reference_marks(references or {}),
    ]
    panel = Panel(
        [*lines, *marks, *_legend_keys(colour, styles)],
        xlabel=_axis_title(0, lam[0], sig[0]),
        ylabel=_axis_title(1, lam[1], sig[1]),
        zlabel=_axis_title(2, lam[2], sig[2]),
    )
    k3 = min(3, inpca.explained_stress_.size)
    return Figure(
        [panel],
        title=f"InPCA of all trajectories: {k3} axes explain "
        f"{inpca.explained_stress_[k3 - 1]:.2f} of the stress",
        subtitle=weighting,
        legend_title=f"colour: {by}; line, end marker: {styled}",
        height=700,
    )


def _three_axes(inpca) -> tuple[np.ndarray, list[float], list[int]]:
    """The embedding with zero axes added up to three, (M, max(k, 3)), and the eigenvalues and
    signatures with three zeros appended (so that the first three always exist)."""
    X = inpca.embedding_
    if X.shape[1] < 3:
        X = np.pad(X, ((0, 0), (0, 3 - X.shape[1])))
    sig = list(inpca.signature_) + [0] * 3
    lam = list(inpca.eigenvalues_) + [0.0] * 3
    return X, lam, sig


def _styles(kinds: list[str]) -> dict[str, tuple[str, str]]:
    """Line dash and end marker of each kind, in order, the cycles repeating past their end."""
    return {
        k: (METHOD_DASHES[i % len(METHOD_DASHES)], METHOD_SYMBOLS[i % len(METHOD_SYMBOLS)])
        for i, k in enumerate(kinds)
    }


def _run_lines(
    records: pd.DataFrame, X: np.ndarray, by: str, styled: str, colour: dict, styles: dict
) -> tuple[list[Series], dict[tuple[str, str], list], list]:
    """One 3-D line per run through its records' rows of ``X`` (M, ≥3); with the index of
    every run's last record by ``(colour key, style kind)`` and of every run's first record."""
    acc = records["accuracy"] if "accuracy" in records else pd.Series(np.nan, index=records.index)
    lines, ends, starts = [], {}, []
    for run_id in unique(records["run_id"]):
        rows = records.index[records["run_id"] == run_id]
        first = records.loc[rows[0]]
        key, kind = str(first[by]), str(first[styled])
        lines.append(
            Series(
                x=X[rows, 0],
                y=X[rows, 1],
                z=X[rows, 2],
                mode="lines",
                group=key,
                color=colour[key],
                dash=styles[kind][0],
                width=2,
                hover=_record_hover(records, rows, run_id, acc),
            )
        )
        ends.setdefault((key, kind), []).append(rows[-1])
        starts.append(rows[0])
    return lines, ends, starts


def _record_hover(records: pd.DataFrame, rows, run_id, acc: pd.Series) -> list[str]:
    """The hover text of each record in ``rows`` (the records of run ``run_id``): the run, its
    task and method, the step, accuracy ``acc`` and progress."""
    first = records.loc[rows[0]]
    return [
        f"run {run_id}\ntask {first['task']}, method {first['method']}\nstep {step}"
        f"\naccuracy {a:.3f}\nprogress {lam_:.3f}"
        for step, a, lam_ in zip(
            records.loc[rows, "step"], acc.loc[rows], records.loc[rows, "progress"], strict=True
        )
    ]


def _end_marks(
    records: pd.DataFrame,
    X: np.ndarray,
    ends: dict[tuple[str, str], list],
    by: str,
    styled: str,
    colour: dict,
    styles: dict,
) -> list[Series]:
    """The end markers of the runs, one series per ``(colour key, style kind)``, in the kind's
    marker."""
    return [
        Series(
            X[r, 0],
            X[r, 1],
            X[r, 2],
            mode="markers",
            group=key,
            color=colour[key],
            symbol=styles[kind][1],
            marker_size=6,
            hover=[
                f"end of run {records.loc[i, 'run_id']}\n{by} {key}, {styled} {kind}" for i in r
            ],
        )
        for (key, kind), r in ends.items()
    ]


def _start_marks(records: pd.DataFrame, X: np.ndarray, starts: list) -> Series:
    """Open circles at the first record of every run."""
    return Series(
        X[starts, 0],
        X[starts, 1],
        X[starts, 2],
        mode="markers",
        name="start of a run",
        color="#555555",
        symbol="circle-open",
        marker_size=5,
        hover=[f"start of run {records.loc[i, 'run_id']}" for i in starts],
    )


def _reference_marks(references: dict[str, np.ndarray]) -> list[Series]:
    """A large marker at each reference point (`reference_points`: the truth, then the
    ignorance model), in its first three axes (zero where it has fewer)."""
    marks = []
    for (name, point), (symbol, c) in zip(
        references.items(), (TRUTH_MARK, IGNORANCE_MARK), strict=False
    ):
        p = np.pad(point[:3], (0, max(0, 3 - point.size)))
        marks.append(
            Series(
                [p[0]],
                [p[1]],
                [p[2]],
                mode="markers",
                name=name,
                color=c,
                symbol=symbol,
                marker_size=14,
                hover=[name],
            )
        )
    return marks
