"""Numba kernels of InPCA (SPEC §10). Called only through ``_eigen.py`` and ``inpca.py``.

Both kernels read D in square tiles and visit the tiles (I, J) and (J, I) together, so that the
transposed reads ``D[j, i]`` stay in cache; row-block NumPy versions of the same passes
(``D[rows] + D[:, rows].T`` and friends) were several times slower (docs/performance.md).
Row blocks are paired (first with last) so that the triangular work is shared
evenly between threads.
"""

from __future__ import annotations

import numba
import numpy as np

#: Side of the square tiles: two 64×64 float64 tiles (64 KB) fit in L2 with room to spare.
TILE = 64


@numba.njit(parallel=True, cache=True, nogil=True)
def row_max_abs(D):  # pragma: no cover - compiled
    """Largest |D_ij| of every row (NaN propagates)."""
    m, n = D.shape
    out = np.empty(m)
    for i in numba.prange(m):
        best = 0.0
        for j in range(n):
            v = abs(np.float64(D[i, j]))
            if v > best or v != v:
                best = v
                if v != v:
                    break
        out[i] = best
    return out


@numba.njit(cache=True, nogil=True)
def _paired_block(p, half, nb):  # pragma: no cover - compiled
    """Row block ``p`` (half 0) or ``nb − 1 − p`` (half 1); −1 when that is ``p`` again."""
    p = np.int64(p)
    if half == 0:
        return p
    other = nb - 1 - p
    return other if other != p else np.int64(-1)


@numba.njit(cache=True, nogil=True)
def _tile_faults(D, tol, i0, i1, j0, j1, status):  # pragma: no cover - compiled
    for i in range(i0, i1):
        for j in range(j0 if j0 != i0 else i, j1):
            a = np.float64(D[i, j])
            b = np.float64(D[j, i])
            fine = (
                np.isfinite(a)
                and np.isfinite(b)
                and a >= -tol
                and b >= -tol
                and abs(a - b) <= tol
                and (i != j or abs(a) <= tol)
            )
            if not fine:
                # Mark both rows; the caller explains the first marked row from the data.
                status[i] = True
                status[j] = True


@numba.njit(parallel=True, cache=True, nogil=True)
def distance_matrix_faults(D, tol):  # pragma: no cover - compiled
    """Per row i: True unless every D_ij and D_ji is finite and ≥ −tol, ``|D_ij − D_ji| ≤ tol``
    and ``|D_ii| ≤ tol``."""
    m = D.shape[0]
    nb = (m + TILE - 1) // TILE
    # Two threads may mark the same row; both write True.
    status = np.zeros(m, dtype=np.bool_)
    for p in numba.prange((nb + 1) // 2):
        for half in range(2):
            bi = _paired_block(p, half, nb)
            if bi < 0:
                break
            i0, i1 = bi * TILE, min((bi + 1) * TILE, m)
            for bj in range(bi, nb):
                _tile_faults(D, tol, i0, i1, bj * TILE, min((bj + 1) * TILE, m), status)
    return status


@numba.njit(parallel=True, cache=True, nogil=True)
def center_symmetrized(D, means, grand_mean, root_w, W):  # pragma: no cover - compiled
    """``W_ij = W_ji = −½ √w_i √w_j (½(D_ij + D_ji) − (r_i + r_j) + g)``; returns ``‖W‖_F²``.

    ``root_w`` is ``√w`` of weighted InPCA, all ones without weights (a product with 1.0 is exact,
    so the unweighted W is unchanged bit for bit)."""
    m = D.shape[0]
    nb = (m + TILE - 1) // TILE
    n_pairs = (nb + 1) // 2
    partial = np.zeros(n_pairs)
    for p in numba.prange(n_pairs):
        acc = 0.0
        for half in range(2):
            bi = _paired_block(p, half, nb)
            if bi < 0:
                break
            i0, i1 = bi * TILE, min((bi + 1) * TILE, m)
            for bj in range(bi, nb):
                j0, j1 = bj * TILE, min((bj + 1) * TILE, m)
                for i in range(i0, i1):
                    ri = means[i]
                    si = -0.5 * root_w[i]
                    for j in range(j0 if bj != bi else i, j1):
                        s = 0.5 * (np.float64(D[i, j]) + np.float64(D[j, i]))
                        w = si * ((s - (ri + means[j])) + grand_mean) * root_w[j]
                        W[i, j] = w
                        W[j, i] = w
                        acc += w * w if i == j else 2.0 * w * w
        partial[p] = acc
    return partial.sum()
