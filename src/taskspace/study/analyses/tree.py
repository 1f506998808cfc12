"""Analysis 3: hierarchical clustering of tasks, compared with the WordNet hierarchy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import (
    AnalysisResult,
    end_model,
    fmt_ci,
    jackknife_interval,
    leave_one_out,
    not_applicable,
    run_table,
    spearman,
    task_classes,
)
from taskspace.study.analyses.figure import Dendrogram, Figure, Panel

NAME = "tree"
TITLE = "The tree: clustering of tasks against WordNet"


def _cophenetic(D: np.ndarray) -> np.ndarray:
    from scipy.cluster.hierarchy import cophenet, linkage
    from scipy.spatial.distance import squareform

    return cophenet(linkage(squareform(D, checks=False), method="average"))


def wordnet_task_distances(store, tasks: dict) -> np.ndarray:
    """Mean WordNet path distance between the classes of two tasks (0 on the diagonal)."""
    from taskspace.data.hierarchy import ClassHierarchy

    tree = ClassHierarchy.from_dict(store.hierarchy)
    order = [tree.class_index(c) for c in store.class_names]
    C = tree.class_distances("path")[np.ix_(order, order)]
    names = list(tasks)
    D = np.zeros((len(names), len(names)))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j:
                D[i, j] = C[np.ix_(tasks[a], tasks[b])].mean()
    return D


def tree(store, study=None, method: str = "supervised") -> AnalysisResult:
    """Average-linkage clustering of tasks (runs of ``method``) by ``d_B`` between their end models
    (arithmetic mean over seeds, SPEC §8) and by ``d_traj`` between their trajectories (SPEC §9),
    compared with the WordNet distances between their classes: Spearman correlation between the
    cophenetic distances of each clustering and the WordNet task distances, with a delete-one
    jackknife interval over runs.
    """
    from scipy.spatial.distance import squareform

    from taskspace import bhattacharyya, compare_trajectories

    runs = run_table(store)
    runs = runs[runs["method"] == method].reset_index(drop=True)
    tasks = task_classes(runs)
    if len(tasks) < 3:
        return not_applicable(NAME, TITLE, f"clustering needs at least 3 tasks with runs of "
                              f"{method!r}, the store has {len(tasks)}")
    if not store.hierarchy:
        return not_applicable(NAME, TITLE, "the store has no class hierarchy to compare with")
    names = list(tasks)
    ids = {t: list(runs.loc[runs["task"] == t, "run_id"]) for t in names}
    ends = {r: end_model(store, r) for rs in ids.values() for r in rs}
    labels = store.labels

    def end_distances(pick):
        means = np.array([np.mean([ends[r] for r in pick[t]], axis=0) for t in names])
        D = bhattacharyya(means[:, None], means[None, :])
        return (D + D.T) / 2 * (1 - np.eye(len(names)))

    trajs = {r: np.asarray(store.trajectory(r).predictions, dtype=np.float64)
             for rs in ids.values() for r in rs}
    D_traj = np.zeros((len(names), len(names)))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            try:
                d = compare_trajectories([trajs[r] for r in ids[a]],
                                         [trajs[r] for r in ids[names[j]]], labels).mean
            except ValueError:      # no common progress range
                d = np.nan
            D_traj[i, j] = D_traj[j, i] = d
    W = wordnet_task_distances(store, tasks)
    wordnet = squareform(W, checks=False)
    D_end = end_distances(ids)
    rho_end = spearman(_cophenetic(D_end), wordnet)
    traj_ok = bool(np.isfinite(D_traj).all())
    rho_traj = spearman(_cophenetic(D_traj), wordnet) if traj_ok else np.nan
    # Delete-one jackknife over runs: the statistic is built on seed-averaged models, which a
    # bootstrap resample (repeating runs) makes noisier (see _common.jackknife_interval).
    picks = leave_one_out(ids)
    deleted = [spearman(_cophenetic(end_distances(pick)), wordnet) for _, pick in picks]
    ci_end = jackknife_interval(rho_end, deleted, why=None if picks else "one seed per task")
    table = pd.DataFrame({
        "clustering": ["end models, d_B", "trajectories, d_traj"],
        "spearman_with_wordnet": [rho_end, rho_traj],
        "ci_low": [ci_end[0], np.nan], "ci_high": [ci_end[1], np.nan],
        "n_tasks": len(names),
    })
    finding = (f"Average-linkage clustering of {len(names)} tasks by d_B between end models "
               f"agrees with the WordNet distances of their classes with Spearman ρ = "
               f"{fmt_ci(rho_end, ci_end)} (cophenetic distances, jackknife over runs); by "
               f"d_traj between trajectories ρ = "
               + (f"{rho_traj:.3g}." if traj_ok else "n/a (some trajectories share no "
                                                      "progress range)."))
    figure = _figure(names, {"end models (d_B)": D_end, "trajectories (d_traj)": D_traj,
                             "WordNet (mean path distance)": W})
    return AnalysisResult(NAME, TITLE, table, figure, finding,
                          summary={"spearman_end": rho_end, "spearman_end_ci": ci_end,
                                   "spearman_traj": rho_traj})


def _figure(names, matrices: dict) -> Figure:
    """One dendrogram (average linkage) per distance matrix without NaN, titled by the matrix."""
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    usable = {k: D for k, D in matrices.items() if np.isfinite(D).all()}
    panels = []
    for col, (title, D) in enumerate(usable.items()):
        tree = dendrogram(linkage(squareform(D, checks=False), method="average"),
                          labels=names, no_plot=True)
        panels.append(Panel([Dendrogram(tree["icoord"], tree["dcoord"], tree["ivl"])],
                            title=title, ylabel="merge height" if col == 0 else "", col=col))
    return Figure(panels, title=TITLE, cols=len(panels), height=450)
