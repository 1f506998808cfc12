"""import_arrays: a folder of .npy/.npz/.pt prediction arrays plus a metadata table; every refusal
happens before anything is written; an interrupted import (an exception, or SIGKILL) resumes
without duplicating a record."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taskspace.store import Store, import_arrays
from tests.helpers import random_models

N, C = 20, 4
CLASSES = ["w", "x", "y", "z"]
LABELS = np.arange(N) % C


def write_folder(root: Path, rng=None) -> dict:
    """Three runs in the three formats; returns {run: (steps, predictions in step order)}."""
    rng = rng or np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "labels.npy", LABELS)
    (root / "class_names.json").write_text(json.dumps(CLASSES))
    rows, expected = [], {}
    # run a: one (N, C) .npy per checkpoint, with a per-record metric
    (root / "a").mkdir()
    a = random_models(rng, (3, N, C))
    for t, step in enumerate([0, 10, 100]):
        np.save(root / "a" / f"step{step}.npy", a[t])
        rows.append(
            {
                "file": f"a/step{step}.npy",
                "run": "a-sup-0",
                "step": step,
                "task": "all",
                "method": "supervised",
                "seed": 0,
                "accuracy": 0.25 * t,
                "lr": 0.1,
            }
        )
    expected["a-sup-0"] = ([0, 10, 100], a)
    # run b: one (T, N, C) .npz; the table lists its records out of step order, and the file's
    # records are in table order
    b = random_models(rng, (4, N, C), sharpness=3.0)
    np.savez(root / "b.npz", predictions=b, other=np.zeros(3))
    b_steps = [50, 0, 20, 5]
    for step in b_steps:
        rows.append(
            {
                "file": "b.npz",
                "run": "b-ft-1",
                "step": step,
                "task": "xy",
                "method": "finetune",
                "seed": 1,
                "classes": "x;y",
                "lr": 0.01,
            }
        )
    order = np.argsort(b_steps)
    expected["b-ft-1"] = (sorted(b_steps), b[order])
    # run c: a .pt tensor, float16 like many saved predictions, no seed
    torch = pytest.importorskip("torch")
    c = random_models(rng, (2, N, C)).astype(np.float16)
    torch.save(torch.from_numpy(c), root / "c.pt")
    for step in (0, 7):
        rows.append(
            {"file": "c.pt", "run": "c-proto", "step": step, "task": "all", "method": "protonet"}
        )
    expected["c-proto"] = ([0, 7], c)
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return expected


def assert_imported(store: Store, expected: dict) -> None:
    assert store.run_ids == list(expected)
    for run, (steps, P) in expected.items():
        traj = store.trajectory(run)
        assert traj.steps.tolist() == steps
        np.testing.assert_array_equal(traj.predictions, np.asarray(P, dtype=np.float32))


def test_happy_path_creates_the_store(tmp_path):
    expected = write_folder(tmp_path / "preds")
    ids = import_arrays(tmp_path / "preds", tmp_path / "s.zarr")
    assert ids == ["a-sup-0", "b-ft-1", "c-proto"]
    store = Store.open(tmp_path / "s.zarr")
    assert_imported(store, expected)
    np.testing.assert_array_equal(store.labels, LABELS)
    assert store.class_names == CLASSES
    runs = store.runs("run").set_index("run_id")
    assert runs.loc["b-ft-1", "classes"] == ("x", "y")
    assert runs.loc["a-sup-0", "classes"] == tuple(CLASSES)
    assert runs["method"].tolist() == ["supervised", "finetune", "protonet"]
    assert runs.loc["a-sup-0", "seed"] == 0 and pd.isna(runs.loc["c-proto", "seed"])
    records = store.runs()
    a = records[records.run_id == "a-sup-0"]
    assert a["accuracy"].tolist() == [0.0, 0.25, 0.5] and set(a["lr"]) == {0.1}
    assert store.run_info("a-sup-0")["config"]["source"].endswith("metadata.csv")


def test_json_table_with_index_into_an_existing_store(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "preds"
    root.mkdir()
    P = random_models(rng, (5, N, C))
    np.save(root / "run.npy", P)
    rows = [
        {
            "file": "run.npy",
            "index": i,
            "run": "r",
            "step": 100 * i,
            "task": "t",
            "method": "m",
            "seed": 3,
            "note": "ok",
        }
        for i in (4, 0, 2)
    ]  # a subset of 5
    (root / "meta.json").write_text(json.dumps(rows))
    (root / "labels.txt").write_text("\n".join(map(str, LABELS)))
    store = Store.create(tmp_path / "s.zarr", LABELS, CLASSES, dtype="float16")
    assert import_arrays(root, store, metadata=root / "meta.json") == ["r"]
    traj = store.trajectory("r")
    assert traj.steps.tolist() == [0, 200, 400]
    np.testing.assert_array_equal(traj.predictions, P[[0, 2, 4]].astype(np.float16))
    assert traj.metrics["note"].tolist() == ["ok"] * 3


def _refused(tmp_path, root, match, store=None):
    """Importing fails with `match`, and nothing was written."""
    target = store if store is not None else tmp_path / "new.zarr"
    before = None if store is None else (store.run_ids, len(store.runs()))
    with pytest.raises(ValueError, match=match):
        import_arrays(root, target)
    if store is None:
        assert not target.exists()
    else:
        assert (store.run_ids, len(store.runs())) == before


def _edit_table(root: Path, edit) -> None:
    table = pd.read_csv(root / "metadata.csv", keep_default_na=False)
    table = edit(table)
    table.to_csv(root / "metadata.csv", index=False)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda t: t.drop(columns="method"), r"missing column\(s\) \['method'\]"),
        (
            lambda t: t.assign(step=t.step.astype(object).where(t.index != 1, "ten")),
            r"metadata.csv, row 2: `step` must be an integer ≥ 0, got 'ten'",
        ),
        (
            lambda t: t.assign(step=t.step.where(t.index != 2, -1)),
            r"row 3: `step` must be an integer ≥ 0, got -1",
        ),
        (lambda t: t.assign(run=t.run.where(t.index != 0, "bad/id")), r"row 1: run 'bad/id'"),
        (lambda t: t.assign(task=t.task.where(t.index != 0, "")), r"row 1: `task` is empty"),
        (
            lambda t: t.assign(file=t.file.where(t.index != 1, "a/missing.npy")),
            r"row 2: file .*a/missing.npy does not exist",
        ),
        (lambda t: t.assign(file=t.file.where(t.index != 1, "labels.csv")), r"is not .npy, .npz"),
        (
            lambda t: t.assign(task=t.task.where(t.index != 2, "other")),
            r"row 3: run 'a-sup-0' has task='other' here and 'all' on an earlier row",
        ),
        (
            lambda t: t.assign(step=t.step.where(t.index != 2, 10)),
            r"run 'a-sup-0' has two records at step 10",
        ),
        (lambda t: t.rename(columns={"accuracy": "record"}), r"column 'record' is reserved"),
        (lambda t: t.drop(index=4), r"b.npz holds T = 4 records but .* names it on 3 rows"),
        (lambda t: t.assign(classes=t.classes.where(t.index != 3, "x;nope")), r"row 4: .*nope"),
        (
            lambda t: (
                t.assign(file=t.file.where(t.index != 1, "b.npz"))
                .assign(run=t.run.where(t.index != 1, "b-ft-1"))
                .assign(task=t.task.where(t.index != 1, "xy"))
                .assign(method=t.method.where(t.index != 1, "finetune"))
                .assign(seed=t.seed.where(t.index != 1, 1))
                .assign(classes=t.classes.where(t.index != 1, "x;y"))
                .assign(lr=t.lr.where(t.index != 1, 0.01))
            ),
            r"b.npz holds T = 4 records but .* names it on 5 rows",
        ),
    ],
)
def test_refusals_of_the_table(tmp_path, edit, match):
    root = tmp_path / "preds"
    write_folder(root)
    _edit_table(root, edit)
    _refused(tmp_path, root, match)


def test_refusals_of_the_arrays(tmp_path):
    root = tmp_path / "preds"
    write_folder(root)
    good = np.load(root / "a" / "step10.npy")
    cases = [
        (good[:, :3], r"step10.npy: predictions of shape \(20, 3\), .* \(N, C\) = \(20, 4\)"),
        (np.where(np.arange(C) == 2, np.nan, good), r"step10.npy.*non-finite.*index \(0, 2\)"),
        (good * 1.5, r"step10.npy.*sum"),
        (np.stack([good, good]), r"step10.npy holds T = 2 records but .* on 1 rows"),
    ]
    for bad, match in cases:
        np.save(root / "a" / "step10.npy", bad)
        _refused(tmp_path, root, match)
    np.save(root / "a" / "step10.npy", good)
    b = np.load(root / "b.npz")["predictions"]
    b[3, 5] = [0.5, 0.7, -0.2, 0.0]
    np.savez(root / "b.npz", predictions=b)
    _refused(tmp_path, root, r"b.npz.*negative.*index \(3, 5, 2\)")
    np.savez(root / "b.npz", first=b, second=b)
    _refused(
        tmp_path,
        root,
        r"b.npz: holds \['first', 'second'\]; one array, or one named "
        r"'predictions'",
    )
    (root / "b.npz").write_bytes(b"not a zip file")
    _refused(tmp_path, root, r"b.npz: cannot read it")


def test_pt_files_load_only_weights(tmp_path):
    torch = pytest.importorskip("torch")
    root = tmp_path / "preds"
    write_folder(root)
    torch.save({"predictions": torch.zeros(2, N, C), "hook": Path("x")}, root / "c.pt")
    _refused(tmp_path, root, r"c.pt: not loadable with torch.load\(weights_only=True\)")
    torch.save({"predictions": torch.full((2, N, C), 1 / C, dtype=torch.bfloat16)}, root / "c.pt")
    import_arrays(root, tmp_path / "ok.zarr")
    np.testing.assert_array_equal(
        Store.open(tmp_path / "ok.zarr").trajectory("c-proto").predictions,
        np.full((2, N, C), 1 / C, np.float32),
    )


def test_refuses_another_probe_set_or_label_space(tmp_path):
    root = tmp_path / "preds"
    write_folder(root)
    store = Store.create(tmp_path / "s.zarr", LABELS, CLASSES)
    import_arrays(root, store, metadata=None)  # the same probe set: accepted
    other_labels = Store.create(tmp_path / "o.zarr", (LABELS + 1) % C, CLASSES)
    _refused(
        tmp_path,
        root,
        rf"different probe set: the store's probe set hash is "
        rf"'{other_labels.probe_hash}', .*labels.npy.* has "
        rf"'{store.probe_hash}'",
        store=other_labels,
    )
    other_names = Store.create(tmp_path / "n.zarr", LABELS, ["a", "b", "c", "d"])
    _refused(
        tmp_path,
        root,
        rf"different label space: the store's label space hash is "
        rf"'{other_names.label_space_hash}'.* has "
        rf"'{store.label_space_hash}'",
        store=other_names,
    )
    bigger = Store.create(tmp_path / "b.zarr", np.arange(N + 1) % C, CLASSES)
    _refused(tmp_path, root, r"different probe set.*20 labels vs the store's N = 21", store=bigger)
    ids = Store.create(tmp_path / "i.zarr", LABELS, CLASSES, probe_ids=np.arange(N) + 1000)
    np.save(root / "probe_ids.npy", np.arange(N))
    _refused(tmp_path, root, r"different probe set.*probe_ids.npy", store=ids)
    np.save(root / "probe_ids.npy", np.arange(N) + 1000)
    assert import_arrays(root, ids) == ["a-sup-0", "b-ft-1", "c-proto"]


def test_refusals_of_the_folder(tmp_path):
    root = tmp_path / "preds"
    write_folder(root)
    (root / "class_names.json").unlink()
    _refused(tmp_path, root, r"creating it needs the class names")
    (root / "class_names.json").write_text(json.dumps(CLASSES))
    np.save(root / "labels.npy", np.append(LABELS[:-1], 9))
    _refused(tmp_path, root, r"labels \(.*labels.npy\)` has label 9 at index 19, outside \[0, 4\)")
    (root / "labels.npy").unlink()
    _refused(tmp_path, root, r"has no labels file \(labels.npy, labels.json, labels.txt\)")
    np.save(root / "labels.npy", LABELS)
    (root / "metadata.json").write_text("[]")
    _refused(tmp_path, root, r"holds metadata.csv and metadata.json: keep one")
    (root / "metadata.csv").unlink()
    _refused(tmp_path, root, r"metadata.json: the table has no rows")


def test_refuses_a_different_run_of_the_same_id(tmp_path):
    root = tmp_path / "preds"
    write_folder(root)
    store = Store.create(tmp_path / "s.zarr", LABELS, CLASSES)
    store.add_run("b-ft-1", task="xy", classes=None, method="finetune", seed=1)
    store.append("b-ft-1", np.full((N, C), 1 / C), [3])
    _refused(
        tmp_path,
        root,
        r"run 'b-ft-1' is already in store .* with steps \[3\], which are "
        r"not the first steps of .*metadata.csv \(\[0, 5, 20, 50\]\)",
        store=store,
    )
    store.add_run("a-sup-0", task="all", classes=None, method="simclr", seed=0)
    _refused(tmp_path, root, r"run 'a-sup-0' is already .* with method='simclr'", store=store)


def test_resume_after_an_interruption(tmp_path, monkeypatch):
    root = tmp_path / "preds"
    expected = write_folder(root)
    calls = []
    real_append = Store.append

    def failing_append(self, *args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return real_append(self, *args, **kwargs)

    monkeypatch.setattr(Store, "append", failing_append)
    with pytest.raises(KeyboardInterrupt):
        import_arrays(root, tmp_path / "s.zarr", records_per_append=1)
    monkeypatch.setattr(Store, "append", real_append)
    partial = Store.open(tmp_path / "s.zarr")
    assert [partial.n_records(r) for r in partial.run_ids] == [3, 0]
    import_arrays(root, tmp_path / "s.zarr", records_per_append=1)
    import_arrays(root, tmp_path / "s.zarr")  # complete: nothing to do
    store = Store.open(tmp_path / "s.zarr")
    assert_imported(store, expected)
    assert len(store.runs()) == 9


WORKER = """
import sys, time
from taskspace.store import Store, import_arrays
real = Store.append
def slow(self, *a, **k):
    out = real(self, *a, **k)
    time.sleep(0.3)
    return out
Store.append = slow
import_arrays(sys.argv[1], sys.argv[2], records_per_append=1)
"""


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_resume_after_sigkill(tmp_path):
    root = tmp_path / "preds"
    expected = write_folder(root)
    path = tmp_path / "s.zarr"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(root), str(path)], env=env)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if (path / "zarr.json").exists() and len(Store.open(path).runs()) >= 4:
                break
            assert proc.poll() is None, "the import finished or failed before it was killed"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    left = len(Store.open(path).runs())
    assert 4 <= left < 9
    import_arrays(root, path)
    store = Store.open(path)
    assert_imported(store, expected)
    assert len(store.runs()) == 9


@pytest.mark.slow
def test_cli_import_arrays(tmp_path):
    root = tmp_path / "preds"
    expected = write_folder(root)

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "taskspace", "import-arrays", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
        )

    out = cli(root, tmp_path / "s.zarr")
    assert out.returncode == 0, out.stderr
    assert "imported 3 runs" in out.stdout and "(9 new records)" in out.stdout
    assert_imported(Store.open(tmp_path / "s.zarr"), expected)
    out = cli(root, tmp_path / "s.zarr")  # resumes: nothing new
    assert out.returncode == 0 and "(0 new records)" in out.stdout
    np.save(root / "a" / "step10.npy", np.full((N, C), 0.5))
    out = cli(root, tmp_path / "o.zarr", "--dtype", "float16")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "step10.npy" in out.stderr and "sums to 2" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "o.zarr").exists()
