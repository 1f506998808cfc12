"""Explained stress of many subsets of one distance matrix: the numbers of a full InPCA fit of
each submatrix, from eigenvalues alone."""

import numpy as np
import pytest

from taskspace import InPCA, pairwise_distances
from taskspace.geometry import inpca_subsets
from taskspace.geometry.inpca_subsets import subset_explained_stress, top_eigenvalues
from tests.helpers import random_models


@pytest.fixture(scope="module")
def D():
    rng = np.random.default_rng(3)
    return pairwise_distances(random_models(rng, (160, 20, 5)))


@pytest.mark.parametrize("partial_from, one_thread_below", [(1, 10_000), (10_000, 1)])
def test_subsets_match_full_inpca_fits(D, partial_from, one_thread_below, monkeypatch):
    # Lanczos for every subset on one BLAS thread, or eigvalsh for every one on all threads
    monkeypatch.setattr(inpca_subsets, "PARTIAL_MIN_POINTS", partial_from)
    monkeypatch.setattr(inpca_subsets, "SINGLE_THREAD_BELOW", one_thread_below)
    rng = np.random.default_rng(0)
    subsets = [np.sort(rng.choice(len(D), m, replace=False)) for m in (150, 128, 40, 12, 4)]
    seen = []
    got = subset_explained_stress(D, subsets, 10, progress=lambda *a: seen.append(a))
    assert got.shape == (5, 10) and seen[-1] == (5, 5)
    assert [done for done, _ in seen] == sorted({done for done, _ in seen})  # rises to 5
    for rows, row in zip(subsets, got, strict=True):
        k = min(10, rows.size)
        want = (
            InPCA(n_components=k, metric="precomputed", random_state=0)
            .fit(D[np.ix_(rows, rows)])
            .explained_stress_
        )
        np.testing.assert_allclose(row[:k], want, rtol=0, atol=1e-12)
        assert np.isnan(row[k:]).all()


def test_top_eigenvalues_by_magnitude_from_both_ends():
    # W = Q diag(λ) Qᵀ with a large negative eigenvalue: it comes second, by magnitude.
    rng = np.random.default_rng(1)
    lam = np.array([5.0, -4.0, 3.0, 1e-3, -2e-3] + [0.0] * 195)
    Q, _ = np.linalg.qr(rng.standard_normal((200, 200)))
    W = (Q * lam) @ Q.T
    W = (W + W.T) / 2
    np.testing.assert_allclose(top_eigenvalues(W.copy(), 3), [5.0, -4.0, 3.0], rtol=1e-10)
    np.testing.assert_allclose(top_eigenvalues(W[:50, :50].copy() * 0, 2), [0.0, 0.0])


def test_distance_matrix_is_validated_once(D):
    bad = D.copy()
    bad[3, 7] += 1.0
    with pytest.raises(ValueError, match="not symmetric"):
        subset_explained_stress(bad, [np.arange(10)], 2)
