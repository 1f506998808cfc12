"""InPCA of a distance matrix that does not fit in memory (SPEC §10), matrix-free.

D (M×M, symmetric, e.g. the store's Zarr distance cache) is read in blocks of rows, never whole.
With ``r`` the row means of D and ``g`` their mean, the double-centred matrix is

    W = −½ J D J = −½ (D − r1ᵀ − 1rᵀ + g11ᵀ),

so its product with a block of vectors V (M×p) needs one streaming pass over D and O(M·p) more:

    W V = −½ (D V − r (1ᵀV) − 1 (rᵀV) + g 1 (1ᵀV)).

Lanczos (``scipy.sparse.linalg.eigsh``, ``which="LM"``) runs on that ``LinearOperator``; W is never
formed. ``‖W‖_F² = ¼ Σ_ij (D_ij − r_i − r_j + g)²`` takes one more pass (after the one for ``r``).
Peak memory is one block of rows plus a few vectors of length M: with the default 128 MiB blocks,
M = 20,000 needs ~0.2 GB besides the Lanczos basis (M × ncv floats).

With weights w (mean 1), ``r = D w / M`` and ``g = wᵀ r / M`` (the centring ``J_w``), and Lanczos
runs on ``W̃ = diag(√w) W diag(√w)``: ``W̃ V = √w ⊙ W (√w ⊙ V)``, the same single pass.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh
from sklearn.utils import check_random_state

from taskspace.geometry._eigen import flip_signs

#: Bytes of D read per block of rows (float64).
BLOCK_BYTES = 128 * 2**20


def _row_blocks(m: int, block_rows: int | None):
    rows = block_rows or max(1, BLOCK_BYTES // (8 * m))
    for r0 in range(0, m, rows):
        yield r0, min(r0 + rows, m)


class _Streamed:
    """Row blocks of an (M, M) array-like, each as float64, counted (``passes``)."""

    def __init__(self, D, block_rows: int | None):
        shape = tuple(int(s) for s in D.shape)
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] == 0:
            raise ValueError(f"`D` must be a non-empty square (M, M) matrix, got shape {shape}")
        if block_rows is not None and (isinstance(block_rows, bool) or block_rows < 1):
            raise ValueError(f"`block_rows` must be a positive integer, got {block_rows!r}")
        self.D, self.m, self.block_rows, self.passes = D, shape[0], block_rows, 0

    def blocks(self):
        self.passes += 1
        for r0, r1 in _row_blocks(self.m, self.block_rows):
            block = np.asarray(self.D[r0:r1], dtype=np.float64)
            if not np.all(np.isfinite(block)):
                i, j = (int(a) for a in np.argwhere(~np.isfinite(block))[0])
                raise ValueError(f"`D` contains a non-finite value at index {(r0 + i, j)}")
            yield r0, r1, block


class CentringStats(NamedTuple):
    """What the centring of D needs and gives: ``r``, ``g``, ``‖W̃‖_F²`` and ``diag(W̃)``."""

    means: np.ndarray
    grand_mean: float
    frobenius_sq: float
    diagonal: np.ndarray


def centering_stats(S: _Streamed, weights: np.ndarray | None = None) -> CentringStats:
    """(Weighted) row means ``r`` of the symmetrised D, grand mean ``g``, ``‖W̃‖_F²`` and
    ``diag(W̃)`` (``W̃ = W`` without weights): two passes.

    ``r = ½ (D w + Dᵀ w) / M``, as ``_eigen.double_center`` does, so that a D symmetric to
    rounding gives the same centring as the in-memory path.
    """
    m = S.m
    row_sums, col_sums = np.zeros(m), np.zeros(m)
    for r0, r1, block in S.blocks():
        if weights is None:
            row_sums[r0:r1] = block.sum(axis=1)
            col_sums += block.sum(axis=0)
        else:
            row_sums[r0:r1] = block @ weights
            col_sums += weights[r0:r1] @ block
    means = 0.5 * (row_sums + col_sums) / m
    g = float(means.mean()) if weights is None else float(weights @ means) / m
    root_w = np.ones(m) if weights is None else np.sqrt(weights)
    frob, diagonal = 0.0, np.empty(m)
    for r0, r1, block in S.blocks():
        centred = block - means[r0:r1, None] - means[None, :] + g
        rows = np.arange(r1 - r0)
        diagonal[r0:r1] = -0.5 * centred[rows, r0 + rows] * root_w[r0:r1] ** 2
        if weights is None:
            frob += 0.25 * float(np.einsum("ij,ij->", centred, centred))
        else:
            # ‖W̃‖² = ¼ Σ_ij w_i w_j c_ij²: square in place, then two BLAS products.
            np.multiply(centred, centred, out=centred)
            frob += 0.25 * float(weights[r0:r1] @ (centred @ weights))
    return CentringStats(means, g, frob, diagonal)


def centred_operator(
    S: _Streamed, means: np.ndarray, g: float, weights: np.ndarray | None = None
) -> LinearOperator:
    """``W`` (``W̃`` with weights) as a LinearOperator: each product is one pass over D."""
    m = S.m
    root_w = None if weights is None else np.sqrt(weights)[:, None]

    def matmat(V):
        V = np.asarray(V, dtype=np.float64).reshape(m, -1)
        if root_w is not None:
            V = root_w * V
        DV = np.empty_like(V)
        for r0, r1, block in S.blocks():
            DV[r0:r1] = block @ V
        ones_v = V.sum(axis=0)
        WV = -0.5 * (DV - np.outer(means, ones_v) - (means @ V)[None, :] + g * ones_v[None, :])
        return WV if root_w is None else root_w * WV

    return LinearOperator((m, m), matvec=lambda v: matmat(v)[:, 0], matmat=matmat, dtype=np.float64)


def eigen_out_of_core(
    D,
    n_components: int,
    *,
    block_rows: int | None = None,
    random_state=None,
    tol: float = 0.0,
    weights: np.ndarray | None = None,
):
    """The k eigenpairs of largest ``|λ|`` of ``W = −½ J D J``, D read in blocks of rows.

    The solver behind ``InPCA(metric="precomputed", solver="out-of-core")``.

    Parameters
    ----------
    D : array-like, shape (M, M)
        Symmetric distance matrix on the scale of ``d_B``, sliceable by rows (``D[r0:r1]``):
        a Zarr array, ``Store.cached_distances``, ``numpy.memmap``, h5py dataset or ndarray.
    n_components : int
        ``k``, ``1 ≤ k < M − 1`` (Lanczos needs a Krylov space larger than k).
    block_rows : int, optional
        Rows per block (default: 128 MiB of float64).
    random_state : int, RandomState or None
        Seeds the Lanczos starting vector.
    tol : float
        ``eigsh`` tolerance (0: machine precision).
    weights : ndarray of shape (M,), optional
        Normalised weights (mean 1, `taskspace.geometry.weights.normalized_weights`): the
        eigenpairs are then those of ``W̃ = diag(√w) W diag(√w)``, W centred with ``J_w``.

    Returns
    -------
    values : ndarray, shape (k,)
        ``|λ|`` descending, those zero to rounding exactly 0.
    vectors : ndarray, shape (M, k)
        Orthonormal, largest-magnitude entry of each column positive.
    frobenius_sq : float
        ``‖W‖_F²``.
    means : ndarray, shape (M,)
        (Weighted) row means of the symmetrised D.
    grand_mean : float
    passes : int
        Passes over D.
    diagonal : ndarray, shape (M,)
        ``diag(W̃)``, for the explained distance.
    """
    S = _Streamed(D, block_rows)
    m = S.m
    k = n_components
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k < m - 1:
        raise ValueError(
            f"`n_components` must be an integer in [1, M − 2] = [1, {m - 2}] for "
            f"the out-of-core solver, got {k!r}"
        )
    means, g, frob, diagonal = centering_stats(S, weights)
    if frob == 0.0:
        values, vectors = np.zeros(k), np.eye(m, k)
    else:
        op = centred_operator(S, means, g, weights)
        v0 = check_random_state(random_state).uniform(-1.0, 1.0, m)
        values, vectors = eigsh(op, k=k, which="LM", v0=v0, tol=tol)
        order = np.lexsort((-values, -np.abs(values)))
        values, vectors = values[order], vectors[:, order]
        # Zero to rounding → exactly 0, as in the in-memory path.
        values[np.abs(values) <= m * np.finfo(np.float64).eps * abs(values[0])] = 0.0
        vectors = flip_signs(vectors)
    return values, vectors, frob, means, g, S.passes, diagonal
