"""The distance cache: pairwise matrices kept in the store, keyed by model ids.

Layout, one Zarr group per cache key::

    distances/<name>/zarr.json   attributes["taskspace_distances"] = {"key", "spec",
                                 "model_ids": [...]}
    distances/<name>/matrix      (K', K') float64, chunks (512, 512)

A cache is keyed by everything that changes its numbers (:class:`CacheKey`: metric, eps,
precision and the version of the distance kernels); ``<name>`` is ``<metric>-<hash of the
key>``, and the key itself is kept in ``spec`` and checked on every read. Caches written before
keys existed (``distances/<metric>/``, eps unknown) are never served: they miss, and
``Store.check`` reports them for removal.

The committed ``model_ids`` (K of them) say which models the first K rows and columns of
``matrix`` belong to; entries past K are invisible (left by an interrupted extension) and are
overwritten by the next one. The cache stays a full square matrix over every model it has seen:
a request that names k new models computes their rows against every cached model,
``compute(X_new, X_cached)`` (k × K), and among themselves, ``compute(X_new, None)`` (k × k; None
means "against itself", as in ``pairwise_distances``, which then computes only one triangle), so
no later request computes a pair twice. Extending is "data first, commit last" (see
``_private_dir``): resize, write the new rows and columns, then replace the group's
``zarr.json`` with the longer id list.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.storage import LocalStore

from taskspace.store._layout import open_array
from taskspace.store._meta import HEADER_KEY, DigestPolicy, check_name
from taskspace.store.atomic import (
    disk_full_reported,
    file_lock,
    read_json,
    remove_temporaries,
    write_json_atomic,
)
from taskspace.store.checksums import (
    CHECKSUM,
    CheckedMatrix,
    CorruptStoreError,
    block_digest,
    json_digest,
    text_digest,
)
from taskspace.ui.progress import as_factory as progress_factory

CACHE_KEY = "taskspace_distances"
CHUNK = 512
#: Version of the distance kernels' numbers. Bump it with any change to the geometry that moves
#: cached values by more than rounding: every cache computed before then misses.
KERNEL_VERSION = 1
PRECISIONS = ("float64", "float32")
DEFAULT_EPS = 1e-9  # as taskspace.geometry.distances.DEFAULT_EPS (checked by a test)


@dataclass(frozen=True)
class CacheKey:
    """What a cached matrix was computed with; a cache serves only requests with equal keys.

    Attributes
    ----------
    metric : str
        The metric name of ``pairwise_distances`` (or, for a custom ``compute``, a name of the
        caller's own).
    eps : float
        Floor of the Bhattacharyya coefficient (SPEC §3).
    precision : {"float64", "float32"}
        The precision ``pairwise_distances`` accumulates in.
    kernel : int, optional
        ``KERNEL_VERSION`` of the code that computed it (default: the current one).
    """

    metric: str
    eps: float = DEFAULT_EPS
    precision: str = "float64"
    kernel: int | None = None

    def __post_init__(self):
        if self.kernel is None:  # read at call time, so that a bump applies everywhere
            object.__setattr__(self, "kernel", KERNEL_VERSION)
        check_name("distance cache metric", self.metric)
        eps = self.eps
        if (
            isinstance(eps, bool)
            or not isinstance(eps, int | float | np.floating)
            or not math.isfinite(float(eps))
        ):
            raise ValueError(f"`eps` must be a real number, got {eps!r}")
        object.__setattr__(self, "eps", float(eps))
        if self.precision not in PRECISIONS:
            raise ValueError(f"`precision` must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def spec(self) -> dict:
        """The key as JSON (kept in the cache's attributes)."""
        return {
            "metric": self.metric,
            "eps": self.eps,
            "precision": self.precision,
            "kernel": int(self.kernel),
        }

    @property
    def name(self) -> str:
        """The cache's directory name: the metric, then a hash of the whole key."""
        text = json.dumps(self.spec, sort_keys=True, separators=(",", ":"))
        return f"{self.metric[:100]}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    def __str__(self) -> str:
        return f"{self.metric} (eps={self.eps:g}, {self.precision}, kernel v{self.kernel})"


def default_compute(
    key: CacheKey, progress: bool = False, chunk_size: int | None = None
) -> Callable:
    """``compute(X, Y)`` = ``pairwise_distances(X, Y)`` with the key's metric, eps and
    precision."""
    from taskspace.geometry import pairwise_distances

    def compute(X, Y):
        return pairwise_distances(
            X,
            Y,
            metric=key.metric,
            eps=key.eps,
            progress=progress_factory(progress),
            chunk_size=chunk_size,
            precision=key.precision,
        )

    return compute


def as_key(key) -> CacheKey:
    """A :class:`CacheKey`; a plain metric name means its default eps and precision."""
    if isinstance(key, CacheKey):
        return key
    return CacheKey(check_name("distance cache key", key))


def _cache_dir(root: Path, key: CacheKey) -> Path:
    return root / "distances" / key.name


def cached_ids(root: Path, key) -> list[str]:
    """The committed model ids of cache ``key`` (a :class:`CacheKey`, or a metric name for its
    default eps and precision); empty if there is no such cache yet."""
    return _read_record(root, as_key(key))[0]


def _read_record(root: Path, key: CacheKey) -> tuple[list[str], list[list[int]] | None]:
    """The cache's commit record, verified: its model ids, and the digests of its chunks (None
    for a cache written before they existed); ``([], None)`` if there is no such cache yet."""
    try:
        meta = read_json(_cache_dir(root, key) / "zarr.json")
    except FileNotFoundError:
        return [], None
    if unfinished(meta):
        return [], None
    file = f"distances/{key.name}/zarr.json"
    try:
        attrs = meta["attributes"][CACHE_KEY]
        ids, spec = list(attrs["model_ids"]), attrs["spec"]
        digests = attrs.get("chunk_digests")
        n = -(-len(ids) // CHUNK)
        if digests is not None and (len(digests) != n or any(len(row) != n for row in digests)):
            raise ValueError(f"{n} × {n} chunk digests expected")
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptStoreError(
            root, "the commit record cannot be read", cache=key.name, file=file
        ) from exc
    if spec != key.spec:
        raise CorruptStoreError(
            root, f"it holds the key {spec}, its name says {key.spec}", cache=key.name, file=file
        )
    problem = record_problem(attrs, _policy(root))
    if problem:
        raise CorruptStoreError(root, problem, cache=key.name, file=file)
    digest = attrs.get("ids_digest")
    if digest is not None and digest != text_digest(ids):
        raise CorruptStoreError(
            root,
            "its model ids do not match their digest (edited: the "
            "rows would be served for the wrong models)",
            cache=key.name,
            file=file,
        )
    return ids, digests


def unfinished(meta) -> bool:
    """Whether a cache's ``zarr.json`` (parsed) is the bare group Zarr writes for the parent of
    a new array: what a first fill killed before its commit leaves (by versions that built it in
    place). It commits nothing, so it is no cache."""
    return (
        isinstance(meta, dict) and meta.get("node_type") == "group" and not meta.get("attributes")
    )


def _policy(root: Path) -> DigestPolicy:
    """The digests the store at ``root`` requires (its header was verified when it was
    opened)."""
    try:
        return DigestPolicy.of(read_json(Path(root) / "zarr.json")["attributes"][HEADER_KEY])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return DigestPolicy(chained=True, chunks=True)


def record_digest(attrs: dict) -> str:
    """The digest of a cache's commit record: every field but the digest itself."""
    return json_digest({k: v for k, v in attrs.items() if k != "record_digest"})


def record_problem(attrs: dict, policy: DigestPolicy) -> str | None:
    """What is wrong with the digests of a cache's commit record, or None."""
    digest = attrs.get("record_digest")
    if digest is None and policy.chained:
        return "the commit record has no digest, which every format-2 cache record has"
    if digest is not None and digest != record_digest(attrs):
        return (
            "the commit record does not match its digest: its model ids, metric, eps or "
            "chunk digests were edited"
        )
    lacking = [k for k in ("ids_digest", "chunk_digests") if attrs.get(k) is None]
    if policy.chunks and lacking:
        return (
            f"the commit record lacks {' and '.join(lacking)}, which every cache of a store "
            "that declares checksums has"
        )
    return None


def chunk_digests(arr, k: int, old: list[list[int]] | None, k_old: int) -> list[list[int]]:
    """Digests of the committed part of every chunk of a cache of ``k`` models: ``[i][j]`` is
    the crc32c (``checksums.block_digest``) of ``arr[i·CHUNK:(i+1)·CHUNK, j·CHUNK:(j+1)·CHUNK]``
    cut to the first k rows and columns.

    A chunk's own checksum says its bytes are intact; this digest, kept at the chunk's place in
    the commit record, says it is the chunk committed *there* (not another chunk of the cache
    copied or moved over it). Chunks wholly inside the first ``k_old`` rows and columns, which
    an extension from ``k_old`` models never writes, keep their ``old`` digests; the others are
    read back (the band the extension wrote).
    """
    n, n_kept = -(-k // CHUNK), (k_old // CHUNK if old is not None else 0)
    out = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i < n_kept and j < n_kept:
                out[i][j] = int(old[i][j])
            else:
                out[i][j] = block_digest(
                    arr[i * CHUNK : min(k, (i + 1) * CHUNK), j * CHUNK : min(k, (j + 1) * CHUNK)]
                )
    return out


def _matrix_path(key: CacheKey) -> str:
    return f"distances/{key.name}/matrix"


def open_matrix(zstore, key) -> CheckedMatrix:
    """The cache's (K', K') matrix, read lazily and verified (only its first K rows and columns,
    K = ``len(cached_ids)``, are committed)."""
    key = as_key(key)
    root = Path(zstore.root)
    ids, digests = _read_record(root, key)
    try:
        arr = open_array(zstore, path=_matrix_path(key), mode="r")
    except Exception as exc:  # a missing or garbled zarr.json: several Zarr and JSON types
        raise CorruptStoreError(
            root,
            f"the matrix cannot be opened ({type(exc).__name__}: {exc})",
            cache=key.name,
            file=f"{_matrix_path(key)}/zarr.json",
        ) from exc
    k = len(ids)
    if arr.ndim != 2 or arr.shape[0] < k or arr.shape[1] < k or arr.chunks != (CHUNK, CHUNK):
        raise CorruptStoreError(
            root,
            f"the matrix has shape {arr.shape} and chunks "
            f"{arr.chunks}; its commit record names {k} models in chunks of "
            f"{CHUNK} (the matrix's zarr.json was edited)",
            cache=key.name,
            file=f"{_matrix_path(key)}/zarr.json",
        )
    return CheckedMatrix(arr, root, key.name, CHUNK, committed=k, digests=digests)


def _read_block(zstore, key: CacheKey, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows][:, cols] of cache ``key``, reading only the chunks that hold them."""
    return read_block(open_matrix(zstore, key), rows, cols)


def read_block(arr, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``arr[rows][:, cols]`` for integer arrays in any order, with repeats, from anything with
    Zarr's ``get_orthogonal_selection`` (which wants them unique and sorted)."""
    ur, ir = np.unique(rows, return_inverse=True)
    uc, ic = np.unique(cols, return_inverse=True)
    block = arr.get_orthogonal_selection((ur, uc))
    return block[np.ix_(ir.reshape(-1), ic.reshape(-1))]


class CachedDistances:
    """A lazy (M, M) view of a distance cache: rows and columns are ``model_ids``, in order.

    Nothing is read until asked: ``D[r0:r1]`` reads one block of rows (what the out-of-core
    InPCA streams), ``D.get_orthogonal_selection((rows, cols))`` any rows and columns (what the
    landmark InPCA reads), ``np.asarray(D)`` everything. It reads as NumPy and Zarr arrays do,
    float64, and never sees entries past the cache's commit (an interrupted extension).
    Get one from `Store.cached_distances`.

    Attributes
    ----------
    model_ids : list of str, length M
    shape : (M, M)
    dtype : float64
    """

    ndim = 2

    def __init__(self, arr, model_ids: list[str], positions: np.ndarray | None):
        self._arr, self._pos = arr, positions
        self.model_ids = list(model_ids)
        self.shape = (len(self.model_ids), len(self.model_ids))
        self.dtype = np.dtype(np.float64)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<CachedDistances {self.shape[0]}×{self.shape[1]}>"

    def _index(self, key, n: int) -> np.ndarray:
        return np.arange(n)[key] if isinstance(key, slice) else np.asarray(key, dtype=np.int64)

    def get_orthogonal_selection(self, selection) -> np.ndarray:
        """``D[rows][:, cols]`` for slices or integer arrays, reading only the chunks they touch."""
        rows, cols = (self._index(s, n) for s, n in zip(selection, self.shape, strict=True))
        if self._pos is not None:
            rows, cols = self._pos[rows], self._pos[cols]
        return read_block(self._arr, rows, cols)

    def __getitem__(self, key) -> np.ndarray:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        if isinstance(rows, int | np.integer):
            return self.get_orthogonal_selection(([rows], cols))[0]
        if self._pos is None and isinstance(rows, slice) and cols == slice(None):
            # The committed corner in cache order: a contiguous read.
            r0, r1, step = rows.indices(self.shape[0])
            if step == 1:
                return np.asarray(self._arr[r0:r1, : self.shape[1]], dtype=np.float64)
        return self.get_orthogonal_selection((rows, cols))

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def cached_distances(store, ids, key) -> CachedDistances:
    """The lazy view of cache ``key`` (a :class:`CacheKey`, or a metric name for its default eps
    and precision) over ``ids`` (None: every cached model, in cache order); reads are verified
    against the cache's checksums (`CheckedMatrix`)."""
    key = as_key(key)
    known = cached_ids(store.path, key)
    if not known:
        raise ValueError(
            f"store {store.path} has no cached distances {key.metric!r} ({key}); "
            "compute them first (Store.distance_matrix or `taskspace distances`)"
        )
    arr = open_matrix(store._zstore, key)
    if ids is None or list(ids) == known:
        return CachedDistances(arr, known, None)
    index = {m: i for i, m in enumerate(known)}
    missing = [m for m in ids if m not in index]
    if missing:
        raise ValueError(
            f"{len(missing)} of the {len(ids)} models are not in the distance cache "
            f"{key} of store {store.path} (first: {missing[0]!r}); compute them "
            "first (Store.distance_matrix or `taskspace distances`)"
        )
    return CachedDistances(arr, ids, np.array([index[m] for m in ids], dtype=np.int64))


def _new_rows(compute, collect, new: list[str], others: list[str], key: CacheKey) -> np.ndarray:
    """(k, len(others) + k): distances of the k ``new`` models to ``others``, then to each
    other."""
    X = collect(new)
    own = _check_block(compute(X, None), (len(new), len(new)), key)
    if not others:
        return own
    cross = _check_block(compute(X, collect(others)), (len(new), len(others)), key)
    return np.hstack([cross, own])


def _check_block(block, shape, key) -> np.ndarray:
    block = np.asarray(block, dtype=np.float64)
    if block.shape != shape:
        raise ValueError(
            f"the distance function returned shape {block.shape}, expected {shape} "
            f"(rows: new models, columns: models of cache {key})"
        )
    if not np.all(np.isfinite(block)):
        raise ValueError(f"the distance function returned non-finite values for cache {key}")
    return block


def distance_matrix(store, ids: list[str], key, compute: Callable, collect: Callable) -> np.ndarray:
    """(M, M) distances among ``ids`` from the cache, computing and caching only new models.

    ``collect(ids)`` returns a lazy collection of those models; ``compute(X, Y)`` returns the
    (len(X), len(Y)) block of distances, and ``compute(X, None)`` the symmetric (len(X), len(X))
    one. A read-only store computes what the cache lacks without saving it.
    """
    key = as_key(key)
    root, private = store.path, store._private
    if store.mode == "r":
        return _assemble_readonly(store._zstore, root, ids, key, compute, collect)
    lock_name = f"distances.{key.name}"
    with file_lock(private.lock(lock_name)):
        known, digests = _read_record(root, key)
        index = {m: i for i, m in enumerate(known)}
        new = [m for m in ids if m not in index]
        if new:
            with (
                private.pending_write(lock_name),
                disk_full_reported(f"distance cache {key.name} of store {root}"),
            ):
                _extend(store, key, known, digests, new, compute, collect)
            index.update({m: len(known) + i for i, m in enumerate(new)})
        pos = np.array([index[m] for m in ids], dtype=np.int64)
        return _read_block(store._zstore, key, pos, pos)


def _extend(
    store,
    key: CacheKey,
    known: list[str],
    old_digests: list[list[int]] | None,
    new: list[str],
    compute,
    collect,
) -> None:
    block = _new_rows(compute, collect, new, known, key)
    n_old, total = len(known), len(known) + len(new)
    with _writable_matrix(store, key, n_old, total) as arr:
        arr[n_old:, :] = block
        if n_old:
            arr[:n_old, n_old:] = block[:, :n_old].T
        arr.commit(known + new, chunk_digests(arr.array, total, old_digests, n_old))


class _Writing:
    """The matrix being written (``array``, resized to the new size) and its ``commit``."""

    def __init__(self, array, commit):
        self.array, self.commit = array, commit

    def __setitem__(self, key, values) -> None:
        self.array[key] = values


@contextlib.contextmanager
def _writable_matrix(store, key: CacheKey, n_old: int, total: int) -> Iterator[_Writing]:
    """The cache's matrix resized to (total, total), to write and then ``commit``; under the
    cache's lock.

    An extension (``n_old > 0``) writes in place: entries past the committed size stay
    invisible until the commit replaces the group's ``zarr.json``. A first fill builds the whole
    cache (matrix and commit record) in a directory of its own under ``.taskspace/``, which the
    commit renames to ``distances/<name>``: Zarr writes a group ``zarr.json`` for every parent
    of a new array, so a cache made in place would be visible, and unreadable, before its
    commit. A killed first fill leaves its directory and a pending marker (``repair`` removes
    both); one that fails (a full disk) removes its directory at once.
    """
    if n_old:
        arr = open_array(store._zstore, path=_matrix_path(key), mode="r+")
        arr.resize((total, total))
        yield _Writing(arr, lambda ids, digests: _commit(store.path, key, ids, digests))
        return
    _remove_staged(store, key.name)  # of writers of this cache that died: we hold its lock
    staging = store._private.cache_staging / f"{key.name}.{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        arr = zarr.create_array(
            LocalStore(staging),
            name="matrix",
            shape=(total, total),
            chunks=(CHUNK, CHUNK),
            dtype="float64",
            fill_value=np.nan,
            compressors=[CHECKSUM],
        )

        def commit(ids, digests):
            write_json_atomic(staging / "zarr.json", _record(key, ids, digests))
            target = _cache_dir(store.path, key)
            if target.exists():  # what a killed first fill of an earlier version left
                _discard(store, target)
            os.rename(staging, target)

        yield _Writing(arr, commit)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_staged(store, name: str) -> None:
    for entry in store._private.cache_staging.glob(f"{name}.*"):
        shutil.rmtree(entry, ignore_errors=True)


def _discard(store, directory: Path) -> None:
    """Rename ``directory`` away (one step, so readers see all of it or none), then delete it."""
    trash = store._private.staging / f".cache-{directory.name}.{uuid.uuid4().hex}"
    os.rename(directory, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _record(key: CacheKey, everything: list[str], digests: list[list[int]]) -> dict:
    """A cache's commit record (its group's ``zarr.json``), with the digest of its fields."""
    attrs = {
        "key": key.name,
        "spec": key.spec,
        "model_ids": everything,
        "ids_digest": text_digest(everything),
        "chunk_digests": digests,
    }
    attrs["record_digest"] = record_digest(attrs)
    return {"zarr_format": 3, "node_type": "group", "attributes": {CACHE_KEY: attrs}}


def _commit(root: Path, key: CacheKey, everything: list[str], digests: list[list[int]]) -> None:
    """The commit record: the group's ``zarr.json`` with the longer id list and the digests of
    the chunks (:func:`chunk_digests`), replaced atomically."""
    write_json_atomic(_cache_dir(root, key) / "zarr.json", _record(key, everything, digests))


def commit_blocks(
    store,
    key,
    known: list[str],
    new: list[str],
    blocks: Iterable[tuple[tuple[int, int], tuple[int, int], bool, np.ndarray]],
) -> bool:
    """Extend cache ``key`` by the ``new`` models, writing their distances block by block.

    The streaming counterpart of the extension inside :func:`distance_matrix`, for distances
    computed elsewhere in tiles (``taskspace.distributed``): at no point are the k new rows held
    in memory together, only one block at a time, so a cache can grow by 10^5 models.

    Parameters
    ----------
    store : Store
        Opened for writing.
    key : CacheKey or str
        The cache key (a metric name: its default eps and precision).
    known : list of str
        The cached model ids the blocks were computed against; must be exactly the cache's
        committed ids (checked under the cache's lock).
    new : list of str
        The k models to add, in this order.
    blocks : iterable of ((r0, r1), (c0, c1), cached_cols, values)
        Together they must cover every new × new pair (at least one triangle, diagonal included)
        and every new × cached pair. ``values`` (r1 - r0, c1 - c0) holds d(new[r], X[c]) where X
        is ``known`` when ``cached_cols`` is true, else ``new``; each block is written together
        with its mirror image, so the matrix stays symmetric.

    Returns
    -------
    bool
        False, without writing anything, when the cache no longer holds exactly ``known`` (another
        writer extended it): the caller then computes through :func:`distance_matrix`.
    """
    key = as_key(key)
    root, private = store.path, store._private
    lock_name = f"distances.{key.name}"
    with file_lock(private.lock(lock_name)):
        committed, old_digests = _read_record(root, key)
        if committed != list(known):
            return False
        n_old, total = len(known), len(known) + len(new)
        with (
            private.pending_write(lock_name),
            disk_full_reported(f"distance cache {key.name} of store {root}"),
            _writable_matrix(store, key, n_old, total) as arr,
        ):
            for (r0, r1), (c0, c1), cached_cols, values in blocks:
                values = _check_block(values, (r1 - r0, c1 - c0), key)
                rows = slice(n_old + r0, n_old + r1)
                cols = slice(c0, c1) if cached_cols else slice(n_old + c0, n_old + c1)
                arr[rows, cols] = values
                if cols != rows:
                    arr[cols, rows] = values.T
            arr.commit(list(known) + list(new), chunk_digests(arr.array, total, old_digests, n_old))
    return True


def _assemble_readonly(zstore, root, ids, key, compute, collect) -> np.ndarray:
    known = cached_ids(root, key)
    index = {m: i for i, m in enumerate(known)}
    ids_arr = np.array(ids, dtype=object)
    have = np.array([m in index for m in ids], dtype=bool)
    out = np.empty((len(ids), len(ids)), dtype=np.float64)
    if have.any():
        pos = np.array([index[m] for m in ids_arr[have]], dtype=np.int64)
        out[np.ix_(have, have)] = _read_block(zstore, key, pos, pos)
    if not have.all():
        new, old = list(ids_arr[~have]), list(ids_arr[have])
        block = _new_rows(compute, collect, new, old, key)  # columns: old models, then new
        cols = np.concatenate([np.flatnonzero(have), np.flatnonzero(~have)])
        rows = np.flatnonzero(~have)
        out[np.ix_(rows, cols)] = block
        out[np.ix_(cols, rows)] = block.T
    return out


def cache_names(root: Path) -> list[str]:
    """Names of the cache directories under ``distances/`` (of any key, damaged or not)."""
    d = Path(root) / "distances"
    return (
        sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        if d.is_dir()
        else []
    )


def committed_ids(root: Path, name: str) -> list[str]:
    """The model ids the cache ``distances/<name>`` names (unverified: for removing caches);
    empty when they cannot be read."""
    try:
        ids = read_json(Path(root) / "distances" / name / "zarr.json")["attributes"][CACHE_KEY][
            "model_ids"
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [str(m) for m in ids] if isinstance(ids, list) else []


def remove(store, name: str) -> None:
    """Delete the cache ``distances/<name>`` under its lock: renamed away first, so readers see
    the whole cache or none."""
    check_name("distance cache name", name)
    d = store.path / "distances" / name
    with file_lock(store._private.lock(f"distances.{name}")):
        trash = store._private.staging / f".cache-{name}.{uuid.uuid4().hex}"
        if d.exists():
            os.rename(d, trash)
    shutil.rmtree(trash, ignore_errors=True)


def trim(store, name: str) -> None:
    """Drop what an interrupted write of the cache ``distances/<name>`` left: a first fill's
    staging directory or bare group (no cache), an extension's entries past the committed size.

    Never raises for a cache it cannot read: that is damage, which ``Store.check`` names and
    ``check --repair`` removes; opening the store must not depend on it.
    """
    d = store.path / "distances" / name
    _remove_staged(store, name)
    try:
        meta = read_json(d / "zarr.json")
    except FileNotFoundError:
        if d.exists():
            _discard(store, d)
        return
    except (OSError, ValueError):
        return
    if unfinished(meta):
        _discard(store, d)
        return
    try:
        k = len(meta["attributes"][CACHE_KEY]["model_ids"])
        if (d / "matrix" / "zarr.json").exists():
            arr = open_array(store._zstore, path=f"distances/{name}/matrix", mode="r+")
            if arr.shape != (k, k) and arr.shape[0] >= k and arr.shape[1] >= k:
                arr.resize((k, k))
    except Exception:  # an unreadable record or matrix (several Zarr and JSON types): damage
        return
    for directory in [d, *(p for p in d.rglob("*") if p.is_dir())]:
        remove_temporaries(directory)
