"""Geodesics (SPEC §4): endpoints, constant speed along great circles, closed forms, validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import taskspace as ts
from taskspace.geometry import sample_angles
from tests.helpers import random_models


def direct_geodesic(P, Q, lam):
    """SPEC §4 written plainly, for θ_n > 0."""
    sp, sq = np.sqrt(P), np.sqrt(Q)
    theta = np.arccos(np.clip(np.sum(sp * sq, axis=-1), -1.0, 1.0))[..., None]
    psi = (np.sin((1 - lam) * theta) * sp + np.sin(lam * theta) * sq) / np.sin(theta)
    out = psi**2
    return out / out.sum(axis=-1, keepdims=True)


def test_quarter_circle_closed_form():
    P = np.array([[1.0, 0.0]])
    Q = np.array([[0.0, 1.0]])
    for lam in (0.0, 0.1, 0.5, 0.75, 1.0):
        phi = lam * np.pi / 2
        expected = np.array([[np.cos(phi) ** 2, np.sin(phi) ** 2]])
        np.testing.assert_allclose(ts.interpolate(P, Q, lam), expected, atol=1e-15)


def test_endpoints_exact():
    rng = np.random.default_rng(1)
    P, Q = random_models(rng, (2, 7, 5, 4))
    np.testing.assert_array_equal(ts.interpolate(P, Q, 0.0), P / P.sum(-1, keepdims=True))
    np.testing.assert_array_equal(ts.interpolate(P, Q, 1.0), Q / Q.sum(-1, keepdims=True))
    both = ts.interpolate(P, Q, [0.0, 1.0])
    np.testing.assert_allclose(both[0], P, atol=1e-15)
    np.testing.assert_allclose(both[1], Q, atol=1e-15)


def test_matches_direct_formula():
    rng = np.random.default_rng(2)
    P, Q = random_models(rng, (2, 3, 6, 5), sharpness=3.0)
    lams = np.array([0.05, 0.3, 0.5, 0.99])
    out = ts.interpolate(P, Q, lams)
    assert out.shape == (4, 3, 6, 5)
    for k, lam in enumerate(lams):
        np.testing.assert_allclose(out[k], direct_geodesic(P, Q, lam), rtol=1e-12, atol=1e-15)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 6),
    c=st.integers(2, 7),
    lam=st.floats(0.0, 1.0),
    sharpness=st.floats(0.1, 6.0),
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_constant_speed_along_great_circles(n, c, lam, sharpness, seed, dtype):
    rng = np.random.default_rng(seed)
    P, Q = random_models(rng, (2, n, c), sharpness).astype(dtype)
    theta = sample_angles(P, Q)
    mid = ts.interpolate(P, Q, lam)
    assert mid.dtype == np.float64
    np.testing.assert_allclose(mid.sum(-1), 1.0, atol=1e-14)
    assert np.all(mid >= 0)
    # Every sample moves along its great circle at constant speed: angle(P, P^λ) = λθ and the
    # remaining angle is (1 − λ)θ, so P^λ lies *on* the arc, not merely at the right distance.
    np.testing.assert_allclose(sample_angles(P, mid), lam * theta, atol=1e-13)
    np.testing.assert_allclose(sample_angles(mid, Q), (1 - lam) * theta, atol=1e-13)


def test_rows_with_zero_angle_are_unchanged():
    rng = np.random.default_rng(3)
    P, Q = random_models(rng, (2, 6, 4))
    Q[[1, 4]] = P[[1, 4]]
    out = ts.interpolate(P, Q, np.linspace(0, 1, 7))
    for k in range(7):
        np.testing.assert_array_equal(out[k, [1, 4]], P[[1, 4]] / P[[1, 4]].sum(-1, keepdims=True))
    np.testing.assert_array_equal(ts.interpolate(P, P, 0.37), P / P.sum(-1, keepdims=True))


def test_broadcasting_leading_axes():
    rng = np.random.default_rng(4)
    P = random_models(rng, (5, 3))
    Q = random_models(rng, (4, 5, 3))
    out = ts.interpolate(P, Q, 0.25)
    assert out.shape == (4, 5, 3)
    for i in range(4):
        np.testing.assert_allclose(out[i], ts.interpolate(P, Q[i], 0.25), atol=1e-15)
    assert ts.interpolate(P, Q, [0.2, 0.4, 0.6]).shape == (3, 4, 5, 3)


def test_composition_of_geodesics():
    # The geodesic from P^a to P^b, at fraction f, is P^{a + f(b − a)} (constant speed).
    rng = np.random.default_rng(5)
    P, Q = random_models(rng, (2, 8, 5), sharpness=2.0)
    a, b, f = 0.2, 0.7, 0.4
    sub = ts.interpolate(ts.interpolate(P, Q, a), ts.interpolate(P, Q, b), f)
    np.testing.assert_allclose(sub, ts.interpolate(P, Q, a + f * (b - a)), atol=1e-12)


@pytest.mark.parametrize(
    ("t", "match"),
    [
        (-0.1, "`t` must lie in"),
        (1.5, "`t` must lie in"),
        ([0.2, np.nan], "index 1"),
        ([[0.5]], "scalar or a 1-D"),
        ([], "empty"),
        ("a", "real number"),
    ],
)
def test_bad_fractions(t, match):
    P = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=match):
        ts.interpolate(P, P, t)


def test_bad_models():
    P = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match="different numbers of classes"):
        ts.interpolate(P, np.full((2, 4), 0.25), 0.5)
    with pytest.raises(ValueError, match="negative"):
        ts.interpolate(P, np.array([[1.5, -0.5, 0.0], [1, 0, 0]]), 0.5)
    with pytest.raises(ValueError, match="do not broadcast"):
        ts.interpolate(np.full((2, 2, 3), 1 / 3), np.full((3, 2, 3), 1 / 3), 0.5)
