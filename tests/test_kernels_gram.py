"""The Gram kernels of the many-class d_B path (Numba's and BLAS's) against NumPy's products,
and the choice between them."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskspace.geometry import _kernels_gram as KG
from taskspace.geometry import _pairwise_blas as PB
from taskspace.geometry._pairwise_stream import ALIGNMENT, aligned_empty, padded


def packed(rng, m, c, dtype):
    """Square roots of random rows in the kernel's layout: zero padding rows and columns."""
    P = aligned_empty(
        (padded(m, KG.TILE_ROWS), padded(c, ALIGNMENT // np.dtype(dtype).itemsize)), dtype
    )
    P[...] = 0.0
    P[:m, :c] = np.sqrt(rng.dirichlet(np.ones(c), size=m))
    return P


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(1, 40),
    m_y=st.integers(1, 40),
    c=st.integers(1, 1300),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_gram_matches_the_matrix_product(m, m_y, c, dtype, seed):
    rng = np.random.default_rng(seed)
    P, Q = packed(rng, m, c, dtype), packed(rng, m_y, c, dtype)
    tol = 1e-14 if dtype == np.float64 else 1e-6
    G = aligned_empty((P.shape[0], Q.shape[0]), dtype)
    KG.gram(P, Q, False, G)
    exact = P.astype(np.float64) @ Q.astype(np.float64).T
    np.testing.assert_allclose(G, exact, rtol=0, atol=tol)
    S = aligned_empty((P.shape[0], P.shape[0]), dtype)
    KG.gram(P, P, True, S)
    upper = np.triu_indices(m)
    exact = P.astype(np.float64) @ P.astype(np.float64).T
    np.testing.assert_allclose(S[:m, :m][upper], exact[:m, :m][upper], rtol=0, atol=tol)
    assert S.dtype == dtype


def test_gram_blocks_classes_exactly_once():
    """Classes beyond one block (and a partial last block) are all counted, once."""
    c = 2 * KG.CLASS_BLOCK + 40
    P = aligned_empty((8, padded(c, 8)))
    P[...] = 0.0
    P[:, :c] = 1.0  # each inner product counts the classes
    G = aligned_empty((8, 8))
    KG.gram(P, P, False, G)
    assert np.all(G == c)


def test_gram_overwrites_the_output():
    P = packed(np.random.default_rng(1), 12, 30, np.float64)
    G = aligned_empty((12, 12))
    G[...] = np.nan
    KG.gram(P, P, False, G)
    np.testing.assert_allclose(G, P @ P.T, rtol=0, atol=1e-15)


@pytest.fixture(params=["numba", "blas"])
def gram_kernel(request, monkeypatch):
    """Run the test through each Gram kernel, whichever this machine would choose."""
    monkeypatch.setattr(PB, "gram_kernel", lambda: request.param)
    return request.param


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gram_path_distances_match_the_formula(dtype, gram_kernel):
    """End to end: the many-class path through each Gram kernel, against SPEC §3 in float64."""
    import taskspace as ts

    rng = np.random.default_rng(2)
    X = rng.dirichlet(np.full(300, 0.3), size=(9, 40)).astype(dtype)
    S = np.sqrt(X.astype(np.float64) / X.astype(np.float64).sum(-1, keepdims=True))
    bc = np.einsum("anc,bnc->abn", S, S)
    exact = -np.mean(np.log(np.clip(bc, 1e-9, None)), axis=-1)
    np.fill_diagonal(exact, 0.0)
    np.testing.assert_allclose(ts.pairwise_distances(X), exact, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        ts.pairwise_distances(X, precision="float32"), exact, rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gram_path_between_two_collections(dtype, gram_kernel):
    """X against Y (the full Gram matrix, no symmetry) through the many-class path."""
    import taskspace as ts

    rng = np.random.default_rng(4)
    X = rng.dirichlet(np.full(130, 0.3), size=(7, 30)).astype(dtype)
    Y = rng.dirichlet(np.full(130, 0.3), size=(5, 30)).astype(dtype)
    SX, SY = (
        np.sqrt(A.astype(np.float64) / A.astype(np.float64).sum(-1, keepdims=True)) for A in (X, Y)
    )
    exact = -np.mean(np.log(np.clip(np.einsum("anc,bnc->abn", SX, SY), 1e-9, None)), axis=-1)
    np.testing.assert_allclose(ts.pairwise_distances(X, Y), exact, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        ts.pairwise_distances(X, Y, precision="float32"), exact, rtol=0, atol=1e-6
    )


@pytest.mark.parametrize(("registers", "kernel"), [(32, "numba"), (16, "blas")])
def test_gram_kernel_follows_the_register_file(registers, kernel, monkeypatch):
    """Numba's 4 × 4 tile where it fits in registers (AVX-512), BLAS where it spills (AVX2)."""
    monkeypatch.setattr(PB, "vector_registers", lambda: registers)
    assert PB.gram_kernel() == kernel


def test_blas_gram_only_for_calls_from_the_main_thread(monkeypatch):
    """threadpoolctl's limit reaches OpenBLAS's threads only when set from the main thread, so
    a call from any other thread (a Dask worker's) takes the Numba kernel, not oversubscribed
    BLAS."""
    import threading

    monkeypatch.setattr(PB, "vector_registers", lambda: 16)
    monkeypatch.setattr(PB, "_blas_single_threaded", lambda: False)
    seen = []
    caller = threading.Thread(target=lambda: seen.append(PB.gram_kernel()))
    caller.start()
    caller.join()
    assert PB.gram_kernel() == "blas" and seen == ["numba"]


@pytest.mark.slow
def test_blas_gram_from_any_thread_where_blas_is_single_threaded():
    """Where BLAS already runs on one thread (a Dask worker: OPENBLAS_NUM_THREADS=1 from its
    nanny) there is nothing to limit, and calls from other threads take BLAS too (measured 1.2-1.4×
    faster there); with BLAS on more threads they do not."""
    import subprocess
    import sys

    code = (
        "import threading\n"
        "from taskspace.geometry import _pairwise_blas as PB\n"
        "PB.vector_registers = lambda: 16\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(PB.gram_kernel()))\n"
        "t.start(); t.join()\n"
        "print(seen[0], PB._blas_single_threaded())\n"
    )
    for threads, expected in (("1", "blas True"), ("2", "numba False")):
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        }
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={**env, "OPENBLAS_NUM_THREADS": threads},
        )
        assert out.stdout.split() == expected.split(), (threads, out.stdout, out.stderr)


def test_blas_gram_runs_single_threaded_inside_our_threads(monkeypatch):
    """Our threads own the cores: BLAS is limited to one thread during the call, then restored."""
    from threadpoolctl import threadpool_info

    import taskspace as ts

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    seen = []

    def recording_gram(P, Q, upper, G):
        seen.append(blas_threads())
        np.matmul(P, Q.T, out=G)

    before = blas_threads()
    monkeypatch.setattr(PB, "gram_kernel", lambda: "blas")
    monkeypatch.setattr(PB, "blas_gram", recording_gram)
    X = np.random.default_rng(5).dirichlet(np.ones(200), size=(6, 20))
    ts.pairwise_distances(X)
    assert seen and all(threads == [1] * len(before) for threads in seen)
    assert blas_threads() == before


def test_blas_gram_is_the_whole_product():
    """``syrk`` (Q is P) fills the whole matrix, so it serves ``upper`` as the Numba kernel does."""
    rng = np.random.default_rng(6)
    P, Q = packed(rng, 10, 70, np.float64), packed(rng, 7, 70, np.float64)
    for A, B, upper in ((P, P, True), (P, Q, False)):
        G = aligned_empty((A.shape[0], B.shape[0]))
        G[...] = np.nan
        PB.blas_gram(A, B, upper, G)
        np.testing.assert_allclose(G, A @ B.T, rtol=0, atol=1e-15)
