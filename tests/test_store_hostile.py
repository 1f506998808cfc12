"""The store against a hostile user (issue 23): kills and full disks in the middle of a distance
cache's first fill or extension, damaged checkpoints, steps past what the store can read back,
bad import files, edited cache shapes and study names that cannot become run ids.

Each case asserts what the user is promised: the store opens, ``check`` is clean or names the
unfinished state, the repaired store's numbers equal a clean recomputation, or the command refuses
with one line.
"""

import contextlib
import errno
import gc
import json
import logging
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr.storage._local as zarr_local

from taskspace.cli import main
from taskspace.methods import _checkpoint
from taskspace.store import Store, cache
from taskspace.store.atomic import DiskFullError
from taskspace.study.loading import parse_study
from tests import _hostile_workers as hw
from tests import _store_workers as base

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and fcntl are POSIX")
KEY = cache.CacheKey(hw.METRIC)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ctx():
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["taskspace.store", "tests._hostile_workers"])
    return context


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store of 12 models (made once; each case works on a copy)."""
    path = tmp_path_factory.mktemp("template") / "s.zarr"
    ids = hw.make_store(path)
    return path, ids


def _copy(template, tmp_path: Path) -> tuple[Path, list[str]]:
    path, ids = template
    shutil.copytree(path, tmp_path / "s.zarr")
    return tmp_path / "s.zarr", ids


def _run_child(ctx, path: Path, n_models: int, kill_at: int, count_file=None) -> int:
    proc = ctx.Process(target=hw.fill, args=(str(path), n_models, kill_at, count_file))
    proc.start()
    proc.join(120)
    return proc.exitcode


def _assert_repaired(path: Path, ids: list[str]) -> None:
    """Opening for writing repairs; the cache then serves every model's true distances and
    nothing unfinished is left."""
    store = Store.open(path, mode="a")
    D = store.distance_matrix(ids, metric=hw.METRIC, compute=hw.compute)
    np.testing.assert_allclose(D, hw.expected(ids), rtol=0, atol=1e-12)
    report = store.check()
    assert report.ok, str(report)
    assert list((path / ".taskspace" / "caches").iterdir()) == []
    assert list((path / ".taskspace" / "pending").iterdir()) == []
    assert [
        p for p in (path / "distances").rglob("*") if p.name.endswith((".tmp", ".partial"))
    ] == []


def _assert_readable(path: Path, ids: list[str], old: list[str]) -> None:
    """As the kill left it, before any repair: a reader sees the old cache or the new one
    (never "corrupt"), with the right numbers, and check finds no damage."""
    store = Store.open(path, mode="r")
    have = cache.cached_ids(path, KEY)
    assert have in (old, ids)
    if have:
        D = np.asarray(store.cached_distances(metric=KEY))
        np.testing.assert_allclose(D, hw.expected(have), rtol=0, atol=1e-12)
    report = store.check()
    assert report.ok, str(report)


def _cli(argv: list[str]) -> int:
    """The exit status of ``taskspace <argv>``."""
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code or 0
    return 0


# ----------------------------------------------------------------------- break 1: kills
@pytest.mark.slow
@pytest.mark.parametrize("n_old", [0, 8], ids=["first-fill", "extension"])
def test_a_fill_killed_at_any_write_leaves_the_old_cache_or_a_repairable_one(
    tmp_path, template, ctx, n_old
):
    path0, ids = _copy(template, tmp_path / "clean")
    if n_old:
        Store.open(path0, "a").distance_matrix(ids[:n_old], metric=hw.METRIC, compute=hw.compute)
    count_file = tmp_path / "count"
    assert _run_child(ctx, path0, len(ids), 10**9, str(count_file)) == 0
    n_events = int(count_file.read_text())
    assert n_events >= 4
    for kill_at in range(1, n_events + 1):
        path = tmp_path / f"k{kill_at}" / "s.zarr"
        shutil.copytree(template[0], path)
        if n_old:
            Store.open(path, "a").distance_matrix(ids[:n_old], metric=hw.METRIC, compute=hw.compute)
        assert _run_child(ctx, path, len(ids), kill_at) == -signal.SIGKILL
        _assert_readable(path, ids, ids[:n_old])
        _assert_repaired(path, ids)


def _bare_group(path: Path, marker: bool) -> Path:
    """What a first fill killed by an earlier version left: the matrix array, and the bare group
    ``zarr.json`` Zarr writes for its parent (no commit record)."""
    store = Store.open(path, "a")
    d = path / "distances" / KEY.name
    import zarr

    zarr.create_array(
        store._zstore,
        name=f"distances/{KEY.name}/matrix",
        shape=(12, 12),
        chunks=(cache.CHUNK, cache.CHUNK),
        dtype="float64",
    )
    assert json.loads((d / "zarr.json").read_text())["attributes"] == {}
    if marker:
        (path / ".taskspace" / "pending" / f"distances.{KEY.name}").touch()
    return d


@pytest.mark.parametrize("marker", [True, False], ids=["pending-marker", "no-marker"])
def test_a_bare_cache_group_left_by_an_old_kill_is_no_cache(tmp_path, template, marker):
    path, ids = _copy(template, tmp_path)
    d = _bare_group(path, marker)
    assert cache.cached_ids(path, KEY) == []  # a reader: "no cache yet"
    report = Store.open(path, "r").check()
    assert [x.cache for x in report.damage] == [KEY.name]
    assert "unfinished first fill" in report.damage[0].problem
    store = Store.open(path, "a")  # never a KeyError from cache.trim
    assert d.exists() != marker
    D = store.distance_matrix(ids, metric=hw.METRIC, compute=hw.compute)
    np.testing.assert_allclose(D, hw.expected(ids), rtol=0, atol=1e-12)
    assert store.check().ok


def test_check_repair_removes_a_bare_cache_group(tmp_path, template, capsys):
    path, _ = _copy(template, tmp_path)
    d = _bare_group(path, marker=False)
    assert _cli(["check", str(path)]) == 1
    assert "unfinished first fill" in capsys.readouterr().out
    assert _cli(["check", str(path), "--drop-damaged-runs"]) == 0
    assert not d.exists()
    assert Store.open(path, "r").check().ok


# ----------------------------------------------------------------------- break 1: full disk
@contextlib.contextmanager
def _disk_full_after(n_writes: int):
    """Zarr's file writes fail with ENOSPC from the ``n_writes``-th on."""
    real, calls = zarr_local._put, [0]

    def put(path, value, exclusive=False):
        calls[0] += 1
        if calls[0] >= n_writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, value, exclusive=exclusive)

    zarr_local._put = put
    try:
        yield calls
    finally:
        zarr_local._put = real


@pytest.mark.parametrize("n_old", [0, 8], ids=["first-fill", "extension"])
def test_a_full_disk_at_any_write_of_a_fill_leaves_a_consistent_store(tmp_path, template, n_old):
    path0, ids = _copy(template, tmp_path / "clean")
    if n_old:
        Store.open(path0, "a").distance_matrix(ids[:n_old], metric=hw.METRIC, compute=hw.compute)
    with _disk_full_after(10**9) as calls:
        Store.open(path0, "a").distance_matrix(ids, metric=hw.METRIC, compute=hw.compute)
    assert calls[0] >= 2
    for n in range(1, calls[0] + 1):
        path = tmp_path / f"f{n}" / "s.zarr"
        shutil.copytree(template[0], path)
        store = Store.open(path, "a")
        if n_old:
            store.distance_matrix(ids[:n_old], metric=hw.METRIC, compute=hw.compute)
        with _disk_full_after(n), pytest.raises(DiskFullError) as exc:
            store.distance_matrix(ids, metric=hw.METRIC, compute=hw.compute)
        message = str(exc.value)
        assert "\n" not in message and "no space left" in message
        assert f"distance cache {KEY.name}" in message and "consistent" in message
        assert list((path / ".taskspace" / "caches").iterdir()) == []  # removed at once
        _assert_readable(path, ids, ids[:n_old])
        _assert_repaired(path, ids)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.mark.slow
def test_a_full_disk_during_an_append_is_one_error_without_asyncio_tracebacks(tmp_path, template):
    path, _ = _copy(template, tmp_path)
    store = Store.open(path, "a")
    handler = _Records()
    logging.getLogger("asyncio").addHandler(handler)
    try:
        # 10 chunks per record, written concurrently: each fails on its own.
        with _disk_full_after(1), pytest.raises(DiskFullError, match="run 'r0'"):
            base.append_next(store, "r0", 2)
        for _ in range(3):
            gc.collect()
            time.sleep(0.05)
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
    assert [r.getMessage() for r in handler.records] == []
    reopened = Store.open(path, "a")
    assert reopened.n_records("r0") == hw.RECORDS
    assert reopened.check().ok
    base.append_next(reopened, "r0", 2)  # the re-run resumes
    assert base.check_store(str(path))["r0"] == hw.RECORDS + 2


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs (skipped where this process may not mount)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_really_full_disk_during_a_first_fill_and_a_checkpoint(small_fs, template, capsys):
    path = small_fs / "s.zarr"
    shutil.copytree(template[0], path)
    ids = template[1]
    filler = small_fs / "filler"
    free = shutil.disk_usage(small_fs).free
    filler.write_bytes(b"\0" * (free - 512 * 1024))  # the cache's 2 MiB chunk cannot fit
    store = Store.open(path, "a")
    with pytest.raises(DiskFullError) as exc:
        store.distance_matrix(ids, metric=hw.METRIC, compute=hw.compute)
    assert "no space left" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(DiskFullError, match=r"checkpoint .*model-3\.pt"):
        _checkpoint.save_atomic({"w": torch.zeros(300_000)}, small_fs / "model-3.pt")
    assert not [p for p in small_fs.iterdir() if p.name.startswith(".model-3")]
    assert Store.open(path, "r").check().ok
    filler.unlink()
    _assert_repaired(path, ids)


def test_the_cli_prints_one_line_for_a_full_disk(tmp_path, template, capsys, monkeypatch):
    path, _ = _copy(template, tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "report.html"))

    from taskspace.cli import check as check_cli

    monkeypatch.setattr(check_cli, "console", type("C", (), {"print": staticmethod(full)})())
    assert _cli(["check", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no space left" in err and "report.html" in err and "run the command again" in err


# ----------------------------------------------------------------------- break 5: checkpoints
def test_a_flipped_byte_in_a_checkpoint_is_an_error_naming_the_file(tmp_path):
    ckpt = _checkpoint.RunCheckpoints(tmp_path, "run-a")
    weights = {"w": torch.arange(1000, dtype=torch.float32), "n_outputs": 3}
    ckpt.save_model(30, weights, keep="records")
    loaded = ckpt.load_model(30)
    assert torch.equal(loaded["w"], weights["w"]) and loaded["n_outputs"] == 3
    file = ckpt.model_path(30)
    raw = bytearray(file.read_bytes())
    assert raw.startswith(_checkpoint.MAGIC)
    for offset in (len(raw) // 2, len(raw) - 30, 5):
        flipped = bytearray(raw)
        flipped[offset] ^= 0x01
        file.write_bytes(bytes(flipped))
        with pytest.raises(_checkpoint.CorruptCheckpointError, match=str(file)):
            ckpt.load_model(30)


def test_checkpoints_load_weights_only_and_legacy_files_with_a_warning(tmp_path):
    legacy = tmp_path / "model-1.pt"
    torch.save({"w": torch.ones(3)}, legacy)
    with pytest.warns(UserWarning, match="before checkpoint digests"):
        assert torch.equal(_checkpoint.load(legacy)["w"], torch.ones(3))
    unsafe = tmp_path / "model-2.pt"
    _checkpoint.save_atomic({"w": torch.ones(3), "code": Path("x")}, unsafe)
    with pytest.raises(Exception, match=r"[Ww]eights only"):
        _checkpoint.load(unsafe)


# ----------------------------------------------------------------------- break 6: steps
@pytest.mark.parametrize(
    "step", [2**63, 2**64, 2**53, np.uint64(2**63), 1e19, 1.5, float("nan"), True, "3"]
)
def test_append_refuses_steps_the_store_cannot_read_back(tmp_path, template, step):
    path, _ = _copy(template, tmp_path)
    store = Store.open(path, "a")
    with pytest.raises(ValueError, match="step"):
        store.append("r0", base.record("r0", 9), [step])
    assert store.steps("r0") == list(range(hw.RECORDS))
    assert store.check().ok


def test_the_largest_step_reads_back_exactly(tmp_path, template):
    path, _ = _copy(template, tmp_path)
    store = Store.open(path, "a")
    big = 2**53 - 1
    store.append("r0", base.record("r0", 9), [big])
    assert store.steps("r0")[-1] == big
    assert int(store.trajectory("r0").steps[-1]) == big
    assert int(store.runs().query("run_id == 'r0'")["step"].max()) == big


def _import_dir(root: Path, step) -> Path:
    root.mkdir()
    np.save(root / "labels.npy", base.labels())
    (root / "class_names.json").write_text(json.dumps(base.CLASSES))
    np.save(root / "a.npy", np.stack([base.record("a", 0), base.record("a", 1)]))
    (root / "metadata.csv").write_text(
        f"file,index,run,step,task,method\na.npy,0,a,0,t,m\na.npy,1,a,{step},t,m\n"
    )
    return root


@pytest.mark.parametrize("step", ["10000000000000000000", "1.5", "9007199254740992"])
def test_import_arrays_refuses_a_bad_step_before_writing(tmp_path, template, step, capsys):
    folder = _import_dir(tmp_path / "in", step)
    new = tmp_path / "new.zarr"
    assert _cli(["import-arrays", str(folder), str(new)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "row 2" in err and "-9223372036854775808" not in err
    assert not new.exists()
    path, _ = _copy(template, tmp_path)
    assert _cli(["import-arrays", str(folder), str(path)]) == 1
    assert Store.open(path, "r").run_ids == ["r0", "r1", "r2"]  # no empty run left


@pytest.mark.parametrize("name", ["labels.npy", "probe_ids.npy"])
def test_an_empty_list_file_is_a_clear_error(tmp_path, capsys, name):
    folder = _import_dir(tmp_path / "in", 1)
    (folder / name).write_bytes(b"")
    new = tmp_path / "new.zarr"
    assert _cli(["import-arrays", str(folder), str(new)]) == 1  # not 130, "aborted"
    err = capsys.readouterr().err
    assert name in err and "empty" in err
    assert not new.exists()


def test_import_h5_refuses_bad_steps_before_creating_the_store(tmp_path):
    h5py = pytest.importorskip("h5py")
    from taskspace.store import import_h5

    folder = tmp_path / "task"
    folder.mkdir()
    with h5py.File(folder / "preds_0.h5", "w") as f:
        f["data"] = np.stack([base.record("h", 0), base.record("h", 1)]).astype(np.float16)
    new = tmp_path / "new.zarr"
    args = {"labels": base.labels(), "class_names": base.CLASSES}
    with pytest.raises(ValueError, match="9223372036854775808"):
        import_h5(folder, new, steps=lambda task, seed, t: [0, 2**63], **args)
    with pytest.raises(ValueError, match="`classes` of task 'task'"):
        import_h5(folder, new, classes={"task": ["nosuchclass"]}, **args)
    assert not new.exists()
    with h5py.File(folder / "preds_1.h5", "w") as f:
        f["data"] = np.full((2, base.N_SAMPLES, base.N_CLASSES), np.nan, dtype=np.float16)
    with pytest.raises(ValueError, match=r"preds_1\.h5"):
        import_h5(folder, new, **args)
    assert not new.exists()  # values are checked as they are appended: rolled back


# ----------------------------------------------------------------------- break 7: errors
def test_an_edited_cache_shape_names_the_cache_and_the_repair(tmp_path, template):
    path, ids = _copy(template, tmp_path)
    Store.open(path, "a").distance_matrix(ids, metric=hw.METRIC, compute=hw.compute)
    meta_file = path / "distances" / KEY.name / "matrix" / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["shape"] = [10, 10]
    meta_file.write_text(json.dumps(meta))
    store = Store.open(path, "r")
    message = (
        rf"distance cache {KEY.name}: the matrix has shape \(10, 10\).*names 12 "
        r"models.*repair"
    )
    with pytest.raises(ValueError, match=message):
        np.asarray(store.cached_distances(metric=KEY))
    report = store.check()
    assert report.damaged_caches == [KEY.name]
    store = Store.open(path, "a")  # opening for writing does not trip on it
    store.repair_damage(report)
    D = store.distance_matrix(ids, metric=hw.METRIC, compute=hw.compute)
    np.testing.assert_allclose(D, hw.expected(ids), rtol=0, atol=1e-12)


def _demo_study() -> dict:
    return tomllib.loads((ROOT / "studies" / "digits-demo.toml").read_text())


def test_a_task_name_that_cannot_start_a_run_id_is_refused_with_the_rule():
    raw = _demo_study()
    renamed = next(iter(raw["tasks"]))
    raw["tasks"]["pär/ü"] = raw["tasks"].pop(renamed)
    for spec in raw["runs"].values():
        spec["tasks"] = ["pär/ü" if t == renamed else t for t in spec.get("tasks", [])]
    with pytest.raises(ValueError, match=r"tasks\.pär/ü.*letters.*digits"):
        parse_study(raw)


def test_quick_overrides_are_validated_without_quick():
    raw = _demo_study()
    raw["quick"]["runs"]["supervised"]["config"]["stpes"] = 10
    with pytest.raises(ValueError, match=r"stpes.*\[quick\]"):
        parse_study(raw)
    raw = _demo_study()
    raw["quick"]["runs"]["nosuchrun"] = {}
    with pytest.raises(ValueError, match="nosuchrun"):
        parse_study(raw)
