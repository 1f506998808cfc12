"""What is on disk is what was written: checksums, digests and the error that reports damage.

Three layers, each catching what the one before cannot:

1. Zarr's ``crc32c`` codec on every chunk of every array the store writes (predictions, the
   distance cache, the probe set): a chunk whose bytes were edited, truncated or rotted fails
   its own checksum when read. Plain Zarr readers check it too.
2. Per-chunk digests in each run's commit record (``records["digests"][t][b]``: crc32c of the
   decoded values of record ``t``, sample block ``b``, in the store's dtype). A chunk file that
   is internally sound but not the one committed (another record's chunk copied over it) fails
   here; so does a missing chunk, which Zarr would silently read as its fill value (NaN).
   Likewise each distance cache's commit record keeps ``chunk_digests[i][j]``, the crc32c of
   chunk (i, j) of its matrix cut to the committed models, checked at a chunk's first read:
   a chunk of the cache moved or copied to another place fails there.
3. Digests of the small metadata a chunk checksum does not cover: the probe labels
   (``header["labels_digest"]``, checked on every open) and the cache's id list
   (``attributes["ids_digest"]``).
4. Digests of every JSON record that changes a number (:func:`json_digest`, format 2): the
   header (``header["header_digest"]``, checked on every open), each run's commit record (its
   metadata and records table, bound to the run id; checked at every read of the record), the
   run index (which runs exist, ``runs/zarr.json``) and each cache's commit record.

A store that declares checksums (its header says ``"checksums"``, or format 2) and lacks one of
these digests is damaged. Stores written before format 2 (:data:`taskspace.store._meta.
LEGACY_FORMAT`) are read through a named legacy path: their header, commit records and run index
carry no digests and are not verified (``Store.check`` says so, ``Store.upgrade`` adds them);
stores from before checksums also lack layers 1-3 and open and read as before.

This protects against accidental damage and partial writes, not against someone who edits a
record and recomputes its digest. Reading damaged data raises
:class:`CorruptStoreError`, naming the run (or cache), the record and the file, and how to repair
it; ``Store.check`` lists every such place at once.
"""

from __future__ import annotations

import hashlib
import json

import google_crc32c
import numpy as np
from zarr.codecs import Crc32cCodec

#: The bytes-to-bytes codec appended to every array the store creates.
CHECKSUM = Crc32cCodec()


class CorruptStoreError(ValueError):
    """Data on disk are damaged: a chunk fails its checksum, is missing, or is not the one
    committed; a metadata file is unreadable or inconsistent.

    Attributes
    ----------
    store : str
        The store's path.
    run : str or None
        The run, for damage in a run (``cache`` is then None).
    record : int or None
        The record, where the damage is in one.
    cache : str or None
        The distance cache's name, for damage in the cache.
    file : str
        The damaged (or missing) file, relative to the store.
    problem : str
        What is wrong with it.
    repair : str
        How to repair it.
    where : str
        The damaged place in words: "store header", "run index", "run 'x' record 3",
        "distance cache <name>" (``place`` overrides it).
    """

    def __init__(
        self,
        store,
        problem: str,
        *,
        file: str,
        run: str | None = None,
        record: int | None = None,
        cache: str | None = None,
        repair: str | None = None,
        place: str | None = None,
    ):
        self.store, self.run, self.record, self.cache = str(store), run, record, cache
        self.file, self.problem, self._place = file, problem, place
        self.repair = repair or default_repair(self.store, run, cache)
        super().__init__(
            f"corrupt taskspace store {self.store}: {self.where}: {problem} ({file}); {self.repair}"
        )

    @property
    def where(self) -> str:
        if self._place is not None:
            return self._place
        if self.cache is not None:
            return f"distance cache {self.cache}"
        if self.run is None:
            return "store header"
        return f"run {self.run!r}" + ("" if self.record is None else f" record {self.record}")


def default_repair(store: str, run: str | None, cache: str | None) -> str:
    if cache is not None:
        return (
            f"repair: remove the cache and recompute it (Store.clear_cache({cache!r}), or "
            f"`taskspace check {store} --repair`, then `taskspace distances {store}`)"
        )
    if run is not None:
        return (
            f"repair: drop the run (Store.drop_run({run!r}), or `taskspace check {store} "
            f"--drop-damaged-runs` for every damaged run) and re-import or retrain it"
        )
    return HEADER_REPAIR


#: The repair of a damaged header or probe set: nothing in the store can recompute them.
HEADER_REPAIR = (
    "repair: restore the store's zarr.json and probe/ from a copy of the store (the "
    "runs are not blamed: they are read with the header's class names, dtype and "
    "chunking); `taskspace check` lists all damage"
)


def chunk_file(run: str, record: int, block: int) -> str:
    """The file of one predictions chunk (Zarr v3 default chunk keys), relative to the store."""
    return f"runs/{run}/predictions/c/{int(record)}/{int(block)}/0"


def block_digest(values: np.ndarray) -> int:
    """crc32c of one chunk's decoded values (C order, the store's dtype)."""
    return int(google_crc32c.value(np.ascontiguousarray(values).reshape(-1).view(np.uint8)))


def record_digests(data: np.ndarray, chunk_samples: int) -> list[list[int]]:
    """Digests of the (k, N, C) records ``data``: k lists, one digest per sample block."""
    n = data.shape[1]
    return [
        [block_digest(rec[s : s + chunk_samples]) for s in range(0, n, chunk_samples)]
        for rec in data
    ]


def text_digest(obj) -> str:
    """sha256 of ``obj`` as compact JSON (for id lists)."""
    text = json.dumps(obj, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def json_digest(obj) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys, compact): the digest of a header, a
    commit record or an index, equal for the dict written and the one read back."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def labels_digest(labels: np.ndarray) -> str:
    """sha256 of the probe labels as little-endian int64 (fast enough for every open)."""
    return hashlib.sha256(np.ascontiguousarray(labels, dtype="<i8").tobytes()).hexdigest()


def first_nan(block: np.ndarray) -> tuple[int, ...] | None:
    """Index of the first NaN of ``block`` (committed values are finite: a NaN is Zarr's fill
    value for a chunk that is not there), or None."""
    bad = np.isnan(block)
    if not bad.any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), block.shape))


class CheckedMatrix:
    """A distance-cache matrix (square chunks of side ``chunk``) that reads like its Zarr array
    (``shape``, ``dtype``, ``[rows]``, ``get_orthogonal_selection``) and raises
    :class:`CorruptStoreError`, naming the chunk file, for a chunk that fails its checksum, is
    missing (read as NaN: a committed distance is finite) or, where the commit record has
    ``digests`` (``digests[i][j]``: :func:`block_digest` of chunk (i, j) cut to the first
    ``committed`` rows and columns), is not the chunk committed at its place. Each chunk's
    digest is checked once, at its first read through this object."""

    def __init__(
        self,
        arr,
        root,
        name: str,
        chunk: int,
        *,
        committed: int | None = None,
        digests: list[list[int]] | None = None,
    ):
        self.arr, self.root, self.name, self.chunk = arr, root, name, chunk
        self.shape, self.dtype, self.chunks = arr.shape, arr.dtype, arr.chunks
        self.committed, self.digests = committed, digests
        self._verified: set[tuple[int, int]] = set()

    def __getitem__(self, key) -> np.ndarray:
        return self._checked(lambda a: a[key], key)

    def get_orthogonal_selection(self, selection) -> np.ndarray:
        return self._checked(lambda a: a.get_orthogonal_selection(selection), selection)

    def _checked(self, read, key) -> np.ndarray:
        try:
            block = read(self.arr)
        except Exception as exc:  # Zarr raises several types for a damaged chunk
            raise self._damage(
                f"a chunk cannot be decoded ({type(exc).__name__}: {exc})", key
            ) from exc
        if first_nan(np.asarray(block)) is not None:
            raise self._damage("a chunk is missing (its entries read as NaN)", key)
        if self.digests is not None:
            self._verify_places(key, np.asarray(block))
        return block

    def _verify_places(self, key, block: np.ndarray) -> None:
        """Compare each committed chunk ``key`` touches, once, with its digest: from ``block``
        (what ``key`` read) where it holds the chunk's whole committed part, as whole reads and
        reads of row blocks do; otherwise read again."""
        k, c = self.committed, self.chunk
        n = len(self.digests)
        spans = self._spans(key)
        for i, j in self._chunks_of(key):
            if i >= n or j >= n or (i, j) in self._verified:
                continue  # past the commit (an extension in progress): never served
            r0, r1, c0, c1 = i * c, min(k, (i + 1) * c), j * c, min(k, (j + 1) * c)
            if (
                spans is not None
                and spans[0] <= r0
                and r1 <= spans[1]
                and spans[2] <= c0
                and c1 <= spans[3]
            ):
                values = block[r0 - spans[0] : r1 - spans[0], c0 - spans[2] : c1 - spans[2]]
            else:
                values = self.arr[r0:r1, c0:c1]
            if block_digest(values) != int(self.digests[i][j]):
                raise CorruptStoreError(
                    self.root,
                    "a chunk is not the one committed at its place (another chunk "
                    "of the cache moved or copied over it, or its values rewritten)",
                    cache=self.name,
                    file=f"distances/{self.name}/matrix/c/{i}/{j}",
                )
            self._verified.add((i, j))

    def _damage(self, problem: str, key) -> CorruptStoreError:
        """The error, naming the chunk where it can be told (the first damaged chunk found)."""
        file = f"distances/{self.name}/matrix"
        for i, j in self._chunks_of(key):
            try:
                if not np.isnan(
                    self.arr[
                        i * self.chunk : (i + 1) * self.chunk, j * self.chunk : (j + 1) * self.chunk
                    ]
                ).any():
                    continue
            except Exception:  # this chunk is the damaged one
                pass
            file = f"distances/{self.name}/matrix/c/{i}/{j}"
            break
        return CorruptStoreError(self.root, problem, cache=self.name, file=file)

    def _spans(self, key) -> tuple[int, int, int, int] | None:
        """``(r0, r1, c0, c1)`` when ``key`` reads the rectangle ``[r0, r1) × [c0, c1)`` in
        order (slices of step 1, or runs of consecutive indices), else None."""
        parts = key if isinstance(key, tuple) else (key, slice(None))
        if len(parts) != 2:
            return None
        spans = []
        for part, size in zip(parts, self.shape, strict=True):
            idx = np.arange(size)[part] if isinstance(part, slice) else np.asarray(part)
            if (
                idx.ndim != 1
                or not idx.size
                or not np.issubdtype(idx.dtype, np.integer)
                or idx[-1] - idx[0] + 1 != idx.size
                or np.any(np.diff(idx) != 1)
            ):
                return None
            spans += [int(idx[0]), int(idx[-1]) + 1]
        return tuple(spans)

    def _chunks_of(self, key):
        n = -(-self.shape[0] // self.chunk) if self.shape[0] else 0
        rows = cols = range(n)
        if isinstance(key, tuple) and len(key) == 2:
            rows, cols = (
                sorted({int(v) // self.chunk for v in np.arange(self.shape[0])[k]}) for k in key
            )
        elif isinstance(key, slice):
            rows = sorted({int(v) // self.chunk for v in np.arange(self.shape[0])[key]})
        return ((i, j) for i in rows for j in cols)
