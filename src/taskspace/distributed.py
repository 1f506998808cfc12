"""Pairwise distances of a store collection on a Dask cluster (extra ``distributed``).

The M×M matrix of the models a query selects is cut into tiles of model blocks. Only what the
store's distance cache lacks is computed: with K models cached and k new ones (blocks of at most
``tile`` models each), the tasks are the upper triangle of new × new tiles and every new × cached
tile, so no pair is computed twice, and no pair at all when everything is cached. Each task gets
the store path and two lists of model ids (never arrays), opens the store itself, and runs
``taskspace.pairwise_distances`` on its two blocks, streaming over the store's sample chunks
(``Y=None`` on diagonal tiles, which computes one triangle). Tiles go to disk as they complete
(``taskspace.store.tiles``), so a job that is interrupted resumes with only the missing tiles;
when all are in, they are written into the cache tile by tile and committed with one atomic
replace, under the cache's lock (``cache.commit_blocks``: the k new rows are never held in memory
together, so the cache grows to 10^5 models), and the requested matrix is returned (or not:
``return_matrix=False``).

Workers must see the store at the same path as the client (a shared file system). A worker that
dies mid-task is Dask's business: the scheduler hands its tasks to another worker, and since a
task has no side effects (the client writes tiles) the result is unchanged.

Nothing here imports ``dask`` at module import time, so ``import taskspace`` works without it.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taskspace.geometry.distances import DEFAULT_EPS
from taskspace.geometry.validation import check_eps, check_metric
from taskspace.store import cache
from taskspace.store.tiles import TileJob
from taskspace.ui.progress import ProgressBar

#: Tile side bounds (models). Small tiles re-read the store more (each task reads its two blocks
#: whole: total reading is M²·N·C / tile values); large ones leave workers idle.
MIN_TILE, MAX_TILE = 128, 2048


@dataclass(frozen=True)
class Tile:
    """Tile ``(a, b)``: rows ``ids[a]`` (new models) against ``ids[b]`` (new or cached)."""

    a: int
    b: int
    rows: tuple[int, int]  # [start, stop) in the new-models list
    cols: tuple[int, int]  # [start, stop) in the new list (b < n_new_blocks) or the cached one
    cached_cols: bool

    @property
    def symmetric(self) -> bool:
        return self.a == self.b

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows[1] - self.rows[0], self.cols[1] - self.cols[0]


def default_tile(n_models: int, n_workers: int) -> int:
    """About four tiles per worker thread, within ``[MIN_TILE, MAX_TILE]``.

    b blocks make b(b+1)/2 triangle tiles; b = ceil(sqrt(8·workers)) gives at least 4 per worker.
    """
    blocks = max(1, int(np.ceil(np.sqrt(8 * max(1, n_workers)))))
    return int(min(MAX_TILE, max(MIN_TILE, -(-n_models // blocks))))


def _blocks(n: int, tile: int) -> list[tuple[int, int]]:
    return [(s, min(s + tile, n)) for s in range(0, n, tile)]


def plan_tiles(n_new: int, n_cached: int, tile: int) -> list[Tile]:
    """Tiles covering new × new (upper triangle, diagonal tiles symmetric) and new × cached.

    Blocks are numbered new blocks first, then cached blocks; tile ``(a, b)`` has ``a`` a new block
    and ``b ≥ a``.
    """
    new, old = _blocks(n_new, tile), _blocks(n_cached, tile)
    out = [Tile(a, b, new[a], new[b], False) for a in range(len(new)) for b in range(a, len(new))]
    out += [
        Tile(a, len(new) + c, new[a], old[c], True)
        for a in range(len(new))
        for c in range(len(old))
    ]
    return out


def compute_tile(
    root: str,
    rows: list[str],
    cols: list[str] | None,
    metric: str,
    eps: float,
    chunk_size: int | None,
    host_threads: dict | None = None,
    delay: float = 0.0,
    precision: str = "float64",
) -> np.ndarray:
    """One task: distances between two blocks of models, read from the store by the worker.

    ``cols=None`` is a diagonal tile (``pairwise_distances(X, None)``). ``host_threads`` maps a
    worker host to the total Dask threads on it; the task then gives Numba
    ``cpus // host_threads`` threads, so that concurrent tasks do not oversubscribe the cores.
    ``delay`` (seconds, tests only) keeps the task busy before it starts.
    """
    from taskspace.store import Store

    if current_worker() is not None:
        reuse_freed_memory()  # the nanny's malloc setting slows tiles (docs/performance.md)
    _set_threads(host_threads)
    if delay:
        time.sleep(delay)
    store = Store.open(root, mode="r")
    X = store.models(rows)
    Y = None if cols is None else store.models(cols)
    key = cache.CacheKey(metric, eps, precision)
    return cache.default_compute(key, chunk_size=chunk_size)(X, Y)


def current_worker():
    """The Dask worker running this code, or None (not on a worker, or no ``distributed``)."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _set_threads(host_threads: dict | None) -> None:
    n = threads_per_task(host_threads)
    if n is None:
        return
    import numba

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


#: glibc's ``mallopt`` parameters (``<malloc.h>``): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: What glibc's own thresholds grow to on a 64-bit machine (``DEFAULT_MMAP_THRESHOLD_MAX``, and
#: the trim threshold at twice the mmap threshold, as glibc keeps them).
MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES = 32 * 2**20, 64 * 2**20


@functools.cache  # once a process: every training run and distance tile calls it
def reuse_freed_memory() -> bool:
    """Let malloc keep freed blocks for reuse in this process, as glibc does by default, where
    ``MALLOC_TRIM_THRESHOLD_`` turned that off (Dask's nannies set it to 65536 for every worker).

    Setting that variable also freezes glibc's mmap threshold at 128 KiB: every block above it
    (a training step's activations and gradients, a chunk of predictions) is then mapped fresh
    on each allocation and unmapped on free, and its pages fault in again every time. The small
    CNN trained at 5.8-6.9 steps/s in such a worker against 11-15 in a plain process, and
    12.2-13.4 after this call; a distance tile (300 models, N = 2000, C = 1000) took 24.1-24.3 s
    against 17.7-18.1 (docs/scaling.md). It sets the thresholds glibc would reach by
    itself: blocks up to ``MMAP_THRESHOLD_BYTES`` come from the heap, and up to
    ``TRIM_THRESHOLD_BYTES`` free at its top stay there. Nothing changes elsewhere (the variable
    not set, or not glibc); the setting lasts for the process, so only the first call acts.

    Returns
    -------
    bool
        Whether the thresholds were changed (by this process's first call).
    """
    import ctypes
    import platform
    import sys

    if (
        "MALLOC_TRIM_THRESHOLD_" not in os.environ
        or not sys.platform.startswith("linux")
        or platform.libc_ver()[0] != "glibc"
    ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def host_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return int(n or 1)


def host_threads_of(client, resource: str | None = None) -> dict[str, int]:
    """Worker host → how many tasks its workers run at once (for `threads_per_task`).

    That is the Dask threads of all workers on the host; with ``resource`` (tasks that each ask
    for one unit of it, e.g. ``"GPU"``) a worker counts ``min(threads, its units)``, so a worker
    of 8 threads and one GPU runs one such task and its torch gets the cores of 8 threads.
    """
    out: dict[str, int] = {}
    for addr, w in _workers(client).items():
        host = addr.rsplit(":", 1)[0]
        n = int(w.get("nthreads", 1))
        if resource is not None:
            n = min(n, int((w.get("resources") or {}).get(resource, 0)))
        out[host] = out.get(host, 0) + n
    return out


def threads_per_task(host_threads: dict | None) -> int | None:
    """Threads one task may use on the Dask worker running it: ``cores // Dask threads on its
    host`` (at least 1), so that concurrent tasks do not oversubscribe the cores.

    ``host_threads`` is `host_threads_of` the client. None when it is empty or when not called
    on a Dask worker.
    """
    worker = current_worker()
    if not host_threads or worker is None:  # nothing to share, or called directly
        return None
    host = worker.address.rsplit(":", 1)[0]
    return max(1, host_cores() // max(1, int(host_threads.get(host, 1))))


def distributed_distances(
    store_path,
    query=None,
    metric: str = "bhattacharyya",
    *,
    eps: float = DEFAULT_EPS,
    precision: str = "float64",
    client=None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    tile: int | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    return_matrix: bool = True,
    task_delay: float = 0.0,
) -> np.ndarray | None:
    """(M, M) distances between the models a query selects, computed on a Dask cluster.

    Parameters
    ----------
    store_path : path or Store
        A taskspace store, visible at this path to every worker (a `Store` opened for
        appending is used as it is, not opened again).
    query : str, dict, callable or None
        Selects the models, as in ``Store.collection`` (None: every model).
    metric : {"bhattacharyya", "hellinger", "geodesic"}
    eps : float
        Floor of the Bhattacharyya coefficient (SPEC §3).
    precision : {"float64", "float32"}
        As in ``pairwise_distances``. With ``metric`` and the kernels' version these make the
        distance cache key (``cache.CacheKey``): the result is cached for exactly this key, and
        never served to a request with another eps or precision.
    client : distributed.Client, optional
        The cluster to use. Otherwise ``scheduler`` (an address such as ``tcp://host:8786``), or a
        temporary ``LocalCluster`` of ``n_workers`` single-threaded worker processes (default: one
        per core), closed at the end.
    tile : int, optional
        Models per block (tiles are at most tile × tile). Default ``default_tile``. Part of the
        job's identity: resuming an interrupted job needs the same tile.
    chunk_size : int, optional
        Samples per chunk inside each task (``pairwise_distances``).
    progress : bool
        Show a progress bar over tiles (rich).
    return_matrix : bool
        False: only fill the cache and return None. For collections whose M×M matrix does not
        fit in memory: the tiles are committed one at a time, and
        ``Store.cached_distances`` reads the result lazily.
    task_delay : float
        Seconds each task sleeps before computing. For tests (killing a worker mid-task).

    Returns
    -------
    ndarray of float64, shape (M, M), or None
        None when ``return_matrix`` is false. Otherwise in the order of
        ``Store.collection(query)``; equal to ``pairwise_distances`` of the collection (same
        kernel per tile; sums over samples in the same order up to the chunking, so equal to
        ~1e-15 relative).
    """
    from taskspace.store import Store

    metric = check_metric(metric)
    eps = check_eps(eps)
    if tile is not None and (
        isinstance(tile, bool) or not isinstance(tile, int | np.integer) or tile < 1
    ):
        raise ValueError(f"`tile` must be a positive integer, got {tile!r}")
    if isinstance(store_path, Store) and store_path.mode == "a":
        store = store_path
    else:
        store = Store.open(getattr(store_path, "path", store_path), mode="a")
    _, table = store.collection(query)
    ids = list(table["model_id"])
    key = cache.CacheKey(metric, eps, precision)
    known = cache.cached_ids(store.path, key)
    known_set = set(known)
    new = [m for m in ids if m not in known_set]
    if new:
        with cluster_client(client, scheduler, n_workers) as cl:
            n_threads = sum(w.get("nthreads", 1) for w in _workers(cl).values()) or 1
            tile = int(tile) if tile is not None else default_tile(len(new) + len(known), n_threads)
            job = TileJob(
                store.path, key.name, {"key": key.spec, "tile": tile, "cached": known, "new": new}
            )
            job.start()
            _run_job(cl, store, job, new, known, key, tile, chunk_size, progress, task_delay)
        if not cache.commit_blocks(store, key, known, new, _job_blocks(job, new, known, tile)):
            # Another writer extended the cache meanwhile: fall back to the cache's own path.
            compute = _from_tiles(job, new, known, tile, key)
            cache.distance_matrix(store, ids, key, compute, store.models)
        job.remove()
    if not return_matrix:
        return None
    return cache.distance_matrix(store, ids, key, _nothing_to_compute, store.models)


def _nothing_to_compute(X, Y):  # pragma: no cover - the cache holds every model
    raise RuntimeError("the distance cache changed while it was read")


def _workers(cl) -> dict:
    """Every worker's info (recent ``distributed`` lists only 5 unless asked for all)."""
    try:
        info = cl.scheduler_info(n_workers=-1)
    except TypeError:  # distributed < 2025.1
        info = cl.scheduler_info()
    return info.get("workers", {})


class cluster_client:
    """Context manager: the Dask client to use — the given one, one connected to ``scheduler``,
    or a temporary ``LocalCluster`` of ``n_workers`` single-threaded worker processes on loopback
    (default: one per core), closed on exit.

    ``resources`` (e.g. ``{"GPU": 1}``) are declared by each local worker, so that tasks that ask
    for them can run there; workers of an existing cluster declare their own.
    """

    def __init__(self, client=None, scheduler=None, n_workers=None, resources=None):
        self.client, self.scheduler, self.n_workers = client, scheduler, n_workers
        self.resources = resources
        self._owned = []

    def __enter__(self):
        if self.client is not None:
            return self.client
        from distributed import Client, LocalCluster

        if self.scheduler is not None:
            c = Client(self.scheduler)
            self._owned = [c]
            return c
        n = self.n_workers or host_cores()
        # Dask's nannies set OMP_NUM_THREADS=1 (and the like) in *this* process's environment
        # when they spawn workers; restore it on exit so the caller's later subprocesses and
        # thread pools are not silently limited to one thread.
        self._environ = dict(os.environ)
        cluster = LocalCluster(
            n_workers=int(n),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            resources=self.resources,
        )
        c = Client(cluster)
        self._owned = [c, cluster]
        return c

    def __exit__(self, *exc):
        for obj in self._owned:
            obj.close()
        if getattr(self, "_environ", None) is not None:
            os.environ.clear()
            os.environ.update(self._environ)
        return False


def _run_job(
    cl, store, job: TileJob, new, known, key: cache.CacheKey, tile, chunk_size, progress, delay
) -> None:
    from distributed import as_completed

    tiles = plan_tiles(len(new), len(known), tile)
    done = job.done()
    todo = [t for t in tiles if (t.a, t.b) not in done]
    host_threads = host_threads_of(cl)
    root = str(Path(store.path).resolve())
    futures = {}
    for t in todo:
        rows = new[t.rows[0] : t.rows[1]]
        cols = None if t.symmetric else (known if t.cached_cols else new)[t.cols[0] : t.cols[1]]
        fut = cl.submit(
            compute_tile,
            root,
            rows,
            cols,
            key.metric,
            key.eps,
            chunk_size,
            host_threads,
            delay,
            key.precision,
            key=f"taskspace-tile-{job.id}-{t.a}-{t.b}",
            pure=False,
        )
        futures[fut] = t
    bar = ProgressBar(
        progress, len(tiles), "tiles", completed=len(tiles) - len(todo), transient=False, count=True
    )
    with bar:
        for fut in as_completed(list(futures)):
            t = futures.pop(fut)
            tile_values = np.asarray(fut.result(), dtype=np.float64)
            if tile_values.shape != t.shape:
                raise RuntimeError(
                    f"tile {t.a}_{t.b} came back with shape {tile_values.shape}, expected {t.shape}"
                )
            job.write(t.a, t.b, tile_values)
            bar.advance()


def _job_blocks(job: TileJob, new, known, tile):
    """The job's finished tiles, read one at a time, as ``cache.commit_blocks`` wants them."""
    for t in plan_tiles(len(new), len(known), tile):
        yield t.rows, t.cols, t.cached_cols, job.read(t.a, t.b, t.shape)


def _from_tiles(job: TileJob, new, known, tile, key: cache.CacheKey):
    """A ``compute(X, Y)`` for ``cache.distance_matrix`` serving the job's tiles.

    The cache calls it with its own view of which models are new; if another writer extended the
    cache meanwhile, that view differs from the job's and the blocks are computed directly.
    """

    def assemble(cached_cols: bool) -> np.ndarray:
        width = len(known) if cached_cols else len(new)
        out = np.zeros((len(new), width))
        for t in plan_tiles(len(new), len(known), tile):
            if t.cached_cols != cached_cols:
                continue
            block = job.read(t.a, t.b, t.shape)
            (r0, r1), (c0, c1) = t.rows, t.cols
            out[r0:r1, c0:c1] = block
            if not cached_cols and not t.symmetric:
                out[c0:c1, r0:r1] = block.T
        return out

    def compute(X, Y):
        if X.model_ids == new and (Y is None or Y.model_ids == known):
            return assemble(cached_cols=Y is not None)
        return cache.default_compute(key)(X, Y)

    return compute
