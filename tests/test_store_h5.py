"""import_h5: the authors' layout <task>/preds_<seed>.h5 with a (T, N, C) dataset "data"."""

import numpy as np
import pytest

from taskspace.store import Store, import_h5
from tests.helpers import random_models

h5py = pytest.importorskip("h5py")

N, C = 20, 4
CLASSES = ["w", "x", "y", "z"]


def _write(path, data, key="data"):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=data, compression="gzip")


def _published(P):
    """As the authors stored them: rounded to 5 decimals, float16."""
    return np.round(P, 5).astype(np.float16)


@pytest.fixture
def tree(tmp_path):
    rng = np.random.default_rng(0)
    files = {
        ("all", 0): _published(random_models(rng, (5, N, C))),
        ("all", 1): _published(random_models(rng, (3, N, C))),
        ("vert", 7): _published(random_models(rng, (4, N, C))),
    }
    for (task, seed), data in files.items():
        _write(tmp_path / "predictions" / task / f"preds_{seed}.h5", data)
    (tmp_path / "predictions" / "labels").mkdir()  # not a task folder: no preds files
    (tmp_path / "predictions" / "all" / "metrics.json").write_text("{}")
    return tmp_path / "predictions", files


@pytest.fixture
def store(tmp_path):
    return Store.create(tmp_path / "s", np.arange(N) % C, CLASSES)


def test_import_tree(tree, store):
    root, files = tree
    ids = import_h5(root, store, classes={"vert": [1, 2]}, network="resnet50", records_per_append=2)
    assert ids == ["all-supervised-seed0", "all-supervised-seed1", "vert-supervised-seed7"]
    runs = store.runs("run").set_index("run_id")
    assert list(runs["task"]) == ["all", "all", "vert"]
    assert list(runs["seed"]) == [0, 1, 7]
    assert runs.loc["vert-supervised-seed7", "classes"] == ("x", "y")
    assert runs.loc["all-supervised-seed0", "classes"] == tuple(CLASSES)
    assert set(runs["network"]) == {"resnet50"}
    for (task, seed), data in files.items():
        traj = store.trajectory(f"{task}-supervised-seed{seed}")
        np.testing.assert_array_equal(traj.predictions, data.astype(np.float32))
        np.testing.assert_array_equal(traj.steps, np.arange(len(data)))


def test_single_task_folder_and_custom_steps(tree, store):
    root, _ = tree
    ids = import_h5(
        root / "vert", store, method="protonet", steps=lambda task, seed, t: np.arange(t) * 100
    )
    assert ids == ["vert-protonet-seed7"]
    np.testing.assert_array_equal(store.trajectory(ids[0]).steps, [0, 100, 200, 300])


def test_import_resumes(tree, store):
    root, files = tree
    rid = "all-supervised-seed0"
    store.add_run(rid, task="all", classes=None, method="supervised", seed=0)
    store.append(rid, files[("all", 0)][:2], [0, 1])  # an interrupted import
    import_h5(root, store)
    import_h5(root, store)  # and again: nothing to do
    np.testing.assert_array_equal(
        store.trajectory(rid).predictions, files[("all", 0)].astype(np.float32)
    )
    assert store.runs("run")["n_records"].tolist() == [5, 3, 4]


def test_import_into_a_store_given_by_path(tree, store):
    root, _ = tree
    import_h5(root / "all", str(store.path))
    assert len(Store.open(store.path).run_ids) == 2


def test_import_errors(tmp_path, store):
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="one '\\*'"):
        import_h5(tmp_path, store, pattern="preds.h5")
    with pytest.raises(ValueError, match="no file matching"):
        import_h5(tmp_path, store)
    _write(tmp_path / "bad" / "t" / "preds_0.h5", random_models(rng, (2, N + 1, C)))
    with pytest.raises(ValueError, match=r"shape \(2, 21, 4\).*\(T, 20, 4\)"):
        import_h5(tmp_path / "bad", store)
    _write(tmp_path / "key" / "t" / "preds_0.h5", random_models(rng, (2, N, C)), key="probs")
    with pytest.raises(ValueError, match="no dataset 'data'"):
        import_h5(tmp_path / "key", store)
    import_h5(tmp_path / "key", store, dataset_key="probs")
    assert store.n_records("t-supervised-seed0") == 2
