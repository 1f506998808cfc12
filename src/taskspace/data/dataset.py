"""The `Dataset` container every loader returns, and the registry `load_dataset`."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

#: The two splits every dataset has (ImageFolder's ``val/`` folder is its test split).
SPLITS = ("train", "test")

#: Registered datasets: name → "module:function" (imported on first use).
DATASETS: dict[str, str] = {
    "digits": "taskspace.data.digits:load_digits",
    "fashion-mnist": "taskspace.data.fashion_mnist:load_fashion_mnist",
    "cifar10": "taskspace.data.cifar:load_cifar10",
    "imagefolder": "taskspace.data.imagefolder:load_imagefolder",
}

_ALIASES = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "image-folder": "imagefolder"}


def check_split(split: str) -> str:
    """Return ``split`` if it is ``"train"`` or ``"test"``, else raise a ValueError."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    return split


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a labelled image dataset, as NumPy arrays.

    Attributes
    ----------
    name : str
        Registry name (``"fashion-mnist"``, ...).
    split : {"train", "test"}
    images : ndarray or lazy array-like, shape (S, H, W) or (S, H, W, 3)
        uint8 in ``[0, 255]`` (digits: float64 in ``[0, 1]``). ImageFolder data are a lazy
        array-like that decodes the files it is indexed with (`ImageFiles`).
    labels : ndarray of int64, shape (S,)
        Class indices in ``[0, len(class_names))``.
    class_names : list of str
        Name of each class index (WordNet ids for ImageFolder).
    ids : ndarray of str, shape (S,)
        Stable, unique sample ids (``"train/123"``: position in the official files), kept by
        the store to identify the probe set.
    """

    name: str
    split: str
    images: object = field(repr=False)
    labels: np.ndarray = field(repr=False)
    class_names: list[str] = field(repr=False)
    ids: np.ndarray = field(repr=False)

    def __post_init__(self):
        check_split(self.split)
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}"
            )
        names = [str(c) for c in self.class_names]
        ids = np.asarray(self.ids, dtype=str)
        n = labels.shape[0]
        if len(self.images) != n or ids.shape != (n,):
            raise ValueError(
                f"images, labels and ids disagree in length: {len(self.images)}, "
                f"{n}, {ids.shape[0] if ids.ndim else ids.shape}"
            )
        if n and (labels.min() < 0 or labels.max() >= len(names)):
            raise ValueError(
                f"labels must lie in [0, {len(names)}), got range [{labels.min()}, {labels.max()}]"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be unique, got {names}")
        if np.unique(ids).size != n:
            raise ValueError("sample ids must be unique")
        object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "ids", ids)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __repr__(self) -> str:
        shape = tuple(getattr(self.images, "shape", ()))
        dtype = getattr(self.images, "dtype", "?")
        return (
            f"Dataset(name={self.name!r}, split={self.split!r}, images={shape} {dtype}, "
            f"n_classes={self.n_classes})"
        )

    @property
    def n_classes(self) -> int:
        """Size C of the label space."""
        return len(self.class_names)

    def class_counts(self) -> np.ndarray:
        """Number of samples of each class, shape (C,)."""
        return np.bincount(self.labels, minlength=self.n_classes)

    def subset(self, indices) -> Dataset:
        """The samples at ``indices`` (in that order), as a new `Dataset` of the same split."""
        indices = np.asarray(indices, dtype=np.int64)
        select = getattr(self.images, "select", None)  # lazy images (ImageFiles) stay lazy
        images = select(indices) if select is not None else self.images[indices]
        return Dataset(
            self.name, self.split, images, self.labels[indices], self.class_names, self.ids[indices]
        )

    def float_images(self, indices=None, dtype=np.float32) -> np.ndarray:
        """Images (all, or those at ``indices``) as floats in ``[0, 1]``.

        uint8 images are divided by 255; float images (digits) are only cast.
        """
        images = self.images if indices is None else self.images[np.asarray(indices)]
        images = np.asarray(images)
        if images.dtype == np.uint8:
            return images.astype(dtype) / dtype(255)
        return images.astype(dtype, copy=False)


def dataset_key(name: str) -> str:
    """The registered name of dataset ``name`` (case, ``_`` for ``-`` and aliases such as
    ``"cifar-10"`` forgiven); a ValueError listing the known names otherwise."""
    key = str(name).strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return key


def load_dataset(name: str, split: str = "train", root=None, **options) -> Dataset:
    """Load one split of a registered dataset.

    Parameters
    ----------
    name : {"digits", "fashion-mnist", "cifar10", "imagefolder"}
    split : {"train", "test"}
    root : path-like, optional
        Folder holding the dataset's files; default: see `taskspace.data.download`
        (``$TASKSPACE_DATA/<name>``, system and user folders). Ignored by ``"digits"``.
    **options
        Passed to the loader (``download=False``; ImageFolder's ``size``, ``max_per_class``...).

    Returns
    -------
    Dataset
    """
    key = dataset_key(name)
    check_split(split)
    module, function = DATASETS[key].split(":")
    loader = getattr(importlib.import_module(module), function)
    if key == "digits":
        if root is not None:
            raise ValueError("the digits dataset is built into scikit-learn and takes no root")
        options.pop("download", None)  # nothing to download: accepted for a uniform call
        return loader(split, **options)
    return loader(split, root=root, **options)
