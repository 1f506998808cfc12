"""Analysis 1: InPCA of every recorded model; explained stress of the first k axes; 3-D picture."""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import (
    BOOT_SEED,
    N_BOOT,
    AnalysisResult,
    colours,
    fmt_ci,
    not_applicable,
    percentile_interval,
    run_table,
    unique,
)
from taskspace.study.analyses.figure import Figure, Panel, Series

NAME = "low_dimension"
TITLE = "Low dimension: InPCA of all trajectories"
#: Fraction of runs kept in each resample of the interval.
SUBSAMPLE = 0.8
RANGE = "95% range over random 80% subsets of the runs:"
#: The paper: 3 InPCA axes keep ~80% of the explained stress (ImageNet). Pre-registered rule:
#: agrees when the whole range of the 3-axis stress is above AGREE (the paper's 0.8 less a
#: margin), disagrees when it is wholly below DISAGREE (most of the stress beyond 3 axes).
PAPER, AGREE, DISAGREE = 0.8, 0.7, 0.5


def _stress(D: np.ndarray, k: int) -> np.ndarray:
    from taskspace import InPCA

    return InPCA(n_components=k, metric="precomputed", random_state=0).fit(D).explained_stress_


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


def low_dimension(store, study=None, n_components: int = 10, n_boot: int = N_BOOT,
                  color_by: str = "task") -> AnalysisResult:
    """InPCA (SPEC §10) of the store's pairwise ``d_B`` matrix.

    Table: one row per k = 1..n_components with the explained stress, its 95% range over
    ``n_boot`` random subsets of 80% of the runs (all of a run's records together), the k-th
    eigenvalue and its signature. Figure: 3-D lines, one per run, in the first three axes (axes
    with a negative eigenvalue are marked "imaginary"), from start to end, coloured by
    ``color_by`` (``"task"`` or ``"method"``) with line style and end marker by the other; the
    truth and the ignorance model placed out of sample and marked.
    """
    if color_by not in ("task", "method"):
        raise ValueError(f"color_by must be 'task' or 'method', got {color_by!r}")
    runs = run_table(store)
    records = store.runs()
    records = records[records["run_id"].isin(set(runs["run_id"]))].reset_index(drop=True)
    if len(records) < 4:
        return not_applicable(NAME, TITLE, f"InPCA needs at least 4 models, the store has "
                              f"{len(records)}")
    D = store.distance_matrix(records["model_id"])
    M = D.shape[0]
    k = min(n_components, M - 1)
    from taskspace import InPCA

    inpca = InPCA(n_components=k, metric="precomputed", random_state=0).fit(D)
    stress = inpca.explained_stress_

    stress_ci = _subsample_intervals(D, records, runs, k, n_boot, BOOT_SEED)
    table = pd.DataFrame({
        "k": np.arange(1, k + 1),
        "explained_stress": stress,
        "ci_low": [lo for lo, _ in stress_ci],
        "ci_high": [hi for _, hi in stress_ci],
        "eigenvalue": inpca.eigenvalues_,
        "signature": inpca.signature_,
    })
    intervals = stress_ci
    k3 = min(3, k)
    negative = int((inpca.signature_[:k3] < 0).sum())
    # The same number for each method's models alone (its own InPCA of its submatrix).
    per_method = []
    for method in dict.fromkeys(records["method"]):
        rows = np.flatnonzero((records["method"] == method).to_numpy())
        mruns = runs[runs["method"] == method]
        if rows.size < k3 + 2:
            continue
        sub = D[np.ix_(rows, rows)]
        s3 = float(_stress(sub, k3)[-1])
        ci = _subsample_intervals(sub, records.iloc[rows].reset_index(drop=True), mruns,
                                  k3, n_boot, BOOT_SEED)[-1]
        per_method.append({"method": method, "n_models": int(rows.size),
                           "n_runs": len(mruns), "stress_3": s3, "ci": ci})
    methods_text = "; ".join(f"{m['method']} ({m['n_models']} models) "
                             f"{fmt_ci(m['stress_3'], m['ci'], label=RANGE)}"
                             for m in per_method)
    lo3, hi3 = intervals[k3 - 1]
    call = ("inconclusive" if not np.isfinite([lo3, hi3]).all() else "agrees" if lo3 > AGREE
            else "disagrees" if hi3 < DISAGREE else "inconclusive")
    finding = (f"The first {k3} InPCA axes of {M} models from {len(runs)} runs explain "
               f"{fmt_ci(stress[k3 - 1], intervals[k3 - 1], label=RANGE)} of the stress; "
               f"{k} axes explain {fmt_ci(stress[-1], intervals[-1], label=RANGE)}; "
               f"{negative} of the first {k3} axes are imaginary (negative eigenvalue). Per "
               f"method, {k3} axes of its own InPCA: {methods_text or 'n/a'}. Verdict (agrees "
               f"when the range is above {AGREE}; the paper: ~{PAPER} on ImageNet): {call}.")
    records["progress"] = _progress_of_records(store, runs, records)
    figure = _figure(records, inpca, color_by, reference_points(store, records, inpca))
    return AnalysisResult(NAME, TITLE, table, figure, finding,
                          summary={"stress_3": float(stress[k3 - 1]),
                                   "stress_3_ci": intervals[k3 - 1],
                                   "n_models": M, "n_runs": len(runs),
                                   "per_method": per_method, "verdict": call})


def _subsample_intervals(D, records, runs, k, n_boot, seed) -> list[tuple[float, float]]:
    """95% ranges of the explained stress of 1..k axes over random 80% subsets of the runs.

    Whole runs are resampled (a run's records are strongly correlated), WITHOUT replacement:
    copies of a run would add zero distances and inflate the explained stress (m-out-of-n
    subsampling)."""
    rows_of = [np.flatnonzero((records["run_id"] == r).to_numpy()) for r in runs["run_id"]]
    rng = np.random.default_rng(seed)
    boot = []
    keep = int(np.ceil(SUBSAMPLE * len(rows_of)))
    if 2 <= keep < len(rows_of):
        for _ in range(n_boot):
            pick = np.concatenate([rows_of[i] for i in np.sort(
                rng.choice(len(rows_of), keep, replace=False))])
            if pick.size < k + 1:
                continue
            s = _stress(D[np.ix_(pick, pick)], k)
            boot.append(np.pad(s, (0, k - s.size), constant_values=np.nan))
    boot = np.array(boot).reshape(-1, k)
    # ceil(0.8 n) = n for n <= 4 runs: no proper subset to resample, so no interval.
    why = (f"{len(rows_of)} runs are too few for subsets of {SUBSAMPLE:.0%}"
           if not 2 <= keep < len(rows_of) else None)
    return [percentile_interval(boot[:, i], why=why) for i in range(k)]


def _axis_title(i: int, eigenvalue: float, signature: int) -> str:
    kind = "imaginary, λ<0" if signature < 0 else "real, λ>0" if signature > 0 else "λ=0"
    return f"PC{i + 1} ({kind})"


#: Line style and end marker of each method, in order of first appearance.
METHOD_DASHES = ("solid", "dash", "dot", "dashdot")
METHOD_SYMBOLS = ("circle", "square", "cross", "triangle-up", "circle-open", "star")
#: Marks of the two reference models: the truth (the one-hot labels) and the ignorance model.
TRUTH_MARK, IGNORANCE_MARK = ("diamond", "#000000"), ("x", "#000000")


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
    keys = [Series(empty, empty, empty, name=k, color=c, mode="lines", width=3)
            for k, c in colour.items()]
    keys += [Series(empty, empty, empty, name=k, group=f"style {k}", color="#333333",
                    mode="lines+markers", dash=d, symbol=m, marker_size=7)
             for k, (d, m) in styles.items()]
    return keys


def _figure(records: pd.DataFrame, inpca, color_by: str,
            references: dict[str, np.ndarray] | None = None) -> Figure:
    """One 3-D line per run in the first three axes, from its start (open circle) to its end
    (the method's marker); colour by ``color_by`` (task or method), line style and end marker
    by the other; the truth and the ignorance model marked; the run, step, accuracy and
    progress on hover; the explained stress of the three axes in the title."""
    X = inpca.embedding_
    if X.shape[1] < 3:
        X = np.pad(X, ((0, 0), (0, 3 - X.shape[1])))
    sig = list(inpca.signature_) + [0] * 3
    lam = list(inpca.eigenvalues_) + [0.0] * 3
    by, styled = ("task", "method") if color_by == "task" else ("method", "task")
    colour = colours(records[by].astype(str))
    kinds = unique(records[styled].astype(str))
    styles = {k: (METHOD_DASHES[i % len(METHOD_DASHES)], METHOD_SYMBOLS[i % len(METHOD_SYMBOLS)])
              for i, k in enumerate(kinds)}
    acc = records["accuracy"] if "accuracy" in records else pd.Series(np.nan, index=records.index)
    lines, ends, starts = [], {}, []
    for run_id in unique(records["run_id"]):
        rows = records.index[records["run_id"] == run_id]
        first = records.loc[rows[0]]
        key, kind = str(first[by]), str(first[styled])
        hover = [f"run {run_id}\ntask {first['task']}, method {first['method']}\nstep {step}"
                 f"\naccuracy {a:.3f}\nprogress {lam_:.3f}"
                 for step, a, lam_ in zip(records.loc[rows, "step"], acc.loc[rows],
                                          records.loc[rows, "progress"], strict=True)]
        lines.append(Series(x=X[rows, 0], y=X[rows, 1], z=X[rows, 2], mode="lines", group=key,
                            color=colour[key], dash=styles[kind][0], width=2, hover=hover))
        ends.setdefault((key, kind), []).append(rows[-1])
        starts.append(rows[0])
    marks = [Series(X[r, 0], X[r, 1], X[r, 2], mode="markers", group=key, color=colour[key],
                    symbol=styles[kind][1], marker_size=6,
                    hover=[f"end of run {records.loc[i, 'run_id']}\n{by} {key}, {styled} {kind}"
                           for i in r])
             for (key, kind), r in ends.items()]
    marks.append(Series(X[starts, 0], X[starts, 1], X[starts, 2], mode="markers",
                        name="start of a run", color="#555555", symbol="circle-open",
                        marker_size=5, hover=[f"start of run {records.loc[i, 'run_id']}"
                                              for i in starts]))
    for (name, point), (symbol, c) in zip((references or {}).items(),
                                          (TRUTH_MARK, IGNORANCE_MARK), strict=False):
        p = np.pad(point[:3], (0, max(0, 3 - point.size)))
        marks.append(Series([p[0]], [p[1]], [p[2]], mode="markers", name=name, color=c,
                            symbol=symbol, marker_size=14, hover=[name]))
    panel = Panel([*lines, *marks, *_legend_keys(colour, styles)],
                  xlabel=_axis_title(0, lam[0], sig[0]), ylabel=_axis_title(1, lam[1], sig[1]),
                  zlabel=_axis_title(2, lam[2], sig[2]))
    k3 = min(3, inpca.explained_stress_.size)
    return Figure([panel], title=f"InPCA of all trajectories: {k3} axes explain "
                  f"{inpca.explained_stress_[k3 - 1]:.2f} of the stress",
                  legend_title=f"colour: {by}; line, end marker: {styled}", height=700)
