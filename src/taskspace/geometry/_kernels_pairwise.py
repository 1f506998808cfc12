"""Numba kernels of ``pairwise_distances`` for few classes (C ≤ 32), and chunk packing.

Called only through ``pairwise.py``. The work is M·M'·N·C multiply-adds; for small C the loop over
classes is too short to vectorise, so these kernels vectorise over samples:

* **Blocks layout.** A chunk is packed as ``(Mp/TILE, n_blocks, TILE, C_spec, L)`` square roots:
  panels of TILE models, blocks of ``L`` samples, class-major inside a block, so that the innermost
  loop runs over samples (8 per AVX-512 instruction) and one block of a panel is contiguous.
  ``C_spec`` is the next of ``SMALL_CLASS_SIZES`` (zero-padded classes change no inner product and
  no chord), which bounds the compiled specialisations; ``_kernels_pairwise_micro`` generates the
  4×3 register-tiled micro-kernels with the class loop written out (7 vector loads per 12
  multiply-adds).
* **Cache blocking.** A task is a rectangle of panels; for each block of samples it visits all of
  its TILE×TILE tiles, so a panel's block is reused by every tile of the rectangle while it is in
  cache (per thread, C = 10: 10 GFMA/s tile by tile, 15 with 16×16-panel rectangles).
* **Threads.** Kernels are serial and release the GIL; ``pairwise.py`` gives the rectangles
  (upper triangle only when symmetric) to a thread pool.

Logarithms. ``d_B`` needs ``Σ_n log max(BC_n, eps)``; one logarithm per pair and sample would cost
more than the C = 10 inner product. The micro-kernel multiplies the floored coefficients of a block
of ``L`` samples (``≥ eps^L ≥ 2^-957``, ``block_length``) into a running product per pair, kept
normal by exact rescaling by ``2^960`` whenever it drops below ``2^-65`` (the exponent goes to the
output). One logarithm per pair remains, at the very end. Each multiplication adds at most half an
ulp of relative error, so the sum of logarithms is within ~1e-16 × (number of factors) of the
direct one: far inside the 1e-9 contract (tested against the direct formula, floors included).

Chords. Hellinger and geodesic distances use ``s_n = Σ_c (ψ_ac − ψ_bc)²`` summed directly: exact 0
for equal rows, no ``2 − 2·BC`` cancellation; ``θ_n = 2·asin(sqrt(s_n)/2)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from taskspace.geometry._kernels_pairwise_micro import COLS, ROWS, bc_block, chord_block

#: Class counts with a compiled "blocks" kernel; C is zero-padded up to the next one.
SMALL_CLASS_SIZES = (4, 8, 10, 12, 16, 24, 32)
#: Models per panel: a tile of TILE×TILE pairs is one task (a multiple of ROWS and COLS).
TILE = 48
#: Largest block of samples multiplied before a rescale or a logarithm.
MAX_BLOCK = 32

_RESCALE = 2.0**960
_LOG_RESCALE = 960.0 * math.log(2.0)
_SMALLEST_KEPT = 2.0**-65
_FAST = {"reassoc", "contract", "nsz"}


def block_length(eps: float) -> tuple[int, bool]:
    """Samples per product block for a floor ``eps``, and whether the running product is safe.

    With ``eps^L ≥ 2^-957`` a block product times a kept running product (``≥ 2^-65``) stays a
    normal float. For floors below ``2^-957`` (absurd, but allowed): one logarithm per sample.
    """
    budget = 957.0 * math.log(2.0) / -math.log(eps)
    if budget >= 1.0:
        n = min(MAX_BLOCK, int(budget))
        return (n - n % 8 if n >= 8 else n), True
    return 1, False


def log_block_length(eps: float) -> int:
    """Samples per block when every block product gets its own logarithm (``eps^L ≥ 2^-1022``)."""
    budget = 1022.0 * math.log(2.0) / -math.log(eps)
    return max(1, min(MAX_BLOCK, int(budget)))


# ---------------------------------------------------------------------------------------------
# Packing: validate, renormalise, take square roots, lay out. One pass over the raw chunk.
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, fastmath=_FAST, error_model="numpy")
def _row_scale(raw, m, s, tolerance):  # pragma: no cover - compiled
    """1 / (row sum) of ``raw[m, s]``, or 0.0 if the row is not a probability vector.

    Same test as ``_validation._row_status`` (finite, ≥ 0, sum within ``tolerance`` of 1), in one
    vectorisable pass: a NaN or inf makes the sum non-finite.
    """
    total = 0.0
    negative = 0
    for c in range(np.uint64(0), np.uint64(raw.shape[2])):  # unsigned: no negative-index fix-ups
        v = np.float64(raw[m, s, c])
        total += v
        negative += v < 0.0
    if negative == 0 and abs(total - 1.0) <= tolerance:
        return 1.0 / total
    return 0.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def pack_blocks(raw, n0, n, out, m0, m1, tolerance):  # pragma: no cover - compiled
    """Fill models ``m0:m1`` of ``out`` (Mp/TILE, n_blocks, TILE, C_spec, L) with ψ of a chunk.

    The chunk is ``raw[:, n0:n0 + n]`` (``raw`` C-contiguous (M, ≥ n0 + n, C), so the compiled
    code knows its strides); model ``m`` goes to panel ``m // TILE``, row ``m % TILE``. Rows are
    validated as ``_validation._row_status`` does (finite, ≥ 0, sum within ``tolerance`` of 1: a
    NaN or inf makes the sum non-finite), renormalised and square-rooted. Returns the number of
    invalid rows (packed as ψ = e_0, for the caller to report). Padding: classes ``≥ C`` get
    ψ = 0; samples past ``n`` and models past ``M`` get ψ = e_0, so a padded sample contributes
    BC = 1 and s = 0 between two padded rows, and padded models are never reported.
    """
    n_models, n_classes = raw.shape[0], raw.shape[2]
    n_blocks, n_spec, length = out.shape[1], out.shape[3], out.shape[4]
    scale = np.zeros(length)
    bad = 0
    for m in range(m0, m1):
        panel = out[m // TILE]
        row = m % TILE
        for k in range(n_blocks):
            block = panel[k, row]  # (C_spec, L), contiguous
            s0 = k * length
            lanes = max(0, min(length, n - s0)) if m < n_models else 0
            for lane in range(lanes):  # transpose the rows in, with their sums
                total = 0.0
                negative = 0
                for c in range(n_classes):
                    v = np.float64(raw[m, n0 + s0 + lane, c])
                    block[c, lane] = v
                    total += v
                    negative += v < 0.0
                valid = negative == 0 and abs(total - 1.0) <= tolerance
                scale[lane] = 1.0 / total if valid else 0.0
                bad += not valid
            for lane in range(lanes, length):
                scale[lane] = 0.0
            for c in range(n_classes):  # contiguous: vectorised square roots
                for lane in range(length):
                    v = block[c, lane] if lane < lanes else 0.0
                    block[c, lane] = math.sqrt(v * scale[lane])
            for c in range(n_classes, n_spec):
                for lane in range(length):
                    block[c, lane] = 0.0
            for lane in range(length):
                if scale[lane] == 0.0:  # padding or invalid row: e_0
                    block[0, lane] = 1.0
    return bad


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def pack_samples(raw, n0, n, out, m0, m1, tolerance):  # pragma: no cover - compiled
    """Fill models ``m0:m1`` of ``out`` (n, Mp, C), sample-major, with ψ of ``raw[:, n0:n0 + n]``.

    ``raw`` as in :func:`pack_blocks`. Models past ``M`` and invalid rows get ψ = e_0. Returns the
    number of invalid rows.
    """
    n_models, n_classes = raw.shape[0], raw.shape[2]
    bad = 0
    for m in range(m0, m1):
        for s in range(n):
            scale = _row_scale(raw, m, n0 + s, tolerance) if m < n_models else 0.0
            if scale == 0.0:
                bad += m < n_models
                for c in range(n_classes):
                    out[s, m, c] = 0.0
                out[s, m, 0] = 1.0
                continue
            for c in range(np.uint64(0), np.uint64(n_classes)):
                out[s, m, c] = math.sqrt(np.float64(raw[m, n0 + s, c]) * scale)
    return bad


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def pack_probabilities(raw, n0, n, out, m0, m1, tolerance, eps):  # pragma: no cover - compiled
    """Fill models ``m0:m1`` of ``out`` (2, M, n, C): renormalised P and ``log max(P, eps)``.

    ``raw`` as in :func:`pack_blocks`; ``out[0, m]`` holds the renormalised rows of model ``m``
    for the chunk's samples, ``out[1, m]`` their floored logarithms (the symmetrised KL, SPEC §3).
    Invalid rows are packed as e_0 (logarithm 0 at class 0, ``log eps`` elsewhere). Returns the
    number of invalid rows.
    """
    n_classes = raw.shape[2]
    log_eps = math.log(eps)
    bad = 0
    for m in range(m0, m1):
        for s in range(n):
            scale = _row_scale(raw, m, n0 + s, tolerance)
            if scale == 0.0:
                bad += 1
                for c in range(n_classes):
                    out[0, m, s, c] = 0.0
                    out[1, m, s, c] = log_eps
                out[0, m, s, 0] = 1.0
                out[1, m, s, 0] = 0.0
                continue
            for c in range(np.uint64(0), np.uint64(n_classes)):
                p = np.float64(raw[m, n0 + s, c]) * scale
                out[0, m, s, c] = p
                out[1, m, s, c] = math.log(max(p, eps))
    return bad


# ---------------------------------------------------------------------------------------------
# Small C: blocks layout, ROWS×COLS register tiles (generated in _kernels_pairwise_micro).
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def bc_products(A, B, groups, classes, eps, rescale, upper, mant, out):  # pragma: no cover
    """Multiply one chunk's ``max(BC_n, eps)`` into the running products of the pairs in ``groups``.

    ``A`` (Pa, n_blocks, TILE, C_spec, L) and ``B`` (Pb, ...) hold panels of TILE models.
    ``groups`` (G, 4) lists rectangles of panels ``[p0, p1) × [q0, q1)``; with ``upper`` only
    tiles ``p ≤ q`` are done, and on a diagonal tile only pairs above the diagonal are
    guaranteed. The product of a pair (a, b) is ``mant[a, b] · exp(out[a, b])``: ``mant``
    (Pa·TILE, Pb·TILE) starts at 1, and whenever it drops below ``2^-65`` it is multiplied by
    ``2^960`` (exactly) while ``960·log 2`` is taken off ``out`` (M, M'), so that the next block
    product (``≥ eps^L ≥ 2^-957``) cannot underflow. The caller adds ``log(mant)`` at the end.
    ``rescale`` False (floors below 2^-957): ``out`` gets one logarithm per block instead.

    Loop order: the block loop is outside the loop over the group's tiles, so that each panel's
    block (TILE × C_spec × L doubles) is reused by every tile of the group while in cache.
    """
    n_blocks = A.shape[1]
    n_rows, n_cols = out.shape
    for g in range(groups.shape[0]):
        p0, p1, q0, q1 = groups[g, 0], groups[g, 1], groups[g, 2], groups[g, 3]
        for k in range(n_blocks):
            for p in range(p0, p1):
                for q in range(max(p, q0) if upper else q0, q1):
                    i0, j0 = p * TILE, q * TILE
                    Ap, Bq = A[p], B[q]
                    diagonal = upper and p == q
                    # micro-tiles past the last real model are skipped
                    r_end = min(TILE, -(-(n_rows - i0) // ROWS) * ROWS)
                    c_end = min(TILE, -(-(n_cols - j0) // COLS) * COLS)
                    for r in range(0, r_end, ROWS):
                        for c in range(0, c_end, COLS):
                            if diagonal and c + COLS - 1 <= r:
                                continue
                            v = bc_block(Ap, Bq, r, c, k, classes, eps)
                            if rescale:
                                a, b = i0 + r, j0 + c
                                mant[a, b] *= v[0]
                                mant[a, b + 1] *= v[1]
                                mant[a, b + 2] *= v[2]
                                mant[a + 1, b] *= v[3]
                                mant[a + 1, b + 1] *= v[4]
                                mant[a + 1, b + 2] *= v[5]
                                mant[a + 2, b] *= v[6]
                                mant[a + 2, b + 1] *= v[7]
                                mant[a + 2, b + 2] *= v[8]
                                mant[a + 3, b] *= v[9]
                                mant[a + 3, b + 1] *= v[10]
                                mant[a + 3, b + 2] *= v[11]
                            else:
                                for x in range(ROWS * COLS):
                                    a, b = i0 + r + x // COLS, j0 + c + x % COLS
                                    if a < n_rows and b < n_cols:
                                        out[a, b] += math.log(v[x])
                    if rescale:
                        for a in range(i0, i0 + min(TILE, n_rows - i0)):
                            for b in range(j0, j0 + min(TILE, n_cols - j0)):
                                small = mant[a, b] < _SMALLEST_KEPT
                                mant[a, b] *= 1.0 + small * (_RESCALE - 1.0)
                                out[a, b] -= small * _LOG_RESCALE


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def chord_sums(A, B, groups, classes, geodesic, upper, out):  # pragma: no cover - compiled
    """``out[a, b] += Σ_n s_n(a, b)`` (or ``θ_n²`` if ``geodesic``) over one chunk (blocks).

    Same panels, groups and loop order as :func:`bc_products`.
    """
    n_blocks = A.shape[1]
    n_rows, n_cols = out.shape
    for g in range(groups.shape[0]):
        p0, p1, q0, q1 = groups[g, 0], groups[g, 1], groups[g, 2], groups[g, 3]
        for k in range(n_blocks):
            for p in range(p0, p1):
                for q in range(max(p, q0) if upper else q0, q1):
                    i0, j0 = p * TILE, q * TILE
                    Ap, Bq = A[p], B[q]
                    diagonal = upper and p == q
                    rows, cols = min(TILE, n_rows - i0), min(TILE, n_cols - j0)
                    r_end = -(-rows // ROWS) * ROWS
                    c_end = -(-cols // COLS) * COLS
                    for r in range(0, r_end, ROWS):
                        for c in range(0, c_end, COLS):
                            if diagonal and c + COLS - 1 <= r:
                                continue
                            v = chord_block(Ap, Bq, r, c, k, classes, geodesic)
                            for x in range(ROWS * COLS):
                                a, b = r + x // COLS, c + x % COLS
                                if a < rows and b < cols:
                                    out[i0 + a, j0 + b] += v[x]
