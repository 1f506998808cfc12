"""Pairwise distance matrices between collections of models (SPEC §3), streamed over samples.

``pairwise_distances(X, Y)`` is the hot path of taskspace: M·M'·N·C multiply-adds. It never holds
more than one chunk of samples of ``X`` (and ``Y``) in memory, so ``X`` may be a ``numpy.memmap``
or a Zarr array larger than RAM. Per chunk: read ``X[:, n0:n1]``, validate it (the error names the
index in the user's array), renormalise rows, take square roots and pack them in the layout the
kernels want (``_pairwise_stream``), then add each pair's per-sample sums to a float64 accumulator
(``_kernels_pairwise``). With ``Y`` None only tiles on or above the diagonal are computed and
mirrored, and the diagonal is exactly 0.

Two families of kernels, chosen by C (all metrics; register tiles of model pairs: 3×3 in the
blocks kernels, 4×3 in the rows kernels):

* C ≤ 32: ``_kernels_pairwise``, vectorised over samples (blocks layout); threads take
  rectangles of tiles.
* C > 32: for d_H and d_G ``_kernels_pairwise_rows``, vectorised over classes (sample-major
  layout), threads taking samples, with the chord ``Σ_c (ψ_a − ψ_b)²`` directly, because
  ``2 − 2·<ψ_a, ψ_b>`` loses every digit for nearby models. For d_B, ``BC = <ψ_a, ψ_b>`` (exact
  for renormalised rows; the floor and the logarithm make its rounding irrelevant): from
  ``GRAM_MIN_CLASSES`` classes on (and at any C with ``precision="float32"``) a Gram matrix per
  sample (``_pairwise_blas.gram_sums``, Numba's ``_kernels_gram``), below it the rows kernel —
  and the rows kernel too where the Gram path's per-thread M × M' matrices would not fit its
  share of memory (``_gram_pays``).

The symmetrised KL (any C) is bilinear in (p, log p) and costs one BLAS ``gemm`` per chunk
(``_pairwise_blas.kl_sums``).
"""

from __future__ import annotations

import operator
import os

import numpy as np

from taskspace.geometry import _kernels_pairwise as K
from taskspace.geometry import _kernels_pairwise_rows as R
from taskspace.geometry import _pairwise_blas as BLAS
from taskspace.geometry._pairwise_stream import n_threads, packed_chunks, run_parts, split_range
from taskspace.geometry.distances import DEFAULT_EPS
from taskspace.geometry.labelled import (
    LabelledModels,
    is_data_array,
    labelled_matrix,
    labelled_models,
)
from taskspace.geometry.validation import (
    METRICS,
    as_array,
    check_array_like,
    check_eps,
    check_metric,
    check_same_space,
)

BACKENDS = ("auto", "numba", "torch")
#: Metrics of ``pairwise_distances``: SPEC §3's four.
PAIRWISE_METRICS = (*METRICS, "symmetric_kl")
PRECISIONS = ("float64", "float32")
#: The code paths of ``pairwise_distances``, named by `choose_pairwise_path`.
PAIRWISE_PATHS = ("symmetric_kl", "blocks", "rows", "gram_numba", "gram_blas")
#: From this many classes on, the kernels vectorise over classes (``_kernels_pairwise_rows``).
ROWS_MIN_CLASSES = max(K.SMALL_CLASS_SIZES) + 1
#: From this many classes on, float64 d_B uses per-sample Gram matrices (the crossover with the
#: rows kernel: docs/performance.md) ...
GRAM_MIN_CLASSES = 64
#: ... below this many only while M·M' is at most GRAM_SMALL_PAIRS: each thread of the Gram path
#: holds three M × M' float64 matrices (sums, running products, Gram matrix) against one for the
#: rows kernel, which at M = 10,000 is 4.8 GB against 1.6 on two threads. From 128 classes on
#: the Gram path is taken at any M that fits GRAM_MEMORY_SHARE.
GRAM_ANY_SIZE_CLASSES = 128
GRAM_SMALL_PAIRS = 2**22  # 32 MiB a matrix
#: From GRAM_ANY_SIZE_CLASSES classes on, the Gram path's matrices (three M × M' float64 a
#: thread) may take at most this share of the machine's memory; past it the rows kernel (one a
#: thread), which at those sizes is about as fast (the fold passes over M × M' matrices that no
#: longer fit any cache; docs/performance.md).
GRAM_MEMORY_SHARE = 0.25


def pairwise_distances(
    X,
    Y=None,
    metric: str = "bhattacharyya",
    eps: float = DEFAULT_EPS,
    *,
    chunk_size: int | None = None,
    backend: str = "auto",
    precision: str = "float64",
    progress: bool = False,
) -> np.ndarray:
    """Distance between every model of ``X`` and every model of ``Y`` (SPEC §3).

    With per-sample Bhattacharyya coefficients ``BC_n = Σ_c sqrt(P_nc Q_nc)`` and angles
    ``θ_n = arccos BC_n``:

    * ``"bhattacharyya"``: ``d_B = −(1/N) Σ_n log max(BC_n, eps)``
    * ``"hellinger"``: ``d_H = sqrt((1/N) Σ_n (1 − BC_n))``
    * ``"geodesic"``: ``d_G = sqrt((1/N) Σ_n θ_n²)``
    * ``"symmetric_kl"``: ``d_J = (1/N) Σ_n ½ Σ_c (P_nc − Q_nc)(log max(P_nc, eps) −
      log max(Q_nc, eps))``

    Parameters
    ----------
    X : array-like, shape (M, N, C)
        M models' probabilities on N probe samples over C classes. Anything that slices like NumPy
        along the sample axis (``X[:, n0:n1]``): ndarray, ``numpy.memmap``, Zarr or h5py array;
        float16, float32, float64 (or integers). Read one chunk of samples at a time.
    Y : array-like, shape (M', N, C), optional
        Second collection on the same probe set and label space. Default: ``X`` itself, computed
        symmetrically (upper triangle, mirrored, zero diagonal).
    metric : {"bhattacharyya", "hellinger", "geodesic", "symmetric_kl"}
    eps : float, default 1e-9
        Floor of each ``BC_n`` in ``d_B``, of each probability inside the logarithms of ``d_J``
        (SPEC §3).
    chunk_size : int, optional
        Samples per chunk. Default: as many as fit in ``MEMORY_BUDGET`` (128 MiB) of buffers,
        fitted to a chunked input's own sample chunks (a store collection, a Zarr array): a
        multiple of them, or one whole chunk if that fits 384 MiB.
    backend : {"auto", "numba", "torch"}
        ``"auto"``/``"numba"``: compiled CPU kernels, multi-threaded over tiles of model pairs.
        ``"torch"``: PyTorch (CUDA when available, else CPU), float64; imported only when asked
        (not for ``"symmetric_kl"``).
    precision : {"float64", "float32"}, default "float64"
        ``"float64"``: every product in float64, within 1e-9 of the direct formula.
        ``"float32"`` (``d_B`` only, opt-in): square roots and their products in float32; floors,
        logarithms and sums in float64. Each coefficient is then within ~C·2⁻²⁴ relative; the
        error measured on real predictions is in docs/performance.md. Not for lengths or progress,
        where consecutive models are 1e-5 apart. With C ≤ 32 the float64 kernels run anyway
        (there the floors and products per pair, not the inner products, dominate the cost),
        and so do they where the float32 products' per-thread M × M' matrices would take more
        than ``GRAM_MEMORY_SHARE`` of the machine's memory.
    progress : bool or callable, default False
        Report progress over chunks of samples: a progress factory, or True for the default
        one (`taskspace.geometry.callbacks`; a terminal bar once `taskspace.ui` is imported).

    Returns
    -------
    D : ndarray of float64, shape (M, M')
        ``D[a, b]`` = distance between ``X[a]`` and ``Y[b]``. Every chunk is accumulated in float64
        whatever the storage dtype; rows are renormalised to sum to 1 after validation.
        An ``xarray.DataArray`` of dims (record, sample, class) as ``X`` or ``Y`` (for example
        ``Store.to_xarray().predictions``) is read in sample blocks, and ``D`` is then a
        DataArray of dims (record, record_other) — the record dimensions of ``X`` and ``Y``,
        the second suffixed when they share a name — carrying their record coordinates.

    Raises
    ------
    ValueError
        Bad metric, eps, chunk_size, backend or precision; wrong rank, empty axes, mismatched N
        or C; a NaN, negative entry or row not summing to 1 (the message gives its index in
        ``X`` or ``Y``).

    Examples
    --------
    >>> import numpy as np, taskspace as ts
    >>> X = np.array([[[0.5, 0.5]], [[1.0, 0.0]]])
    >>> ts.pairwise_distances(X)  # off-diagonal: −log sqrt(0.5)
    array([[0.        , 0.34657359],
           [0.34657359, 0.        ]])
    """
    metric = check_metric(metric, PAIRWISE_METRICS)
    eps = check_eps(eps)
    if backend not in BACKENDS:
        choices = ", ".join(map(repr, BACKENDS))
        raise ValueError(f"unknown backend {backend!r}; choose one of {choices}")
    _check_precision(precision, metric)
    if backend == "torch" and metric == "symmetric_kl":
        raise ValueError("`backend`='torch' does not compute metric 'symmetric_kl'; use 'auto'")
    labelled = is_data_array(X) or is_data_array(Y)
    if is_data_array(X):
        X = labelled_models("X", X)
    if is_data_array(Y):
        Y = labelled_models("Y", Y)
    X_in, Y_in = X, Y
    X = as_array("X", X)
    shape_x = check_array_like("X", X, ndim=3)
    shape_y = None
    if Y is not None:
        Y = as_array("Y", Y)
        shape_y = check_array_like("Y", Y, ndim=3)
        check_same_space(("X", "Y"), shape_x, shape_y)
    chunk_size = _check_chunk_size(chunk_size)
    if backend == "torch":
        from taskspace.geometry._torch_backend import pairwise_sums_torch

        sums = pairwise_sums_torch(X, Y, metric, eps, chunk_size, progress, precision)
    else:
        sums = _pairwise_sums_numba(X, Y, metric, eps, chunk_size, progress, precision)
    D = finish(sums, metric, shape_x[1], symmetric=Y is None)
    if labelled:
        return labelled_matrix(D, _labels_of(X_in), _labels_of(Y_in), symmetric=Y_in is None)
    return D


def _labels_of(X):
    return X if isinstance(X, LabelledModels) else None


def finish(sums: np.ndarray, metric: str, n_samples: int, *, symmetric: bool) -> np.ndarray:
    """Turn per-pair sums over samples into distances, in place; mirror the upper triangle.

    ``sums`` holds ``Σ_n log max(BC_n, eps)`` for d_B, ``Σ_n s_n`` (squared chords) for d_H,
    ``Σ_n θ_n²`` for d_G and ``Σ_n Σ_c (p_a − p_b)(l_a − l_b)`` for d_J. With ``symmetric`` only
    its strict upper triangle is read.
    """
    D = sums
    if metric in ("bhattacharyya", "symmetric_kl"):
        # Per-sample terms with BC a rounding above 1 (or the cancellation in d_J's bilinear
        # form) may push an exact 0 to −1e-17: clip.
        D *= -1.0 / n_samples if metric == "bhattacharyya" else 0.5 / n_samples
        np.maximum(D, 0.0, out=D)
    else:
        D *= 1.0 / (2.0 * n_samples if metric == "hellinger" else n_samples)
        np.maximum(D, 0.0, out=D)
        np.sqrt(D, out=D)
    if symmetric:
        _mirror_upper(D)
    return D


def _mirror_upper(D: np.ndarray, block: int = 256) -> None:
    """``D[j, i] = D[i, j]`` for i < j and a zero diagonal, in place, block by block."""
    m = D.shape[0]
    for i0 in range(0, m, block):
        i1 = min(i0 + block, m)
        diag = np.triu(D[i0:i1, i0:i1], k=1)
        D[i0:i1, i0:i1] = diag + diag.T
        D[i1:, i0:i1] = D[i0:i1, i1:].T


def _check_chunk_size(chunk_size):
    if chunk_size is None:
        return None
    try:
        value = operator.index(chunk_size)
    except TypeError:
        raise ValueError(f"`chunk_size` must be a positive integer, got {chunk_size!r}") from None
    if value < 1 or isinstance(chunk_size, bool):
        raise ValueError(f"`chunk_size` must be a positive integer, got {chunk_size!r}")
    return value


def _check_precision(precision, metric) -> None:
    if precision not in PRECISIONS:
        choices = ", ".join(map(repr, PRECISIONS))
        raise ValueError(f"unknown precision {precision!r}; choose one of {choices}")
    if precision == "float32" and metric != "bhattacharyya":
        # d_H, d_G need the chord, which float32 would reduce to noise for nearby models; d_J's
        # bilinear form cancels its terms.
        raise ValueError(
            f"`precision`='float32' is only for metric 'bhattacharyya', not {metric!r}"
        )


def choose_pairwise_path(
    metric: str,
    n_classes: int,
    m: int,
    m_y: int,
    precision: str = "float64",
    *,
    threads: int,
    memory: int,
    gram_kernel: str = "numba",
) -> str:
    """The code path of ``pairwise_distances`` for these sizes on this machine: a pure function.

    Parameters
    ----------
    metric : {"bhattacharyya", "hellinger", "geodesic", "symmetric_kl"}
    n_classes, m, m_y : int
        C, and the models M of X and M' of Y (M' = M without Y).
    precision : {"float64", "float32"}
    threads : int
        Threads the kernels run on (``n_threads()``).
    memory : int
        The machine's memory in bytes (``physical_memory()``).
    gram_kernel : {"numba", "blas"}
        What computes per-sample Gram matrices here (``_pairwise_blas.gram_kernel()``).

    Returns
    -------
    path : str
        One of `PAIRWISE_PATHS`: ``"symmetric_kl"`` (one BLAS product per chunk), ``"blocks"``
        (C < ROWS_MIN_CLASSES, vectorised over samples), ``"gram_numba"`` / ``"gram_blas"``
        (d_B for many classes, or any C in float32 while its matrices fit), else ``"rows"``
        (vectorised over classes). Every path computes the SPEC §3 formula; they differ in speed
        and memory, and float32 products exist only on the Gram paths (elsewhere float32 mode
        gets float64's precision).

    Examples
    --------
    >>> choose_pairwise_path("hellinger", 10, 100, 100, threads=2, memory=2**34)
    'blocks'
    >>> choose_pairwise_path("bhattacharyya", 1000, 100, 100, threads=2, memory=2**34,
    ...                      gram_kernel="blas")
    'gram_blas'
    >>> choose_pairwise_path("bhattacharyya", 1000, 10**5, 10**5, threads=2, memory=2**34)
    'rows'
    """
    if metric == "symmetric_kl":
        return "symmetric_kl"
    if n_classes < ROWS_MIN_CLASSES:
        return "blocks"
    if metric == "bhattacharyya":
        fits = gram_bytes(m, m_y, threads) <= GRAM_MEMORY_SHARE * memory
        if n_classes >= GRAM_ANY_SIZE_CLASSES:
            pays = fits
        else:
            pays = n_classes >= GRAM_MIN_CLASSES and m * m_y <= GRAM_SMALL_PAIRS
        if pays or (precision == "float32" and fits):
            return f"gram_{gram_kernel}"
    return "rows"


def _pairwise_sums_numba(
    X, Y, metric, eps, chunk_size, progress, precision, path: str | None = None
) -> np.ndarray:
    """Per-pair sums over samples (see `finish`) by ``path``, or by `choose_pairwise_path`'s
    choice for this machine when None (tests force each path)."""
    m, n_classes = int(X.shape[0]), int(X.shape[2])
    m_y = m if Y is None else int(Y.shape[0])
    if path is None:
        gram = metric == "bhattacharyya" and n_classes >= ROWS_MIN_CLASSES
        path = choose_pairwise_path(
            metric,
            n_classes,
            m,
            m_y,
            precision,
            threads=n_threads(),
            memory=physical_memory(),
            gram_kernel=BLAS.gram_kernel() if gram else "numba",
        )
    _check_path(path, metric, n_classes)
    sums = np.zeros((m, m_y))
    if path == "symmetric_kl":
        BLAS.kl_sums(X, Y, eps, chunk_size, progress, sums)
    elif path == "blocks":
        _blocks_sums(X, Y, metric, eps, chunk_size, progress, sums)
    elif path in ("gram_numba", "gram_blas"):
        BLAS.gram_sums(
            X,
            Y,
            eps,
            chunk_size,
            progress,
            sums,
            dtype=np.dtype(precision),
            kernel=path.removeprefix("gram_"),
        )
    else:
        _rows_sums(X, Y, metric, eps, chunk_size, progress, sums)
    return sums


def _check_path(path: str, metric: str, n_classes: int) -> None:
    """Refuse a path that cannot compute ``metric`` at ``n_classes`` (a forced one)."""
    ok = {
        "symmetric_kl": metric == "symmetric_kl",
        "blocks": metric != "symmetric_kl" and n_classes <= max(K.SMALL_CLASS_SIZES),
        "rows": metric != "symmetric_kl",
        "gram_numba": metric == "bhattacharyya",
        "gram_blas": metric == "bhattacharyya",
    }
    if not ok.get(path, False):
        raise ValueError(
            f"path {path!r} does not compute {metric!r} with C = {n_classes}; "
            f"paths: {', '.join(PAIRWISE_PATHS)}"
        )


def _gram_pays(n_classes: int, m: int, m_y: int) -> bool:
    """Whether float64 d_B takes a Gram path on this machine (`choose_pairwise_path`)."""
    path = choose_pairwise_path(
        "bhattacharyya", n_classes, m, m_y, threads=n_threads(), memory=physical_memory()
    )
    return path.startswith("gram_")


def gram_bytes(m: int, m_y: int, threads: int | None = None) -> int:
    """Bytes of the Gram path's float64 (M, M') matrices on ``threads`` threads (default
    ``n_threads()``): the sums, and per thread the running products, the Gram matrices and (all
    but the first thread) its own sums: ``3·threads`` matrices."""
    return 3 * (n_threads() if threads is None else threads) * m * m_y * 8


def physical_memory() -> int:
    """The machine's memory in bytes (16 GiB where the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return 16 * 2**30


def _blocks_sums(X, Y, metric, eps, chunk_size, progress, sums) -> None:
    spec = next(s for s in K.SMALL_CLASS_SIZES if s >= int(X.shape[2]))
    classes = (0,) * spec  # its length is the compile-time class count of the kernels
    if metric == "bhattacharyya":
        length, rescale = K.block_length(eps)
    else:
        length, rescale = K.MAX_BLOCK, True
    lanes = (0,) * length  # its length is the compile-time block length
    upper = Y is None
    groups = _panel_groups(*sums.shape, upper, panel_bytes=K.TILE * spec * length * 8)
    if metric == "bhattacharyya" and rescale:
        pa, pb = (-(-m // K.TILE) * K.TILE for m in sums.shape)
        mant = np.ones((pa, pb))  # running products, continued from chunk to chunk
    for A, B in packed_chunks(
        X,
        Y,
        "blocks",
        chunk_size,
        length=length,
        classes=spec,
        progress=progress,
        packed_bytes=BLOCKS_PACKED_BYTES,
    ):
        if metric == "bhattacharyya":
            target = mant if rescale else sums
            run_parts(
                K.bc_products,
                [(A, B, g, classes, lanes, eps, rescale, upper, target, sums) for g in groups],
            )
        else:
            geodesic = metric == "geodesic"
            run_parts(
                K.chord_sums, [(A, B, g, classes, lanes, geodesic, upper, sums) for g in groups]
            )
    if metric == "bhattacharyya" and rescale:
        # in place: at M = 20,000 a temporary of the logarithms would be another 3.2 GB
        products = mant[: sums.shape[0], : sums.shape[1]]
        sums += np.log(products, out=products)


#: Bytes of one block of a group's panels (both sides), meant to stay in cache (see below).
GROUP_BYTES = 4 * 2**20
#: Largest packed part of a chunk for the blocks kernels: a buffer this size is reused from
#: part to part, faster than packing the whole chunk at once (docs/performance.md).
BLOCKS_PACKED_BYTES = 8 * 2**20


def _panel_groups(n_a: int, n_b: int, upper: bool, panel_bytes: int) -> list[np.ndarray]:
    """Rectangles of G×G panels ``[p0, p1, q0, q1)`` covering the tiles to do, one per task.

    A group's panels for one block of samples should stay in cache while its tiles reuse them
    (16×16 panels, 4 MiB, were the fastest measured; docs/performance.md),
    and there should be a few groups per thread to balance the load.
    """
    pa, pb = -(-n_a // K.TILE), -(-n_b // K.TILE)
    fit = max(1, GROUP_BYTES // (2 * panel_bytes))
    size = max(1, min(fit, -(-max(pa, pb) // (2 * n_threads()))))
    groups = [
        (p0, min(p0 + size, pa), q0, min(q0 + size, pb))
        for p0 in range(0, pa, size)
        for q0 in range(p0 if upper else 0, pb, size)
    ]

    def tiles(group):
        p0, p1, q0, q1 = group
        return sum(q1 - max(p, q0) if upper else q1 - q0 for p in range(p0, p1))

    # Largest first: threads that finish early pick up the small ones (diagonal, edges).
    groups.sort(key=tiles, reverse=True)
    return [np.array([group], dtype=np.int64) for group in groups]


def _rows_sums(X, Y, metric, eps, chunk_size, progress, sums) -> None:
    kind = {"bhattacharyya": R.BHATTACHARYYA, "hellinger": R.HELLINGER}.get(metric, R.GEODESIC)
    length = K.log_block_length(eps)
    upper = Y is None
    threads = n_threads()
    # Threads split the samples of each chunk; each adds to its own matrix of sums.
    partial = [sums] + [np.zeros_like(sums) for _ in range(threads - 1)]
    for A, B in packed_chunks(X, Y, "samples", chunk_size, progress=progress):
        ranges = split_range(A.shape[0], threads)
        run_parts(
            R.rows_sums,
            [
                (A, B, s0, s1, kind, eps, length, upper, partial[t])
                for t, (s0, s1) in enumerate(ranges)
            ],
        )
    for extra in partial[1:]:
        sums += extra
