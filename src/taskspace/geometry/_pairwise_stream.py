"""Streaming support of ``pairwise_distances``: chunks of samples in, packed square roots out.

A collection ``(M, N, C)`` is read one chunk of samples at a time (``X[:, n0:n1]``), so that it may
be a ``numpy.memmap`` or a Zarr array larger than memory. Each chunk is validated (errors give the
index in the user's array), renormalised, square-rooted and written in the layout a kernel wants,
in one pass (``_kernels_pairwise.pack_*``). Buffers are reused from chunk to chunk: a fresh 100 MB
array per chunk costs more in page faults than the packing itself.

An input that is read into buffers (``_chunk_readers``: a shared ``numpy.memmap``, read with
``preadv``; anything with ``read_into(n0, n1, out)``, as a store collection) is read one chunk
ahead on a background thread, into the other of two buffers, while the kernels work on the
current one (`read_ahead_pays` says where).

The kernels are serial Numba functions that release the GIL; ``run_parts`` runs disjoint parts of
the work on a thread pool, taking parts from a queue as threads become free (cheaper to compile
than ``parallel=True``, and uneven parts balance themselves).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from taskspace.geometry import _kernels_pairwise as K
from taskspace.geometry._chunk_readers import FileChunks, IntoChunks, prefetch_pool, release_pages
from taskspace.geometry.callbacks import reporting
from taskspace.geometry.validation import ROW_SUM_TOLERANCE, check_rows

#: Bytes of chunk buffers (file read, conversion, packed square roots) that a default chunk uses.
MEMORY_BUDGET = 128 * 2**20

# One pool per (process, size), never shut down: callers in several threads (Dask workers) may ask
# for different sizes at once, and a pool inherited through fork() has no threads.
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def n_threads() -> int:
    """Threads to use: numba's setting (``numba.set_num_threads``, ``NUMBA_NUM_THREADS``)."""
    return max(1, int(numba.get_num_threads()))


#: Fewest threads at which a chunk is read ahead on a background thread. The kernels use every
#: thread, so on two cores the reader takes CPU from them; measured on an AMD EPYC with 2 cores
#: (pairwise d_B of a store collection, M = 300, N = 2,000, C = 1,000; docs/performance.md),
#: reading ahead was slower in one run (3.23-4.28 s against 3.09-3.42 s reading in turn) and
#: faster in the next (3.23-3.57 against 3.42-4.28): no clear winner, so it stays on everywhere
#: (1) until a measurement says otherwise. `benchmarks/bench_store_read.py` times both.
READ_AHEAD_MIN_THREADS = 1


def read_ahead_pays(threads: int) -> bool:
    """Whether to read the next chunk on a background thread while the kernels run on
    ``threads`` threads: from `READ_AHEAD_MIN_THREADS` on (see there)."""
    return threads >= READ_AHEAD_MIN_THREADS


def run_parts(kernel: Callable, parts: list[tuple]) -> list:
    """``kernel(*args)`` for every ``args`` in ``parts``, on up to ``n_threads()`` threads.

    Results in order. Parts are taken from a queue as threads become free, so uneven parts balance
    themselves.
    """
    workers = min(n_threads(), len(parts))
    if workers <= 1:
        return [kernel(*args) for args in parts]
    key = (os.getpid(), workers)
    with _POOL_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ThreadPoolExecutor(workers, thread_name_prefix="taskspace")
    futures = [pool.submit(kernel, *args) for args in parts]
    return [f.result() for f in futures]


def split_range(n: int, parts: int) -> list[tuple[int, int]]:
    """``[0, n)`` cut into ``parts`` near-equal consecutive ranges (fewer if ``n < parts``)."""
    edges = np.linspace(0, n, max(1, min(parts, n)) + 1).astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def chunk_bounds(n_samples: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    for n0 in range(0, n_samples, chunk_size):
        yield n0, min(n0 + chunk_size, n_samples)


def budget_chunk(
    bytes_per_sample: int, n_samples: int, multiple: int = 1, budget: int = MEMORY_BUDGET
) -> int:
    """Samples per chunk within ``budget`` bytes, rounded down to ``multiple`` when possible."""
    n = max(1, budget // max(1, bytes_per_sample))
    if n >= multiple:
        n -= n % multiple
    return min(n, n_samples)


#: A default chunk may grow past MEMORY_BUDGET, up to this many bytes of buffers, to hold whole
#: chunks of a chunked input (a store collection, a Zarr array): reading part of one of its
#: chunks decodes and verifies all of it, so 111-sample chunks of a store written in 262-sample
#: chunks decoded each one ~3 times (docs/performance.md). Counted are both buffers of a
#: prefetched input (this chunk and the next), which keeps the call under 1 GiB as the memmap
#: path is.
ALIGNED_BUDGET = 768 * 2**20


def sample_chunking(X) -> int | None:
    """Samples per chunk of a chunked (M, N, C) input (``X.chunks[1]``), None for others."""
    chunks = getattr(X, "chunks", None)
    if (
        isinstance(chunks, tuple)
        and len(chunks) == 3
        and isinstance(chunks[1], int | np.integer)
        and int(chunks[1]) > 1
    ):
        return int(chunks[1])
    return None


def aligned_chunk(n: int, sample_chunk: int | None, bytes_per_sample: int, n_samples: int) -> int:
    """The default chunk ``n`` fitted to the input's own chunks of ``sample_chunk`` samples: a
    multiple of them when ``n`` holds one, else one whole chunk when that fits
    ``ALIGNED_BUDGET``, else ``n`` as it is."""
    if sample_chunk is None or n >= n_samples:
        return n
    if n >= sample_chunk:
        return n - n % sample_chunk
    whole = min(sample_chunk, n_samples)
    return whole if whole * bytes_per_sample <= ALIGNED_BUDGET else n


#: Alignment of packed buffers: one AVX-512 vector, one cache line.
ALIGNMENT = 64


def aligned_empty(shape, dtype=np.float64, alignment: int = ALIGNMENT) -> np.ndarray:
    """An uninitialised C-contiguous array whose first element is ``alignment``-byte aligned.

    NumPy only guarantees 16 bytes (large arrays here start 16 or 32 bytes into a cache line),
    so every 64-byte vector load of a packed panel straddled two lines, which slowed the
    micro-kernels markedly (docs/performance.md).
    """
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(count * dtype.itemsize + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + count * dtype.itemsize].view(dtype).reshape(shape)


def padded(m: int, multiple: int) -> int:
    return -(-m // multiple) * multiple


class ChunkPacker:
    """Reads ``X[:, n0:n1]`` and packs its square roots; buffers are reused between chunks.

    layout "blocks": ``(Mp/TILE, ceil(n/L), TILE, C_spec, L)`` (panels of TILE models);
    "samples": ``(n, Mp, C)``; "probabilities": ``(2, M, n, C)``, the renormalised rows and their
    logarithms floored at ``eps`` (no square roots); "raw": nothing packed, the caller packs
    from :meth:`read` itself (``_pairwise_blas``, a few samples at a time, while in cache).
    ``Mp`` is M padded to a multiple of TILE (blocks) or of 12 (samples: the rows kernels' 4×3
    register tile); padding rows are e_0. Packed values are float64.
    """

    def __init__(
        self,
        name: str,
        X,
        layout: str,
        chunk: int,
        *,
        length: int = 1,
        classes: int | None = None,
        eps: float = 1e-9,
    ):
        self.name, self.X, self.layout = name, X, layout
        self.m, _, self.c = (int(s) for s in X.shape)
        multiple = {"blocks": K.TILE, "samples": 12}.get(layout, 1)
        self.mp = padded(self.m, multiple)
        self.chunk, self.length = chunk, length
        self.classes = classes or self.c
        self._extra = (eps,) if layout == "probabilities" else ()
        self._file = FileChunks.open(X) or IntoChunks.open(X)
        #: Read one chunk ahead (into a second set of buffers): only inputs read into buffers,
        #: and only with the threads `read_ahead_pays` asks for (today: any number).
        self.prefetch = self._file is not None and read_ahead_pays(n_threads())
        self._buffers: dict[tuple[str, int], np.ndarray] = {}
        self._out: dict[int, np.ndarray] = {}
        self._pending = None  # ((n0, n1), slot, future) of the chunk being read ahead
        self._slot = 1

    def bytes_per_sample(self) -> int:
        """Buffer bytes per sample of a chunk (file read, conversion — both twice when read
        ahead —, packed float64)."""
        dtype = np.dtype(self.X.dtype)
        native = dtype in (np.float32, np.float64)
        wide = dtype.itemsize if native else (4 if dtype == np.float16 else 8)
        if self._file is not None and self._file.converts:
            read, convert = wide, 0
        else:
            read = dtype.itemsize if self._file is not None else 0
            convert = 0 if native and (self._file is not None or self._in_place()) else wide
        slots = 2 if self.prefetch else 1
        packed = 0 if self.layout == "raw" else self.packed_bytes_per_sample()
        return self.m * self.c * (read + convert) * slots + packed

    def _in_place(self) -> bool:
        return isinstance(self.X, np.ndarray) and self.X.flags.c_contiguous

    def pack(self, raw: np.ndarray, start: int, n0: int, n1: int) -> np.ndarray:
        """Pack samples ``n0:n1``, read as ``raw[:, start:start + n1 - n0]`` (see :meth:`read`)."""
        n = n1 - n0
        out = self._buffer(n)
        kernel = {
            "blocks": K.pack_blocks,
            "samples": K.pack_samples,
            "probabilities": K.pack_probabilities,
        }[self.layout]
        parts = [
            (raw, start, n, out, a, b, ROW_SUM_TOLERANCE, *self._extra)
            for a, b in split_range(self.mp, n_threads())
        ]
        if sum(run_parts(kernel, parts)):
            self.fail(raw, start, n0, n1)
        return out

    def packed_bytes_per_sample(self) -> int:
        """Bytes of packed float64 values per sample (two arrays for "probabilities")."""
        return self.mp * self.classes * 8 * (2 if self._extra else 1)

    def close(self) -> None:
        self._drain()
        if self._file is not None:
            self._file.close()

    def _drain(self) -> None:
        """Wait for a chunk read ahead and not asked for (its buffer is about to be reused)."""
        if self._pending is not None:
            future, self._pending = self._pending[2], None
            try:
                future.result()
            except Exception:  # an error of a chunk nobody asked for: never served
                pass

    def fail(self, raw: np.ndarray, start: int, n0: int, n1: int) -> None:
        """Raise the error for an invalid row of the chunk ``raw[:, start:start + n1 - n0]``."""
        check_rows(self.name, raw[:, start : start + n1 - n0], offset=(0, n0))
        raise ValueError(f"`{self.name}` has an invalid row in samples [{n0}, {n1})")

    def read(
        self, n0: int, n1: int, following: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, int]:
        """``(raw, start)``: the chunk is ``raw[:, start:start + n1 - n0]``, raw a C-contiguous
        float32/float64 ndarray (X itself when it is one: no copy; else a reused buffer), valid
        until the next call. With ``following`` (the next chunk's samples) and :attr:`prefetch`,
        that chunk is read on a background thread meanwhile; its errors are raised when it is
        asked for."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == (n0, n1):
            self._slot = pending[1]
            result = pending[2].result()
        else:
            self._pending = pending
            self._drain()
            self._slot = 1 - self._slot if self.prefetch else 0
            result = self._load(n0, n1, self._slot)
        if following is not None and self.prefetch:
            slot = 1 - self._slot
            self._pending = (
                tuple(following),
                slot,
                prefetch_pool().submit(self._load, *following, slot),
            )
        return result

    def _load(self, n0: int, n1: int, slot: int) -> tuple[np.ndarray, int]:
        """:meth:`read` of one chunk into the buffers of ``slot``."""
        if self._file is not None:
            dtype = np.dtype(self.X.dtype)
            if self._file.converts and dtype not in (np.float32, np.float64):
                dtype = np.dtype(np.float32 if dtype == np.float16 else np.float64)
            block = self._scratch("file", dtype, slot)
            self._file.read(n0, n1, block)
            if block.dtype in (np.float32, np.float64):
                return block, 0
            block = block[:, : n1 - n0]
        else:
            X = self.X
            if (
                isinstance(X, np.ndarray)
                and X.dtype in (np.float32, np.float64)
                and X.flags.c_contiguous
            ):
                return X.view(np.ndarray), n0
            block = X[:, n0:n1]
        dtype = np.dtype(getattr(block, "dtype", np.float64))
        target = (
            dtype
            if dtype in (np.float32, np.float64)
            else (np.float32 if dtype == np.float16 else np.float64)
        )
        raw = self._scratch("convert", target, slot)
        np.copyto(raw[:, : n1 - n0], block, casting="unsafe")
        return raw, 0

    def _scratch(self, key: str, dtype, slot: int = 0) -> np.ndarray:
        """A reused (M, chunk, C) buffer; chunks fill its first samples."""
        buffer = self._buffers.get((key, slot))
        if buffer is None or buffer.dtype != dtype:
            buffer = self._buffers[(key, slot)] = np.empty(
                (self.m, self.chunk, self.c), dtype=dtype
            )
        return buffer

    def _buffer(self, n: int) -> np.ndarray:
        """The packed buffer for ``n`` samples (kept: the largest size and the last other one)."""
        if n not in self._out:
            if len(self._out) > 1:
                self._out.pop(min(self._out))
            if self.layout == "blocks":
                shape = (self.mp // K.TILE, -(-n // self.length), K.TILE, self.classes, self.length)
            elif self.layout == "samples":
                shape = (n, self.mp, self.c)
            else:
                shape = (2, self.m, n, self.c)
            self._out[n] = aligned_empty(shape)
        return self._out[n]


def packed_chunks(
    X,
    Y,
    layout: str,
    chunk_size: int | None,
    *,
    length: int = 1,
    classes: int | None = None,
    extra: int = 0,
    progress: bool = False,
    eps: float = 1e-9,
    packed_bytes: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(A, B)``, the packed chunks of ``X`` and ``Y`` (``B is A`` when ``Y`` is None).

    The chunk size is ``chunk_size`` or what fits ``MEMORY_BUDGET`` (packing buffers plus
    ``extra`` bytes per sample), rounded to a multiple of ``length``, then fitted to the input's
    own sample chunks (:func:`aligned_chunk`). With ``packed_bytes``, each
    chunk as read is packed and yielded in parts of at most that many packed bytes (a multiple
    of ``length`` samples, at least ``length``): a small packed buffer reused from part to part
    stays mapped, while a fresh 80 MB one cost more in page faults than the packing
    (docs/performance.md). Buffers are reused from one
    chunk to the next, so each chunk is valid until the next one is asked for. ``eps``:
    see :class:`ChunkPacker`.
    """
    for n0, n1, following, packers in _chunks(
        X, Y, layout, chunk_size, length, classes, extra, progress, eps
    ):
        step = n1 - n0
        if packed_bytes is not None:
            per_sample = max(p.packed_bytes_per_sample() for p in packers)
            step = min(step, max(length, packed_bytes // per_sample // length * length))
        reads = [p.read(n0, n1, following) for p in packers]
        for s0 in range(n0, n1, step):
            s1 = min(s0 + step, n1)
            parts = [
                p.pack(raw, start + s0 - n0, s0, s1)
                for p, (raw, start) in zip(packers, reads, strict=True)
            ]
            yield parts[0], parts[-1]
        for p in packers:
            release_pages(p.X)


def raw_chunks(
    X, Y, chunk_size: int | None, *, extra: int = 0, progress: bool = False
) -> Iterator[tuple[int, int, list[tuple[ChunkPacker, np.ndarray, int]]]]:
    """Yield ``(n0, n1, parts)``: per collection (``X``, then ``Y`` if given) its packer and the
    chunk as read, ``raw[:, start:start + n1 - n0]`` (float32/float64, C-contiguous), unpacked.

    For kernels that validate and pack a few samples at a time right before using them, so that
    the square roots never leave the cache (``_pairwise_blas``). An invalid row is reported with
    ``packer.fail(raw, start, n0, n1)``. Chunks as in :func:`packed_chunks`.
    """
    for n0, n1, following, packers in _chunks(
        X, Y, "raw", chunk_size, 1, None, extra, progress, 1e-9
    ):
        yield n0, n1, [(p, *p.read(n0, n1, following)) for p in packers]
        for p in packers:
            release_pages(p.X)


def _chunks(
    X, Y, layout, chunk_size, length, classes, extra, progress, eps
) -> Iterator[tuple[int, int, tuple[int, int] | None, list[ChunkPacker]]]:
    """The chunk loop shared by :func:`packed_chunks` and :func:`raw_chunks`: ``(n0, n1,
    following, packers)``, ``following`` the next chunk's samples (None for the last)."""
    n_samples = int(X.shape[1])
    names = [("X", X)] + ([] if Y is None else [("Y", Y)])
    packers = [
        ChunkPacker(name, A, layout, 1, length=length, classes=classes, eps=eps)
        for name, A in names
    ]
    try:
        chunk = chunk_size or _default_chunk(packers, X, length, extra, n_samples)
        for p in packers:
            p.chunk = chunk
        bounds = list(chunk_bounds(n_samples, chunk))
        with reporting(progress, n_samples, "pairwise distances (samples)") as bar:
            for k, (n0, n1) in enumerate(bounds):
                yield n0, n1, (bounds[k + 1] if k + 1 < len(bounds) else None), packers
                bar.advance(n1 - n0)
    finally:
        for p in packers:
            p.close()


def _default_chunk(packers: list[ChunkPacker], X, length: int, extra: int, n_samples: int) -> int:
    """The budget's chunk, fitted to the input's sample chunks; reading ahead (two buffers)
    only where it does not cut the input's chunks (:func:`prefetch_fits`), else one buffer."""

    def plan():
        per_sample = sum(p.bytes_per_sample() for p in packers) + extra
        return aligned_chunk(
            budget_chunk(per_sample, n_samples, length), sample_chunking(X), per_sample, n_samples
        )

    chunk = plan()
    if any(p.prefetch for p in packers) and not prefetch_fits(chunk, sample_chunking(X), n_samples):
        for p in packers:
            p.prefetch = False
        chunk = plan()
    return chunk


def prefetch_fits(chunk: int, sample_chunk: int | None, n_samples: int) -> bool:
    """Whether a chunk of ``chunk`` samples, planned with two buffers, still reads the input's
    own chunks of ``sample_chunk`` samples whole (re-decoding them would cost more than the
    overlap gains)."""
    return sample_chunk is None or chunk >= n_samples or chunk % sample_chunk == 0
