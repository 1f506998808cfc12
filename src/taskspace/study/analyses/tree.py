"""Analysis 3: hierarchical clustering of tasks, compared with the WordNet hierarchy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import (
    AnalysisResult,
    Interval,
    end_model,
    fmt,
    fmt_ci,
    jackknife_interval,
    leave_one_out,
    not_applicable,
    run_table,
    spearman,
    task_classes,
)
from taskspace.study.analyses.figure import Dendrogram, Figure, Panel
from taskspace.study.analyses.stats import N_PERM, cophenetic_correlation, mantel, verdict

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


def tree(store, study=None, method: str = "supervised", n_perm: int = N_PERM,
         tasks: list[str] | None = None) -> AnalysisResult:
    """Do the distances between tasks agree with WordNet? Tasks are those of the runs of
    ``method`` (restricted to ``tasks`` when given).

    Two task-distance matrices: ``d_B`` between the tasks' end models (arithmetic mean over
    seeds, SPEC §8) and ``d_traj`` between their whole trajectories (SPEC §9). Each is compared
    with the WordNet task distances (mean path distance between the tasks' classes) by the
    **Mantel test** (Spearman correlation of the upper triangles, one-sided p-value from
    ``n_perm`` permutations of the tasks; the paper predicts agreement, r > 0), with a delete-one
    jackknife interval over runs. Also: the cophenetic correlation of each matrix's
    average-linkage dendrogram (how tree-like it is), and the Spearman correlation between the
    dendrogram's cophenetic distances and WordNet (a second view of the same question). Verdict:
    `stats.verdict` on the end models' Mantel r (and, separately, on d_traj's).
    """
    from scipy.spatial.distance import squareform

    from taskspace import bhattacharyya, compare_trajectories

    runs = run_table(store)
    runs = runs[runs["method"] == method].reset_index(drop=True)
    if tasks is not None:
        runs = runs[runs["task"].isin(list(tasks))].reset_index(drop=True)
    task_sets = task_classes(runs)
    if len(task_sets) < 3:
        return not_applicable(NAME, TITLE, f"clustering needs at least 3 tasks with runs of "
                              f"{method!r}, the store has {len(task_sets)}")
    if not store.hierarchy:
        return not_applicable(NAME, TITLE, "the store has no class hierarchy to compare with")
    names = list(task_sets)
    ids = {t: list(runs.loc[runs["task"] == t, "run_id"]) for t in names}
    ends = {r: end_model(store, r) for rs in ids.values() for r in rs}
    labels = store.labels

    def end_distances(pick):
        means = np.array([np.mean([ends[r] for r in pick[t]], axis=0) for t in names])
        D = bhattacharyya(means[:, None], means[None, :])
        return (D + D.T) / 2 * (1 - np.eye(len(names)))

    trajs = {r: np.asarray(store.trajectory(r).predictions, dtype=np.float64)
             for rs in ids.values() for r in rs}

    def d_traj(pick, a, b):
        try:
            return compare_trajectories([trajs[r] for r in pick[a]],
                                        [trajs[r] for r in pick[b]], labels).mean
        except ValueError:      # no common progress range
            return np.nan

    def traj_distances(pick, base=None, only=None):
        """All pairs, or (with ``base``) only the row and column of task ``only`` recomputed."""
        D = np.zeros((len(names), len(names))) if base is None else base.copy()
        for i, a in enumerate(names):
            for j in range(i + 1, len(names)):
                if base is None or only in (a, names[j]):
                    D[i, j] = D[j, i] = d_traj(pick, a, names[j])
        return D

    W = wordnet_task_distances(store, task_sets)
    wordnet = squareform(W, checks=False)
    D_end = end_distances(ids)
    D_traj = traj_distances(ids)
    traj_ok = bool(np.isfinite(D_traj).all())

    def mantel_r(D):
        return mantel(D, W, n_perm=0).statistic if np.isfinite(D).all() else np.nan

    m_end = mantel(D_end, W, n_perm=n_perm)
    m_traj = mantel(D_traj, W, n_perm=n_perm) if traj_ok else None
    # Delete-one jackknife over runs: the statistics are built on seed-averaged models, which a
    # bootstrap resample (repeating runs) makes noisier (see _common.jackknife_interval).
    picks = leave_one_out(ids)
    one = None if picks else "one seed per task"
    ci_end = jackknife_interval(m_end.statistic, [mantel_r(end_distances(p)) for _, p in picks],
                                why=one)
    ci_traj = (jackknife_interval(m_traj.statistic, [
        mantel_r(traj_distances(p, D_traj, task)) for task, p in picks], why=one)
        if traj_ok else Interval.none("some trajectories share no progress range"))
    rho_end = spearman(_cophenetic(D_end), wordnet)
    rho_traj = spearman(_cophenetic(D_traj), wordnet) if traj_ok else np.nan
    coph = {"end": cophenetic_correlation(D_end),
            "traj": cophenetic_correlation(D_traj) if traj_ok else np.nan,
            "wordnet": cophenetic_correlation(W)}
    call_end = verdict(m_end.statistic, ci_end, m_end.p_value)
    call_traj = verdict(m_traj.statistic, ci_traj, m_traj.p_value) if traj_ok else "inconclusive"
    nan = np.nan
    table = pd.DataFrame({
        "distances": ["end models, d_B", "trajectories, d_traj", "WordNet"],
        "mantel_r": [m_end.statistic, m_traj.statistic if traj_ok else nan, 1.0],
        "ci_low": [ci_end[0], ci_traj[0], nan], "ci_high": [ci_end[1], ci_traj[1], nan],
        "p_value": [m_end.p_value, m_traj.p_value if traj_ok else nan, nan],
        "cophenetic_correlation": [coph["end"], coph["traj"], coph["wordnet"]],
        "spearman_with_wordnet": [rho_end, rho_traj, nan],
        "verdict": [call_end, call_traj, ""],
        "n_tasks": len(names),
    })
    traj_text = (f"by d_traj between whole trajectories r = {fmt_ci(m_traj.statistic, ci_traj)}, "
                 f"p = {fmt(m_traj.p_value, 2)} (verdict: {call_traj})" if traj_ok else
                 "by d_traj: n/a (some trajectories share no progress range)")
    finding = (f"Mantel test of {len(names)} tasks' distances against the WordNet distances of "
               f"their classes (Spearman r, one-sided permutation p over {n_perm} permutations "
               f"of the tasks, jackknife over runs): by d_B between end models r = "
               f"{fmt_ci(m_end.statistic, ci_end)}, p = {fmt(m_end.p_value, 2)} (verdict: "
               f"{call_end}); {traj_text}. Cophenetic correlation of the average-linkage "
               f"dendrograms: end models {fmt(coph['end'])}, trajectories {fmt(coph['traj'])}, "
               f"WordNet {fmt(coph['wordnet'])}.")
    figure = _figure(names, {"end models (d_B)": D_end, "trajectories (d_traj)": D_traj,
                             "WordNet (mean path distance)": W})
    return AnalysisResult(NAME, TITLE, table, figure, finding,
                          summary={"mantel_end": m_end.statistic, "mantel_end_ci": ci_end,
                                   "mantel_end_p": m_end.p_value,
                                   "mantel_traj": m_traj.statistic if traj_ok else nan,
                                   "mantel_traj_ci": ci_traj,
                                   "mantel_traj_p": m_traj.p_value if traj_ok else nan,
                                   "cophenetic": coph, "spearman_end": rho_end,
                                   "spearman_traj": rho_traj, "verdict": call_end,
                                   "verdict_traj": call_traj})


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
