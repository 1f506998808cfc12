"""Tasks: named subsets of the label space (SPEC §12).

A task is a set of at least two classes of the label space, given as a class list, as a node of a
class hierarchy (every class below a WordNet synset), or drawn at random with a seed. A network
trained on a task sees the training samples of its classes, with labels re-indexed within the task
(`Task.relabel`); it is then recorded over the whole label space by imprinting (SPEC §11).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from taskspace.data.hierarchy import listing

_MAX_NAME = 60


def _normal(name: str) -> str:
    return " ".join(str(name).casefold().replace("_", " ").replace("-", " ").split())


def _label_space(label_space) -> tuple[str, ...]:
    """Class names of a label space given as names or as its size C (names '0' ... 'C-1')."""
    if isinstance(label_space, int | np.integer):
        if label_space < 2:
            raise ValueError(f"a label space needs at least 2 classes, got {label_space}")
        return tuple(str(c) for c in range(label_space))
    if isinstance(label_space, str) or not isinstance(label_space, Sequence | np.ndarray):
        raise TypeError(
            "`label_space` must be a sequence of class names or the number of "
            f"classes, got {type(label_space).__name__}"
        )
    names = tuple(str(n) for n in label_space)
    if len(names) < 2:
        raise ValueError(f"a label space needs at least 2 classes, got {len(names)}")
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"`label_space` repeats class name(s) {repeated}")
    return names


def _resolve(item, names: tuple[str, ...]) -> int:
    """Index of one class given by index or by name (exact, else case/separator-insensitive)."""
    C = len(names)
    if isinstance(item, bool):
        raise TypeError(f"a class is given by index or name, got {item!r}")
    if isinstance(item, int | np.integer):
        if not 0 <= item < C:
            raise ValueError(f"class index {int(item)} out of range [0, {C})")
        return int(item)
    if not isinstance(item, str):
        raise TypeError(f"a class is given by index or name, got {type(item).__name__}")
    if item in names:
        return names.index(item)
    loose = [c for c, n in enumerate(names) if _normal(n) == _normal(item)]
    if len(loose) == 1:
        return loose[0]
    close = difflib.get_close_matches(item, names, n=3)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    raise ValueError(f"unknown class {item!r}{hint}; valid class names: {listing(names)}")


def _default_name(class_names) -> str:
    joined = "+".join(class_names)
    if len(joined) <= _MAX_NAME:
        return joined
    digest = hashlib.sha1(joined.encode("utf-8")).hexdigest()[:8]
    return f"{len(class_names)}-classes-{digest}"


@dataclass(frozen=True)
class Task:
    """A named subset of at least two classes of the label space.

    Attributes
    ----------
    name : str
    classes : tuple of int
        Indices into the label space, strictly increasing. Within the task, class
        ``classes[k]`` has label ``k``.
    class_names : tuple of str
        Names of those classes, in the same order.
    """

    name: str
    classes: tuple[int, ...]
    class_names: tuple[str, ...]

    def __post_init__(self):
        classes = tuple(int(c) for c in self.classes)
        names = tuple(str(n) for n in self.class_names)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "name", str(self.name))
        if len(classes) < 2:
            raise ValueError(f"a task needs at least 2 classes, got {len(classes)}: {classes}")
        if any(c < 0 for c in classes) or any(a >= b for a, b in pairwise(classes)):
            raise ValueError(
                f"task classes must be distinct non-negative indices in increasing "
                f"order, got {classes}"
            )
        if len(names) != len(classes):
            raise ValueError(
                f"a task needs one name per class: {len(classes)} classes, {len(names)} names"
            )

    def __len__(self) -> int:
        return len(self.classes)

    # -- builders ---------------------------------------------------------------------------
    @classmethod
    def from_classes(cls, classes, label_space, name: str | None = None) -> Task:
        """The task made of ``classes`` (names or indices of ``label_space``, any order).

        Parameters
        ----------
        classes : iterable of int or str
            At least two distinct classes.
        label_space : sequence of str or int
            Class names of the label space in index order, or its size C.
        name : str, optional
            Default: the class names joined by ``+`` (or ``"<k>-classes-<hash>"`` when long).
        """
        names = _label_space(label_space)
        if isinstance(classes, str):
            raise TypeError(f"`classes` must be a list of classes, got the string {classes!r}")
        indices = [_resolve(item, names) for item in classes]
        repeated = sorted({names[i] for i in indices if indices.count(i) > 1})
        if repeated:
            raise ValueError(f"`classes` names class(es) {repeated} more than once")
        if len(indices) < 2:
            raise ValueError(f"a task needs at least 2 classes, got {len(indices)}")
        indices.sort()
        class_names = tuple(names[i] for i in indices)
        return cls(name or _default_name(class_names), tuple(indices), class_names)

    @classmethod
    def from_node(cls, node: str, hierarchy, label_space=None, name: str | None = None) -> Task:
        """Every class at or below a node of a class hierarchy.

        Parameters
        ----------
        node : str
            A synset name (``"footwear.n.02"``) or wnid (``"n03380867"``).
        hierarchy : ClassHierarchy or str
            The hierarchy of the label space, or a built-in dataset name (``"fashion-mnist"``).
        label_space : sequence of str or int, optional
            Class names of the label space; must match the hierarchy's classes (compared without
            case and separators). Default: the hierarchy's class names. A size C is only
            checked against the hierarchy's.
        name : str, optional
            Default: the node's synset name.
        """
        from taskspace.data.hierarchy import ClassHierarchy

        if isinstance(hierarchy, str):
            hierarchy = ClassHierarchy.for_dataset(hierarchy)
        names = hierarchy.class_names if label_space is None else _label_space(label_space)
        if len(names) != hierarchy.n_classes:
            raise ValueError(
                f"`label_space` has {len(names)} classes, the hierarchy {hierarchy.n_classes}"
            )
        for c, (ours, theirs) in enumerate(zip(names, hierarchy.class_names, strict=True)):
            if not isinstance(label_space, int) and _normal(ours) != _normal(theirs):
                raise ValueError(
                    f"`label_space` does not match the hierarchy: class {c} is "
                    f"{ours!r} in the label space, {theirs!r} in the hierarchy"
                )
        node_name = hierarchy.node_name(node)
        below = hierarchy.classes_below(node_name)
        if below.size < 2:
            valid = hierarchy.nodes(min_classes=2)
            raise ValueError(
                f"node {node!r} has only {below.size} class ({names[below[0]]!r}) below it; a "
                f"task needs at least 2. Nodes with at least 2 classes: "
                f"{listing(valid, full='hierarchy.nodes(min_classes=2) lists them all')}"
            )
        indices = tuple(int(c) for c in below)
        return cls(name or node_name, indices, tuple(names[i] for i in indices))

    @classmethod
    def random(cls, k: int, label_space, seed: int, name: str | None = None) -> Task:
        """``k`` classes drawn uniformly without replacement, reproducibly from ``seed``.

        Parameters
        ----------
        k : int
            Number of classes, ``2 <= k <= C``.
        label_space : sequence of str or int
            Class names of the label space, or its size C.
        seed : int
            Seed of ``numpy.random.default_rng``.
        name : str, optional
            Default ``"random-<k>-seed<seed>"``.
        """
        names = _label_space(label_space)
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise TypeError(f"`k` must be an integer, got {type(k).__name__}")
        if not 2 <= k <= len(names):
            raise ValueError(
                f"`k` must lie in [2, {len(names)}] (the label space has "
                f"{len(names)} classes), got {k}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"`seed` must be an integer, got {type(seed).__name__}")
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(len(names), size=int(k), replace=False))
        return cls(
            name or f"random-{k}-seed{seed}",
            tuple(int(i) for i in indices),
            tuple(names[i] for i in indices),
        )

    # -- data -------------------------------------------------------------------------------
    def relabel(self, labels) -> tuple[np.ndarray, np.ndarray]:
        """Select the samples of the task and re-index their labels within it.

        Parameters
        ----------
        labels : array_like of int, shape (N,)
            Labels in the whole label space.

        Returns
        -------
        mask : ndarray of bool, shape (N,)
            True for the samples whose class belongs to the task.
        task_labels : ndarray of int64, shape (mask.sum(),)
            Their labels within the task: ``k`` for class ``classes[k]``.
        """
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"`labels` must be 1-D, got shape {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"`labels` must be integers, got dtype {labels.dtype}")
        if labels.size and labels.min() < 0:
            first = int(np.flatnonzero(labels < 0)[0])
            raise ValueError(f"`labels` must be non-negative; labels[{first}] = {labels[first]}")
        classes = np.asarray(self.classes, dtype=np.int64)
        mask = np.isin(labels, classes)
        return mask, np.searchsorted(classes, labels[mask]).astype(np.int64)

    def to_dict(self) -> dict:
        """Plain description for metadata (the store keeps it with each run)."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "class_names": list(self.class_names),
        }

    @classmethod
    def from_dict(cls, data) -> Task:
        return cls(data["name"], tuple(data["classes"]), tuple(data["class_names"]))
