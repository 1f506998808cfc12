"""Readers of chunks of samples into buffers, for ``_pairwise_stream``: shared memmaps with
``preadv`` (no mapped pages), inputs that fill a buffer themselves (``read_into``), and the
threads that read one chunk ahead."""

from __future__ import annotations

import mmap
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_LOCK = threading.Lock()


def release_pages(X) -> None:
    """Drop the pages of a memory-mapped ``X`` from this process after a chunk has been read.

    Pages of a mapped file stay in the process (and count in its resident size) once touched:
    streaming a 2 GB memmap would end with 2 GB resident. ``MADV_DONTNEED`` on a shared mapping
    only unmaps them (the page cache keeps them). Copy-on-write maps (mode "c") are left alone:
    there it would discard the user's in-memory edits.
    """
    advice = getattr(mmap, "MADV_DONTNEED", None)
    obj = X
    while obj is not None and advice is not None:
        if isinstance(obj, np.memmap):
            handle = getattr(obj, "_mmap", None)
            if handle is not None and getattr(obj, "mode", "c") != "c":
                try:
                    handle.madvise(advice)
                except (OSError, ValueError):  # closed map or platform refusal: only a cost
                    pass
            return
        obj = getattr(obj, "base", None)


#: Threads that read chunks ahead (``ChunkPacker``): one per input of a call, X and Y.
PREFETCH_THREADS = 2
_PREFETCH: dict[int, ThreadPoolExecutor] = {}


def prefetch_pool() -> ThreadPoolExecutor:
    """This process's pool of prefetching threads (made after a fork too)."""
    with _LOCK:
        pool = _PREFETCH.get(os.getpid())
        if pool is None:
            pool = _PREFETCH[os.getpid()] = ThreadPoolExecutor(
                PREFETCH_THREADS, thread_name_prefix="taskspace-prefetch"
            )
    return pool


class IntoChunks:
    """Chunks of an input that fills a caller's buffer itself: ``X.read_into(n0, n1, out)``
    writes ``X[:, n0:n1]`` into ``out[:, :n1 - n0]`` (C-contiguous), converting float16 to
    the float32 ``out`` on the way (a store collection: its chunks go from their files into
    ``out``, verified)."""

    converts = True

    def __init__(self, X):
        self.X = X

    @classmethod
    def open(cls, X) -> IntoChunks | None:
        if callable(getattr(X, "read_into", None)) and len(getattr(X, "shape", ())) == 3:
            return cls(X)
        return None

    def read(self, n0: int, n1: int, out: np.ndarray) -> None:
        self.X.read_into(n0, n1, out)

    def close(self) -> None:
        pass


class FileChunks:
    """Chunks ``X[:, n0:n1]`` of a ``numpy.memmap`` read with ``preadv``, without mapping pages.

    Reading through the mapping would leave every touched page resident (and, with the kernel's
    readahead around each fault, most of the file after every chunk of a strided read): a 2 GB
    memmap streamed by chunks of samples peaked at 2.3 GB. Plain reads go through the page cache
    only. Used for shared maps (modes "r", "r+", "w+": coherent with the file) whose rows of
    samples are contiguous; copy-on-write maps may hold private edits and are read as arrays.
    """

    converts = False

    def __init__(self, X, fd: int, start: int):
        self.X, self.fd, self.start = X, fd, start

    @classmethod
    def open(cls, X) -> FileChunks | None:
        if not isinstance(X, np.memmap) or not hasattr(os, "preadv") or X.ndim != 3:
            return None
        handle, filename = getattr(X, "_mmap", None), getattr(X, "filename", None)
        if handle is None or filename is None or getattr(X, "mode", "c") == "c":
            return None
        itemsize = X.dtype.itemsize
        if X.strides[2] != itemsize or X.strides[1] != X.shape[2] * itemsize or X.strides[0] < 0:
            return None
        try:
            mapped = np.frombuffer(handle, dtype=np.uint8)
            # file position of X[0, 0, 0]: the map starts at the offset rounded down to the
            # allocation granularity, and X may be a view into it
            start = X.offset - X.offset % mmap.ALLOCATIONGRANULARITY
            start += X.ctypes.data - mapped.ctypes.data
            del mapped
            fd = os.open(filename, os.O_RDONLY)
        except (OSError, ValueError, TypeError, BufferError):
            return None
        return cls(X, fd, start)

    def read(self, n0: int, n1: int, out: np.ndarray) -> None:
        """Fill ``out`` (M, ≥ n1 − n0, C), X's dtype, C-contiguous, with ``X[:, n0:n1]``."""
        stride_m, stride_n = self.X.strides[0], self.X.strides[1]
        for m in range(self.X.shape[0]):
            view = memoryview(out[m, : n1 - n0]).cast("B")
            position = self.start + m * stride_m + n0 * stride_n
            while len(view):
                got = os.preadv(self.fd, [view], position)
                if got <= 0:
                    raise OSError(f"short read from {self.X.filename}")
                view, position = view[got:], position + got

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    __del__ = close
