"""Linear algebra behind InPCA (SPEC §10): double centering and the eigensolvers.

Kept apart from the estimator so that each step can be tested and timed alone. Everything works on
the M×M matrix ``W = −½ J D J`` in float64, built once and then only read.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.sparse.linalg import eigsh

from taskspace.geometry._kernels_inpca import center_symmetrized

#: ``solver="auto"`` takes the partial (Lanczos) solver from this many points on, when it needs
#: at most ``AUTO_MAX_FRACTION`` of the spectrum. Measured on the 2-core development machine with
#: ``benchmarks/bench_inpca.py --crossover`` (d_B of trajectories): Lanczos beats the full ``eigh``
#: from M ≈ 100 for k ≤ 3, M ≈ 150 for k = 10, M ≈ 200 for k = 30, M ≈ 500 for k = 100 (times:
#: docs/performance.md).
AUTO_PARTIAL_MIN_POINTS = 200
AUTO_MAX_FRACTION = 1 / 6

SOLVERS = ("auto", "dense", "partial")


def double_center(
    D: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Symmetrise and double-centre a distance matrix: ``W = −½ J S J``, ``S = (D + Dᵀ)/2``.

    ``J = I − 11ᵀ/M`` is never formed: ``(J S J)_ij = S_ij − r_i − r_j + g`` with ``r`` the row
    means of S (= its column means) and ``g`` their mean. Written as ``S_ij − (r_i + r_j) + g`` so
    that W is symmetric bit for bit (the eigensolvers assume it). One tiled parallel pass over D
    (``_kernels_inpca.center_symmetrized``), which also accumulates ``‖W‖_F²``.

    With weights (SPEC §10, mean 1) the centring is ``J_w = I − 1wᵀ/M``: ``r = S w / M``,
    ``g = wᵀ r / M``, and the matrix returned is the symmetric ``W̃ = diag(√w) W diag(√w)``,
    ``W̃_ij = −½ √(w_i w_j) (S_ij − r_i − r_j + g)``, with ``‖W̃‖_F²``.

    Parameters
    ----------
    D : ndarray, shape (M, M)
        Validated distance matrix (finite, symmetric within tolerance); not modified.
    weights : ndarray of float64, shape (M,), optional
        Normalised weights (`taskspace.geometry.weights.normalized_weights`); ``None``: all ones.

    Returns
    -------
    W : ndarray of float64, shape (M, M)
        W, or W̃ with weights.
    means : ndarray of float64, shape (M,)
        The (weighted) column means ``r`` of S, needed again for out-of-sample points.
    grand_mean : float
        ``g``, the (weighted) mean of all entries of S.
    frobenius_sq : float
        ``‖W‖_F² = Σ_i λ_i²`` (``‖W̃‖_F²`` with weights), accumulated while W is written.
    """
    m = D.shape[0]
    if weights is None:
        # Row and column means of D give those of S without forming S: r = (rowmean + colmean)/2.
        means = 0.5 * (D.mean(axis=1, dtype=np.float64) + D.mean(axis=0, dtype=np.float64))
        grand_mean = float(means.mean())
        root_w = np.ones(m)
    else:
        means = 0.5 * _weighted_sums(D, weights) / m
        grand_mean = float(weights @ means) / m
        root_w = np.sqrt(weights)
    W = np.empty((m, m), dtype=np.float64)
    frobenius_sq = float(center_symmetrized(D, means, grand_mean, root_w, W))
    return W, means, grand_mean, frobenius_sq


def _weighted_sums(D: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``D w + Dᵀ w`` in float64; a float32 D in blocks of rows (no float64 copy of D)."""
    if D.dtype == np.float64:
        return D @ weights + weights @ D
    out = np.zeros(D.shape[0])
    step = max(1, 2**22 // max(1, D.shape[1]))
    for r0 in range(0, D.shape[0], step):
        block = np.asarray(D[r0 : r0 + step], dtype=np.float64)
        out[r0 : r0 + step] += block @ weights
        out += weights[r0 : r0 + step] @ block
    return out


def choose_solver(solver: str, n_points: int, n_components: int) -> str:
    """Resolve ``"auto"`` and fall back to dense where Lanczos cannot run.

    ARPACK needs ``k < M − 1`` (its Krylov space must exceed k); beyond that, and for a large share
    of the spectrum, the dense decomposition is both possible and faster.
    """
    partial_possible = n_components < n_points - 1
    if solver == "dense" or not partial_possible:
        return "dense"
    if solver == "partial":
        return "partial"
    big_enough = n_points >= AUTO_PARTIAL_MIN_POINTS
    few_enough = n_components <= AUTO_MAX_FRACTION * n_points
    return "partial" if big_enough and few_enough else "dense"


def eigen_by_magnitude(
    W: np.ndarray, n_components: int, solver: str, random_state: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_components`` eigenpairs of W of largest ``|λ|``, from both ends of the spectrum.

    Parameters
    ----------
    W : ndarray of float64, shape (M, M)
        Symmetric; may be overwritten by the dense solver.
    n_components : int
        ``k``, 1 ≤ k ≤ M.
    solver : {"dense", "partial"}
        ``"dense"``: ``scipy.linalg.eigh`` of the whole matrix, O(M³). ``"partial"``: implicitly
        restarted Lanczos (``scipy.sparse.linalg.eigsh``, ``which="LM"``), O(M²) per iteration;
        needs ``k < M − 1``.
    random_state : RandomState
        Draws the Lanczos starting vector, so that a seeded fit is reproducible.

    Returns
    -------
    eigenvalues : ndarray, shape (k,)
        Ordered by ``|λ|`` descending (positive first on ties); those zero to rounding
        (``|λ| ≤ M·ε·|λ_1|``) set to exactly 0.
    eigenvectors : ndarray, shape (M, k)
        Orthonormal columns; each column's entry of largest magnitude is positive, so that
        embeddings do not depend on the solver or the starting vector.
    """
    m = W.shape[0]
    if not W.any():
        # All points coincide (D = 0). Lanczos cannot start from a zero Krylov space; every
        # eigenvalue is 0 and any orthonormal basis will do.
        return np.zeros(n_components), np.eye(m, n_components)
    if solver == "dense":
        values, vectors = linalg.eigh(W, overwrite_a=True, check_finite=False)
    else:
        v0 = random_state.uniform(-1.0, 1.0, m)
        values, vectors = eigsh(W, k=n_components, which="LM", v0=v0)
    order = np.lexsort((-values, -np.abs(values)))[:n_components]
    values = values[order]
    vectors = vectors[:, order]

    if values.size and values[0] != 0.0:
        values[np.abs(values) <= m * np.finfo(np.float64).eps * abs(values[0])] = 0.0
    return values, flip_signs(vectors)


def flip_signs(vectors: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude entry of every column positive (as ``sklearn``'s ``svd_flip``)."""
    if vectors.size == 0:
        return vectors
    biggest = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[biggest, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1.0
    return vectors * signs


def explained_stress(eigenvalues: np.ndarray, frobenius_sq: float, n_points: int) -> np.ndarray:
    """``1 − sqrt(1 − Σ_{i≤k} λ_i² / ‖W‖_F²)`` for k = 1..len(eigenvalues) (SPEC §10).

    The residual ``‖W‖_F² − Σ_{i≤k} λ_i²`` is a difference of two rounded sums: eigenvalues carry
    errors ``|δλ| ≲ ε‖W‖₂``, so ``Σλ²`` is off by up to ``2ε‖W‖₂ Σ|λ| ≤ 2 sqrt(M) ε ‖W‖_F²``,
    and the square root blows that up (to ~1e-6 at M = 8000). Residuals below
    ``32 sqrt(M) ε ‖W‖_F²`` are indistinguishable from zero and are set to zero (this also clips
    tiny negatives), so that the stress of all non-zero axes is exactly 1.
    """
    if frobenius_sq <= 0.0:
        # W = 0: every distance is zero and nothing is left to explain.
        return np.ones_like(eigenvalues)
    captured = np.cumsum(eigenvalues * eigenvalues)
    residual = frobenius_sq - captured
    noise = 32.0 * np.sqrt(n_points) * np.finfo(np.float64).eps * frobenius_sq
    residual[residual <= noise] = 0.0
    return 1.0 - np.sqrt(residual / frobenius_sq)


def explained_distance(
    eigenvalues: np.ndarray,
    eigenvectors: np.ndarray,
    diagonal: np.ndarray,
    frobenius_sq: float,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """``1 − ‖D − D_k‖_w / ‖D‖_w`` for k = 1..len(eigenvalues), in closed form (SPEC §10).

    With ``t = diag(W̃)`` (``W̃ = W`` without weights), ``t_k = Σ_{a≤k} λ_a U_·a²`` and
    ``‖A‖_w² = Σ_ij w_i w_j A_ij²``::

        ‖D‖_w²       = 2 (Σt)² + 2M Σ_i t_i²/w_i + 4 ‖W̃‖_F²
        ‖D − D_k‖_w² = 2 (Σt − Σ_{a≤k} λ_a)² + 2M Σ_i (t_i − t_k,i)²/w_i
                       + 4 (‖W̃‖_F² − Σ_{a≤k} λ_a²)

    (sums over ``w_i > 0``; ``b = t/w`` is ``diag(W)``). It holds because D has a zero diagonal,
    so ``D_ij = b_i + b_j − 2 W_ij``, and the weighted row sums of W and of ``W_k`` are 0.
    O(M·k): no spectrum beyond the k eigenpairs, no M×M reconstruction. Residuals below
    ``32 sqrt(M) ε ‖D‖_w²`` are rounding and set to 0 (as in `explained_stress`).

    Parameters
    ----------
    eigenvalues : ndarray, shape (k,)
    eigenvectors : ndarray, shape (M, k)
        Orthonormal eigenvectors U of W̃.
    diagonal : ndarray, shape (M,)
        ``t = diag(W̃)``.
    frobenius_sq : float
        ``‖W̃‖_F²``.
    weights : ndarray, shape (M,), optional
        Mean-1 weights; ``None``: all ones.

    Returns
    -------
    ndarray, shape (k,)
        Non-decreasing up to rounding; 1 once D is reproduced.
    """
    m = len(diagonal)
    if weights is None:
        inv_w = np.ones(m)
    else:
        inv_w = np.zeros(m)
        np.divide(1.0, weights, out=inv_w, where=weights > 0)
    trace = float(diagonal.sum())
    total = 2.0 * trace**2 + 2.0 * m * float(diagonal**2 @ inv_w) + 4.0 * frobenius_sq
    if total <= 0.0:
        return np.ones_like(eigenvalues)
    left = np.array(diagonal, dtype=np.float64)
    residual = np.empty(len(eigenvalues))
    for a, lam in enumerate(eigenvalues):
        left -= lam * eigenvectors[:, a] ** 2
        residual[a] = 2.0 * m * float(left**2 @ inv_w)
    residual += 2.0 * (trace - np.cumsum(eigenvalues)) ** 2
    residual += 4.0 * np.maximum(frobenius_sq - np.cumsum(eigenvalues**2), 0.0)
    noise = 32.0 * np.sqrt(m) * np.finfo(np.float64).eps * total
    residual[residual <= noise] = 0.0
    return 1.0 - np.sqrt(residual / total)
