"""Analysis 5: episodic (protonet) against supervised trajectories on the same task."""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import (
    AnalysisResult,
    colours,
    end_model,
    fmt_ci,
    jackknife_interval,
    leave_one_out,
    not_applicable,
    run_table,
)
from taskspace.study.analyses.figure import Band, Figure, Panel, Series

NAME = "episodic_vs_supervised"
TITLE = "Episodic vs supervised training"
MIDDLE = (0.2, 0.8)   # progress range counted as "the middle" of training


def episodic_vs_supervised(store, study=None, episodic: str = "protonet",
                           supervised: str = "supervised") -> AnalysisResult:
    """For every task with runs of both methods: ``compare_trajectories`` (SPEC §9) between the
    episodic and the supervised runs (curve over progress, table rows ``task, progress,
    distance``), the mean distance in the middle of training (progress in ``MIDDLE``) and
    ``d_B`` between the seed-averaged end models, with delete-one jackknife intervals over runs
    (a bootstrap would repeat runs and bias distances between seed averages upward)."""
    from taskspace import bhattacharyya, compare_trajectories

    runs = run_table(store)
    both = sorted(set(runs.loc[runs["method"] == episodic, "task"])
                  & set(runs.loc[runs["method"] == supervised, "task"]))
    if not both:
        return not_applicable(NAME, TITLE, f"no task has runs of both {episodic!r} and "
                              f"{supervised!r}")
    labels = store.labels
    curves, mids, ends, mid_out, end_out = [], [], [], [], []
    for task in both:
        ids = {m: list(runs.loc[(runs["task"] == task) & (runs["method"] == m), "run_id"])
               for m in (episodic, supervised)}
        trajs = {r: np.asarray(store.trajectory(r).predictions, dtype=np.float64)
                 for rs in ids.values() for r in rs}

        def compare(pick, trajs=trajs):
            return compare_trajectories([trajs[r] for r in pick[episodic]],
                                        [trajs[r] for r in pick[supervised]], labels)

        ends_of = {r: end_model(store, r) for r in trajs}

        def end_distance(pick, ends_of=ends_of):
            a, b = (np.mean([ends_of[r] for r in pick[m]], axis=0)
                    for m in (episodic, supervised))
            return float(bhattacharyya(a, b))

        def middle(cmp):
            inside = (cmp.grid >= MIDDLE[0]) & (cmp.grid <= MIDDLE[1])
            return float(cmp.distance[inside].mean()) if inside.any() else np.nan

        try:
            cmp = compare(ids)
        except ValueError as exc:
            curves.append(pd.DataFrame({"task": [task], "progress": [np.nan],
                                        "distance": [np.nan], "note": [str(exc)]}))
            continue
        curves.append(pd.DataFrame({"task": task, "progress": cmp.grid,
                                    "distance": cmp.distance}))
        mids.append(middle(cmp))
        ends.append(end_distance(ids))
        # Delete-one values of this task's statistics (a run of either method left out).
        task_mid, task_end = [], []
        for _, pick in leave_one_out(ids):
            try:
                task_mid.append(middle(compare(pick)))
            except ValueError:      # no common progress range without that run
                task_mid.append(np.nan)
            task_end.append(end_distance(pick))
        mid_out.append(task_mid)
        end_out.append(task_end)
    if not mids:
        return not_applicable(NAME, TITLE, "the episodic and supervised runs share no "
                              "progress range")
    table = pd.concat(curves, ignore_index=True)
    mid, end = float(np.nanmean(mids)), float(np.mean(ends))
    one_run = None if any(end_out) else "one run of each method per task"
    mid_ci = jackknife_interval(mid, _deleted_means(mids, mid_out), why=one_run)
    end_ci = jackknife_interval(end, _deleted_means(ends, end_out), why=one_run)
    finding = (f"Over {len(mids)} task(s), {episodic} and {supervised} trajectories are "
               f"d_B = {fmt_ci(mid, mid_ci)} apart in the middle of training (progress "
               f"{MIDDLE[0]}–{MIDDLE[1]}) and their end models d_B = {fmt_ci(end, end_ci)} apart "
               f"(jackknife over runs); ratio end/middle = {end / mid:.3g}.")
    return AnalysisResult(NAME, TITLE, table, _figure(table), finding,
                          summary={"middle": mid, "middle_ci": mid_ci, "end": end,
                                   "end_ci": end_ci})


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


def _figure(table: pd.DataFrame) -> Figure:
    """The distance curve of every task over progress, the middle of training shaded."""
    colour = colours(table["task"].astype(str))
    series = [Series(part["progress"], part["distance"], name=str(task), color=colour[str(task)],
                     mode="lines+markers",
                     hover=[f"task {task}\nprogress {p:.2f}\nd_B {d:.4g}" for p, d in
                            zip(part["progress"], part["distance"], strict=True)])
              for task, part in table.dropna(subset=["distance"]).groupby("task", sort=False)]
    band = Band(*MIDDLE, name=f"middle of training ({MIDDLE[0]}–{MIDDLE[1]})")
    return Figure([Panel([band, *series], xlabel="progress", ylabel="d_B")],
                  title=TITLE + ": d_B between seed-averaged runs at equal progress",
                  legend_title="task", height=420)
