"""pairwise_distances reads an input that fills buffers itself (``read_into``: a store
collection) one chunk ahead, on another thread, into the other of two buffers."""

import threading

import numpy as np
import pytest

import taskspace as ts
from taskspace.geometry import _pairwise_stream as PS


class Into:
    """An (M, N, C) input read only through ``read_into``, recording each read's thread."""

    def __init__(self, X, fail_at=None):
        self.X, self.shape, self.dtype, self.ndim = X, X.shape, X.dtype, 3
        self.fail_at, self.reads = fail_at, []

    def __getitem__(self, key):
        raise AssertionError("read through read_into only")

    def read_into(self, n0, n1, out):
        self.reads.append((n0, n1, threading.current_thread().name))
        if self.fail_at is not None and n0 <= self.fail_at < n1:
            raise OSError(f"damaged samples [{n0}, {n1})")
        np.copyto(out[:, : n1 - n0], self.X[:, n0:n1], casting="unsafe")


@pytest.mark.parametrize(
    "n_classes, dtype", [(10, np.float32), (100, np.float16), (100, np.float32)]
)
def test_reads_ahead_on_another_thread(n_classes, dtype):
    X = np.random.default_rng(0).dirichlet(np.ones(n_classes), size=(9, 70)).astype(dtype)
    source = Into(X)
    got = ts.pairwise_distances(source, chunk_size=16)
    np.testing.assert_allclose(
        got,
        ts.pairwise_distances(X.astype(np.float64)),
        rtol=0,
        atol=1e-12 if dtype == np.float32 else 1e-9,
    )
    # Every chunk read once, in order; all but the first ahead of time, on the prefetch thread.
    assert [r[:2] for r in source.reads] == list(PS.chunk_bounds(70, 16))
    assert all(r[2].startswith("taskspace-prefetch") for r in source.reads[1:])
    assert source.reads[0][2] == threading.current_thread().name


def test_an_error_read_ahead_is_raised_when_its_chunk_is_asked_for():
    X = np.random.default_rng(1).dirichlet(np.ones(40), size=(5, 64))
    with pytest.raises(OSError, match=r"damaged samples \[32, 48\)"):
        ts.pairwise_distances(Into(X, fail_at=40), chunk_size=16)
    with pytest.raises(OSError, match=r"damaged samples \[32, 48\)"):
        ts.pairwise_distances(Into(X), Into(X, fail_at=40), chunk_size=16)


def test_buffers_alternate_and_an_unasked_chunk_is_waited_for():
    X = np.random.default_rng(2).dirichlet(np.ones(40), size=(4, 48)).astype(np.float32)
    packer = PS.ChunkPacker("X", Into(X), "raw", 16)
    a, _ = packer.read(0, 16, (16, 32))
    np.testing.assert_array_equal(a[:, :16], X[:, :16])
    b, _ = packer.read(16, 32, (32, 48))  # (32, 48) is now read into a's buffer
    assert a is not b
    np.testing.assert_array_equal(b[:, :16], X[:, 16:32])
    c, _ = packer.read(0, 16)  # not the chunk read ahead: it is awaited, then reused
    assert c is a and packer._pending is None
    np.testing.assert_array_equal(c[:, :16], X[:, :16])
    packer.close()


def test_read_ahead_only_where_it_keeps_the_inputs_chunks_whole(monkeypatch):
    assert PS.prefetch_fits(32, 16, 100) and PS.prefetch_fits(100, 16, 100)
    assert PS.prefetch_fits(7, None, 100)
    assert not PS.prefetch_fits(8, 16, 100)
    X = np.random.default_rng(3).dirichlet(np.ones(40), size=(6, 100)).astype(np.float32)
    source = Into(X)
    source.chunks = (1, 16, 40)
    packers = [PS.ChunkPacker("X", source, "raw", 1)]
    one_chunk = 16 * packers[0].bytes_per_sample()  # with two buffers
    # Two buffers of a whole input chunk do not fit, one does: read without prefetching.
    monkeypatch.setattr(PS, "budget_chunk", lambda *args, **kw: 5)
    monkeypatch.setattr(PS, "ALIGNED_BUDGET", one_chunk)
    assert PS._default_chunk(packers, source, 1, 0, 100) == 16 and packers[0].prefetch
    monkeypatch.setattr(PS, "ALIGNED_BUDGET", one_chunk // 2)
    assert PS._default_chunk(packers, source, 1, 0, 100) == 16
    assert not packers[0].prefetch


def test_below_the_read_ahead_threads_every_chunk_is_read_in_turn(monkeypatch):
    """`read_ahead_pays` off: the same distances, each chunk read on the caller's thread."""
    assert PS.read_ahead_pays(PS.READ_AHEAD_MIN_THREADS)
    assert not PS.read_ahead_pays(PS.READ_AHEAD_MIN_THREADS - 1)
    monkeypatch.setattr(PS, "READ_AHEAD_MIN_THREADS", 1 << 30)
    X = np.random.default_rng(3).dirichlet(np.ones(40), size=(6, 50)).astype(np.float32)
    source = Into(X)
    got = ts.pairwise_distances(source, chunk_size=16)
    np.testing.assert_allclose(got, ts.pairwise_distances(X.astype(np.float64)), atol=1e-12)
    assert [r[:2] for r in source.reads] == list(PS.chunk_bounds(50, 16))
    assert {r[2] for r in source.reads} == {threading.current_thread().name}
