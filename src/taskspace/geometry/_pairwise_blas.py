"""Gram and BLAS paths of ``pairwise_distances``: per-sample Gram matrices (d_B, many classes)
and one matrix product per chunk (the symmetrised KL).

Called only through ``pairwise.py``; chunks are read, validated and packed by
``_pairwise_stream`` exactly as for the Numba kernels.

* **d_B for many classes.** For one sample the coefficients of all pairs are a Gram matrix,
  ``BC_n = Ψ_n Ψ_nᵀ`` with ``Ψ_n`` the (M, C) square roots: its upper triangle (one collection)
  or the whole ``Ψ_n Φ_nᵀ`` (two) comes, with AVX-512's 32 vector registers, from
  ``_kernels_gram.gram``, a Numba kernel faster than OpenBLAS's ``syrk``/``gemm`` at these shapes;
  with 16 (AVX2) from BLAS itself, faster there than any register tile Numba compiled
  (``gram_kernel``; docs/performance.md). BLAS then
  runs single-threaded inside each of our threads, for the duration of the call, which
  threadpoolctl can arrange only from the main thread: other callers get the Numba kernel.
  Our threads split the samples of a chunk, each with its own running products and sums, as the
  rows kernels do. Each thread validates and square-roots its samples itself, a few at a time
  into a buffer that stays in its cache (``PACKED_BYTES``), right before their Gram matrices:
  packing a whole chunk first wrote 8 bytes per float32 input entry to memory and read them
  back, which at C = 1000 made the memory traffic, not the multiply-adds, the cost
  (docs/decisions.md).
  Floored coefficients are multiplied over up to ``log_block_length(eps)`` samples
  (``eps^L ≥ 2^-1022``: the product stays a normal float) and then logged, as in the rows
  kernels. ``precision="float32"``: square roots and their products in float32 (16 lanes a
  vector instead of 8), floors, products, logarithms and sums in float64.
* **Symmetrised KL.** ``Σ_n ½ Σ_c (p_a − p_b)(l_a − l_b)`` with ``l = log max(p, eps)`` is
  bilinear: ``h_a + h_b − <p_a, l_b> − <p_b, l_a>`` with ``h_a = Σ p_a l_a``, summed over the
  samples and classes of a chunk at once, so one ``gemm`` of (M, n·C) by (n·C, M') per chunk
  does all the work. The cancellation costs ~1e-16 × (the terms' size, ≤ |log eps| per sample)
  in absolute error: far inside the 1e-9 contract, and the result is clipped at 0.
"""

from __future__ import annotations

import contextlib
import math
import threading

import numba
import numpy as np

from taskspace.geometry import _kernels_gram as KG
from taskspace.geometry import _kernels_pairwise as K
from taskspace.geometry._numba_target import vector_registers
from taskspace.geometry._pairwise_stream import (
    ALIGNMENT,
    aligned_empty,
    n_threads,
    packed_chunks,
    padded,
    raw_chunks,
    run_parts,
    split_range,
)
from taskspace.geometry.validation import ROW_SUM_TOLERANCE

#: Samples packed and multiplied per batch ...
GRAM_BATCH = 16
#: ... as long as their packed square roots fit this many bytes (a core's share of L2).
PACKED_BYTES = 2**20


@numba.njit(cache=True, nogil=True, error_model="numpy")
def fold_coefficients(G, k, state, count, length, eps, upper, out):  # pragma: no cover
    """Multiply ``max(G[t], eps)``, t < k, into ``state``; every ``length`` factors add the log.

    ``G`` (≥ k, M, M') holds per-sample coefficients (float32 or float64); ``state`` (M, M') the
    running products (float64), ``count`` the factors already in them. When ``count`` reaches
    ``length`` the logarithms go into ``out`` (M, M') and ``state`` restarts at 1. With ``upper``
    only pairs on or above the diagonal are done. Returns the new ``count``.
    """
    m, m_y = out.shape
    for t in range(k):
        for i in range(m):
            for j in range(i if upper else 0, m_y):
                state[i, j] *= max(np.float64(G[t, i, j]), eps)
        count += 1
        if count == length:
            flush_logs(state, upper, out)
            count = 0
    return count


@numba.njit(cache=True, nogil=True, error_model="numpy")
def flush_logs(state, upper, out):  # pragma: no cover - compiled
    """``out += log(state)`` and ``state = 1`` (pairs on or above the diagonal with ``upper``)."""
    m, m_y = out.shape
    for i in range(m):
        for j in range(i if upper else 0, m_y):
            out[i, j] += math.log(state[i, j])
            state[i, j] = 1.0


def gram_kernel() -> str:
    """Which code computes the per-sample Gram matrices here: ``"numba"`` or ``"blas"``.

    ``_kernels_gram``'s 4 × 4 tile holds 16 inner products and 8 loaded vectors: it fits
    AVX-512's 32 vector registers, and there beat OpenBLAS. With AVX2's 16 every tile Numba
    compiled spilled, and OpenBLAS's hand-written kernel was faster (docs/performance.md) — but
    only while BLAS runs on one thread
    inside each of ours, and threadpoolctl's limit reaches OpenBLAS's threads only when it is
    set from the main thread (called from another thread, as on a Dask worker, the BLAS path
    took twice as long: oversubscribed). So BLAS only for calls from the main thread — or from
    any thread where BLAS already runs on one thread (a Dask worker: its nanny sets
    ``OPENBLAS_NUM_THREADS=1``).
    """
    if vector_registers() >= 32:
        return "numba"
    if threading.current_thread() is threading.main_thread() or _blas_single_threaded():
        return "blas"
    return "numba"


def _blas_single_threaded() -> bool:
    """Whether every BLAS library loaded runs on one thread (as threadpoolctl reads it)."""
    from threadpoolctl import threadpool_info  # only needed here: imported lazily

    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    return bool(pools) and all(pool["num_threads"] == 1 for pool in pools)


def blas_gram(P, Q, upper, G):
    """``G = P Qᵀ`` by BLAS (``syrk`` when ``Q is P``; then all of ``G`` is exact, not only the
    upper triangle). Arguments as :func:`_kernels_gram.gram`'s."""
    np.matmul(P, Q.T, out=G)


def gram_sums(
    X, Y, eps, chunk_size, progress, sums, dtype=np.float64, kernel: str | None = None
) -> None:
    """``sums += Σ_n log max(BC_n, eps)`` from per-sample Gram matrices (``dtype`` products).

    With ``Y`` None only the upper triangle (diagonal included) of ``sums`` is meaningful.
    Chunks are read unpacked; each thread validates and packs the square roots of a few samples
    into its own buffer (sized to stay in cache) just before their Gram matrices, so the packed
    values are never written to and read back from memory (at C = 1000 a packed chunk is 8× the
    float32 input it comes from). The Gram matrices come from ``kernel`` (``"numba"`` or
    ``"blas"``; default :func:`gram_kernel`'s choice).
    """
    kernel = gram_kernel() if kernel is None else kernel
    product = KG.gram if kernel == "numba" else blas_gram
    m, m_y = sums.shape
    upper = Y is None
    length = K.log_block_length(eps)
    threads = n_threads()
    dtype = np.dtype(dtype)
    n_classes = int(X.shape[2])
    batch = max(
        1,
        min(GRAM_BATCH, PACKED_BYTES // ((m + (0 if upper else m_y)) * n_classes * dtype.itemsize)),
    )
    parts = [
        _GramPart(
            m, m_y, n_classes, batch, dtype, upper, product, sums if t == 0 else np.zeros_like(sums)
        )
        for t in range(threads)
    ]
    with _single_threaded_blas() if kernel == "blas" else contextlib.nullcontext():
        for n0, n1, chunks in raw_chunks(X, Y, chunk_size, progress=progress):
            ranges = split_range(n1 - n0, threads)
            sources = [(raw, start) for _, raw, start in chunks]
            bad = run_parts(
                _GramPart.add,
                [(parts[t], sources, s0, s1, eps, length) for t, (s0, s1) in enumerate(ranges)],
            )
            for index, (packer, raw, start) in enumerate(chunks):
                if any(b[index] for b in bad):
                    packer.fail(raw, start, n0, n1)
    for part in parts:
        part.finish()
        if part.out is not sums:
            sums += part.out


def _single_threaded_blas():
    """BLAS on one thread while our threads each call it (two owners of the same cores made a
    call on a loaded machine take minutes instead of seconds; docs/decisions.md)."""
    from threadpoolctl import threadpool_limits  # only needed here: imported lazily

    return threadpool_limits(limits=1, user_api="blas")


class _GramPart:
    """One thread's packing buffers, running products and sums over the samples it is given.

    The square roots of a sample are packed into (Mp, Cp) rows as ``_kernels_gram`` wants them:
    64-byte aligned, Mp a multiple of its tile, Cp of a vector; padding rows and columns stay 0.
    """

    def __init__(self, m, m_y, n_classes, batch, dtype, upper, product, out):
        self.upper, self.product = upper, product
        cp = padded(n_classes, ALIGNMENT // dtype.itemsize)
        sizes = [m] if upper else [m, m_y]
        self.psi = []
        for size in sizes:
            psi = aligned_empty((batch, padded(size, KG.TILE_ROWS), cp), dtype)
            psi[...] = 0.0
            self.psi.append(psi)
        self.state = np.ones((m, m_y))
        self.G = aligned_empty((batch, self.psi[0].shape[1], self.psi[-1].shape[1]), dtype)
        self.count = 0
        self.out = out

    def add(self, sources, s0, s1, eps, length):
        """Samples ``s0:s1`` of the chunk; returns the invalid-row count per source."""
        batch = self.G.shape[0]
        bad = [0] * len(sources)
        for t0 in range(s0, s1, batch):
            t1 = min(t0 + batch, s1)
            for index, ((raw, start), psi) in enumerate(zip(sources, self.psi, strict=True)):
                for t in range(t0, t1):
                    bad[index] += K.pack_sample(raw, start + t, psi[t - t0], ROW_SUM_TOLERANCE)
            for t in range(t1 - t0):
                self.product(self.psi[0][t], self.psi[-1][t], self.upper, self.G[t])
            self.count = fold_coefficients(
                self.G, t1 - t0, self.state, self.count, length, eps, self.upper, self.out
            )
        return bad

    def finish(self):
        if self.count:
            flush_logs(self.state, self.upper, self.out)
            self.count = 0


def kl_sums(X, Y, eps, chunk_size, progress, sums) -> None:
    """``sums = Σ_n Σ_c (p_a − p_b)(l_a − l_b)``, ``l = log max(p, eps)``, by one gemm per chunk.

    ``sums`` (M, M') starts at 0. With ``Y`` None only its strict upper triangle is meaningful
    (``pairwise.finish`` mirrors it).
    """
    m, m_y = sums.shape
    h_x = np.zeros(m)
    h_y = h_x if Y is None else np.zeros(m_y)
    cross = np.empty((m, m_y))
    for A, B in packed_chunks(X, Y, "probabilities", chunk_size, progress=progress, eps=eps):
        P, L = A[0].reshape(m, -1), A[1].reshape(m, -1)
        h_x += np.einsum("ij,ij->i", P, L)
        if Y is None:
            np.matmul(P, L.T, out=cross)  # <p_a, l_b>; <p_b, l_a> is its transpose
            sums -= cross
        else:
            Q, LQ = B[0].reshape(m_y, -1), B[1].reshape(m_y, -1)
            h_y += np.einsum("ij,ij->i", Q, LQ)
            np.matmul(P, LQ.T, out=cross)
            sums -= cross
            np.matmul(L, Q.T, out=cross)
            sums -= cross
    if Y is None:
        _add_transpose_upper(sums)
    sums += h_x[:, None]
    sums += h_y[None, :]


def _add_transpose_upper(S: np.ndarray, block: int = 256) -> None:
    """``S[i, j] += S[j, i]`` for i ≤ j, in place, block by block (no M × M temporary)."""
    m = S.shape[0]
    for i0 in range(0, m, block):
        i1 = min(i0 + block, m)
        S[i0:i1, i0:i1] = S[i0:i1, i0:i1] + S[i0:i1, i0:i1].T  # reads before it writes
        for j0 in range(i1, m, block):
            j1 = min(j0 + block, m)
            S[i0:i1, j0:j1] += S[j0:j1, i0:i1].T  # lower blocks are only read
