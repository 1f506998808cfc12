"""Elementwise distances (SPEC §2–3) against plain formulas, closed forms and invariants."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import taskspace as ts
from taskspace.geometry import bhattacharyya_coefficients, sample_angles
from tests.helpers import random_models


def direct_bc(P, Q):
    """BC_n = Σ_c sqrt(P_nc Q_nc), written plainly."""
    return np.sum(np.sqrt(np.asarray(P, float) * np.asarray(Q, float)), axis=-1)


def test_two_class_closed_forms():
    P = np.array([[0.5, 0.5]])
    Q = np.array([[1.0, 0.0]])
    # BC = sqrt(0.5), θ = π/4
    assert ts.bhattacharyya(P, Q) == pytest.approx(-np.log(np.sqrt(0.5)), abs=1e-15)
    assert ts.hellinger(P, Q) == pytest.approx(np.sqrt(1 - np.sqrt(0.5)), abs=1e-15)
    assert ts.geodesic_distance(P, Q) == pytest.approx(np.pi / 4, abs=1e-15)


def test_intensive_average_over_samples():
    # sample 1: BC = sqrt(0.5); sample 2: identical rows, BC = 1
    P = np.array([[0.5, 0.5], [0.2, 0.8]])
    Q = np.array([[1.0, 0.0], [0.2, 0.8]])
    assert ts.bhattacharyya(P, Q) == pytest.approx(-np.log(np.sqrt(0.5)) / 2, abs=1e-15)
    assert ts.geodesic_distance(P, Q) == pytest.approx(np.sqrt((np.pi / 4) ** 2 / 2), abs=1e-15)
    # doubling the probe set by repetition changes nothing (intensive)
    P2, Q2 = np.concatenate([P, P]), np.concatenate([Q, Q])
    assert ts.bhattacharyya(P2, Q2) == pytest.approx(ts.bhattacharyya(P, Q), abs=1e-15)


def test_eps_floor_for_disjoint_supports():
    P = np.array([[1.0, 0.0], [0.5, 0.5]])
    Q = np.array([[0.0, 1.0], [0.5, 0.5]])
    expected = -(np.log(1e-9) + 0.0) / 2
    assert ts.bhattacharyya(P, Q) == pytest.approx(expected, rel=1e-12)
    assert ts.bhattacharyya(P, Q, eps=1e-3) == pytest.approx(-np.log(1e-3) / 2, rel=1e-12)
    assert ts.geodesic_distance(P[:1], Q[:1]) == pytest.approx(np.pi / 2, abs=1e-15)


def test_zero_exactly_at_equal_models():
    P = random_models(np.random.default_rng(0), (4, 30, 7))
    for d in (ts.bhattacharyya, ts.hellinger, ts.geodesic_distance):
        assert np.all(d(P, P) == 0.0)


def test_broadcasting_over_leading_axes():
    rng = np.random.default_rng(1)
    P = random_models(rng, (3, 1, 20, 5))
    Q = random_models(rng, (4, 20, 5))
    D = ts.bhattacharyya(P, Q)
    assert D.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert D[i, j] == pytest.approx(ts.bhattacharyya(P[i, 0], Q[j]), abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 20),
    c=st.integers(2, 12),
    seed=st.integers(0, 2**31),
    dtype=st.sampled_from([np.float32, np.float64]),
    sharp=st.floats(0.1, 20),
)
def test_agree_with_direct_formulas(n, c, seed, dtype, sharp):
    rng = np.random.default_rng(seed)
    P = random_models(rng, (n, c), sharpness=sharp).astype(dtype)
    Q = random_models(rng, (n, c), sharpness=sharp).astype(dtype)
    # the direct formulas on the same (renormalised, float64) input
    P64 = P.astype(np.float64) / P.astype(np.float64).sum(-1, keepdims=True)
    Q64 = Q.astype(np.float64) / Q.astype(np.float64).sum(-1, keepdims=True)
    bc = np.clip(direct_bc(P64, Q64), 0, 1)
    np.testing.assert_allclose(bhattacharyya_coefficients(P, Q), bc, atol=1e-14)
    np.testing.assert_allclose(
        ts.bhattacharyya(P, Q), -np.mean(np.log(np.maximum(bc, 1e-9))), atol=1e-12
    )
    np.testing.assert_allclose(ts.hellinger(P, Q) ** 2, np.mean(1 - bc), atol=1e-13)
    np.testing.assert_allclose(sample_angles(P, Q), np.arccos(bc), atol=2e-7)
    # symmetry and non-negativity
    for d in (ts.bhattacharyya, ts.hellinger, ts.geodesic_distance):
        assert d(P, Q) == d(Q, P)
        assert d(P, Q) >= 0


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 10), c=st.integers(2, 6), seed=st.integers(0, 2**31))
def test_geodesic_triangle_inequality(n, c, seed):
    rng = np.random.default_rng(seed)
    P, Q, R = (random_models(rng, (n, c)) for _ in range(3))
    for d in (ts.geodesic_distance, ts.hellinger):
        assert d(P, R) <= d(P, Q) + d(Q, R) + 1e-12


def test_small_angles_are_accurate():
    # two models 1e-9 apart: arccos(BC) would return rounding noise ~1e-8, the chord form is exact
    P = np.array([[0.5, 0.5]])
    delta = 1e-9
    Q = np.array([[0.5 + delta, 0.5 - delta]])
    # each row is (sin a, cos a) with a = arcsin(sqrt(p)): the angle is the difference of the a's
    exact = abs(np.arcsin(np.sqrt(0.5 + delta)) - np.arcsin(np.sqrt(0.5)))
    assert sample_angles(P, Q)[0] == pytest.approx(exact, rel=1e-6)


def test_mismatched_shapes_raise():
    P = np.full((5, 3), 1 / 3)
    with pytest.raises(ValueError, match="numbers of classes C: 3 vs 4"):
        ts.bhattacharyya(P, np.full((5, 4), 0.25))
    with pytest.raises(ValueError, match="numbers of samples N: 5 vs 6"):
        ts.hellinger(P, np.full((6, 3), 1 / 3))
    with pytest.raises(ValueError, match="do not broadcast"):
        ts.geodesic_distance(np.full((2, 5, 3), 1 / 3), np.full((3, 5, 3), 1 / 3))
    with pytest.raises(ValueError, match="eps"):
        ts.bhattacharyya(P, P, eps=0)


def direct_symmetric_kl(P, Q, eps=1e-9):
    """½ (KL(P‖Q) + KL(Q‖P)) per sample, averaged: the SPEC §3 formula written plainly."""
    P = np.asarray(P, float) / np.asarray(P, float).sum(-1, keepdims=True)
    Q = np.asarray(Q, float) / np.asarray(Q, float).sum(-1, keepdims=True)
    lp, lq = np.log(np.maximum(P, eps)), np.log(np.maximum(Q, eps))
    kl_pq = np.sum(P * (lp - lq), axis=-1)
    kl_qp = np.sum(Q * (lq - lp), axis=-1)
    return np.mean(0.5 * (kl_pq + kl_qp), axis=-1)


def test_symmetric_kl_closed_forms():
    # ½ Σ_c (p − q)(log p − log q) for p = (1/2, 1/2), q = (9/10, 1/10): ½ · 0.4 · log 9 · 2 / 2
    P = np.array([[0.5, 0.5]])
    Q = np.array([[0.9, 0.1]])
    assert ts.symmetric_kl(P, Q) == pytest.approx(0.2 * np.log(9.0), abs=1e-15)
    # disjoint supports: each class costs ½ · 1 · |log eps|, two classes: |log eps|
    P, Q = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    for eps in (1e-9, 1e-3):
        assert ts.symmetric_kl(P, Q, eps=eps) == pytest.approx(-np.log(eps), rel=1e-14)
    # intensive: a second, identical sample halves it
    P2 = np.array([[1.0, 0.0], [0.3, 0.7]])
    Q2 = np.array([[0.0, 1.0], [0.3, 0.7]])
    assert ts.symmetric_kl(P2, Q2) == pytest.approx(-np.log(1e-9) / 2, rel=1e-14)


def test_symmetric_kl_zero_exactly_at_equal_models_and_symmetric():
    rng = np.random.default_rng(2)
    P = random_models(rng, (4, 30, 7), sharpness=5.0)
    P[0, 0] = np.eye(7)[3]  # zeros inside the floored logarithms
    assert np.all(ts.symmetric_kl(P, P) == 0.0)
    Q = random_models(rng, (4, 30, 7))
    assert np.array_equal(ts.symmetric_kl(P, Q), ts.symmetric_kl(Q, P))
    assert ts.symmetric_kl(P[:, None], Q[None]).shape == (4, 4)


def test_symmetric_kl_is_four_bhattacharyya_for_nearby_models():
    # both are ≈ the Fisher information quadratic form: ½ J ≈ ½ Σ δ²/p, d_B ≈ (1/8) Σ δ²/p
    rng = np.random.default_rng(3)
    P = random_models(rng, (50, 6))
    delta = 1e-4 * rng.standard_normal(P.shape)
    Q = P + (delta - delta.mean(-1, keepdims=True)) * P.min(-1, keepdims=True)
    assert ts.symmetric_kl(P, Q) == pytest.approx(4.0 * ts.bhattacharyya(P, Q), rel=1e-3)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 20),
    c=st.integers(1, 12),
    seed=st.integers(0, 2**31),
    dtype=st.sampled_from([np.float32, np.float64]),
    sharp=st.floats(0.1, 30),
    eps=st.sampled_from([1e-9, 1e-3, 1e-30]),
)
def test_symmetric_kl_agrees_with_direct_formula(n, c, seed, dtype, sharp, eps):
    rng = np.random.default_rng(seed)
    P = random_models(rng, (n, c), sharpness=sharp).astype(dtype)
    Q = random_models(rng, (n, c), sharpness=sharp).astype(dtype)
    expected = direct_symmetric_kl(P, Q, eps)
    got = ts.symmetric_kl(P, Q, eps=eps)
    assert got == pytest.approx(expected, abs=1e-12, rel=1e-12)
    assert got >= 0 and got == ts.symmetric_kl(Q, P, eps=eps)


def test_symmetric_kl_validates():
    P = np.full((5, 3), 1 / 3)
    with pytest.raises(ValueError, match="eps"):
        ts.symmetric_kl(P, P, eps=0)
    with pytest.raises(ValueError, match="numbers of classes C: 3 vs 4"):
        ts.symmetric_kl(P, np.full((5, 4), 0.25))
    with pytest.raises(ValueError, match="negative"):
        ts.symmetric_kl(P, np.array([[1.5, -0.5, 0.0]] * 5))
