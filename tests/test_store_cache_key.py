"""The distance cache is keyed by everything that changes its numbers (issue 15 §1): metric,
eps, precision and the kernels' version. Each change of key misses and recomputes; no request
is ever served a matrix computed with another key."""

import json

import numpy as np
import pytest

import taskspace as ts
from taskspace.geometry.distances import DEFAULT_EPS
from taskspace.store import CorruptStoreError, Store, cache
from tests.helpers import random_models

N, C = 30, 4


def _store(path):
    s = Store.create(path, np.arange(N) % C, list("abcd"), chunk_samples=16)
    for i, rid in enumerate(("a", "b")):
        s.add_run(rid, task="t", classes=None, method="m", seed=i)
        # Sharp models: many Bhattacharyya coefficients fall below 0.5, so eps=0.5 changes d.
        s.append(rid, random_models(np.random.default_rng(i), (3, N, C), 6.0), np.arange(3))
    return s


def _reference(store, eps=DEFAULT_EPS):
    X, _ = store.collection()
    return ts.pairwise_distances(np.asarray(X), eps=eps)


class Counting:
    def __init__(self):
        self.calls = 0

    def __call__(self, X, Y):
        self.calls += 1
        return ts.pairwise_distances(X, Y)


def test_the_cache_knows_the_geometrys_default_eps():
    assert cache.DEFAULT_EPS == DEFAULT_EPS


def test_each_change_of_key_misses_and_recomputes(tmp_path, monkeypatch):
    store = _store(tmp_path / "s")
    count = Counting()
    store.distance_matrix(compute=count)
    store.distance_matrix(compute=count)
    assert count.calls == 1  # same key: served
    for change in ({"eps": 1e-6}, {"precision": "float32"}, {"metric": "custom"}):
        before = count.calls
        store.distance_matrix(compute=count, **change)
        assert count.calls > before, change  # another key: computed
        store.distance_matrix(compute=count, **change)
        assert count.calls == before + 1, change  # and then served itself
    monkeypatch.setattr(cache, "KERNEL_VERSION", cache.KERNEL_VERSION + 1)
    before = count.calls
    store.distance_matrix(compute=count)
    assert count.calls == before + 1  # new kernels: computed again
    names = [p.name for p in (store.path / "distances").iterdir() if p.is_dir()]
    assert len(names) == 5 and len(set(names)) == 5


def test_eps_is_honoured_by_the_default_compute(tmp_path):
    store = _store(tmp_path / "s")
    half = store.distance_matrix(eps=0.5)
    np.testing.assert_allclose(half, _reference(store, 0.5), rtol=1e-12, atol=1e-15)
    default = store.distance_matrix()
    np.testing.assert_allclose(default, _reference(store), rtol=1e-12, atol=1e-15)
    assert np.abs(default - half).max() > 0.1  # the two really differ here
    ro = Store.open(store.path)  # read-only: same keys
    np.testing.assert_array_equal(ro.distance_matrix(eps=0.5), half)
    np.testing.assert_array_equal(ro.distance_matrix(), default)


def test_a_cache_from_before_keys_is_never_served(tmp_path):
    """A store written before keys existed holds ``distances/bhattacharyya`` of unknown eps."""
    store = _store(tmp_path / "s")
    wrong = store.distance_matrix(eps=0.5)
    d = store.path / "distances"
    (d / cache.CacheKey("bhattacharyya", 0.5).name).rename(d / "bhattacharyya")
    meta = json.loads((d / "bhattacharyya" / "zarr.json").read_text())
    meta["attributes"][cache.CACHE_KEY] = {
        "key": "bhattacharyya",
        "model_ids": meta["attributes"][cache.CACHE_KEY]["model_ids"],
    }
    (d / "bhattacharyya" / "zarr.json").write_text(json.dumps(meta))
    D = Store.open(store.path, mode="a").distance_matrix()
    np.testing.assert_allclose(D, _reference(store), rtol=1e-12, atol=1e-15)
    assert np.abs(D - wrong).max() > 0.1


def test_a_cache_whose_key_was_edited_is_refused(tmp_path):
    store = _store(tmp_path / "s")
    store.distance_matrix()
    path = store.path / "distances" / cache.CacheKey("bhattacharyya").name / "zarr.json"
    meta = json.loads(path.read_text())
    meta["attributes"][cache.CACHE_KEY]["spec"]["eps"] = 0.5
    path.write_text(json.dumps(meta))
    with pytest.raises(
        CorruptStoreError,
        match=r"distance cache bhattacharyya-.*it holds "
        r"the key .*'eps': 0.5",
    ):
        store.distance_matrix()


def test_bad_keys_are_value_errors(tmp_path):
    store = _store(tmp_path / "s")
    with pytest.raises(ValueError, match="`precision` must be one of"):
        store.distance_matrix(precision="float16")
    with pytest.raises(ValueError, match="`eps`"):
        store.distance_matrix(eps="a")
    with pytest.raises(ValueError, match="`eps`"):
        store.distance_matrix(eps=2.0)  # pairwise_distances' own check


@pytest.mark.slow
def test_distributed_eps_then_store_default_returns_the_default_numbers(tmp_path):
    pytest.importorskip("distributed")
    from taskspace.distributed import distributed_distances

    store = _store(tmp_path / "s")
    half = distributed_distances(store.path, eps=0.5, n_workers=1, progress=False)
    np.testing.assert_allclose(half, _reference(store, 0.5), rtol=1e-12, atol=1e-15)
    D = Store.open(store.path, mode="a").distance_matrix()
    np.testing.assert_allclose(D, _reference(store), rtol=1e-12, atol=1e-15)
    assert np.abs(D - half).max() > 0.1
    again = distributed_distances(store.path, eps=0.5, n_workers=1, progress=False)
    np.testing.assert_array_equal(again, half)  # its own key still served
