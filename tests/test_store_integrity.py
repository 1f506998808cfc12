"""What is on disk is verified (issue 15 §3): each corruption is made on a real store by the
test, and reading it raises CorruptStoreError naming run, record and file (never a reshape, JSON,
ArrayNotFound or pandas error); Store.check and `taskspace check` list it with its repair."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import taskspace as ts
from taskspace.store import CorruptStoreError, Store, _meta, cache
from tests.helpers import make_legacy, random_models

N, C, B = 30, 3, 8  # 4 sample blocks per record: chunks c/<t>/<0..3>/0


def _store(path):
    s = Store.create(path, np.arange(N) % C, ["a", "b", "c"], chunk_samples=B)
    for i, rid in enumerate(("r", "q")):
        s.add_run(rid, task="t", classes=None, method="m", seed=i)
        s.append(
            rid,
            random_models(np.random.default_rng(i), (4, N, C)),
            np.arange(4),
            {"accuracy": [0.1, 0.2, 0.3, 0.4]},
        )
    return s


@pytest.fixture
def store(tmp_path):
    return _store(tmp_path / "s")


def _reads(store):
    """Every way of reading predictions a user has."""
    X, _ = store.collection()
    return {
        "trajectory": lambda: store.trajectory("r"),
        "collection": lambda: np.asarray(store.collection()[0]),
        "sample block": lambda: X[:, 9:13],
        "pairwise": lambda: ts.pairwise_distances(store.collection()[0]),
        "distance_matrix": lambda: Store.open(store.path, "a").distance_matrix(),
    }


def _assert_names(exc, run, record, file):
    msg = str(exc)
    assert isinstance(exc, CorruptStoreError) and isinstance(exc, ValueError)
    assert f"run {run!r}" in msg and file in msg
    assert (exc.run, exc.file) == (run, file)
    if record is not None:
        assert f"record {record}" in msg and exc.record == record
    assert "drop_run" in msg


def _check(store, n_damaged=1):
    report = Store.open(store.path).check()
    assert not report.ok and len(report.damage) == n_damaged, str(report)
    return report


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "taskspace", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_sound_store_checks_clean(store):
    store.distance_matrix()
    report = store.check()
    assert report.ok, str(report)
    assert (report.runs, report.records, report.chunks, report.caches) == (2, 8, 32, 1)
    out = _cli("check", store.path)
    assert out.returncode == 0 and "no damage" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["delete", "truncate", "edit", "swap"])
def test_a_damaged_prediction_chunk_is_named_on_every_read(store, damage):
    chunk = store.path / "runs/r/predictions/c/2/1/0"
    if damage == "delete":
        chunk.unlink()
    elif damage == "truncate":
        chunk.write_bytes(chunk.read_bytes()[:50])
    elif damage == "edit":
        raw = bytearray(chunk.read_bytes())
        raw[20] ^= 0x40
        chunk.write_bytes(bytes(raw))
    else:  # another record's chunk: sound bytes, sound checksum, the wrong values
        shutil.copyfile(store.path / "runs/r/predictions/c/0/1/0", chunk)
    for name, read in _reads(store).items():
        with pytest.raises(CorruptStoreError) as info:
            read()
        _assert_names(info.value, "r", 2, "runs/r/predictions/c/2/1/0"), name
    report = _check(store)
    assert report.damaged_runs == ["r"] and report.damage[0].record == 2
    out = _cli("check", store.path)
    assert out.returncode == 1
    assert "runs/r/predictions/c/2/1/0" in out.stdout and "drop_run('r')" in out.stdout
    # The other run is still readable, and the repair the report names works.
    assert len(store.trajectory("q")) == 4
    Store.open(store.path, "a").drop_run("r")
    assert Store.open(store.path).check().ok


def test_garbage_and_missing_array_metadata(store):
    meta = store.path / "runs/r/predictions/zarr.json"
    meta.write_text("{not json")
    with pytest.raises(CorruptStoreError) as info:
        store.trajectory("r")
    _assert_names(info.value, "r", None, "runs/r/predictions/zarr.json")
    _check(store)
    meta.unlink()
    with pytest.raises(CorruptStoreError) as info:
        np.asarray(store.collection()[0])
    _assert_names(info.value, "r", None, "runs/r/predictions/zarr.json")
    _check(store)


def test_a_commit_record_counting_more_records_than_it_holds(store):
    path = store.path / "runs/r/zarr.json"
    meta = json.loads(path.read_text())
    meta["attributes"]["taskspace_records"]["count"] = 7
    path.write_text(json.dumps(meta))
    for read in (lambda: store.runs(), lambda: store.trajectory("r"), lambda: store.steps("r")):
        with pytest.raises(CorruptStoreError) as info:
            read()
        _assert_names(info.value, "r", None, "runs/r/zarr.json")
        assert "counts 7 records but holds 4 steps" in str(info.value)
    _check(store)
    # Steps and metrics edited to match: the array still holds only 4 records.
    records = meta["attributes"]["taskspace_records"]
    records["steps"] += [4, 5, 6]
    records["metrics"]["accuracy"] += [0.5, 0.6, 0.7]
    records["digests"] += records["digests"][:3]
    path.write_text(json.dumps(meta))
    with pytest.raises(CorruptStoreError, match="does not match its digest"):
        store.trajectory("r")
    _check(store)
    # ... and its digest recomputed (what the digests do not guard against): the array, read
    # past its end, still refuses.
    meta["attributes"]["taskspace_commit_digest"] = _meta.commit_digest(
        "r", meta["attributes"]["taskspace_run"], records
    )
    path.write_text(json.dumps(meta))
    with pytest.raises(
        CorruptStoreError, match="holds 7 records, the predictions array has shape \\(4, 30, 3\\)"
    ):
        store.trajectory("r")
    _check(store)


def test_an_edited_probe_label_is_refused_on_open(store):
    arr = ts.Store.open(store.path)  # sound
    assert arr.labels[0] == 0
    labels = store.path / "probe/labels/c/0"
    raw = bytearray(labels.read_bytes())
    raw[0] = 2  # label 0 -> 2, and its checksum no longer matches
    labels.write_bytes(bytes(raw))
    with pytest.raises(CorruptStoreError, match="probe labels") as info:
        Store.open(store.path)
    assert info.value.file == "probe/labels"


@pytest.mark.slow
def test_an_edited_probe_label_with_a_matching_checksum_is_refused_on_open(store):
    """Rewritten through Zarr (so the chunk checksum is right): the header's digest catches it."""
    import zarr

    arr = zarr.open_array(str(store.path / "probe/labels"), mode="r+")
    arr[0] = 2
    with pytest.raises(CorruptStoreError, match="do not match the header's digest"):
        Store.open(store.path)
    out = _cli("info", store.path)
    assert out.returncode == 1 and "probe labels" in out.stderr
    assert "Traceback" not in out.stderr


def _cache_dir(store):
    return store.path / "distances" / cache.CacheKey("bhattacharyya").name


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["edit", "truncate", "delete", "swap ids"])
def test_a_damaged_cache_is_named_and_repaired_by_recomputing(store, damage):
    good = store.distance_matrix()
    d = _cache_dir(store)
    chunk = d / "matrix/c/0/0"
    if damage == "edit":  # one distance off by 0.123, written raw: its checksum fails
        raw = bytearray(chunk.read_bytes())
        value = np.frombuffer(bytes(raw[8 * 3 : 8 * 4]), "<f8")[0] + 0.123
        raw[8 * 3 : 8 * 4] = np.float64(value).tobytes()
        chunk.write_bytes(bytes(raw))
    elif damage == "truncate":
        chunk.write_bytes(chunk.read_bytes()[:100])
    elif damage == "delete":
        chunk.unlink()
    else:
        meta = json.loads((d / "zarr.json").read_text())
        ids = meta["attributes"][cache.CACHE_KEY]["model_ids"]
        ids[0], ids[5] = ids[5], ids[0]
        (d / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptStoreError) as info:
        Store.open(store.path, "a").distance_matrix()
    msg = str(info.value)
    assert f"distance cache {d.name}" in msg and f"distances/{d.name}" in msg
    assert "clear_cache" in msg and info.value.cache == d.name
    if damage != "swap ids":
        assert info.value.file == f"distances/{d.name}/matrix/c/0/0"
    report = _check(store)
    assert report.damaged_caches == [d.name]
    out = _cli("check", store.path, "--repair")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"removed distance caches {d.name}" in out.stdout
    np.testing.assert_array_equal(Store.open(store.path, "a").distance_matrix(), good)
    assert Store.open(store.path).check().ok


def test_a_cache_naming_a_dropped_run_is_removed_with_it(store):
    store.distance_matrix()
    store.drop_run("q")
    assert not _cache_dir(store).exists()
    store.add_run("q", task="t", classes=None, method="m", seed=9)
    store.append("q", random_models(np.random.default_rng(9), (4, N, C)), np.arange(4))
    X, _ = store.collection()
    np.testing.assert_allclose(
        store.distance_matrix(), ts.pairwise_distances(X), rtol=1e-12, atol=1e-15
    )


def test_a_legacy_cache_is_reported(store):
    store.distance_matrix()
    d = _cache_dir(store)
    d.rename(d.with_name("bhattacharyya"))
    meta_path = d.with_name("bhattacharyya") / "zarr.json"
    meta = json.loads(meta_path.read_text())
    del meta["attributes"][cache.CACHE_KEY]["spec"]
    meta_path.write_text(json.dumps(meta))
    report = _check(store)
    assert "eps and precision are unknown" in report.damage[0].problem


def test_a_store_without_checksums_or_digests_still_opens_reads_and_checks(tmp_path, monkeypatch):
    """As written before integrity existed: no crc32c codec, no digests, no labels digest."""
    from taskspace.store import _writer, checksums

    monkeypatch.setattr(_writer, "compressors_for", lambda compression: None)
    s = _store(tmp_path / "old")
    monkeypatch.undo()
    make_legacy(s.path, checksums=False)
    assert "crc32c" not in (s.path / "runs/r/predictions/zarr.json").read_text()
    old = Store.open(s.path, "a")
    expected = random_models(np.random.default_rng(0), (4, N, C)).astype(np.float32)
    np.testing.assert_array_equal(old.trajectory("r").predictions, expected)
    old.append("r", random_models(np.random.default_rng(5), (1, N, C)), [9])  # new record
    assert checksums.block_digest(expected[0, :B]) is not None
    report = old.check()
    assert report.ok and any("from before digests" in n for n in report.notes), str(report)
    (s.path / "runs/r/predictions/c/1/0/0").unlink()  # still found: a NaN where none can be
    with pytest.raises(CorruptStoreError) as info:
        old.trajectory("r")
    _assert_names(info.value, "r", 1, "runs/r/predictions/c/1/0/0")
    assert not old.check().ok


def test_check_reads_a_store_on_which_open_for_reading_works(store):
    os.chmod(store.path / "runs/r/zarr.json", 0o444)  # nothing is written by check
    assert Store.open(store.path).check().ok


# --- places of cache chunks: a chunk moved within a cache (chunks of 4 models here) ----------


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(cache, "CHUNK", 4)  # the 8 models of `store`: 2 × 2 chunks


def _record(store):
    return json.loads((_cache_dir(store) / "zarr.json").read_text())["attributes"][cache.CACHE_KEY]


@pytest.mark.slow
@pytest.mark.parametrize("move", ["copy a diagonal chunk", "swap mirror chunks"])
def test_a_cache_chunk_moved_within_the_cache_is_named(store, small_chunks, move):
    """Each moved chunk is internally sound (its own checksum passes) and, for the diagonal copy,
    even symmetric with a zero diagonal: only the digest kept at its place tells."""
    good = store.distance_matrix()
    d = _cache_dir(store)
    assert sorted(
        p.relative_to(d / "matrix/c").as_posix() for p in (d / "matrix/c").rglob("*") if p.is_file()
    ) == ["0/0", "0/1", "1/0", "1/1"]
    c = d / "matrix/c"
    if move == "copy a diagonal chunk":
        shutil.copyfile(c / "0/0", c / "1/1")
        files = {f"distances/{d.name}/matrix/c/1/1"}
    else:
        a, b = (c / "0/1").read_bytes(), (c / "1/0").read_bytes()
        (c / "0/1").write_bytes(b)
        (c / "1/0").write_bytes(a)
        files = {f"distances/{d.name}/matrix/c/0/1", f"distances/{d.name}/matrix/c/1/0"}
    reads = {
        "distance_matrix": lambda: Store.open(store.path, "a").distance_matrix(),
        "cached_distances": lambda: np.asarray(Store.open(store.path).cached_distances()),
        "one row": lambda: Store.open(store.path).cached_distances()[5],
    }
    for name, read in reads.items():
        with pytest.raises(CorruptStoreError, match="not the one committed at its place") as info:
            read()
        assert info.value.file in files and info.value.cache == d.name, name
        assert "clear_cache" in str(info.value)
    report = _check(store)
    assert report.damaged_caches == [d.name] and report.damage[0].file in files
    out = _cli("check", store.path, "--repair")
    assert out.returncode == 0, out.stdout + out.stderr
    np.testing.assert_array_equal(Store.open(store.path, "a").distance_matrix(), good)
    assert Store.open(store.path).check().ok


def test_cache_chunk_digests_follow_every_extension(store, small_chunks):
    """Extending the cache (a new run: 8 → 11 models, 2 × 2 → 3 × 3 chunks) keeps each chunk's
    digest equal to one computed from scratch, and the reads verify them."""
    import zarr

    ids = list(store.runs()["model_id"])
    store.distance_matrix(ids[:6])  # 6 models: the second chunks partial
    assert len(_record(store)["chunk_digests"]) == 2
    store.distance_matrix()  # 8
    store.add_run("p", task="t", classes=None, method="m", seed=7)
    store.append("p", random_models(np.random.default_rng(7), (3, N, C)), np.arange(3))
    D = store.distance_matrix()  # 11
    record = _record(store)
    arr = zarr.open_array(str(_cache_dir(store) / "matrix"), mode="r")
    assert record["chunk_digests"] == cache.chunk_digests(arr, 11, None, 0)
    assert len(record["chunk_digests"]) == 3
    X, _ = store.collection()
    np.testing.assert_allclose(D, ts.pairwise_distances(X), rtol=0, atol=1e-12)
    assert Store.open(store.path).check().ok


def test_a_cache_without_chunk_digests_still_reads_and_gains_them_when_extended(
    store, small_chunks
):
    """As written before chunk digests existed (in a legacy store without checksums: in one
    that declares them a cache without chunk digests is damaged): read as before, noted by
    check, and given digests by its next extension."""
    good = store.distance_matrix()
    make_legacy(store.path, checksums=False)
    np.testing.assert_array_equal(Store.open(store.path, "a").distance_matrix(), good)
    report = Store.open(store.path).check()
    assert report.ok and any("before chunk digests" in n for n in report.notes)
    store = Store.open(store.path, "a")
    store.add_run("p", task="t", classes=None, method="m", seed=7)
    store.append("p", random_models(np.random.default_rng(7), (2, N, C)), np.arange(2))
    store.distance_matrix()
    assert len(_record(store)["chunk_digests"]) == 3
    report = Store.open(store.path).check()
    assert report.ok and not any("before chunk digests" in n for n in report.notes)


def test_a_garbled_chunk_digest_list_is_a_damaged_commit_record(store, small_chunks):
    store.distance_matrix()
    meta_path = _cache_dir(store) / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"][cache.CACHE_KEY]["chunk_digests"] = [[1, 2]]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CorruptStoreError, match="commit record cannot be read"):
        Store.open(store.path, "a").distance_matrix()
    assert _check(store).damaged_caches == [_cache_dir(store).name]


@pytest.mark.slow
def test_check_drops_damaged_runs_only_when_asked(store):
    """A run whose commit record is garbage makes every read of the store's table fail; the
    report names it, --repair keeps it (exit 1), --drop-damaged-runs drops it (and the caches
    naming its models) and leaves the other run and a sound store (exit 0)."""
    store.distance_matrix()
    (store.path / "runs/q/zarr.json").write_text('{"garbage')
    with pytest.raises(CorruptStoreError, match="--drop-damaged-runs"):
        store.runs()
    out = _cli("check", store.path, "--repair")
    assert out.returncode == 1 and "runs/q/zarr.json" in out.stdout
    assert (store.path / "runs/q").is_dir()
    out = _cli("check", store.path, "--drop-damaged-runs")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dropped damaged runs q" in out.stdout
    s = Store.open(store.path)
    assert list(s.runs("run")["run_id"]) == ["r"] and s.check().ok
    assert cache.cache_names(store.path) == []  # the cache held q's models
    assert len(s.trajectory("r")) == 4
