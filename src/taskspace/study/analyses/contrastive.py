"""Analysis 6: distances among SimCLR end models trained on different subsets vs supervised."""

from __future__ import annotations

import itertools
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
    end_model,
    fmt,
    fmt_ci,
    make_finding,
    not_applicable,
    report,
    run_table,
)
from taskspace.study.analyses.figure import Figure, Panel, Series
from taskspace.study.analyses.stats import (
    N_BOOT,
    Interval,
    bootstrap,
    percentile_interval,
    verdict,
)

NAME = "contrastive"
TITLE = "Contrastive learning on different data"
#: Table columns, for people.
COLUMNS = {
    "method": "method",
    "run_a": "run A",
    "run_b": "run B",
    "task_a": "task A",
    "task_b": "task B",
    "same_task": "same task",
    "d_B": "d_B between end models",
}


@dataclass(frozen=True)
class ContrastiveResult:
    """Distances among end models of one method on different data (`compute`).

    Attributes
    ----------
    contrastive, supervised : str
    n_pairs : int
        Pairs of contrastive runs on different tasks.
    different_tasks : Estimate
        Mean ``d_B`` between contrastive end models on different tasks (bootstrap over pairs).
    supervised_different_tasks : Estimate
        The same for the supervised runs (NaN when there are none).
    ratio : Estimate
        contrastive / supervised (both sets of pairs resampled); the paper: below 1.
    same_task : float
        Mean ``d_B`` between contrastive seeds on the same task (NaN if none).
    verdict : str
        "inconclusive" when there is no supervised comparison.
    table : pandas.DataFrame
        One row per pair of runs, code column names.
    """

    contrastive: str
    supervised: str
    n_pairs: int
    different_tasks: Estimate
    supervised_different_tasks: Estimate
    ratio: Estimate
    same_task: float
    verdict: str
    table: pd.DataFrame = field(repr=False, compare=False)


def contrastive(
    store,
    study=None,
    contrastive: str = "simclr",
    supervised: str = "supervised",
    n_boot: int = N_BOOT,
    progress: Progress | None = None,
) -> AnalysisResult:
    """Contrastive learning: `compute`, `describe`, the table and the figure (see `compute`)."""
    try:
        r = compute(
            store, contrastive=contrastive, supervised=supervised, n_boot=n_boot, progress=progress
        )
    except NotApplicable as why:
        return not_applicable(NAME, TITLE, str(why))
    summary = {"contrastive": r.different_tasks.value}
    if np.isfinite(r.supervised_different_tasks.value):
        summary.update(
            supervised=r.supervised_different_tasks.value,
            ratio=r.ratio.value,
            ratio_ci=r.ratio.interval,
            verdict=r.verdict,
        )
    return AnalysisResult(
        NAME,
        TITLE,
        r.table.rename(columns=COLUMNS),
        _figure(r.table, n_boot),
        describe(r),
        summary=summary,
        result=r,
    )


def compute(
    store,
    contrastive: str = "simclr",
    supervised: str = "supervised",
    n_boot: int = N_BOOT,
    progress: Progress | None = None,
) -> ContrastiveResult:
    """``d_B`` between the end models of every pair of runs of one method on different tasks
    (``same_task=False``) and on the same task with different seeds (``same_task=True``), for the
    contrastive and the supervised method; the mean different-task distances of the two methods
    compared by their ratio (bootstrap over pairs). Raises `NotApplicable` without contrastive
    runs on 2 tasks."""
    table = _pairs(store, contrastive, supervised)
    diff = {
        m: table.loc[(table["method"] == m) & ~table["same_task"], "d_B"].to_numpy()
        for m in (contrastive, supervised)
    }
    a, b = diff[contrastive], diff[supervised]
    if a.size == 0:
        raise NotApplicable(f"needs runs of {contrastive!r} on at least 2 tasks")
    none = Estimate(np.nan, Interval.none(f"no {supervised} runs on different tasks"))
    sup, ratio, call = none, none, "inconclusive"
    if b.size:
        sup = Estimate(float(b.mean()), bootstrap(b, n_boot=n_boot, unit="pair"))
        ratio = Estimate(
            float(a.mean() / b.mean()),
            _ratio_interval(a, b, n_boot, progress)
            if min(a.size, b.size) > 1
            else Interval.none(f"one {contrastive if a.size < 2 else supervised} pair"),
        )
        call = verdict(ratio.value, ratio.interval, None, expected="less", null=1.0)
    same = table.loc[(table["method"] == contrastive) & table["same_task"], "d_B"]
    return ContrastiveResult(
        contrastive=contrastive,
        supervised=supervised,
        n_pairs=int(a.size),
        different_tasks=Estimate(float(a.mean()), bootstrap(a, n_boot=n_boot, unit="pair")),
        supervised_different_tasks=sup,
        ratio=ratio,
        same_task=float(same.mean()) if len(same) else np.nan,
        verdict=call,
        table=table,
    )


def describe(result: ContrastiveResult) -> Finding:
    """Headline: the verdict and the ratio of the contrastive to the supervised distances."""
    r = result
    parts = [
        f"{r.contrastive} end models trained on different subsets are d_B = "
        f"{r.different_tasks.text()} apart ({r.n_pairs} pairs, bootstrap over pairs)"
    ]
    if np.isfinite(r.supervised_different_tasks.value):
        parts.append(
            f"{r.supervised} end models on different tasks "
            f"{r.supervised_different_tasks.text()} (ratio {r.ratio.text()}; verdict, "
            f"ratio below 1: {r.verdict})"
        )
        claim = (
            f"{r.contrastive} end models on different data are {r.ratio.short()}× as far "
            f"apart as {r.supervised}; paper < 1"
        )
    else:
        parts.append(f"no {r.supervised} runs on different tasks to compare with")
        claim = (
            f"{r.contrastive} end models on different data are d_B = "
            f"{r.different_tasks.short()} apart; no {r.supervised} runs to compare"
        )
    if np.isfinite(r.same_task):
        parts.append(f"{r.contrastive} seeds on the same subset are {fmt(r.same_task)} apart")
    return make_finding(r.verdict, claim, "; ".join(parts) + ".")


PAIR_COLUMNS = ["method", "run_a", "run_b", "task_a", "task_b", "same_task", "d_B"]


def _pairs(store, contrastive: str, supervised: str) -> pd.DataFrame:
    """``d_B`` between the end models of every pair of runs of each method."""
    from taskspace import bhattacharyya

    runs = run_table(store)
    rows = []
    if runs.loc[runs["method"] == contrastive, "task"].nunique() < 2:
        return pd.DataFrame(columns=PAIR_COLUMNS)  # not applicable: no end model is read
    for method in (contrastive, supervised):
        part = runs[runs["method"] == method]
        if method == supervised:
            # The same tasks as the contrastive runs when they exist, for a like-for-like ratio.
            shared = set(part["task"]) & set(runs.loc[runs["method"] == contrastive, "task"])
            if len(shared) >= 2:
                part = part[part["task"].isin(shared)]
        ends = {r: end_model(store, r) for r in part["run_id"]}
        for (_, a), (_, b) in itertools.combinations(part.iterrows(), 2):
            rows.append(
                {
                    "method": method,
                    "run_a": a["run_id"],
                    "run_b": b["run_id"],
                    "task_a": a["task"],
                    "task_b": b["task"],
                    "same_task": a["task"] == b["task"],
                    "d_B": float(bhattacharyya(ends[a["run_id"]], ends[b["run_id"]])),
                }
            )
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def _ratio_interval(a, b, n_boot, progress) -> Interval:
    """The ratio's interval: both sets of pairs resampled independently."""
    rng = np.random.default_rng(0)
    values = []
    for i in range(n_boot):
        values.append(rng.choice(a, a.size).mean() / rng.choice(b, b.size).mean())
        report(progress, "bootstrap over pairs", i + 1, n_boot)
    return percentile_interval(values)


def _figure(table: pd.DataFrame, n_boot: int = N_BOOT) -> Figure:
    """``d_B`` of every pair of end models, one jittered column per (method, same task or not),
    with the mean and its 95% bootstrap interval (over pairs); a log axis (when every distance
    is positive), so that small and large distances are both seen."""
    groups = list(dict.fromkeys(zip(table["method"], table["same_task"], strict=True)))
    names = [f"{m}, {'same task' if same else 'different tasks'}" for m, same in groups]
    colour = colours(names)
    rng = np.random.default_rng(0)  # the jitter is part of the figure: the same every time
    series = []
    for i, ((method, same), name) in enumerate(zip(groups, names, strict=True)):
        part = table[(table["method"] == method) & (table["same_task"] == same)]
        series.append(_pair_markers(part, i, name, colour[name], rng))
        series.append(_mean_marker(part["d_B"].to_numpy(), i, name, colour[name], n_boot))
    ticks = (
        tuple(range(len(groups))),
        tuple(f"{m}\n{'same task' if s else 'different tasks'}" for m, s in groups),
    )
    log = bool((table["d_B"] > 0).all())
    return Figure(
        [
            Panel(
                series,
                ylabel="d_B between end models" + (" (log scale)" if log else ""),
                xticks=ticks,
                ylog=log,
            )
        ],
        title="Contrastive learning on different data: d_B between end models",
        legend_title="pairs (diamond: mean, 95% interval)",
        height=420,
    )


def _pair_markers(
    part: pd.DataFrame, column: int, name: str, color: str, rng: np.random.Generator
) -> Series:
    """One marker per pair of ``part`` at x = ``column`` jittered by ``rng`` (which it
    advances), y = its ``d_B``."""
    return Series(
        column + 0.15 * rng.uniform(-1, 1, len(part)),
        part["d_B"],
        mode="markers",
        name=name,
        color=color,
        symbol="circle-open",
        hover=[
            f"{a} – {b}\nd_B {d:.4g}"
            for a, b, d in zip(part["run_a"], part["run_b"], part["d_B"], strict=True)
        ],
    )


def _mean_marker(d: np.ndarray, column: int, name: str, color: str, n_boot: int) -> Series:
    """The mean of the distances ``d`` (shape (pairs,)) beside ``column``, with its 95%
    bootstrap interval over pairs as a bar."""
    ci = bootstrap(d, n_boot=n_boot, unit="pair")
    return Series(
        [column + 0.3],
        [d.mean()],
        mode="markers",
        group=name,
        color=color,
        symbol="diamond",
        marker_size=8,
        ylow=[ci[0]],
        yhigh=[ci[1]],
        hover=[f"{name}\nmean d_B {fmt_ci(d.mean(), ci)}"],
    )
