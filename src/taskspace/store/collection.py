"""A lazy (M, N, C) view of models spread over many runs of a store.

``LazyCollection`` behaves like a read-only NumPy array for the operations the geometry uses:
``.shape``, ``.dtype``, ``.ndim``, ``len()``, ``np.asarray(X)`` and basic indexing ``X[i]``,
``X[i:j]``, ``X[:, n0:n1]``, ``X[idx, n0:n1, c]``. Indexing reads, for each run involved, only the
Zarr chunks that intersect the requested records and samples: one chunk holds one record and a
block of samples (see ``Store.create``), so a sample block across M models costs M chunk reads,
whatever the length of the runs. Every read is verified (``checksums``): a sample range is
widened to whole chunks, whose values must match the digests committed for them (a collection
that has verified a chunk whole reads parts of it again without re-verifying while its file is
unchanged, `chunkfile.read_chunk`); a chunk that
fails its checksum, is missing or is not the committed one raises ``CorruptStoreError`` naming
run, record and file. ``taskspace.pairwise_distances`` streams over such a collection
in sample blocks without ever holding it whole; ``dask.array.from_array(X, chunks=X.chunks)`` wraps
it too.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import zarr
from zarr.storage import LocalStore

from taskspace.store import checksums, chunkfile
from taskspace.store._layout import open_array
from taskspace.store._meta import RECORDS_KEY, DigestPolicy, commit_problem, records_problem
from taskspace.store.atomic import read_json
from taskspace.store.checksums import CorruptStoreError


class LazyCollection:
    """Models ``(run_id, record)`` of a store as one lazy array of shape (M, N, C).

    Parameters
    ----------
    root : path
        The store directory.
    run_ids, records : sequences of length M
        The run and the record index of every model, in the collection's order.
    n_samples, n_classes : int
    dtype : numpy dtype
        The store's dtype (float32 or float16); values are returned in it.
    chunk_samples : int
        Samples per chunk on disk (the natural block for streaming over samples).
    policy : DigestPolicy, optional
        Which digests the store must have (default: those present are verified, none is
        required).
    """

    def __init__(
        self,
        root,
        run_ids,
        records,
        n_samples: int,
        n_classes: int,
        dtype,
        chunk_samples: int,
        *,
        policy: DigestPolicy | None = None,
    ):
        self._root = Path(root)
        self._policy = policy or DigestPolicy()
        run_ids = list(run_ids)
        self._run_names, self._run_of_row = np.unique(
            np.asarray(run_ids, dtype=object), return_inverse=True
        )
        self._run_of_row = self._run_of_row.astype(np.int64).reshape(-1)
        self._record_of_row = np.asarray(records, dtype=np.int64).reshape(-1)
        if self._record_of_row.shape[0] != self._run_of_row.shape[0]:
            raise ValueError("`run_ids` and `records` must have the same length")
        self.shape = (len(run_ids), int(n_samples), int(n_classes))
        self.dtype = np.dtype(dtype)
        #: Chunk shape on disk: one record by a block of samples by all classes.
        self.chunks = (1, int(min(chunk_samples, n_samples)), int(n_classes))
        self._arrays: dict[int, tuple[zarr.Array, int, list | None]] = {}
        self._zstore: LocalStore | None = None
        # Chunks verified whole for a read of part of them (`chunkfile.read_chunk`): a stream
        # in sample blocks narrower than a chunk verifies each chunk once, not once per block.
        self._verified: dict = {}

    ndim = 3

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def model_ids(self) -> list[str]:
        """Stable ids ``"<run_id>/<record>"`` of the models, in order."""
        return [
            f"{self._run_names[r]}/{t}"
            for r, t in zip(self._run_of_row, self._record_of_row, strict=True)
        ]

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (
            f"LazyCollection(shape={self.shape}, dtype={self.dtype}, "
            f"runs={len(self._run_names)}, root={str(self._root)!r})"
        )

    def __array__(self, dtype=None, copy=None):
        if copy is False:
            raise ValueError("a LazyCollection cannot be viewed as an array without a copy")
        out = self[...]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getstate__(self):
        # Pickles (for multiprocessing or Dask workers) carry the description, not open arrays.
        state = self.__dict__.copy()
        state["_arrays"], state["_zstore"], state["_verified"] = {}, None, {}
        return state

    def _array(self, run: int) -> tuple[zarr.Array, int, list | None]:
        """The run's predictions array, committed record count and digests (None for a run
        written before digests existed), read once."""
        got = self._arrays.get(run)
        if got is None:
            got = self._arrays[run] = open_run(
                self._root, self._zstore_(), str(self._run_names[run]), self._policy
            )
        return got

    def _zstore_(self) -> LocalStore:
        if self._zstore is None:
            self._zstore = LocalStore(self._root, read_only=True)
        return self._zstore

    def __getitem__(self, key):
        model_key, rest = _split_key(key)
        rows = np.arange(self.shape[0])[model_key]
        scalar_model = np.ndim(rows) == 0
        rows = np.atleast_1d(rows)
        sample_key, class_key = rest
        shape_nc = np.empty(self.shape[1:], dtype=bool)[sample_key, class_key].shape
        out = np.empty((rows.shape[0], *shape_nc), dtype=self.dtype)
        if _whole_chunks(sample_key, class_key, self.shape[1], self.chunks[1]) is not None:
            s0, s1, _ = sample_key.indices(self.shape[1])
            self._fill(rows, s0, s1, out)
            return out[0] if scalar_model else out
        run_of = self._run_of_row[rows]
        for run in np.unique(run_of):
            positions = np.flatnonzero(run_of == run)
            records = self._record_of_row[rows[positions]]
            out[positions] = self._read(run, records, sample_key, class_key)
        return out[0] if scalar_model else out

    def read_into(self, n0: int, n1: int, out: np.ndarray) -> None:
        """Fill ``out[:, :n1 - n0]`` with ``self[:, n0:n1]``, verified as every read is.

        For streaming readers that reuse one buffer from block to block (``pairwise_distances``):
        chunks of an uncompressed store go from their files straight into ``out``.

        Parameters
        ----------
        n0, n1 : int
            Samples, ``0 <= n0 < n1 <= N``.
        out : ndarray, shape (M, ≥ n1 - n0, C)
            C-contiguous, of the collection's dtype or a wider float (float32, float64).
        """
        if (
            not (0 <= n0 < n1 <= self.shape[1])
            or out.ndim != 3
            or out.shape[0] != self.shape[0]
            or out.shape[1] < n1 - n0
            or out.shape[2] != self.shape[2]
            or not out.flags.c_contiguous
        ):
            raise ValueError(
                f"read_into({n0}, {n1}) needs a C-contiguous out of shape "
                f"({self.shape[0]}, >= {n1 - n0}, {self.shape[2]}), got "
                f"{out.shape}"
            )
        self._fill(np.arange(self.shape[0]), n0, n1, out)

    def _fill(self, rows: np.ndarray, s0: int, s1: int, out: np.ndarray) -> None:
        """``out[i, :s1 - s0] = self[rows[i], s0:s1]`` (all classes), run by run."""
        n, b = self.shape[1], self.chunks[1]
        run_of = self._run_of_row[rows]
        for run in np.unique(run_of):
            positions = np.flatnonzero(run_of == run)
            records = self._record_of_row[rows[positions]]
            arr, count, digests = self._array(run)
            if (
                digests is not None
                and chunkfile.plain_layout(arr)
                and int(records.max()) < count
                and out.flags.c_contiguous
            ):
                chunkfile.read_records(
                    self._root,
                    str(self._run_names[run]),
                    self.dtype,
                    records,
                    digests,
                    s0,
                    s1,
                    n,
                    b,
                    out,
                    positions,
                    self._verified,
                )
            else:
                out[positions, : s1 - s0] = self._read(run, records, slice(s0, s1), slice(None))

    def _read(self, run: int, records: np.ndarray, sample_key, class_key) -> np.ndarray:
        arr, count, digests = self._array(run)
        name = str(self._run_names[run])
        if int(records.max()) >= count:
            raise CorruptStoreError(
                self._root,
                f"record {int(records.max())} was committed, the run's commit record "
                f"now holds {count}",
                run=name,
                record=int(records.max()),
                file=f"runs/{name}/zarr.json",
            )
        n, b = self.shape[1], self.chunks[1]
        whole = _whole_chunks(sample_key, class_key, n, b) if digests is not None else None
        key = (slice(*whole), slice(None)) if whole else (sample_key, class_key)
        try:
            block = _read_records(arr, records, *key)
        except CorruptStoreError:
            raise
        except Exception as exc:  # Zarr raises several types for a damaged chunk
            raise _locate(self._root, name, arr, records, n, b, exc) from exc
        if whole:
            # Digests cover whole chunks; a missing chunk reads as NaN and fails them too.
            for i, t in enumerate(records.tolist()):
                for c0 in range(whole[0], whole[1], b):
                    values = block[i, c0 - whole[0] : c0 - whole[0] + b]
                    if checksums.block_digest(values) != digests[t][c0 // b]:
                        raise _damaged(self._root, name, t, c0 // b, values)
            s0, s1, _ = sample_key.indices(n)
            return block[:, s0 - whole[0] : s1 - whole[0]]
        bad = checksums.first_nan(block)
        if bad is not None:
            sample = _sample_of(sample_key, bad[1] if block.ndim > 2 else 0, n)
            raise _damaged(self._root, name, int(records[bad[0]]), sample // b, None)
        return block


def open_run(
    root: Path, zstore, run: str, policy: DigestPolicy | None = None
) -> tuple[zarr.Array, int, list | None]:
    """A run's predictions array, committed count and digests, its commit record verified
    (``policy``: which digests it must have); CorruptStoreError naming the file that cannot be
    read or does not agree with the commit record."""
    meta_file = f"runs/{run}/zarr.json"
    try:
        attrs = read_json(root / meta_file)["attributes"]
        records = attrs[RECORDS_KEY]
        problem = records_problem(records) or commit_problem(run, attrs, policy or DigestPolicy())
        count = int(records["count"])
        digests = records.get("digests")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptStoreError(
            root, f"the commit record cannot be read ({exc})", run=run, file=meta_file
        ) from exc
    if problem:
        raise CorruptStoreError(root, problem, run=run, file=meta_file)
    try:
        arr = open_array(zstore, path=f"runs/{run}/predictions", mode="r")
    except Exception as exc:  # a missing or garbled zarr.json: several Zarr and JSON types
        raise CorruptStoreError(
            root,
            f"the predictions array cannot be opened ({type(exc).__name__}: {exc})",
            run=run,
            file=f"runs/{run}/predictions/zarr.json",
        ) from exc
    if arr.ndim != 3 or arr.shape[0] < count:
        raise CorruptStoreError(
            root,
            f"the commit record holds {count} records, the predictions array has shape {arr.shape}",
            run=run,
            file=meta_file,
        )
    if digests is not None and (
        len(digests) < count
        or any(
            d is not None and len(d) != -(-arr.shape[1] // arr.chunks[1]) for d in digests[:count]
        )
    ):
        raise CorruptStoreError(
            root, "the commit record's digests do not match its records", run=run, file=meta_file
        )
    if digests is not None and any(d is None for d in digests[:count]):
        digests = None  # records appended before digests existed: verified by checksum only
    return arr, count, digests


def _read_records(arr, records: np.ndarray, sample_key, class_key) -> np.ndarray:
    first, last = int(records.min()), int(records.max())
    if last - first + 1 == records.shape[0] and np.all(np.diff(records) == 1):
        return arr[first : last + 1, sample_key, class_key]  # contiguous: plain slice
    unique, inverse = np.unique(records, return_inverse=True)
    block = arr.get_orthogonal_selection((unique, sample_key, class_key))
    return block[inverse.reshape(-1)]


def _whole_chunks(sample_key, class_key, n: int, b: int) -> tuple[int, int] | None:
    """The sample range widened to whole chunks, for a contiguous slice of samples with every
    class (what streaming reads); None for other keys (checked for missing chunks only)."""
    if not (
        isinstance(sample_key, slice) and sample_key.step in (None, 1) and class_key == slice(None)
    ):
        return None
    s0, s1, _ = sample_key.indices(n)
    if s1 <= s0:
        return None
    return (s0 // b) * b, min(n, -(-s1 // b) * b)


def _sample_of(sample_key, j: int, n: int) -> int:
    if isinstance(sample_key, slice):
        s0, _, step = sample_key.indices(n)
        return s0 + j * step
    return int(sample_key) % n


def _damaged(root, run: str, record: int, block: int, values) -> CorruptStoreError:
    file = checksums.chunk_file(run, record, block)
    if not (Path(root) / file).is_file():
        problem = "a chunk of the committed record is missing"
    elif values is not None:
        problem = (
            "a chunk does not hold the values committed for it (its digest differs: "
            "edited, or another chunk's bytes)"
        )
    else:
        problem = "a chunk holds NaN, which no committed record does"
    return CorruptStoreError(root, problem, run=run, record=record, file=file)


def _locate(
    root, run: str, arr, records: np.ndarray, n: int, b: int, exc: Exception
) -> CorruptStoreError:
    """The first chunk of ``records`` that fails to decode (the slow path, after an error)."""
    for t in np.unique(records).tolist():
        for s0 in range(0, n, b):
            try:
                arr[t, s0 : s0 + b]
            except Exception as inner:  # any decoding failure is the damage
                return CorruptStoreError(
                    root,
                    f"a chunk cannot be decoded ({type(inner).__name__}: {inner})",
                    run=run,
                    record=t,
                    file=checksums.chunk_file(run, t, s0 // b),
                )
    return CorruptStoreError(
        root,
        f"reading failed ({type(exc).__name__}: {exc})",
        run=run,
        file=f"runs/{run}/predictions",
    )


def _split_key(key):
    """(model key, (sample key, class key)) with sample/class keys as ints or slices."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        fill = 3 - (len(key) - 1)
        key = key[:i] + (slice(None),) * fill + key[i + 1 :]
    if len(key) > 3:
        raise IndexError(f"too many indices for a (M, N, C) collection: {len(key)}")
    key = key + (slice(None),) * (3 - len(key))
    model_key, sample_key, class_key = key
    for axis, k in ((1, sample_key), (2, class_key)):
        if not isinstance(k, slice | numbers.Integral):
            raise IndexError(
                f"axis {axis} of a LazyCollection takes an integer or a slice, got {k!r}"
            )
    if isinstance(model_key, list | tuple):
        model_key = np.asarray(model_key)
    return model_key, (sample_key, class_key)
