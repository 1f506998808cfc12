"""Tasks (SPEC §12): builders, their errors, and relabelling of training labels."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskspace.data.hierarchy import ClassHierarchy
from taskspace.tasks import Task

FASHION = (
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
)


def test_from_classes_by_name_index_and_mixed():
    by_name = Task.from_classes(["Sneaker", "Sandal"], FASHION)
    assert by_name == Task("Sandal+Sneaker", (5, 7), ("Sandal", "Sneaker"))
    assert Task.from_classes([7, 5], FASHION).classes == (5, 7)
    assert Task.from_classes(np.array([7, 5]), FASHION).classes == (5, 7)
    assert Task.from_classes(["Sandal", 7], FASHION, name="shoes").name == "shoes"
    assert Task.from_classes(["ankle_boot", "sandal"], FASHION).classes == (5, 9)
    assert Task.from_classes([0, 3], 4).class_names == ("0", "3")
    long = Task.from_classes(range(10), FASHION)
    assert long.name.startswith("10-classes-") and len(long) == 10


def test_from_classes_errors():
    with pytest.raises(
        ValueError,
        match=r"unknown class 'Sneakers' \(did you mean 'Sneaker'"
        r"\?\); valid class names: T-shirt/top, Trouser",
    ):
        Task.from_classes(["Sneakers", "Sandal"], FASHION)
    with pytest.raises(ValueError, match=r"\['Sandal'\] more than once"):
        Task.from_classes(["Sandal", 5, "Bag"], FASHION)
    with pytest.raises(ValueError, match="at least 2 classes, got 1"):
        Task.from_classes(["Sandal"], FASHION)
    with pytest.raises(ValueError, match=r"class index 10 out of range \[0, 10\)"):
        Task.from_classes([0, 10], FASHION)
    with pytest.raises(ValueError, match="repeats class name"):
        Task.from_classes([0, 1], ["a", "b", "a"])
    with pytest.raises(TypeError):
        Task.from_classes("Sandal", FASHION)
    with pytest.raises(TypeError):
        Task.from_classes([0.5, 1], FASHION)


def test_from_node():
    task = Task.from_node("footwear.n.02", "fashion-mnist")
    assert task == Task("footwear.n.02", (5, 7, 9), ("Sandal", "Sneaker", "Ankle boot"))
    hierarchy = ClassHierarchy.for_dataset("cifar10")
    vehicles = Task.from_node("n04524313", hierarchy, name="vehicles")  # vehicle.n.01's wnid
    assert vehicles.classes == (0, 1, 8, 9) and vehicles.name == "vehicles"
    names = [
        "Airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    assert Task.from_node("vehicle.n.01", hierarchy, label_space=names).class_names[0] == "Airplane"


def test_from_node_errors():
    with pytest.raises(ValueError, match=r"only 1 class \('Sandal'\).*footwear.n.02"):
        Task.from_node("sandal.n.01", "fashion-mnist")
    with pytest.raises(ValueError, match=r"did you mean 'footwear.n.02'.*Nodes with at least 2"):
        Task.from_node("footwear.n.01", "fashion-mnist")
    with pytest.raises(ValueError, match="not above any class"):
        Task.from_node("dog.n.01", "fashion-mnist")
    with pytest.raises(ValueError, match="has 3 classes, the hierarchy 10"):
        Task.from_node("footwear.n.02", "fashion-mnist", label_space=["a", "b", "c"])
    swapped = list(FASHION)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(ValueError, match="class 0 is 'Trouser'"):
        Task.from_node("footwear.n.02", "fashion-mnist", label_space=swapped)


def test_random_is_reproducible_and_valid():
    a = Task.random(5, 100, seed=3)
    assert a == Task.random(5, 100, seed=3) and a.name == "random-5-seed3"
    assert a != Task.random(5, 100, seed=4)
    assert Task.random(10, FASHION, seed=0).classes == tuple(range(10))
    for k in (1, 11):
        with pytest.raises(ValueError, match=r"`k` must lie in \[2, 10\]"):
            Task.random(k, FASHION, seed=0)
    with pytest.raises(TypeError, match="seed"):
        Task.random(2, FASHION, seed=None)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(2, 40).flatmap(lambda C: st.tuples(st.just(C), st.integers(2, C))),
    st.integers(0, 2**32 - 1),
)
def test_random_draws_k_distinct_classes(C_k, seed):
    C, k = C_k
    task = Task.random(k, C, seed=seed)
    assert len(task) == k and len(set(task.classes)) == k
    assert list(task.classes) == sorted(task.classes)
    assert 0 <= task.classes[0] < task.classes[-1] < C


def test_random_is_roughly_uniform():
    counts = np.zeros(10)
    for seed in range(2000):
        counts[list(Task.random(3, 10, seed=seed).classes)] += 1
    expected = 2000 * 3 / 10
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 12), st.integers(0, 200))
def test_relabel_matches_a_direct_loop(seed, k, n):
    rng = np.random.default_rng(seed)
    C = 12
    task = Task.random(k, C, seed=seed)
    labels = rng.integers(0, C, size=n)
    mask, task_labels = task.relabel(labels)
    position = {c: i for i, c in enumerate(task.classes)}
    assert mask.tolist() == [int(y) in position for y in labels]
    assert task_labels.tolist() == [position[int(y)] for y in labels if int(y) in position]
    assert task_labels.dtype == np.int64


def test_relabel_errors_and_edge_cases():
    task = Task.from_classes([2, 4], 5)
    mask, y = task.relabel([4, 0, 2, 7])  # labels beyond the task are simply left out
    assert mask.tolist() == [True, False, True, False] and y.tolist() == [1, 0]
    assert task.relabel(np.array([], dtype=int))[1].shape == (0,)
    with pytest.raises(ValueError, match="1-D"):
        task.relabel([[0, 1]])
    with pytest.raises(ValueError, match="integers"):
        task.relabel([0.0, 2.0])
    with pytest.raises(ValueError, match=r"labels\[1\] = -1"):
        task.relabel([0, -1])


def test_task_is_a_validated_frozen_value():
    task = Task("t", [1, 3], ["b", "d"])
    assert task.classes == (1, 3) and hash(task) == hash(Task("t", (1, 3), ("b", "d")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.name = "u"
    for classes, names, message in [
        ((3, 1), ("a", "b"), "increasing"),
        ((1, 1), ("a", "b"), "distinct"),
        ((1, 2), ("a",), "one name per class"),
        ((1,), ("a",), "at least 2"),
    ]:
        with pytest.raises(ValueError, match=message):
            Task("t", classes, names)
    assert Task.from_dict(task.to_dict()) == task
