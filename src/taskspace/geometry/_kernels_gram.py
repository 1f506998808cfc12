"""Numba Gram matrices of one sample's square roots, for ``pairwise_distances`` at many classes.

For C > 32 a sample's Bhattacharyya coefficients are the Gram matrix ``G = Ψ Ψᵀ`` of its (M, C)
square roots (``_pairwise_blas``). These kernels compute it with a 4 × 4 register tile of pairs
whose 16 inner products are vectorised over classes (8 float64 or 16 float32 lanes), the class
loop cut into blocks of ``CLASS_BLOCK`` so that a sub-panel of ``SUB_ROWS`` rows of one side stays
in L1 while the other side's rows stream past. Against OpenBLAS's ``syrk`` on the same packed
sample it is faster where AVX-512 holds its tile in registers (docs/performance.md).

Layout: ``P`` (Mp, Cp), C-contiguous and 64-byte aligned, Mp a multiple of ``TILE_ROWS`` and Cp of
the vector width, padding rows and columns zero (they add nothing to any inner product).
"""

from __future__ import annotations

import numba

#: Pairs per register tile: 4 × 4 inner products, 8 vector loads per 16 multiply-adds (24 of the
#: 32 AVX-512 registers); the fastest tile measured (docs/performance.md).
TILE_ROWS = 4
#: Classes per block: 512 float64 classes are 4 KiB per row, so a sub-panel of SUB_ROWS rows is
#: 32 KiB and stays in L1 (256 classes: +20% time, 1024: +27%).
CLASS_BLOCK = 512
#: Rows of the sub-panel kept in L1 while all row tiles above it stream past (6-24 measured; 8).
SUB_ROWS = 8

_FAST = {"reassoc", "contract", "nsz"}


@numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
def _tile(P, Q, i, j, c0, n, G):  # pragma: no cover - compiled
    """``G[i + r, j + s] += Σ_{c0 ≤ c < c0 + n} P[i + r, c]·Q[j + s, c]`` for r, s < 4."""
    a0, a1, a2, a3 = (
        P[i, c0 : c0 + n],
        P[i + 1, c0 : c0 + n],
        P[i + 2, c0 : c0 + n],
        P[i + 3, c0 : c0 + n],
    )
    b0, b1, b2, b3 = (
        Q[j, c0 : c0 + n],
        Q[j + 1, c0 : c0 + n],
        Q[j + 2, c0 : c0 + n],
        Q[j + 3, c0 : c0 + n],
    )
    zero = P[i, 0] - P[i, 0]  # in P's type: float32 square roots accumulate in float32 lanes
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
    for c in range(n):
        x0, x1, x2, x3 = a0[c], a1[c], a2[c], a3[c]
        y0, y1, y2, y3 = b0[c], b1[c], b2[c], b3[c]
        s00 += x0 * y0
        s01 += x0 * y1
        s02 += x0 * y2
        s03 += x0 * y3
        s10 += x1 * y0
        s11 += x1 * y1
        s12 += x1 * y2
        s13 += x1 * y3
        s20 += x2 * y0
        s21 += x2 * y1
        s22 += x2 * y2
        s23 += x2 * y3
        s30 += x3 * y0
        s31 += x3 * y1
        s32 += x3 * y2
        s33 += x3 * y3
    G[i, j] += s00
    G[i, j + 1] += s01
    G[i, j + 2] += s02
    G[i, j + 3] += s03
    G[i + 1, j] += s10
    G[i + 1, j + 1] += s11
    G[i + 1, j + 2] += s12
    G[i + 1, j + 3] += s13
    G[i + 2, j] += s20
    G[i + 2, j + 1] += s21
    G[i + 2, j + 2] += s22
    G[i + 2, j + 3] += s23
    G[i + 3, j] += s30
    G[i + 3, j + 1] += s31
    G[i + 3, j + 2] += s32
    G[i + 3, j + 3] += s33


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def gram(P, Q, upper, G):  # pragma: no cover - compiled
    """``G = P Qᵀ`` (G (Mp, Mq), P (Mp, Cp), Q (Mq, Cp), layout above; ``G``'s type is P's).

    With ``upper`` (``Q is P``) only the 4 × 4 tiles on or above the diagonal are computed: the
    upper triangle of ``G`` (diagonal included) is exact, the rest is not meaningful.
    """
    mp, cp = P.shape
    mq = Q.shape[0]
    G[:, :] = 0.0
    for c0 in range(0, cp, CLASS_BLOCK):
        n = min(CLASS_BLOCK, cp - c0)
        for j0 in range(0, mq, SUB_ROWS):
            j1 = min(j0 + SUB_ROWS, mq)
            for i in range(0, min(j1, mp) if upper else mp, TILE_ROWS):
                for j in range(j0, j1, TILE_ROWS):
                    if upper and j + TILE_ROWS <= i:
                        continue
                    _tile(P, Q, i, j, c0, n, G)
