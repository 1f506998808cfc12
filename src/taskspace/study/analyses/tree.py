"""Analysis 3: hierarchical clustering of tasks, compared with the class hierarchy (WordNet's, or
a class tree the study declared).

The claim is about tasks, so the interval of each Mantel r resamples tasks (with replacement;
each task's distances are those of its seed-averaged models, measured once on the whole design),
beside the permutation p that permutes them."""

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
    hierarchy_name,
    make_finding,
    not_applicable,
    report,
    run_table,
    task_classes,
)
from taskspace.study.analyses.figure import Dendrogram, Figure, Panel
from taskspace.study.analyses.stats import (
    N_BOOT,
    N_PERM,
    Interval,
    cophenetic_correlation,
    mantel,
    mantel_resamples,
    percentile_interval,
    resample_within,
    spearman,
    verdict,
)

NAME = "tree"
TITLE = "The tree: clustering of tasks against WordNet"
#: Table columns, for people ("WordNet" becomes the hierarchy's name, `table`).
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
#: Bytes of mean models (all tasks, a block of grid points) that d_traj holds at once.
GRID_BYTES = 1 << 28


@dataclass(frozen=True)
class TreeResult:
    """Task distances against WordNet (`compute`).

    Attributes
    ----------
    n_tasks, n_perm : int
    mantel_end : Estimate
        Mantel r (Spearman) of the end models' ``d_B`` with the hierarchy's task distances:
        percentile interval from the bootstrap over tasks, one-sided permutation p.
    mantel_traj : Estimate
        The same for ``d_traj`` between whole trajectories (NaN when some share no progress).
    cophenetic : dict
        Cophenetic correlation of the ``"end"``, ``"traj"`` and ``"wordnet"`` (the hierarchy's)
        dendrograms.
    spearman_end, spearman_traj : float
        Spearman ρ between each dendrogram's cophenetic distances and the hierarchy's.
    verdict, verdict_traj : str
    names : tuple of str
    distances : dict
        The three (n_tasks, n_tasks) matrices by figure title.
    hierarchy : str
        What the class hierarchy is: "WordNet" or "the declared class tree".
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
    hierarchy: str = "WordNet"


def tree(
    store,
    study=None,
    method: str = "supervised",
    n_boot: int = N_BOOT,
    n_perm: int = N_PERM,
    tasks: list[str] | None = None,
    progress: Progress | None = None,
) -> AnalysisResult:
    """The tree: `compute`, `describe`, the table and the figure (see `compute`)."""
    try:
        result = compute(
            store, method=method, n_boot=n_boot, n_perm=n_perm, tasks=tasks, progress=progress
        )
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
        _title(r.hierarchy),
        table(r),
        _figure(list(r.names), r.distances, _title(r.hierarchy)),
        describe(r),
        summary=summary,
        result=r,
    )


def _title(hierarchy: str) -> str:
    return TITLE.replace("WordNet", hierarchy)


def compute(
    store,
    method: str = "supervised",
    n_boot: int = N_BOOT,
    n_perm: int = N_PERM,
    tasks: list[str] | None = None,
    progress: Progress | None = None,
) -> TreeResult:
    """Do the distances between tasks agree with the class hierarchy? Tasks are those of the
    runs of ``method`` (restricted to ``tasks`` when given).

    Two task-distance matrices: ``d_B`` between the tasks' end models (arithmetic mean over
    seeds, SPEC §8) and ``d_traj`` between their whole trajectories (SPEC §9, seeds averaged at
    each point of the progress grid). Each is compared with the hierarchy's task distances (mean
    path distance between the tasks' classes, WordNet's or the declared tree's) by the **Mantel
    test** (Spearman correlation of the upper triangles, one-sided p-value from ``n_perm``
    permutations of the tasks; the paper predicts agreement, r > 0), with a percentile interval
    from ``n_boot`` bootstrap resamples of the **tasks** (with replacement; pairs of a task with
    a copy of itself left out, `stats.mantel_resamples`). Also: the cophenetic correlation of
    each matrix's average-linkage dendrogram (how tree-like it is), and the Spearman correlation
    between the dendrogram's cophenetic distances and the hierarchy's. Verdict: `stats.verdict`
    on the end models' Mantel r (and, separately, on d_traj's). Raises `NotApplicable` with
    fewer than 3 tasks or without a class hierarchy.
    """
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
    ids = [list(runs.loc[runs["task"] == t, "run_id"]) for t in names]
    D_end, D_traj = task_distances(store, ids, progress)
    W = wordnet_task_distances(store, task_sets)
    picks = resample_within(np.zeros(len(names), dtype=int), n_boot)
    mantel_end = _mantel_estimate(D_end, W, n_perm, picks)
    report(progress, "bootstrap over tasks", n_boot, n_boot)
    return _result(names, D_end, D_traj, W, mantel_end, n_perm, picks, hierarchy_name(store))


def _result(names, D_end, D_traj, W, mantel_end, n_perm, picks, hierarchy) -> TreeResult:
    from scipy.spatial.distance import squareform

    traj_ok = bool(np.isfinite(D_traj).all())
    mantel_traj = (
        _mantel_estimate(D_traj, W, n_perm, picks)
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
            f"{hierarchy} (mean path distance)": W,
        },
        hierarchy=hierarchy,
    )


def describe(result: TreeResult) -> Finding:
    """Headline: the verdict and the end models' Mantel r with the class hierarchy."""
    r = result
    e, t = r.mantel_end, r.mantel_traj
    traj_text = (
        f"by d_traj between whole trajectories r = {t.text()}, p = {fmt(t.p_value, 2)} "
        f"(verdict: {r.verdict_traj})"
        if np.isfinite(t.value)
        else "by d_traj: n/a (some trajectories share no progress range)"
    )
    details = (
        f"Mantel test of {r.n_tasks} tasks' distances against the {r.hierarchy} distances of "
        f"their classes (Spearman r, one-sided permutation p over {r.n_perm} "
        f"permutations of the tasks; interval: bootstrap over tasks, seeds averaged within a "
        f"task, pairs of a task with its own copy left out): by d_B between end models "
        f"r = {e.text()}, p = {fmt(e.p_value, 2)} (verdict: {r.verdict}); {traj_text}. "
        f"Cophenetic correlation of the average-linkage dendrograms: end models "
        f"{fmt(r.cophenetic['end'])}, trajectories {fmt(r.cophenetic['traj'])}, "
        f"{r.hierarchy} {fmt(r.cophenetic['wordnet'])}."
    )
    claim = (
        f"{r.n_tasks} tasks' end-model distances follow {r.hierarchy}: Mantel r = "
        f"{e.short()}, p = {fmt(e.p_value, 2)}; paper r > 0"
    )
    return make_finding(r.verdict, claim, details)


def table(result: TreeResult) -> pd.DataFrame:
    """One row per distance matrix: Mantel r with the hierarchy, interval, p, tree-likeness."""
    r, nan = result, np.nan
    e, t = r.mantel_end, r.mantel_traj
    return pd.DataFrame(
        {
            "distances": ["end models, d_B", "trajectories, d_traj", r.hierarchy],
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
    ).rename(columns={k: v.replace("WordNet", r.hierarchy) for k, v in COLUMNS.items()})


def task_distances(store, ids: list, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """The task-distance matrices of tasks given by their runs (``ids[i]``: run ids of task i).

    Returns
    -------
    D_end : ndarray (T, T)
        ``d_B`` between the tasks' end models averaged over their runs (arithmetic, SPEC §8).
    D_traj : ndarray (T, T)
        ``d_traj`` (SPEC §9, `taskspace.compare_trajectories` of every pair): the mean over the
        progress grid's points in the pair's common range of ``d_B`` between the tasks' mean
        re-parameterised models; NaN for a pair with no common grid point. Each task's mean
        at each grid point is computed once, not once per pair.
    """
    from taskspace import average, pairwise_distances
    from taskspace import progress as progress_of

    trajs, lams = [], []
    for i, runs in enumerate(ids):
        trajs.append([store.trajectory(r).predictions for r in runs])
        lam = progress_of(np.concatenate(trajs[-1]), store.labels)
        lams.append(np.split(lam, np.cumsum([len(P) for P in trajs[-1]])[:-1]))
        report(progress, "progress of every task's runs", i + 1, len(ids))
    ends = np.stack([average(np.stack([P[-1] for P in runs])) for runs in trajs])
    D_end = _symmetric(pairwise_distances(ends))
    return D_end, _symmetric(_trajectory_distances(trajs, lams, progress))


def _symmetric(D: np.ndarray) -> np.ndarray:
    """Mirrored exactly (a summation order can differ by one ulp between the triangles), with a
    zero diagonal."""
    D = (D + D.T) / 2
    np.fill_diagonal(D, 0.0)
    return D


def _trajectory_distances(trajs: list, lams: list, progress) -> np.ndarray:
    """``d_traj`` of every pair of tasks (see `task_distances`).

    A pair's common range is ``[max λ_1, min λ_T]`` over both tasks' runs, so a grid point lies
    in it exactly when it lies in each task's own range: at grid point g only the tasks whose
    range holds g are averaged and compared, and each of their pairs counts g. Grid points are
    taken in blocks of at most ``GRID_BYTES`` of mean models.
    """
    from taskspace import pairwise_distances
    from taskspace.geometry.trajectories import DEFAULT_GRID_POINTS

    grid = np.linspace(0.0, 1.0, DEFAULT_GRID_POINTS)  # compare_trajectories' default grid
    lo = np.array([max(lam[0] for lam in task) for task in lams])
    hi = np.array([min(lam[-1] for lam in task) for task in lams])
    held = (grid[:, None] >= lo[None, :]) & (grid[:, None] <= hi[None, :])  # (K, T)
    T, model = len(trajs), trajs[0][0][0].size * 8
    step = max(1, GRID_BYTES // (T * model))
    total, count = np.zeros((T, T)), np.zeros((T, T))
    for start in range(0, grid.size, step):
        block = slice(start, start + step)
        means = {
            t: _mean_at(trajs[t], lams[t], grid[block][held[block, t]])
            for t in range(T)
            if held[block, t].any()
        }
        for k in range(start, min(start + step, grid.size)):
            tasks = np.flatnonzero(held[k])
            if tasks.size < 2:
                continue
            # a task's k-th grid point is its row among the block's points in its range
            rows = [int(held[start:k, t].sum()) for t in tasks]
            X = np.stack([means[t][r] for t, r in zip(tasks, rows, strict=True)])
            total[np.ix_(tasks, tasks)] += pairwise_distances(X)
            count[np.ix_(tasks, tasks)] += 1
        report(progress, "d_traj over the progress grid", min(start + step, grid.size), grid.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _mean_at(runs: list, lams: list, grid: np.ndarray) -> np.ndarray:
    """(K, N, C): the arithmetic mean over ``runs`` of their re-parameterisations on ``grid``
    (SPEC §7–8), as `taskspace.compare_trajectories` averages a group."""
    from taskspace import average, reparameterize

    points = [reparameterize(P, lam, grid) for P, lam in zip(runs, lams, strict=True)]
    return average(np.stack(points))


def _mantel_estimate(D, W, n_perm, picks) -> Estimate:
    """Mantel r of D with W, its one-sided permutation p, and its percentile interval over the
    bootstrap resamples ``picks`` of the tasks (`stats.mantel_resamples`)."""
    test = mantel(D, W, n_perm=n_perm)
    boot = mantel_resamples(D, W, picks)
    why = "every resample of the tasks gives the same value" if picks.size else "no resamples"
    return Estimate(test.statistic, percentile_interval(boot, why=why), test.p_value)


def _cophenetic(D: np.ndarray) -> np.ndarray:
    from scipy.cluster.hierarchy import cophenet, linkage
    from scipy.spatial.distance import squareform

    return cophenet(linkage(squareform(D, checks=False), method="average"))


def wordnet_task_distances(store, tasks: dict) -> np.ndarray:
    """Mean path distance in the store's class hierarchy (WordNet's or a declared tree) between
    the classes of two tasks (0 on the diagonal)."""
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


def _figure(names, matrices: dict, heading: str = TITLE) -> Figure:
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
    return Figure(panels, title=heading, cols=len(panels), height=450)
