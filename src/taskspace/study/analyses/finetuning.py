"""Analysis 4: how far fine-tuning moves a model, against the parent's pre-training length."""

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
    fmt_ci,
    make_finding,
    not_applicable,
    report,
    run_table,
)
from taskspace.study.analyses.figure import Figure, Panel, Series
from taskspace.study.analyses.stats import (
    BOOT_SEED,
    N_BOOT,
    N_PERM,
    Interval,
    bootstrap,
    percentile_interval,
    spearman,
    spearman_test,
    unique,
    verdict,
)

NAME = "finetuning"
TITLE = "Fine-tuning: how far it moves the model"
#: Table columns, for people.
COLUMNS = {
    "run_id": "run",
    "task": "task",
    "seed": "seed",
    "parent_run": "parent run",
    "parent_step": "pre-training steps",
    "d_start_end": "d_B(start, end)",
    "length": "length",
}


@dataclass(frozen=True)
class StepMove:
    """Mean ``d_B`` between first and last record of the runs fine-tuned from one step."""

    parent_step: int
    n_runs: int
    distance: Estimate


@dataclass(frozen=True)
class FinetuningResult:
    """How far fine-tuning moves a model (`compute`).

    Attributes
    ----------
    n_runs : int
    by_step : tuple of StepMove
        Mean move per pre-training length (bootstrap over runs), shortest first.
    rho : Estimate
        Spearman ρ between pre-training step and move: bootstrap interval over runs, one-sided
        permutation p (the paper predicts ρ < 0).
    mean_length : float
    parents_converged, n_parents : int
        Parents meeting the plateau criterion at their last record.
    verdict : str
    table : pandas.DataFrame
        One row per fine-tuned run, code column names.
    """

    n_runs: int
    by_step: tuple[StepMove, ...]
    rho: Estimate
    mean_length: float
    parents_converged: int
    n_parents: int
    verdict: str
    table: pd.DataFrame = field(repr=False, compare=False)


def finetuning(
    store, study=None, n_boot: int = N_BOOT, n_perm: int = N_PERM, progress: Progress | None = None
) -> AnalysisResult:
    """Fine-tuning: `compute`, `describe`, the table and the figure (see `compute`)."""
    try:
        r = compute(store, n_boot=n_boot, n_perm=n_perm, progress=progress)
    except NotApplicable as why:
        return not_applicable(NAME, TITLE, str(why))
    summary = {
        "d_first": r.by_step[0].distance.value,
        "d_last": r.by_step[-1].distance.value,
        "spearman": r.rho.value,
        "spearman_ci": r.rho.interval,
        "p_value": r.rho.p_value,
        "parents_converged": r.parents_converged,
        "n_parents": r.n_parents,
        "verdict": r.verdict,
    }
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
    store, n_boot: int = N_BOOT, n_perm: int = N_PERM, progress: Progress | None = None
) -> FinetuningResult:
    """For every run with a ``parent_step``: ``d_B`` between its first and last record and its
    length (SPEC §6), against the parent's pre-training step.

    The mean ``d_B`` at each pre-training length (bootstrap over runs), whether each parent met
    the plateau criterion at its last record (`episodic.plateau_table`: the longest pre-training
    is meant to be a converged one), and the Spearman ρ between pre-training step and ``d_B``
    with a bootstrap interval over runs and a one-sided permutation p-value (the paper predicts
    ρ < 0: longer pre-training, smaller moves). Verdict: `stats.verdict` on ρ. Raises
    `NotApplicable` without fine-tuned runs."""
    from taskspace.study.analyses.episodic import plateau_table

    all_runs = run_table(store)
    runs = all_runs[all_runs["parent_step"].notna() & (all_runs["n_records"] >= 2)]
    if runs.empty:
        raise NotApplicable(
            "the store has no fine-tuned run (a run with a parent_step and at least 2 records)"
        )
    table = _moves(store, runs.reset_index(drop=True))
    steps = sorted(table["parent_step"].unique())
    by_step = {s: table.loc[table["parent_step"] == s, "d_start_end"].to_numpy() for s in steps}
    x, y = table["parent_step"].to_numpy(float), table["d_start_end"].to_numpy()
    # One run per pre-training length (one seed, one task): resampling runs then only reorders
    # single values, and its interval says nothing.
    rho_ci = (
        _bootstrap_spearman(x, y, n_boot, progress)
        if max(v.size for v in by_step.values()) > 1
        else Interval.none("one run per pre-training length")
    )
    rho = Estimate(
        spearman(x, y), rho_ci, spearman_test(x, y, n_perm=n_perm, alternative="less").p_value
    )
    conv = plateau_table(store, all_runs[all_runs["run_id"].isin(set(table["parent_run"]))])
    return FinetuningResult(
        n_runs=len(table),
        by_step=tuple(
            StepMove(int(s), int(v.size), Estimate(float(v.mean()), bootstrap(v, n_boot=n_boot)))
            for s, v in by_step.items()
        ),
        rho=rho,
        mean_length=float(table["length"].mean()),
        parents_converged=int(conv["converged"].sum()),
        n_parents=len(conv),
        verdict=verdict(rho.value, rho.interval, rho.p_value, expected="less"),
        table=table,
    )


def describe(result: FinetuningResult) -> Finding:
    """Headline: the verdict and ρ between pre-training length and the move."""
    r = result
    means = ", ".join(f"{s.parent_step} steps: {s.distance.text()}" for s in r.by_step)
    details = (
        f"Fine-tuning moves the model by d_B (mean over runs, bootstrap over runs) after "
        f"{means} of pre-training ({r.n_runs} runs); Spearman ρ between pre-training "
        f"step and d_B = {r.rho.text()}, one-sided permutation p = "
        f"{fmt(r.rho.p_value, 2)}; mean length {r.mean_length:.3g}. Parents meeting the "
        f"plateau criterion at their last record: {r.parents_converged} of "
        f"{r.n_parents}."
    )
    claim = (
        f"longer pre-training, smaller fine-tuning moves: ρ = {r.rho.short()}, "
        f"p = {fmt(r.rho.p_value, 2)}; paper ρ < 0"
    )
    return make_finding(r.verdict, claim, details)


def _moves(store, runs: pd.DataFrame) -> pd.DataFrame:
    """``d_B`` between the first and last record, and the length, of every run."""
    from taskspace import bhattacharyya, length

    rows = []
    for _, run in runs.iterrows():
        P = np.asarray(store.trajectory(run["run_id"]).predictions, dtype=np.float64)
        rows.append(
            {
                "run_id": run["run_id"],
                "task": run["task"],
                "seed": run["seed"],
                "parent_run": run["parent_run"],
                "parent_step": int(run["parent_step"]),
                "d_start_end": float(bhattacharyya(P[0], P[-1])),
                "length": float(length(P)),
            }
        )
    return pd.DataFrame(rows).sort_values(["parent_step", "run_id"]).reset_index(drop=True)


def _bootstrap_spearman(x, y, n_boot, progress) -> Interval:
    """Percentile interval of Spearman ρ over ``n_boot`` resamples of the runs."""
    rng = np.random.default_rng(BOOT_SEED)
    picks = rng.integers(0, len(x), size=(n_boot, len(x)))
    values = []
    for i, p in enumerate(picks):
        values.append(spearman(x[p], y[p]))
        report(progress, "bootstrap over runs", i + 1, n_boot)
    return percentile_interval(values)


def _figure(table: pd.DataFrame, n_boot: int = N_BOOT) -> Figure:
    """``d_B(start, end)`` and length of every fine-tuned run against its parent's pre-training
    step (log axis when every step is positive), per task: each run, and the mean over runs
    with its 95% bootstrap interval (over runs) as bars."""
    colour = colours(table["task"].astype(str))
    log = bool((table["parent_step"] > 0).all())
    panels = []
    for col, (key, label) in enumerate(
        (("d_start_end", "d_B(start, end)"), ("length", "length of the trajectory"))
    ):
        items = []
        for task in unique(table["task"].astype(str)):
            part = table[table["task"].astype(str) == task]
            items.append(_run_markers(part, task, key, label, colour[task]))
            items.append(_mean_line(part, task, key, label, colour[task], n_boot))
        steps = sorted(table["parent_step"].unique())
        panels.append(
            Panel(
                items,
                title=label,
                xlabel="parent's pre-training (steps)",
                ylabel=label,
                col=col,
                xlog=log,
                xticks=(tuple(float(s) for s in steps), tuple(str(s) for s in steps)),
            )
        )
    return Figure(
        panels,
        title="Fine-tuning: how far it moves the model, against pre-training",
        cols=2,
        legend_title="task: mean over runs, 95% interval; circles: runs",
        height=420,
    )


def _run_markers(part: pd.DataFrame, task: str, key: str, label: str, color: str) -> Series:
    """One open circle per fine-tuned run of ``part`` (the runs of one task): column ``key``
    against the parent's pre-training step."""
    return Series(
        part["parent_step"],
        part[key],
        group=task,
        color=color,
        mode="markers",
        symbol="circle-open",
        marker_size=5,
        hover=[
            f"run {r}\ntask {task}\npre-training step {s}\n{label} {v:.4g}"
            for r, s, v in zip(part["run_id"], part["parent_step"], part[key], strict=True)
        ],
    )


def _mean_line(
    part: pd.DataFrame, task: str, key: str, label: str, color: str, n_boot: int
) -> Series:
    """The mean of column ``key`` over the runs of ``part`` at each pre-training step, with its
    95% bootstrap interval over runs as bars."""
    steps = sorted(part["parent_step"].unique())
    values = [part.loc[part["parent_step"] == s, key].to_numpy() for s in steps]
    bars = [bootstrap(v, n_boot=n_boot) for v in values]
    return Series(
        steps,
        [v.mean() for v in values],
        name=task,
        color=color,
        mode="lines+markers",
        marker_size=6,
        ylow=[b[0] for b in bars],
        yhigh=[b[1] for b in bars],
        hover=[
            f"task {task}\npre-training step {s}\nmean {label} {v.mean():.4g}\n"
            f"{fmt_ci(v.mean(), b)}"
            for s, v, b in zip(steps, values, bars, strict=True)
        ],
    )
