"""Analysis 1: InPCA of every recorded model; explained stress of the first k axes; 3-D picture."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import (
    AnalysisResult,
    Estimate,
    Finding,
    NotApplicable,
    Progress,
    colours,
    make_finding,
    not_applicable,
    run_table,
)
from taskspace.study.analyses.figure import Figure, Panel, Series
from taskspace.study.analyses.stats import BOOT_SEED, N_BOOT, percentile_interval, unique

NAME = "low_dimension"
TITLE = "Low dimension: InPCA of all trajectories"
#: Fraction of runs kept in each resample of the interval.
SUBSAMPLE = 0.8
RANGE = "95% range over random 80% subsets of the runs:"
#: The paper: 3 InPCA axes keep ~80% of the explained stress (ImageNet). Pre-registered rule:
#: agrees when the whole range of the 3-axis stress is above AGREE (the paper's 0.8 less a
#: margin), disagrees when it is wholly below DISAGREE (most of the stress beyond 3 axes).
PAPER, AGREE, DISAGREE = 0.8, 0.7, 0.5
#: ``weighting`` option: every model counts once, or every run once (its records share 1/runs).
WEIGHTINGS = {"model": "each model weighted equally", "run": "each run weighted equally"}


def _weights(records: pd.DataFrame, weighting: str) -> np.ndarray | None:
    from taskspace.geometry.weights import group_weights

    return group_weights(records["run_id"].to_numpy()) if weighting == "run" else None


#: Table columns, for people.
COLUMNS = {
    "k": "axes",
    "explained_stress": "explained stress",
    "ci_low": "95% range low",
    "ci_high": "95% range high",
    "explained_distance": "explained distance",
    "eigenvalue": "eigenvalue",
    "signature": "signature",
}


@dataclass(frozen=True)
class MethodStress:
    """Explained stress of the first ``axes`` axes of one method's own InPCA, with its range."""

    method: str
    n_models: int
    n_runs: int
    stress: Estimate


@dataclass(frozen=True)
class LowDimensionResult:
    """The InPCA of all models (`compute`).

    Attributes
    ----------
    n_models, n_runs : int
    axes : int
        The axes of the verdict, ``min(3, k)``.
    stress : tuple of Estimate, length k
        Explained stress of the first 1..k axes, each with its 95% range over random 80%
        subsets of the runs.
    eigenvalues : tuple of float, length k
        Ordered by magnitude; a negative one is an imaginary axis.
    n_imaginary : int
        Negative eigenvalues among the first ``axes``.
    per_method : tuple of MethodStress
    distance : tuple of float, length k
        Explained distance (SPEC §10) of the first 1..k axes.
    weighting : str
        ``"model"`` (every model counts once) or ``"run"`` (weighted InPCA, every run once).
    verdict : str
    inpca : InPCA
        The fitted estimator (the figure's embedding).
    records : pandas.DataFrame
        One row per model (run, task, method, step, accuracy, progress), in D's order.
    """

    n_models: int
    n_runs: int
    axes: int
    stress: tuple[Estimate, ...]
    eigenvalues: tuple[float, ...]
    n_imaginary: int
    per_method: tuple[MethodStress, ...]
    distance: tuple[float, ...]
    weighting: str
    verdict: str
    inpca: object = field(repr=False, compare=False)
    records: pd.DataFrame = field(repr=False, compare=False)


def low_dimension(
    store,
    study=None,
    n_components: int = 10,
    n_boot: int = N_BOOT,
    color_by: str = "task",
    weighting: str = "model",
    progress: Progress | None = None,
) -> AnalysisResult:
    """InPCA (SPEC §10) of the store's pairwise ``d_B`` matrix: `compute`, `describe`, the
    table and the figure.

    Table: one row per k = 1..n_components with the explained stress, its 95% range over
    ``n_boot`` random subsets of 80% of the runs (all of a run's records together), the k-th
    eigenvalue and its signature. Figure: 3-D lines, one per run, in the first three axes (axes
    with a negative eigenvalue are marked "imaginary"), coloured and in the legend by
    ``color_by`` (``"task"`` or ``"method"``; the interactive figure switches between them).
    The table also has the explained distance (SPEC §10) of k axes. ``weighting``: ``"model"``
    (every model counts once) or ``"run"`` (weighted InPCA, each run's records share a weight of
    ``1/(runs × records)``, so that long runs do not dominate the axes); the figure's title says
    which.
    """
    if color_by not in ("task", "method"):
        raise ValueError(f"color_by must be 'task' or 'method', got {color_by!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be 'model' or 'run', got {weighting!r}")
    try:
        result = compute(
            store, n_components=n_components, n_boot=n_boot, weighting=weighting, progress=progress
        )
    except NotApplicable as why:
        return not_applicable(NAME, TITLE, str(why))
    result.records["progress"] = _progress_of_records(store, run_table(store), result.records)
    return AnalysisResult(
        NAME,
        TITLE,
        table(result),
        _figure(
            result.records,
            result.inpca,
            color_by,
            reference_points(store, result.records, result.inpca),
            weighting,
        ),
        describe(result),
        summary=_summary(result),
        result=result,
    )


def _summary(result: LowDimensionResult) -> dict:
    """The headline numbers by name: the stress and explained distance of the verdict's axes,
    the counts, each method's own stress, the verdict."""
    return {
        "stress_3": result.stress[result.axes - 1].value,
        "stress_3_ci": result.stress[result.axes - 1].interval,
        "distance_3": result.distance[result.axes - 1],
        "weighting": result.weighting,
        "n_models": result.n_models,
        "n_runs": result.n_runs,
        "per_method": [
            {
                "method": m.method,
                "n_models": m.n_models,
                "n_runs": m.n_runs,
                "stress_3": m.stress.value,
                "ci": m.stress.interval,
            }
            for m in result.per_method
        ],
        "verdict": result.verdict,
    }


def compute(
    store,
    n_components: int = 10,
    n_boot: int = N_BOOT,
    weighting: str = "model",
    progress: Progress | None = None,
) -> LowDimensionResult:
    """InPCA of all models of the store, explained stress with subsampling ranges, overall and
    per method (each method's own InPCA of its submatrix). Raises `NotApplicable` below 4
    models."""
    from taskspace import InPCA

    runs = run_table(store)
    records = store.runs()
    records = records[records["run_id"].isin(set(runs["run_id"]))].reset_index(drop=True)
    if len(records) < 4:
        raise NotApplicable(f"InPCA needs at least 4 models, the store has {len(records)}")
    D = store.distance_matrix(records["model_id"])
    M = D.shape[0]
    k = min(n_components, M - 1)
    inpca = InPCA(
        n_components=k, metric="precomputed", random_state=0, weights=_weights(records, weighting)
    ).fit(D)
    k3 = min(3, k)
    groups, ranges = _group_ranges(D, records, runs, k, k3, n_boot, weighting, progress)
    stress = tuple(
        Estimate(float(v), iv) for v, iv in zip(inpca.explained_stress_, ranges[0][1], strict=True)
    )
    per_method = tuple(
        MethodStress(method, int(rows.size), len(mruns), Estimate(float(full[k3 - 1]), ci[k3 - 1]))
        for (method, rows, mruns, _), (full, ci) in zip(groups[1:], ranges[1:], strict=True)
    )
    return LowDimensionResult(
        n_models=M,
        n_runs=len(runs),
        axes=k3,
        stress=stress,
        eigenvalues=tuple(float(v) for v in inpca.eigenvalues_),
        n_imaginary=int((inpca.signature_[:k3] < 0).sum()),
        per_method=per_method,
        distance=tuple(float(v) for v in inpca.explained_distance_),
        weighting=weighting,
        verdict=_verdict(*stress[k3 - 1].interval),
        inpca=inpca,
        records=records,
    )


def _group_ranges(D, records, runs, k, k3, n_boot, weighting, progress) -> tuple[list, list]:
    """The groups of models ``(method, rows, runs, axes)``, the whole store first (``method``
    None, ``axes`` k) then each method with enough models (``axes`` k3), and the
    `_subsample_ranges` of each: ``(stress of 1..k axes, their ranges)``.

    A method that holds every model reuses the whole store's fit and ranges instead of
    fitting the same matrix again."""
    M = D.shape[0]
    # (method, its models, its runs, the fewest axes a subset must allow)
    groups = [(None, np.arange(M), runs, k)]
    whole = []  # methods that hold every model: their InPCA is the whole store's
    for method in unique(records["method"]):
        rows = np.flatnonzero((records["method"] == method).to_numpy())
        if rows.size == M:
            whole.append(method)
        elif rows.size >= k3 + 2:
            groups.append((method, rows, runs[runs["method"] == method], k3))
    ranges = _subsample_ranges(D, records, groups, k, n_boot, BOOT_SEED, progress, weighting)
    groups += [(method, np.arange(M), runs, k3) for method in whole]
    ranges += [ranges[0]] * len(whole)
    return groups, ranges


def _verdict(lo3: float, hi3: float) -> str:
    """The verdict, ``"agrees"``, ``"disagrees"`` or ``"inconclusive"``: the pre-registered rule
    (``AGREE``, ``DISAGREE``) on the range ``(lo3, hi3)`` of the stress of ``min(3, k)`` axes."""
    return (
        "inconclusive"
        if not np.isfinite([lo3, hi3]).all()
        else "agrees"
        if lo3 > AGREE
        else "disagrees"
        if hi3 < DISAGREE
        else "inconclusive"
    )


def describe(result: LowDimensionResult) -> Finding:
    """Headline: the verdict, the stress of the first three axes with its range, the paper's."""
    k3, s3, last = result.axes, result.stress[result.axes - 1], result.stress[-1]
    methods = "; ".join(
        f"{m.method} ({m.n_models} models) {m.stress.text(RANGE)}" for m in result.per_method
    )
    details = (
        f"The first {k3} InPCA axes of {result.n_models} models from {result.n_runs} runs "
        f"explain {s3.text(RANGE)} of the stress; "
        f"{len(result.stress)} axes explain {last.text(RANGE)}; "
        f"{k3} axes reproduce the distances with explained distance "
        f"{result.distance[k3 - 1]:.3f} ({WEIGHTINGS[result.weighting]}); "
        f"{result.n_imaginary} of the first {k3} axes are imaginary (negative "
        f"eigenvalue). Per method, {k3} axes of its own InPCA: {methods or 'n/a'}. "
        f"Rule: agrees when the range is above {AGREE}, disagrees when below {DISAGREE}; "
        f"the paper: ~{PAPER} on ImageNet."
    )
    claim = (
        f"{k3} InPCA axes keep {s3.short()} of the stress of {result.n_models} models; "
        f"paper {PAPER:.2f}"
    )
    return make_finding(result.verdict, claim, details)


def table(result: LowDimensionResult) -> pd.DataFrame:
    """One row per number of axes k: explained stress with its range, eigenvalue, signature."""
    eig = np.asarray(result.eigenvalues)
    return pd.DataFrame(
        {
            "k": np.arange(1, len(result.stress) + 1),
            "explained_stress": [s.value for s in result.stress],
            "ci_low": [s.low for s in result.stress],
            "ci_high": [s.high for s in result.stress],
            "explained_distance": list(result.distance),
            "eigenvalue": eig,
            "signature": np.sign(eig).astype(np.int64),
        }
    ).rename(columns=COLUMNS)


def _subsample_ranges(D, records, groups, k, n_boot, seed, progress, weighting="model"):
    """For each group ``(method, rows, runs, axes)`` of models: the explained stress of 1..k axes
    of its own InPCA and the 95% ranges over ``n_boot`` random 80% subsets of its runs (those
    with more than ``axes`` models).

    Whole runs are resampled (a run's records are strongly correlated), WITHOUT replacement:
    copies of a run would add zero distances and inflate the explained stress (m-out-of-n
    subsampling). Every fit of every group is one subset of D (`subset_explained_stress`:
    D validated once, eigenvalues only); with ``weighting="run"`` each subset is a weighted
    InPCA fit of its own (its runs' records share 1/(runs × records)), the slower path."""
    from taskspace.geometry.inpca_subsets import subset_explained_stress

    subsets, owners, whys = [], [], []
    for g, (_, rows, runs, axes) in enumerate(groups):
        picks, why = _run_subsets(
            records.iloc[rows].reset_index(drop=True), runs, axes, n_boot, seed
        )
        subsets += [rows] + [rows[p] for p in picks]
        owners += [g] * (1 + len(picks))
        whys.append(why)
    report = (
        None
        if progress is None
        else lambda done, total: progress("InPCA of random 80% subsets of the runs", done, total)
    )
    if weighting == "model":
        stress = subset_explained_stress(D, subsets, k, random_state=0, progress=report)
    else:
        stress = _weighted_subset_stress(D, records, subsets, k, weighting, report)
    owners = np.asarray(owners)
    out = []
    for g, why in enumerate(whys):
        own = stress[owners == g]
        out.append((own[0], [percentile_interval(own[1:, i], why=why) for i in range(k)]))
    return out


def _weighted_subset_stress(D, records, subsets, k, weighting, report) -> np.ndarray:
    """Explained stress of 1..k axes of the weighted InPCA of each subset, (len(subsets), k),
    NaN past a subset's own number of axes."""
    from taskspace import InPCA

    out = np.full((len(subsets), k), np.nan)
    for i, rows in enumerate(subsets):
        kk = min(k, rows.size - 1)
        fit = InPCA(
            n_components=kk,
            metric="precomputed",
            random_state=0,
            weights=_weights(records.iloc[rows], weighting),
        ).fit(D[np.ix_(rows, rows)])
        out[i, :kk] = fit.explained_stress_
        if report is not None:
            report(i + 1, len(subsets))
    return out


def _run_subsets(records, runs, k, n_boot, seed) -> tuple[list[np.ndarray], str | None]:
    """Rows of ``n_boot`` random subsets of ``ceil(0.8 n)`` of the n runs (those with at least
    k + 1 models), and why there is no range when no proper subset exists."""
    rows_of = [np.flatnonzero((records["run_id"] == r).to_numpy()) for r in runs["run_id"]]
    rng = np.random.default_rng(seed)
    keep = int(np.ceil(SUBSAMPLE * len(rows_of)))
    if not 2 <= keep < len(rows_of):
        # ceil(0.8 n) = n for n <= 4 runs: no proper subset to resample, so no interval.
        return [], f"{len(rows_of)} runs are too few for subsets of {SUBSAMPLE:.0%}"
    picks = []
    for _ in range(n_boot):
        pick = np.concatenate(
            [rows_of[i] for i in np.sort(rng.choice(len(rows_of), keep, replace=False))]
        )
        if pick.size >= k + 1:
            picks.append(pick)
    return picks, None


def _progress_of_records(store, runs: pd.DataFrame, records: pd.DataFrame) -> np.ndarray:
    """Progress (uniform start) of every record on its own run's task classes."""
    from taskspace import progress

    out = np.full(len(records), np.nan)
    labels = store.labels
    for _, run in runs.iterrows():
        rows = np.flatnonzero((records["run_id"] == run["run_id"]).to_numpy())
        P = store.trajectory(run["run_id"]).predictions
        classes = run["class_idx"] if len(run["class_idx"]) < store.n_classes else None
        out[rows] = progress(P, labels, classes=classes)
    return out


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


def reference_points(store, records: pd.DataFrame, inpca) -> dict[str, np.ndarray]:
    """The truth (one-hot probe labels) and the ignorance model (uniform prediction) placed in
    the fitted embedding out of sample (`InPCA.transform` of their ``d_B`` to every record):
    name → coordinates, shape (k,)."""
    from taskspace import pairwise_distances

    N, C = store.n_samples, store.n_classes
    refs = np.stack([np.eye(C)[store.labels], np.full((N, C), 1.0 / C)])
    d = pairwise_distances(refs, np.asarray(store.models(list(records["model_id"]))))
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


def _figure(
    records: pd.DataFrame,
    inpca,
    color_by: str,
    references: dict[str, np.ndarray] | None = None,
    weighting: str = "model",
) -> Figure:
    """One 3-D line per run in the first three axes, from its start (open circle) to its end
    (the method's marker); colour by ``color_by`` (task or method), line style and end marker
    by the other; the truth and the ignorance model marked; the run, step, accuracy and
    progress on hover; the explained stress of the three axes in the title, the weighting under
    it."""
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
        subtitle=WEIGHTINGS[weighting],
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
