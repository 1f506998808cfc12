"""Reader of the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` big-endian
uint32 dimensions, then the ``prod(dims)`` values, big-endian, in C order. Nothing may follow them.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

#: IDX type codes and the big-endian NumPy dtype each stands for.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_exactly(f, n: int, path: Path, what: str) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = f.readinto(view[got:])
        if not k:
            raise ValueError(
                f"{path}: truncated IDX file, {what} needs {n} bytes but the file ends after {got}"
            )
        got += k
    return buf


def _parse(f, path: Path) -> np.ndarray:
    magic = _read_exactly(f, 4, path, "the magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file (magic number {bytes(magic).hex()} should start with 0000)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x} (known: {known})")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    dims = tuple(
        int(d) for d in np.frombuffer(_read_exactly(f, 4 * ndim, path, "the header"), dtype=">u4")
    )
    dtype = IDX_DTYPES[code]
    n_bytes = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    data = _read_exactly(f, n_bytes, path, f"data of shape {dims}")
    if f.read(1):
        raise ValueError(f"{path}: trailing bytes after the {n_bytes} data bytes of shape {dims}")
    array = np.frombuffer(data, dtype=dtype).reshape(dims)
    # Native byte order, so that downstream arithmetic does not pay for swapping (no-op for u1).
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """Read an IDX file (``.gz`` or not: compression is detected from the content).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    ndarray, shape ``dims`` from the header
        Native byte order, writable, of the dtype the header's type code names
        (``0x08`` → uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32,
        ``0x0E`` float64).

    Raises
    ------
    ValueError
        On a bad magic number, an unknown type code, a size that disagrees with the header
        (truncated file or trailing bytes) or a corrupt gzip stream; the message names the file.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            return _parse(raw, path)
        try:
            with gzip.GzipFile(fileobj=raw) as f:
                return _parse(f, path)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ValueError(f"{path}: corrupt gzip stream ({exc})") from exc
