"""Progress (SPEC §5): invariants, closed forms, agreement with a plain scalar minimisation of the
full objective, the `classes=` restriction and validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

import taskspace as ts
from taskspace.geometry.progress import progress, progress_on_tasks
from tests.helpers import random_models


def one_hot(labels, n_classes):
    return np.eye(n_classes)[labels]


def plain_objective(P, start, truth, lam, metric="bhattacharyya", eps=1e-9):
    """d(P^λ, P) with the whole geodesic point P^λ built from SPEC §4, written plainly."""
    s0, s1 = np.sqrt(start), np.sqrt(truth)
    theta = np.arccos(np.clip(np.sum(s0 * s1, axis=-1), 0.0, 1.0))[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        psi = (np.sin((1 - lam) * theta) * s0 + np.sin(lam * theta) * s1) / np.sin(theta)
    psi = np.where(theta > 0, psi, s0)  # the start is the truth on this sample: it does not move
    Pl = psi**2 / np.sum(psi**2, axis=-1, keepdims=True)
    bc = np.sum(np.sqrt(Pl * P), axis=-1)
    if metric == "bhattacharyya":
        return -np.mean(np.log(np.maximum(bc, eps)))
    return np.sqrt(np.mean(np.arccos(np.clip(bc, -1.0, 1.0)) ** 2))


def test_start_has_progress_zero_and_truth_one():
    rng = np.random.default_rng(0)
    N, C = 30, 6
    y = rng.integers(0, C, N)
    uniform = np.full((N, C), 1 / C)
    start = random_models(rng, (N, C), sharpness=0.5)
    for metric in ("bhattacharyya", "geodesic"):
        assert ts.progress(uniform, y, metric=metric) == pytest.approx(0.0, abs=1e-12)
        assert ts.progress(one_hot(y, C), y, metric=metric) == pytest.approx(1.0, abs=1e-12)
        assert ts.progress(start, y, start=start, metric=metric) == pytest.approx(0.0, abs=1e-12)
        assert ts.progress(one_hot(y, C), y, start=start, metric=metric) == pytest.approx(
            1.0, abs=1e-12
        )


def test_truth_is_one_even_when_the_start_floors():
    # start puts (almost) no mass on the true classes: a_n < eps for the truth, floors active
    N, C = 4, 3
    y = np.array([0, 1, 2, 0])
    start = np.full((N, C), 0.5)
    start[np.arange(N), y] = 0.0
    assert ts.progress(one_hot(y, C), y, start=start) == pytest.approx(1.0, abs=1e-12)
    assert ts.progress(start, y, start=start) == pytest.approx(0.0, abs=1e-12)


def test_two_class_single_sample_closed_form():
    # ψ = (cos φ, sin φ) with φ the angle from the truth e_0; the geodesic from uniform (φ = π/4) to
    # the truth is φ(λ) = (1 − λ)π/4, so a model with P_0 = p ≥ 1/2 has λ = 1 − 4 arccos(sqrt p)/π.
    for p in (0.5, 0.6, 0.9, 0.999, 1.0):
        expected = 1 - 4 * np.arccos(np.sqrt(p)) / np.pi
        for metric in ("bhattacharyya", "geodesic"):
            got = ts.progress(np.array([[p, 1 - p]]), [0], metric=metric)
            assert got == pytest.approx(expected, abs=1e-10)
    # below 1/2 the closest point of the geodesic is its start
    assert ts.progress(np.array([[0.2, 0.8]]), [0]) == 0.0


def test_two_class_two_samples_closed_form():
    # Angles φ_1, φ_2 from each sample's truth: d_G² ∝ Σ(φ − φ_n)² and d_B = −Σ log cos(φ − φ_n)
    # (tan(φ − φ_1) + tan(φ − φ_2) = 0) are both minimised at φ = (φ_1 + φ_2)/2.
    P = np.array([[0.9, 0.1], [0.35, 0.65]])
    y = np.array([0, 1])
    phi = np.arccos(np.sqrt([0.9, 0.65]))
    expected = 1 - 4 * phi.mean() / np.pi
    for metric in ("bhattacharyya", "geodesic"):
        assert ts.progress(P, y, metric=metric) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize(("eps", "which"), [(0.15, "interior"), (0.25, "end")])
def test_floor_can_move_the_global_minimum_to_an_end(eps, which):
    # 9 samples predicted right (c = cos φ), 1 predicted wrong (c = sin φ, floored near the truth).
    # Without the floor the minimum is at tan φ* = 1/3; with eps = 0.25 the floored end λ = 1
    # (f = −log(eps)/10 = 0.139) beats that interior local minimum (f = 0.1625): two local minima.
    C = 2
    y = np.zeros(10, dtype=int)
    P = one_hot(y, C)
    P[9] = [0.0, 1.0]
    lam_star = 1 - 4 * np.arctan(1 / 3) / np.pi
    got = float(ts.progress(P, y, eps=eps))
    expected = lam_star if which == "interior" else 1.0
    assert got == pytest.approx(expected, abs=1e-9)
    grid = np.linspace(0, 1, 4001)
    values = [plain_objective(P, np.full_like(P, 0.5), one_hot(y, C), g, eps=eps) for g in grid]
    assert abs(grid[int(np.argmin(values))] - got) < 1e-3


def test_geodesic_metric_ignores_the_floor():
    y = np.zeros(10, dtype=int)
    P = one_hot(y, 2)
    P[9] = [0.0, 1.0]
    # d_G: Σ_n (φ − φ_n)², φ_n = 0 (9×) and π/2 (1×): φ = π/20, λ = 1 − 4(π/20)/π = 0.8
    assert ts.progress(P, y, metric="geodesic", eps=0.25) == pytest.approx(0.8, abs=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 12),
    c=st.integers(2, 8),
    lam=st.floats(0.0, 1.0),
    model_start=st.booleans(),
    metric=st.sampled_from(["bhattacharyya", "geodesic"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_points_on_the_geodesic_return_their_fraction(n, c, lam, model_start, metric, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    start = random_models(rng, (n, c), sharpness=1.5) if model_start else np.full((n, c), 1 / c)
    point = ts.interpolate(start, one_hot(y, c), lam)
    got = ts.progress(point, y, start=start if model_start else "uniform", metric=metric)
    assert abs(float(got) - lam) <= 1e-6


@pytest.mark.parametrize("metric", ["bhattacharyya", "geodesic"])
@pytest.mark.parametrize("model_start", [False, True])
def test_agrees_with_plain_bounded_minimisation(metric, model_start):
    rng = np.random.default_rng(7)
    N, C = 40, 5
    y = rng.integers(0, C, N)
    truth = one_hot(y, C)
    start = random_models(rng, (N, C), 0.7) if model_start else np.full((N, C), 1 / C)
    # models drifting from the start towards the truth, pushed off the geodesic by noise
    models = np.stack(
        [
            ts.interpolate(start, truth, lam) * 0.7 + 0.3 * random_models(rng, (N, C), 2.0)
            for lam in (0.1, 0.4, 0.7, 0.95)
        ]
    )
    got = ts.progress(models, y, start=start if model_start else "uniform", metric=metric)
    assert got.shape == (4,)
    for k in range(4):

        def objective(lam, k=k):
            return plain_objective(models[k], start, truth, lam, metric)

        res = minimize_scalar(objective, bounds=(0, 1), method="bounded", options={"xatol": 1e-10})
        assert abs(got[k] - res.x) <= 1e-6
        # and a global check on a grid (the bounded search only finds a local minimum)
        best = min(objective(g) for g in np.linspace(0, 1, 201))
        assert objective(got[k]) <= best + 1e-12


def test_leading_axes_and_broadcast_start():
    rng = np.random.default_rng(8)
    N, C = 10, 4
    y = rng.integers(0, C, N)
    models = random_models(rng, (2, 3, N, C))
    got = ts.progress(models, y)
    assert got.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert got[i, j] == ts.progress(models[i, j], y)
    # a trajectory measured from its own records: every record has progress 0 from itself
    np.testing.assert_allclose(ts.progress(models, y, start=models), 0.0, atol=1e-12)
    # one start for a stack of models
    start = models[0, 0]
    by_one = ts.progress(models, y, start=start)
    assert by_one.shape == (2, 3)
    assert by_one[1, 2] == ts.progress(models[1, 2], y, start=start)
    assert np.ndim(ts.progress(models[0, 0], y)) == 0


def test_float32_matches_float64():
    rng = np.random.default_rng(9)
    models = random_models(rng, (3, 50, 10), 2.0)
    y = rng.integers(0, 10, 50)
    np.testing.assert_allclose(
        ts.progress(models.astype(np.float32), y), ts.progress(models, y), atol=1e-6
    )


def test_classes_restriction_equals_restricting_by_hand():
    rng = np.random.default_rng(10)
    N, C = 60, 7
    y = rng.integers(0, C, N)
    models = random_models(rng, (3, N, C), 2.0)
    start = random_models(rng, (N, C), 0.5)
    classes = [5, 1, 3]
    keep = np.isin(y, classes)
    restricted = models[:, keep][:, :, classes]
    restricted /= restricted.sum(-1, keepdims=True)
    y_task = np.array([classes.index(label) for label in y[keep]])
    start_task = start[keep][:, classes]
    start_task /= start_task.sum(-1, keepdims=True)
    for metric in ("bhattacharyya", "geodesic"):
        np.testing.assert_allclose(
            ts.progress(models, y, classes=classes, metric=metric),
            ts.progress(restricted, y_task, metric=metric),
            atol=1e-12,
        )
        np.testing.assert_allclose(
            ts.progress(models, y, start=start, classes=classes, metric=metric),
            ts.progress(restricted, y_task, start=start_task, metric=metric),
            atol=1e-12,
        )


def test_classes_row_without_mass_counts_as_uniform():
    y = np.array([0, 1, 0])
    P = np.array([[0.6, 0.2, 0.2], [0.0, 0.0, 1.0], [0.7, 0.3, 0.0]])
    by_hand = np.array([[0.75, 0.25], [0.5, 0.5], [0.7, 0.3]])
    assert ts.progress(P, y, classes=[0, 1]) == pytest.approx(
        float(ts.progress(by_hand, y)), abs=1e-12
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": [0, 1]}, "has 2 labels"),
        ({"labels": [0, 1, 5]}, "label 5 at index 2"),
        ({"classes": [1]}, "at least 2"),
        ({"classes": [0, 4]}, "class 4 at index 1"),
        ({"classes": [1, 1]}, "repeats class 1"),
        ({"classes": [[0, 1]]}, "1-D"),
        ({"classes": [2, 3], "labels": [0, 1, 0]}, "no probe sample"),
        ({"metric": "hellinger"}, "unknown metric"),
        ({"start": "first"}, "'uniform'"),
        ({"start": np.full((3, 2), 0.5)}, "different numbers of classes"),
        ({"start": np.full((2, 3, 4), 0.25), "models": np.full((3, 3, 4), 0.25)}, "broadcast"),
        ({"eps": 0.0}, "`eps`"),
        ({"models": np.full((3, 4), 0.3)}, "`models` has a row that sums"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"models": np.full((3, 4), 0.25), "labels": [0, 1, 2]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ts.progress(**args)


def test_start_equal_to_the_truth_gives_zero():
    # the geodesic is a single point: every λ minimises, and progress is defined as 0
    rng = np.random.default_rng(11)
    y = rng.integers(0, 3, 5)
    models = random_models(rng, (2, 5, 3))
    for metric in ("bhattacharyya", "geodesic"):
        np.testing.assert_array_equal(
            ts.progress(models, y, start=one_hot(y, 3), metric=metric), 0.0
        )


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_progress_on_tasks_is_progress_per_task_exactly(dtype):
    """One validation for many tasks gives bit for bit what `progress` gives task by task,
    including the whole label space (not restricted) and a task given as None."""
    rng = np.random.default_rng(11)
    P = rng.dirichlet(np.full(6, 0.7), size=(3, 4, 40)).astype(dtype)
    P = P / P.sum(-1, keepdims=True, dtype=np.float64)  # rows sum to 1 in float64
    P = P.astype(dtype)
    labels = rng.integers(0, 6, size=40)
    tasks = [[0, 1], [5, 2, 3], list(range(6)), None, [4, 1]]
    got = progress_on_tasks(P, labels, tasks)
    assert got.shape == (5, 3, 4)
    for t, classes in enumerate(tasks):
        np.testing.assert_array_equal(got[t], progress(P, labels, classes=classes))
    np.testing.assert_array_equal(got[2], got[3])


def test_progress_on_tasks_names_the_bad_task():
    P = np.full((2, 5, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"tasks\[1\]"):
        progress_on_tasks(P, [0, 1, 2, 0, 1], [[0, 1], [0, 7]])
