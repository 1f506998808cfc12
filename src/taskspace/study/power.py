"""Power of the reference study's tests, by simulation (issue 30, docs/results.md "Design v3").

Each function simulates the statistic a finding's verdict rests on, under a stated model whose
spread is taken from a measured run, and returns how often the pre-registered rule would decide:
the fraction of simulated studies whose one-sided permutation p falls below ``alpha`` (findings 2
and 3) or whose 95% interval excludes 1 (finding 5). The tests are the analyses' own
(:mod:`taskspace.study.analyses.stats`), so what is simulated is what will be run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taskspace.study.analyses import stats

#: z of a two-sided 95% interval.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Power:
    """How often a design decides, with the simulation's own 95% interval.

    Attributes
    ----------
    power : float
        Fraction of the ``n_sims`` simulated studies in which the rule decided.
    low, high : float
        Wilson 95% interval of that fraction (the simulation's Monte-Carlo error).
    n_sims : int
    """

    power: float
    low: float
    high: float
    n_sims: int


def _power(hits: np.ndarray) -> Power:
    n = hits.size
    p = float(hits.mean())
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return Power(p, max(0.0, centre - half), min(1.0, centre + half), n)


def pearson_for_spearman(rho: float) -> float:
    """The Pearson r of a bivariate normal whose Spearman correlation is ``rho``:
    ``r = 2 sin(π ρ / 6)`` (Pearson, 1907)."""
    return 2.0 * np.sin(np.pi * rho / 6.0)


def planted_spearman(rng, rho: float, sizes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One simulated design of finding 2: ``(x, y, strata)``, ``sizes[g]`` tasks in stratum g
    (labelled g) whose diversity ``x`` and transfer ``y`` are bivariate normal with Spearman
    correlation ``rho`` within every stratum (Pearson r = `pearson_for_spearman` of it)."""
    r = pearson_for_spearman(rho)
    strata = np.repeat(np.arange(len(sizes)), sizes)
    x = rng.standard_normal(strata.size)
    y = r * x + np.sqrt(1 - r * r) * rng.standard_normal(strata.size)
    return x, y, strata


def spearman_power(
    rho: float, sizes, *, alpha: float = 0.05, n_sims: int = 400, n_perm: int = 999, seed: int = 0
) -> Power:
    """Power of the stratified one-sided Spearman permutation test (finding 2).

    Model: within each stratum (tasks of one size) ``n_g`` tasks with diversity ``x`` and transfer
    ``y`` drawn from a bivariate normal with Spearman correlation ``rho`` (seed noise included,
    since ``rho`` is the correlation of the measured, seed-averaged values).

    Parameters
    ----------
    rho : float
        Population Spearman correlation in every stratum (0 gives the test's size).
    sizes : sequence of int
        Tasks per stratum, e.g. ``(45, 30)`` for 45 two-class and 30 three-class tasks.
    alpha : float
        Significance level of the one-sided ("greater") test.
    n_sims, n_perm, seed : int
        Simulated studies, permutations per test, seed.
    """
    rng = np.random.default_rng(seed)
    hits = np.empty(n_sims, dtype=bool)
    for k in range(n_sims):
        x, y, strata = planted_spearman(rng, rho, sizes)
        test = stats.spearman_test(
            x, y, strata=strata, n_perm=n_perm, alternative="greater", seed=int(rng.integers(2**31))
        )
        hits[k] = test.p_value < alpha
    return _power(hits)


def planted_task_distances(W, sigma: float, rng, task_share: float = 0.5) -> np.ndarray:
    """One simulated measurement of finding 3's task distances (n, n): WordNet's ``W`` (scaled
    to unit spread over pairs) plus ``sigma·(u_i + u_j + e_ij)``, a task effect ``u`` of
    variance ``task_share`` and symmetric pair noise ``e`` (the rest); 0 on the diagonal."""
    n = W.shape[0]
    u = rng.standard_normal(n) * np.sqrt(task_share)
    e = rng.standard_normal((n, n)) * np.sqrt(1 - task_share)
    noise = u[:, None] + u[None, :] + (e + e.T) / np.sqrt(2)
    T = W / W[np.triu_indices(n, 1)].std() + sigma * noise
    np.fill_diagonal(T, 0.0)
    return T


def calibrate_mantel_noise(
    W, r, *, task_share: float = 0.5, n_sims: int = 200, seed: int = 0
) -> float:
    """The noise ``sigma`` at which the Mantel r between WordNet's task distances ``W`` (n, n)
    and the simulated measured ones (:func:`mantel_power`'s model) averages ``r``."""
    low, high = 1e-3, 1e3
    for _ in range(40):  # bisection on log sigma; the mean r falls as sigma grows
        sigma = np.sqrt(low * high)
        rng = np.random.default_rng(seed)
        mean_r = np.mean(
            [
                stats.mantel(
                    W, planted_task_distances(W, sigma, rng, task_share), n_perm=0
                ).statistic
                for _ in range(n_sims)
            ]
        )
        low, high = (sigma, high) if mean_r > r else (low, sigma)
    return float(np.sqrt(low * high))


def mantel_power(
    W,
    sigma: float,
    *,
    task_share: float = 0.5,
    alpha: float = 0.05,
    n_sims: int = 400,
    n_perm: int = 999,
    seed: int = 0,
) -> Power:
    """Power of the one-sided Mantel test (finding 3) over the tasks of ``W``.

    Model: the measured distance between tasks i and j is WordNet's (``W``, scaled to unit
    spread over pairs) plus ``sigma·(u_i + u_j + e_ij)``: a task effect ``u`` (variance
    ``task_share``, shared by every pair the task is in, as a task that trains badly is far from
    all others) and pair noise ``e`` (the rest). ``sigma`` comes from
    :func:`calibrate_mantel_noise` on the design whose r was measured.
    """
    W = np.asarray(W, dtype=np.float64)
    rng = np.random.default_rng(seed)
    hits = np.empty(n_sims, dtype=bool)
    for k in range(n_sims):
        T = planted_task_distances(W, sigma, rng, task_share)
        test = stats.mantel(T, W, n_perm=n_perm, seed=int(rng.integers(2**31)))
        hits[k] = test.p_value < alpha
    return _power(hits)


def run_spread_for_interval(ratio: float, half_width: float, n_runs: int) -> float:
    """Per-run coefficient of variation that gives a ratio of means an interval of
    ``± half_width`` over ``n_runs`` runs per method (delta method, equal CVs of numerator and
    denominator): ``half_width = 1.96 · ratio · cv · √(2 / n)``."""
    return half_width / (Z95 * ratio * np.sqrt(2.0 / n_runs))


def ratio_power(
    ratio: float, cv: float, n_runs: int, *, n_sims: int = 2000, seed: int = 0
) -> Power:
    """How often the jackknife 95% interval of ``mean(end) / mean(middle)`` excludes 1
    (finding 5: "agrees" below 1, "disagrees" above).

    Model: ``n_runs`` independent runs, each with a middle-of-training distance and an end
    distance drawn normal with the same coefficient of variation ``cv`` around means whose
    ratio is ``ratio``. The interval is the analyses' delete-one jackknife over runs,
    ``estimate ± 1.96·se_jack``.
    """
    rng = np.random.default_rng(seed)
    middle = 1.0 + cv * rng.standard_normal((n_sims, n_runs))
    end = ratio * (1.0 + cv * rng.standard_normal((n_sims, n_runs)))
    estimate = end.mean(1) / middle.mean(1)
    # delete-one means: (sum − x_i) / (n − 1)
    leave_end = (end.sum(1, keepdims=True) - end) / (n_runs - 1)
    leave_mid = (middle.sum(1, keepdims=True) - middle) / (n_runs - 1)
    theta = leave_end / leave_mid
    se = np.sqrt((n_runs - 1) / n_runs * ((theta - theta.mean(1, keepdims=True)) ** 2).sum(1))
    excludes = (estimate - Z95 * se > 1.0) | (estimate + Z95 * se < 1.0)
    return _power(excludes)
