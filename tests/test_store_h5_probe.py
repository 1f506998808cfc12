"""import-h5 never mixes probe sets (issue 15 §2): labels, class names and probe ids given for an
existing store are compared with its own before anything is written; a store is created only for
files that fit it; a file that is not probabilities names itself and leaves no run behind."""

import json
import subprocess
import sys

import numpy as np
import pytest

from taskspace.store import Store, import_h5
from tests.helpers import random_models

h5py = pytest.importorskip("h5py")

N, C = 20, 4
CLASSES = ["w", "x", "y", "z"]


def _tree(root, nan_in=None):
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        data = random_models(rng, (5, N, C)).astype(np.float16)
        if seed == nan_in:
            data[3, 2, 1] = np.nan  # past the first block of records: partial append
        path = root / "all" / f"preds_{seed}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            f.create_dataset("data", data=data)
    return root


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "taskspace", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _files(tmp_path, labels, names):
    np.save(tmp_path / "labels.npy", np.asarray(labels))
    (tmp_path / "names.json").write_text(json.dumps(names))
    return tmp_path / "labels.npy", tmp_path / "names.json"


@pytest.mark.slow
def test_cli_refuses_other_labels_and_class_names_naming_both_hashes(tmp_path):
    tree = _tree(tmp_path / "h5")
    store = Store.create(tmp_path / "s", np.arange(N) % C, CLASSES)
    other = (np.arange(N) + 1) % C
    lab, names = _files(tmp_path, other, ["a", "b", "c", "d"])
    out = _cli("import-h5", tree, store.path, "--labels", lab, "--class-names", names)
    assert out.returncode == 1, out.stdout
    assert store.label_space_hash in out.stderr and "different label space" in out.stderr
    assert Store.open(store.path).run_ids == []
    lab, names = _files(tmp_path, other, CLASSES)  # same classes, other labels
    out = _cli("import-h5", tree, store.path, "--labels", lab, "--class-names", names)
    assert out.returncode == 1 and store.probe_hash in out.stderr
    assert "different probe set" in out.stderr
    assert Store.open(store.path).run_ids == []
    lab, names = _files(tmp_path, np.arange(N) % C, CLASSES)  # its own: imported
    out = _cli("import-h5", tree, store.path, "--labels", lab, "--class-names", names)
    assert out.returncode == 0, out.stderr
    assert len(Store.open(store.path).run_ids) == 2


def test_library_compares_probe_ids_too(tmp_path):
    tree = _tree(tmp_path / "h5")
    store = Store.create(tmp_path / "s", np.arange(N) % C, CLASSES, probe_ids=np.arange(N) * 3)
    with pytest.raises(ValueError, match="different probe set.*" + store.probe_hash):
        import_h5(tree, store, labels=np.arange(N) % C, probe_ids=np.arange(N))
    assert store.run_ids == []
    assert import_h5(
        tree, store, labels=np.arange(N) % C, class_names=CLASSES, probe_ids=np.arange(N) * 3
    ) == ["all-supervised-seed0", "all-supervised-seed1"]


@pytest.mark.slow
def test_labels_of_the_wrong_length_fail_before_the_store_is_created(tmp_path):
    tree = _tree(tmp_path / "h5")
    lab, names = _files(tmp_path, np.arange(N + 3) % C, CLASSES)
    out = _cli("import-h5", tree, tmp_path / "new", "--labels", lab, "--class-names", names)
    assert out.returncode == 1
    assert "preds_0.h5" in out.stderr and "(T, 23, 4)" in out.stderr
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match=r"\(T, 20, 3\)"):
        import_h5(tree, tmp_path / "new", labels=np.arange(N) % 3, class_names=CLASSES[:3])
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_a_file_with_nan_names_itself_and_leaves_no_run(tmp_path):
    tree = _tree(tmp_path / "h5", nan_in=1)
    store = Store.create(tmp_path / "s", np.arange(N) % C, CLASSES)
    with pytest.raises(ValueError, match=r"preds_1\.h5, records 2\.\.3.*non-finite.*\(1, 2, 1\)"):
        import_h5(tree, store, records_per_append=2)
    assert store.run_ids == ["all-supervised-seed0"]  # the good file's run, complete
    assert store.n_records("all-supervised-seed0") == 5
    lab, names = _files(tmp_path, np.arange(N) % C, CLASSES)
    out = _cli("import-h5", tree, tmp_path / "new", "--labels", lab, "--class-names", names)
    assert out.returncode == 1 and "preds_1.h5" in out.stderr
    # a store the import created is removed when a value is refused (issue 23: nothing half-made)
    assert not (tmp_path / "new").exists()


def test_string_probe_ids_are_compared(tmp_path):
    tree = _tree(tmp_path / "h5")
    ids = np.array([f"img{i:03d}" for i in range(N)])
    store = Store.create(tmp_path / "s", np.arange(N) % C, CLASSES, probe_ids=ids)
    with pytest.raises(ValueError, match="different probe set"):
        import_h5(tree, store, labels=np.arange(N) % C, probe_ids=ids[::-1])
    assert len(import_h5(tree, store, labels=np.arange(N) % C, probe_ids=ids)) == 2
