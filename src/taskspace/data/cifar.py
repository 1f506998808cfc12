"""CIFAR-10 (Krizhevsky 2009) in its official python-pickle format.

``cifar-10-batches-py/`` holds ``data_batch_1`` … ``data_batch_5`` (train), ``test_batch`` and
``batches.meta``: pickled dicts (written by Python 2) whose ``data`` is a (10000, 3072) uint8
array, each row the 1024 red, then green, then blue pixels of a 32×32 image in row-major order,
``labels`` a list of ints in [0, 10), and the meta's ``label_names`` the class names.

The loader looks in the folders of `taskspace.data.download` (``$TASKSPACE_DATA/cifar10``, the user
folder) for the extracted folder, for its files directly, or for the official archive
``cifar-10-python.tar.gz``; a missing archive is downloaded from the official URL. The archive's
md5 is checked before extraction, and only the known members are extracted, each to a path built
here (never from the archive's names, so the archive cannot write outside the folder). The
pickles are read by an unpickler that resolves only the few NumPy globals an array needs, so a
crafted file cannot run code.
"""

from __future__ import annotations

import codecs
import importlib
import os
import pickle
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

from taskspace.data.dataset import Dataset, check_split
from taskspace.data.download import DownloadError, candidate_dirs, download_dir, fetch, file_md5

NAME = "cifar10"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
#: md5 of the official archive (published with it).
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
META = "batches.meta"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
MEMBERS = [*BATCHES["train"], *BATCHES["test"], META]

_PIXELS = 3 * 32 * 32


def _allowed_globals() -> dict[tuple[str, str], object]:
    """The globals a pickled NumPy array may name, under every module path NumPy has used."""
    try:  # NumPy 2 moved numpy.core to numpy._core; pickles name whichever wrote them
        multiarray = importlib.import_module("numpy._core.multiarray")
        numeric = importlib.import_module("numpy._core.numeric")
    except ImportError:  # NumPy 1.x
        multiarray = importlib.import_module("numpy.core.multiarray")
        numeric = importlib.import_module("numpy.core.numeric")
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # how Python 3 pickles bytes at protocol 2
    }
    for package in ("numpy._core", "numpy.core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _BatchUnpickler(pickle.Unpickler):
    allowed: dict | None = None

    def find_class(self, module, name):
        if _BatchUnpickler.allowed is None:
            _BatchUnpickler.allowed = _allowed_globals()
        try:
            return _BatchUnpickler.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed in a CIFAR batch"
            ) from None


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            # latin1 is how NumPy arrays pickled by Python 2 must be read (NumPy's advice).
            obj = _BatchUnpickler(f, encoding="latin1").load()
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
    ) as exc:
        raise ValueError(f"{path}: not a readable CIFAR pickle ({exc})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: a CIFAR pickle holds a dict, found {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch file.

    Returns
    -------
    images : ndarray of uint8, shape (n, 32, 32, 3)
    labels : ndarray of int64, shape (n,)
    """
    path = Path(path)
    batch = _unpickle(path)
    if "data" not in batch or "labels" not in batch:
        raise ValueError(
            f"{path}: a CIFAR-10 batch needs keys 'data' and 'labels', found "
            f"{sorted(map(str, batch))}"
        )
    data, labels = batch["data"], np.asarray(batch["labels"])
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != _PIXELS
    ):
        raise ValueError(
            f"{path}: 'data' must be a uint8 array of shape (n, {_PIXELS}), got "
            f"{getattr(data, 'dtype', type(data).__name__)} "
            f"{getattr(data, 'shape', '')}"
        )
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{path}: 'labels' must be {data.shape[0]} integers, got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= 10):
        raise ValueError(
            f"{path}: labels must lie in [0, 10), got range [{labels.min()}, {labels.max()}]"
        )
    # Channel-major rows (3, 32, 32) → channel-last images (32, 32, 3).
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels.astype(np.int64)


def read_class_names(path) -> list[str]:
    """The ten ``label_names`` of ``batches.meta``."""
    meta = _unpickle(Path(path))
    names = meta.get("label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise ValueError(f"{path}: 'label_names' must be a list of 10 names, got {names!r}")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def extract_archive(archive, dest, md5: str | None = None) -> Path:
    """Check the archive's md5 and extract the known members into ``dest/cifar-10-batches-py``.

    Parameters
    ----------
    archive : path-like
        ``cifar-10-python.tar.gz``.
    dest : path-like
        Folder receiving ``cifar-10-batches-py/``.
    md5 : str, optional
        Expected md5 (default `ARCHIVE_MD5`).

    Returns
    -------
    Path
        The extracted folder.
    """
    archive, folder = Path(archive), Path(dest) / FOLDER
    expected = ARCHIVE_MD5 if md5 is None else md5
    actual = file_md5(archive)
    if actual != expected:
        raise ValueError(
            f"{archive}: md5 {actual} differs from the official {expected}; the "
            "file is corrupt or not the CIFAR-10 python archive (delete it and retry)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"{FOLDER}/{m}": m for m in MEMBERS}
    done = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = wanted.get(member.name.removeprefix("./"))
                if name is None or name in done:
                    continue
                if not member.isfile():
                    raise ValueError(f"{archive}: member {member.name} is not a regular file")
                source = tar.extractfile(member)
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
                try:
                    with os.fdopen(fd, "wb") as out:
                        while chunk := source.read(1 << 20):
                            out.write(chunk)
                    os.replace(tmp, folder / name)
                finally:
                    Path(tmp).unlink(missing_ok=True)
                done.add(name)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise ValueError(f"{archive}: corrupt archive ({exc})") from exc
    missing = [m for m in MEMBERS if m not in done]
    if missing:
        raise ValueError(f"{archive}: the archive lacks {[f'{FOLDER}/{m}' for m in missing]}")
    return folder


def _locate(root, allow_download: bool) -> Path:
    searched = candidate_dirs(NAME, root)
    for d in searched:
        if (d / FOLDER / META).is_file():
            return d / FOLDER
        if (d / META).is_file():
            return d
        if (d / ARCHIVE).is_file():
            return extract_archive(d / ARCHIVE, d)
    target = download_dir(NAME, root)
    reason = "downloading is disabled (download=False)"
    if allow_download:
        try:
            fetch(URL, target / ARCHIVE, ARCHIVE_MD5)
            return extract_archive(target / ARCHIVE, target)
        except DownloadError as exc:
            reason = f"the download failed ({exc})"
    raise FileNotFoundError(
        f"CIFAR-10 not found in any of {[str(d) for d in searched]} (looked for {FOLDER}/, "
        f"{META} or {ARCHIVE}), and {reason}.\nDownload {URL} (md5 {ARCHIVE_MD5}) into {target} "
        f"(or into a folder passed as `root`, or into $TASKSPACE_DATA/{NAME}); it is extracted "
        "on first use."
    )


def load_cifar10(split: str = "train", root=None, download: bool = True) -> Dataset:
    """One split of CIFAR-10.

    Parameters
    ----------
    split : {"train", "test"}
        50 000 or 10 000 samples.
    root : path-like, optional
        Folder holding ``cifar-10-batches-py/``, its files, or the archive.
    download : bool
        Download the official archive if nothing is found (verified by md5).

    Returns
    -------
    Dataset
        ``images`` uint8 (S, 32, 32, 3), ids ``"train/<i>"`` (position in data_batch_1 … 5
        concatenated) or ``"test/<i>"``, class names from ``batches.meta``.
    """
    check_split(split)
    folder = _locate(root, download)
    class_names = read_class_names(folder / META)
    parts = []
    for batch in BATCHES[split]:
        path = folder / batch
        if not path.is_file():
            raise FileNotFoundError(f"CIFAR-10 batch {path} is missing (re-extract {ARCHIVE})")
        parts.append(read_batch(path))
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    ids = np.array([f"{split}/{i}" for i in range(labels.shape[0])])
    return Dataset(NAME, split, images, labels, class_names, ids)
