"""Discrete Fréchet distance between two trajectories (SPEC §9).

``F(a, b)`` is the smallest, over monotone couplings of the two sequences of models (both walked
from first to last record, each step advancing one or both), of the largest distance between coupled
models. Computed by the iterative dynamic programme

    F[i, j] = max(min(F[i−1, j], F[i−1, j−1], F[i, j−1]), d(a_i, b_j)),

row by row, keeping one row (O(T_b) memory); the cost matrix is computed in blocks of rows by a
Numba kernel and never held whole, so T = 10⁴ records each needs ~10 MB beyond the inputs.
"""

from __future__ import annotations

import numpy as np

from taskspace.geometry import _kernels_trajectories as kernels
from taskspace.geometry.distances import DEFAULT_EPS, normalize_rows
from taskspace.geometry.validation import (
    as_probabilities,
    check_eps,
    check_metric,
    check_same_space,
)

#: Entries of one block of the cost matrix (8 MB of float64).
_BLOCK_ENTRIES = 1 << 20


def _roots(name: str, X, ndim=3) -> np.ndarray:
    """Validated, renormalised square roots of a stack of models, float64 C-contiguous."""
    return np.ascontiguousarray(np.sqrt(normalize_rows(as_probabilities(name, X, ndim=ndim))))


def iter_cost_blocks(root_a: np.ndarray, root_b: np.ndarray, metric: str, eps: float):
    """Yield ``(start, block)``: rows ``start:start+R`` of the cost matrix ``d(a_i, b_j)``.

    Parameters
    ----------
    root_a, root_b : ndarray of float64, shape (TA, N, C), (TB, N, C)
        Square roots of renormalised models.
    """
    n_a, n_b = root_a.shape[0], root_b.shape[0]
    rows = max(1, min(n_a, _BLOCK_ENTRIES // n_b))
    code = kernels.METRIC_CODES[metric]
    root_bt = np.ascontiguousarray(root_b.transpose(1, 2, 0))
    buffer = np.empty((rows, n_b))
    for start in range(0, n_a, rows):
        block = buffer[: min(rows, n_a - start)]
        kernels.cost_rows(root_a, start, root_bt, code, eps, block)
        yield start, block


def frechet_distance(
    traj_a, traj_b, metric: str = "bhattacharyya", eps: float = DEFAULT_EPS
) -> float:
    """Discrete Fréchet distance between two trajectories (SPEC §9).

    ``F = min over monotone couplings of max over coupled pairs of d(a_i, b_j)``, by the iterative
    dynamic programme ``F[i, j] = max(min(F[i−1, j], F[i−1, j−1], F[i, j−1]), d(a_i, b_j))`` with
    O(T_b) memory (no recursion, no full cost matrix).

    Parameters
    ----------
    traj_a : array_like, shape (T_a, N, C)
    traj_b : array_like, shape (T_b, N, C)
        Two trajectories on the same probe set and label space; lengths may differ.
    metric : {"bhattacharyya", "hellinger", "geodesic"}
        Distance between models (SPEC §3).
    eps : float, default 1e-9
        Floor of the Bhattacharyya coefficients.

    Returns
    -------
    float
        At least ``max(d(a_1, b_1), d(a_T, b_T))``; 0 for identical trajectories; symmetric.
    """
    eps = check_eps(eps)
    check_metric(metric)
    root_a = _roots("traj_a", traj_a)
    root_b = _roots("traj_b", traj_b)
    check_same_space(("traj_a", "traj_b"), root_a.shape, root_b.shape)
    coupling = np.empty(root_b.shape[0])
    for start, block in iter_cost_blocks(root_a, root_b, metric, eps):
        kernels.frechet_rows(block, coupling, start == 0)
    return float(coupling[-1])
