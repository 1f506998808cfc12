"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from its four official IDX files.

The files are looked for in the folders of `taskspace.data.download` (root argument,
``$TASKSPACE_DATA/fashion-mnist``, ``/usr/share/datasets/fashion-mnist`` from Debian's
``dataset-fashion-mnist``, the user folder), each either gzip-compressed (the official names) or
decompressed (the same names without ``.gz``). Missing files are downloaded from the URLs of the
dataset's README and checked against its md5s. Files found on disk are not checked against those
md5s — Debian re-compresses them, so their ``.gz`` bytes differ — but the IDX reader validates
their structure, and the loader their shapes and labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from taskspace.data.dataset import Dataset, check_split
from taskspace.data.download import (
    SYSTEM_DIRS,
    DownloadError,
    candidate_dirs,
    download_dir,
    fetch,
)
from taskspace.data.idx import read_idx

NAME = "fashion-mnist"

CLASS_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

#: split → (images file, labels file).
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

#: md5 of each official file (from the dataset's README).
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}

#: Official download location, then the dataset's own repository as a mirror.
URLS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
)


def _find(folder: Path, filename: str) -> Path | None:
    for candidate in (folder / filename, folder / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _locate(split: str, root, allow_download: bool) -> tuple[Path, Path]:
    filenames = FILES[split]
    searched = candidate_dirs(NAME, root)
    for folder in searched:
        found = [_find(folder, f) for f in filenames]
        if all(found):
            return found[0], found[1]
    target = download_dir(NAME, root)
    reason = "downloading is disabled (download=False)"
    if allow_download:
        try:
            for f in filenames:
                if _find(target, f) is None:
                    fetch([base + f for base in URLS], target / f, MD5[f])
            return _find(target, filenames[0]), _find(target, filenames[1])
        except DownloadError as exc:
            reason = f"the download failed ({exc})"
    urls = "\n".join(f"  {URLS[0]}{f}  (md5 {MD5[f]})" for f in filenames)
    raise FileNotFoundError(
        f"Fashion-MNIST {split} files {list(filenames)} not found in any of "
        f"{[str(d) for d in searched]}, and {reason}.\n"
        f"Install them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, into "
        f"{SYSTEM_DIRS[NAME]}), or download\n{urls}\ninto {target} (or into a folder "
        f"passed as `root`, or into $TASKSPACE_DATA/{NAME})."
    )


def load_fashion_mnist(split: str = "train", root=None, download: bool = True) -> Dataset:
    """One split of Fashion-MNIST.

    Parameters
    ----------
    split : {"train", "test"}
        60 000 or 10 000 samples (6000 or 1000 per class).
    root : path-like, optional
        Folder holding the files; default: the search order of the module docstring.
    download : bool
        Download missing files from the official source (verified by md5).

    Returns
    -------
    Dataset
        ``images`` uint8 (S, 28, 28), ids ``"train/<i>"`` / ``"test/<i>"`` (position in the
        official file), the ten class names of the README.
    """
    check_split(split)
    images_path, labels_path = _locate(split, root, download)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: expected uint8 images of shape (S, 28, 28), got "
            f"{images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.shape != (images.shape[0],):
        raise ValueError(
            f"{labels_path}: expected {images.shape[0]} uint8 labels (one per image "
            f"of {images_path.name}), got {labels.dtype} {labels.shape}"
        )
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise ValueError(f"{labels_path}: label {int(labels.max())} outside [0, 10)")
    ids = np.array([f"{split}/{i}" for i in range(labels.shape[0])])
    return Dataset(NAME, split, images, labels.astype(np.int64), CLASS_NAMES, ids)
