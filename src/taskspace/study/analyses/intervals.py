"""Interval estimates behind every number an analysis reports: percentile bootstrap, delete-one
jackknife, and the `Interval` type that says why there is none. Used through `stats`."""

from __future__ import annotations

import numpy as np

#: Number of bootstrap resamples behind every interval (override with ``n_boot=``).
N_BOOT = 200
#: Seed of the bootstrap resampling, so that a report is reproducible.
BOOT_SEED = 0


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

    def __reduce__(self):  # keep ``why`` through pickling (multiprocessing, caches)
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


def bootstrap(
    values, statistic=np.mean, n_boot: int = N_BOOT, seed: int = BOOT_SEED, unit: str = "run"
) -> Interval:
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
    return percentile_interval(
        [statistic(values[p]) for p in picks],
        why=f"every resample of the {values.size} {unit}s gives the same value",
    )


def leave_one_out(groups: dict) -> list[tuple[object, dict]]:
    """Delete-one picks of runs: ``(group, pick)`` for every run of every group that has at
    least two, where ``pick`` is ``groups`` with that run left out."""
    picks = []
    for key, members in groups.items():
        if len(members) < 2:
            continue
        for i in range(len(members)):
            picks.append(
                (
                    key,
                    {
                        k: (list(v[:i]) + list(v[i + 1 :]) if k == key else list(v))
                        for k, v in groups.items()
                    },
                )
            )
    return picks


def jackknife_interval(
    estimate: float, deleted, level: float = 0.95, why: str | None = None
) -> Interval:
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
