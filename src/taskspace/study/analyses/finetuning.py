"""Analysis 4: how far fine-tuning moves a model, against the parent's pre-training length."""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import (
    N_BOOT,
    AnalysisResult,
    bootstrap,
    fmt_ci,
    not_applicable,
    run_table,
    spearman,
)
from taskspace.study.analyses.figure import Figure, Panel, Series

NAME = "finetuning"
TITLE = "Fine-tuning: how far it moves the model"


def finetuning(store, study=None, n_boot: int = N_BOOT) -> AnalysisResult:
    """For every run with a ``parent_step``: ``d_B`` between its first and last record and its
    length (SPEC §6), against the parent's pre-training step. The finding compares the shortest
    and the longest pre-training (means with bootstrap intervals over runs) and gives the
    Spearman correlation of ``d_B`` with the pre-training step."""
    from taskspace import bhattacharyya, length

    runs = run_table(store)
    runs = runs[runs["parent_step"].notna() & (runs["n_records"] >= 2)].reset_index(drop=True)
    if runs.empty:
        return not_applicable(NAME, TITLE, "the store has no fine-tuned run (a run with a "
                              "parent_step and at least 2 records)")
    rows = []
    for _, run in runs.iterrows():
        P = np.asarray(store.trajectory(run["run_id"]).predictions, dtype=np.float64)
        rows.append({"run_id": run["run_id"], "task": run["task"], "seed": run["seed"],
                     "parent_run": run["parent_run"], "parent_step": int(run["parent_step"]),
                     "d_start_end": float(bhattacharyya(P[0], P[-1])),
                     "length": float(length(P))})
    table = pd.DataFrame(rows).sort_values(["parent_step", "run_id"]).reset_index(drop=True)
    steps = sorted(table["parent_step"].unique())
    first = table.loc[table["parent_step"] == steps[0], "d_start_end"].to_numpy()
    last = table.loc[table["parent_step"] == steps[-1], "d_start_end"].to_numpy()
    rho = spearman(table["parent_step"], table["d_start_end"])
    finding = (f"Fine-tuning from {steps[0]} pre-training steps moves the model by d_B = "
               f"{fmt_ci(first.mean(), bootstrap(first, n_boot=n_boot))}, from {steps[-1]} steps "
               f"by {fmt_ci(last.mean(), bootstrap(last, n_boot=n_boot))} ({len(table)} runs, "
               f"bootstrap over runs); Spearman ρ between pre-training step and d_B = "
               f"{rho:.3g}, mean length {table['length'].mean():.3g}.")
    return AnalysisResult(NAME, TITLE, table, _figure(table), finding,
                          summary={"d_first": float(first.mean()), "d_last": float(last.mean()),
                                   "spearman": rho})


def _figure(table: pd.DataFrame) -> Figure:
    """``d_B(start, end)`` and length of every fine-tuned run against its parent's pre-training
    step, with the mean at each step."""
    mean = table.groupby("parent_step")[["d_start_end", "length"]].mean()
    hover = [f"run {r}\ntask {t}\npre-training step {s}" for r, t, s in
             zip(table["run_id"], table["task"], table["parent_step"], strict=True)]
    panels = []
    for col, (key, label) in enumerate((("d_start_end", "d_B(start, end)"),
                                        ("length", "length"))):
        panels.append(Panel([
            Series(table["parent_step"], table[key], name="runs", color="#1f77b4",
                   mode="markers", hover=[f"{h}\n{label} {v:.4g}"
                                          for h, v in zip(hover, table[key], strict=True)]),
            Series(mean.index, mean[key], name="mean over runs", color="#d62728"),
        ], title=label, xlabel="parent's pre-training step", ylabel=label, col=col))
    return Figure(panels, title=TITLE, cols=2, height=420)
