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
    make_finding,
    not_applicable,
    run_table,
)
from taskspace.study.analyses.low_dimension_figure import figure as _figure
from taskspace.study.analyses.low_dimension_figure import reference_points
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
    result.records["progress"], to_references = _record_measures(
        store, run_table(store), result.records
    )
    return AnalysisResult(
        NAME,
        TITLE,
        table(result),
        _figure(
            result.records,
            result.inpca,
            color_by,
            reference_points(store, result.records, result.inpca, to_references),
            WEIGHTINGS[weighting],
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


def _record_measures(store, runs: pd.DataFrame, records: pd.DataFrame):
    """Progress (uniform start) of every record on its own run's task classes, shape (M,), and
    its ``d_B`` to the truth (one-hot labels) and to the ignorance model (uniform), shape (2, M),
    from one read of every run (the reference points' distances without a second pass over the
    store: at the ImageNet study's shape each pass reads 18 GB)."""
    from taskspace import pairwise_distances, progress

    out, refs = np.full(len(records), np.nan), np.full((2, len(records)), np.nan)
    labels, C = store.labels, store.n_classes
    references = np.stack([np.eye(C)[labels], np.full((labels.size, C), 1.0 / C)])
    for _, run in runs.iterrows():
        rows = np.flatnonzero((records["run_id"] == run["run_id"]).to_numpy())
        # the table may be an earlier snapshot of a run still being recorded (a store analysed
        # while a study trains): take the records it lists, not every record there is now
        P = store.trajectory(run["run_id"]).predictions[records["record"].to_numpy()[rows]]
        classes = run["class_idx"] if len(run["class_idx"]) < C else None
        out[rows] = progress(P, labels, classes=classes)
        refs[:, rows] = pairwise_distances(references, P)  # the threaded kernels
    return out, refs
