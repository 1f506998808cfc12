"""Reading predictions chunks straight from their files, verified in one checksum pass.

A predictions chunk of an uncompressed store is, on disk, the chunk's values (one record by
``b`` samples by C classes, the store's dtype, little-endian; an edge chunk padded to ``b``
samples) followed by the crc32c of those bytes (Zarr's ``crc32c`` codec, ``integrity`` layer 1).
The commit record's digest of the chunk (layer 2) is the crc32c of its values cut to the array's
N samples, which for every chunk but the last is the same bytes. So one ``preadv`` puts the
requested samples directly where the caller wants them (scattering the rest to a scratch
buffer), and one crc32c pass over the payload, extended past the committed values into the
padding, gives both the digest and the codec's checksum: no decoded copy, no second pass, and
every byte of the chunk verified. A reader streaming in sample blocks narrower than a chunk
verifies each chunk whole once, then reads only the parts later blocks need for as long as the
chunk's file is unchanged (same inode, size, modification and change times): at 1,830 models ×
1,000 classes a chunk of every model no longer fits the streaming budget, and re-verifying it
for every block read each chunk ~29 times (docs/scaling.md).

Only for arrays whose codecs are exactly Zarr's little-endian ``bytes`` and ``crc32c`` (stores
created without compression, on a little-endian machine) and whose records carry digests;
:func:`plain_layout` says which, and everything else is read through Zarr as before.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import google_crc32c
import numpy as np
from zarr.codecs import BytesCodec, Crc32cCodec

from taskspace.store import checksums as integrity
from taskspace.store.checksums import CorruptStoreError

NOT_COMMITTED = (
    "a chunk does not hold the values committed for it (its digest differs: "
    "edited, or another chunk's bytes)"
)
#: Bytes of the crc32c checksum that Zarr's codec appends to each chunk.
CHECKSUM_BYTES = 4


def plain_layout(arr) -> bool:
    """Whether ``arr``'s chunks are raw little-endian values plus a crc32c (see the module)."""
    meta = getattr(arr, "metadata", None)
    codecs = tuple(getattr(meta, "codecs", ()))
    encoding = getattr(meta, "chunk_key_encoding", None)
    return (
        sys.byteorder == "little"
        and len(codecs) == 2
        and isinstance(codecs[0], BytesCodec)
        and getattr(codecs[0].endian, "value", codecs[0].endian) in ("little", None)
        and isinstance(codecs[1], Crc32cCodec)
        and getattr(encoding, "name", None) == "default"
        and getattr(encoding, "separator", None) == "/"
        and np.dtype(arr.dtype) in (np.float16, np.float32)
    )


def read_records(
    root: Path,
    run: str,
    dtype,
    records: np.ndarray,
    digests: list,
    s0: int,
    s1: int,
    n: int,
    b: int,
    out: np.ndarray,
    positions: np.ndarray,
    verified: dict | None = None,
) -> None:
    """Fill ``out[positions[i], :s1 - s0]`` with samples ``s0:s1`` of record ``records[i]``.

    Parameters
    ----------
    root : Path
        The store.
    run : str
    dtype : numpy dtype
        The store's dtype (float16 or float32).
    records : ndarray of int, shape (k,)
        Committed records of the run.
    digests : list of lists of int
        The run's committed chunk digests, ``digests[t][j]``.
    s0, s1 : int
        Samples wanted, ``0 <= s0 < s1 <= n``.
    n, b : int
        Samples of the array, samples per chunk.
    out : ndarray, shape (K, ≥ s1 - s0, C)
        C-contiguous; the store's dtype (filled in place) or a wider float (converted from a
        chunk-sized scratch buffer while it is in cache).
    positions : ndarray of int, shape (k,)
        Rows of ``out``.
    verified : dict, optional
        Chunks verified whole by an earlier call of this reader (``(run, record, block)`` →
        the file's identity, see `read_chunk`): a read of part of such a chunk whose file is
        unchanged reads only that part. Filled as chunks are verified for partial reads.

    Raises
    ------
    CorruptStoreError
        A chunk is missing, has the wrong size, fails its checksum or is not the committed one;
        naming run, record and file.
    """
    if not out.flags.c_contiguous:
        raise ValueError("`out` must be C-contiguous")
    dtype = np.dtype(dtype)
    row_bytes = out.shape[2] * dtype.itemsize
    scratch = np.empty(b * row_bytes + CHECKSUM_BYTES, dtype=np.uint8)
    direct = out.dtype == dtype
    base = Path(root) / "runs" / run / "predictions" / "c"
    for i, t in enumerate(records.tolist()):
        row = out[positions[i]]
        for j in range(s0 // b, -(-s1 // b)):
            lo, hi = max(s0, j * b), min(s1, (j + 1) * b)
            target = row[lo - s0 : hi - s0]
            span = ((lo - j * b) * row_bytes, (hi - j * b) * row_bytes)
            valid = (min(n, (j + 1) * b) - j * b) * row_bytes
            view = target.reshape(-1).view(np.uint8) if direct else scratch[span[0] : span[1]]
            read_chunk(
                root,
                run,
                t,
                j,
                base / str(t) / str(j) / "0",
                scratch,
                view,
                span,
                valid,
                int(digests[t][j]),
                verified,
            )
            if not direct:
                np.copyto(target, view.view(dtype).reshape(hi - lo, -1), casting="unsafe")


def read_chunk(
    root,
    run: str,
    record: int,
    block: int,
    file: Path,
    scratch: np.ndarray,
    view: np.ndarray,
    span: tuple[int, int],
    valid: int,
    digest: int,
    verified: dict | None = None,
) -> None:
    """Read one chunk file: payload bytes ``span`` into ``view``, the rest into ``scratch``;
    verify its checksum and digest in one crc32c pass (``valid`` payload bytes are values).

    With ``verified`` (a reader's record of the chunks it has verified whole) a read of part of
    the chunk reads only that part when the chunk was verified before and its file is the same
    file, unchanged since (inode, size, modification and change times to the nanosecond): a
    sample block narrower than the chunk then costs its own bytes, not the whole chunk and its
    checksum again for every block. A chunk read whole is always verified.
    """
    size = scratch.shape[0]
    head, tail = scratch[: span[0]], scratch[span[1] : size - CHECKSUM_BYTES]
    # the reader's record of chunks verified whole, where this read wants part of the chunk
    known = verified if verified is not None and (head.size or tail.size) else None
    try:
        fd = os.open(file, os.O_RDONLY)
    except FileNotFoundError:
        raise _error(
            root, run, record, block, "a chunk of the committed record is missing"
        ) from None
    except OSError as exc:
        raise _error(root, run, record, block, f"a chunk cannot be read ({exc})") from exc
    try:
        stat = os.fstat(fd)
        on_disk = stat.st_size
        identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        if known is not None and known.get((run, record, block)) == identity:
            if os.preadv(fd, [view.data], span[0]) == view.size:
                return
        if on_disk != size:
            raise _error(
                root,
                run,
                record,
                block,
                f"a chunk cannot be decoded (it has {on_disk} bytes, a chunk of this array {size})",
            )
        got = os.preadv(
            fd, [s for s in (head, view, tail, scratch[size - CHECKSUM_BYTES :]) if s.size], 0
        )
    finally:
        os.close(fd)
    if got != size:
        raise _error(
            root, run, record, block, f"a chunk cannot be decoded (read {got} of {size} bytes)"
        )
    # One pass: the digest covers the first `valid` payload bytes (the values), the codec's
    # checksum all of them (the padding of an edge chunk too).
    crc, done, values_crc = 0, 0, None
    for segment in (head, view, tail):
        cut = valid - done
        if 0 <= cut < segment.shape[0]:
            if cut:
                crc = google_crc32c.extend(crc, segment[:cut])
            values_crc = crc
            crc = google_crc32c.extend(crc, segment[cut:])
        elif segment.shape[0]:
            crc = google_crc32c.extend(crc, segment)
        done += segment.shape[0]
    stored = int(scratch[size - CHECKSUM_BYTES :].view(np.uint32)[0])
    if crc != stored:
        raise _error(
            root,
            run,
            record,
            block,
            "a chunk cannot be decoded (its crc32c checksum "
            "fails: the file was edited, truncated or rotted)",
        )
    if (crc if values_crc is None else values_crc) != digest:
        raise _error(root, run, record, block, NOT_COMMITTED)
    if known is not None:
        known[(run, record, block)] = identity


def _error(root, run: str, record: int, block: int, problem: str) -> CorruptStoreError:
    return CorruptStoreError(
        root, problem, run=run, record=record, file=integrity.chunk_file(run, record, block)
    )
