"""Analysis 2: progress on every task B along the training of every task A (SPEC §5, restricted)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import (
    BOOT_SEED,
    N_BOOT,
    AnalysisResult,
    colours,
    fmt,
    fmt_ci,
    not_applicable,
    percentile_interval,
    run_table,
    spearman,
    task_classes,
    unique,
)
from taskspace.study.analyses.figure import Figure, Heatmap, Panel, Series
from taskspace.study.analyses.stats import N_PERM, partial_spearman, spearman_test, verdict

NAME = "progress_on_other_tasks"
TITLE = "Progress on other tasks"


def class_diversity(store, classes) -> tuple[float, str]:
    """Mean WordNet path distance between a task's classes (hierarchy), else its class count."""
    if store.hierarchy:
        from taskspace.data.hierarchy import ClassHierarchy

        tree = ClassHierarchy.from_dict(store.hierarchy)
        index = [tree.class_index(store.class_names[c]) for c in classes]
        D = tree.class_distances("path")[np.ix_(index, index)]
        return float(D[np.triu_indices(len(index), 1)].mean()), "mean WordNet path distance"
    return float(len(classes)), "number of classes"


def progress_on_other_tasks(store, study=None, method: str = "supervised",
                            n_boot: int = N_BOOT, n_perm: int = N_PERM,
                            tasks: list[str] | None = None) -> AnalysisResult:
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
    """
    from taskspace import progress

    runs = run_table(store)
    runs = runs[runs["method"] == method].reset_index(drop=True)
    if tasks is not None:
        runs = runs[runs["task"].isin(list(tasks))].reset_index(drop=True)
    tasks = task_classes(runs)
    if len(tasks) < 2:
        return not_applicable(NAME, TITLE, f"needs runs of method {method!r} on at least 2 "
                              f"tasks, the store has {len(tasks)}")
    labels = store.labels
    # end[run_id][B]: progress on B of the run's last record; whole curves are kept for the figure.
    end, curves = {}, []
    for _, run in runs.iterrows():
        traj = store.trajectory(run["run_id"])
        P = traj.predictions
        frac = traj.steps / max(int(traj.steps[-1]), 1)
        end[run["run_id"]] = {}
        for b, classes in tasks.items():
            lam = progress(P, labels, classes=classes)
            end[run["run_id"]][b] = float(lam[-1])
            curves.append(pd.DataFrame({"train_task": run["task"], "eval_task": b,
                                        "run_id": run["run_id"], "fraction": frac,
                                        "progress": lam}))
    seeds = {a: list(runs.loc[runs["task"] == a, "run_id"]) for a in tasks}
    diversity = {a: class_diversity(store, c) for a, c in tasks.items()}
    diversity_kind = next(iter(diversity.values()))[1]
    names = list(tasks)
    div = np.array([diversity[a][0] for a in names])
    size = np.array([len(tasks[a]) for a in names])
    sizes = [k for k in sorted(set(size.tolist())) if (size == k).sum() >= 3]
    # Transfer is measured on the tasks of A's size that share no class with A: on a task that
    # shares classes, A's own training counts as transfer, and relative progress differs with
    # the evaluation task's size, so a mix of sizes that varies with A would confound diversity.
    # Fallbacks: disjoint tasks of any size, then all other tasks.
    disjoint = {}
    for a in names:
        free = [b for b in names if b != a and not set(tasks[a]) & set(tasks[b])]
        disjoint[a] = ([b for b in free if len(tasks[b]) == len(tasks[a])] or free
                       or [b for b in names if b != a])

    def summarise(pick: dict[str, list[str]]):
        mean = {(a, b): np.mean([end[r][b] for r in pick[a]]) for a in tasks for b in tasks}
        rel = {(a, b): mean[a, b] / mean[b, b] if mean[b, b] > 0 else np.nan
               for a in tasks for b in tasks}
        transfer = np.array([_nanmean([rel[a, b] for b in disjoint[a]]) for a in names])
        within = {k: spearman(div[size == k], transfer[size == k]) for k in sizes}
        pooled = (spearman_test(div, transfer, strata=size, n_perm=0).statistic
                  if sizes else np.nan)
        others = _nanmean([rel[a, b] for a in tasks for b in tasks if a != b])
        return mean, rel, transfer, within, pooled, others

    mean, rel, transfer, within, pooled, others = summarise(seeds)
    rng = np.random.default_rng(BOOT_SEED)
    boots = []
    for _ in range(n_boot):
        pick = {a: list(rng.choice(ids, len(ids))) for a, ids in seeds.items()}
        boots.append(summarise(pick))
    # With one seed per task every resample picks the same runs: no interval, and say why.
    why = "one seed per task" if max(len(ids) for ids in seeds.values()) == 1 else None
    rows = []
    for a, ca in tasks.items():
        for b, cb in tasks.items():
            lo, hi = percentile_interval([m[a, b] for m, *_ in boots],
                                         why="one seed" if len(seeds[a]) == 1 else None)
            rows.append({"train_task": a, "eval_task": b,
                         "overlap": len(set(ca) & set(cb)) / len(cb), "n_seeds": len(seeds[a]),
                         "progress": mean[a, b], "ci_low": lo, "ci_high": hi,
                         "own_progress": mean[b, b], "relative": rel[a, b],
                         "diversity_A": diversity[a][0], "size_A": len(ca)})
    table = pd.DataFrame(rows)
    others_ci = percentile_interval([b[-1] for b in boots], why=why)
    by_size = []
    for k in sizes:
        test = spearman_test(div[size == k], transfer[size == k], n_perm=n_perm,
                             alternative="greater")
        ci = percentile_interval([b[3][k] for b in boots], why=why)
        by_size.append({"size": k, "n_tasks": int((size == k).sum()), "spearman": within[k],
                        "ci": ci, "p_value": test.p_value})
    pooled_test = (spearman_test(div, transfer, strata=size, n_perm=n_perm, alternative="greater")
                   if sizes else None)
    pooled_p = pooled_test.p_value if pooled_test else np.nan
    pooled_ci = percentile_interval([b[4] for b in boots], why=why)
    partial = partial_spearman(div, transfer, size) if len(set(size.tolist())) > 1 else \
        spearman(div, transfer)
    call = verdict(pooled, pooled_ci, pooled_p)
    most = names[int(np.argmax(div))]
    per_size = "; ".join(
        f"{s['n_tasks']} tasks of {s['size']} classes: ρ = {fmt_ci(s['spearman'], s['ci'])}, "
        f"permutation p = {fmt(s['p_value'], 2)}" for s in by_size) or \
        "no size has 3 or more tasks: no within-size correlation"
    finding = (f"Training on one task reaches on average {fmt_ci(others, others_ci)} of the "
               f"progress that a task's own training makes on it ({len(tasks)} tasks, method "
               f"{method}, bootstrap over seeds); the most diverse task ({most}, "
               f"{diversity_kind} {fmt(diversity[most][0])}) reaches "
               f"{fmt(transfer[names.index(most)])} on the tasks of its size disjoint from it. "
               f"Spearman ρ between a task's class diversity ({diversity_kind}) and its mean "
               f"relative progress on the tasks of its size that share no class with it, within "
               f"a size: "
               f"{per_size}. Stratified by size: ρ = {fmt_ci(pooled, pooled_ci)}, "
               f"permutation p = {fmt(pooled_p, 2)} (one-sided, diversity permuted within "
               f"sizes); partial ρ controlling for size {fmt(partial)}. Verdict: {call}.")
    return AnalysisResult(NAME, TITLE, table, _figure(table, pd.concat(curves)), finding,
                          summary={"relative_progress": others, "relative_progress_ci": others_ci,
                                   "spearman": pooled, "spearman_ci": pooled_ci,
                                   "p_value": pooled_p, "partial_spearman": partial,
                                   "by_size": by_size, "verdict": call})


#: Columns of the figure's grid: the heatmap takes 2 × 2 cells, one panel per training task the
#: others (small multiples: 64 curves of an 8-task study in one panel cannot be read).
GRID_COLUMNS = 4


def _nanmean(values) -> float:
    """Mean of the finite values; NaN, without NumPy's "Mean of empty slice" warning, if none
    (every own progress 0, as in runs too short to move)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else np.nan


def small_multiple_cells(n: int, cols: int = GRID_COLUMNS, block_rows: int = 2
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
    heat = Panel([Heatmap(grid.to_numpy(), x=tasks, y=tasks, zmin=0, colorbar="relative",
                          hover_names=("eval", "train", "relative"))],
                 title="end progress on B / B's own", xlabel="evaluation task B",
                 ylabel="training task A", rowspan=2, colspan=2)
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
            series.append(Series(
                x=part.index.to_numpy(), y=part.to_numpy(), name=b, color=colour[b],
                width=3.0 if a == b else 1.3,
                hover=[f"train {a}, eval {b}\nfraction {f:.2f}\nprogress {v:.3f}"
                       for f, v in zip(part.index, part, strict=True)]))
        leftmost = col == 0 or (row < block and col == 2)
        bottom = (row + 1, col) not in covered
        panels.append(Panel(series, title=f"trained on {a}", row=row, col=col, colspan=span,
                            xlabel="fraction of training" if bottom else "",
                            ylabel="progress on B" if leftmost else "",
                            yrange=(lo - pad, hi + pad)))
    return Figure(panels, title=TITLE + ": progress on each task B along the training of A "
                  "(mean over seeds; thick: B = A)", rows=last_row + 1, cols=cols,
                  legend_title="evaluation task B", height=260 * (last_row + 1) + 80)
