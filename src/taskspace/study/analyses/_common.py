"""Shared pieces of the analyses: the result type, run tables, end models, bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Number of bootstrap resamples behind every interval (override with ``n_boot=``).
N_BOOT = 200
#: Seed of the bootstrap resampling, so that a report is reproducible.
BOOT_SEED = 0


@dataclass
class AnalysisResult:
    """What one analysis found.

    Attributes
    ----------
    name : str
        Registry name (``"low_dimension"``, ...).
    title : str
        Human-readable title.
    table : pandas.DataFrame
        Tidy table of the measured numbers (empty when the analysis is not applicable).
    figure : taskspace.study.analyses.figure.Figure or None
        What the figure shows (panels, series, labels); `taskspace.report` draws it with plotly
        (the HTML report) and with matplotlib (PNG, PDF).
    finding : str
        One or two sentences with the measured numbers and their bootstrap intervals, or
        ``"not applicable: <reason>"``.
    applicable : bool
    summary : dict
        The headline numbers of the finding, by name (for docs/results.md and tests).
    """

    name: str
    title: str
    table: pd.DataFrame
    figure: object | None
    finding: str
    applicable: bool = True
    summary: dict = field(default_factory=dict)


def not_applicable(name: str, title: str, reason: str) -> AnalysisResult:
    return AnalysisResult(name=name, title=title, table=pd.DataFrame(), figure=None,
                          finding=f"not applicable: {reason}", applicable=False)


def run_table(store) -> pd.DataFrame:
    """``store.runs(per="run")`` without empty runs, with ``class_idx`` (tuple of indices)."""
    runs = store.runs(per="run")
    runs = runs[runs["n_records"] > 0].reset_index(drop=True)
    index = {c: i for i, c in enumerate(store.class_names)}
    runs["class_idx"] = [tuple(sorted(index[c] for c in cls)) if len(cls) else
                         tuple(range(len(index))) for cls in runs["classes"]]
    return runs


def task_classes(runs: pd.DataFrame) -> dict[str, tuple[int, ...]]:
    """Task name → its class indices (the first run of the task decides)."""
    return {t: runs.loc[runs["task"] == t, "class_idx"].iloc[0] for t in unique(runs["task"])}


def unique(values) -> list:
    """Distinct values in order of first appearance."""
    return list(dict.fromkeys(values))


def end_model(store, run_id: str) -> np.ndarray:
    """Last committed record of a run, float64 (N, C)."""
    traj = store.trajectory(run_id)
    return np.asarray(traj.predictions[-1], dtype=np.float64)


def percentile_interval(samples, level: float = 0.95) -> tuple[float, float]:
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1 - level) / 2
    return (float(np.quantile(samples, alpha)), float(np.quantile(samples, 1 - alpha)))


def bootstrap(values, statistic=np.mean, n_boot: int = N_BOOT, seed: int = BOOT_SEED):
    """Percentile 95% interval of ``statistic`` over resamples (with replacement) of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.size, size=(n_boot, values.size))
    return percentile_interval([statistic(values[p]) for p in picks])


def leave_one_out(groups: dict) -> list[tuple[object, dict]]:
    """Delete-one picks of runs: ``(group, pick)`` for every run of every group that has at
    least two, where ``pick`` is ``groups`` with that run left out."""
    picks = []
    for key, members in groups.items():
        if len(members) < 2:
            continue
        for i in range(len(members)):
            picks.append((key, {k: (list(v[:i]) + list(v[i + 1:]) if k == key else list(v))
                                for k, v in groups.items()}))
    return picks


def jackknife_interval(estimate: float, deleted, level: float = 0.95) -> tuple[float, float]:
    """``θ̂ ± z·SE`` with the delete-one jackknife ``SE² = (n−1)/n · Σ_i (θ_(i) − θ̄)²``.

    For statistics of seed-averaged models (a distance between mean models or trajectories):
    a bootstrap resample repeats runs, so it averages fewer distinct ones, its models are noisier
    and their distances larger, and the percentile interval shifts above the estimate (in the
    full Fashion-MNIST study it excluded it). The jackknife interval is centred on the estimate.
    NaN bounds when fewer than two finite delete-one values exist.
    """
    from scipy.stats import norm

    values = np.asarray(deleted, dtype=np.float64)
    values = values[np.isfinite(values)]
    n = values.size
    if n < 2 or not np.isfinite(estimate):
        return (float("nan"), float("nan"))
    se = float(np.sqrt((n - 1) / n * np.sum((values - values.mean()) ** 2)))
    z = float(norm.ppf(0.5 + level / 2))
    return (float(estimate - z * se), float(estimate + z * se))


def fmt(x: float, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def fmt_ci(value: float, interval: tuple[float, float], digits: int = 3,
           label: str = "95% CI") -> str:
    """``"0.42 (95% CI 0.40–0.45)"``, or the value alone when no interval could be formed."""
    lo, hi = interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{fmt(value, digits)} (no interval: too few runs)"
    return f"{fmt(value, digits)} ({label} {fmt(lo, digits)}–{fmt(hi, digits)})"


def spearman(x, y) -> float:
    """Spearman rank correlation; NaN when either side is constant or has < 3 values."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39")


def colours(keys) -> dict:
    """A stable colour for each distinct key."""
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(unique(keys))}
