"""Task sets drawn by a fixed rule (taskspace.study.task_sets), on the shipped WordNet tree."""

import itertools

import numpy as np
import pytest

from taskspace.data.hierarchy import ClassHierarchy
from taskspace.study.task_sets import all_tasks, diversity, evenly_spaced_diversity, task_name

#: v2's ten three-class tasks (studies/fashion-mnist.toml at the v2 run, 2026-12-02), in the order
#: of their targets.
V2_TRIPLES = [
    ("T-shirt/top", "Trouser", "Shirt"),
    ("Sandal", "Sneaker", "Ankle boot"),
    ("Trouser", "Pullover", "Coat"),
    ("Pullover", "Dress", "Shirt"),
    ("T-shirt/top", "Dress", "Coat"),
    ("Trouser", "Sandal", "Sneaker"),
    ("Sandal", "Bag", "Ankle boot"),
    ("Pullover", "Shirt", "Bag"),
    ("T-shirt/top", "Dress", "Bag"),
    ("Coat", "Sneaker", "Bag"),
]


@pytest.fixture(scope="module")
def tree():
    return ClassHierarchy.for_dataset("fashion-mnist")


def test_the_rule_reproduces_v2s_ten_triples(tree):
    chosen = evenly_spaced_diversity(tree, 3, 10)
    assert [tuple(tree.class_names[i] for i in t) for t in chosen] == V2_TRIPLES


def test_thirty_triples_are_distinct_and_track_their_targets(tree):
    chosen = evenly_spaced_diversity(tree, 3, 30)
    assert len(set(chosen)) == 30
    div = np.array([diversity(tree, t) for t in chosen])
    every = [diversity(tree, t) for t in all_tasks(tree, 3)]
    assert div[0] == min(every) and div[-1] == max(every)
    assert np.all(np.diff(div) >= 0)  # the targets increase, so do the closest tasks


def test_diversity_is_the_mean_path_distance(tree):
    D = tree.class_distances("path")
    for task in [(0, 6), (5, 7, 9), (0, 1, 2, 3)]:
        pairs = list(itertools.combinations(task, 2))
        assert diversity(tree, task) == pytest.approx(sum(D[a, b] for a, b in pairs) / len(pairs))


def test_all_tasks_and_names(tree):
    assert len(all_tasks(tree, 2)) == 45 and len(all_tasks(tree, 5)) == 252
    assert task_name(tree, (0, 6), "pair") == "pair_tshirt_shirt"
    assert task_name(tree, (5, 7, 9), "tri") == "tri_sandal_sneaker_boot"
    with pytest.raises(ValueError, match="2 to 10"):
        all_tasks(tree, 1)
    with pytest.raises(ValueError, match=r"n must be in \[1, 45\]"):
        evenly_spaced_diversity(tree, 2, 46)
