"""Analysis 6: distances among SimCLR end models trained on different subsets vs supervised."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import (
    N_BOOT,
    AnalysisResult,
    Interval,
    bootstrap,
    colours,
    end_model,
    fmt_ci,
    not_applicable,
    percentile_interval,
    run_table,
)
from taskspace.study.analyses.figure import Figure, Panel, Series
from taskspace.study.analyses.stats import verdict

NAME = "contrastive"
TITLE = "Contrastive learning on different data"


def contrastive(store, study=None, contrastive: str = "simclr", supervised: str = "supervised",
                n_boot: int = N_BOOT) -> AnalysisResult:
    """``d_B`` between the end models of every pair of runs of one method on different tasks
    (``same_task=False``) and on the same task with different seeds (``same_task=True``), for the
    contrastive and the supervised method. The finding compares the mean different-task
    distances of the two methods (bootstrap over pairs)."""
    from taskspace import bhattacharyya

    runs = run_table(store)
    rows = []
    for method in (contrastive, supervised):
        part = runs[runs["method"] == method]
        if method == supervised:
            # The same tasks as the contrastive runs when they exist, for a like-for-like ratio.
            shared = set(part["task"]) & set(runs.loc[runs["method"] == contrastive, "task"])
            if len(shared) >= 2:
                part = part[part["task"].isin(shared)]
        ends = {r: end_model(store, r) for r in part["run_id"]}
        for (_, a), (_, b) in itertools.combinations(part.iterrows(), 2):
            rows.append({"method": method, "run_a": a["run_id"], "run_b": b["run_id"],
                         "task_a": a["task"], "task_b": b["task"],
                         "same_task": a["task"] == b["task"],
                         "d_B": float(bhattacharyya(ends[a["run_id"]], ends[b["run_id"]]))})
    table = pd.DataFrame(rows, columns=["method", "run_a", "run_b", "task_a", "task_b",
                                        "same_task", "d_B"])
    diff = {m: table.loc[(table["method"] == m) & ~table["same_task"], "d_B"].to_numpy()
            for m in (contrastive, supervised)}
    if diff[contrastive].size == 0:
        return not_applicable(NAME, TITLE, f"needs runs of {contrastive!r} on at least 2 tasks")
    ci = bootstrap(diff[contrastive], n_boot=n_boot, unit="pair")
    parts = [f"{contrastive} end models trained on different subsets are d_B = "
             f"{fmt_ci(diff[contrastive].mean(), ci)} "
             f"apart ({diff[contrastive].size} pairs, bootstrap over pairs)"]
    summary = {"contrastive": float(diff[contrastive].mean())}
    if diff[supervised].size:
        ratio = diff[contrastive].mean() / diff[supervised].mean()
        ci = bootstrap(diff[supervised], n_boot=n_boot, unit="pair")
        # The ratio's interval: both sets of pairs resampled independently.
        rng = np.random.default_rng(0)
        a, b = diff[contrastive], diff[supervised]
        ratio_ci = (percentile_interval([rng.choice(a, a.size).mean() /
                                         rng.choice(b, b.size).mean() for _ in range(n_boot)])
                    if min(a.size, b.size) > 1 else
                    Interval.none(f"one {contrastive if a.size < 2 else supervised} pair"))
        call = verdict(ratio, ratio_ci, None, expected="less", null=1.0)
        parts.append(f"{supervised} end models on different tasks "
                     f"{fmt_ci(diff[supervised].mean(), ci)} (ratio "
                     f"{fmt_ci(ratio, ratio_ci)}; verdict, ratio below 1: {call})")
        summary.update(supervised=float(diff[supervised].mean()), ratio=float(ratio),
                       ratio_ci=ratio_ci, verdict=call)
    else:
        parts.append(f"no {supervised} runs on different tasks to compare with")
    same = table.loc[(table["method"] == contrastive) & table["same_task"], "d_B"]
    if len(same):
        parts.append(f"{contrastive} seeds on the same subset are {same.mean():.3g} apart")
    return AnalysisResult(NAME, TITLE, table, _figure(table, n_boot), "; ".join(parts) + ".",
                          summary=summary)


def _figure(table: pd.DataFrame, n_boot: int = N_BOOT) -> Figure:
    """``d_B`` of every pair of end models, one jittered column per (method, same task or not),
    with the mean and its 95% bootstrap interval (over pairs); a log axis (when every distance
    is positive), so that small and large distances are both seen."""
    groups = list(dict.fromkeys(zip(table["method"], table["same_task"], strict=True)))
    names = [f"{m}, {'same task' if same else 'different tasks'}" for m, same in groups]
    colour = colours(names)
    rng = np.random.default_rng(0)     # the jitter is part of the figure: the same every time
    series = []
    for i, ((method, same), name) in enumerate(zip(groups, names, strict=True)):
        part = table[(table["method"] == method) & (table["same_task"] == same)]
        series.append(Series(
            i + 0.15 * rng.uniform(-1, 1, len(part)), part["d_B"], mode="markers",
            name=name, color=colour[name], symbol="circle-open",
            hover=[f"{a} – {b}\nd_B {d:.4g}" for a, b, d in
                   zip(part["run_a"], part["run_b"], part["d_B"], strict=True)]))
        d = part["d_B"].to_numpy()
        ci = bootstrap(d, n_boot=n_boot, unit="pair")
        series.append(Series([i + 0.3], [d.mean()], mode="markers", group=name,
                             color=colour[name], symbol="diamond", marker_size=8,
                             ylow=[ci[0]], yhigh=[ci[1]],
                             hover=[f"{name}\nmean d_B {fmt_ci(d.mean(), ci)}"]))
    ticks = (tuple(range(len(groups))),
             tuple(f"{m}\n{'same task' if s else 'different tasks'}" for m, s in groups))
    log = bool((table["d_B"] > 0).all())
    return Figure([Panel(series, ylabel="d_B between end models" + (" (log scale)" if log
                                                                      else ""),
                         xticks=ticks, ylog=log)],
                  title="Contrastive learning on different data: d_B between end models",
                  legend_title="pairs (diamond: mean, 95% interval)", height=420)
