"""The eigenvalues of largest magnitude of many centred principal submatrices of one symmetric
matrix at once: Lanczos run in lock step over a batch of subsets (`batched_top_eigenvalues`).

Why: an interval of InPCA's explained stress refits hundreds of random 80% subsets of the models
(`taskspace.geometry.inpca_subsets`). One subset at a time, each fit copies its submatrix out of
the matrix (m² numbers, most of the time in page faults of the fresh copy) and then multiplies
by it about 40 times, each product reading it all from memory for 2m² flops. Here the subsets
never leave S: subset s is a 0/1 mask over S's rows, and one product ``X @ S`` with a row of X per
subset serves the Lanczos step of every subset of the batch, so S is read once per step for the
whole batch and the product runs at GEMM speed rather than at memory speed.

For subset s with mask ``e_s`` (m_s ones) and centring ``J_s = diag(e_s) − e_s e_sᵀ / m_s``::

    W_s x = −½ J_s S J_s x                     (x zero outside the subset)
    ‖W_s‖_F² = ¼ (Σ_{ij∈s} S_ij² − (2/m_s) Σ_{i∈s} r_i² + (Σ_{i∈s} r_i)² / m_s²),   r = S e_s

(the second from ``tr(JAJA) = tr(A²) − (2/m) 1ᵀA²1 + (1ᵀA1)²/m²`` for the principal submatrix
A; its rounding error is ~1e-14 of ‖W_s‖_F² on the reference study's matrices).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh_tridiagonal

#: A subset's top-k Ritz pairs count as converged when every residual ‖W y − θ y‖ is at most
#: this fraction of the largest |θ|: the eigenvalue error is then at most that (Weyl) and in
#: practice its square over the gap, far below the rounding of a dense solver's result.
TOLERANCE = 1e-11
#: Lanczos steps before a subset that has not converged is handed back (the caller solves it
#: densely); checked every ``CHECK_EVERY`` steps.
MAX_STEPS = 150
CHECK_EVERY = 5
#: Memory for the Lanczos vectors of one batch, bytes: it sets how many subsets run together.
BASIS_BYTES = 192 * 2**20
#: At most this many subsets per batch: beyond ~64 rows the product ``X @ S`` is compute bound
#: and a larger batch only costs memory.
MAX_BATCH = 64


def batch_size(n: int, max_steps: int = MAX_STEPS) -> int:
    """Subsets per batch for an n × n matrix: the Lanczos basis (b, max_steps + 1, n) of
    float64 within `BASIS_BYTES`, at most `MAX_BATCH`, at least 1."""
    return int(max(1, min(MAX_BATCH, BASIS_BYTES // ((max_steps + 1) * n * 8))))


def masked_frobenius_sq(S: np.ndarray, masks: np.ndarray, block: int = 512) -> np.ndarray:
    """``‖W_s‖_F²`` of every subset (formula in the module docstring), without forming any W_s.

    Parameters
    ----------
    S : ndarray of float64, shape (n, n)
        Symmetric.
    masks : ndarray of float64, shape (b, n)
        0/1 rows, each with at least one 1.

    Returns
    -------
    ndarray of float64, shape (b,)
    """
    m = masks.sum(axis=1)
    r = masks @ S  # (b, n): row sums of each principal submatrix, by symmetry of S
    inner = np.einsum("bn,bn->b", masks, r * r)
    total = np.einsum("bn,bn->b", masks, r)
    squares = np.zeros(masks.shape[0])
    for start in range(0, S.shape[0], block):
        rows = S[start : start + block]
        # Σ_{i∈s, j∈s} S_ij² over this block of rows i (S_ij² symmetric, so rows act as columns)
        squares += np.einsum("bi,bi->b", masks[:, start : start + block], masks @ (rows * rows).T)
    return 0.25 * (squares - 2.0 * inner / m + total * total / (m * m))


def _centre(X: np.ndarray, masks: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each row of X restricted to its subset, less its mean over the subset (``J_s x``)."""
    means = np.einsum("bn,bn->b", X, masks) / counts
    return (X - means[:, None]) * masks


def _apply(S, X, masks, counts) -> np.ndarray:
    """``W_s x_s`` for every row: ``−½ J_s S J_s x_s``, one product with S for the batch."""
    return -0.5 * _centre(_centre(X, masks, counts) @ S, masks, counts)


def _top_ritz(alpha, beta, j: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k Ritz values of largest magnitude of the j-step tridiagonal (α, β) and their
    residual norms ``|β_j z_j|``."""
    theta, Z = eigh_tridiagonal(alpha[:j], beta[: j - 1])
    order = np.lexsort((-theta, -np.abs(theta)))[:k]
    return theta[order], np.abs(beta[j - 1] * Z[j - 1, order])


def batched_top_eigenvalues(
    S: np.ndarray,
    masks: np.ndarray,
    k: int,
    start: np.ndarray,
    max_steps: int = MAX_STEPS,
) -> tuple[np.ndarray, np.ndarray]:
    """The k eigenvalues of largest magnitude of ``W_s = −½ J_s S_ss J_s`` for every mask s.

    Lanczos with full reorthogonalisation, all subsets in lock step (one ``X @ S`` per step).

    Parameters
    ----------
    S : ndarray of float64, shape (n, n)
        Symmetric.
    masks : ndarray of float64, shape (b, n)
        0/1 rows; each subset must have more than ``k + 1`` points. A subset whose Krylov space
        closes (at most m_s − 1 steps) is reported as not converged.
    k : int
    start : ndarray of float64, shape (n,)
        Starting vector (restricted to each subset and centred there).
    max_steps : int

    Returns
    -------
    values : ndarray of float64, shape (b, k)
        By ``|λ|`` descending, positive first on ties (NaN rows where not converged).
    converged : ndarray of bool, shape (b,)
        False where the subset did not converge within ``max_steps`` or its Krylov space
        closed early (an invariant subspace that may miss eigenvalues): solve those densely.
    """
    b, n = masks.shape
    counts = masks.sum(axis=1)
    steps = int(min(max_steps, counts.max() - 1))
    V = np.zeros((b, steps + 1, n))
    alpha, beta = np.zeros((b, steps)), np.zeros((b, steps))
    values = np.full((b, k), np.nan)
    done = np.zeros(b, dtype=bool)
    closed = np.zeros(b, dtype=bool)
    v = _centre(np.broadcast_to(start, (b, n)), masks, counts)
    V[:, 0] = v / np.linalg.norm(v, axis=1, keepdims=True)
    for j in range(steps):
        w = _apply(S, V[:, j], masks, counts)
        alpha[:, j] = np.einsum("bn,bn->b", V[:, j], w)
        for _ in range(2):  # full reorthogonalisation, twice ("twice is enough")
            coef = np.matmul(V[:, : j + 1], w[:, :, None])
            w -= np.matmul(coef.transpose(0, 2, 1), V[:, : j + 1])[:, 0]
        beta[:, j] = np.linalg.norm(w, axis=1)
        scale = np.abs(alpha[:, : j + 1]).max(axis=1)
        closed |= ~done & (beta[:, j] <= 1e-12 * np.maximum(scale, np.finfo(float).tiny))
        V[:, j + 1] = w / np.where(beta[:, j] > 0, beta[:, j], 1.0)[:, None]
        last = j + 1 == steps
        if j + 1 > k and ((j + 1) % CHECK_EVERY == 0 or last):
            for s in np.flatnonzero(~done & ~closed):
                theta, residual = _top_ritz(alpha[s], beta[s], j + 1, k)
                if residual.max() <= TOLERANCE * np.abs(theta).max():
                    values[s], done[s] = theta, True
        if (done | closed).all():
            break
    return values, done & ~closed
