"""taskspace.embedding: the distance and embedding choices of the CLI, as library functions."""

import numpy as np
import pandas as pd
import pytest

from taskspace.embedding import compute_distances, embed_store, off_diagonal_range
from taskspace.geometry import InPCA, LandmarkInPCA, pairwise_distances
from taskspace.store import Store
from tests.helpers import random_models

N, C = 30, 4


@pytest.fixture
def store(tmp_path):
    s = Store.create(tmp_path / "s", np.arange(N) % C, list("abcd"), chunk_samples=16)
    for rid, t, seed in [("a", 9, 0), ("b", 7, 1), ("c", 8, 2)]:
        s.add_run(rid, task="t", classes=None, method="m", seed=seed)
        s.append(rid, random_models(np.random.default_rng(seed), (t, N, C), 2.0), np.arange(t))
    return s


def test_compute_distances_in_process_fills_the_cache(store):
    D, ids = compute_distances(store, "run_id != 'b'")
    X, table = store.collection("run_id != 'b'")
    assert ids == list(table["model_id"])
    np.testing.assert_allclose(D, pairwise_distances(np.asarray(X)), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(store.cached_distances(ids)[:], D)
    with pytest.raises(ValueError, match="`scheduler` or `n_workers`, not both"):
        compute_distances(store, scheduler="tcp://x:1", n_workers=2)


def test_off_diagonal_range_by_blocks():
    D = np.array([[0.0, 3.0, 1.0], [3.0, 0.0, 2.0], [1.0, 2.0, 0.0]])
    assert off_diagonal_range(D) == (1.0, 3.0)
    assert off_diagonal_range(np.zeros((1, 1))) is None
    assert D[0, 0] == 0.0  # the caller's matrix is not written


@pytest.mark.parametrize("metric", ["bhattacharyya", "hellinger"])
def test_dense_is_inpca_of_the_matrix(store, metric):
    res = embed_store(store, metric=metric, n_components=2)
    X, _ = store.collection()
    D = pairwise_distances(np.asarray(X), metric=metric)
    D = D * D if metric == "hellinger" else D
    ref = InPCA(n_components=2, metric="precomputed", random_state=0).fit(D)
    assert isinstance(res.estimator, InPCA) and (res.method, res.source) == ("dense", "cache")
    np.testing.assert_allclose(res.estimator.embedding_, ref.embedding_, atol=1e-9)


def test_out_of_core_equals_dense(store):
    dense = embed_store(store, n_components=3)
    ooc = embed_store(store, n_components=3, method="out-of-core")
    assert ooc.estimator.solver_ == "out-of-core" and ooc.model_ids == dense.model_ids
    np.testing.assert_allclose(ooc.estimator.eigenvalues_, dense.estimator.eigenvalues_, rtol=1e-8)
    np.testing.assert_allclose(
        np.abs(ooc.estimator.embedding_), np.abs(dense.estimator.embedding_), atol=1e-7
    )
    with pytest.raises(ValueError, match="'bhattacharyya' only"):
        embed_store(store, metric="geodesic", method="out-of-core")


@pytest.mark.parametrize("rule", ["farthest", "stratified"])
def test_landmark_from_predictions_then_from_the_cache(store, rule):
    X, table = store.collection()
    ref = LandmarkInPCA(n_components=2, n_landmarks=6, rule=rule, random_state=0).fit(
        np.asarray(X), meta=table
    )
    first = embed_store(store, n_components=2, method="landmark", n_landmarks=6, rule=rule)
    assert first.source == "predictions"
    store.distance_matrix()
    second = embed_store(store, n_components=2, method="landmark", n_landmarks=6, rule=rule)
    assert second.source == "cache" and second.estimator.metric == "precomputed"
    for res in (first, second):
        np.testing.assert_array_equal(res.estimator.landmarks_, ref.landmarks_)
        np.testing.assert_allclose(
            np.abs(res.estimator.embedding_), np.abs(ref.embedding_), atol=1e-9
        )
    # More landmarks than models: all of them.
    every = embed_store(store, n_components=2, method="landmark", n_landmarks=10**6)
    assert len(every.estimator.landmarks_) == len(table)


def test_embed_errors(store):
    with pytest.raises(ValueError, match="`method` must be one of"):
        embed_store(store, method="umap")
    with pytest.raises(ValueError, match="needs `n_landmarks`"):
        embed_store(store, method="landmark")
    with pytest.raises(ValueError, match="`rule` must be one of"):
        embed_store(store, method="landmark", n_landmarks=3, rule="random")


def test_save_npz_and_csv(store, tmp_path):
    res = embed_store(store, n_components=2)
    saved = np.load(res.save(tmp_path / "e.npz"))
    np.testing.assert_array_equal(saved["embedding"], res.estimator.embedding_)
    np.testing.assert_array_equal(saved["signature"], res.estimator.signature_)
    assert list(saved["model_id"]) == res.model_ids
    frame = pd.read_csv(res.save(tmp_path / "sub" / "e.csv"))
    assert list(frame.columns) == ["model_id", "axis_1", "axis_2"]
    np.testing.assert_allclose(frame[["axis_1", "axis_2"]].to_numpy(), res.estimator.embedding_)
    with pytest.raises(ValueError, match=r"\.npz or \.csv"):
        res.save(tmp_path / "e.txt")
