"""Crash recovery, deterministically: a writer that dies at a chosen point (an exception that
nothing catches stands in for SIGKILL; test_store_kill.py does the real thing at random times)."""

import numpy as np
import pytest
import zarr

from taskspace.store import Store, _writer, cache
from taskspace.store.atomic import file_lock
from tests.helpers import random_models

N, C = 30, 3


class Died(BaseException):
    """A writer's death: not an Exception, so no cleanup code of the store catches it."""


@pytest.fixture
def store(tmp_path):
    s = Store.create(tmp_path / "s", np.arange(N) % C, ["a", "b", "c"], chunk_samples=8)
    s.add_run("r", task="t", classes=None, method="m", seed=0)
    return s


def _die(*args, **kwargs):
    raise Died


def _on_disk(store, run_id="r"):
    arr = zarr.open_array(str(store.path / "runs" / run_id / "predictions"), mode="r")
    chunk_dir = store.path / "runs" / run_id / "predictions" / "c"
    return arr.shape[0], sorted(int(p.name) for p in chunk_dir.iterdir())


def test_death_before_commit_leaves_record_invisible_then_trimmed(store, monkeypatch):
    rng = np.random.default_rng(0)
    P = random_models(rng, (3, N, C))
    store.append("r", P[0], 0, {"acc": 0.1})
    monkeypatch.setattr(_writer, "write_json_atomic", _die)
    with pytest.raises(Died):
        store.append("r", P[1:], [1, 2], {"acc": [0.2, 0.3]})
    monkeypatch.undo()
    assert _on_disk(store) == (3, [0, 1, 2])  # data written, not committed
    reader = Store.open(store.path)
    assert reader.n_records("r") == 1 and list(reader.runs()["model_id"]) == ["r/0"]
    np.testing.assert_array_equal(reader.trajectory("r").predictions, P[:1].astype(np.float32))
    assert reader.collection()[0].shape == (1, N, C)
    assert list((store.path / ".taskspace" / "pending").iterdir())

    writer = Store.open(store.path, mode="a")  # repairs
    assert _on_disk(writer) == (1, [0])
    assert not list((store.path / ".taskspace" / "pending").iterdir())
    assert writer.append("r", P[2], 1, {"acc": 0.3}) == ["r/1"]
    traj = writer.trajectory("r")
    np.testing.assert_array_equal(traj.predictions, P[[0, 2]].astype(np.float32))
    assert list(traj.metrics["acc"]) == [0.1, 0.3]


def test_stray_chunks_and_temporaries_are_removed(store):
    rng = np.random.default_rng(1)
    store.append("r", random_models(rng, (N, C)), 0)
    pred = store.path / "runs" / "r" / "predictions"
    (pred / "c" / "7" / "0").mkdir(parents=True)
    (pred / "c" / "7" / "0" / "0.1234.partial").write_bytes(b"half a chunk")
    (pred / "zarr.5678.partial").write_text("{")
    (store.path / "runs" / "r" / ".zarr.json.9abc.tmp").write_text("{")
    (store.path / ".taskspace" / "pending" / "run.r").touch()
    Store.open(store.path, mode="a")
    assert _on_disk(store) == (1, [0])
    assert not [p for p in store.path.rglob("*") if p.name.endswith((".partial", ".tmp"))]


def test_death_while_creating_a_run(store, monkeypatch):
    monkeypatch.setattr(_writer.os, "rename", _die)
    with pytest.raises(Died):
        store.add_run("half", task="t", classes=None, method="m", seed=0)
    monkeypatch.undo()
    assert store.run_ids == ["r"]
    staging = store.path / ".taskspace" / "staging"
    assert list(staging.iterdir())  # the half-made run is only here
    Store.open(store.path, mode="a")
    assert not list(staging.iterdir())
    store.add_run("half", task="t", classes=None, method="m", seed=0)
    assert store.run_ids == ["r", "half"]


def test_repair_leaves_a_live_writer_alone(store):
    rng = np.random.default_rng(2)
    store.append("r", random_models(rng, (N, C)), 0)
    arr = zarr.open_array(str(store.path / "runs" / "r" / "predictions"), mode="r+")
    arr.resize((2, N, C))
    arr[1] = random_models(rng, (N, C))  # a record being written right now
    (store.path / ".taskspace" / "pending" / "run.r").touch()
    with file_lock(store.path / ".taskspace" / "locks" / "run.r.lock"):
        Store.open(store.path, mode="a")
        assert _on_disk(store) == (2, [0, 1])
    Store.open(store.path, mode="a")  # the writer is gone: now trimmed
    assert _on_disk(store) == (1, [0])


def _bhattacharyya(X, Y=None):
    X = np.sqrt(np.asarray(X, np.float64))
    Y = X if Y is None else np.sqrt(np.asarray(Y, np.float64))
    return -np.log(np.maximum(np.einsum("inc,jnc->ijn", X, Y), 1e-9)).mean(-1)


def test_death_while_extending_the_distance_cache(store, monkeypatch):
    rng = np.random.default_rng(3)
    store.append("r", random_models(rng, (3, N, C)), [0, 1, 2])
    first = store.distance_matrix(["r/0", "r/1"], compute=_bhattacharyya)
    monkeypatch.setattr(cache, "write_json_atomic", _die)
    with pytest.raises(Died):
        store.distance_matrix(compute=_bhattacharyya)
    monkeypatch.undo()
    assert cache.cached_ids(store.path, "bhattacharyya") == ["r/0", "r/1"]
    reopened = Store.open(store.path, mode="a")  # trims the matrix back to 2 x 2
    name = cache.CacheKey("bhattacharyya").name
    matrix = zarr.open_array(str(store.path / "distances" / name / "matrix"))
    assert matrix.shape == (2, 2)
    np.testing.assert_array_equal(matrix[:], first)
    full = reopened.distance_matrix(compute=_bhattacharyya)
    X, _ = reopened.collection()
    np.testing.assert_allclose(full, _bhattacharyya(X, X), rtol=1e-13, atol=1e-15)
