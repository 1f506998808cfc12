"""The statistics behind the study's verdicts, on constructed cases with known answers."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr

from taskspace.study.analyses.stats import (
    cophenetic_correlation,
    mantel,
    partial_spearman,
    plateau,
    spearman_test,
    verdict,
)


def _tree_distances(n_groups=4, per_group=3, rng=None):
    """Path distances of a two-level tree: 2 within a group, 4 across (plus 2 for far groups)."""
    g = np.repeat(np.arange(n_groups), per_group)
    super_g = g // 2
    D = np.where(
        g[:, None] == g[None, :], 2.0, np.where(super_g[:, None] == super_g[None, :], 4.0, 6.0)
    )
    np.fill_diagonal(D, 0)
    return D


def _noisy(W, rng):
    """``W`` plus symmetric Gaussian noise (σ 0.3), zero diagonal: a distance matrix that keeps
    ``W``'s structure."""
    noise = rng.normal(0, 0.3, W.shape)
    A = W + (noise + noise.T) / 2
    np.fill_diagonal(A, 0)
    return A


def test_mantel_finds_planted_structure():
    rng = np.random.default_rng(1)
    W = _tree_distances()
    A = _noisy(W, rng)
    r = mantel(A, W, n_perm=999)
    assert r.statistic > 0.8 and r.p_value < 0.01
    assert r.n == 12 and r.p_value >= 1 / 1000  # the +1 correction: never 0


def test_mantel_rejects_shuffled_structure():
    rng = np.random.default_rng(2)
    W = _tree_distances()
    A = _noisy(W, rng)
    perm = rng.permutation(W.shape[0])
    shuffled = A[np.ix_(perm, perm)]  # same distances, objects relabelled at random
    r = mantel(shuffled, W, n_perm=999)
    assert r.p_value > 0.05


def test_mantel_p_values_are_calibrated_under_the_null():
    rng = np.random.default_rng(3)
    ps = []
    for _ in range(200):
        a, b = rng.normal(size=(10, 2)), rng.normal(size=(10, 2))
        ps.append(
            mantel(
                squareform(pdist(a)),
                squareform(pdist(b)),
                n_perm=199,
                seed=int(rng.integers(1 << 31)),
            ).p_value
        )
    ps = np.array(ps)
    assert 0.01 <= (ps < 0.05).mean() <= 0.10
    assert 0.40 <= (ps < 0.5).mean() <= 0.60


def test_mantel_statistic_is_the_correlation_of_the_upper_triangles():
    rng = np.random.default_rng(4)
    A, B = squareform(pdist(rng.normal(size=(7, 3)))), squareform(pdist(rng.normal(size=(7, 3))))
    iu = np.triu_indices(7, 1)
    assert mantel(A, B, n_perm=9).statistic == pytest.approx(spearmanr(A[iu], B[iu])[0])
    assert mantel(A, B, method="pearson", n_perm=9).statistic == pytest.approx(
        np.corrcoef(A[iu], B[iu])[0, 1]
    )
    # Reproducible, and anti-agreement is found by the "less" alternative.
    assert mantel(A, B, n_perm=99).p_value == mantel(A, B, n_perm=99).p_value
    assert mantel(A, -A + A.max() * (1 - np.eye(7)), n_perm=999, alternative="less").p_value < 0.01


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones((3, 4)), "square"),
        (np.zeros((2, 2)), "at least 3"),
        (np.array([[0, 1, np.nan], [1, 0, 1], [np.nan, 1, 0]]), "non-finite"),
        (np.array([[0, 1, 2], [3, 0, 1], [2, 1, 0]]), "symmetric"),
    ],
)
def test_mantel_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        mantel(bad, np.ones((3, 3)) - np.eye(3))


def test_spearman_permutation_p_value():
    rng = np.random.default_rng(5)
    x = rng.normal(size=12)
    y = x + rng.normal(0, 0.3, 12)
    strong = spearman_test(x, y, n_perm=1999, alternative="greater")
    assert strong.statistic == pytest.approx(spearmanr(x, y)[0]) and strong.statistic > 0.8
    assert strong.p_value < 0.01
    ps = [
        spearman_test(rng.normal(size=10), rng.normal(size=10), n_perm=199, seed=s).p_value
        for s in range(200)
    ]
    assert 0.01 <= np.mean(np.array(ps) < 0.05) <= 0.10
    # Exact value: ρ of a perfectly reversed order is −1; its two-sided p is tiny.
    rev = spearman_test(np.arange(8), -np.arange(8), n_perm=999)
    assert rev.statistic == pytest.approx(-1) and rev.p_value < 0.01
    assert np.isnan(spearman_test([1, 2], [2, 1]).p_value)


def test_stratified_spearman_ignores_differences_between_strata():
    # Within each size, y falls with x; across sizes both rise (bigger tasks: larger x and y).
    # The pooled ρ is positive, the stratified one −1, and the within-strata permutation knows it.
    x = np.array([1, 2, 3, 4, 11, 12, 13, 14], dtype=float)
    y = np.array([4, 3, 2, 1, 14, 13, 12, 11], dtype=float)
    size = np.repeat([2, 3], 4)
    assert spearmanr(x, y)[0] > 0.5
    s = spearman_test(x, y, strata=size, n_perm=999, alternative="less")
    assert s.statistic == pytest.approx(-1.0)
    # 4! permutations per stratum: P(both reversed) = 1/576, so p is small but not 1/1000.
    assert s.p_value < 0.01
    unequal = spearman_test(
        np.r_[x, 20, 21, 22], np.r_[y, 1, 2, 3], strata=np.r_[size, 5, 5, 5], n_perm=9
    )
    assert unequal.statistic == pytest.approx((4 * -1 + 4 * -1 + 3 * 1) / 11)


def test_partial_spearman_removes_a_common_cause():
    rng = np.random.default_rng(6)
    z = rng.normal(size=400)
    x, y = z + 0.5 * rng.normal(size=400), z + 0.5 * rng.normal(size=400)
    assert spearmanr(x, y)[0] > 0.6
    assert abs(partial_spearman(x, y, z)) < 0.12
    # Closed form on ranks: equals the residual correlation of ranks regressed on z's ranks.
    from scipy.stats import rankdata

    rx, ry, rz = rankdata(x), rankdata(y), rankdata(z)
    res = [r - np.polyval(np.polyfit(rz, r, 1), rz) for r in (rx, ry)]
    assert partial_spearman(x, y, z) == pytest.approx(np.corrcoef(*res)[0, 1], abs=1e-12)
    w = z + 0.5 * rng.normal(size=400)
    assert partial_spearman(w + x, w, z) > 0.5  # a real link beyond z survives
    assert np.isnan(partial_spearman(x, y, x))


def test_cophenetic_correlation_is_one_for_an_ultrametric():
    assert cophenetic_correlation(_tree_distances()) == pytest.approx(1.0)
    rng = np.random.default_rng(7)
    D = squareform(pdist(rng.normal(size=(12, 5))))
    assert 0 < cophenetic_correlation(D) < 0.99


def test_plateau_criterion():
    steps = np.array([0, 10, 50, 100, 200, 400, 800, 1000])
    rising = np.array([0, 0.2, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9])
    p = plateau(steps, rising)
    assert p.window_start == 800 and p.change == pytest.approx(0.05) and not p.converged
    flat = np.array([0, 0.2, 0.5, 0.6, 0.7, 0.8, 0.89, 0.9])
    assert plateau(steps, flat).converged
    # A window holding the last record only: the value at its start is interpolated.
    p = plateau([0, 100, 1000], [0.0, 0.5, 0.9])
    assert p.change == pytest.approx(0.9 - (0.5 + 0.4 * 700 / 900)) and not p.converged
    with pytest.raises(ValueError, match="increasing"):
        plateau([0, 5, 5], [0, 1, 1])
    with pytest.raises(ValueError, match="fraction"):
        plateau([0, 1], [0, 1], fraction=1.0)


@pytest.mark.parametrize(
    "estimate, interval, p, expected, answer",
    [
        (0.6, (0.3, 0.8), 0.001, "greater", "agrees"),
        (0.6, (-0.1, 0.8), 0.03, "greater", "inconclusive"),  # interval touches the null
        (0.6, (0.3, 0.8), 0.2, "greater", "inconclusive"),  # not significant
        (-0.5, (-0.8, -0.2), 0.9, "greater", "disagrees"),
        (-0.5, (-0.8, -0.2), 0.001, "less", "agrees"),
        (np.nan, (0.1, 0.2), 0.001, "greater", "inconclusive"),
    ],
)
def test_verdict_rule(estimate, interval, p, expected, answer):
    assert verdict(estimate, interval, p, expected=expected) == answer


def test_verdict_of_a_ratio_by_its_interval():
    assert verdict(0.5, (0.3, 0.8), None, expected="less", null=1.0) == "agrees"
    assert verdict(0.9, (0.7, 1.1), None, expected="less", null=1.0) == "inconclusive"
    assert verdict(3.0, (2.0, 4.0), None, expected="less", null=1.0) == "disagrees"
