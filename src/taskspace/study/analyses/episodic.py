"""Analysis 5: episodic (protonet) against supervised trajectories on the same task."""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import (
    AnalysisResult,
    colours,
    end_model,
    fmt,
    fmt_ci,
    jackknife_interval,
    leave_one_out,
    not_applicable,
    run_table,
)
from taskspace.study.analyses.figure import Area, Band, Figure, Panel, Series
from taskspace.study.analyses.stats import plateau, verdict

NAME = "episodic_vs_supervised"
TITLE = "Episodic vs supervised training"
MIDDLE = (0.2, 0.8)   # progress range counted as "the middle" of training
#: The plateau criterion (`stats.plateau`): progress on the run's own task changes by less than
#: ``PLATEAU_TOL`` over the last ``PLATEAU_FRACTION`` of its steps.
PLATEAU_FRACTION, PLATEAU_TOL = 0.2, 0.02


def own_progress(store, run) -> tuple[np.ndarray, np.ndarray]:
    """(steps, progress on the run's own task classes) of one run (a row of `run_table`)."""
    from taskspace import progress

    traj = store.trajectory(run["run_id"])
    classes = run["class_idx"] if len(run["class_idx"]) < store.n_classes else None
    return np.asarray(traj.steps), progress(traj.predictions, store.labels, classes=classes)


def plateau_table(store, runs, fraction: float = PLATEAU_FRACTION,
                  tol: float = PLATEAU_TOL) -> pd.DataFrame:
    """The plateau criterion of every run in ``runs``: ``run_id, task, method, last_step,
    final_progress, change, converged``."""
    rows = []
    for _, run in runs.iterrows():
        steps, lam = own_progress(store, run)
        p = (plateau(steps, lam, fraction=fraction, tol=tol) if len(steps) >= 2 else None)
        rows.append({"run_id": run["run_id"], "task": run["task"], "method": run["method"],
                     "last_step": int(steps[-1]), "final_progress": float(lam[-1]),
                     "change": p.change if p else np.nan,
                     "converged": bool(p.converged) if p else False})
    return pd.DataFrame(rows, columns=["run_id", "task", "method", "last_step",
                                       "final_progress", "change", "converged"])


def episodic_vs_supervised(store, study=None, episodic: str = "protonet",
                           supervised: str = "supervised") -> AnalysisResult:
    """For every task with runs of both methods: ``compare_trajectories`` (SPEC §9) between the
    episodic and the supervised runs (curve over the whole common progress range, table rows
    ``task, progress, distance``), its mean over the whole range and over the middle of training
    (progress in ``MIDDLE``), ``d_B`` between the seed-averaged end models, each method's
    end-model distance to the truth, and the ratio end/middle.

    Intervals: delete-one jackknife over runs (a bootstrap would repeat runs and bias distances
    between seed averages upward); the curve's pointwise interval is in the table's ``ci_low``,
    ``ci_high`` (`curve_band`). Every run's plateau criterion (`plateau_table`) is reported;
    the paper's claim is about converged runs. Verdict (pre-registered): **agrees** when every
    run has plateaued and the interval of end/middle lies below 1 (they meet); **disagrees**
    when every run has plateaued and it lies above 1; **inconclusive** otherwise (with the
    reason)."""
    from taskspace import bhattacharyya, compare_trajectories

    runs = run_table(store)
    both = sorted(set(runs.loc[runs["method"] == episodic, "task"])
                  & set(runs.loc[runs["method"] == supervised, "task"]))
    if not both:
        return not_applicable(NAME, TITLE, f"no task has runs of both {episodic!r} and "
                              f"{supervised!r}")
    labels = store.labels
    truth = np.eye(store.n_classes)[labels]
    involved = runs[runs["task"].isin(both) & runs["method"].isin([episodic, supervised])]
    plateaus = plateau_table(store, involved)
    curves, stats, deleted = [], [], []
    for task in both:
        ids = {m: list(runs.loc[(runs["task"] == task) & (runs["method"] == m), "run_id"])
               for m in (episodic, supervised)}
        trajs = {r: np.asarray(store.trajectory(r).predictions, dtype=np.float64)
                 for rs in ids.values() for r in rs}
        ends_of = {r: end_model(store, r) for r in trajs}

        def measure(pick, trajs=trajs, ends_of=ends_of):
            """(whole-range mean, middle mean, end distance, episodic→truth, supervised→truth)."""
            a, b = (np.mean([ends_of[r] for r in pick[m]], axis=0)
                    for m in (episodic, supervised))
            end = float(bhattacharyya(a, b))
            to_truth = (float(bhattacharyya(a, truth)), float(bhattacharyya(b, truth)))
            try:
                cmp = compare_trajectories([trajs[r] for r in pick[episodic]],
                                           [trajs[r] for r in pick[supervised]], labels)
            except ValueError:      # no common progress range
                return (np.nan, np.nan, end, *to_truth), None
            inside = (cmp.grid >= MIDDLE[0]) & (cmp.grid <= MIDDLE[1])
            mid = float(cmp.distance[inside].mean()) if inside.any() else np.nan
            return (float(cmp.mean), mid, end, *to_truth), cmp

        values, cmp = measure(ids)
        left_out = [measure(pick) for _, pick in leave_one_out(ids)]
        if cmp is None:
            curves.append(pd.DataFrame({"task": [task], "progress": [np.nan],
                                        "distance": [np.nan],
                                        "note": ["no common progress range"]}))
        else:
            lo, hi = curve_band(cmp, [c for _, c in left_out])
            curves.append(pd.DataFrame({"task": task, "progress": cmp.grid,
                                        "distance": cmp.distance, "ci_low": lo, "ci_high": hi}))
        stats.append(values)
        deleted.append([v for v, _ in left_out])
    if all(np.isnan(v[1]) for v in stats):
        return not_applicable(NAME, TITLE, "the episodic and supervised runs share no "
                              "progress range in the middle of training")
    table = pd.concat(curves, ignore_index=True)
    stats_a = np.array(stats)                   # (tasks, 5)
    names = ("whole", "middle", "end", "episodic_to_truth", "supervised_to_truth")
    est = dict(zip(names, np.nanmean(stats_a, axis=0), strict=True))
    one_run = None if any(deleted) else "one run of each method per task"
    ci = {k: jackknife_interval(est[k], _deleted_means(
        list(stats_a[:, i]), [[d[i] for d in task] for task in deleted]), why=one_run)
        for i, k in enumerate(names)}
    ratio = est["end"] / est["middle"]
    ratios = _deleted_ratios(stats_a, deleted)
    ratio_ci = jackknife_interval(ratio, ratios, why=one_run)
    n_conv, n_runs = int(plateaus["converged"].sum()), len(plateaus)
    if n_conv < n_runs:
        call = (f"inconclusive ({n_runs - n_conv} of {n_runs} runs have not plateaued: "
                f"progress changed by ≥ {PLATEAU_TOL} over the last "
                f"{PLATEAU_FRACTION:.0%} of training)")
    else:
        call = verdict(ratio, ratio_ci, None, expected="less", null=1.0)
    finals = ", ".join(f"{m} {g.min():.2f}" if f"{g.min():.2f}" == f"{g.max():.2f}" else
                       f"{m} {g.min():.2f} to {g.max():.2f}" for m, g in
                       plateaus.groupby("method", sort=False)["final_progress"])
    common = table.dropna(subset=["distance"]).groupby("task")["progress"].agg(["min", "max"])
    ranges = ", ".join(f"{t} {r['min']:.2f} to {r['max']:.2f}" for t, r in common.iterrows())
    finding = (f"Over {len(both)} task(s), {episodic} and {supervised} trajectories are "
               f"d_B = {fmt_ci(est['middle'], ci['middle'])} apart in the middle of training "
               f"(progress {MIDDLE[0]}–{MIDDLE[1]}), {fmt_ci(est['whole'], ci['whole'])} over "
               f"the whole common progress range ({ranges}), and their end models "
               f"d_B = {fmt_ci(est['end'], ci['end'])} apart; ratio end/middle = "
               f"{fmt_ci(ratio, ratio_ci)} (jackknife over runs). End models' distance to the "
               f"truth: {episodic} {fmt_ci(est['episodic_to_truth'], ci['episodic_to_truth'])}, "
               f"{supervised} {fmt_ci(est['supervised_to_truth'], ci['supervised_to_truth'])}. "
               f"Plateau criterion met by {n_conv} of {n_runs} runs (largest change "
               f"{fmt(plateaus['change'].max(), 2)}; final progress on the own task: {finals})."
               f" Verdict: {call}.")
    summary = {**est, **{f"{k}_ci": v for k, v in ci.items()}, "ratio": ratio,
               "ratio_ci": ratio_ci, "n_converged": n_conv, "n_runs": n_runs, "verdict": call,
               "plateaus": plateaus.to_dict("records")}
    return AnalysisResult(NAME, TITLE, table, _figure(table), finding, summary=summary)


def _deleted_ratios(stats: np.ndarray, deleted: list[list[tuple]]) -> list[float]:
    """Delete-one values of mean(end)/mean(middle) over tasks: each task's delete-one values
    replace its own in turn."""
    out = []
    for t, task in enumerate(deleted):
        for d in task:
            s = stats.copy()
            s[t] = d
            out.append(np.nanmean(s[:, 2]) / np.nanmean(s[:, 1]))
    return out


def _deleted_means(values: list[float], deleted: list[list[float]]) -> list[float]:
    """The mean over tasks with one run left out: each task's delete-one values replace its own
    value in turn."""
    values = np.asarray(values, dtype=np.float64)
    total, count = np.nansum(values), np.isfinite(values).sum()
    out = []
    for v, task_deleted in zip(values, deleted, strict=True):
        for d in task_deleted:
            if np.isfinite(v) and np.isfinite(d):
                out.append((total - v + d) / count)
            elif np.isfinite(d):     # the task had no value with all its runs
                out.append((total + d) / (count + 1))
            else:
                out.append(np.nan)
    return out


def curve_band(cmp, left_out, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise delete-one jackknife interval of a distance curve, ``θ̂(g) ± z·SE(g)`` (see
    `jackknife_interval`), on the grid of ``cmp`` (a `compare_trajectories` result).

    ``left_out`` holds the curves with one run left out (None where they share no progress
    range); each is interpolated onto ``cmp.grid`` (NaN outside its own range). NaN bounds
    where fewer than two delete-one curves reach a grid point.
    """
    from scipy.stats import norm

    grid = np.asarray(cmp.grid, dtype=np.float64)
    rows = [np.interp(grid, c.grid, c.distance, left=np.nan, right=np.nan)
            for c in left_out if c is not None]
    lo = hi = np.full(grid.shape, np.nan)
    if len(rows) < 2:
        return lo, hi
    values = np.array(rows)                                   # (n, G)
    finite = np.isfinite(values)
    n = finite.sum(axis=0)
    mean = np.where(finite, values, 0.0).sum(axis=0) / np.maximum(n, 1)
    spread = np.where(finite, (values - mean) ** 2, 0.0).sum(axis=0)
    se = np.sqrt((n - 1) / np.maximum(n, 1) * spread)
    z = float(norm.ppf(0.5 + level / 2))
    ok = n >= 2
    lo, hi = lo.copy(), hi.copy()
    lo[ok] = cmp.distance[ok] - z * se[ok]
    hi[ok] = cmp.distance[ok] + z * se[ok]
    return lo, hi


def _figure(table: pd.DataFrame) -> Figure:
    """The distance curve of every task over progress with its 95% jackknife band, the middle
    of training shaded."""
    colour = colours(table["task"].astype(str))
    items = []
    curves = table.dropna(subset=["distance"])
    for task, part in curves.groupby("task", sort=False):
        key = str(task)
        if "ci_low" in part and np.isfinite(part["ci_low"]).any():
            items.append(Area(part["progress"], part["ci_low"], part["ci_high"], group=key,
                              color=colour[key], opacity=0.2))
        items.append(Series(part["progress"], part["distance"], name=key, color=colour[key],
                            mode="lines+markers",
                            hover=[f"task {task}\nprogress {p:.2f}\nd_B {d:.4g}" for p, d in
                                   zip(part["progress"], part["distance"], strict=True)]))
    if any(isinstance(i, Area) for i in items):
        empty = np.array([])
        items.append(Area(empty, empty, empty, name="shaded: 95% interval (jackknife over runs)",
                          color="#777777", opacity=0.3))
    band = Band(*MIDDLE, name=f"middle of training (progress {MIDDLE[0]}–{MIDDLE[1]})")
    return Figure([Panel([band, *items], xlabel="progress λ (0 uniform, 1 truth)",
                         ylabel="d_B between seed averages")],
                  title="Episodic vs supervised: d_B at equal progress", height=420)
