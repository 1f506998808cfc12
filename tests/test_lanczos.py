"""Batched Lanczos on masked principal submatrices (`taskspace.geometry._lanczos`): the same
eigenvalues and Frobenius norms as a dense solver on each centred submatrix, planted spectra
found, and the subsets it cannot settle handed back."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskspace import pairwise_distances
from taskspace.geometry import _lanczos
from taskspace.geometry._lanczos import batch_size, batched_top_eigenvalues, masked_frobenius_sq
from taskspace.geometry.inpca_subsets import centred_submatrix
from tests.helpers import random_models


def dense_top(S, rows, k):
    """Reference: the k eigenvalues of largest |λ| of the centred submatrix (`eigvalsh`)."""
    W, frobenius_sq = centred_submatrix(S, rows)
    lam = np.linalg.eigvalsh(W)
    return lam[np.lexsort((-lam, -np.abs(lam)))[:k]], frobenius_sq


def masks_of(subsets, n):
    masks = np.zeros((len(subsets), n))
    for i, rows in enumerate(subsets):
        masks[i, rows] = 1.0
    return masks


@pytest.fixture(scope="module")
def S():
    rng = np.random.default_rng(7)
    D = pairwise_distances(random_models(rng, (220, 30, 6)))
    return 0.5 * (D + D.T)


def test_every_subset_of_a_batch_matches_the_dense_solver(S):
    rng = np.random.default_rng(0)
    subsets = [np.sort(rng.choice(len(S), m, replace=False)) for m in (200, 180, 176, 150)]
    start = np.random.RandomState(0).uniform(-1, 1, len(S))
    values, converged = batched_top_eigenvalues(S, masks_of(subsets, len(S)), 8, start)
    frobenius_sq = masked_frobenius_sq(S, masks_of(subsets, len(S)))
    assert converged.all()
    for rows, got, got_f in zip(subsets, values, frobenius_sq, strict=True):
        want, want_f = dense_top(S, rows, 8)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-11 * abs(want[0]))
        np.testing.assert_allclose(got_f, want_f, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 60), b=st.integers(1, 5))
def test_masked_frobenius_equals_the_centred_submatrix(seed, n, b):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    S = A + A.T
    subsets = [np.sort(rng.choice(n, rng.integers(1, n + 1), replace=False)) for _ in range(b)]
    got = masked_frobenius_sq(S, masks_of(subsets, n), block=7)
    want = [centred_submatrix(S, rows)[1] for rows in subsets]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(S).max() ** 2)


def test_a_planted_spectrum_with_a_large_negative_eigenvalue():
    """W with eigenvalues 9, −7, 5, 3 (and small noise) on the centred space: Lanczos returns
    them by magnitude, the negative one second."""
    rng = np.random.default_rng(2)
    n = 150
    J = np.eye(n) - 1.0 / n
    Q, _ = np.linalg.qr(J @ rng.standard_normal((n, n)))
    lam = np.zeros(n)
    lam[:4] = [9.0, -7.0, 5.0, 3.0]
    lam[4 : n - 1] = 1e-3 * rng.standard_normal(n - 5)
    W = (Q[:, : n - 1] * lam[: n - 1]) @ Q[:, : n - 1].T  # orthogonal to the ones vector
    S = -2.0 * (W + W.T) / 2  # W = −½ J S J with S = −2W (already centred)
    start = rng.uniform(-1, 1, n)
    values, converged = batched_top_eigenvalues(S, np.ones((1, n)), 4, start)
    assert converged.all()
    np.testing.assert_allclose(values[0], [9.0, -7.0, 5.0, 3.0], rtol=1e-10)


def test_a_subset_whose_krylov_space_closes_is_handed_back():
    """A rank-2 W: the Krylov space closes after two steps, before the 3 values asked for can be
    confirmed, so the subset is reported not converged (the caller solves it densely)."""
    rng = np.random.default_rng(5)
    n = 40
    J = np.eye(n) - 1.0 / n
    u = J @ rng.standard_normal((n, 2))
    S = -2.0 * (u @ np.diag([3.0, -1.0]) @ u.T)
    values, converged = batched_top_eigenvalues(S, np.ones((1, n)), 3, rng.uniform(-1, 1, n))
    assert not converged[0] and np.isnan(values[0]).all()


def test_too_few_steps_leave_the_subset_unconverged(S, monkeypatch):
    monkeypatch.setattr(_lanczos, "CHECK_EVERY", 1)
    rows = np.arange(200)
    start = np.random.RandomState(0).uniform(-1, 1, len(S))
    _, converged = batched_top_eigenvalues(S, masks_of([rows], len(S)), 8, start, max_steps=9)
    assert not converged[0]


def test_batch_size_keeps_the_basis_within_its_memory():
    assert batch_size(100) == _lanczos.MAX_BATCH
    n = 50_000
    b = batch_size(n)
    assert 1 <= b < _lanczos.MAX_BATCH
    assert b * (_lanczos.MAX_STEPS + 1) * n * 8 <= _lanczos.BASIS_BYTES
    assert batch_size(10**8) == 1
