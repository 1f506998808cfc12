"""The analyses' tests on constructed stores with a planted answer: a task picture that follows
WordNet (and one whose tasks were relabelled at random), transfer that grows with diversity within
a size (and only across sizes), and runs that have or have not plateaued."""

import numpy as np
import pytest

from taskspace import Store
from taskspace.data.hierarchy import ClassHierarchy

FASHION = ClassHierarchy.for_dataset("fashion-mnist")
NAMES = list(FASHION.class_names)
#: Ten two-class tasks, each class in two of them (the reference study's tree set).
PAIRS = [
    ("T-shirt/top", "Shirt"),
    ("Pullover", "Coat"),
    ("Sandal", "Sneaker"),
    ("Sneaker", "Ankle boot"),
    ("Sandal", "Bag"),
    ("Trouser", "Shirt"),
    ("T-shirt/top", "Dress"),
    ("Pullover", "Trouser"),
    ("Coat", "Ankle boot"),
    ("Dress", "Bag"),
]
STEPS = [0, 2, 5, 10, 20, 50, 100, 200, 400, 800, 1000]
N_PER_CLASS = 8


def _softmax(logits):
    P = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return P / P.sum(axis=-1, keepdims=True)


def _wordnet(tasks):
    from taskspace.study.analyses.tree import wordnet_task_distances

    class _S:
        hierarchy = FASHION.to_dict()
        class_names = NAMES

    idx = {c: i for i, c in enumerate(NAMES)}
    return wordnet_task_distances(_S, {f"t{i}": [idx[c] for c in t] for i, t in enumerate(tasks)})


def _locations(W, k=4):
    """Classical MDS of W: points whose Euclidean distances follow W."""
    n = W.shape[0]
    J = np.eye(n) - 1 / n
    vals, vecs = np.linalg.eigh(-0.5 * J @ (W**2) @ J)
    order = np.argsort(vals)[::-1][:k]
    return vecs[:, order] * np.sqrt(np.maximum(vals[order], 0))


def _planted_store(path, order=None, seeds=(0, 1)):
    """Two seeds per pair task; a task's models sit at its WordNet location (``order``: the
    locations handed to the tasks in that order instead)."""
    labels = np.repeat(np.arange(10), N_PER_CLASS)
    store = Store.create(path, labels, NAMES, hierarchy=FASHION.to_dict())
    loc = _locations(_wordnet(PAIRS))
    if order is not None:
        loc = loc[order]
    rng = np.random.default_rng(0)
    G = rng.normal(size=(labels.size, 10, loc.shape[1]))  # the same map for every task
    truth = np.eye(10)[labels]
    t = np.log1p(STEPS) / np.log1p(STEPS[-1])
    for i, classes in enumerate(PAIRS):
        for seed in seeds:
            noise = np.random.default_rng(100 * i + seed).normal(0, 0.05, (labels.size, 10))
            logits = t[:, None, None] * (3 * truth + 0.6 * (G @ loc[i]) + noise)
            run = store.add_run(
                task="+".join(classes), classes=list(classes), method="supervised", seed=seed
            )
            store.append(run, _softmax(logits), STEPS)
    return store


def assert_headline(result):
    """The finding's headline: at most 140 characters, starting with its verdict."""
    from taskspace.study.analyses import VERDICTS

    f = result.finding
    assert f.verdict in VERDICTS
    assert len(f.headline) <= 140 and f.headline.startswith(f"{f.verdict} — "), f.headline


@pytest.mark.slow
def test_tree_finds_planted_wordnet_structure(tmp_path):
    from taskspace.study.analyses import tree

    r = tree(_planted_store(tmp_path / "s"), n_perm=999)
    s = r.summary
    assert s["mantel_end"] > 0.8 and s["mantel_end_p"] < 0.01, r.finding
    assert s["mantel_traj"] > 0.8 and s["mantel_traj_p"] < 0.01, r.finding
    assert s["verdict"] == "agrees" and "verdict: agrees" in r.finding.details
    assert r.finding.verdict == "agrees" and r.finding.headline.startswith("agrees — ")
    assert_headline(r)
    assert set(r.table["distances"]) == {"end models, d_B", "trajectories, d_traj", "WordNet"}


@pytest.mark.slow
def test_tree_does_not_find_shuffled_structure(tmp_path):
    from taskspace.study.analyses import tree

    order = np.random.default_rng(5).permutation(len(PAIRS))
    r = tree(_planted_store(tmp_path / "s", order=order), n_perm=999)
    assert r.summary["mantel_end_p"] > 0.05, r.finding
    assert r.summary["mantel_traj_p"] > 0.05, r.finding
    assert r.summary["verdict"] != "agrees"
    assert r.finding.verdict == r.summary["verdict"]
    assert_headline(r)


def _transfer_store(path, within: float, across: float):
    """Tasks of 2 and of 3 classes; a task's models learn the other classes with a weight that
    grows by ``within`` per unit of diversity inside its size and by ``across`` per class."""
    from taskspace.study.analyses.progress_other_tasks import class_diversity

    labels = np.repeat(np.arange(10), N_PER_CLASS)
    store = Store.create(path, labels, NAMES, hierarchy=FASHION.to_dict())
    triples = [
        (0, 6, 1),
        (5, 7, 9),
        (0, 2, 4),
        (1, 3, 6),
        (2, 5, 8),
        (0, 7, 8),
        (3, 8, 9),
        (1, 4, 9),
    ]
    pairs = [(0, 6), (5, 7), (2, 4), (1, 3), (0, 8), (4, 9), (3, 5), (6, 8)]
    truth = np.eye(10)[labels]
    rng = np.random.default_rng(0)
    start = rng.normal(size=truth.shape)
    for classes in pairs + triples:
        div = class_diversity(store, classes)[0]
        weight = 0.05 + within * div + across * len(classes)
        for seed in (0, 1, 2):
            # seeds differ a little in how much they transfer, so resampling them varies
            jitter = 0.02 * np.random.default_rng([seed, *classes]).normal()
            w = np.where(np.isin(labels, classes), 1.0, weight + jitter)[:, None]
            noise = np.random.default_rng(seed).normal(0, 0.02, truth.shape)
            P = np.array(
                [_softmax((1 - t) * start + t * (5 * w * truth + noise)) for t in (0, 0.5, 1)]
            )
            run = store.add_run(
                task="+".join(NAMES[c] for c in classes),
                classes=[NAMES[c] for c in classes],
                method="supervised",
                seed=seed,
            )
            store.append(run, P, [0, 50, 100])
    return store


@pytest.mark.slow
def test_progress_diversity_within_size_is_found(tmp_path):
    from taskspace.study.analyses import progress_on_other_tasks

    r = progress_on_other_tasks(
        _transfer_store(tmp_path / "s", within=0.06, across=0.0), n_boot=30, n_perm=999
    )
    s = r.summary
    assert [b["size"] for b in s["by_size"]] == [2, 3]
    assert all(b["spearman"] > 0.8 and b["p_value"] < 0.01 for b in s["by_size"]), r.finding
    assert s["spearman"] > 0.8 and s["p_value"] < 0.01 and s["verdict"] == "agrees"
    assert "Stratified by size" in r.finding.details and "partial ρ" in r.finding.details
    assert r.finding.verdict == "agrees" and "ρ = " in r.finding.headline
    assert_headline(r)


@pytest.mark.slow
def test_progress_size_alone_is_not_mistaken_for_diversity(tmp_path):
    from taskspace.study.analyses import progress_on_other_tasks

    r = progress_on_other_tasks(
        _transfer_store(tmp_path / "s", within=0.0, across=0.15), n_boot=30, n_perm=999
    )
    s = r.summary
    # Bigger tasks transfer more; within a size nothing depends on diversity.
    assert s["p_value"] > 0.05 and s["verdict"] != "agrees", r.finding
    assert_headline(r)


@pytest.mark.parametrize("flat_end, converged", [(True, True), (False, False)])
def test_plateau_table_on_runs(tmp_path, flat_end, converged):
    from taskspace.study.analyses._common import run_table
    from taskspace.study.analyses.episodic import plateau_table

    labels = np.repeat(np.arange(10), N_PER_CLASS)
    store = Store.create(tmp_path / "s", labels, NAMES)
    truth = np.eye(10)[labels]
    # Logit scale ∝ t: learning until the last record, or done by half-way and flat after.
    ts = np.r_[np.linspace(0, 1, 6), np.ones(5)] if flat_end else np.linspace(0, 1, 11)
    run = store.add_run(task="all", classes=NAMES, method="supervised", seed=0)
    store.append(run, np.array([_softmax(4 * t * truth) for t in ts]), list(range(0, 110, 10)))
    t = plateau_table(store, run_table(store))
    assert bool(t["converged"].iloc[0]) is converged
    assert bool(t["change"].iloc[0] < 0.02) is converged


def test_progress_of_runs_that_never_moved_warns_nothing(tmp_path):
    # Runs that make no progress on their own task (own progress 0: relative progress undefined
    # everywhere) get NaN transfer, said in the table, instead of NumPy's "Mean of empty slice".
    import warnings

    from taskspace.study.analyses import progress_on_other_tasks

    labels = np.repeat(np.arange(10), N_PER_CLASS)
    store = Store.create(tmp_path / "s", labels, NAMES, hierarchy=FASHION.to_dict())
    uniform = np.full((3, len(labels), 10), 0.1)
    for classes in ([0, 1], [2, 3], [4, 5]):
        for seed in (0, 1):
            run = store.add_run(
                task="+".join(NAMES[c] for c in classes),
                classes=[NAMES[c] for c in classes],
                method="supervised",
                seed=seed,
            )
            store.append(run, uniform, [0, 50, 100])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = progress_on_other_tasks(store, n_boot=5, n_perm=99)
    t = r.result.table
    assert np.all(t["own_progress"] == 0) and t["relative"].isna().all()
    assert_headline(r)
