"""taskspace.Store: creating, opening, metadata, appends, tables, trajectories, bad inputs."""

import json

import numpy as np
import pandas as pd
import pytest
import zarr

from taskspace.data import label_space_hash, probe_hash
from taskspace.store import Store
from tests.helpers import random_models

N, C = 40, 4
CLASSES = ["cat", "dog", "ship", "truck"]


def _labels():
    return np.arange(N) % C


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def store(tmp_path):
    return Store.create(tmp_path / "s.zarr", _labels(), CLASSES, chunk_samples=16)


def _fill(store, rng):
    """Two runs: 'a' with 3 records (metrics accuracy, mode), 'b' with 2 (metric loss)."""
    Pa = random_models(rng, (3, N, C))
    Pb = random_models(rng, (2, N, C))
    store.add_run(
        "a",
        task="animals",
        classes=["cat", "dog"],
        method="supervised",
        seed=0,
        network="cnn",
        dataset="toy",
        config={"lr": 0.1, "layers": [2, 3]},
    )
    store.append("a", Pa[0], 0, {"accuracy": 0.25, "mode": "imprint"})
    store.append("a", Pa[1:], [10, 20], {"accuracy": [0.5, 0.75], "mode": ["head", "head"]})
    store.add_run(
        "b", task="all", classes=None, method="finetune", seed=1, parent_run="a", parent_step=20
    )
    store.append("b", Pb, [0, 5], {"loss": np.array([1.5, np.inf])})
    return Pa, Pb


# ------------------------------------------------------------------- create / open
def test_create_open_round_trip(tmp_path):
    ids = np.arange(100, 100 + N)
    hierarchy = {"animal.n.01": ["cat", "dog"], "vehicle.n.01": ["ship", "truck"]}
    s = Store.create(tmp_path / "s", _labels(), CLASSES, probe_ids=ids, hierarchy=hierarchy)
    for reopened in (s, Store.open(tmp_path / "s"), Store.open(tmp_path / "s", mode="a")):
        np.testing.assert_array_equal(reopened.labels, _labels())
        assert reopened.labels.dtype == np.int64
        assert reopened.class_names == CLASSES
        np.testing.assert_array_equal(reopened.probe_ids, ids)
        assert reopened.hierarchy == hierarchy
        assert reopened.probe_hash == probe_set_hash(_labels(), ids)
        assert reopened.label_space_hash == label_space_hash(CLASSES)
        assert (reopened.n_samples, reopened.n_classes, reopened.dtype) == (N, C, np.float32)
    assert Store.open(tmp_path / "s").mode == "r"
    assert "probe_hash" in repr(s)
    # The store is a plain Zarr v3 hierarchy.
    root = zarr.open_group(str(tmp_path / "s"), mode="r")
    assert root.attrs["taskspace"]["n_samples"] == N


def test_string_probe_ids(tmp_path):
    ids = [f"n0144/{i:03d}.jpg" for i in range(N)]
    s = Store.create(tmp_path / "s", _labels(), CLASSES, probe_ids=ids)
    assert Store.open(s.path).probe_ids.tolist() == ids
    assert s.probe_hash == probe_set_hash(_labels(), ids) != probe_set_hash(_labels())


def test_concurrent_create_finds_the_winner(tmp_path, monkeypatch):
    from taskspace.store import store as store_module

    first = Store.create(tmp_path / "s", _labels(), CLASSES)
    # A second creator that checked before the first one renamed its store into place.
    monkeypatch.setattr(store_module, "_existing_store", lambda path: None)
    second = Store.create(tmp_path / "s", _labels(), CLASSES)
    assert second.probe_hash == first.probe_hash
    with pytest.raises(ValueError, match="probe set"):
        Store.create(tmp_path / "s", _labels()[::-1], CLASSES)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def probe_set_hash(labels, ids=None):
    """The store's default: taskspace.data's hash, with positions for ids when there are none."""
    return probe_hash(range(len(labels)) if ids is None else list(ids), labels)


def test_default_hashes_are_those_of_the_data_splits(tmp_path):
    from taskspace.data import load_dataset, make_splits

    split = make_splits(
        load_dataset("digits", "train"),
        load_dataset("digits", "test"),
        n_train=20,
        n_imprint=20,
        n_probe=30,
        seed=0,
    )
    probe = split.probe()
    s = Store.create(tmp_path / "d", probe.labels, split.class_names, probe_ids=probe.ids)
    assert (s.probe_hash, s.label_space_hash) == (split.probe_hash, split.label_space_hash)


def test_explicit_hashes_are_kept(tmp_path):
    s = Store.create(tmp_path / "s", _labels(), CLASSES, probe_hash="p1", label_space_hash="l1")
    assert (s.probe_hash, s.label_space_hash) == ("p1", "l1")


def test_create_on_existing_store(tmp_path, store, rng):
    _fill(store, rng)
    again = Store.create(store.path, _labels(), CLASSES)  # same probe set: opened
    assert again.run_ids == ["a", "b"]
    other = np.roll(_labels(), 1)
    with pytest.raises(ValueError, match="probe set") as err:
        Store.create(store.path, other, CLASSES)
    assert store.probe_hash in str(err.value) and probe_set_hash(other) in str(err.value)
    renamed = ["cat", "dog", "boat", "truck"]
    with pytest.raises(ValueError, match="label space") as err:
        Store.create(store.path, _labels(), renamed)
    assert store.label_space_hash in str(err.value)
    assert label_space_hash(renamed) in str(err.value)
    fresh = Store.create(store.path, other, CLASSES, overwrite=True)
    assert fresh.run_ids == [] and fresh.probe_hash == probe_set_hash(other)


def test_create_refuses_foreign_directory(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "precious.txt").write_text("x")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="not a taskspace store; refusing"):
            Store.create(tmp_path / "d", _labels(), CLASSES, overwrite=overwrite)
    assert (tmp_path / "d" / "precious.txt").exists()
    (tmp_path / "empty").mkdir()
    assert Store.create(tmp_path / "empty", _labels(), CLASSES).n_samples == N


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels": [0, 1, 9]}, "outside"),
        ({"labels": np.zeros((2, 2), int)}, "1-D"),
        ({"class_names": ["a", "a", "b"]}, "repeats"),
        ({"class_names": ["only"]}, "at least 2"),
        ({"dtype": "float64"}, "dtype"),
        ({"probe_ids": [1, 2]}, "probe_ids"),
        ({"hierarchy": {"a": object()}}, "JSON"),
        ({"compression": "gzip"}, "compression"),
    ],
)
def test_create_rejects_bad_arguments(tmp_path, kwargs, match):
    args = {"labels": [0, 1, 2], "class_names": ["a", "b", "c"]} | kwargs
    with pytest.raises(ValueError, match=match):
        Store.create(tmp_path / "s", **args)


def test_open_rejects_foreign_and_corrupt(tmp_path, store):
    with pytest.raises(FileNotFoundError):
        Store.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a taskspace store"):
        Store.open(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a taskspace store"):
        Store.open(tmp_path / "file")
    zarr.open_group(str(tmp_path / "plain"), mode="w", attributes={"x": 1})
    with pytest.raises(ValueError, match="Zarr group but not a taskspace store"):
        Store.open(tmp_path / "plain")
    with pytest.raises(ValueError, match="mode"):
        Store.open(store.path, mode="w")
    meta = json.loads((store.path / "zarr.json").read_text())
    meta["attributes"]["taskspace"]["format_version"] = 99
    (store.path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format 99"):
        Store.open(store.path)
    (store.path / "zarr.json").write_text('{"zarr_format": 3, "node_ty')
    with pytest.raises(ValueError, match="corrupt store"):
        Store.open(store.path)


def test_open_a_study_folder_suggests_its_store(tmp_path):
    """`taskspace info taskspace-demo` (the study's output folder): the store is one level down."""
    out = tmp_path / "taskspace-demo"
    Store.create(out / "store", _labels(), CLASSES)
    (out / "figures").mkdir()
    zarr.open_group(str(out / "plain"), mode="w", attributes={"x": 1})  # a Zarr group, no store
    with pytest.raises(ValueError) as err:
        Store.open(out)
    assert str(err.value) == (
        f"{out} is not a taskspace store (no zarr.json); did you mean {out / 'store'}?"
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError) as err:
        Store.open(tmp_path / "empty")
    assert "did you mean" not in str(err.value)


def test_open_detects_missing_labels(tmp_path, store):
    import shutil

    shutil.rmtree(store.path / "probe" / "labels")
    with pytest.raises(ValueError, match=r"corrupt taskspace store.*labels"):
        Store.open(store.path)


def test_corrupt_run_metadata_is_reported(store, rng):
    _fill(store, rng)
    (store.path / "runs" / "a" / "zarr.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"corrupt taskspace store.*runs/a"):
        store.runs()


# ------------------------------------------------------------------- runs and appends
def test_metadata_round_trip(store, rng):
    _fill(store, rng)
    runs = store.runs(per="run")
    assert list(runs["run_id"]) == ["a", "b"]
    a, b = runs.iloc[0], runs.iloc[1]
    assert (a.task, a.classes, a.method, a.seed, a.network, a.dataset) == (
        "animals",
        ("cat", "dog"),
        "supervised",
        0,
        "cnn",
        "toy",
    )
    assert a.config == {"lr": 0.1, "layers": [2, 3]} and a.n_records == 3
    assert pd.isna(a.parent_run) and pd.isna(a.parent_step)
    assert (b.classes, b.parent_run, b.parent_step, b.n_records) == (tuple(CLASSES), "a", 20, 2)
    reopened = Store.open(store.path).runs(per="run")
    pd.testing.assert_frame_equal(reopened, runs)


def test_record_table(store, rng):
    _fill(store, rng)
    table = store.runs()
    assert list(table["model_id"]) == ["a/0", "a/1", "a/2", "b/0", "b/1"]
    assert list(table["record"]) == [0, 1, 2, 0, 1]
    assert list(table["step"]) == [0, 10, 20, 0, 5]
    assert list(table["task"]) == ["animals"] * 3 + ["all"] * 2
    np.testing.assert_array_equal(table["accuracy"], [0.25, 0.5, 0.75, np.nan, np.nan])
    np.testing.assert_array_equal(table["loss"], [np.nan] * 3 + [1.5, np.inf])
    assert list(table["mode"][:3]) == ["imprint", "head", "head"]
    assert table["mode"][3:].isna().all()
    assert list(table["seed"]) == [0, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="per"):
        store.runs(per="model")


def test_empty_store_tables(store):
    assert len(store.runs()) == 0 and "model_id" in store.runs().columns
    assert len(store.runs("run")) == 0 and store.run_ids == []
    with pytest.raises(ValueError, match="no model"):
        store.collection()


def test_trajectory(store, rng):
    Pa, _ = _fill(store, rng)
    traj = Store.open(store.path).trajectory("a")
    assert traj.predictions.shape == (3, N, C) and traj.predictions.dtype == np.float32
    np.testing.assert_array_equal(traj.predictions, Pa.astype(np.float32))
    np.testing.assert_array_equal(traj.steps, [0, 10, 20])
    assert list(traj.metrics["accuracy"]) == [0.25, 0.5, 0.75]
    assert list(traj.metrics["model_id"]) == ["a/0", "a/1", "a/2"]
    assert traj.info["task"] == "animals" and len(traj) == 3
    store.add_run("empty", task="t", classes=None, method="m", seed=None)
    assert store.trajectory("empty").predictions.shape == (0, N, C)
    with pytest.raises(ValueError, match="no run 'nope'"):
        store.trajectory("nope")


def test_steps_run_info_and_models(store, rng):
    Pa, Pb = _fill(store, rng)
    reopened = Store.open(store.path)
    assert reopened.steps("a") == [0, 10, 20] and reopened.steps("b") == [0, 5]
    info = reopened.run_info("b")
    assert (info["parent_run"], info["parent_step"], info["task"]) == ("a", 20, "all")
    info["task"] = "changed"  # a copy: the store is untouched
    assert reopened.run_info("b")["task"] == "all"
    X = reopened.models(["b/1", "a/0"])
    np.testing.assert_array_equal(np.asarray(X), np.stack([Pb[1], Pa[0]]).astype(np.float32))
    for method in (reopened.steps, reopened.run_info):
        with pytest.raises(ValueError, match="no run 'nope'"):
            method("nope")


def test_float16_store(tmp_path, rng):
    s = Store.create(tmp_path / "h", _labels(), CLASSES, dtype="float16", compression="zstd")
    s.add_run("r", task="t", classes=None, method="m", seed=0)
    P = random_models(rng, (2, N, C))
    s.append("r", P, [0, 1])
    out = Store.open(tmp_path / "h").trajectory("r").predictions
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, P.astype(np.float16))


def test_auto_run_ids_are_unique_and_readable(store):
    ids = {store.add_run(task="a b", classes=None, method="m", seed=3) for _ in range(3)}
    assert len(ids) == 3 and all(i.startswith("a_b-m-seed3-") for i in ids)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"classes": ["cat", "wolf"]}, r"unknown class 'wolf'.*\['cat', 'dog', 'ship', 'truck'\]"),
        ({"classes": ["cat"]}, "at least 2"),
        ({"classes": [0, 7]}, "outside"),
        ({"classes": "cat"}, "not a string"),
        ({"run_id": "../evil"}, "not valid"),
        ({"run_id": ".hidden"}, "not valid"),
        ({"seed": 1.5}, "seed"),
        ({"task": ""}, "task"),
        ({"parent_run": "ghost"}, "parent_run"),
        ({"parent_step": 3}, "without `parent_run`"),
        ({"config": {"f": print}}, "config"),
        ({"probe_hash": "0000"}, "probe set hash"),
        ({"label_space_hash": "0000"}, "label space hash"),
    ],
)
def test_add_run_rejects_bad_metadata(store, kwargs, match):
    args = {"run_id": "r", "task": "t", "classes": None, "method": "m", "seed": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        store.add_run(**args)
    assert store.run_ids == []


def test_duplicate_run_id(store):
    store.add_run("r", task="t", classes=None, method="m", seed=0)
    with pytest.raises(ValueError, match="already exists"):
        store.add_run("r", task="t", classes=None, method="m", seed=0)


def test_add_run_resume_is_idempotent(store, rng):
    """Re-running a script with resume=True finds its run again, by explicit id or by the id
    its metadata derives; other metadata under the same id is refused, naming the fields."""
    meta = {
        "task": "t",
        "classes": ["cat", "dog"],
        "method": "m",
        "seed": 0,
        "config": {"lr": 0.1, "layers": (2, 3)},
    }
    a = store.add_run(resume=True, **meta)
    assert a.startswith("t-m-seed0-") and len(a) == len("t-m-seed0-") + 10
    store.append(a, random_models(rng, (N, C)), 0)
    # Same metadata (tuple vs the stored list, classes by index vs name): the same run.
    again = store.add_run(
        resume=True, **(meta | {"classes": [0, 1], "config": {"layers": [2, 3], "lr": 0.1}})
    )
    assert again == a and store.run_ids == [a] and store.n_records(a) == 1
    # Other metadata derives another id: a new run, not a silent mix.
    other = store.add_run(resume=True, **(meta | {"config": {"lr": 0.2, "layers": [2, 3]}}))
    assert other != a and len(store.run_ids) == 2
    # An explicit id.
    assert store.add_run("mine", resume=True, **meta) == "mine"
    assert store.add_run("mine", resume=True, **meta) == "mine"
    with pytest.raises(ValueError, match=r"'mine' already exists .* different config, seed"):
        store.add_run("mine", resume=True, **(meta | {"seed": 1, "config": {}}))
    with pytest.raises(ValueError, match=r"already exists .*pass resume=True"):
        store.add_run("mine", **meta)
    # Without resume a default id is new every call (unchanged behaviour).
    assert store.add_run(**meta) != store.add_run(**meta)


def test_add_run_resume_loses_the_creation_race(store, monkeypatch):
    """Two processes resuming the same run at once: the one whose rename loses returns the
    winner's run (same metadata) instead of failing."""
    from taskspace.store import _writer

    create = _writer.create_run

    def lose(st, run_id, info):
        create(st, run_id, info)  # the other process renames first ...
        create(st, run_id, info)  # ... and this one finds the target taken

    monkeypatch.setattr(_writer, "create_run", lose)
    rid = store.add_run(resume=True, task="t", classes=None, method="m", seed=0)
    assert store.run_ids == [rid]
    with pytest.raises(ValueError, match="already exists"):
        store.add_run("x", task="t", classes=None, method="m", seed=0)


def test_append_rejects_bad_input(store, rng):
    store.add_run("r", task="t", classes=None, method="m", seed=0)
    good = random_models(rng, (N, C))
    with pytest.raises(ValueError, match=r"shape \(40, 3\) but .* \(N, C\) = \(40, 4\)"):
        store.append("r", good[:, :3], 0)
    with pytest.raises(ValueError, match=r"shape \(2, 39, 4\)"):
        store.append("r", random_models(rng, (2, N - 1, C)), [0, 1])
    bad = good.copy()
    bad[7, 2] = -0.1
    with pytest.raises(ValueError, match=r"`predictions` has a negative entry .* index \(7, 2\)"):
        store.append("r", bad, 0)
    with pytest.raises(ValueError, match="sums to"):
        store.append("r", good * 2, 0)
    with pytest.raises(ValueError, match="steps"):
        store.append("r", good, [0, 1])
    with pytest.raises(ValueError, match="integers"):
        store.append("r", good, 0.5)
    with pytest.raises(ValueError, match="2 values for 1"):
        store.append("r", good, 0, {"accuracy": [0.1, 0.2]})
    with pytest.raises(ValueError, match="reserved"):
        store.append("r", good, 0, {"step": 3})
    with pytest.raises(ValueError, match="not a scalar"):
        store.append("r", good, 0, {"acc": [[1, 2]]})
    with pytest.raises(ValueError, match="no run 'x'"):
        store.append("x", good, 0)
    with pytest.raises(ValueError, match=r"no run '\.\./probe'"):  # a group with a zarr.json
        store.append("../probe", good, 0)
    assert store.n_records("r") == 0
    with pytest.raises(ValueError, match="read-only"):
        Store.open(store.path).append("r", good, 0)
    with pytest.raises(ValueError, match="read-only"):
        Store.open(store.path).add_run(task="t", classes=None, method="m", seed=0)


def test_append_returns_model_ids(store, rng):
    store.add_run("r", task="t", classes=None, method="m", seed=0)
    assert store.append("r", random_models(rng, (N, C)), 0) == ["r/0"]
    assert store.append("r", random_models(rng, (2, N, C)), [1, 2]) == ["r/1", "r/2"]


def test_trajectory_metrics_are_the_record_table_rows_of_the_run(tmp_path):
    """`Store.trajectory` builds its metrics table directly: the same columns, values and
    dtypes as the run's rows of `runs()`, metrics missing in some appends included."""
    rng = np.random.default_rng(0)
    store = Store.create(tmp_path / "s", np.arange(6) % 3, ["a", "b", "c"])
    store.add_run("r", task="t", classes=None, method="m", seed=0)
    P = lambda k: rng.dirichlet(np.ones(3), size=(k, 6))  # noqa: E731
    store.append("r", P(2), [0, 5], {"loss": [1.5, 0.5], "label": ["x", "y"]})
    store.append("r", P(1), [9], {"loss": [0.25], "epoch": [3]})
    store.append("r", P(1), [12])
    got = store.trajectory("r").metrics
    want = store.runs().query("run_id == 'r'")[["model_id", "record", "step", *got.columns[3:]]]
    assert list(got.columns) == ["model_id", "record", "step", "epoch", "label", "loss"]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    assert np.isnan(got["loss"].iloc[3]) and got["loss"].dtype == float
