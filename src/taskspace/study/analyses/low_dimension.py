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
from taskspace.study.analyses.figure import Colouring, Figure, Panel, Series

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
    with a negative eigenvalue are marked "imaginary"), coloured and in the legend by
    ``color_by`` (``"task"`` or ``"method"``; the interactive figure switches between them).
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
        if rows.size == M:
            # Every model is this method's: its own InPCA and subsets are the ones above
            # (n_boot more eigenproblems of M models each, the analysis's whole cost at
            # M = 1830, would only repeat them).
            s3, ci = float(stress[k3 - 1]), stress_ci[k3 - 1]
        else:
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
    figure = _figure(records, inpca, color_by)
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


def _figure(records: pd.DataFrame, inpca, color_by: str) -> Figure:
    """One 3-D series per run in the first three axes; legend and colour by task or by method
    (a menu switches), the run, step, accuracy and progress on hover."""
    X = inpca.embedding_
    if X.shape[1] < 3:
        X = np.pad(X, ((0, 0), (0, 3 - X.shape[1])))
    sig = list(inpca.signature_) + [0] * 3
    lam = list(inpca.eigenvalues_) + [0.0] * 3
    keys = ("task", "method") if color_by == "task" else ("method", "task")
    by = {key: colours(records[key].astype(str)) for key in keys}
    acc = records["accuracy"] if "accuracy" in records else pd.Series(np.nan, index=records.index)
    series, per_key = [], {key: [] for key in keys}
    for run_id in unique(records["run_id"]):
        rows = records.index[records["run_id"] == run_id]
        first = records.loc[rows[0]]
        for key in keys:
            per_key[key].append(str(first[key]))
        hover = [f"run {run_id}\ntask {first['task']}, method {first['method']}\nstep {step}"
                 f"\naccuracy {a:.3f}\nprogress {lam_:.3f}"
                 for step, a, lam_ in zip(records.loc[rows, "step"], acc.loc[rows],
                                          records.loc[rows, "progress"], strict=True)]
        key = str(first[keys[0]])
        series.append(Series(x=X[rows, 0], y=X[rows, 1], z=X[rows, 2], mode="lines+markers",
                             name=key, color=by[keys[0]][key], width=2, marker_size=2.5,
                             hover=hover))
    colourings = tuple(Colouring(key, tuple(by[key][v] for v in per_key[key]),
                                 tuple(per_key[key]), tuple(per_key[key])) for key in keys)
    panel = Panel(series, xlabel=_axis_title(0, lam[0], sig[0]),
                  ylabel=_axis_title(1, lam[1], sig[1]), zlabel=_axis_title(2, lam[2], sig[2]),
                  colourings=colourings)
    return Figure([panel], title="InPCA of all trajectories (first three axes)",
                  legend_title=keys[0], height=700)
