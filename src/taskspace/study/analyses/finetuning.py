"""Analysis 4: how far fine-tuning moves a model, against the parent's pre-training length."""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import (
    BOOT_SEED,
    N_BOOT,
    AnalysisResult,
    Interval,
    bootstrap,
    colours,
    fmt,
    fmt_ci,
    not_applicable,
    percentile_interval,
    run_table,
    spearman,
    unique,
)
from taskspace.study.analyses.figure import Figure, Panel, Series
from taskspace.study.analyses.stats import N_PERM, spearman_test, verdict

NAME = "finetuning"
TITLE = "Fine-tuning: how far it moves the model"


def finetuning(store, study=None, n_boot: int = N_BOOT, n_perm: int = N_PERM) -> AnalysisResult:
    """For every run with a ``parent_step``: ``d_B`` between its first and last record and its
    length (SPEC §6), against the parent's pre-training step.

    The finding gives the mean ``d_B`` at each pre-training length (bootstrap over runs), whether
    each parent met the plateau criterion at its last record (`episodic.plateau_table`: the
    longest pre-training is meant to be a converged one), and the Spearman ρ between pre-training
    step and ``d_B`` with a bootstrap interval over runs and a one-sided permutation p-value (the
    paper predicts ρ < 0: longer pre-training, smaller moves). Verdict: `stats.verdict` on ρ."""
    from taskspace import bhattacharyya, length
    from taskspace.study.analyses.episodic import plateau_table

    all_runs = run_table(store)
    runs = all_runs[all_runs["parent_step"].notna() & (all_runs["n_records"] >= 2)]
    runs = runs.reset_index(drop=True)
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
    by_step = {s: table.loc[table["parent_step"] == s, "d_start_end"].to_numpy() for s in steps}
    x, y = table["parent_step"].to_numpy(float), table["d_start_end"].to_numpy()
    rho = spearman(x, y)
    p = spearman_test(x, y, n_perm=n_perm, alternative="less").p_value
    rng = np.random.default_rng(BOOT_SEED)
    picks = rng.integers(0, len(table), size=(n_boot, len(table)))
    # One run per pre-training length (one seed, one task): resampling runs then only reorders
    # single values, and its interval says nothing.
    rho_ci = (percentile_interval([spearman(x[i], y[i]) for i in picks])
              if max(v.size for v in by_step.values()) > 1
              else Interval.none("one run per pre-training length"))
    call = verdict(rho, rho_ci, p, expected="less")
    parents = all_runs[all_runs["run_id"].isin(set(table["parent_run"]))]
    conv = plateau_table(store, parents)
    means = ", ".join(f"{s} steps: {fmt_ci(v.mean(), bootstrap(v, n_boot=n_boot))}"
                      for s, v in by_step.items())
    finding = (f"Fine-tuning moves the model by d_B (mean over runs, bootstrap over runs) "
               f"after {means} of pre-training ({len(table)} runs); Spearman ρ between "
               f"pre-training step and d_B = {fmt_ci(rho, rho_ci)}, one-sided permutation "
               f"p = {fmt(p, 2)}; mean length {table['length'].mean():.3g}. Parents meeting the "
               f"plateau criterion at their last record: {int(conv['converged'].sum())} of "
               f"{len(conv)}. Verdict: {call}.")
    return AnalysisResult(NAME, TITLE, table, _figure(table, n_boot), finding,
                          summary={"d_first": float(by_step[steps[0]].mean()),
                                   "d_last": float(by_step[steps[-1]].mean()),
                                   "spearman": rho, "spearman_ci": rho_ci, "p_value": p,
                                   "parents_converged": int(conv["converged"].sum()),
                                   "n_parents": len(conv), "verdict": call})


def _figure(table: pd.DataFrame, n_boot: int = N_BOOT) -> Figure:
    """``d_B(start, end)`` and length of every fine-tuned run against its parent's pre-training
    step (log axis when every step is positive), per task: each run, and the mean over runs
    with its 95% bootstrap interval (over runs) as bars."""
    colour = colours(table["task"].astype(str))
    log = bool((table["parent_step"] > 0).all())
    panels = []
    for col, (key, label) in enumerate((("d_start_end", "d_B(start, end)"),
                                        ("length", "length of the trajectory"))):
        items = []
        for task in unique(table["task"].astype(str)):
            part = table[table["task"].astype(str) == task]
            steps = sorted(part["parent_step"].unique())
            values = [part.loc[part["parent_step"] == s, key].to_numpy() for s in steps]
            bars = [bootstrap(v, n_boot=n_boot) for v in values]
            items.append(Series(
                part["parent_step"], part[key], group=task, color=colour[task],
                mode="markers", symbol="circle-open", marker_size=5,
                hover=[f"run {r}\ntask {task}\npre-training step {s}\n{label} {v:.4g}"
                       for r, s, v in zip(part["run_id"], part["parent_step"], part[key],
                                          strict=True)]))
            items.append(Series(
                steps, [v.mean() for v in values], name=task, color=colour[task],
                mode="lines+markers", marker_size=6, ylow=[b[0] for b in bars],
                yhigh=[b[1] for b in bars],
                hover=[f"task {task}\npre-training step {s}\nmean {label} {v.mean():.4g}\n"
                       f"{fmt_ci(v.mean(), b)}" for s, v, b in zip(steps, values, bars,
                                                                    strict=True)]))
        steps = sorted(table["parent_step"].unique())
        panels.append(Panel(items, title=label, xlabel="parent's pre-training (steps)",
                            ylabel=label, col=col, xlog=log,
                            xticks=(tuple(float(s) for s in steps), tuple(str(s) for s in steps))))
    return Figure(panels, title="Fine-tuning: how far it moves the model, against "
                  "pre-training", cols=2, legend_title="task: mean over runs, 95% interval; "
                  "circles: runs", height=420)
