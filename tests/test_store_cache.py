"""The distance cache: same matrix as a computation from scratch, computing only new models."""

import numpy as np
import pytest

from taskspace.store import Store
from tests.helpers import random_models

N, C = 24, 3


def bhattacharyya_plain(X, Y=None):
    """d_B (SPEC §3) of every pair, one pair at a time (deterministic, symmetric)."""
    X = np.asarray(X, np.float64)
    Y = X if Y is None else np.asarray(Y, np.float64)
    out = np.empty((len(X), len(Y)))
    for i in range(len(X)):
        for j in range(len(Y)):
            bc = np.sqrt(X[i] * Y[j]).sum(-1)
            out[i, j] = -np.mean(np.log(np.maximum(bc, 1e-9)))
    return out


class Counting:
    """A compute function that records the blocks it is asked for."""

    def __init__(self):
        self.calls = []

    def __call__(self, X, Y):
        self.calls.append((len(X), None if Y is None else len(Y)))
        return bhattacharyya_plain(X, Y)

    @property
    def pairs(self):
        """Pairs computed (a symmetric call counts one triangle and the diagonal)."""
        return sum(a * b if b is not None else a * (a + 1) // 2 for a, b in self.calls)


@pytest.fixture
def store(tmp_path):
    return Store.create(tmp_path / "s", np.arange(N) % C, ["a", "b", "c"], chunk_samples=8)


def _add(store, rid, t, seed):
    store.add_run(rid, task="t", classes=None, method="m", seed=seed)
    store.append(rid, random_models(np.random.default_rng(seed), (t, N, C)), np.arange(t))


def test_cache_extends_with_new_runs_only(store):
    _add(store, "a", 3, 0)
    _add(store, "b", 2, 1)
    count = Counting()
    D1 = store.distance_matrix(compute=count)
    assert count.calls == [(5, None)]  # one symmetric call
    X, _ = store.collection()
    np.testing.assert_array_equal(D1, bhattacharyya_plain(X, X))

    assert np.array_equal(store.distance_matrix(compute=count), D1)
    assert count.calls == [(5, None)]  # all cached: nothing computed

    _add(store, "c", 4, 2)
    D2 = Store.open(store.path, mode="a").distance_matrix(compute=count)
    # Only the 4 new rows (and columns): against the 5 cached models, and among themselves.
    assert count.calls == [(5, None), (4, None), (4, 5)]
    assert count.pairs == 15 + 10 + 20
    X, _ = store.collection()
    np.testing.assert_array_equal(D2, bhattacharyya_plain(X, X))
    np.testing.assert_array_equal(D2[:5, :5], D1)
    np.testing.assert_array_equal(D2, D2.T)


def test_subsets_and_order_come_from_the_cache(store):
    _add(store, "a", 4, 0)
    count = Counting()
    full = store.distance_matrix(compute=count)
    ids = ["a/3", "a/0", "a/2"]
    sub = store.distance_matrix(ids, compute=count)
    assert count.calls == [(4, None)]
    np.testing.assert_array_equal(sub, full[np.ix_([3, 0, 2], [3, 0, 2])])
    _, meta = store.collection({"record": [1, 2]})
    np.testing.assert_array_equal(store.distance_matrix(meta, compute=count), full[1:3, 1:3])


def test_new_models_are_computed_against_the_whole_cache(store):
    _add(store, "a", 3, 0)
    count = Counting()
    store.distance_matrix(["a/0", "a/1"], compute=count)
    D = store.distance_matrix(["a/2", "a/0"], compute=count)
    assert count.calls == [(2, None), (1, None), (1, 2)]  # a/2: itself, then a/0 and a/1
    X, _ = store.collection({"model_id": ["a/2", "a/0"]})
    np.testing.assert_array_equal(D, bhattacharyya_plain(X[[1, 0]], X[[1, 0]]))
    store.distance_matrix(compute=count)
    assert len(count.calls) == 3  # all three were cached


def test_read_only_store_computes_without_saving(store):
    _add(store, "a", 3, 0)
    store.distance_matrix(["a/0", "a/1"], compute=bhattacharyya_plain)
    reader = Store.open(store.path)
    count = Counting()
    D = reader.distance_matrix(["a/2", "a/0", "a/1"], compute=count)
    assert count.calls == [(1, None), (1, 2)]
    X, _ = store.collection()
    np.testing.assert_array_equal(D, bhattacharyya_plain(X[[2, 0, 1]], X[[2, 0, 1]]))
    reader.distance_matrix(["a/2", "a/0"], compute=count)
    assert count.calls == [(1, None), (1, 2), (1, None), (1, 1)]  # nothing was saved


def test_keys_keep_metrics_apart(store):
    _add(store, "a", 2, 0)
    d_b = store.distance_matrix(compute=bhattacharyya_plain)
    d_half = store.distance_matrix(
        metric="half", compute=lambda X, Y: bhattacharyya_plain(X, Y) / 2
    )
    np.testing.assert_array_equal(d_half, d_b / 2)


def test_bad_requests(store):
    _add(store, "a", 2, 0)
    with pytest.raises(ValueError, match="unknown model id"):
        store.distance_matrix(["a/5"], compute=bhattacharyya_plain)
    with pytest.raises(ValueError, match="repeats"):
        store.distance_matrix(["a/0", "a/0"], compute=bhattacharyya_plain)
    with pytest.raises(ValueError, match=r"returned shape \(2, 1\), expected \(2, 2\)"):
        store.distance_matrix(compute=lambda X, Y: np.zeros((len(X), 1)))
    with pytest.raises(ValueError, match="non-finite"):
        store.distance_matrix(compute=lambda X, Y: np.full((len(X), len(X)), np.inf))
    with pytest.raises(ValueError, match="not valid"):
        store.distance_matrix(metric="../x", compute=bhattacharyya_plain)
    assert store.distance_matrix(compute=bhattacharyya_plain).shape == (2, 2)


def test_default_compute_is_pairwise_distances(store):
    import taskspace

    _add(store, "a", 3, 0)
    X, _ = store.collection()
    expected = taskspace.pairwise_distances(np.asarray(X))
    np.testing.assert_allclose(store.distance_matrix(), expected, rtol=1e-12, atol=1e-15)


def _tile_blocks(X_new, X_known, tile, log=None):
    """Blocks for ``commit_blocks``, computed one at a time as a distributed job would."""
    from taskspace.distributed import plan_tiles

    for t in plan_tiles(len(X_new), len(X_known), tile):
        (r0, r1), (c0, c1) = t.rows, t.cols
        cols = X_known[c0:c1] if t.cached_cols else X_new[c0:c1]
        if log is not None:
            log.append((t.a, t.b))
        yield t.rows, t.cols, t.cached_cols, bhattacharyya_plain(X_new[r0:r1], cols)


def test_commit_blocks_extends_the_cache_block_by_block(store):
    from taskspace.store.cache import cached_ids, commit_blocks

    _add(store, "a", 3, 0)
    store.distance_matrix(compute=bhattacharyya_plain)
    _add(store, "b", 4, 1)
    _add(store, "c", 3, 2)
    X, table = store.collection()
    ids = list(table["model_id"])
    known, new = ids[:3], ids[3:]
    Xa = np.asarray(X)
    assert commit_blocks(store, "bhattacharyya", known, new, _tile_blocks(Xa[3:], Xa[:3], 3))
    assert cached_ids(store.path, "bhattacharyya") == ids

    def nothing(X, Y):
        raise AssertionError("everything should be cached")

    D = store.distance_matrix(compute=nothing)
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_allclose(D, bhattacharyya_plain(Xa), rtol=0, atol=1e-15)


def test_commit_blocks_interrupted_or_stale_commits_nothing(store):
    from taskspace.store.cache import cached_ids, commit_blocks

    _add(store, "a", 2, 0)
    store.distance_matrix(compute=bhattacharyya_plain)
    _add(store, "b", 5, 1)
    X, table = store.collection()
    Xa, ids = np.asarray(X), list(table["model_id"])

    def dies_after_two(blocks):
        for i, block in enumerate(blocks):
            if i == 2:
                raise KeyboardInterrupt
            yield block

    with pytest.raises(KeyboardInterrupt):
        commit_blocks(
            store,
            "bhattacharyya",
            ids[:2],
            ids[2:],
            dies_after_two(_tile_blocks(Xa[2:], Xa[:2], 2)),
        )
    assert cached_ids(store.path, "bhattacharyya") == ids[:2]  # the commit never happened
    reopened = Store.open(store.path, mode="a")  # trims what the kill left
    # A stale view of the cache (another writer got there first) writes nothing.
    assert not commit_blocks(reopened, "bhattacharyya", [], ids, _tile_blocks(Xa, Xa[:0], 4))
    log = []
    assert commit_blocks(
        reopened, "bhattacharyya", ids[:2], ids[2:], _tile_blocks(Xa[2:], Xa[:2], 2, log)
    )
    assert log  # the retry wrote every block
    np.testing.assert_allclose(
        reopened.distance_matrix(), bhattacharyya_plain(Xa), rtol=0, atol=1e-12
    )


@pytest.mark.slow
def test_commit_blocks_never_holds_the_new_rows_together(tmp_path):
    """k = 3,000 new models: the k×k rows are 72 MB; committing by tiles of 500 stays far below."""
    import tracemalloc

    from taskspace.geometry import pairwise_distances
    from taskspace.store.cache import commit_blocks

    k, n, c = 3000, 8, 3
    s = Store.create(tmp_path / "big", np.arange(n) % c, ["a", "b", "c"], chunk_samples=8)
    s.add_run("r", task="t", classes=None, method="m", seed=0)
    s.append("r", random_models(np.random.default_rng(0), (k, n, c)), np.arange(k))
    X, table = s.collection()
    Xa, ids = np.asarray(X), list(table["model_id"])

    def blocks():
        from taskspace.distributed import plan_tiles

        for t in plan_tiles(k, 0, 500):
            (r0, r1), (c0, c1) = t.rows, t.cols
            yield t.rows, t.cols, False, pairwise_distances(Xa[r0:r1], Xa[c0:c1])

    tracemalloc.start()
    try:
        assert commit_blocks(s, "bhattacharyya", [], ids, blocks())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The crc32c codec copies each 2 MiB chunk it encodes (measured peak: 25 MiB).
    assert peak < 32 * 2**20, f"peak {peak / 2**20:.1f} MiB while committing"
    arr = s.cached_distances()
    assert arr.model_ids == ids
    rows = arr[:7]
    np.testing.assert_allclose(rows, pairwise_distances(Xa[:7], Xa), rtol=0, atol=1e-12)


def test_cached_distances_is_a_lazy_view_in_any_order(store):
    _add(store, "a", 6, 0)
    _add(store, "b", 5, 1)
    full = store.distance_matrix(metric="bhattacharyya")
    ids = list(store.runs()["model_id"])
    view = store.cached_distances()
    assert view.shape == full.shape and view.model_ids == ids and view.dtype == np.float64
    np.testing.assert_array_equal(np.asarray(view), full)
    np.testing.assert_array_equal(view[2:5], full[2:5])
    order = np.random.default_rng(3).permutation(len(ids))[:7]
    sub = store.cached_distances([ids[i] for i in order])
    ref = full[np.ix_(order, order)]
    np.testing.assert_array_equal(sub[:], ref)
    np.testing.assert_array_equal(sub[1:4], ref[1:4])
    np.testing.assert_array_equal(sub[3], ref[3])
    np.testing.assert_array_equal(
        sub.get_orthogonal_selection((slice(None), [5, 0, 5])), ref[:, [5, 0, 5]]
    )
    # A DataFrame of models works as for distance_matrix.
    table = store.runs().iloc[order]
    np.testing.assert_array_equal(store.cached_distances(table)[:], ref)


def test_cached_distances_hides_an_uncommitted_extension(store):
    from taskspace.store._layout import open_array
    from taskspace.store.cache import _matrix_path, as_key

    _add(store, "a", 6, 0)
    full = store.distance_matrix(metric="bhattacharyya")
    k = len(full)
    arr = open_array(store._zstore, path=_matrix_path(as_key("bhattacharyya")), mode="r+")
    arr.resize((k + 3, k + 3))  # what a writer killed mid-extension leaves
    view = store.cached_distances()
    assert view.shape == (k, k)
    np.testing.assert_array_equal(view[0:k], full)
    np.testing.assert_array_equal(
        view.get_orthogonal_selection(([k - 1], slice(None))), full[[k - 1]]
    )


def test_cached_distances_errors(store):
    _add(store, "a", 6, 0)
    with pytest.raises(ValueError, match="no cached distances 'bhattacharyya'"):
        store.cached_distances()
    store.distance_matrix(store.runs().iloc[:3], metric="bhattacharyya")
    missing = store.runs()["model_id"].iloc[3]  # the first of the three not cached
    with pytest.raises(ValueError, match=f"3 of the 6 models are not in .*{missing}"):
        store.cached_distances(list(store.runs()["model_id"].iloc[:6]))
