"""Datasets as NumPy arrays, and the deterministic splits that recording needs.

``load_dataset(name, split)`` returns a `Dataset` (images, int64 labels, class names, stable sample
ids) for ``"digits"``, ``"fashion-mnist"``, ``"cifar10"`` and ``"imagefolder"``; `make_splits`
draws the training, imprint and probe sets and the hashes the store keeps; `ClassHierarchy`
gives the WordNet hierarchy of a label space.
"""

from taskspace.data.cifar import load_cifar10
from taskspace.data.dataset import DATASETS, Dataset, dataset_key, load_dataset
from taskspace.data.digits import load_digits
from taskspace.data.download import DownloadError
from taskspace.data.fashion_mnist import load_fashion_mnist
from taskspace.data.hierarchy import ClassHierarchy
from taskspace.data.idx import read_idx
from taskspace.data.imagefolder import ImageFiles, load_imagefolder
from taskspace.data.splits import Split, hash_order, label_space_hash, make_splits, probe_hash

__all__ = [
    "DATASETS",
    "ClassHierarchy",
    "Dataset",
    "DownloadError",
    "ImageFiles",
    "Split",
    "dataset_key",
    "hash_order",
    "label_space_hash",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_imagefolder",
    "make_splits",
    "probe_hash",
    "read_idx",
]
