"""Explained stress of InPCA fits to many subsets of the points of one distance matrix (SPEC §10).

An interval for the explained stress refits InPCA on hundreds of subsets of the models. Each refit
needs neither an embedding nor a new validation of D: the stress of the first k axes is
``1 − sqrt(1 − Σ_{i≤k} λ_i² / ‖W‖_F²)``, so it takes only the k eigenvalues of largest magnitude
of the subset's centred matrix and that matrix's Frobenius norm. Here D is validated and
symmetrised once, and every subset's principal submatrix is centred in NumPy and handed to an
eigenvalue-only solver. The numbers are those of ``InPCA(metric="precomputed").fit(D[s][:, s])``
to rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import linalg
from scipy.sparse.linalg import eigsh
from threadpoolctl import threadpool_limits

from taskspace.geometry._eigen import explained_stress
from taskspace.geometry.inpca import check_distance_matrix

#: From this many points on, the k eigenvalues of largest magnitude come from Lanczos
#: (``eigsh``), below it from the full eigenvalue-only ``eigvalsh`` (fewer calls into ARPACK than
#: it saves in flops); see docs/performance.md.
PARTIAL_MIN_POINTS = 120
#: Subsets all smaller than this run their eigensolvers with BLAS on one thread: on matrices of a
#: few hundred points BLAS's threads cost more in synchronisation than they save (5-9x slower on
#: the 2-core development machine under load, docs/performance.md); larger ones keep them.
SINGLE_THREAD_BELOW = 1000


def centred_submatrix(S: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, float]:
    """``W = −½ J S_rr J`` of the principal submatrix ``S_rr`` of a symmetric S, and ``‖W‖_F²``.

    Parameters
    ----------
    S : ndarray of float64, shape (M, M)
        Symmetric bit for bit (e.g. ``(D + Dᵀ)/2``), so that W is too.
    rows : ndarray of int, shape (m,)

    Returns
    -------
    W : ndarray of float64, shape (m, m)
    frobenius_sq : float
    """
    sub = S[np.ix_(rows, rows)]
    means = sub.mean(axis=1)
    # (r_i + r_j) is symmetric in i and j bit for bit, so W is as well.
    sub -= means[:, None] + means[None, :]
    sub += means.mean()
    sub *= -0.5
    return sub, float(np.vdot(sub, sub))


def top_eigenvalues(W: np.ndarray, k: int, random_state: int | None = 0) -> np.ndarray:
    """The ``k`` eigenvalues of the symmetric W of largest ``|λ|``, ordered by ``|λ|`` descending
    (positive first on ties), those zero to rounding (``|λ| ≤ m·ε·|λ_1|``) set to exactly 0.

    Lanczos (``eigsh``, ``which="LM"``, a starting vector drawn from ``random_state``) for
    ``m ≥ PARTIAL_MIN_POINTS`` and ``k < m − 1``, else the full ``eigvalsh``.
    """
    m = W.shape[0]
    if not W.any():
        return np.zeros(k)
    if m >= PARTIAL_MIN_POINTS and k < m - 1:
        v0 = np.random.RandomState(random_state).uniform(-1.0, 1.0, m)
        values = eigsh(W, k=k, which="LM", v0=v0, return_eigenvectors=False)
    else:
        values = linalg.eigvalsh(W, overwrite_a=True, check_finite=False)
    values = values[np.lexsort((-values, -np.abs(values)))[:k]]
    if values[0] != 0.0:
        values[np.abs(values) <= m * np.finfo(np.float64).eps * abs(values[0])] = 0.0
    return values


def subset_explained_stress(
    D,
    subsets: Sequence[np.ndarray],
    n_components: int,
    *,
    random_state: int | None = 0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Explained stress of the first 1..k InPCA axes of every subset of the points of D.

    Parameters
    ----------
    D : array-like, shape (M, M)
        Precomputed distance matrix (validated once, as `InPCA` does).
    subsets : sequence of int arrays
        The points of each subset, each of size ``m_s ≥ 2``.
    n_components : int
        ``k``.
    random_state : int or None
        Seeds each Lanczos starting vector (the same for every subset, as a fresh seeded fit).
    progress : callable ``(done, total)``, optional
        Called after each subset.

    Returns
    -------
    ndarray of float64, shape (len(subsets), k)
        Row s: ``1 − sqrt(1 − Σ_{i≤j} λ_i² / ‖W_s‖_F²)`` for j = 1..k; NaN beyond ``m_s`` axes.
    """
    D = check_distance_matrix("D", D)
    S = np.asarray(D, dtype=np.float64)
    S = 0.5 * (S + S.T)
    subsets = [np.asarray(rows, dtype=np.intp) for rows in subsets]
    out = np.full((len(subsets), n_components), np.nan)
    small = max((rows.size for rows in subsets), default=0) < SINGLE_THREAD_BELOW
    with threadpool_limits(limits=1 if small else None, user_api="blas"):
        for i, rows in enumerate(subsets):
            k = min(n_components, rows.size)
            W, frobenius_sq = centred_submatrix(S, rows)
            values = top_eigenvalues(W, k, random_state)
            out[i, :k] = explained_stress(values, frobenius_sq, rows.size)
            if progress is not None:
                progress(i + 1, len(subsets))
    return out
