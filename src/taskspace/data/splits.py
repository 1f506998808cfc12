"""Deterministic training / imprint / probe splits, and the hashes that identify them.

- *training*: the samples a network is trained on (a subset of the train split);
- *imprint*: labelled samples held out from the train split, disjoint from training, used for the
  class prototypes of imprinting (SPEC §11); it contains every class;
- *probe*: the samples of the test split on which every model is recorded.

Selection does not use NumPy's random generators, whose streams may change between versions:
samples are ordered by a keyed hash of their id, ``blake2b(f"{seed}/{salt}/{id}")``, and taken in
that order. The same ids and seed therefore give the same split on every machine, the choice of a
sample does not depend on where it sits in the arrays, and the sets are nested (a larger ``n_train``
keeps every sample of a smaller one). Stratified splits do this within each class, with per-class
sizes proportional to the class sizes (largest remainders, ties to the lower class index).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np

from taskspace.data.dataset import Dataset
from taskspace.store.hashes import label_space_hash, probe_hash


def hash_order(ids, seed: int, salt: str = "") -> np.ndarray:
    """Permutation that sorts ``ids`` by the keyed hash ``blake2b(f"{seed}/{salt}/{id}")``.

    Parameters
    ----------
    ids : sequence of str, shape (S,)
    seed : int
    salt : str
        Separates independent orders drawn with the same seed.

    Returns
    -------
    ndarray of int64, shape (S,)
    """
    prefix = f"{int(seed)}/{salt}/"
    keys = np.fromiter(
        (
            int.from_bytes(
                hashlib.blake2b((prefix + str(i)).encode(), digest_size=8).digest(), "big"
            )
            for i in ids
        ),
        dtype=np.uint64,
        count=len(ids),
    )
    return np.argsort(keys, kind="stable").astype(np.int64)


@dataclass(frozen=True, eq=False, repr=False)
class Split:
    """Indices of the training, imprint and probe sets, and the hashes that identify them.

    Attributes
    ----------
    train_indices, imprint_indices : ndarray of int64
        Sorted, disjoint positions in ``train_data``.
    probe_indices : ndarray of int64
        Sorted positions in ``test_data``.
    probe_hash, label_space_hash : str
        See `probe_hash` and `label_space_hash`.
    seed : int
    stratified : bool
    train_data, test_data : Dataset
    """

    train_indices: np.ndarray
    imprint_indices: np.ndarray
    probe_indices: np.ndarray
    probe_hash: str
    label_space_hash: str
    seed: int
    stratified: bool
    train_data: Dataset = field(repr=False)
    test_data: Dataset = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"Split(dataset={self.train_data.name!r}, n_train={self.train_indices.size}, "
            f"n_imprint={self.imprint_indices.size}, n_probe={self.probe_indices.size}, "
            f"seed={self.seed}, stratified={self.stratified}, "
            f"probe_hash={self.probe_hash[:12]}…)"
        )

    @property
    def class_names(self) -> list[str]:
        return list(self.train_data.class_names)

    def train(self) -> Dataset:
        """The training set."""
        return self.train_data.subset(self.train_indices)

    def imprint(self) -> Dataset:
        """The imprint set (every class present)."""
        return self.train_data.subset(self.imprint_indices)

    def probe(self) -> Dataset:
        """The probe set, in the order its hash covers."""
        return self.test_data.subset(self.probe_indices)

    def metadata(self) -> dict:
        """JSON-ready description, for the store."""
        return {
            "dataset": self.train_data.name,
            "seed": self.seed,
            "stratified": self.stratified,
            "n_train": int(self.train_indices.size),
            "n_imprint": int(self.imprint_indices.size),
            "n_probe": int(self.probe_indices.size),
            "probe_hash": self.probe_hash,
            "label_space_hash": self.label_space_hash,
        }


def _resolve_size(size, total: int, what: str, where: str) -> int:
    """An int count, a float fraction of ``total`` in (0, 1], or None (= ``total``)."""
    if size is None:
        return total
    if isinstance(size, bool):
        raise TypeError(f"{what} must be an int, a float in (0, 1] or None, got {size!r}")
    if isinstance(size, Integral):
        n = int(size)
    elif isinstance(size, Real):
        if not 0.0 < float(size) <= 1.0:
            raise ValueError(f"{what}={size} as a fraction must lie in (0, 1]")
        n = int(np.floor(float(size) * total + 0.5))
    else:
        raise TypeError(f"{what} must be an int, a float in (0, 1] or None, got {size!r}")
    if n < 0:
        raise ValueError(f"{what}={size} must not be negative")
    if n > total:
        raise ValueError(f"{what}={size} asks for {n} samples but {where} has only {total}")
    return n


def _allocate(
    n: int, available: np.ndarray, every_class: bool, what: str, class_names: list[str]
) -> np.ndarray:
    """Per-class sizes summing to ``n``, proportional to ``available`` (largest remainders)."""
    available = available.astype(np.int64)
    base = np.zeros_like(available)
    if every_class:
        empty = [class_names[c] for c in np.flatnonzero(available == 0)]
        if empty:
            raise ValueError(
                f"{what}: class(es) {empty} have no samples left to draw from, but "
                "the set must contain every class"
            )
        if n < available.size:
            raise ValueError(
                f"{what}={n} is fewer than the {available.size} classes, but the set "
                "must contain every class"
            )
        base[:] = 1
    pool = available - base
    rest = n - int(base.sum())
    if rest == 0 or pool.sum() == 0:
        return base
    exact = rest * pool / pool.sum()
    counts = np.floor(exact).astype(np.int64)
    remainder = rest - int(counts.sum())
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:remainder]] += 1
    return base + counts


def _stratified(labels, ids, counts_per_class, seed, salt, class_names):
    """Per class, the first ``counts_per_class[c]`` samples in hash order (sorted result).

    ``counts_per_class`` is a list of (K,) arrays: consecutive blocks taken from each class.
    """
    blocks = [[] for _ in counts_per_class]
    for c in range(len(class_names)):
        members = np.flatnonzero(labels == c)
        ordered = members[hash_order(ids[members], seed, salt)]
        start = 0
        for block, counts in zip(blocks, counts_per_class, strict=True):
            block.append(ordered[start : start + counts[c]])
            start += counts[c]
    return [np.sort(np.concatenate(b)).astype(np.int64) for b in blocks]


def _check_covers(labels, indices, n_classes, what, class_names):
    missing = np.flatnonzero(np.bincount(labels[indices], minlength=n_classes) == 0)
    if missing.size:
        raise ValueError(
            f"the {what} set misses class(es) {[class_names[c] for c in missing]}; "
            "use stratified=True or a larger size"
        )


def make_splits(
    train_data: Dataset,
    test_data: Dataset,
    n_train=None,
    n_imprint=0.1,
    n_probe=None,
    seed: int = 0,
    stratified: bool = True,
) -> Split:
    """Draw the training, imprint and probe sets (see the module docstring).

    Parameters
    ----------
    train_data, test_data : Dataset
        The train and test splits of one dataset (same class names).
    n_train : int, float or None
        Size of the training set: a count, a fraction of the train samples left after the
        imprint set, or None for all of them.
    n_imprint : int or float
        Size of the imprint set: a count or a fraction of the train split (default 10 %). It must
        contain every class, so it needs at least one sample per class.
    n_probe : int, float or None
        Size of the probe set: a count, a fraction of the test split, or None for all of it.
        It must contain every class.
    seed : int
    stratified : bool
        Draw each set class by class, in proportion to the class sizes (default). Otherwise draw
        from all samples at once; a set that then misses a class is an error.

    Returns
    -------
    Split
    """
    if list(train_data.class_names) != list(test_data.class_names):
        raise ValueError(
            f"train and test data have different class names: "
            f"{train_data.class_names} and {test_data.class_names}"
        )
    names = list(train_data.class_names)
    n_classes = len(names)
    train_where = f"the train split of {train_data.name!r}"
    n_imp = _resolve_size(n_imprint, len(train_data), "n_imprint", train_where)
    n_tr = _resolve_size(
        n_train,
        len(train_data) - n_imp,
        "n_train",
        f"{train_where} after the {n_imp} imprint samples",
    )
    n_pr = _resolve_size(
        n_probe, len(test_data), "n_probe", f"the test split of {test_data.name!r}"
    )
    if stratified:
        available = train_data.class_counts()
        imp_counts = _allocate(n_imp, available, True, "n_imprint", names)
        tr_counts = _allocate(n_tr, available - imp_counts, False, "n_train", names)
        imprint_idx, train_idx = _stratified(
            train_data.labels, train_data.ids, [imp_counts, tr_counts], seed, "train", names
        )
        pr_counts = _allocate(n_pr, test_data.class_counts(), True, "n_probe", names)
        (probe_idx,) = _stratified(
            test_data.labels, test_data.ids, [pr_counts], seed, "probe", names
        )
    else:
        order = hash_order(train_data.ids, seed, "train")
        imprint_idx = np.sort(order[:n_imp])
        train_idx = np.sort(order[n_imp : n_imp + n_tr])
        probe_idx = np.sort(hash_order(test_data.ids, seed, "probe")[:n_pr])
        _check_covers(train_data.labels, imprint_idx, n_classes, "imprint", names)
        _check_covers(test_data.labels, probe_idx, n_classes, "probe", names)
    return Split(
        train_indices=train_idx,
        imprint_indices=imprint_idx,
        probe_indices=probe_idx,
        probe_hash=probe_hash(test_data.ids[probe_idx], test_data.labels[probe_idx]),
        label_space_hash=label_space_hash(names),
        seed=int(seed),
        stratified=bool(stratified),
        train_data=train_data,
        test_data=test_data,
    )
