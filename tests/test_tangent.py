"""Tangent vectors (SPEC §14): log/exp maps are inverse, their norms are d_G, scaled tangents trace
the geodesic, closed forms on the circle (including angles of 1e-9), velocity, validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import taskspace as ts
from tests.helpers import random_models


def circle_model(angle):
    """A one-sample, two-class model whose square root is (cos a, sin a)."""
    return np.array([[np.cos(angle) ** 2, np.sin(angle) ** 2]])


def tangent_norm(V):
    """sqrt((1/N) Σ_n ‖v_n‖²): the intensive norm matching d_G."""
    return np.sqrt(np.mean(np.sum(V * V, axis=-1), axis=-1))


@pytest.mark.parametrize("a, delta", [(0.3, 0.9), (0.7, -0.5), (0.4, 1e-9), (1.2, -2e-8)])
def test_log_map_closed_form_on_the_circle(a, delta):
    # On one circle θ = |δ| and the tangent is δ·(−sin a, cos a), however small δ is (to the
    # ~1e-16 at which the models themselves hold the angle: rtol 1e-6 at δ = 1e-9).
    V = ts.log_map(circle_model(a), circle_model(a + delta))
    expected = delta * np.array([[-np.sin(a), np.cos(a)]])
    np.testing.assert_allclose(V, expected, rtol=1e-6, atol=0)
    np.testing.assert_allclose(
        ts.exp_map(circle_model(a), expected), circle_model(a + delta), rtol=1e-12, atol=1e-15
    )


def test_quarter_circle_and_disjoint_supports():
    P, Q = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    np.testing.assert_allclose(ts.log_map(P, Q), [[0.0, np.pi / 2]], atol=1e-15)
    np.testing.assert_allclose(ts.exp_map(P, ts.log_map(P, Q)), Q, atol=1e-15)


def test_exp_of_log_is_the_target_and_norm_is_geodesic_distance():
    rng = np.random.default_rng(3)
    for sharpness in (0.3, 2.0, 8.0):
        P, Q = random_models(rng, (2, 4, 30, 7), sharpness=sharpness)
        V = ts.log_map(P, Q)
        assert V.shape == (4, 30, 7)
        np.testing.assert_allclose(ts.exp_map(P, V), Q, rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(tangent_norm(V), ts.geodesic_distance(P, Q), rtol=1e-12)
        # every row lies in the tangent plane at sqrt(P), and has length θ_n
        np.testing.assert_allclose(np.sum(V * np.sqrt(P), axis=-1), 0.0, atol=1e-14)
        np.testing.assert_allclose(
            np.linalg.norm(V, axis=-1), ts.geometry.sample_angles(P, Q), rtol=1e-12, atol=1e-15
        )


def test_scaled_tangent_traces_the_geodesic():
    rng = np.random.default_rng(4)
    P, Q = random_models(rng, (2, 3, 12, 5), sharpness=3.0)
    V = ts.log_map(P, Q)
    ts_ = np.array([0.0, 0.1, 0.37, 0.5, 0.9, 1.0])
    along = ts.exp_map(P, ts_[:, None, None, None] * V)  # broadcasts P over the t axis
    np.testing.assert_allclose(along, ts.interpolate(P, Q, ts_), rtol=1e-9, atol=1e-13)


def test_zero_at_equal_models_and_zero_tangent_returns_base_exactly():
    rng = np.random.default_rng(5)
    P = random_models(rng, (3, 10, 4))
    assert np.all(ts.log_map(P, P) == 0.0)
    np.testing.assert_array_equal(ts.exp_map(P, np.zeros_like(P)), P / P.sum(-1, keepdims=True))
    # rows that coincide get exactly zero tangent, the others do not
    Q = P.copy()
    Q[:, 0] = P[:, 1]
    V = ts.log_map(P, Q)
    assert np.all(V[:, 1:] == 0.0) and np.all(np.linalg.norm(V[:, 0], axis=-1) > 0)


def test_tangent_leaving_the_orthant_is_squared_back():
    # Half a circle from (1, 0): ψ' = (−1, 0), whose square is the model [1, 0] again.
    out = ts.exp_map(np.array([[1.0, 0.0]]), np.array([[0.0, np.pi]]))
    np.testing.assert_allclose(out, [[1.0, 0.0]], atol=1e-15)
    P = circle_model(0.2)
    out = ts.exp_map(P, 2.0 * np.array([[-np.sin(0.2), np.cos(0.2)]]))
    np.testing.assert_allclose(out, circle_model(2.2), atol=1e-15)  # past the orthant's edge
    assert np.all(out >= 0) and np.isclose(out.sum(), 1.0)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 8),
    c=st.integers(2, 8),
    t=st.floats(0.0, 1.0),
    sharpness=st.floats(0.1, 10.0),
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_properties(n, c, t, sharpness, seed, dtype):
    rng = np.random.default_rng(seed)
    P, Q = random_models(rng, (2, n, c), sharpness=sharpness).astype(dtype)
    V = ts.log_map(P, Q)
    d = ts.geodesic_distance(P, Q)
    np.testing.assert_allclose(tangent_norm(V), d, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ts.exp_map(P, V), ts.interpolate(P, Q, 1.0), atol=1e-10)
    np.testing.assert_allclose(ts.exp_map(P, t * V), ts.interpolate(P, Q, t), atol=1e-10)
    # log inverts exp along the geodesic, and the reverse tangent has the same length
    np.testing.assert_allclose(ts.log_map(P, ts.exp_map(P, t * V)), t * V, atol=1e-7)
    np.testing.assert_allclose(tangent_norm(ts.log_map(Q, P)), d, rtol=1e-10, atol=1e-12)


def test_velocity_of_a_geodesic_has_constant_speed():
    rng = np.random.default_rng(6)
    P, Q = random_models(rng, (2, 20, 6), sharpness=2.0)
    fractions = np.array([0.0, 0.05, 0.2, 0.6, 1.0])
    trajectory = ts.interpolate(P, Q, fractions)
    steps = (fractions * 400).astype(int)
    vel = ts.velocity(trajectory, steps)
    assert vel.shape == (4, 20, 6)
    np.testing.assert_allclose(tangent_norm(vel), ts.geodesic_distance(P, Q) / 400, rtol=1e-9)
    for t in range(4):
        gap = steps[t + 1] - steps[t]
        np.testing.assert_allclose(
            vel[t] * gap, ts.log_map(trajectory[t], trajectory[t + 1]), rtol=1e-12, atol=1e-15
        )


def test_validation_errors():
    rng = np.random.default_rng(7)
    P, Q = random_models(rng, (2, 5, 3))
    with pytest.raises(ValueError, match="`Q`"):
        ts.log_map(P, -Q)
    with pytest.raises(ValueError, match="different numbers of classes"):
        ts.log_map(P, random_models(rng, (5, 4)))
    V = ts.log_map(P, Q)
    with pytest.raises(ValueError, match="not a tangent vector at `P`: row \\(2,\\)"):
        bad = V.copy()
        bad[2] += 0.1 * np.sqrt(P[2])
        ts.exp_map(P, bad)
    with pytest.raises(ValueError, match="`V` contains a non-finite value at index \\(1, 0\\)"):
        bad = V.copy()
        bad[1, 0] = np.nan
        ts.exp_map(P, bad)
    with pytest.raises(ValueError, match="different numbers of samples"):
        ts.exp_map(P, V[:4])
    with pytest.raises(ValueError, match="`V` must hold real numbers"):
        ts.exp_map(P, V.astype(complex))
    traj = random_models(rng, (3, 5, 3))
    with pytest.raises(ValueError, match="at least 2 records"):
        ts.velocity(traj[:1], [0])
    with pytest.raises(ValueError, match="`steps` must be 3 numbers"):
        ts.velocity(traj, [0, 1])
    with pytest.raises(ValueError, match="strictly increasing; step 1 at index 2 follows 5"):
        ts.velocity(traj, [0, 5, 1])
    with pytest.raises(ValueError, match="`steps` must be finite"):
        ts.velocity(traj, [0.0, np.inf, 3.0])
    with pytest.raises(ValueError, match="`trajectory` must have 3 dimensions"):
        ts.velocity(traj[0], [0, 1, 2, 3, 4])
