"""Numba kernels of ``pairwise_distances`` for few classes (C ≤ 32), and chunk packing.

Called only through ``pairwise.py``. The work is M·M'·N·C multiply-adds; for small C the loop over
classes is too short to vectorise, so these kernels vectorise over samples:

* **Blocks layout.** A chunk is packed as ``(Mp/TILE, n_blocks, TILE, C_spec, L)`` square roots:
  panels of TILE models, blocks of ``L`` samples, class-major inside a block, so that the innermost
  loop runs over samples (8 per AVX-512 instruction) and one block of a panel is contiguous.
  ``C_spec`` is the next of ``SMALL_CLASS_SIZES`` (zero-padded classes change no inner product and
  no chord), which bounds the compiled specialisations; ``_kernels_pairwise_micro`` generates the
  3×3 register-tiled micro-kernels (``ROWS × COLS``) with the class loop written out (6 vector
  loads per 9 multiply-adds).
* **Cache blocking.** A task is a rectangle of panels; for each block of samples it visits all of
  its TILE×TILE tiles, so a panel's block is reused by every tile of the rectangle while it is in
  cache (16×16-panel rectangles were the fastest measured; docs/performance.md).
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
from numba import types
from numba.extending import overload

from taskspace.geometry._kernels_pairwise_micro import (
    COLS,
    ROWS,
    bc_block,
    bc_block_logs,
    chord_block,
)
from taskspace.geometry._numba_target import vector_registers
from taskspace.geometry._prefetch import prefetch

#: SHA-256 (first 16 hex digits) of the files whose numba code is compiled into this module's
#: cached kernels. Numba invalidates a cache by the caller's file alone, so an edit there would run
#: stale machine code; tests/test_numba_cache.py fails until the digest here is updated, and that
#: edit of this file is what invalidates the cache.
CALLEE_DIGESTS = {
    "_kernels_pairwise_micro.py": "0b832379c2f2a9e3",
    "_prefetch.py": "769d2bc8ca2a5c0b",
}

#: Class counts with a compiled "blocks" kernel; C is zero-padded up to the next one.
SMALL_CLASS_SIZES = (4, 8, 10, 12, 16, 24, 32)
#: Models per panel: a tile of TILE×TILE pairs is one task (a multiple of ROWS and COLS).
TILE = 48
#: Columns of a tile done together for every row of it: their block (L1_COLUMNS × C_spec × L
#: doubles, 30 KiB at C_spec = 10, L = 32) stays in L1 while the rows stream past. Row by row
#: over the whole tile, each micro-tile read its COLS rows of B from L2 (123 KiB a tile), which
#: bound the kernel by L2 bandwidth, not by the multiply-adds.
L1_COLUMNS = 12
#: Largest block of samples multiplied before a rescale or a logarithm.
MAX_BLOCK = 32

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

    Same test as ``validation._row_status`` (finite, ≥ 0, sum within ``tolerance`` of 1), in one
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


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def pack_blocks(raw, n0, n, out, m0, m1, tolerance):  # pragma: no cover - compiled
    """Fill models ``m0:m1`` of ``out`` (Mp/TILE, n_blocks, TILE, C_spec, L) with ψ of a chunk.

    The chunk is ``raw[:, n0:n0 + n]`` (``raw`` C-contiguous (M, ≥ n0 + n, C), so the compiled
    code knows its strides); model ``m`` goes to panel ``m // TILE``, row ``m % TILE``. Rows are
    validated as ``validation._row_status`` does (finite, ≥ 0, sum within ``tolerance`` of 1: a
    NaN or inf makes the sum non-finite), renormalised and square-rooted:
    ``ψ = root(p)·sqrt(1/row sum)``, the root by :func:`root_as` (float32 input: the refined
    float32 root, faster packing; docs/performance.md). Returns the number of invalid rows
    (packed as ψ = e_0, for the caller to report). Padding: classes ``≥ C`` get ψ = 0; samples
    past ``n`` and models past ``M`` get ψ = e_0, so a padded sample contributes BC = 1 and s = 0
    between two padded rows, and padded models are never reported.

    Each block is transposed in with its row sums (its L rows of C classes are contiguous in
    ``raw``), then rooted class by class (vectorised over the block's samples). Loop indices are
    unsigned: no negative-index fix-ups in the transposing loop.
    """
    n_models, n_classes = raw.shape[0], raw.shape[2]
    n_blocks, n_spec, length = out.shape[1], out.shape[3], out.shape[4]
    root = np.zeros(length)
    u0, u_classes, u_length = np.uint64(0), np.uint64(n_classes), np.uint64(length)
    bad = 0
    if raw.size == 0:
        return bad
    like = raw[0, 0, 0]  # its type chooses the square root
    for m in range(m0, m1):
        panel = out[m // TILE]
        row = m % TILE
        for k in range(n_blocks):
            block = panel[k, row]  # (C_spec, L), contiguous
            s0 = k * length
            lanes = max(0, min(length, n - s0)) if m < n_models else 0
            if lanes > 0:
                rows = raw[m, n0 + s0 : n0 + s0 + lanes]  # (lanes, C), contiguous
                for lane in range(u0, np.uint64(lanes)):  # transpose the rows in, with sums
                    sum_ = 0.0
                    negatives = 0
                    for c in range(u0, u_classes):
                        v = np.float64(rows[lane, c])
                        block[c, lane] = v
                        sum_ += v
                        negatives += v < 0.0
                    valid = negatives == 0 and abs(sum_ - 1.0) <= tolerance
                    root[lane] = math.sqrt(1.0 / sum_) if valid else 0.0
                    bad += not valid
            for lane in range(lanes, length):
                root[lane] = 0.0
                for c in range(n_classes):
                    block[c, lane] = 0.0
            for c in range(u0, u_classes):  # contiguous: vectorised square roots
                for lane in range(u0, u_length):
                    block[c, lane] = root_as(block[c, lane], like) * root[lane]
            for c in range(n_classes, n_spec):
                for lane in range(length):
                    block[c, lane] = 0.0
            for lane in range(length):
                if root[lane] == 0.0:  # padding or invalid row: e_0
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


@numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
def sqrt_refined(x):  # pragma: no cover - compiled
    """``sqrt(x)`` for ``0 ≤ x ≤ ~1`` (float64) from a float32 root and one Newton step.

    ``y0 = sqrtf(x·2^100)·2^-50`` and ``r ≈ 1/y0`` are float32 operations (16 lanes an AVX-512
    instruction, against 8 for a float64 square root, at a fraction of its cost); the step
    ``y0 + r·(x − y0²)/2`` in float64 squares their relative error (~6e-8): the result is within
    ~1e-14 relative of ``sqrt(x)`` (measured 3.5e-15 on softmax outputs). The 2^100 scaling
    keeps ``x`` down to 2^-226 a normal float32 — every float32 value, so :func:`root_as` uses
    it for float32 input only (a float64 probability of 1e-300 would lose its digits). ``x = 0``
    gives 0.
    """
    s32 = math.sqrt(np.float32(x * 1.2676506002282294e30))  # 2^100
    r = np.float64(np.float32(1.0) / max(s32, np.float32(1e-30))) * 1.125899906842624e15  # 2^50
    y = np.float64(s32) * 8.881784197001252e-16  # 2^-50
    return y + (0.5 * r) * (x - y * y)


def root_as(x, like):
    """``sqrt(x)`` for a float64 ``x`` that holds a value of ``like``'s type: :func:`sqrt_refined`
    if ``like`` is float32 (``x`` is then exactly a float32 value) and the target has AVX-512,
    ``math.sqrt`` otherwise (compiled only: an overload chooses by type and target).

    The refined root pays where a float32 square root does 16 lanes an instruction (AVX-512); with
    AVX2 the float64 root was faster (docs/performance.md). The target's features are
    part of Numba's cache key, so a cached build never runs on the other kind of target.
    """
    raise NotImplementedError("compiled only (numba overload)")


@overload(root_as, inline="always")
def _root_as_overload(x, like):
    if like == types.float32 and vector_registers() >= 32:
        return lambda x, like: sqrt_refined(x)
    return lambda x, like: math.sqrt(x)


def psi_entry(value, scale, root, like):
    """One packed square root ψ = sqrt(value·scale), in the type of ``like`` (compiled only).

    float64 ``like``: the root of ``value`` by :func:`root_as`, times ``root = sqrt(scale)``;
    float32 ``like`` (``precision="float32"``): ``sqrt(float32(value)·float32(scale))``, all in
    float32 (twice the lanes of float64; ≤ 1 ulp, within the mode's C·2⁻²⁴ bound), faster than
    renormalising in float64 and rounding before the root (docs/performance.md).
    """
    raise NotImplementedError("compiled only (numba overload)")


@overload(psi_entry, inline="always")
def _psi_entry_overload(value, scale, root, like):
    if like == types.float32:
        return lambda value, scale, root, like: math.sqrt(np.float32(value) * np.float32(scale))
    return lambda value, scale, root, like: root_as(np.float64(value), value) * root


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def pack_sample(raw, s, out, tolerance):  # pragma: no cover - compiled
    """Fill ``out`` (M, C), float64 or float32, with ψ of sample ``s`` of ``raw`` (M, ≥ s + 1, C).

    Rows are validated as in :func:`pack_blocks`; an invalid row is packed as e_0 and counted.
    Returns the number of invalid rows. One sample's ψ (M·C values) is meant to stay in cache
    for the Gram matrix that follows (``_pairwise_blas``). Entries by :func:`psi_entry`: for
    float64 ``out`` ``ψ = sqrt(p)·sqrt(1/row sum)``, the first root by :func:`root_as` (for
    float32 input faster packing than float64 square roots; docs/performance.md).
    """
    n_models, n_classes = raw.shape[0], raw.shape[2]
    model_stride = raw.shape[1] * n_classes  # elements from one model's row to the next's
    line = max(1, 64 // raw.itemsize)
    bad = 0
    for m in range(n_models):
        # The next model's row, one row ahead (docs/performance.md): it starts a new page,
        # where the hardware prefetchers would wait for misses before streaming.
        ahead = (m + 1) * model_stride + s * n_classes
        for offset in range(0, n_classes, line):
            prefetch(raw, ahead + offset)
        scale = _row_scale(raw, m, s, tolerance)
        if scale == 0.0:
            bad += 1
            for c in range(n_classes):
                out[m, c] = 0.0
            out[m, 0] = 1.0
            continue
        root = math.sqrt(scale)
        like = out[m, 0]
        for c in range(np.uint64(0), np.uint64(n_classes)):
            out[m, c] = psi_entry(raw[m, s, c], scale, root, like)
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


@numba.njit(inline="always")
def _rows_view(A):  # pragma: no cover - compiled
    """The blocks layout ``(P, n_blocks, TILE, C_spec, L)`` as 2-D ``(P·n_blocks·TILE, C_spec·L)``:
    row ``(p·n_blocks + k)·TILE + t`` is block ``k`` of model ``t`` of panel ``p``."""
    return A.reshape(A.shape[0] * A.shape[1] * A.shape[2], A.shape[3] * A.shape[4])


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def bc_products(A, B, groups, classes, lanes, eps, rescale, upper, mant, out):  # pragma: no cover
    """Multiply one chunk's ``max(BC_n, eps)`` into the running products of the pairs in ``groups``.

    ``A`` (Pa, n_blocks, TILE, C_spec, L) and ``B`` (Pb, ...) hold panels of TILE models;
    ``classes`` and ``lanes`` are tuples of lengths C_spec and L (compile-time constants).
    ``groups`` (G, 4) lists rectangles of panels ``[p0, p1) × [q0, q1)``; with ``upper`` only
    tiles ``p ≤ q`` are done, and on a diagonal tile only pairs above the diagonal are
    guaranteed. The product of a pair (a, b) is ``mant[a, b] · exp(out[a, b])``: ``mant``
    (Pa·TILE, Pb·TILE) starts at 1, and whenever it drops below ``2^-65`` it is multiplied by
    ``2^960`` (exactly) while ``960·log 2`` is taken off ``out`` (M, M'), so that the next block
    product (``≥ eps^L ≥ 2^-957``) cannot underflow; the micro-kernel does it as it multiplies
    (a pass over the tile after every block cost 13% of the call, reading ``out`` from memory).
    The caller adds ``log(mant)`` at the end.
    ``rescale`` False (floors below 2^-957): ``out`` gets one logarithm per block instead.

    Loop order: the block loop is outside the loop over the group's tiles, so that each panel's
    block (TILE × C_spec × L doubles) is reused by every tile of the group while in cache.
    """
    n_blocks = A.shape[1]
    n_rows, n_cols = out.shape
    A2, B2 = _rows_view(A), _rows_view(B)
    for g in range(groups.shape[0]):
        p0, p1, q0, q1 = groups[g, 0], groups[g, 1], groups[g, 2], groups[g, 3]
        for k in range(n_blocks):
            for p in range(p0, p1):
                for q in range(max(p, q0) if upper else q0, q1):
                    i0, j0 = p * TILE, q * TILE
                    ra0, rb0 = (p * n_blocks + k) * TILE, (q * n_blocks + k) * TILE
                    diagonal = upper and p == q
                    # micro-tiles past the last real model are skipped
                    r_end = min(TILE, -(-(n_rows - i0) // ROWS) * ROWS)
                    c_end = min(TILE, -(-(n_cols - j0) // COLS) * COLS)
                    for c0 in range(0, c_end, L1_COLUMNS):
                        for r in range(0, r_end, ROWS):
                            for c in range(c0, min(c0 + L1_COLUMNS, c_end), COLS):
                                if diagonal and c + COLS - 1 <= r:
                                    continue
                                if rescale:
                                    bc_block(
                                        A2,
                                        B2,
                                        ra0 + r,
                                        rb0 + c,
                                        classes,
                                        lanes,
                                        eps,
                                        mant,
                                        out,
                                        i0 + r,
                                        j0 + c,
                                    )
                                else:
                                    bc_block_logs(
                                        A2,
                                        B2,
                                        ra0 + r,
                                        rb0 + c,
                                        classes,
                                        lanes,
                                        eps,
                                        out,
                                        i0 + r,
                                        j0 + c,
                                    )


@numba.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def chord_sums(A, B, groups, classes, lanes, geodesic, upper, out):  # pragma: no cover - compiled
    """``out[a, b] += Σ_n s_n(a, b)`` (or ``θ_n²`` if ``geodesic``) over one chunk (blocks).

    Same panels, groups and loop order as :func:`bc_products`.
    """
    n_blocks = A.shape[1]
    n_rows, n_cols = out.shape
    A2, B2 = _rows_view(A), _rows_view(B)
    for g in range(groups.shape[0]):
        p0, p1, q0, q1 = groups[g, 0], groups[g, 1], groups[g, 2], groups[g, 3]
        for k in range(n_blocks):
            for p in range(p0, p1):
                for q in range(max(p, q0) if upper else q0, q1):
                    i0, j0 = p * TILE, q * TILE
                    ra0, rb0 = (p * n_blocks + k) * TILE, (q * n_blocks + k) * TILE
                    diagonal = upper and p == q
                    rows, cols = min(TILE, n_rows - i0), min(TILE, n_cols - j0)
                    r_end = -(-rows // ROWS) * ROWS
                    c_end = -(-cols // COLS) * COLS
                    for c0 in range(0, c_end, L1_COLUMNS):
                        for r in range(0, r_end, ROWS):
                            for c in range(c0, min(c0 + L1_COLUMNS, c_end), COLS):
                                if diagonal and c + COLS - 1 <= r:
                                    continue
                                chord_block(
                                    A2,
                                    B2,
                                    ra0 + r,
                                    rb0 + c,
                                    classes,
                                    lanes,
                                    geodesic,
                                    out,
                                    i0 + r,
                                    j0 + c,
                                )
