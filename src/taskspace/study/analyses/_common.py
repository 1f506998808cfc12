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

    def _repr_html_(self) -> str:
        """Notebook display: headline, verdict, table and figure (``report.notebook``)."""
        from taskspace.report.notebook import result_html  # drawn at display time only

        return result_html(self)


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


class Interval(tuple):
    """A 95% interval ``(low, high)`` that unpacks like a tuple, or ``(nan, nan)`` with ``why``
    saying why there is none ("one seed per task", "all 3 runs equal", ...).

    An interval of zero width is never returned: when the resamples cannot vary (one seed, a
    single run, equal values, a rank statistic that no deletion changes) the bounds are NaN and
    :func:`fmt_ci` prints ``"(no interval: <why>)"`` instead of ``"0.894 (95% CI 0.894–0.894)"``.
    """

    why: str

    def __new__(cls, low: float, high: float, why: str = "") -> Interval:
        self = super().__new__(cls, (float(low), float(high)))
        self.why = why
        return self

    @classmethod
    def none(cls, why: str) -> Interval:
        return cls(float("nan"), float("nan"), why)

    def __reduce__(self):       # keep ``why`` through pickling (multiprocessing, caches)
        return (type(self), (self[0], self[1], self.why))


def _zero_width(lo: float, hi: float) -> bool:
    """True when ``hi - lo`` is zero up to float rounding of the statistic (1e-12 relative)."""
    return hi - lo <= 1e-12 * max(abs(lo), abs(hi))


def percentile_interval(samples, level: float = 0.95, why: str | None = None) -> Interval:
    """Percentile interval of resampled statistics; NaN bounds with a reason when fewer than one
    finite sample exists or every sample is the same (``why`` overrides the generic reason)."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return Interval.none(why or "too few runs")
    alpha = (1 - level) / 2
    lo, hi = float(np.quantile(samples, alpha)), float(np.quantile(samples, 1 - alpha))
    if _zero_width(lo, hi):
        return Interval.none(why or "every resample gives the same value")
    return Interval(lo, hi)


def bootstrap(values, statistic=np.mean, n_boot: int = N_BOOT, seed: int = BOOT_SEED,
              unit: str = "run") -> Interval:
    """Percentile 95% interval of ``statistic`` over resamples (with replacement) of ``values``.

    No interval ("one run", "all 3 runs equal"; ``unit`` names what a value is) when fewer than
    two values exist or all are equal: every resample would then give the same statistic.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return Interval.none(f"{'one' if values.size else 'no'} {unit}")
    if np.ptp(values) == 0:
        return Interval.none(f"all {values.size} {unit}s equal")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.size, size=(n_boot, values.size))
    return percentile_interval([statistic(values[p]) for p in picks],
                               why=f"every resample of the {values.size} {unit}s gives the "
                                   "same value")


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


def jackknife_interval(estimate: float, deleted, level: float = 0.95,
                       why: str | None = None) -> Interval:
    """``θ̂ ± z·SE`` with the delete-one jackknife ``SE² = (n−1)/n · Σ_i (θ_(i) − θ̄)²``.

    For statistics of seed-averaged models (a distance between mean models or trajectories):
    a bootstrap resample repeats runs, so it averages fewer distinct ones, its models are noisier
    and their distances larger, and the percentile interval shifts above the estimate (in the
    full Fashion-MNIST study it excluded it). The jackknife interval is centred on the estimate.
    NaN bounds with a reason (``why`` overrides it) when fewer than two finite delete-one values
    exist (one run per group) or all of them are equal (SE 0: a rank statistic that no deletion
    changes, say).
    """
    from scipy.stats import norm

    values = np.asarray(deleted, dtype=np.float64)
    values = values[np.isfinite(values)]
    n = values.size
    if not np.isfinite(estimate):
        return Interval.none(why or "no estimate")
    if n < 2:
        return Interval.none(why or "too few runs to leave one out")
    if np.ptp(values) == 0:
        return Interval.none(why or f"leaving out any one of {n} runs gives the same value")
    se = float(np.sqrt((n - 1) / n * np.sum((values - values.mean()) ** 2)))
    z = float(norm.ppf(0.5 + level / 2))
    lo, hi = float(estimate - z * se), float(estimate + z * se)
    if _zero_width(lo, hi):
        return Interval.none(why or f"leaving out any one of {n} runs gives the same value")
    return Interval(lo, hi)


def fmt(x: float, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def fmt_ci(value: float, interval: tuple[float, float], digits: int = 3,
           label: str = "95% CI") -> str:
    """``"0.42 (95% CI 0.40–0.45)"``, or ``"0.42 (no interval: <why>)"`` when none was formed.

    A narrow interval is printed with up to 3 more significant digits, so that its two bounds
    never print the same ("0.894–0.894"); one narrower than that is reported as no interval.
    """
    lo, hi = interval
    why = getattr(interval, "why", "") or "too few runs"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{fmt(value, digits)} (no interval: {why})"
    for d in range(digits, digits + 4):
        if fmt(lo, d) != fmt(hi, d):
            return f"{fmt(value, d)} ({label} {fmt(lo, d)}–{fmt(hi, d)})"
    return f"{fmt(value, digits)} (no interval: the resamples agree to {digits + 3} digits)"


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
