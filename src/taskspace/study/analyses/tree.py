"""Analysis 3: hierarchical clustering of tasks, compared with the WordNet hierarchy."""

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
    fmt,
    make_finding,
    not_applicable,
    report,
    run_table,
    task_classes,
)
from taskspace.study.analyses.figure import Dendrogram, Figure, Panel
from taskspace.study.analyses.stats import (
    N_PERM,
    Interval,
    cophenetic_correlation,
    jackknife_interval,
    leave_one_out,
    mantel,
    spearman,
    verdict,
)

NAME = "tree"
TITLE = "The tree: clustering of tasks against WordNet"
#: Table columns, for people.
COLUMNS = {
    "distances": "distances",
    "mantel_r": "Mantel r with WordNet",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "p_value": "p-value (one-sided)",
    "cophenetic_correlation": "cophenetic correlation",
    "spearman_with_wordnet": "Spearman ρ, dendrogram vs WordNet",
    "verdict": "verdict",
    "n_tasks": "tasks",
}


@dataclass(frozen=True)
class TreeResult:
    """Task distances against WordNet (`compute`).

    Attributes
    ----------
    n_tasks, n_perm : int
    mantel_end : Estimate
        Mantel r (Spearman) of the end models' ``d_B`` with WordNet: jackknife interval over
        runs, one-sided permutation p.
    mantel_traj : Estimate
        The same for ``d_traj`` between whole trajectories (NaN when some share no progress).
    cophenetic : dict
        Cophenetic correlation of the ``"end"``, ``"traj"`` and ``"wordnet"`` dendrograms.
    spearman_end, spearman_traj : float
        Spearman ρ between each dendrogram's cophenetic distances and WordNet.
    verdict, verdict_traj : str
    names : tuple of str
    distances : dict
        The three (n_tasks, n_tasks) matrices by figure title.
    """

    n_tasks: int
    n_perm: int
    mantel_end: Estimate
    mantel_traj: Estimate
    cophenetic: dict
    spearman_end: float
    spearman_traj: float
    verdict: str
    verdict_traj: str
    names: tuple[str, ...] = field(repr=False, compare=False)
    distances: dict = field(repr=False, compare=False)


def tree(
    store,
    study=None,
    method: str = "supervised",
    n_perm: int = N_PERM,
    tasks: list[str] | None = None,
    progress: Progress | None = None,
) -> AnalysisResult:
    """The tree: `compute`, `describe`, the table and the figure (see `compute`)."""
    try:
        result = compute(store, method=method, n_perm=n_perm, tasks=tasks, progress=progress)
    except NotApplicable as why:
        return not_applicable(NAME, TITLE, str(why))
    r = result
    summary = {
        "mantel_end": r.mantel_end.value,
        "mantel_end_ci": r.mantel_end.interval,
        "mantel_end_p": r.mantel_end.p_value,
        "mantel_traj": r.mantel_traj.value,
        "mantel_traj_ci": r.mantel_traj.interval,
        "mantel_traj_p": r.mantel_traj.p_value,
        "cophenetic": r.cophenetic,
        "spearman_end": r.spearman_end,
        "spearman_traj": r.spearman_traj,
        "verdict": r.verdict,
        "verdict_traj": r.verdict_traj,
    }
    return AnalysisResult(
        NAME,
        TITLE,
        table(r),
        _figure(list(r.names), r.distances),
        describe(r),
        summary=summary,
        result=r,
    )


def compute(
    store,
    method: str = "supervised",
    n_perm: int = N_PERM,
    tasks: list[str] | None = None,
    progress: Progress | None = None,
) -> TreeResult:
    """Do the distances between tasks agree with WordNet? Tasks are those of the runs of
    ``method`` (restricted to ``tasks`` when given).

    Two task-distance matrices: ``d_B`` between the tasks' end models (arithmetic mean over
    seeds, SPEC §8) and ``d_traj`` between their whole trajectories (SPEC §9). Each is compared
    with the WordNet task distances (mean path distance between the tasks' classes) by the
    **Mantel test** (Spearman correlation of the upper triangles, one-sided p-value from
    ``n_perm`` permutations of the tasks; the paper predicts agreement, r > 0), with a delete-one
    jackknife interval over runs. Also: the cophenetic correlation of each matrix's
    average-linkage dendrogram (how tree-like it is), and the Spearman correlation between the
    dendrogram's cophenetic distances and WordNet. Verdict: `stats.verdict` on the end models'
    Mantel r (and, separately, on d_traj's). Raises `NotApplicable` with fewer than 3 tasks or
    without a class hierarchy.
    """
    from scipy.spatial.distance import squareform

    runs = run_table(store)
    runs = runs[runs["method"] == method].reset_index(drop=True)
    if tasks is not None:
        runs = runs[runs["task"].isin(list(tasks))].reset_index(drop=True)
    task_sets = task_classes(runs)
    if len(task_sets) < 3:
        raise NotApplicable(
            f"clustering needs at least 3 tasks with runs of {method!r}, the "
            f"store has {len(task_sets)}"
        )
    if not store.hierarchy:
        raise NotApplicable("the store has no class hierarchy to compare with")
    names = list(task_sets)
    ids = {t: list(runs.loc[runs["task"] == t, "run_id"]) for t in names}
    m = _TaskDistances(store, names, ids)
    W = wordnet_task_distances(store, task_sets)
    D_end, D_traj = m.end(ids), m.traj(ids)
    traj_ok = bool(np.isfinite(D_traj).all())
    mantel_end = _mantel_estimate(D_end, W, n_perm, ids, m.end, progress)
    mantel_traj = (
        _mantel_estimate(
            D_traj, W, n_perm, ids, lambda pick, task: m.traj(pick, D_traj, task), progress
        )
        if traj_ok
        else Estimate(np.nan, Interval.none("some trajectories share no progress range"))
    )
    wordnet = squareform(W, checks=False)
    return TreeResult(
        n_tasks=len(names),
        n_perm=n_perm,
        mantel_end=mantel_end,
        mantel_traj=mantel_traj,
        cophenetic={
            "end": cophenetic_correlation(D_end),
            "traj": cophenetic_correlation(D_traj) if traj_ok else np.nan,
            "wordnet": cophenetic_correlation(W),
        },
        spearman_end=spearman(_cophenetic(D_end), wordnet),
        spearman_traj=spearman(_cophenetic(D_traj), wordnet) if traj_ok else np.nan,
        verdict=verdict(mantel_end.value, mantel_end.interval, mantel_end.p_value),
        verdict_traj=(
            verdict(mantel_traj.value, mantel_traj.interval, mantel_traj.p_value)
            if traj_ok
            else "inconclusive"
        ),
        names=tuple(names),
        distances={
            "end models (d_B)": D_end,
            "trajectories (d_traj)": D_traj,
            "WordNet (mean path distance)": W,
        },
    )


def describe(result: TreeResult) -> Finding:
    """Headline: the verdict and the end models' Mantel r with WordNet."""
    r = result
    e, t = r.mantel_end, r.mantel_traj
    traj_text = (
        f"by d_traj between whole trajectories r = {t.text()}, p = {fmt(t.p_value, 2)} "
        f"(verdict: {r.verdict_traj})"
        if np.isfinite(t.value)
        else "by d_traj: n/a (some trajectories share no progress range)"
    )
    details = (
        f"Mantel test of {r.n_tasks} tasks' distances against the WordNet distances of "
        f"their classes (Spearman r, one-sided permutation p over {r.n_perm} "
        f"permutations of the tasks, jackknife over runs): by d_B between end models "
        f"r = {e.text()}, p = {fmt(e.p_value, 2)} (verdict: {r.verdict}); {traj_text}. "
        f"Cophenetic correlation of the average-linkage dendrograms: end models "
        f"{fmt(r.cophenetic['end'])}, trajectories {fmt(r.cophenetic['traj'])}, WordNet "
        f"{fmt(r.cophenetic['wordnet'])}."
    )
    claim = (
        f"{r.n_tasks} tasks' end-model distances follow WordNet: Mantel r = {e.short()}, "
        f"p = {fmt(e.p_value, 2)}; paper r > 0"
    )
    return make_finding(r.verdict, claim, details)


def table(result: TreeResult) -> pd.DataFrame:
    """One row per distance matrix: Mantel r with WordNet, interval, p, tree-likeness."""
    r, nan = result, np.nan
    e, t = r.mantel_end, r.mantel_traj
    return pd.DataFrame(
        {
            "distances": ["end models, d_B", "trajectories, d_traj", "WordNet"],
            "mantel_r": [e.value, t.value, 1.0],
            "ci_low": [e.low, t.low, nan],
            "ci_high": [e.high, t.high, nan],
            "p_value": [e.p_value, t.p_value, nan],
            "cophenetic_correlation": [
                r.cophenetic["end"],
                r.cophenetic["traj"],
                r.cophenetic["wordnet"],
            ],
            "spearman_with_wordnet": [r.spearman_end, r.spearman_traj, nan],
            "verdict": [r.verdict, r.verdict_traj, ""],
            "n_tasks": r.n_tasks,
        }
    ).rename(columns=COLUMNS)


class _TaskDistances:
    """Task-distance matrices of a pick of runs per task: end models' ``d_B`` (seed-averaged)
    and ``d_traj`` between whole trajectories."""

    def __init__(self, store, names, ids):
        self.names, self.labels = names, store.labels
        runs = [r for rs in ids.values() for r in rs]
        self.trajs = {
            r: np.asarray(store.trajectory(r).predictions, dtype=np.float64) for r in runs
        }
        self.ends = {r: P[-1] for r, P in self.trajs.items()}  # end_model, without a re-read

    def end(self, pick, only=None):
        from taskspace import bhattacharyya

        means = np.array([np.mean([self.ends[r] for r in pick[t]], axis=0) for t in self.names])
        D = bhattacharyya(means[:, None], means[None, :])
        return (D + D.T) / 2 * (1 - np.eye(len(self.names)))

    def _d_traj(self, pick, a, b):
        from taskspace import compare_trajectories

        try:
            return compare_trajectories(
                [self.trajs[r] for r in pick[a]], [self.trajs[r] for r in pick[b]], self.labels
            ).mean
        except ValueError:  # no common progress range
            return np.nan

    def traj(self, pick, base=None, only=None):
        """All pairs, or (with ``base``) only the row and column of task ``only`` recomputed."""
        names = self.names
        D = np.zeros((len(names), len(names))) if base is None else base.copy()
        for i, a in enumerate(names):
            for j in range(i + 1, len(names)):
                if base is None or only in (a, names[j]):
                    D[i, j] = D[j, i] = self._d_traj(pick, a, names[j])
        return D


def _mantel_estimate(D, W, n_perm, ids, distances, progress) -> Estimate:
    """Mantel r of D with W, one-sided permutation p, and its delete-one jackknife interval
    over runs (``distances(pick, task)`` recomputes D without one run of ``task``).

    The statistics are built on seed-averaged models, which a bootstrap resample (repeating
    runs) makes noisier (see `stats.jackknife_interval`)."""
    test = mantel(D, W, n_perm=n_perm)
    picks = leave_one_out(ids)
    deleted = []
    for i, (task, pick) in enumerate(picks):
        Di = distances(pick, task)
        deleted.append(mantel(Di, W, n_perm=0).statistic if np.isfinite(Di).all() else np.nan)
        report(progress, "jackknife over runs", i + 1, len(picks))
    ci = jackknife_interval(test.statistic, deleted, why=None if picks else "one seed per task")
    return Estimate(test.statistic, ci, test.p_value)


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


def _figure(names, matrices: dict) -> Figure:
    """One dendrogram (average linkage) per distance matrix without NaN, titled by the matrix."""
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    usable = {k: D for k, D in matrices.items() if np.isfinite(D).all()}
    panels = []
    for col, (title, D) in enumerate(usable.items()):
        tree = dendrogram(
            linkage(squareform(D, checks=False), method="average"), labels=names, no_plot=True
        )
        panels.append(
            Panel(
                [Dendrogram(tree["icoord"], tree["dcoord"], tree["ivl"])],
                title=title,
                ylabel="merge height" if col == 0 else "",
                col=col,
            )
        )
    return Figure(panels, title=TITLE, cols=len(panels), height=450)
