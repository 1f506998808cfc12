"""Power simulations of the v3 design (taskspace.study.power), against closed forms."""

import numpy as np
import pytest
from scipy import stats as sps

from taskspace.study import power
from taskspace.study.analyses import stats


def test_pearson_for_spearman_gives_that_spearman_correlation():
    rng = np.random.default_rng(0)
    r = power.pearson_for_spearman(0.3)
    x = rng.standard_normal(200_000)
    y = r * x + np.sqrt(1 - r * r) * rng.standard_normal(x.size)
    assert sps.spearmanr(x, y).statistic == pytest.approx(0.3, abs=0.01)
    assert power.pearson_for_spearman(0.0) == 0.0
    assert power.pearson_for_spearman(1.0) == pytest.approx(1.0)


def fisher_z_power(rho, n, alpha=0.05):
    """Normal approximation of the one-sided Spearman test's power (Fieller's variance 1.06)."""
    return sps.norm.sf(sps.norm.isf(alpha) - np.arctanh(rho) * np.sqrt((n - 3) / 1.06))


def test_planted_spearman_found_at_the_predicted_rate_and_none_under_the_null():
    planted = power.spearman_power(0.3, [68], n_sims=300, n_perm=199, seed=3)
    assert planted.low - 0.05 <= fisher_z_power(0.3, 68) <= planted.high + 0.05
    assert 0.7 < planted.power < 0.9
    null = power.spearman_power(0.0, [20, 20], n_sims=300, n_perm=199, seed=4)
    assert null.low <= 0.05 <= null.high + 0.02


def test_power_interval_is_wilson():
    hits = np.array([True] * 30 + [False] * 70)
    got = power._power(hits)
    assert got.power == 0.3
    # Wilson's 95% interval for 30 of 100
    assert (got.low, got.high) == pytest.approx((0.2189, 0.3958), abs=1e-3)


@pytest.mark.slow
def test_mantel_noise_calibration_hits_the_target_r():
    rng = np.random.default_rng(0)
    points = rng.random((12, 2))
    W = np.linalg.norm(points[:, None] - points[None], axis=-1)
    sigma = power.calibrate_mantel_noise(W, 0.4, n_sims=200, seed=5)
    sim = np.random.default_rng(6)
    r = np.mean(
        [
            stats.mantel(W, power.planted_task_distances(W, sigma, sim, 0.5), n_perm=0).statistic
            for _ in range(400)
        ]
    )
    assert r == pytest.approx(0.4, abs=0.03)


def test_mantel_power_grows_with_tasks_and_keeps_its_size_under_the_null():
    rng = np.random.default_rng(1)
    points = rng.random((30, 2))
    W = np.linalg.norm(points[:, None] - points[None], axis=-1)
    few = power.mantel_power(W[:8, :8], 2.0, n_sims=100, n_perm=199)
    many = power.mantel_power(W, 2.0, n_sims=100, n_perm=199)
    assert many.power > few.power + 0.2
    null = power.mantel_power(W, 1e6, n_sims=300, n_perm=199, seed=2)
    assert null.low <= 0.05 <= null.high + 0.02


def test_ratio_interval_spread_and_size():
    cv = power.run_spread_for_interval(1.5, 0.6, 48)
    assert 1.959963984540054 * 1.5 * cv * np.sqrt(2 / 48) == pytest.approx(0.6)
    # at a true ratio of 1 the interval excludes 1 about 5% of the time (a large design)
    null = power.ratio_power(1.0, 0.3, 96, n_sims=4000)
    assert 0.03 < null.power < 0.08
    assert power.ratio_power(0.5, 0.3, 48).power > 0.99
