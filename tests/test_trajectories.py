"""Trajectories (SPEC §6–9): length, re-parameterisation, averages, comparisons, Fréchet."""

from functools import cache

import numpy as np
import pytest

import taskspace as ts
from tests.helpers import random_models


def one_hot(labels, n_classes):
    return np.eye(n_classes)[labels]


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    N, C = 12, 4
    y = rng.integers(0, C, N)
    return rng, y, np.full((N, C), 1 / C), one_hot(y, C)


# ---------------------------------------------------------------- length (§6)


def test_length_of_a_geodesic_is_its_endpoint_distance(problem):
    rng, _, _, _ = problem
    P, Q = random_models(rng, (2, 12, 4), 2.0)
    path = ts.interpolate(P, Q, np.linspace(0, 1, 37))
    # d_G is the geodesic distance and the path has constant speed: exact for any sampling
    assert ts.length(path, metric="geodesic") == pytest.approx(
        float(ts.geodesic_distance(P, Q)), rel=1e-12
    )
    # 2 sqrt(d_B) ≈ sqrt(2) d_G for short steps (−log cos x ≈ x²/2): the Riemann sum converges
    fine = ts.interpolate(P, Q, np.linspace(0, 1, 2001))
    assert ts.length(fine) == pytest.approx(
        np.sqrt(2) * float(ts.geodesic_distance(P, Q)), rel=1e-5
    )


def test_length_closed_form_and_additivity(problem):
    rng, _, _, _ = problem
    traj = random_models(rng, (9, 12, 4), 1.5)
    by_hand = sum(2 * np.sqrt(float(ts.bhattacharyya(traj[t], traj[t + 1]))) for t in range(8))
    assert ts.length(traj) == pytest.approx(by_hand, rel=1e-13)
    for metric in ("bhattacharyya", "geodesic"):
        whole = ts.length(traj, metric=metric)
        assert whole == pytest.approx(
            ts.length(traj[:4], metric=metric) + ts.length(traj[3:], metric=metric), rel=1e-13
        )
    assert ts.length(traj[:1]) == 0.0
    stacked = ts.length(np.stack([traj, traj[::-1]]))
    assert stacked.shape == (2,)
    np.testing.assert_allclose(stacked, ts.length(traj), rtol=1e-13)


def test_length_errors():
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        ts.length(np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="unknown metric"):
        ts.length(np.full((2, 3, 2), 0.5), metric="hellinger")


# ---------------------------------------------------------------- reparameterize (§7)


def test_reparameterize_every_branch_with_non_monotone_progress(problem):
    rng, _, _, _ = problem
    traj = random_models(rng, (4, 12, 4), 2.0)
    lam = np.array([0.1, 0.5, 0.3, 0.9])
    grid = np.array([0.0, 0.1, 0.4, 0.5, 0.6, 0.9, 1.0])
    out = ts.reparameterize(traj, lam, grid)
    assert out.shape == (7, 12, 4)
    # g < λ_1 and g = λ_1 → first index with λ > g is the first record... for g = 0 only
    np.testing.assert_allclose(out[0], traj[0], atol=1e-15)
    # g = 0.1: first λ > 0.1 is record 2 (0.5): fraction (0.1 − 0.1)/0.4 = 0, i.e. P_1
    np.testing.assert_allclose(out[1], traj[0], atol=1e-15)
    # g = 0.4: record 2, between P_1 and P_2 at (0.4 − 0.1)/(0.5 − 0.1) = 0.75
    np.testing.assert_allclose(out[2], ts.interpolate(traj[0], traj[1], 0.75), atol=1e-15)
    # g = 0.5: λ_2 = 0.5 is not > 0.5; the first is record 4 (0.9), from P_3 (0.3): (0.2)/0.6
    np.testing.assert_allclose(out[3], ts.interpolate(traj[2], traj[3], 1 / 3), atol=1e-14)
    # g = 0.6: (0.6 − 0.3)/(0.9 − 0.3) = 0.5 on the last segment
    np.testing.assert_allclose(out[4], ts.interpolate(traj[2], traj[3], 0.5), atol=1e-14)
    # g ≥ max λ: no record beyond it → P_T
    np.testing.assert_allclose(out[5], traj[3], atol=1e-15)
    np.testing.assert_allclose(out[6], traj[3], atol=1e-15)


def test_reparameterize_first_branch_when_the_first_record_is_past_g(problem):
    rng, _, _, _ = problem
    traj = random_models(rng, (3, 12, 4))
    out = ts.reparameterize(traj, [0.3, 0.6, 0.8], [0.0, 0.2])
    np.testing.assert_allclose(out, traj[[0, 0]], atol=1e-15)


def test_reparameterize_a_sampled_geodesic_gives_the_geodesic(problem):
    _, y, uniform, truth = problem
    traj = ts.interpolate(uniform, truth, [0.0, 0.13, 0.5, 0.51, 0.9, 1.0])
    out = ts.reparameterize(traj, ts.progress(traj, y))
    np.testing.assert_allclose(
        out, ts.interpolate(uniform, truth, np.linspace(0, 1, 51)), atol=1e-9
    )


@pytest.mark.parametrize(
    ("progress", "grid", "match"),
    [
        ([0.1, 0.2], None, r"shape \(3,\)"),
        ([0.1, np.nan, 0.3], None, "non-finite value at index 1"),
        ([0.1, 0.2, 0.3], [0.0, 1.2], "index 1 is 1.2"),
        ([0.1, 0.2, 0.3], [0.0, 0.5, 0.5], "strictly increasing; index 2"),
        ([0.1, 0.2, 0.3], [[0.1]], "1-D"),
        ([0.1, 0.2, 0.3], [], "1-D"),
    ],
)
def test_reparameterize_errors(progress, grid, match):
    traj = np.full((3, 2, 2), 0.5)
    with pytest.raises(ValueError, match=match):
        ts.reparameterize(traj, progress, grid)


def test_default_grid_is_exact():
    traj = ts.interpolate(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), [0.0, 1.0])
    out = ts.reparameterize(traj, [0.0, 1.0])
    assert out.shape == (51, 1, 2)
    np.testing.assert_allclose(out[25], [[0.5, 0.5]], atol=1e-15)


# ---------------------------------------------------------------- average (§8)


def test_average_both_means(problem):
    rng, _, _, _ = problem
    models = random_models(rng, (5, 12, 4), 2.0)
    np.testing.assert_allclose(ts.average(models), models.mean(axis=0), atol=1e-15)
    m = np.sqrt(models).mean(axis=0)
    centroid = (m / np.linalg.norm(m, axis=-1, keepdims=True)) ** 2
    np.testing.assert_allclose(ts.average(models, mean="bhattacharyya"), centroid, atol=1e-15)
    for mean in ("arithmetic", "bhattacharyya"):
        same = ts.average(np.stack([models[0]] * 3), mean=mean)
        np.testing.assert_allclose(same, models[0], atol=1e-15)
        grouped = ts.average(models.reshape(1, 5, 12, 4), mean=mean, axis=1)
        assert grouped.shape == (1, 12, 4)
        np.testing.assert_allclose(grouped[0], ts.average(models, mean=mean), atol=1e-15)
        assert ts.average(models.reshape(1, 5, 12, 4), mean=mean, axis=-3).shape == (1, 12, 4)
    # the centroid of two points of a great circle is its midpoint
    P, Q = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    np.testing.assert_allclose(
        ts.average(np.stack([P, Q]), mean="bhattacharyya"), ts.interpolate(P, Q, 0.5), atol=1e-15
    )


def test_average_errors():
    models = np.full((2, 3, 2), 0.5)
    with pytest.raises(ValueError, match="unknown mean"):
        ts.average(models, mean="geometric")
    with pytest.raises(ValueError, match="not a leading axis"):
        ts.average(models, axis=-1)
    with pytest.raises(ValueError, match="not a leading axis"):
        ts.average(models, axis=1)
    with pytest.raises(ValueError, match="at least 3"):
        ts.average(models[0])


# ---------------------------------------------------------------- compare (§9)


def _runs(rng, uniform, truth, n_runs, noise=0.2):
    runs = []
    for r in range(n_runs):
        lams = np.sort(np.concatenate([[0.05 * r], rng.uniform(0, 1, 5), [0.9 + 0.02 * r]]))
        base = ts.interpolate(uniform, truth, lams)
        runs.append((1 - noise) * base + noise * random_models(rng, base.shape, 1.0))
    return runs


def test_compare_a_run_set_with_itself_is_zero(problem):
    rng, y, uniform, truth = problem
    runs = _runs(rng, uniform, truth, 3)
    for mean in ("arithmetic", "bhattacharyya"):
        result = ts.compare_trajectories(runs, runs, y, mean=mean)
        assert result.grid.size > 0
        np.testing.assert_array_equal(result.distance, 0.0)
        assert result.mean == 0.0


def test_compare_matches_its_definition(problem):
    rng, y, uniform, truth = problem
    runs_a = _runs(rng, uniform, truth, 3)
    runs_b = _runs(rng, uniform, truth, 2, noise=0.4)
    result = ts.compare_trajectories(runs_a, runs_b, y)
    lams = [ts.progress(run, y) for run in runs_a + runs_b]
    lo, hi = max(lam[0] for lam in lams), min(lam[-1] for lam in lams)
    grid = np.linspace(0, 1, 51)
    expected_grid = grid[(grid >= lo) & (grid <= hi)]
    np.testing.assert_array_equal(result.grid, expected_grid)
    mean_a = ts.average(
        np.stack([ts.reparameterize(r, ts.progress(r, y), expected_grid) for r in runs_a])
    )
    mean_b = ts.average(
        np.stack([ts.reparameterize(r, ts.progress(r, y), expected_grid) for r in runs_b])
    )
    np.testing.assert_allclose(result.distance, ts.bhattacharyya(mean_a, mean_b), atol=1e-14)
    assert result.mean == pytest.approx(result.distance.mean(), rel=1e-14)
    assert np.all(result.distance > 0)
    # an (R, T, N, C) array is the same as a list of its runs
    same_length = [r[:6] for r in runs_a]
    np.testing.assert_allclose(
        ts.compare_trajectories(np.stack(same_length), runs_b, y).distance,
        ts.compare_trajectories(same_length, runs_b, y).distance,
    )


def test_compare_without_common_range_says_so(problem):
    _, y, uniform, truth = problem
    early = [ts.interpolate(uniform, truth, [0.0, 0.1, 0.3])]
    late = [ts.interpolate(uniform, truth, [0.5, 0.7, 1.0])]
    with pytest.raises(ValueError, match="no common progress range"):
        ts.compare_trajectories(early, late, y)


def test_compare_errors(problem):
    _, y, uniform, truth = problem
    run = ts.interpolate(uniform, truth, [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="non-empty sequence"):
        ts.compare_trajectories([], [run], y)
    with pytest.raises(ValueError, match=r"runs_b\[1\]"):
        ts.compare_trajectories([run], [run, run[:, :5]], y)
    with pytest.raises(ValueError, match="unknown mean"):
        ts.compare_trajectories([run], [run], y, mean="median")
    with pytest.raises(ValueError, match="labels"):
        ts.compare_trajectories([run], [run], y[:3])


# ---------------------------------------------------------------- distance to a trajectory (§9)


def test_distance_to_trajectory(problem):
    rng, y, uniform, truth = problem
    traj = ts.interpolate(uniform, truth, [0.0, 0.5, 1.0])
    model = ts.interpolate(uniform, truth, 0.3)
    # recorded points only: the nearest record is the middle one
    recorded = ts.distance_to_trajectory(model, traj)
    assert recorded == pytest.approx(
        min(float(ts.bhattacharyya(model, p)) for p in traj), rel=1e-12
    )
    assert recorded > 0.01
    # re-parameterised by progress, 0.3 is a grid point: the model lies on the trajectory
    assert ts.distance_to_trajectory(model, traj, labels=y) == pytest.approx(0.0, abs=1e-12)
    several = random_models(rng, (2, 3, 12, 4))
    for metric in ("bhattacharyya", "hellinger", "geodesic"):
        got = ts.distance_to_trajectory(several, traj, metric=metric)
        assert got.shape == (2, 3)
        dist = getattr(ts, "geodesic_distance" if metric == "geodesic" else metric)
        expected = np.min([dist(several, p) for p in traj], axis=0)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="only used with `labels`"):
        ts.distance_to_trajectory(model, traj, grid=[0.5])


# ---------------------------------------------------------------- Fréchet (§9)


def plain_frechet(cost):
    """Eiter & Mannila's recursive definition, written plainly (small T only)."""

    @cache
    def coupling(i, j):
        if i == 0 and j == 0:
            return cost[0, 0]
        if i == 0:
            return max(coupling(0, j - 1), cost[0, j])
        if j == 0:
            return max(coupling(i - 1, 0), cost[i, 0])
        return max(min(coupling(i - 1, j), coupling(i - 1, j - 1), coupling(i, j - 1)), cost[i, j])

    return coupling(cost.shape[0] - 1, cost.shape[1] - 1)


@pytest.mark.parametrize("metric", ["bhattacharyya", "hellinger", "geodesic"])
def test_frechet_against_the_recursive_definition(metric):
    rng = np.random.default_rng(3)
    dist = getattr(ts, "geodesic_distance" if metric == "geodesic" else metric)
    for t_a, t_b in [(1, 1), (1, 5), (6, 1), (7, 9), (11, 4)]:
        a = random_models(rng, (t_a, 5, 3), 2.0)
        b = random_models(rng, (t_b, 5, 3), 2.0)
        cost = dist(a[:, None], b[None, :])
        got = ts.frechet_distance(a, b, metric=metric)
        assert got == pytest.approx(plain_frechet(cost), rel=1e-12)
        assert ts.frechet_distance(b, a, metric=metric) == got
        assert got >= max(cost[0, 0], cost[-1, -1]) * (1 - 1e-12)
        assert ts.frechet_distance(a, a, metric=metric) == 0.0


def test_frechet_long_trajectories():
    # T = 10,000 each. Two different stutterings (records repeated) of one path are at Fréchet
    # distance 0: the coupling waits on repeated records. Replacing one record of b by a model far
    # from everything costs exactly its distance to its best partner among a's records nearby.
    rng = np.random.default_rng(4)
    base = ts.interpolate(
        np.array([[0.9, 0.1]]), np.array([[0.05, 0.95]]), np.sort(rng.uniform(0, 1, 4000))
    )
    counts_a = rng.integers(1, 4, base.shape[0])
    counts_a[-1] += 10_000 - counts_a.sum()
    counts_b = rng.integers(1, 4, base.shape[0])
    counts_b[-1] += 10_000 - counts_b.sum()
    assert counts_a[-1] > 0 and counts_b[-1] > 0
    a, b = np.repeat(base, counts_a, axis=0), np.repeat(base, counts_b, axis=0)
    assert a.shape[0] == b.shape[0] == 10_000
    assert ts.frechet_distance(a, b, metric="hellinger") == 0.0
    far = b.copy()
    far[0] = [[0.0, 1.0]]
    got = ts.frechet_distance(a, far, metric="hellinger")
    assert got == pytest.approx(float(ts.hellinger(a[0], far[0])), rel=1e-12)


def test_frechet_errors():
    a = np.full((3, 2, 2), 0.5)
    with pytest.raises(ValueError, match="different numbers of samples"):
        ts.frechet_distance(a, np.full((3, 4, 2), 0.5))
    with pytest.raises(ValueError, match="`traj_b` must have 3 dimensions"):
        ts.frechet_distance(a, a[0])
    with pytest.raises(ValueError, match="unknown metric"):
        ts.frechet_distance(a, a, metric="kl")


def _drifting_run(rng, labels, n_classes, t):
    """Records on the geodesic from uniform towards a noisy truth, at the fractions ``t``."""
    target = 0.7 * np.eye(n_classes)[labels] + 0.3 * rng.dirichlet(np.ones(n_classes), len(labels))
    uniform = np.full_like(target, 1.0 / n_classes)
    return np.stack([ts.interpolate(uniform, target, f) for f in t])


def test_reparameterized_runs_compare_every_pick_as_compare_trajectories_does():
    """Bit for bit, for every leave-one-out pick of 3 + 3 runs of unequal lengths, and the same
    error where a pick has no common progress range."""
    from taskspace.geometry.trajectories import ReparameterizedRuns

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 4, size=30)
    runs = [
        _drifting_run(rng, labels, 4, np.linspace(0.0, stop, T))
        for T, stop in [(6, 0.9), (9, 0.8), (5, 0.95), (7, 0.85), (8, 0.9), (4, 0.7)]
    ]
    cache = ReparameterizedRuns(runs, labels)
    assert cache.nbytes == 6 * 51 * 30 * 4 * 8
    picks = [([0, 1, 2], [3, 4, 5])]
    picks += [([i for i in (0, 1, 2) if i != k], [3, 4, 5]) for k in (0, 1, 2)]
    picks += [([0, 1, 2], [j for j in (3, 4, 5) if j != k]) for k in (3, 4, 5)]
    for a, b in picks:
        got = cache.compare(a, b)
        want = ts.compare_trajectories([runs[i] for i in a], [runs[j] for j in b], labels)
        assert got.grid.size > 10
        np.testing.assert_array_equal(got.grid, want.grid)
        np.testing.assert_array_equal(got.distance, want.distance)
        assert got.mean == want.mean
    early = _drifting_run(rng, labels, 4, np.linspace(0.0, 0.2, 4))
    late = _drifting_run(rng, labels, 4, np.linspace(0.9, 1.0, 4))
    with pytest.raises(ValueError, match="no common progress range"):
        ts.compare_trajectories([early], [late], labels)
    with pytest.raises(ValueError, match="no common progress range"):
        ReparameterizedRuns([early, late], labels).compare([0], [1])
