"""Analysis 2: progress on every task B along the training of every task A (SPEC §5, restricted)."""

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
    colours,
    fmt,
    make_finding,
    not_applicable,
    report,
    run_table,
    task_classes,
)
from taskspace.study.analyses.figure import Figure, Heatmap, Panel, Series
from taskspace.study.analyses.stats import (
    BOOT_SEED,
    N_BOOT,
    N_PERM,
    partial_spearman,
    percentile_interval,
    spearman,
    spearman_test,
    unique,
    verdict,
)

NAME = "progress_on_other_tasks"
TITLE = "Progress on other tasks"
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


@dataclass(frozen=True)
class SizeCorrelation:
    """Spearman ρ between class diversity and transfer over the tasks of one size."""

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
        Mean relative progress of a task's training on the other tasks (bootstrap over seeds).
    by_size : tuple of SizeCorrelation
        Within each size with at least 3 tasks.
    stratified : Estimate
        The size-stratified Spearman ρ, bootstrap interval, one-sided permutation p.
    partial : float
        Partial Spearman ρ controlling for size (plain ρ when every task has one size).
    diversity_kind : str
        What diversity is ("mean WordNet path distance" or "number of classes").
    most_diverse : str
    most_diverse_diversity, most_diverse_transfer : float
    verdict : str
    table : pandas.DataFrame
        One row per (A, B), code column names.
    curves : pandas.DataFrame
        Progress on B along every run of A.
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
    curves: pd.DataFrame = field(repr=False, compare=False)


@dataclass(frozen=True)
class _Summary:
    """The statistics of one pick of seeds (all of them, or one bootstrap resample)."""

    mean: dict  # (A, B) -> mean progress of A's picked runs on B
    relative: dict  # (A, B) -> mean / B's own
    transfer: np.ndarray  # per task A: mean relative progress on its disjoint tasks
    within: dict  # size -> Spearman ρ within that size
    pooled: float  # size-stratified ρ
    others: float  # mean relative progress over all A ≠ B


@dataclass(frozen=True)
class _Design:
    """What every pick of seeds shares: tasks, their diversity and size, disjoint tasks."""

    tasks: dict
    names: list
    end: dict  # run_id -> {B: progress on B of the run's last record}
    diversity: np.ndarray
    size: np.ndarray
    sizes: list  # sizes with at least 3 tasks
    disjoint: dict  # A -> the tasks its transfer is measured on


def class_diversity(store, classes) -> tuple[float, str]:
    """Mean WordNet path distance between a task's classes (hierarchy), else its class count."""
    if store.hierarchy:
        from taskspace.data.hierarchy import ClassHierarchy

        tree = ClassHierarchy.from_dict(store.hierarchy)
        index = [tree.class_index(store.class_names[c]) for c in classes]
        D = tree.class_distances("path")[np.ix_(index, index)]
        return float(D[np.triu_indices(len(index), 1)].mean()), "mean WordNet path distance"
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
        _figure(result.table, result.curves),
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
) -> ProgressResult:
    """For every training task A (runs of ``method``) and evaluation task B (every task of those
    runs), the progress on B (uniform start, B's samples and classes) of A's end models, against
    the progress on B of B's own end models.

    Table, one row per (A, B): ``overlap`` (fraction of B's classes in A), ``progress`` (mean over
    A's seeds), ``ci_low``/``ci_high`` (bootstrap over seeds), ``own_progress`` (B's runs on B),
    ``relative`` (``progress / own_progress``), ``diversity_A``, ``size_A`` (A's number of
    classes).

    The finding relates ``transfer(A)``, the mean relative progress of A on the tasks of its
    size that share no class with it (else on the disjoint tasks of any size, else on all other
    tasks), to A's class diversity **within a size**: Spearman ρ over the tasks of each size
    with ≥ 3 tasks, and, pooled over sizes, the *stratified* ρ (the size-weighted mean of the
    within-size ρ's, `stats.spearman_test` with ``strata=size``), so that bigger tasks
    transferring more cannot produce the correlation. Intervals: percentile bootstrap over
    seeds (A's runs resampled); p-values: one-sided permutation tests (``n_perm`` permutations
    of diversity within sizes; the paper predicts ρ > 0). The partial Spearman ρ controlling
    for size is reported beside it. Verdict: `stats.verdict` on the stratified ρ.

    ``tasks`` restricts the training tasks A (and the evaluation tasks B) to these names.
    Raises `NotApplicable` with fewer than 2 tasks.
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
    end, curves = _end_progress(store, runs, task_sets, progress)
    diversity = {a: class_diversity(store, c) for a, c in task_sets.items()}
    design = _design(task_sets, end, {a: d for a, (d, _) in diversity.items()})
    seeds = {a: list(runs.loc[runs["task"] == a, "run_id"]) for a in task_sets}
    full = _summarise(design, seeds)
    boots = _bootstrap(design, seeds, n_boot, progress)
    # With one seed per task every resample picks the same runs: no interval, and say why.
    why = "one seed per task" if max(len(ids) for ids in seeds.values()) == 1 else None
    table = _table(design, seeds, full, boots)
    by_size = tuple(_size_correlation(design, full, boots, k, n_perm, why) for k in design.sizes)
    pooled = _stratified(design, full, boots, n_perm, why)
    names, div, size = design.names, design.diversity, design.size
    partial = (
        partial_spearman(div, full.transfer, size)
        if len(set(size.tolist())) > 1
        else spearman(div, full.transfer)
    )
    most = names[int(np.argmax(div))]
    return ProgressResult(
        method=method,
        n_tasks=len(names),
        relative=Estimate(full.others, percentile_interval([b.others for b in boots], why=why)),
        by_size=by_size,
        stratified=pooled,
        partial=float(partial),
        diversity_kind=next(iter(diversity.values()))[1],
        most_diverse=most,
        most_diverse_diversity=float(div[names.index(most)]),
        most_diverse_transfer=float(full.transfer[names.index(most)]),
        verdict=verdict(pooled.value, pooled.interval, pooled.p_value),
        table=table,
        curves=pd.concat(curves),
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
        f"that a task's own training makes on it ({r.n_tasks} tasks, method {r.method}, "
        f"bootstrap over seeds); the most diverse task ({r.most_diverse}, "
        f"{r.diversity_kind} {fmt(r.most_diverse_diversity)}) reaches "
        f"{fmt(r.most_diverse_transfer)} on the tasks of its size disjoint from it. "
        f"Spearman ρ between a task's class diversity ({r.diversity_kind}) and its mean "
        f"relative progress on the tasks of its size that share no class with it, within "
        f"a size: {per_size}. Stratified by size: ρ = {r.stratified.text()}, permutation "
        f"p = {fmt(r.stratified.p_value, 2)} (one-sided, diversity permuted within "
        f"sizes); partial ρ controlling for size {fmt(r.partial)}."
    )
    if np.isfinite(r.stratified.value):
        claim = (
            f"diverse tasks transfer more: ρ = {r.stratified.short()}, "
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


def _end_progress(store, runs, tasks, progress):
    """``end[run_id][B]`` (progress on B of the run's last record) and the whole curves."""
    from taskspace import progress as progress_of

    labels = store.labels
    end, curves = {}, []
    for i, (_, run) in enumerate(runs.iterrows()):
        traj = store.trajectory(run["run_id"])
        P = traj.predictions
        frac = traj.steps / max(int(traj.steps[-1]), 1)
        end[run["run_id"]] = {}
        for b, classes in tasks.items():
            lam = progress_of(P, labels, classes=classes)
            end[run["run_id"]][b] = float(lam[-1])
            curves.append(
                pd.DataFrame(
                    {
                        "train_task": run["task"],
                        "eval_task": b,
                        "run_id": run["run_id"],
                        "fraction": frac,
                        "progress": lam,
                    }
                )
            )
        report(progress, "progress of every run on every task", i + 1, len(runs))
    return end, curves


def _design(tasks: dict, end: dict, diversity: dict) -> _Design:
    """Sizes, diversity, and the tasks each task's transfer is measured on.

    Transfer is measured on the tasks of A's size that share no class with A: on a task that
    shares classes, A's own training counts as transfer, and relative progress differs with the
    evaluation task's size, so a mix of sizes that varies with A would confound diversity.
    Fallbacks: disjoint tasks of any size, then all other tasks."""
    names = list(tasks)
    size = np.array([len(tasks[a]) for a in names])
    disjoint = {}
    for a in names:
        free = [b for b in names if b != a and not set(tasks[a]) & set(tasks[b])]
        disjoint[a] = (
            [b for b in free if len(tasks[b]) == len(tasks[a])]
            or free
            or [b for b in names if b != a]
        )
    return _Design(
        tasks=tasks,
        names=names,
        end=end,
        diversity=np.array([diversity[a] for a in names]),
        size=size,
        sizes=[k for k in sorted(set(size.tolist())) if (size == k).sum() >= 3],
        disjoint=disjoint,
    )


def _summarise(d: _Design, pick: dict[str, list[str]]) -> _Summary:
    tasks = d.tasks
    mean = {(a, b): np.mean([d.end[r][b] for r in pick[a]]) for a in tasks for b in tasks}
    rel = {
        (a, b): mean[a, b] / mean[b, b] if mean[b, b] > 0 else np.nan for a in tasks for b in tasks
    }
    transfer = np.array([_nanmean([rel[a, b] for b in d.disjoint[a]]) for a in d.names])
    within = {k: spearman(d.diversity[d.size == k], transfer[d.size == k]) for k in d.sizes}
    pooled = (
        spearman_test(d.diversity, transfer, strata=d.size, n_perm=0).statistic
        if d.sizes
        else np.nan
    )
    others = _nanmean([rel[a, b] for a in tasks for b in tasks if a != b])
    return _Summary(mean, rel, transfer, within, pooled, others)


def _bootstrap(d: _Design, seeds: dict, n_boot: int, progress) -> list[_Summary]:
    """The statistics of ``n_boot`` resamples of every task's seeds (with replacement)."""
    rng = np.random.default_rng(BOOT_SEED)
    boots = []
    for i in range(n_boot):
        pick = {a: list(rng.choice(ids, len(ids))) for a, ids in seeds.items()}
        boots.append(_summarise(d, pick))
        report(progress, "bootstrap over seeds", i + 1, n_boot)
    return boots


def _table(d: _Design, seeds: dict, full: _Summary, boots: list[_Summary]) -> pd.DataFrame:
    rows = []
    for a, ca in d.tasks.items():
        for b, cb in d.tasks.items():
            lo, hi = percentile_interval(
                [s.mean[a, b] for s in boots], why="one seed" if len(seeds[a]) == 1 else None
            )
            rows.append(
                {
                    "train_task": a,
                    "eval_task": b,
                    "overlap": len(set(ca) & set(cb)) / len(cb),
                    "n_seeds": len(seeds[a]),
                    "progress": full.mean[a, b],
                    "ci_low": lo,
                    "ci_high": hi,
                    "own_progress": full.mean[b, b],
                    "relative": full.relative[a, b],
                    "diversity_A": d.diversity[d.names.index(a)],
                    "size_A": len(ca),
                }
            )
    return pd.DataFrame(rows)


def _size_correlation(
    d: _Design, full: _Summary, boots: list[_Summary], k: int, n_perm: int, why: str | None
) -> SizeCorrelation:
    at = d.size == k
    test = spearman_test(d.diversity[at], full.transfer[at], n_perm=n_perm, alternative="greater")
    ci = percentile_interval([s.within[k] for s in boots], why=why)
    return SizeCorrelation(k, int(at.sum()), Estimate(full.within[k], ci, test.p_value))


def _stratified(
    d: _Design, full: _Summary, boots: list[_Summary], n_perm: int, why: str | None
) -> Estimate:
    p = (
        spearman_test(
            d.diversity, full.transfer, strata=d.size, n_perm=n_perm, alternative="greater"
        ).p_value
        if d.sizes
        else np.nan
    )
    return Estimate(full.pooled, percentile_interval([s.pooled for s in boots], why=why), p)


#: Columns of the figure's grid: the heatmap takes 2 × 2 cells, one panel per training task the
#: others (small multiples: 64 curves of an 8-task study in one panel cannot be read).
GRID_COLUMNS = 4


def _nanmean(values) -> float:
    """Mean of the finite values; NaN, without NumPy's "Mean of empty slice" warning, if none
    (every own progress 0, as in runs too short to move)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else np.nan


def small_multiple_cells(
    n: int, cols: int = GRID_COLUMNS, block_rows: int = 2
) -> list[tuple[int, int]]:
    """Grid cells ``(row, col)`` of ``n`` panels placed beside a ``block_rows`` × 2 block at the
    top left (the heatmap, and room for its labels), then in full rows below it."""
    cells = [(r, c) for r in range(block_rows) for c in range(2, cols)]
    r = block_rows
    while len(cells) < n:
        cells.extend((r, c) for c in range(cols))
        r += 1
    return cells[:n]


def grid_columns(n: int, block_rows: int = 2, choices=range(3, 7)) -> int:
    """Columns of the grid that leave the fewest cells empty around the ``block_rows`` × 2
    heatmap for ``n`` small multiples (ties: the one nearest :data:`GRID_COLUMNS`)."""

    def empty(cols: int) -> int:
        rest = n - block_rows * (cols - 2)
        return -rest if rest <= 0 else -rest % cols

    return min(choices, key=lambda c: (empty(c), abs(c - GRID_COLUMNS)))


def row_spans(cells: list[tuple[int, int]], cols: int) -> list[int]:
    """Column span of each cell so that the last row has no empty cells: its panels are
    widened, the leftmost first, to reach the grid's right edge."""
    last = max(r for r, _ in cells)
    in_last = [i for i, (r, _) in enumerate(cells) if r == last]
    spans = [1] * len(cells)
    share, extra = divmod(cols - cells[in_last[0]][1], len(in_last))
    for j, i in enumerate(in_last):
        spans[i] = share + (j < extra)
    return spans


def _figure(table: pd.DataFrame, curves: pd.DataFrame) -> Figure:
    """The relative end progress as a heatmap; one small panel per training task A with the
    progress on every B along A's training (mean over seeds), coloured by B."""
    tasks = unique(table["train_task"])
    grid = table.pivot(index="train_task", columns="eval_task", values="relative")
    grid = grid.loc[tasks, tasks]
    # Beyond ten tasks the heatmap's rotated task names reach a row further down than the
    # heatmap: that row stays empty below it (in the reference study's report, 20 tasks, they
    # ran into the small multiples' titles).
    block = 3 if len(tasks) > 10 else 2
    heat = Panel(
        [
            Heatmap(
                grid.to_numpy(),
                x=tasks,
                y=tasks,
                zmin=0,
                colorbar="relative",
                hover_names=("eval", "train", "relative"),
            )
        ],
        title="end progress on B / B's own",
        xlabel="evaluation task B",
        ylabel="training task A",
        rowspan=2,
        colspan=2,
    )
    colour = colours(tasks)
    mean = curves.groupby(["train_task", "eval_task", "fraction"], sort=False)["progress"].mean()
    cols = grid_columns(len(tasks), block_rows=block)
    cells = small_multiple_cells(len(tasks), cols=cols, block_rows=block)
    spans = row_spans(cells, cols)
    # the spans fill the last row from the left: columns move right by the spans before them
    starts, at = [], {}
    for (row, col), span in zip(cells, spans, strict=True):
        c = at.get(row, col)
        starts.append((row, c))
        at[row] = c + span
    cells = starts
    covered = {(r, c + k) for (r, c), span in zip(cells, spans, strict=True) for k in range(span)}
    # the heatmap spans its rows even when every small multiple fits beside it in row 0
    last_row = max(block - 1, max(r for r, _ in cells))
    # one y range for all small multiples, so that their curves compare at a glance
    lo, hi = float(np.nanmin(mean.to_numpy())), float(np.nanmax(mean.to_numpy()))
    pad = 0.05 * (hi - lo) if hi > lo else 0.05
    panels = [heat]
    for a, (row, col), span in zip(tasks, cells, spans, strict=True):
        series = []
        for b in tasks:
            part = mean.loc[(a, b)]
            series.append(
                Series(
                    x=part.index.to_numpy(),
                    y=part.to_numpy(),
                    name=b,
                    color=colour[b],
                    width=3.0 if a == b else 1.3,
                    hover=[
                        f"train {a}, eval {b}\nfraction {f:.2f}\nprogress {v:.3f}"
                        for f, v in zip(part.index, part, strict=True)
                    ],
                )
            )
        leftmost = col == 0 or (row < block and col == 2)
        bottom = (row + 1, col) not in covered
        panels.append(
            Panel(
                series,
                title=f"trained on {a}",
                row=row,
                col=col,
                colspan=span,
                xlabel="fraction of training" if bottom else "",
                ylabel="progress on B" if leftmost else "",
                yrange=(lo - pad, hi + pad),
            )
        )
    return Figure(
        panels,
        title=TITLE + ": progress on each task B along the training of A "
        "(mean over seeds; thick: B = A)",
        rows=last_row + 1,
        cols=cols,
        legend_title="evaluation task B",
        height=260 * (last_row + 1) + 80,
    )
