"""The tests behind the verdicts: permutation p-values, the Mantel test, partial and stratified
Spearman correlations, the cophenetic correlation, and the plateau criterion of training.

Every p-value here is a Monte-Carlo permutation p-value with the ``+1`` correction,
``p = (1 + #{T_π ≥ T}) / (1 + n_perm)`` (one-sided) or with ``|T|`` (two-sided): it is never 0,
and under the null hypothesis ``P(p ≤ α) ≤ α`` for every α. Permutations are drawn from a seeded
generator, so a report is reproducible.

The verdict rule of the reference study (`verdict`) reads an estimate, its interval and its
p-value against the sign the paper predicts. The interval estimators (`bootstrap`,
`percentile_interval`, `percentile_bounds`, `jackknife_interval`, `leave_one_out`, `Interval`,
and the task-level bootstrap: `resample_within`, `stratified_spearman_resamples`,
`mantel_resamples`, `pair_mean_resamples`) live in `intervals` and are used through this module:
every analysis takes its statistics from here alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taskspace.study.analyses.intervals import (
    BOOT_SEED,
    N_BOOT,
    Interval,
    bootstrap,
    jackknife_interval,
    leave_one_out,
    mantel_resamples,
    pair_mean_resamples,
    percentile_bounds,
    percentile_interval,
    resample_within,
    spearman_rows,
    stratified_spearman_resamples,
)

__all__ = [
    "ALPHA",
    "BOOT_SEED",
    "N_BOOT",
    "N_PERM",
    "PERM_SEED",
    "Interval",
    "Plateau",
    "TestResult",
    "bootstrap",
    "cophenetic_correlation",
    "cophenetic_distances",
    "jackknife_interval",
    "leave_one_out",
    "mantel",
    "mantel_resamples",
    "pair_mean_resamples",
    "partial_spearman",
    "percentile_bounds",
    "percentile_interval",
    "plateau",
    "resample_within",
    "spearman",
    "spearman_rows",
    "spearman_test",
    "stratified_spearman_resamples",
    "unique",
    "verdict",
]

#: Permutations behind every p-value (the smallest attainable p is 1 / (N_PERM + 1)).
N_PERM = 9999
#: Seed of the permutations.
PERM_SEED = 0
#: Significance level of the verdicts.
ALPHA = 0.05


@dataclass(frozen=True)
class TestResult:
    """A statistic with its permutation p-value.

    Attributes
    ----------
    statistic : float
    p_value : float
        NaN when the statistic is undefined (fewer than 3 values, a constant side).
    n : int
        The number of values (pairs for `mantel`) the statistic was computed from.
    n_perm : int
    """

    statistic: float
    p_value: float
    n: int
    n_perm: int


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)


def _pearson_rows(a: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Pearson correlation of the vector ``a`` (n,) with every row of ``B`` (k, n)."""
    a = a - a.mean()
    B = B - B.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum() * (B * B).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (B @ a) / den


def _p_value(observed: float, null: np.ndarray, alternative: str) -> float:
    if not np.isfinite(observed) or null.size == 0:
        return float("nan")
    null = null[np.isfinite(null)]
    # a tolerance, so that a permutation giving the observed value up to rounding counts as ≥
    tol = 1e-12 * max(1.0, abs(observed))
    if alternative == "greater":
        hits = np.sum(null >= observed - tol)
    elif alternative == "less":
        hits = np.sum(null <= observed + tol)
    else:
        hits = np.sum(np.abs(null) >= abs(observed) - tol)
    return float((1 + hits) / (1 + null.size))


def _check_alternative(alternative: str) -> None:
    if alternative not in ("greater", "less", "two-sided"):
        raise ValueError(
            f"`alternative` must be 'greater', 'less' or 'two-sided', got {alternative!r}"
        )


def _permutations(rng, n: int, n_perm: int) -> np.ndarray:
    """(n_perm, n) independent uniform permutations of ``range(n)``."""
    return rng.permuted(np.tile(np.arange(n), (n_perm, 1)), axis=1)


def _paired(x, y, name_x: str = "x", name_y: str = "y"):
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(
            f"`{name_x}` and `{name_y}` must have the same length, got {x.size} and {y.size}"
        )
    return x, y


def spearman_test(
    x,
    y,
    *,
    strata=None,
    n_perm: int = N_PERM,
    seed: int = PERM_SEED,
    alternative: str = "two-sided",
) -> TestResult:
    """Spearman ρ of ``x`` and ``y`` with a permutation p-value (``y`` permuted).

    With ``strata`` (one label per value) ρ is *stratified*: the mean of the within-stratum
    Spearman correlations weighted by stratum size, ``ρ_s = Σ_g n_g ρ_g / Σ_g n_g`` over strata
    with ≥ 3 values and both sides non-constant, and ``y`` is permuted only within strata, so the
    strata's own levels (e.g. bigger tasks transfer more) can never produce the correlation.
    Non-finite pairs are dropped; ``n_perm=0`` computes the statistic alone (p is NaN).
    """
    _check_alternative(alternative)
    x, y = _paired(x, y)
    g = np.zeros(x.size, dtype=int) if strata is None else np.asarray(strata).ravel()
    if g.size != x.size:
        raise ValueError(f"`strata` must have one label per value ({x.size}), got {g.size}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, g = x[ok], y[ok], g[ok]
    groups = [np.flatnonzero(g == s) for s in unique(g)]
    groups = [w for w in groups if w.size >= 3 and np.ptp(x[w]) > 0 and np.ptp(y[w]) > 0]
    if not groups:
        return TestResult(float("nan"), float("nan"), int(x.size), n_perm)
    rng = np.random.default_rng(seed)
    weights = np.array([w.size for w in groups], dtype=np.float64)
    observed, null = 0.0, np.zeros(n_perm)
    for w, weight in zip(groups, weights, strict=True):
        rx, ry = _ranks(x[w]), _ranks(y[w])
        observed += weight * float(_pearson_rows(rx, ry[None])[0])
        perms = _permutations(rng, w.size, n_perm)
        null += weight * _pearson_rows(rx, ry[perms])
    observed /= weights.sum()
    null /= weights.sum()
    return TestResult(
        float(observed),
        _p_value(observed, null, alternative),
        int(sum(w.size for w in groups)),
        n_perm,
    )


def unique(values) -> list:
    """Distinct values in order of first appearance (any iterable of hashables; a NumPy array's
    values as Python scalars)."""
    values = values.tolist() if isinstance(values, np.ndarray) else values
    return list(dict.fromkeys(values))


def spearman(x, y) -> float:
    """Spearman rank correlation of ``x`` and ``y`` (`spearman_test` without permutations): the
    Pearson correlation of their ranks over the finite pairs; NaN when either side is constant or
    fewer than 3 pairs are finite."""
    return spearman_test(x, y, n_perm=0).statistic


def partial_spearman(x, y, z) -> float:
    """Spearman correlation of ``x`` and ``y`` controlling for ``z``.

    ``ρ_{xy·z} = (ρ_xy − ρ_xz ρ_yz) / sqrt((1 − ρ_xz²)(1 − ρ_yz²))`` with Spearman ρ's, which is
    the Pearson correlation of the ranks of ``x`` and ``y`` after each is regressed linearly on the
    ranks of ``z``. NaN when a side is constant or ``z`` determines ``x`` or ``y``.
    """
    x, y = _paired(x, y)
    x, z = _paired(x, z, "x", "z")
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    if ok.sum() < 4:
        return float("nan")
    r = np.corrcoef(np.vstack([_ranks(x[ok]), _ranks(y[ok]), _ranks(z[ok])]))
    rxy, rxz, ryz = r[0, 1], r[0, 2], r[1, 2]
    den = (1 - rxz**2) * (1 - ryz**2)
    if not np.isfinite(den) or den <= 1e-12:
        return float("nan")
    return float((rxy - rxz * ryz) / np.sqrt(den))


def _condensed(D, name: str) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"`{name}` must be a square matrix, got shape {D.shape}")
    if D.shape[0] < 3:
        raise ValueError(f"`{name}` needs at least 3 objects, got {D.shape[0]}")
    if not np.isfinite(D).all():
        bad = np.argwhere(~np.isfinite(D))[0]
        raise ValueError(f"`{name}` has a non-finite entry at {tuple(int(i) for i in bad)}")
    if not np.allclose(D, D.T, rtol=1e-9, atol=1e-12):
        raise ValueError(f"`{name}` must be symmetric")
    return D


def mantel(
    A,
    B,
    *,
    method: str = "spearman",
    n_perm: int = N_PERM,
    seed: int = PERM_SEED,
    alternative: str = "greater",
) -> TestResult:
    """The Mantel test: correlation of two distance matrices over their upper triangles, with a
    p-value from permuting the objects (rows and columns together) of ``B``.

    Parameters
    ----------
    A, B : array (n, n)
        Symmetric distance matrices of the same n ≥ 3 objects, in the same order.
    method : {"spearman", "pearson"}
        Correlation of the ``n(n−1)/2`` off-diagonal pairs (Spearman: of their ranks).
    n_perm : int
    seed : int
    alternative : {"greater", "less", "two-sided"}
        "greater" (default) tests for *agreement* (larger distances in A where larger in B).

    Returns
    -------
    TestResult
        ``statistic`` the correlation ``r``, ``n`` the number of objects. Object permutations
        (not pair permutations) keep the dependence among pairs that share an object, which is
        what makes the p-value valid for distance matrices.
    """
    _check_alternative(alternative)
    if method not in ("spearman", "pearson"):
        raise ValueError(f"`method` must be 'spearman' or 'pearson', got {method!r}")
    A, B = _condensed(A, "A"), _condensed(B, "B")
    if A.shape != B.shape:
        raise ValueError(f"`A` and `B` must have the same shape, got {A.shape} and {B.shape}")
    n = A.shape[0]
    iu = np.triu_indices(n, 1)
    a = A[iu]
    if method == "spearman":
        # Permuting the objects permutes the pairs, so rank once and permute the ranks.
        a = _ranks(a)
        R = np.zeros_like(B)
        R[iu] = _ranks(B[iu])
        B = R + R.T
    if np.ptp(a) == 0 or np.ptp(B[iu]) == 0:
        return TestResult(float("nan"), float("nan"), n, n_perm)
    observed = float(_pearson_rows(a, B[iu][None])[0])
    rng = np.random.default_rng(seed)
    null = np.empty(n_perm)
    for start in range(0, n_perm, 2048):  # chunks: (chunk, pairs) stays small for large n
        perms = _permutations(rng, n, min(2048, n_perm - start))
        null[start : start + perms.shape[0]] = _pearson_rows(a, B[perms[:, iu[0]], perms[:, iu[1]]])
    return TestResult(observed, _p_value(observed, null, alternative), n, n_perm)


def cophenetic_correlation(D, method: str = "average") -> float:
    """Pearson correlation between the cophenetic distances of the hierarchical clustering of
    ``D`` (``method`` linkage) and ``D`` itself: how faithfully the dendrogram represents D
    (1: D is an ultrametric, a tree exactly)."""
    from scipy.cluster.hierarchy import cophenet, linkage
    from scipy.spatial.distance import squareform

    y = squareform(_condensed(D, "D"), checks=False)
    return float(cophenet(linkage(y, method=method), y)[0])


def cophenetic_distances(D, method: str = "average") -> np.ndarray:
    """The (n, n) cophenetic distance matrix of the ``method``-linkage clustering of ``D``."""
    from scipy.cluster.hierarchy import cophenet, linkage
    from scipy.spatial.distance import squareform

    y = squareform(_condensed(D, "D"), checks=False)
    return squareform(cophenet(linkage(y, method=method)))


@dataclass(frozen=True)
class Plateau:
    """The plateau criterion of one training curve (`plateau`).

    Attributes
    ----------
    converged : bool
        ``change < tol``.
    change : float
        Range (max − min) of the curve over the last ``fraction`` of training.
    window_start : float
        The step where that window starts, ``(1 − fraction) · last step``.
    """

    converged: bool
    change: float
    window_start: float


def plateau(steps, values, *, fraction: float = 0.2, tol: float = 0.02) -> Plateau:
    """Has a training curve plateaued? The criterion of the reference study.

    The curve (``values`` at record ``steps``, e.g. progress on the run's own task) has plateaued
    when its range over the last ``fraction`` of the *steps* of training, from
    ``s_0 = (1 − fraction) · steps[-1]`` to ``steps[-1]``, is below ``tol``. The range counts every
    record in the window and the value at ``s_0`` interpolated linearly between the records around
    it, so a window with a single record still compares two values (a log-spaced schedule may
    have one record there).

    Parameters
    ----------
    steps : array (T,)
        Increasing record steps, T ≥ 2.
    values : array (T,)
    fraction : float in (0, 1)
    tol : float > 0
    """
    s, v = _paired(steps, values, "steps", "values")
    if s.size < 2:
        raise ValueError(f"`steps` needs at least 2 records, got {s.size}")
    if np.any(np.diff(s) <= 0):
        raise ValueError("`steps` must be strictly increasing")
    if not np.isfinite(v).all():
        raise ValueError("`values` must be finite")
    if not 0 < fraction < 1:
        raise ValueError(f"`fraction` must be in (0, 1), got {fraction}")
    if not tol > 0:
        raise ValueError(f"`tol` must be > 0, got {tol}")
    start = s[0] + (1 - fraction) * (s[-1] - s[0])
    window = np.append(v[s >= start], np.interp(start, s, v))
    change = float(np.ptp(window))
    return Plateau(change < tol, change, float(start))


def verdict(
    estimate: float,
    interval,
    p_value: float | None,
    *,
    expected: str = "greater",
    null: float = 0.0,
    alpha: float = ALPHA,
) -> str:
    """The pre-registered verdict of a finding: "agrees", "disagrees" or "inconclusive".

    ``expected`` is the direction the paper predicts for the estimate relative to ``null`` (0 for
    a correlation, 1 for a ratio): "greater" or "less". **agrees**: ``p_value < alpha`` (a
    one-sided test in the expected direction; ``None``: no test, the interval alone decides) and
    the interval lies wholly on the expected side of ``null``. **disagrees**: the interval lies
    wholly on the other side (a real effect the other way). **inconclusive**: anything else
    (including a significant p with an interval touching the null, or NaN).
    """
    if expected not in ("greater", "less"):
        raise ValueError(f"`expected` must be 'greater' or 'less', got {expected!r}")
    lo, hi = interval
    if not all(np.isfinite([estimate, lo, hi])):
        return "inconclusive"
    sign = 1.0 if expected == "greater" else -1.0
    lo, hi = sorted((sign * (lo - null), sign * (hi - null)))
    significant = p_value is None or (np.isfinite(p_value) and p_value < alpha)
    if significant and lo > 0:
        return "agrees"
    if hi < 0:
        return "disagrees"
    return "inconclusive"
