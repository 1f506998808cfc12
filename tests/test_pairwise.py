"""Pairwise distance matrices (SPEC §3): the streamed kernels against a direct float64 formula."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import taskspace as ts
from taskspace.geometry import _kernels_pairwise as K
from tests.helpers import random_models

METRICS = ("bhattacharyya", "hellinger", "geodesic", "symmetric_kl")


def direct(X, Y, metric, eps=1e-9):
    """The SPEC §3 formulas written plainly, on rows renormalised to sum to 1, in float64."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    X = X / X.sum(axis=-1, keepdims=True)
    Y = Y / Y.sum(axis=-1, keepdims=True)
    if metric == "symmetric_kl":
        P, Q = X[:, None], Y[None, :]  # (M, M', N, C)
        terms = (P - Q) * (np.log(np.maximum(P, eps)) - np.log(np.maximum(Q, eps)))
        return np.mean(0.5 * terms.sum(axis=-1), axis=-1)
    bc = np.sum(np.sqrt(X[:, None] * Y[None, :]), axis=-1)  # (M, M', N): Σ_c sqrt(p q)
    bc = np.clip(bc, 0.0, 1.0)
    if metric == "bhattacharyya":
        return -np.mean(np.log(np.maximum(bc, eps)), axis=-1)
    if metric == "hellinger":
        return np.sqrt(np.mean(1.0 - bc, axis=-1))
    return np.sqrt(np.mean(np.arccos(bc) ** 2, axis=-1))


def off_diagonal(D):
    return D[~np.eye(D.shape[0], dtype=bool)]


@pytest.mark.parametrize("metric", METRICS)
# 40: the class-vectorised kernels; 150 and 300: the Gram path of d_B (GRAM_MIN_CLASSES = 64)
@pytest.mark.parametrize("n_classes", [3, 10, 20, 40, 150, 300])
def test_matches_direct_formula(metric, n_classes):
    rng = np.random.default_rng(n_classes)
    X = random_models(rng, (7, 45, n_classes), sharpness=2.0)
    Y = random_models(rng, (5, 45, n_classes), sharpness=0.5)
    D = ts.pairwise_distances(X, metric=metric)
    np.testing.assert_allclose(
        off_diagonal(D), off_diagonal(direct(X, X, metric)), rtol=0, atol=1e-9
    )
    D_xy = ts.pairwise_distances(X, Y, metric=metric)
    assert D_xy.shape == (7, 5) and D_xy.dtype == np.float64
    np.testing.assert_allclose(D_xy, direct(X, Y, metric), rtol=0, atol=1e-9)


@pytest.mark.parametrize("metric", METRICS)
def test_many_tiles_and_threads(metric):
    # more models than one tile (48) on both sides, M' ≠ M, so tiles are split over threads
    rng = np.random.default_rng(7)
    X = random_models(rng, (100, 20, 10))
    Y = random_models(rng, (53, 20, 10))
    np.testing.assert_allclose(
        ts.pairwise_distances(X, Y, metric=metric), direct(X, Y, metric), rtol=0, atol=1e-9
    )
    D = ts.pairwise_distances(X, metric=metric)
    np.testing.assert_allclose(
        off_diagonal(D), off_diagonal(direct(X, X, metric)), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n_classes", [3, 40])
def test_symmetric_with_exact_zero_diagonal(metric, n_classes):
    X = random_models(np.random.default_rng(2), (60, 15, n_classes))
    D = ts.pairwise_distances(X, metric=metric)
    assert np.array_equal(D, D.T)
    assert np.all(np.diag(D) == 0.0)
    assert np.all(off_diagonal(D) > 0)


@pytest.mark.parametrize("n_classes", [4, 40])
def test_agrees_with_elementwise_distances(n_classes):
    rng = np.random.default_rng(3)
    X = random_models(rng, (6, 30, n_classes))
    Y = random_models(rng, (4, 30, n_classes))
    for metric, fn in (
        ("bhattacharyya", ts.bhattacharyya),
        ("hellinger", ts.hellinger),
        ("geodesic", ts.geodesic_distance),
        ("symmetric_kl", ts.symmetric_kl),
    ):
        np.testing.assert_allclose(
            ts.pairwise_distances(X, Y, metric=metric),
            fn(X[:, None], Y[None, :]),
            rtol=0,
            atol=1e-12,
        )


def test_two_class_closed_form():
    X = np.array([[[0.5, 0.5]], [[0.9, 0.1]]])
    # d_J: ½ [(−0.4)·log(5/9) + 0.4·log 5] = 0.2·log 9
    assert ts.pairwise_distances(X, metric="symmetric_kl")[0, 1] == pytest.approx(
        0.2 * np.log(9.0), abs=1e-15
    )
    X = np.array([[[0.5, 0.5]], [[1.0, 0.0]]])
    D = ts.pairwise_distances(X)
    assert D[0, 1] == pytest.approx(-np.log(np.sqrt(0.5)), abs=1e-15)
    assert ts.pairwise_distances(X, metric="geodesic")[0, 1] == pytest.approx(np.pi / 4, abs=1e-15)
    assert ts.pairwise_distances(X, metric="hellinger")[1, 0] == pytest.approx(
        np.sqrt(1 - np.sqrt(0.5)), abs=1e-15
    )


def exact_float16_models(rng, shape):
    """Probabilities k/1024 with integer k: exact in float16, rows summing to exactly 1."""
    counts = rng.multinomial(1024, np.ones(shape[-1]) / shape[-1], size=shape[:-1])
    return counts / 1024.0


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("n_classes", [10, 40, 300])
def test_memmap_input_matches_in_memory(tmp_path, dtype, n_classes):
    X = exact_float16_models(np.random.default_rng(4), (9, 70, n_classes))
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=dtype, shape=X.shape)
    mm[:] = X
    mm.flush()
    del mm
    on_disk = np.load(tmp_path / "x.npy", mmap_mode="r")
    for metric in METRICS:
        # d_J's bilinear form sums other chunks in another order: rounding of its cancellation
        tol = 1e-12 if metric == "symmetric_kl" else 1e-13
        expected = ts.pairwise_distances(X, metric=metric)  # float64, same values
        got = ts.pairwise_distances(on_disk, metric=metric, chunk_size=16)
        np.testing.assert_allclose(got, expected, rtol=0, atol=tol)
        np.testing.assert_allclose(
            ts.pairwise_distances(on_disk, X[:3], metric=metric), expected[:, :3], rtol=0, atol=tol
        )
        # views of the map: a slice of models (read from the file), a strided one (read as array)
        np.testing.assert_allclose(
            ts.pairwise_distances(on_disk[2:7], metric=metric), expected[2:7, 2:7], rtol=0, atol=tol
        )
        np.testing.assert_allclose(
            ts.pairwise_distances(on_disk[::2], metric=metric), expected[::2, ::2], rtol=0, atol=tol
        )


class SliceOnly:
    """An array-like that only answers ``[:, n0:n1]`` (like a Zarr array), recording the slices."""

    def __init__(self, data):
        self._data = data
        self.shape, self.dtype = data.shape, data.dtype
        self.reads = []

    def __getitem__(self, key):
        rows, samples = key
        assert rows == slice(None) and isinstance(samples, slice)
        self.reads.append(samples.stop - samples.start)
        return self._data[rows, samples].copy()


@pytest.mark.parametrize("n_classes", [4, 40, 300])
@pytest.mark.parametrize("metric", ["bhattacharyya", "symmetric_kl"])
def test_streams_chunks_of_any_size(n_classes, metric):
    X = random_models(np.random.default_rng(5), (8, 50, n_classes))
    reference = ts.pairwise_distances(X, metric=metric)
    for chunk in (1, 7, 32, 33, 50, 1000):
        source = SliceOnly(X)
        D = ts.pairwise_distances(source, metric=metric, chunk_size=chunk)
        np.testing.assert_allclose(D, reference, rtol=0, atol=1e-12)
        assert max(source.reads) <= chunk and sum(source.reads) == 50


def test_zarr_array_input():
    zarr = pytest.importorskip("zarr")
    X = random_models(np.random.default_rng(6), (6, 40, 10)).astype(np.float32)
    Z = zarr.array(X, chunks=(6, 16, 10))
    np.testing.assert_allclose(
        ts.pairwise_distances(Z, chunk_size=16), ts.pairwise_distances(X), rtol=0, atol=1e-13
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [(np.nan, "non-finite"), (-0.5, "negative entry"), (3.0, "sums to")],
)
@pytest.mark.parametrize("n_classes", [4, 40, 300])
@pytest.mark.parametrize("metric", ["bhattacharyya", "symmetric_kl"])
def test_bad_value_in_a_later_chunk_reports_index_in_user_array(value, problem, n_classes, metric):
    X = random_models(np.random.default_rng(8), (5, 50, n_classes))
    X[3, 37, 2] = value
    where = r"\(3, 37\)" if problem == "sums to" else r"\(3, 37, 2\)"
    with pytest.raises(ValueError, match=rf"`X` .*{problem}.*{where}"):
        ts.pairwise_distances(X, metric=metric, chunk_size=10)
    good = random_models(np.random.default_rng(9), (2, 50, n_classes))
    with pytest.raises(ValueError, match=rf"`Y` .*{problem}.*{where}"):
        ts.pairwise_distances(good, X, metric=metric, chunk_size=16)


def test_eps_floor_for_disjoint_supports():
    # sample 0: disjoint supports (BC = 0, floored); sample 1: equal rows (BC = 1)
    X = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]])
    for eps in (1e-9, 1e-3, 1e-30, 1e-300):
        D = ts.pairwise_distances(X, eps=eps)
        assert D[0, 1] == pytest.approx(-np.log(eps) / 2, rel=1e-13)
        D_xy = ts.pairwise_distances(X[:1], X[1:], eps=eps)
        assert D_xy[0, 0] == pytest.approx(-np.log(eps) / 2, rel=1e-13)
    D_geodesic = ts.pairwise_distances(X, metric="geodesic")
    assert D_geodesic[0, 1] == pytest.approx(np.pi / 2 / np.sqrt(2))
    for eps in (1e-9, 1e-3, 1e-300):  # d_J: |log eps| for the disjoint sample, 0 for the other
        D_kl = ts.pairwise_distances(X, metric="symmetric_kl", eps=eps)
        assert D_kl[0, 1] == pytest.approx(-np.log(eps) / 2, rel=1e-13)


@pytest.mark.parametrize("n_classes", [2, 40])
@pytest.mark.parametrize("eps", [1e-9, 1e-20, 1e-300])
def test_product_of_coefficients_near_and_below_the_floor(n_classes, eps):
    # Coefficients spread over [1e-12, 1] in log scale: many blocks whose product would underflow
    # without rescaling, many coefficients at or below the floor.
    rng = np.random.default_rng(10)
    n = 700
    bc = 10.0 ** rng.uniform(-12, 0, size=n)
    bc[::7] = eps * rng.uniform(0.5, 2.0, size=bc[::7].shape)
    # Rows p = (1 − a, a), q = (a, 1 − a) have BC = 2·sqrt(a(1 − a)) = bc for
    # a = bc² / (2·(1 + sqrt(1 − bc²))) (the stable root; tiny bc keep their value).
    a = bc**2 / (2.0 * (1.0 + np.sqrt(1.0 - bc**2)))
    P = np.zeros((n, n_classes))
    Q = np.zeros((n, n_classes))
    P[:, 0], P[:, 1] = 1.0 - a, a
    Q[:, 0], Q[:, 1] = a, 1.0 - a
    X = np.stack([P, Q])
    expected = direct(X, X, "bhattacharyya", eps=eps)[0, 1]
    assert ts.pairwise_distances(X, eps=eps)[0, 1] == pytest.approx(expected, abs=1e-9, rel=0)
    D_xy = ts.pairwise_distances(X[:1], X[1:], eps=eps)
    assert D_xy[0, 0] == pytest.approx(expected, abs=1e-9, rel=0)


def test_block_length_keeps_block_products_normal():
    for eps in (1e-1, 1e-9, 1e-20, 1e-100, 1e-280):
        length, rescale = K.block_length(eps)
        assert rescale and length >= 1
        assert length * np.log2(eps) >= -957  # eps^L ≥ 2^-957
    assert K.block_length(1e-300) == (1, False)


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 6),
    m_y=st.integers(1, 5),
    n=st.integers(1, 40),
    n_classes=st.sampled_from([1, 2, 3, 4, 10, 33, 70]),
    dtype=st.sampled_from([np.float32, np.float64]),
    metric=st.sampled_from(METRICS),
    symmetric=st.booleans(),
    chunk=st.sampled_from([None, 1, 5, 32]),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_matches_direct_formula(
    m, m_y, n, n_classes, dtype, metric, symmetric, chunk, seed
):
    rng = np.random.default_rng(seed)
    X = random_models(rng, (m, n, n_classes), sharpness=3.0).astype(dtype)
    Y = None if symmetric else random_models(rng, (m_y, n, n_classes)).astype(dtype)
    D = ts.pairwise_distances(X, Y, metric=metric, chunk_size=chunk)
    expected = direct(X, X if symmetric else Y, metric)
    if symmetric:
        assert np.array_equal(D, D.T) and np.all(np.diag(D) == 0)
        np.fill_diagonal(expected, 0.0)  # the direct formula leaves ~1e-8 there (1 − BC rounding)
    np.testing.assert_allclose(D, expected, rtol=0, atol=1e-9)
    assert np.all(D >= 0)


def test_progress_bar_gives_the_same_result():
    X = random_models(np.random.default_rng(11), (5, 30, 10))
    np.testing.assert_array_equal(
        ts.pairwise_distances(X, progress=True, chunk_size=8),
        ts.pairwise_distances(X, chunk_size=8),
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "euclid"}, "unknown metric"),
        ({"eps": 0.0}, "eps"),
        ({"eps": 1.5}, "eps"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 2.5}, "chunk_size"),
        ({"chunk_size": True}, "chunk_size"),
        ({"backend": "cuda"}, "unknown backend"),
        ({"precision": "float16"}, "unknown precision"),
        ({"precision": "float32", "metric": "hellinger"}, "`precision`='float32' is only for"),
        ({"metric": "symmetric_kl", "backend": "torch"}, "does not compute metric 'symmetric_kl'"),
    ],
)
def test_bad_arguments(kwargs, message):
    X = random_models(np.random.default_rng(12), (3, 4, 5))
    with pytest.raises(ValueError, match=message):
        ts.pairwise_distances(X, **kwargs)


def test_bad_shapes():
    X = random_models(np.random.default_rng(13), (3, 4, 5))
    with pytest.raises(ValueError, match="`X` must have 3 dimensions"):
        ts.pairwise_distances(X[0])
    with pytest.raises(ValueError, match="numbers of classes"):
        ts.pairwise_distances(X, X[..., :4] / X[..., :4].sum(-1, keepdims=True))
    with pytest.raises(ValueError, match="numbers of samples"):
        ts.pairwise_distances(X, X[:, :3])
    with pytest.raises(ValueError, match="`Y` is empty"):
        ts.pairwise_distances(X, X[:0])


def test_torch_backend_matches_numba():
    pytest.importorskip("torch")
    rng = np.random.default_rng(14)
    for n_classes in (3, 40):
        X = random_models(rng, (9, 35, n_classes))
        Y = random_models(rng, (4, 35, n_classes))
        for metric in METRICS[:3]:  # no symmetric_kl on torch
            for other in (None, Y):
                fast = ts.pairwise_distances(X, other, metric=metric)
                via_torch = ts.pairwise_distances(
                    X, other, metric=metric, backend="torch", chunk_size=16
                )
                np.testing.assert_allclose(via_torch, fast, rtol=0, atol=1e-9)
    D = ts.pairwise_distances(X, backend="torch")
    assert np.array_equal(D, D.T) and np.all(np.diag(D) == 0)


@pytest.mark.slow
def test_numpy_path_never_imports_torch():
    code = (
        "import sys, numpy as np, taskspace as ts\n"
        "X = np.full((3, 4, 5), 0.2)\n"
        "ts.pairwise_distances(X); ts.pairwise_distances(X, metric='geodesic')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_works_in_a_forked_child_after_use_in_the_parent():
    # the thread pool of the parent does not survive fork(); the child must not hang
    import multiprocessing

    X = random_models(np.random.default_rng(15), (60, 20, 10))
    expected = ts.pairwise_distances(X)
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        got = pool.apply_async(ts.pairwise_distances, (X,)).get(timeout=30)
    np.testing.assert_array_equal(got, expected)


def test_integer_one_hot_input():
    labels = np.random.default_rng(16).integers(0, 4, size=(3, 25))
    onehot = np.eye(4, dtype=np.uint8)[labels]  # (3, 25, 4) integers
    np.testing.assert_array_equal(
        ts.pairwise_distances(onehot), ts.pairwise_distances(onehot.astype(np.float64))
    )
    disagree = (labels[0] != labels[1]).mean()
    assert ts.pairwise_distances(onehot)[0, 1] == pytest.approx(-np.log(1e-9) * disagree)


def test_refined_square_root_of_every_kind_of_float32():
    # The Gram path's float32 roots plus one Newton step: ~1e-14 relative for any float32
    # probability, subnormals and exact zeros included (the contract needs 1e-9 on d_B).
    rng = np.random.default_rng(12)
    x = np.concatenate(
        [
            10.0 ** rng.uniform(-45, 0, 5000),
            rng.random(5000),
            [0.0, 1.0, 1.0 + 1e-6, 1e-45],
        ]
    ).astype(np.float32)
    row = x / x.sum(dtype=np.float64)  # one valid probability row of float32 entries
    raw = row.astype(np.float32).reshape(1, 1, -1)
    psi = np.empty((1, x.size))
    assert K.pack_sample(raw, 0, psi, 1e-4) == 0
    p = raw[0, 0].astype(np.float64)
    exact = np.sqrt(p / p.sum())
    nonzero = exact > 0
    assert np.all(psi[0, ~nonzero] == 0.0)
    assert np.max(np.abs(psi[0, nonzero] / exact[nonzero] - 1.0)) < 1e-13


def test_float64_input_keeps_exact_square_roots_of_tiny_probabilities():
    # float64 probabilities below float32's range (1e-300) are rooted exactly, not via float32:
    # with eps = 1e-300 their coefficient BC = 2·sqrt(1e-300) decides d_B.
    p = np.zeros((2, 1, 300))
    p[0, 0, 0], p[0, 0, 1] = 1.0, 1e-300
    p[1, 0, 0], p[1, 0, 1] = 1e-300, 1.0
    D = ts.pairwise_distances(p, eps=1e-300)
    assert D[0, 1] == pytest.approx(-np.log(2e-150), rel=1e-13)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 7), min_size=1, max_size=4),
    dtype=st.sampled_from([np.float64, np.float32, np.int8]),
)
def test_aligned_empty_starts_on_a_cache_line(shape, dtype):
    from taskspace.geometry._pairwise_stream import ALIGNMENT, aligned_empty

    A = aligned_empty(tuple(shape), dtype)
    assert A.shape == tuple(shape) and A.dtype == dtype and A.flags.c_contiguous
    assert A.flags.writeable and A.ctypes.data % ALIGNMENT == 0
    A[...] = 1  # the whole array is writable memory of its own
    assert A.sum() == A.size


def test_packed_panels_are_aligned_for_vector_loads():
    """Every row of the blocks layout starts on a cache line (the kernels' vector loads)."""
    from taskspace.geometry._pairwise_stream import ALIGNMENT, ChunkPacker

    X = random_models(np.random.default_rng(3), (50, 64, 10))
    length, _ = K.block_length(1e-9)
    packer = ChunkPacker("X", X, "blocks", 64, length=length, classes=10)
    A = packer.pack(*packer.read(0, 64), 0, 64)
    assert A.ctypes.data % ALIGNMENT == 0
    assert (A.strides[2] % ALIGNMENT, A.strides[3] * A.shape[3] % ALIGNMENT) == (0, 0)


@pytest.mark.parametrize("metric", ["bhattacharyya", "hellinger", "geodesic"])
def test_packed_parts_change_nothing(metric, monkeypatch):
    """Packing a chunk in parts (a small reused buffer) gives the same bits as packing it whole."""
    from taskspace.geometry import pairwise as PW

    rng = np.random.default_rng(12)
    X = random_models(rng, (70, 200, 10)).astype(np.float32)
    Y = random_models(rng, (20, 200, 10))
    whole = [ts.pairwise_distances(X, metric=metric), ts.pairwise_distances(X, Y, metric=metric)]
    length, _ = K.block_length(1e-9)
    monkeypatch.setattr(PW, "BLOCKS_PACKED_BYTES", 1)  # parts of one block each
    parts = [ts.pairwise_distances(X, metric=metric), ts.pairwise_distances(X, Y, metric=metric)]
    for a, b in zip(whole, parts, strict=True):
        np.testing.assert_array_equal(a, b)
    X[40, 150, 3] = -0.25  # in a later part: the index is the user's
    with pytest.raises(ValueError, match=r"`X` .*negative entry.*\(40, 150, 3\)"):
        ts.pairwise_distances(X, metric=metric)
    assert 150 // length > 1


def test_packed_chunks_parts_cover_the_chunk():
    from taskspace.geometry._pairwise_stream import packed_chunks

    X = random_models(np.random.default_rng(13), (30, 100, 10))
    length = 8
    per_sample = 48 * 10 * 8  # one panel of 48 models, 10 classes, float64
    seen = []
    for A, B in packed_chunks(
        X, None, "blocks", 64, length=length, classes=10, packed_bytes=3 * length * per_sample
    ):
        assert A is B
        seen.append(A.shape[1] * length)
    # chunks of 64 and 36 samples, each cut into parts of at most 24 samples (3 blocks)
    assert seen == [24, 24, 16, 24, 16]


def test_prefetch_is_only_a_hint():
    """Prefetching any address, even past the array's end, changes nothing and never faults."""
    import numba

    from taskspace.geometry._prefetch import prefetch

    @numba.njit
    def total(a, ahead):
        s = 0.0
        for i in range(a.size):
            prefetch(a, i + ahead)
            s += a[i]
        return s

    a = np.arange(1000.0)
    for ahead in (0, 8, 10**6, -(10**6)):
        assert total(a, ahead) == a.sum()
    assert "prefetch" in next(iter(total.inspect_asm().values()))


def test_gram_path_choice_by_classes_and_size():
    """The Gram path from GRAM_MIN_CLASSES classes on, but below GRAM_ANY_SIZE_CLASSES only for
    collections small enough that its per-thread M × M' matrices stay small."""
    from taskspace.geometry import pairwise as PW

    small, large = 1000, 10_000
    assert not PW._gram_pays(PW.GRAM_MIN_CLASSES - 1, small, small)
    assert PW._gram_pays(PW.GRAM_MIN_CLASSES, small, small)
    assert not PW._gram_pays(PW.GRAM_ANY_SIZE_CLASSES - 1, large, large)
    assert PW._gram_pays(PW.GRAM_ANY_SIZE_CLASSES, large, large) == (
        PW.gram_bytes(large, large) <= PW.GRAM_MEMORY_SHARE * PW.physical_memory()
    )
    assert small * small <= PW.GRAM_SMALL_PAIRS < large * large


def test_gram_path_memory_bound(monkeypatch):
    """From GRAM_ANY_SIZE_CLASSES classes on, the Gram path only while its 3·threads M × M'
    matrices take at most GRAM_MEMORY_SHARE of the machine's memory; past it the rows kernel,
    with the same distances (to rounding)."""
    from taskspace.geometry import _pairwise_blas as BLAS
    from taskspace.geometry import pairwise as PW

    threads = PW.n_threads()
    assert PW.gram_bytes(10, 20) == 3 * threads * 10 * 20 * 8
    assert 2**30 <= PW.physical_memory() < 2**50  # read from the machine: a plausible size
    c = PW.GRAM_ANY_SIZE_CLASSES
    # A machine with just enough memory for a 30 × 30 Gram path.
    monkeypatch.setattr(
        PW, "physical_memory", lambda: int(PW.gram_bytes(30, 30) / PW.GRAM_MEMORY_SHARE)
    )
    assert PW._gram_pays(c, 30, 30) and PW._gram_pays(c, 20, 45)
    assert not PW._gram_pays(c, 31, 30) and not PW._gram_pays(10 * c, 40, 40)

    rng = np.random.default_rng(3)
    X = rng.dirichlet(np.full(c, 0.5), size=(40, 25))
    calls = []
    gram = BLAS.gram_sums
    monkeypatch.setattr(BLAS, "gram_sums", lambda *a, **k: calls.append(1) or gram(*a, **k))
    big = ts.pairwise_distances(X)  # 40 × 40: past the bound, rows kernel
    small = ts.pairwise_distances(X[:30])  # 30 × 30: Gram path
    assert len(calls) == 1
    expected = direct(X, X, "bhattacharyya")
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(big, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(small, expected[:30, :30], rtol=0, atol=1e-12)
    # float32 mode too: its float32 products only while the Gram path fits, else float64 rows.
    calls.clear()
    big32 = ts.pairwise_distances(X, precision="float32")
    small32 = ts.pairwise_distances(X[:30], precision="float32")
    assert len(calls) == 1
    np.testing.assert_allclose(big32, expected, rtol=0, atol=1e-12)
    assert 1e-12 < np.max(np.abs(small32 - expected[:30, :30])) < 1e-6


def test_default_chunks_follow_a_chunked_inputs_sample_chunks(tmp_path, monkeypatch):
    """Reading part of a store chunk decodes all of it, so a default chunk is a multiple of the
    store's sample chunks, or one whole store chunk where that fits ALIGNED_BUDGET; a NumPy
    array keeps the budget's chunk. The distances do not depend on it."""
    from taskspace.geometry import _pairwise_stream as PS
    from taskspace.store import Store

    rng = np.random.default_rng(8)
    X = rng.dirichlet(np.ones(40), size=(6, 100))
    store = Store.create(
        tmp_path / "s", np.arange(100) % 40, [f"c{i}" for i in range(40)], chunk_samples=16
    )
    store.add_run("r", task="t", classes=None, method="m", seed=0)
    store.append("r", X.astype(np.float32), np.arange(6))
    lazy, _ = Store.open(tmp_path / "s").collection()
    assert PS.sample_chunking(lazy) == 16 and PS.sample_chunking(X) is None
    expected = ts.pairwise_distances(np.asarray(lazy))
    seen = []
    original = PS.chunk_bounds
    monkeypatch.setattr(
        PS, "chunk_bounds", lambda n, chunk: seen.append(chunk) or original(n, chunk)
    )
    for budget_samples, aligned in ((5, 16), (40, 32), (100, 100)):
        monkeypatch.setattr(PS, "budget_chunk", lambda *args, n=budget_samples, **kw: n)
        seen.clear()
        np.testing.assert_allclose(ts.pairwise_distances(lazy), expected, rtol=0, atol=1e-12)
        assert seen[0] == aligned, (budget_samples, seen)
    # One whole store chunk is too much for the aligned budget: the budget's chunk stays.
    monkeypatch.setattr(PS, "budget_chunk", lambda *args, **kw: 5)
    monkeypatch.setattr(PS, "ALIGNED_BUDGET", 1)
    seen.clear()
    np.testing.assert_allclose(ts.pairwise_distances(lazy), expected, rtol=0, atol=1e-12)
    assert seen[0] == 5
    monkeypatch.setattr(PS, "ALIGNED_BUDGET", 10**12)
    seen.clear()
    ts.pairwise_distances(X)
    assert seen[0] == 5  # no sample chunks of its own
