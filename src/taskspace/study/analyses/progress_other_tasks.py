"""Analysis 2: progress on every task B along the training of every task A (SPEC §5, restricted).

Two units of resampling, each where it answers a question. The table's progress of A on B gets an
interval over A's seeds: how well A's seeds pin that one pair down. The finding is a claim about
tasks ("more diverse tasks transfer more"), so its intervals resample tasks, with replacement
within each size, each task keeping its seed-averaged transfer measured on the whole design
(`stats.resample_within`); a bootstrap over seeds holds the tasks fixed and cannot say how the
correlation would vary over another draw of tasks.
"""

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
from taskspace.study.analyses.progress_figure import SMALL_MULTIPLES_MAX, TITLE, figure
from taskspace.study.analyses.stats import (
    BOOT_SEED,
    N_BOOT,
    N_PERM,
    pair_mean_resamples,
    partial_spearman,
    percentile_interval,
    resample_within,
    spearman,
    spearman_test,
    stratified_spearman_resamples,
    verdict,
)
from taskspace.study.analyses.transfer import (
    Summary,
    TransferDesign,
    end_progress,
    seed_bounds,
    summarise,
    transfer_design,
)
from taskspace.study.task_sets import diversity

NAME = "progress_on_other_tasks"
#: Table columns, for people.
COLUMNS = {
    "train_task": "training task A",
    "eval_task": "evaluation task B",
    "overlap": "share of B's classes in A",
    "n_seeds": "seeds of A",
    "progress": "progress on B",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "own_progress": "B's own progress on B",
    "relative": "relative progress",
    "diversity_A": "class diversity of A",
    "size_A": "classes in A",
}
#: Why an interval over tasks can be missing although ρ exists.
SAME_RESAMPLES = "every resample of the tasks gives the same value"


@dataclass(frozen=True)
class SizeCorrelation:
    """Spearman ρ between class diversity and transfer over the tasks of one size: percentile
    interval from the bootstrap over those tasks, one-sided permutation p."""

    size: int
    n_tasks: int
    rho: Estimate


@dataclass(frozen=True)
class ProgressResult:
    """Progress on other tasks (`compute`).

    Attributes
    ----------
    method : str
    n_tasks : int
    relative : Estimate
        Mean relative progress of a task's training on the other tasks; interval: bootstrap over
        tasks within sizes (pairs of a task with a copy of itself left out).
    by_size : tuple of SizeCorrelation
        Within each size with at least 3 tasks; intervals: bootstrap over that size's tasks.
    stratified : Estimate
        The size-stratified Spearman ρ; interval: bootstrap over tasks within sizes; p: one-sided
        permutation test within sizes.
    partial : float
        Partial Spearman ρ controlling for size (plain ρ when every task has one size).
    diversity_kind : str
        What diversity is ("mean path distance in the WordNet hierarchy", "... in the declared
        class tree", or "number of classes").
    most_diverse : str
    most_diverse_diversity, most_diverse_transfer : float
    verdict : str
    table : pandas.DataFrame
        One row per (A, B), code column names; ``ci_low``/``ci_high`` over A's seeds.
    tasks : pandas.DataFrame
        One row per task A: ``task``, ``size``, ``diversity``, ``transfer`` (what ρ correlates).
    curves : pandas.DataFrame or None
        Progress on B along every run of A (``compute``'s ``curves``); None when not computed.
    """

    method: str
    n_tasks: int
    relative: Estimate
    by_size: tuple[SizeCorrelation, ...]
    stratified: Estimate
    partial: float
    diversity_kind: str
    most_diverse: str
    most_diverse_diversity: float
    most_diverse_transfer: float
    verdict: str
    table: pd.DataFrame = field(repr=False, compare=False)
    tasks: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    curves: pd.DataFrame | None = field(default=None, repr=False, compare=False)


def class_diversity(store, classes) -> tuple[float, str]:
    """A task's class diversity and what it is: the mean path distance between its classes in
    the store's class hierarchy (WordNet's, or a class tree the study declared), else its number
    of classes."""
    if store.hierarchy:
        from taskspace.data.hierarchy import ClassHierarchy

        tree = ClassHierarchy.from_dict(store.hierarchy)
        index = [tree.class_index(store.class_names[c]) for c in classes]
        name = hierarchy_name(store)
        where = "the WordNet hierarchy" if name == "WordNet" else name
        return diversity(tree, index), f"mean path distance in {where}"
    return float(len(classes)), "number of classes"


def progress_on_other_tasks(
    store,
    study=None,
    method: str = "supervised",
    n_boot: int = N_BOOT,
    n_perm: int = N_PERM,
    tasks: list[str] | None = None,
    progress: Progress | None = None,
) -> AnalysisResult:
    """Progress on other tasks: `compute`, `describe`, the table and the figure (see `compute`)."""
    try:
        result = compute(
            store, method=method, n_boot=n_boot, n_perm=n_perm, tasks=tasks, progress=progress
        )
    except NotApplicable as why:
        return not_applicable(NAME, TITLE, str(why))
    summary = {
        "relative_progress": result.relative.value,
        "relative_progress_ci": result.relative.interval,
        "spearman": result.stratified.value,
        "spearman_ci": result.stratified.interval,
        "p_value": result.stratified.p_value,
        "partial_spearman": result.partial,
        "by_size": [
            {
                "size": s.size,
                "n_tasks": s.n_tasks,
                "spearman": s.rho.value,
                "ci": s.rho.interval,
                "p_value": s.rho.p_value,
            }
            for s in result.by_size
        ],
        "verdict": result.verdict,
    }
    return AnalysisResult(
        NAME,
        TITLE,
        result.table.rename(columns=COLUMNS),
        figure(result),
        describe(result),
        summary=summary,
        result=result,
    )


def compute(
    store,
    method: str = "supervised",
    n_boot: int = N_BOOT,
    n_perm: int = N_PERM,
    tasks: list[str] | None = None,
    progress: Progress | None = None,
    curves: bool | None = None,
) -> ProgressResult:
    """For every training task A (runs of ``method``) and evaluation task B (every task of those
    runs), the progress on B (uniform start, B's samples and classes) of A's end models, against
    the progress on B of B's own end models.

    Table, one row per (A, B): ``overlap`` (fraction of B's classes in A), ``progress`` (mean over
    A's seeds), ``ci_low``/``ci_high`` (percentile bootstrap over A's seeds), ``own_progress``
    (B's runs on B), ``relative`` (``progress / own_progress``), ``diversity_A``, ``size_A``.

    The finding relates ``transfer(A)``, the mean relative progress of A (seeds averaged) on the
    tasks of its size that share no class with it (else on the disjoint tasks of any size, else
    on all other tasks), to A's class diversity **within a size** (`diversity_correlation`):
    the stratified Spearman ρ, its interval from the bootstrap over tasks within sizes, its
    one-sided permutation p (the paper predicts ρ > 0), and ρ within each size with ≥ 3 tasks.
    The partial Spearman ρ controlling for size is reported beside it. Verdict: `stats.verdict`
    on the stratified ρ, its interval over tasks and its p.

    ``tasks`` restricts the training tasks A (and the evaluation tasks B) to these names.
    ``curves``: compute the progress of every record (the small multiples' curves), not only of
    the last; None does so up to `progress_figure.SMALL_MULTIPLES_MAX` tasks, where the figure
    draws them. Raises `NotApplicable` with fewer than 2 tasks.
    """
    runs = run_table(store)
    runs = runs[runs["method"] == method].reset_index(drop=True)
    if tasks is not None:
        runs = runs[runs["task"].isin(list(tasks))].reset_index(drop=True)
    task_sets = task_classes(runs)
    if len(task_sets) < 2:
        raise NotApplicable(
            f"needs runs of method {method!r} on at least 2 tasks, the store has {len(task_sets)}"
        )
    whole = len(task_sets) <= SMALL_MULTIPLES_MAX if curves is None else curves
    end, curve_table = end_progress(store, runs, task_sets, progress, whole)
    diversity = [class_diversity(store, c) for c in task_sets.values()]
    rows = tuple(np.flatnonzero(runs["task"].to_numpy() == a) for a in task_sets)
    design = transfer_design(task_sets, end, rows, np.array([d for d, _ in diversity]))
    full = summarise(design, design.runs)
    low, high = seed_bounds(design, n_boot, progress)
    pooled, by_size = diversity_correlation(
        design.diversity, full.transfer, design.size, n_boot=n_boot, n_perm=n_perm
    )
    relative = _relative(design, full, n_boot)
    report(progress, "bootstrap over tasks", n_boot, n_boot)
    return _result(
        method, design, full, (pooled, by_size, relative), (low, high), diversity[0][1], curve_table
    )


def _result(method, d, full, estimates, bounds, kind, curves) -> ProgressResult:
    pooled, by_size, relative = estimates
    names, div, size = d.names, d.diversity, d.size
    partial = (
        partial_spearman(div, full.transfer, size)
        if len(set(size.tolist())) > 1
        else spearman(div, full.transfer)
    )
    most = int(np.argmax(div))
    return ProgressResult(
        method=method,
        n_tasks=len(names),
        relative=relative,
        by_size=by_size,
        stratified=pooled,
        partial=float(partial),
        diversity_kind=kind,
        most_diverse=names[most],
        most_diverse_diversity=float(div[most]),
        most_diverse_transfer=float(full.transfer[most]),
        verdict=verdict(pooled.value, pooled.interval, pooled.p_value),
        table=_table(d, full, *bounds),
        tasks=pd.DataFrame(
            {"task": names, "size": size, "diversity": div, "transfer": full.transfer}
        ),
        curves=curves,
    )


def describe(result: ProgressResult) -> Finding:
    """Headline: the verdict and the stratified ρ between diversity and transfer."""
    r = result
    per_size = (
        "; ".join(
            f"{s.n_tasks} tasks of {s.size} classes: ρ = {s.rho.text()}, permutation p = "
            f"{fmt(s.rho.p_value, 2)}"
            for s in r.by_size
        )
        or "no size has 3 or more tasks: no within-size correlation"
    )
    details = (
        f"Training on one task reaches on average {r.relative.text()} of the progress "
        f"that a task's own training makes on it ({r.n_tasks} tasks, method {r.method}); "
        f"the most diverse task ({r.most_diverse}, {r.diversity_kind} "
        f"{fmt(r.most_diverse_diversity)}) reaches {fmt(r.most_diverse_transfer)} on the "
        f"tasks of its size disjoint from it. Spearman ρ between a task's class diversity "
        f"({r.diversity_kind}) and its mean relative progress on the tasks of its size that "
        f"share no class with it (seeds averaged within a task), within a size: {per_size}. "
        f"Stratified by size: ρ = {r.stratified.text()}, permutation p = "
        f"{fmt(r.stratified.p_value, 2)} (one-sided, diversity permuted within sizes); "
        f"partial ρ controlling for size {fmt(r.partial)}. Intervals: bootstrap over tasks "
        f"(drawn with replacement within each size, each with its seed-averaged transfer); "
        f"the table's intervals of each pair's progress: bootstrap over the seeds of A."
    )
    if np.isfinite(r.stratified.value):
        claim = (
            f"diverse tasks transfer more: ρ = {_short(r.stratified)}, "
            f"p = {fmt(r.stratified.p_value, 2)}; paper ρ > 0"
        )
    else:
        why = (
            "no size has 3 tasks"
            if not r.by_size
            else f"{r.diversity_kind} is constant within each size"
        )
        claim = (
            f"others' training reaches {r.relative.short()} of own progress; no diversity ρ: {why}"
        )
    return make_finding(r.verdict, claim, details)


def _short(e: Estimate) -> str:
    """`Estimate.short`, saying why when there is no interval (a headline has room for it)."""
    if np.isfinite(e.low):
        return e.short()
    return f"{fmt(e.value, 2)} (no interval: {e.interval.why})"


def diversity_correlation(
    diversity, transfer, size, n_boot: int = N_BOOT, n_perm: int = N_PERM, seed: int = BOOT_SEED
) -> tuple[Estimate, tuple[SizeCorrelation, ...]]:
    """The finding's statistic from its per-task values.

    Parameters
    ----------
    diversity, transfer, size : array (T,)
        One value per task (transfer seed-averaged); tasks with a non-finite one are left out.
    n_boot, n_perm, seed : int

    Returns
    -------
    stratified : Estimate
        ``ρ_s = Σ_k n_k ρ_k / Σ_k n_k`` over the sizes k with ≥ 3 tasks (`stats.spearman_test`
        with ``strata=size``). Interval: percentile bootstrap over **tasks**, ``n_boot``
        resamples drawn with replacement within each size (`stats.resample_within`), each task
        keeping its transfer. p: one-sided permutation test within sizes (``n_perm``).
    by_size : tuple of SizeCorrelation
        ρ_k of each size with ≥ 3 tasks; interval from the same resamples (which, within a
        size, are the bootstrap over that size's tasks), one-sided permutation p.
    """
    x, y, g = (np.asarray(v, dtype=np.float64).ravel() for v in (diversity, transfer, size))
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, g = x[ok], y[ok], g[ok].astype(int)
    sizes = [k for k in sorted(set(g.tolist())) if (g == k).sum() >= 3]
    picks = resample_within(g, n_boot, seed)
    boot, within = stratified_spearman_resamples(x, y, g, picks)
    test = spearman_test(x, y, strata=g, n_perm=n_perm, alternative="greater")
    if np.isfinite(test.statistic):
        why = SAME_RESAMPLES
    elif sizes:
        why = "diversity or transfer is constant within every size"
    else:
        why = "no size has 3 or more tasks"
    pooled = Estimate(test.statistic, percentile_interval(boot, why=why), test.p_value)
    by_size = []
    for k in sizes:
        at = g == k
        t = spearman_test(x[at], y[at], n_perm=n_perm, alternative="greater")
        why = SAME_RESAMPLES if np.isfinite(t.statistic) else "a side is constant"
        ci = percentile_interval(within[k], why=why)
        by_size.append(SizeCorrelation(k, int(at.sum()), Estimate(t.statistic, ci, t.p_value)))
    return pooled, tuple(by_size)


def _relative(d: TransferDesign, full: Summary, n_boot: int) -> Estimate:
    """Mean relative progress over all A ≠ B, with its bootstrap over tasks within sizes."""
    boot = pair_mean_resamples(full.relative, resample_within(d.size, n_boot))
    alone = all((d.size == k).sum() == 1 for k in set(d.size.tolist()))
    why = "one task of each size" if alone else SAME_RESAMPLES
    return Estimate(full.others, percentile_interval(boot, why=why))


def _table(d: TransferDesign, full: Summary, low: np.ndarray, high: np.ndarray) -> pd.DataFrame:
    n = len(d.names)
    a, b = np.divmod(np.arange(n * n), n)
    classes = list(d.tasks.values())
    overlap = np.array([[len(set(ca) & set(cb)) / len(cb) for cb in classes] for ca in classes])
    names = np.array(d.names, dtype=object)
    return pd.DataFrame(
        {
            "train_task": names[a],
            "eval_task": names[b],
            "overlap": overlap.ravel(),
            "n_seeds": np.array([rows.size for rows in d.runs])[a],
            "progress": full.mean.ravel(),
            "ci_low": low.ravel(),
            "ci_high": high.ravel(),
            "own_progress": np.diag(full.mean)[b],
            "relative": full.relative.ravel(),
            "diversity_A": d.diversity[a],
            "size_A": d.size[a],
        }
    )
