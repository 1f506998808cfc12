"""Numba kernels of ``pairwise_distances`` for many classes (C > 32): vectorised over classes.

A chunk is packed sample-major, ``(n, Mp, C)`` square roots, so that the models of a panel are
contiguous for each sample. For one sample and one block of ``CLASS_BLOCK`` classes a 4×3 register
tile of model pairs loads 7 class vectors per 12 multiply-adds; the per-sample inner products
(or squared chords) of a TILE×TILE tile are summed over class blocks in a buffer, then folded into
the pair's running quantity:

* ``d_B``: ``Π max(BC_n, eps)`` over up to ``length`` samples, then one logarithm (``length`` from
  ``_kernels_pairwise.log_block_length``; one log per ``length·C`` multiply-adds is negligible).
  ``BC_n = <ψ_a, ψ_b>`` is exact for renormalised rows; its rounding (~C ulp) is irrelevant once
  floored and logged.
* ``d_H``: ``Σ_n s_n`` with ``s_n = Σ_c (ψ_ac − ψ_bc)²`` computed directly: ``2 − 2·<ψ_a, ψ_b>``
  would lose every digit for nearby models.
* ``d_G``: ``Σ_n θ_n²``, ``θ_n = 2·asin(sqrt(s_n)/2)``.

Threads split the samples of a chunk (each adds to its own matrix of sums), so tiles can be large
and need no balancing. For d_B from ``pairwise.GRAM_MIN_CLASSES`` classes on (and with
``precision="float32"``) ``_pairwise_blas.gram_sums`` is used instead: a Gram matrix per sample
(``_kernels_gram``), our threads splitting the samples; BLAS runs there single-threaded inside
our threads, since OpenBLAS threads spinning beside ours made timings erratic
(docs/performance.md).
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Models per tile side and classes per block (the fastest measured, docs/performance.md;
#: smaller tiles read more bytes per multiply-add, smaller class blocks pay more horizontal
#: reductions).
TILE = 192
CLASS_BLOCK = 512
BHATTACHARYYA, HELLINGER, GEODESIC = 0, 1, 2
#: The register tile of ``_dots`` and ``_chords``: 4 × 3 pairs, 7 class vectors per 12 products.
ROWS, COLS = 4, 3

_FAST = {"reassoc", "contract", "nsz"}
_SQRT_HALF = math.sqrt(0.5)
_PIO2 = math.pi / 2.0


@numba.njit(cache=True, fastmath=_FAST, error_model="numpy")
def _dots(A, B, s, i, j, c0, c1):  # pragma: no cover - compiled
    """``Σ_{c0 ≤ c < c1} ψ_ic ψ_jc`` for pairs (i + r, j + q), r < 4, q < 3, of sample ``s``."""
    v00 = v01 = v02 = v10 = v11 = v12 = v20 = v21 = v22 = v30 = v31 = v32 = 0.0
    for c in range(np.uint64(c0), np.uint64(c1)):  # unsigned: no negative-index fix-ups
        a0, a1, a2, a3 = A[s, i, c], A[s, i + 1, c], A[s, i + 2, c], A[s, i + 3, c]
        b0, b1, b2 = B[s, j, c], B[s, j + 1, c], B[s, j + 2, c]
        v00 += a0 * b0
        v01 += a0 * b1
        v02 += a0 * b2
        v10 += a1 * b0
        v11 += a1 * b1
        v12 += a1 * b2
        v20 += a2 * b0
        v21 += a2 * b1
        v22 += a2 * b2
        v30 += a3 * b0
        v31 += a3 * b1
        v32 += a3 * b2
    return v00, v01, v02, v10, v11, v12, v20, v21, v22, v30, v31, v32


@numba.njit(cache=True, fastmath=_FAST, error_model="numpy")
def _chords(A, B, s, i, j, c0, c1):  # pragma: no cover - compiled
    """``Σ_{c0 ≤ c < c1} (ψ_ic − ψ_jc)²`` for the same 4×3 pairs as :func:`_dots`."""
    v00 = v01 = v02 = v10 = v11 = v12 = v20 = v21 = v22 = v30 = v31 = v32 = 0.0
    for c in range(np.uint64(c0), np.uint64(c1)):  # unsigned: no negative-index fix-ups
        a0, a1, a2, a3 = A[s, i, c], A[s, i + 1, c], A[s, i + 2, c], A[s, i + 3, c]
        b0, b1, b2 = B[s, j, c], B[s, j + 1, c], B[s, j + 2, c]
        v00 += (a0 - b0) * (a0 - b0)
        v01 += (a0 - b1) * (a0 - b1)
        v02 += (a0 - b2) * (a0 - b2)
        v10 += (a1 - b0) * (a1 - b0)
        v11 += (a1 - b1) * (a1 - b1)
        v12 += (a1 - b2) * (a1 - b2)
        v20 += (a2 - b0) * (a2 - b0)
        v21 += (a2 - b1) * (a2 - b1)
        v22 += (a2 - b2) * (a2 - b2)
        v30 += (a3 - b0) * (a3 - b0)
        v31 += (a3 - b1) * (a3 - b1)
        v32 += (a3 - b2) * (a3 - b2)
    return v00, v01, v02, v10, v11, v12, v20, v21, v22, v30, v31, v32


@numba.njit(cache=True, fastmath=_FAST, error_model="numpy")
def _theta_squared(s):  # pragma: no cover - compiled
    """θ² with θ = 2·asin(sqrt(s)/2), from the squared chord ``s`` in [0, 2]."""
    h = math.asin(min(math.sqrt(s) * 0.5, _SQRT_HALF))
    return 4.0 * h * h


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def rows_sums(A, B, s0, s1, kind, eps, length, upper, out):  # pragma: no cover - compiled
    """Add the per-pair sums over samples ``s0:s1`` of one chunk to ``out`` (M, M').

    ``A`` (n, Ma, C) and ``B`` (n, Mb, C) hold square roots, sample-major, Ma and Mb multiples of
    ROWS·COLS covering the rows and columns of ``out`` (padding rows are ψ = e_0, never reported).
    ``kind``: BHATTACHARYYA adds ``Σ_n log max(BC_n, eps)``, HELLINGER ``Σ_n s_n``, GEODESIC
    ``Σ_n θ_n²``. With ``upper`` only pairs above the diagonal are guaranteed. Threads split the
    samples (each with its own ``out``), so tiles can be large: a TILE×TILE tile reads its two
    panels once per sample, and a larger tile does more multiply-adds per byte read.
    """
    n_classes = A.shape[2]
    n_rows, n_cols = out.shape
    inner = np.zeros((TILE, TILE))
    state = np.zeros((TILE, TILE))
    for i0 in range(0, n_rows, TILE):
        for j0 in range(i0 if upper else 0, n_cols, TILE):
            diagonal = upper and i0 == j0
            rows = min(TILE, n_rows - i0)
            cols = min(TILE, n_cols - j0)
            r_end = -(-rows // ROWS) * ROWS  # micro-tiles of padding models are skipped
            c_end = -(-cols // COLS) * COLS
            state[:] = 1.0 if kind == BHATTACHARYYA else 0.0
            for s in range(s0, s1):
                inner[:] = 0.0
                for c0 in range(0, n_classes, CLASS_BLOCK):
                    c1 = min(c0 + CLASS_BLOCK, n_classes)
                    for r in range(0, r_end, ROWS):
                        for c in range(0, c_end, COLS):
                            if diagonal and c + COLS - 1 <= r:
                                continue
                            if kind == BHATTACHARYYA:
                                v = _dots(A, B, s, i0 + r, j0 + c, c0, c1)
                            else:
                                v = _chords(A, B, s, i0 + r, j0 + c, c0, c1)
                            inner[r, c] += v[0]
                            inner[r, c + 1] += v[1]
                            inner[r, c + 2] += v[2]
                            inner[r + 1, c] += v[3]
                            inner[r + 1, c + 1] += v[4]
                            inner[r + 1, c + 2] += v[5]
                            inner[r + 2, c] += v[6]
                            inner[r + 2, c + 1] += v[7]
                            inner[r + 2, c + 2] += v[8]
                            inner[r + 3, c] += v[9]
                            inner[r + 3, c + 1] += v[10]
                            inner[r + 3, c + 2] += v[11]
                if kind == BHATTACHARYYA:
                    for r in range(rows):
                        for c in range(cols):
                            state[r, c] *= max(inner[r, c], eps)
                    if (s - s0 + 1) % length == 0 or s == s1 - 1:
                        for r in range(rows):
                            for c in range(cols):
                                out[i0 + r, j0 + c] += math.log(state[r, c])
                        state[:] = 1.0
                elif kind == HELLINGER:
                    for r in range(rows):
                        for c in range(cols):
                            state[r, c] += inner[r, c]
                else:
                    for r in range(rows):
                        for c in range(cols):
                            state[r, c] += _theta_squared(inner[r, c])
            if kind != BHATTACHARYYA:
                for r in range(rows):
                    for c in range(cols):
                        out[i0 + r, j0 + c] += state[r, c]
