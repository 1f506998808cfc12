"""The figure of analysis 2 (`progress_other_tasks`): what it shows, without drawing it.

Up to :data:`SMALL_MULTIPLES_MAX` training tasks: the relative end progress as a heatmap and one
small panel per training task A with the progress on every B along A's training. Beyond that a
panel per task (75 panels of 75 curves in the reference study) can be neither read nor sent in a
report, so the heatmap is kept and the small multiples give way to one panel of the finding's own
statistic: each task's transfer against its class diversity, one series per size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import PALETTE, colours, fmt
from taskspace.study.analyses.figure import Figure, Heatmap, Panel, Series
from taskspace.study.analyses.stats import unique

TITLE = "Progress on other tasks"
#: Most training tasks drawn as small multiples; more get the scatter of transfer and diversity.
SMALL_MULTIPLES_MAX = 12
#: Columns of the figure's grid: the heatmap takes 2 × 2 cells, one panel per training task the
#: others (small multiples: 64 curves of an 8-task study in one panel cannot be read).
GRID_COLUMNS = 4
#: Marker shapes of the task sizes in the scatter, told apart in print as well.
SIZE_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star")


def figure(result) -> Figure:
    """The figure of a `ProgressResult`: small multiples up to :data:`SMALL_MULTIPLES_MAX`
    training tasks (when its curves were computed), else the heatmap beside the scatter of
    transfer against diversity."""
    n = result.tasks.shape[0]
    if n <= SMALL_MULTIPLES_MAX and result.curves is not None:
        return small_multiples_figure(result.table, result.curves)
    return scatter_figure(result)


def _heatmap_panel(table: pd.DataFrame, tasks: list, text: bool, **place) -> Panel:
    """The relative end progress of every (A, B), rows A and columns B in the order of ``tasks``."""
    grid = table.pivot(index="train_task", columns="eval_task", values="relative")
    grid = grid.loc[tasks, tasks]
    heat = Heatmap(
        grid.to_numpy(),
        x=tasks,
        y=tasks,
        zmin=0,
        colorbar="relative",
        text_format=".2f" if text else None,
        hover_names=("eval", "train", "relative"),
    )
    return Panel(
        [heat],
        title="end progress on B / B's own",
        xlabel="evaluation task B",
        ylabel="training task A",
        **place,
    )


def scatter_figure(result) -> Figure:
    """The heatmap (tasks ordered by size, then diversity; no numbers in its cells) and the
    transfer of each task A against its class diversity, one marker series per size, titled with
    the stratified ρ and its interval (bootstrap over tasks)."""
    tasks = result.tasks.sort_values(["size", "diversity"], kind="stable")
    # three rows for the heatmap: room for one label per task on each axis
    heat = _heatmap_panel(result.table, list(tasks["task"]), text=False, rowspan=3, colspan=2)
    heat.title += " (tasks by size, then diversity)"
    series = []
    for i, (k, part) in enumerate(tasks.groupby("size", sort=True)):
        series.append(
            Series(
                x=part["diversity"].to_numpy(),
                y=part["transfer"].to_numpy(),
                name=f"{k} classes",
                color=PALETTE[i % len(PALETTE)],
                mode="markers",
                symbol=SIZE_SYMBOLS[i % len(SIZE_SYMBOLS)],
                marker_size=5.0,
                hover=[
                    f"{t}\ndiversity {d:.3g}\ntransfer {v:.3f}"
                    for t, d, v in part[["task", "diversity", "transfer"]].itertuples(index=False)
                ],
            )
        )
    rho = result.stratified
    scatter = Panel(
        series,
        title=f"stratified ρ = {rho.short()}, p = {fmt(rho.p_value, 2)}",
        xlabel=f"class diversity of A ({result.diversity_kind})",
        ylabel="transfer of A (relative progress)",
        col=2,
        rowspan=2,
    )
    return Figure(
        [heat, scatter],
        title=f"{TITLE}: {result.n_tasks} training tasks; transfer (mean relative progress on "
        "the disjoint tasks of A's size) against class diversity, interval over tasks",
        rows=3,
        cols=3,
        legend_title="size of A",
        height=1000,
    )


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


def _placed_cells(n: int, block: int) -> tuple[int, list, list]:
    """Columns of the grid, and the top-left cell and column span of each of ``n`` small
    multiples around a ``block``-row heatmap."""
    cols = grid_columns(n, block_rows=block)
    cells = small_multiple_cells(n, cols=cols, block_rows=block)
    spans = row_spans(cells, cols)
    # the spans fill the last row from the left: columns move right by the spans before them
    starts, at = [], {}
    for (row, col), span in zip(cells, spans, strict=True):
        c = at.get(row, col)
        starts.append((row, c))
        at[row] = c + span
    return cols, starts, spans


def _curve_panel(mean, a, tasks, colour, place, labels, yrange) -> Panel:
    """Progress on every B along the training of A (mean over seeds), B = A thick."""
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
    (row, col), span = place
    xlabel, ylabel = labels
    return Panel(
        series,
        title=f"trained on {a}",
        row=row,
        col=col,
        colspan=span,
        xlabel=xlabel,
        ylabel=ylabel,
        yrange=yrange,
    )


def small_multiples_figure(table: pd.DataFrame, curves: pd.DataFrame) -> Figure:
    """The relative end progress as a heatmap; one small panel per training task A with the
    progress on every B along A's training (mean over seeds), coloured by B."""
    tasks = unique(table["train_task"])
    # Beyond ten tasks the heatmap's rotated task names reach a row further down than the
    # heatmap: that row stays empty below it (in the reference study's report, 20 tasks, they
    # ran into the small multiples' titles).
    block = 3 if len(tasks) > 10 else 2
    panels = [_heatmap_panel(table, tasks, text=True, rowspan=2, colspan=2)]
    # sorted: `.loc[(a, b)]` on an unsorted MultiIndex warns (and is slow)
    mean = curves.groupby(["train_task", "eval_task", "fraction"])["progress"].mean()
    cols, cells, spans = _placed_cells(len(tasks), block)
    covered = {(r, c + k) for (r, c), span in zip(cells, spans, strict=True) for k in range(span)}
    # the heatmap spans its rows even when every small multiple fits beside it in row 0
    last_row = max(block - 1, max(r for r, _ in cells))
    # one y range for all small multiples, so that their curves compare at a glance
    lo, hi = float(np.nanmin(mean.to_numpy())), float(np.nanmax(mean.to_numpy()))
    pad = 0.05 * (hi - lo) if hi > lo else 0.05
    colour = colours(tasks)
    for a, (row, col), span in zip(tasks, cells, spans, strict=True):
        leftmost = col == 0 or (row < block and col == 2)
        bottom = (row + 1, col) not in covered
        labels = ("fraction of training" if bottom else "", "progress on B" if leftmost else "")
        place = ((row, col), span)
        panels.append(_curve_panel(mean, a, tasks, colour, place, labels, (lo - pad, hi + pad)))
    return Figure(
        panels,
        title=TITLE + ": progress on each task B along the training of A "
        "(mean over seeds; thick: B = A)",
        rows=last_row + 1,
        cols=cols,
        legend_title="evaluation task B",
        height=260 * (last_row + 1) + 80,
    )
