"""Task sets drawn by a fixed rule from a class hierarchy, for studies that need many tasks.

A study that tests "more diverse tasks transfer more" (finding 2) needs tasks that span the range
of diversity, chosen before anything is trained and by a rule anyone can re-run. Diversity is the
mean path distance in the hierarchy between a task's classes,
``div(T) = mean_{a < b in T} path(a, b)`` (the quantity of `analyses.progress_other_tasks`).

>>> from taskspace.data.hierarchy import ClassHierarchy
>>> tree = ClassHierarchy.for_dataset("fashion-mnist")
>>> len(all_tasks(tree, 2)), len(all_tasks(tree, 3))
(45, 120)
>>> [tree.class_names[i] for i in evenly_spaced_diversity(tree, 3, 10)[0]]
['T-shirt/top', 'Trouser', 'Shirt']
"""

from __future__ import annotations

import itertools
import re

import numpy as np

#: Short names of Fashion-MNIST's classes in task names (``pair_tshirt_shirt``).
SLUGS = {"T-shirt/top": "tshirt", "Ankle boot": "boot"}


def all_tasks(tree, size: int) -> list[tuple[int, ...]]:
    """Every task of ``size`` classes, as sorted tuples of class indices, in lexicographic order.

    Parameters
    ----------
    tree : ClassHierarchy
    size : int ≥ 2

    Returns
    -------
    list of tuple of int, C-choose-size entries
    """
    if size < 2 or size > tree.n_classes:
        raise ValueError(f"a task has 2 to {tree.n_classes} classes, got size={size}")
    return list(itertools.combinations(range(tree.n_classes), size))


def diversity(tree, task) -> float:
    """Mean path distance between the classes of ``task`` (class indices)."""
    D = tree.class_distances("path")
    return float(np.mean([D[a, b] for a, b in itertools.combinations(task, 2)]))


def evenly_spaced_diversity(tree, size: int, n: int) -> list[tuple[int, ...]]:
    """``n`` distinct tasks of ``size`` classes spanning the range of diversity evenly.

    The rule (v2's, docs/results.md): for each of ``n`` targets evenly spaced from the least to
    the most diverse of all tasks of that size (``np.linspace(min, max, n)``), in order, the task
    not yet chosen whose diversity is closest to the target; ties broken by the fewest uses of
    its classes among the tasks chosen so far, then by the class indices in lexicographic order.

    Parameters
    ----------
    tree : ClassHierarchy
    size : int ≥ 2
    n : int, 1 ≤ n ≤ the number of tasks of that size

    Returns
    -------
    list of tuple of int, length n
        In the order of their targets (increasing diversity).
    """
    candidates = all_tasks(tree, size)
    if not 1 <= n <= len(candidates):
        raise ValueError(f"n must be in [1, {len(candidates)}] for tasks of {size}, got {n}")
    div = {task: diversity(tree, task) for task in candidates}
    used = np.zeros(tree.n_classes, dtype=int)
    chosen: list[tuple[int, ...]] = []
    taken: set[tuple[int, ...]] = set()
    for target in np.linspace(min(div.values()), max(div.values()), n):

        def key(task, target=target):
            # rounded so that float noise in the distance does not beat the stated tie-breaks
            return (round(abs(div[task] - target), 9), int(used[list(task)].sum()), task)

        best = min((t for t in candidates if t not in taken), key=key)
        chosen.append(best)
        taken.add(best)
        used[list(best)] += 1
    return chosen


def task_name(tree, task, prefix: str) -> str:
    """A TOML-safe name: the prefix and the classes' short names (``pair_tshirt_shirt``)."""
    slugs = []
    for i in task:
        name = tree.class_names[i]
        slugs.append(SLUGS.get(name) or re.sub(r"[^a-z0-9]+", "", name.lower()))
    return "_".join([prefix, *slugs])
