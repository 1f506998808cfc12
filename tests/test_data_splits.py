"""Deterministic training / imprint / probe splits and their hashes."""

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskspace.data import (
    Dataset,
    hash_order,
    label_space_hash,
    load_digits,
    make_splits,
    probe_hash,
)
from taskspace.data.splits import _allocate


def toy(split, counts, name="toy", offset=0):
    """A dataset with ``counts[c]`` samples of class c (sorted by class)."""
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    images = np.arange(len(labels), dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)
    ids = [f"{split}/{i + offset}" for i in range(len(labels))]
    return Dataset(name, split, images, labels, [f"c{c}" for c in range(len(counts))], ids)


@pytest.fixture(scope="module")
def digits():
    return load_digits("train"), load_digits("test")


def test_split_sets_are_disjoint_sorted_and_stratified(digits):
    train, test = digits
    split = make_splits(train, test, n_train=500, n_imprint=100, n_probe=200, seed=3)
    assert (split.train_indices.size, split.imprint_indices.size, split.probe_indices.size) == (
        500,
        100,
        200,
    )
    assert np.intersect1d(split.train_indices, split.imprint_indices).size == 0
    for idx, ds in (
        (split.train_indices, train),
        (split.imprint_indices, train),
        (split.probe_indices, test),
    ):
        assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)
        assert idx.min() >= 0 and idx.max() < len(ds)
    # Stratified: per-class sizes within one of the proportional share (digits are ~balanced).
    for idx, ds, n in (
        (split.imprint_indices, train, 100),
        (split.probe_indices, test, 200),
        (split.train_indices, train, 500),
    ):
        counts = np.bincount(ds.labels[idx], minlength=10)
        share = ds.class_counts() / len(ds) * n
        assert np.all(counts >= 1) and np.all(np.abs(counts - share) <= 1.5)


def test_split_helpers_return_the_selected_samples(digits):
    train, test = digits
    split = make_splits(train, test, n_train=50, n_imprint=20, n_probe=30)
    probe = split.probe()
    np.testing.assert_array_equal(probe.images, test.images[split.probe_indices])
    np.testing.assert_array_equal(probe.labels, test.labels[split.probe_indices])
    np.testing.assert_array_equal(split.imprint().ids, train.ids[split.imprint_indices])
    assert len(split.train()) == 50 and split.class_names == train.class_names
    meta = split.metadata()
    assert meta == {
        "dataset": "digits",
        "seed": 0,
        "stratified": True,
        "n_train": 50,
        "n_imprint": 20,
        "n_probe": 30,
        "probe_hash": split.probe_hash,
        "label_space_hash": split.label_space_hash,
    }
    assert "n_probe=30" in repr(split) and split.probe_hash[:12] in repr(split)


def test_hashes_follow_their_written_formulas(digits):
    train, test = digits
    split = make_splits(train, test, n_probe=40)
    ids, labels = test.ids[split.probe_indices], test.labels[split.probe_indices]
    text = "".join(f"{i}\t{y}\n" for i, y in zip(ids, labels, strict=True))
    assert split.probe_hash == hashlib.sha256(text.encode()).hexdigest()
    names = "".join(f"{c}\n" for c in train.class_names)
    assert split.label_space_hash == hashlib.sha256(names.encode()).hexdigest()
    assert probe_hash(ids, labels) == split.probe_hash
    # Any change of sample, label or order changes the probe hash; names, the label space hash.
    assert probe_hash(ids[::-1], labels[::-1]) != split.probe_hash
    assert probe_hash(ids, np.roll(labels, 1)) != split.probe_hash
    assert label_space_hash(train.class_names[::-1]) != split.label_space_hash
    with pytest.raises(ValueError, match="must not contain tabs"):
        probe_hash(["a\tb"], [0])
    with pytest.raises(ValueError, match="disagree in length"):
        probe_hash(["a", "b"], [0])


def test_same_seed_same_split_other_seed_other_probe(digits):
    train, test = digits
    a = make_splits(train, test, n_train=300, n_imprint=50, n_probe=100, seed=7)
    b = make_splits(train, test, n_train=300, n_imprint=50, n_probe=100, seed=7)
    for name in ("train_indices", "imprint_indices", "probe_indices"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.probe_hash == b.probe_hash and a.label_space_hash == b.label_space_hash
    c = make_splits(train, test, n_train=300, n_imprint=50, n_probe=100, seed=8)
    assert c.probe_hash != a.probe_hash and c.label_space_hash == a.label_space_hash
    assert not np.array_equal(c.imprint_indices, a.imprint_indices)
    # The whole test split as probe does not depend on the seed.
    assert (
        make_splits(train, test, seed=1).probe_hash == make_splits(train, test, seed=2).probe_hash
    )


def test_selection_and_hash_are_pinned():
    """Selections must never change across versions: the store compares these hashes."""
    order = hash_order(["a", "b", "c", "d"], seed=0, salt="x")
    keys = [hashlib.blake2b(f"0/x/{i}".encode(), digest_size=8).digest() for i in "abcd"]
    np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"))
    names = ["c0", "c1", "c2"]
    train = Dataset(
        "toy",
        "train",
        np.zeros((12, 1, 1)),
        [0, 1, 2] * 4,
        names,
        [f"train/{i}" for i in range(12)],
    )
    test = Dataset(
        "toy", "test", np.zeros((9, 1, 1)), [0, 1, 2] * 3, names, [f"test/{i}" for i in range(9)]
    )
    split = make_splits(train, test, n_train=3, n_imprint=3, n_probe=6, seed=0)
    # Computed once from the definitions; a change here breaks every existing store.
    assert list(train.ids[split.imprint_indices]) == ["train/5", "train/9", "train/10"]
    assert list(train.ids[split.train_indices]) == ["train/0", "train/7", "train/8"]
    assert list(test.ids[split.probe_indices]) == [
        "test/0",
        "test/1",
        "test/4",
        "test/5",
        "test/6",
        "test/8",
    ]
    assert split.probe_hash == ("6d8370732ff570232736e732f601cf543f343718cb1fed43ba166fe7c4956c3e")


def test_selection_depends_on_ids_not_positions():
    train, test = toy("train", [30, 20, 25]), toy("test", [10, 10, 10])
    perm = np.random.default_rng(1).permutation(len(train))
    shuffled = train.subset(perm)
    a = make_splits(train, test, n_train=20, n_imprint=9, n_probe=12)
    b = make_splits(shuffled, test, n_train=20, n_imprint=9, n_probe=12)
    assert set(train.ids[a.imprint_indices]) == set(shuffled.ids[b.imprint_indices])
    assert set(train.ids[a.train_indices]) == set(shuffled.ids[b.train_indices])


def test_larger_training_sets_are_nested(digits):
    train, test = digits
    small = make_splits(train, test, n_train=100, n_imprint=50, n_probe=50)
    large = make_splits(train, test, n_train=400, n_imprint=50, n_probe=50)
    np.testing.assert_array_equal(small.imprint_indices, large.imprint_indices)
    assert set(small.train_indices) <= set(large.train_indices)


def test_sizes_as_counts_fractions_and_all():
    train, test = toy("train", [40, 40, 20]), toy("test", [10, 10, 10])
    split = make_splits(train, test, n_imprint=0.1, n_train=0.5, n_probe=None)
    assert split.imprint_indices.size == 10 and split.train_indices.size == 45
    assert split.probe_indices.size == 30
    np.testing.assert_array_equal(np.bincount(train.labels[split.imprint_indices]), [4, 4, 2])
    everything = make_splits(train, test, n_imprint=3)
    assert everything.train_indices.size == 97  # n_train=None: all that is left
    assert make_splits(train, test, n_train=0, n_imprint=3).train_indices.size == 0


def test_unbalanced_classes_still_all_in_imprint_and_probe():
    train, test = toy("train", [200, 2, 1]), toy("test", [50, 1, 5])
    split = make_splits(train, test, n_imprint=3, n_probe=3)
    np.testing.assert_array_equal(np.bincount(train.labels[split.imprint_indices]), [1, 1, 1])
    np.testing.assert_array_equal(np.bincount(test.labels[split.probe_indices]), [1, 1, 1])
    # The lone sample of class 2 went to imprinting, so training has none of it.
    assert 2 not in train.labels[split.train_indices]


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (
            {"n_probe": 31},
            ValueError,
            "n_probe=31 asks for 31 samples but the test split of 'toy' has only 30",
        ),
        ({"n_imprint": 2}, ValueError, "n_imprint=2 is fewer than the 3 classes"),
        ({"n_imprint": 10, "n_train": 91}, ValueError, "after the 10 imprint samples has only 90"),
        ({"n_probe": 1.5}, ValueError, r"n_probe=1\.5 as a fraction must lie in \(0, 1\]"),
        ({"n_imprint": 0.0}, ValueError, "as a fraction must lie in"),
        ({"n_train": -1}, ValueError, "must not be negative"),
        ({"n_train": True}, TypeError, "n_train must be an int"),
        ({"n_probe": "all"}, TypeError, "n_probe must be an int"),
    ],
)
def test_bad_sizes(kwargs, error, message):
    train, test = toy("train", [40, 40, 20]), toy("test", [10, 10, 10])
    with pytest.raises(error, match=message):
        make_splits(train, test, **{"n_imprint": 5, **kwargs})


def test_missing_class_and_mismatched_label_spaces():
    train = toy("train", [10, 10, 0])
    with pytest.raises(ValueError, match=r"class\(es\) \['c2'\] have no samples"):
        make_splits(train, toy("test", [3, 3, 3]), n_imprint=5)
    other = Dataset("toy", "test", np.zeros((2, 1, 1)), [0, 1], ["x", "y"], ["a", "b"])
    with pytest.raises(ValueError, match="different class names"):
        make_splits(toy("train", [5, 5]), other)


def test_unstratified_split():
    train, test = toy("train", [30, 30, 30]), toy("test", [20, 20, 20])
    split = make_splits(train, test, n_imprint=30, n_probe=30, n_train=40, stratified=False)
    assert split.imprint_indices.size == 30 and split.train_indices.size == 40
    assert np.intersect1d(split.imprint_indices, split.train_indices).size == 0
    assert not split.stratified
    lopsided = toy("train", [300, 3, 3])
    with pytest.raises(ValueError, match=r"the imprint set misses class\(es\)"):
        # With 3 of 306 samples, seed 0 draws no c1 or c2 in 3 tries (checked): an error.
        make_splits(lopsided, test, n_imprint=3, stratified=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=8), st.data())
def test_allocation_is_proportional_and_exact(available, data):
    available = np.array(available)
    every = data.draw(st.booleans()) and bool(np.all(available > 0))
    low = available.size if every else 0
    if available.sum() < low:
        return
    n = data.draw(st.integers(low, int(available.sum())))
    counts = _allocate(n, available, every, "n", [str(i) for i in range(available.size)])
    assert counts.sum() == n and np.all(counts <= available) and np.all(counts >= int(every))
    base = np.full(available.size, int(every))
    pool = available - base
    if pool.sum():
        exact = base + (n - base.sum()) * pool / pool.sum()
        assert np.all(np.abs(counts - exact) < 1)


def test_real_fashion_default_split():
    from pathlib import Path

    from taskspace.data import load_fashion_mnist

    root = Path("/usr/share/datasets/fashion-mnist")
    if not (root / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    train = load_fashion_mnist("train", root=root, download=False)
    test = load_fashion_mnist("test", root=root, download=False)
    split = make_splits(train, test, n_imprint=1000, n_probe=2000)
    assert split.train_indices.size == 59000
    np.testing.assert_array_equal(np.bincount(train.labels[split.imprint_indices]), [100] * 10)
    np.testing.assert_array_equal(np.bincount(test.labels[split.probe_indices]), [200] * 10)
    assert split.probe_hash == make_splits(train, test, n_imprint=1000, n_probe=2000).probe_hash
