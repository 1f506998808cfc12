"""ImageNet-style image folders: ``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG``.

The label space is the sorted list of class folders of ``train/`` (WordNet ids such as
``n01440764`` for ImageNet, which sort like their offsets; any folder names work); the test split
reads ``val/`` (or ``test/`` when there is no ``val/``) with the same class indices. Class names are
the folder names: `taskspace.data.hierarchy` maps WordNet ids to words and hypernym paths.

Images are decoded with Pillow to RGB, resized so that the shorter side is ``size`` and
center-cropped to ``size × size`` (the usual ImageNet evaluation transform; JPEGs are decoded
directly at a reduced scale when they are much larger). Decoding is lazy by default: `images` is
an `ImageFiles` array-like that decodes only the samples it is indexed with, because ImageNet's
1.28 M training images would take 15 GB even at 64 × 64 (and 190 GB at full size). Index it with
the batch indices of a training loop, or take a subset (``max_per_class``, `make_splits`) and call
``np.asarray`` on it. The default ``size`` of 64 matches the downsampled-ImageNet benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from taskspace.data.dataset import Dataset, check_split
from taskspace.data.download import candidate_dirs

NAME = "imagefolder"
DEFAULT_SIZE = 64
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
)
#: split → folder names tried in order.
SPLIT_DIRS = {"train": ("train",), "test": ("val", "test")}


def decode_image(path, size: int) -> np.ndarray:
    """Decode one image file to RGB, shorter side resized to ``size``, center-cropped.

    Returns
    -------
    ndarray of uint8, shape (size, size, 3)
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # JPEG only: DCT-domain downscale, ≥ size on each side
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot decode image ({exc})") from exc
    fitted = ImageOps.fit(rgb, (size, size), method=Image.Resampling.BILINEAR)
    return np.asarray(fitted, dtype=np.uint8)


class ImageFiles:
    """Lazy uint8 array of shape (S, size, size, 3) over image files.

    Indexing decodes only the selected files: ``images[i]`` → (size, size, 3);
    ``images[3:10]``, ``images[[4, 2]]``, ``images[mask]`` → (k, size, size, 3).
    ``np.asarray(images)`` decodes everything.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, paths, size: int = DEFAULT_SIZE):
        if int(size) < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}")
        self.paths = np.asarray([str(p) for p in paths], dtype=str)
        self.size = int(size)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.size, self.size, 3)

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"ImageFiles({len(self)} files, size={self.size})"

    def __getitem__(self, key):
        if isinstance(key, tuple):
            head, rest = key[0], key[1:]
            batch = self[head]
            return (
                batch[rest]
                if np.ndim(head) == 0 and not isinstance(head, slice)
                else batch[(slice(None), *rest)]
            )
        if isinstance(key, int | np.integer):
            return decode_image(self.paths[key], self.size)
        selected = self.paths[key]
        out = np.empty((len(selected), self.size, self.size, 3), dtype=np.uint8)
        for i, path in enumerate(selected):
            out[i] = decode_image(path, self.size)
        return out

    def __array__(self, dtype=None, copy=None):
        array = self[:]
        return array if dtype is None else array.astype(dtype)

    def select(self, indices) -> ImageFiles:
        """The files at ``indices``, still lazy."""
        return ImageFiles(self.paths[np.asarray(indices, dtype=np.int64)], self.size)


def _list_images(folder: Path) -> list[str]:
    return sorted(
        e.name
        for e in os.scandir(folder)
        if e.is_file()
        and not e.name.startswith(".")
        and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS
    )


def _class_folders(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _find_root(root) -> Path:
    searched = candidate_dirs(NAME, root)
    for d in searched:
        if any((d / s).is_dir() for dirs in SPLIT_DIRS.values() for s in dirs):
            return d
    raise FileNotFoundError(
        f"no image folder found in {[str(d) for d in searched]}: expected "
        "<root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG. Pass the folder as `root` or "
        f"link it to $TASKSPACE_DATA/{NAME} (ImageNet cannot be downloaded automatically)."
    )


def load_imagefolder(
    split: str = "train",
    root=None,
    size: int = DEFAULT_SIZE,
    max_per_class: int | None = None,
    classes=None,
    lazy: bool = True,
) -> Dataset:
    """One split of an ImageNet-style image folder.

    Parameters
    ----------
    split : {"train", "test"}
        ``train/``, or ``val/`` (``test/`` if there is no ``val/``).
    root : path-like, optional
        Folder holding ``train/`` and ``val/``; default ``$TASKSPACE_DATA/imagefolder``.
    size : int
        Side of the square images, in pixels (default 64).
    max_per_class : int, optional
        Keep only the first ``max_per_class`` files of each class (sorted by file name).
    classes : sequence of str, optional
        Restrict the label space to these class folders (sorted); default all of ``train/``.
    lazy : bool
        Decode on indexing (default) rather than now.

    Returns
    -------
    Dataset
        ``images`` (S, size, size, 3) uint8, lazy `ImageFiles` unless ``lazy=False``; samples in
        class order, then file-name order; ids ``"<split folder>/<wnid>/<file name>"``.
    """
    check_split(split)
    if max_per_class is not None and int(max_per_class) < 1:
        raise ValueError(f"max_per_class must be a positive int or None, got {max_per_class}")
    base = _find_root(root)
    split_dir = next((base / d for d in SPLIT_DIRS[split] if (base / d).is_dir()), None)
    if split_dir is None:
        raise FileNotFoundError(
            f"{base} has no {' or '.join(SPLIT_DIRS[split])}/ folder for the {split} split"
        )
    reference = base / "train" if (base / "train").is_dir() else split_dir
    available = _class_folders(reference)
    if classes is None:
        class_names = available
        extra = sorted(set(_class_folders(split_dir)) - set(available))
        if extra:
            raise ValueError(f"{split_dir} has class folders that {reference} lacks: {extra}")
    else:
        class_names = sorted({str(c) for c in classes})
        unknown = [c for c in class_names if c not in available]
        if unknown:
            raise ValueError(
                f"unknown classes {unknown}; the class folders of {reference} are {available}"
            )
    if not class_names:
        raise ValueError(f"{reference} has no class folders")
    paths, labels, ids = [], [], []
    for label, wnid in enumerate(class_names):
        folder = split_dir / wnid
        files = _list_images(folder) if folder.is_dir() else []
        for name in files[:max_per_class]:
            paths.append(folder / name)
            labels.append(label)
            ids.append(f"{split_dir.name}/{wnid}/{name}")
    images = ImageFiles(paths, size)
    if not lazy:
        images = np.asarray(images)
    return Dataset(
        NAME,
        split,
        images,
        np.asarray(labels, dtype=np.int64),
        class_names,
        np.asarray(ids, dtype=str),
    )
