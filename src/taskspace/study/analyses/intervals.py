"""Interval estimates behind every number an analysis reports: percentile bootstrap (over the
values of one sample, or over objects within strata: `resample_within`, with the statistics of
its resamples computed at once), delete-one jackknife, and the `Interval` type that says why
there is none. Used through `stats`.

A *task-level* bootstrap (findings 2 and 3) resamples the tasks, the unit of the claim, with
replacement, each task keeping the value measured on the whole design (its seeds averaged): the
interval then says how the statistic would vary over another draw of tasks of the same sizes,
which a bootstrap over seeds, holding the tasks fixed, cannot say."""

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


def percentile_bounds(samples, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """`percentile_interval` of many statistics at once: ``samples`` (n_boot, ...) → the low and
    high bounds, each of shape ``samples.shape[1:]``, over the finite resamples of each
    statistic; NaN where none is finite or the interval would have zero width."""
    samples = np.asarray(samples, dtype=np.float64)
    alpha = (1 - level) / 2
    finite = np.isfinite(samples).any(axis=0)
    safe = np.where(finite, samples, 0.0) if not finite.all() else samples
    lo, hi = np.nanquantile(safe, [alpha, 1 - alpha], axis=0)
    none = ~finite | (hi - lo <= 1e-12 * np.maximum(np.abs(lo), np.abs(hi)))
    return np.where(none, np.nan, lo), np.where(none, np.nan, hi)


def resample_within(strata, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> np.ndarray:
    """Indices of ``n_boot`` bootstrap resamples that keep the strata: each row draws, within
    every stratum, as many members as it has, with replacement.

    Parameters
    ----------
    strata : array (n,)
        One label per object (a task's number of classes, say).

    Returns
    -------
    ndarray of int, shape (n_boot, n)
        Row b, column i: the object drawn in place of object i; it has object i's stratum, so
        statistics of stratum composition (how many tasks of each size) never vary.
    """
    strata = np.asarray(strata).ravel()
    rng = np.random.default_rng(seed)
    picks = np.empty((n_boot, strata.size), dtype=np.int64)
    for s in dict.fromkeys(strata.tolist()):
        members = np.flatnonzero(strata == s)
        picks[:, members] = members[rng.integers(0, members.size, (n_boot, members.size))]
    return picks


def spearman_rows(x, y) -> np.ndarray:
    """Spearman ρ of each row of ``x`` with the same row of ``y`` (both (B, n)): the Pearson
    correlation of their ranks (ties averaged); NaN where a row of either is constant."""
    from scipy.stats import rankdata

    rx = rankdata(np.asarray(x, dtype=np.float64), axis=-1)
    ry = rankdata(np.asarray(y, dtype=np.float64), axis=-1)
    rx -= rx.mean(axis=-1, keepdims=True)
    ry -= ry.mean(axis=-1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=-1) * (ry * ry).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(axis=-1) / den, np.nan)


def stratified_spearman_resamples(x, y, strata, picks) -> tuple[np.ndarray, dict]:
    """The stratified Spearman ρ (`stats.spearman_test` with ``strata``) of every resample.

    Parameters
    ----------
    x, y : array (n,)
        Finite values, one pair per object.
    strata : array (n,)
    picks : array of int (n_boot, n)
        Resamples that keep the strata (`resample_within`).

    Returns
    -------
    pooled : ndarray (n_boot,)
        ``ρ_s = Σ_g n_g ρ_g / Σ_g n_g`` of each resample over its strata with ≥ 3 objects and
        both sides non-constant (a resample that repeats one object may make a side constant);
        NaN when none is left.
    within : dict
        Stratum → ndarray (n_boot,) of its ρ_g (NaN where undefined): the bootstrap over the
        objects of that stratum alone.
    """
    x, y, strata = (np.asarray(v).ravel() for v in (x, y, strata))
    total = np.zeros(picks.shape[0])
    weight = np.zeros(picks.shape[0])
    within = {}
    for s in dict.fromkeys(strata.tolist()):
        cols = np.flatnonzero(strata == s)
        rho = spearman_rows(x[picks[:, cols]], y[picks[:, cols]])
        within[s] = rho
        if cols.size >= 3:
            ok = np.isfinite(rho)
            total += np.where(ok, cols.size * rho, 0.0)
            weight += np.where(ok, cols.size, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / weight, np.nan), within


def mantel_resamples(A, B, picks, method: str = "spearman") -> np.ndarray:
    """Mantel r of two distance matrices over bootstrap resamples of their objects.

    Resample b takes the objects ``picks[b]`` (drawn with replacement) and correlates
    ``A[p_i, p_j]`` with ``B[p_i, p_j]`` over the pairs ``i < j`` with ``p_i ≠ p_j``: a pair of an
    object with a copy of itself has distance 0 in both matrices by construction, not by
    measurement, so it is left out. ``method="spearman"`` ranks the pairs of each resample.

    Parameters
    ----------
    A, B : array (n, n)
        Symmetric distance matrices of the same objects.
    picks : array of int (n_boot, n)
    method : {"spearman", "pearson"}

    Returns
    -------
    ndarray (n_boot,)
        NaN where a side is constant over the resample's pairs.
    """
    from scipy.stats import rankdata

    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    iu = np.triu_indices(A.shape[0], 1)
    out = np.empty(picks.shape[0])
    chunk = max(1, (1 << 22) // max(iu[0].size, 1))  # (chunk, pairs) arrays stay ~32 MB
    for start in range(0, picks.shape[0], chunk):
        p = picks[start : start + chunk]
        i, j = p[:, iu[0]], p[:, iu[1]]
        keep = i != j
        a = np.where(keep, A[i, j], np.nan)
        c = np.where(keep, B[i, j], np.nan)
        if method == "spearman":  # ranks among the pairs kept; the others stay NaN
            a = rankdata(a, axis=-1, nan_policy="omit")
            c = rankdata(c, axis=-1, nan_policy="omit")
        out[start : start + p.shape[0]] = _pearson_kept(a, c, keep)
    return out


def _pearson_kept(a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` and ``b`` over its entries where ``keep``."""
    n = keep.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        da = np.where(keep, a - np.where(keep, a, 0.0).sum(-1, keepdims=True) / n, 0.0)
        db = np.where(keep, b - np.where(keep, b, 0.0).sum(-1, keepdims=True) / n, 0.0)
        den = np.sqrt((da * da).sum(-1) * (db * db).sum(-1))
        return np.where(den > 0, (da * db).sum(-1) / den, np.nan)


def pair_mean_resamples(M, picks) -> np.ndarray:
    """Mean of ``M[p_i, p_j]`` over the pairs ``i ≠ j`` with ``p_i ≠ p_j`` of each resample
    ``p = picks[b]`` (finite entries only): the bootstrap over objects of a mean over ordered
    pairs of distinct objects (``M`` (n, n); its diagonal never counts). NaN where no finite
    entry is left."""
    M = np.asarray(M, dtype=np.float64)
    total = np.zeros(picks.shape[0])
    count = np.zeros(picks.shape[0])
    for b, p in enumerate(picks):  # one (n, n) gather at a time: memory n², not n_boot · n²
        sub = M[np.ix_(p, p)]
        ok = (p[:, None] != p[None, :]) & np.isfinite(sub)
        total[b], count[b] = sub[ok].sum(), ok.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)
