"""Store.collection: queries, the lazy (M, N, C) array, and that slices read only their chunks."""

import pickle

import numpy as np
import pytest
import zarr
from zarr.storage import LocalStore

from taskspace.store import CorruptStoreError, LazyCollection, Store, chunkfile
from tests.helpers import random_models, record_chunk_reads

N, C, B = 50, 3, 16  # 4 sample chunks per record: [0,16) [16,32) [32,48) [48,50)


@pytest.fixture
def filled(tmp_path):
    """Runs a (3 records, task x, seed 0), b (2, task y, seed 1), c (4, task x, seed 1)."""
    rng = np.random.default_rng(1)
    store = Store.create(tmp_path / "s", np.arange(N) % C, ["p", "q", "r"], chunk_samples=B)
    dense = {}
    for rid, task, seed, t in (("a", "x", 0, 3), ("b", "y", 1, 2), ("c", "x", 1, 4)):
        store.add_run(rid, task=task, classes=None, method="m", seed=seed)
        P = random_models(rng, (t, N, C))
        store.append(rid, P, np.arange(t) * 10, {"acc": np.linspace(0, 1, t)})
        dense[rid] = P.astype(np.float32)
    return store, dense


def test_whole_collection_is_every_record_in_table_order(filled):
    store, dense = filled
    X, meta = store.collection()
    assert isinstance(X, LazyCollection)
    assert X.shape == (9, N, C) and X.ndim == 3 and len(X) == 9 and X.dtype == np.float32
    assert X.chunks == (1, B, C) and X.nbytes == 9 * N * C * 4
    np.testing.assert_array_equal(np.asarray(X), np.concatenate([dense[r] for r in "abc"]))
    assert X.model_ids == list(meta["model_id"])
    assert list(meta.index) == list(range(9))
    assert np.asarray(X, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize(
    "query, expected",
    [
        ("task == 'x' and step > 0", ["a/1", "a/2", "c/1", "c/2", "c/3"]),
        ({"run_id": ["c", "b"]}, ["b/0", "b/1", "c/0", "c/1", "c/2", "c/3"]),
        ({"seed": 1, "task": "x"}, ["c/0", "c/1", "c/2", "c/3"]),
        (lambda t: t["acc"] == 1.0, ["a/2", "b/1", "c/3"]),
        (lambda t: t[t.record == 0], ["a/0", "b/0", "c/0"]),
    ],
)
def test_queries(filled, query, expected):
    store, dense = filled
    X, meta = store.collection(query)
    assert list(meta["model_id"]) == expected
    direct = np.stack([dense[m.split("/")[0]][int(m.split("/")[1])] for m in expected])
    np.testing.assert_array_equal(np.asarray(X), direct)


def test_bad_queries(filled):
    store, _ = filled
    with pytest.raises(ValueError, match="no model"):
        store.collection("task == 'nope'")
    with pytest.raises(ValueError, match="query 'task ==' failed"):
        store.collection("task ==")
    with pytest.raises(ValueError, match="unknown column 'colour'"):
        store.collection({"colour": "red"})
    with pytest.raises(ValueError, match="query"):
        store.collection(42)


@pytest.mark.parametrize(
    "key",
    [
        0,
        -1,
        np.int64(4),
        slice(2, 5),
        slice(None, None, 2),
        [4, 0, 4, 8],
        np.array([7, 1]),
        np.arange(9) % 2 == 0,
        (slice(None), slice(5, 17)),
        (1, 3),
        (Ellipsis, 2),
        (slice(None), 3, slice(1, 3)),
        (slice(3, 6), slice(40, None), 0),
        Ellipsis,
        (slice(None), -1),
        (slice(None), slice(-10, None, 3)),
        (-2, slice(None), -1),
    ],
)
def test_indexing_matches_numpy(filled, key):
    store, _ = filled
    X, _ = store.collection()
    dense = np.asarray(X)
    np.testing.assert_array_equal(X[key], dense[key])


def test_pickled_collection_reads_the_same(filled):
    X, _ = filled[0].collection("task == 'x'")
    X[0]  # opens an array; the pickle must not carry it
    Y = pickle.loads(pickle.dumps(X))
    np.testing.assert_array_equal(Y[:, 3:20], X[:, 3:20])


def test_unsupported_keys(filled):
    X, _ = filled[0].collection()
    with pytest.raises(IndexError, match="axis 1"):
        X[:, [1, 2]]
    with pytest.raises(IndexError, match="too many"):
        X[0, 0, 0, 0]


def test_slices_read_only_their_chunks(filled, monkeypatch):
    store, _ = filled
    X, _ = store.collection("run_id != 'b'")  # 7 models in runs a and c
    read = record_chunk_reads(monkeypatch)  # Zarr's reads and the direct chunk reads
    X[:, B : 2 * B]
    chunks = [k for k in read if "/predictions/c/" in k]
    # One chunk per model, all in the second sample block: runs/<run>/predictions/c/<t>/1/0.
    assert len(chunks) == 7
    assert {k.rsplit("/c/", 1)[1].split("/")[1] for k in chunks} == {"1"}
    read.clear()
    X[4, 40:45]  # model c/1, block 2 only
    assert [k for k in read if "/predictions/c/" in k] == ["runs/c/predictions/c/1/2/0"]


def test_pairwise_distances_streams_over_a_collection(filled):
    import taskspace

    X, _ = filled[0].collection()
    D = taskspace.pairwise_distances(X)
    np.testing.assert_allclose(D, taskspace.pairwise_distances(np.asarray(X)), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_direct_chunk_reads_equal_zarrs(tmp_path, dtype):
    """Chunks read from their files (store.chunkfile) hold what Zarr decodes, for unaligned
    ranges, the padded edge chunk and a conversion to a wider dtype."""
    n, c, b = 23, 5, 4  # 6 chunks a record, the last one 3 samples of 4
    store = Store.create(
        tmp_path / "s", np.arange(n) % c, list("abcde"), chunk_samples=b, dtype=dtype
    )
    store.add_run("r", task="t", classes=None, method="m", seed=0)
    store.append("r", random_models(np.random.default_rng(0), (3, n, c)), np.arange(3))
    X, _ = store.collection()
    arr = zarr.open_array(
        LocalStore(store.path, read_only=True), path="runs/r/predictions", mode="r"
    )
    assert chunkfile.plain_layout(arr)
    whole = arr[:]
    for s0, s1 in [(0, n), (1, 2), (3, 9), (4, 8), (19, 23), (22, 23), (5, 21)]:
        np.testing.assert_array_equal(X[:, s0:s1], whole[:, s0:s1])
        out = np.full((3, 30, c), -1.0)
        X.read_into(s0, s1, out)
        np.testing.assert_array_equal(out[:, : s1 - s0], whole[:, s0:s1].astype(np.float64))
        assert np.all(out[:, s1 - s0 :] == -1.0)
    np.testing.assert_array_equal(X[[2, 0], 3:9], whole[[2, 0], 3:9])
    with pytest.raises(ValueError, match="C-contiguous out"):
        X.read_into(0, 5, np.empty((3, 4, c)))


@pytest.mark.parametrize(
    "where, problem",
    [(8, "checksum fails"), (-6, "checksum fails"), ("swap", "does not hold the values committed")],
)
def test_direct_chunk_reads_verify_every_byte(tmp_path, where, problem):
    """An edit to the values or to the edge chunk's padding fails the chunk's checksum; another
    record's (sound) chunk fails its digest; both named, also through read_into."""
    n, c, b = 23, 5, 4
    store = Store.create(tmp_path / "s", np.arange(n) % c, list("abcde"), chunk_samples=b)
    store.add_run("r", task="t", classes=None, method="m", seed=0)
    store.append("r", random_models(np.random.default_rng(0), (3, n, c)), np.arange(3))
    chunk = store.path / "runs/r/predictions/c/1/5/0"  # the edge chunk: padded
    if where == "swap":
        chunk.write_bytes((store.path / "runs/r/predictions/c/2/5/0").read_bytes())
    else:
        raw = bytearray(chunk.read_bytes())
        raw[where] ^= 0x01  # -6: in the padding before the checksum
        chunk.write_bytes(bytes(raw))
    X, _ = store.collection()
    for read in (lambda: X[:, 20:21], lambda: X.read_into(18, 23, np.empty((3, 5, c)))):
        with pytest.raises(CorruptStoreError, match=problem) as info:
            read()
        assert (info.value.run, info.value.record) == ("r", 1)
        assert info.value.file == "runs/r/predictions/c/1/5/0"
    np.asarray(X[:, :20])  # the other chunks are sound


def _store_with_one_run(tmp_path, n=23, c=5, b=4, t=3):
    store = Store.create(tmp_path / "s", np.arange(n) % c, list("abcde")[:c], chunk_samples=b)
    store.add_run("r", task="t", classes=None, method="m", seed=0)
    store.append("r", random_models(np.random.default_rng(0), (t, n, c)), np.arange(t))
    return store


def test_blocks_narrower_than_a_chunk_verify_each_chunk_once(tmp_path, monkeypatch):
    """Streaming one sample at a time through 4-sample chunks reads the same values as one read
    of everything, and computes each chunk's checksum once (not once per sample)."""
    store = _store_with_one_run(tmp_path)
    checked = []
    extend = chunkfile.google_crc32c.extend
    monkeypatch.setattr(
        chunkfile.google_crc32c,
        "extend",
        lambda crc, data: checked.append(len(data)) or extend(crc, data),
    )
    whole = np.asarray(store.collection()[0])
    n_whole = sum(checked)
    checked.clear()
    X, _ = store.collection()  # a fresh reader: nothing verified yet
    out = np.empty((3, 1, 5), dtype=np.float32)
    for s in range(23):
        X.read_into(s, s + 1, out)
        np.testing.assert_array_equal(out[:, 0], whole[:, s])
    assert sum(checked) == n_whole  # every chunk byte checksummed once, as in one whole read


def test_a_chunk_changed_after_it_was_verified_is_caught_on_the_next_partial_read(tmp_path):
    store = _store_with_one_run(tmp_path)
    X, _ = store.collection()
    np.asarray(X[:, 4:5])  # chunk 1 of every record verified whole, then read in parts
    np.asarray(X[:, 5:6])
    chunk = store.path / "runs/r/predictions/c/1/1/0"
    raw = bytearray(chunk.read_bytes())
    raw[3 * 5 * 4 + 1] ^= 0x01  # a value of sample 7, same size
    chunk.write_bytes(bytes(raw))
    with pytest.raises(CorruptStoreError, match="checksum fails") as info:
        X[:, 6:7]
    assert (info.value.run, info.value.record) == ("r", 1)
