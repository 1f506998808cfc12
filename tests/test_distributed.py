"""Distributed distances on a real LocalCluster: equal to the single-process path, resumable,
robust to a worker killed mid-job; the `distances` and `embed` commands."""

import json
import os
import signal
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from taskspace.distributed import compute_tile, distributed_distances, plan_tiles  # noqa: E402
from taskspace.geometry import pairwise_distances  # noqa: E402
from taskspace.store import Store, tiles  # noqa: E402
from taskspace.store.cache import cached_ids  # noqa: E402
from tests.helpers import random_models  # noqa: E402

N, C = 40, 4


@pytest.fixture(scope="module")
def client():
    environ = dict(os.environ)  # the nannies set OMP_NUM_THREADS=1 here; later tests need it back
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()
    os.environ.clear()
    os.environ.update(environ)


def make_store(path, runs):
    """A store with ``runs`` = [(run_id, n_records, seed)]."""
    store = Store.create(path, np.arange(N) % C, list("abcd"), chunk_samples=16)
    for rid, t, seed in runs:
        store.add_run(rid, task="t", classes=None, method="m", seed=seed)
        store.append(rid, random_models(np.random.default_rng(seed), (t, N, C), 2.0), np.arange(t))
    return store


def reference(path, query=None, metric="bhattacharyya"):
    X, _ = Store.open(path).collection(query)
    return pairwise_distances(np.asarray(X), metric=metric)


def test_plan_covers_each_pair_once():
    n_new, n_old, tile = 7, 5, 3
    seen = np.zeros((n_new, n_new + n_old), dtype=int)
    for t in plan_tiles(n_new, n_old, tile):
        (r0, r1), (c0, c1) = t.rows, t.cols
        off = n_new if t.cached_cols else 0
        block = np.ones((r1 - r0, c1 - c0), dtype=int)
        if t.symmetric:
            block = np.triu(block)
        seen[r0:r1, off + c0 : off + c1] += block
    # new × new: each unordered pair (and the diagonal) once; new × cached: every pair once.
    upper = np.triu(seen[:, :n_new])
    assert np.array_equal(upper + np.tril(seen[:, :n_new], -1).T, np.triu(np.ones((7, 7))))
    assert np.array_equal(seen[:, n_new:], np.ones((n_new, n_old)))


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["bhattacharyya", "geodesic"])
def test_equals_single_process_and_fills_cache(client, tmp_path, metric):
    path = tmp_path / "s"
    make_store(path, [("a", 9, 0), ("b", 8, 1), ("c", 6, 2)])
    D = distributed_distances(path, metric=metric, client=client, tile=5, progress=False)
    ref = reference(path, metric=metric)
    np.testing.assert_allclose(D, ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(D, D.T)
    assert np.all(np.diag(D) == 0)
    store = Store.open(path)
    assert cached_ids(path, metric) == list(store.runs()["model_id"])
    assert not (path / ".taskspace" / "tiles" / metric).exists() or not any(
        (path / ".taskspace" / "tiles" / metric).iterdir()
    )
    # A query: served from the cache, in the query's order.
    sub = distributed_distances(path, "run_id == 'b'", metric=metric, client=client, progress=False)
    np.testing.assert_array_equal(sub, D[9:17, 9:17])


@pytest.mark.slow
def test_new_runs_compute_only_new_rows(client, tmp_path, monkeypatch):
    path = tmp_path / "s"
    store = make_store(path, [("a", 7, 0)])
    distributed_distances(path, client=client, tile=4, progress=False)
    store.add_run("b", task="t", classes=None, method="m", seed=3)
    store.append("b", random_models(np.random.default_rng(3), (5, N, C)), np.arange(5))
    import taskspace.distributed as dd

    submitted = []
    real_submit = client.submit

    def counting_submit(fn, *args, **kw):
        submitted.append((len(args[1]), None if args[2] is None else len(args[2])))
        return real_submit(fn, *args, **kw)

    monkeypatch.setattr(client, "submit", counting_submit)
    D = dd.distributed_distances(path, client=client, tile=4, progress=False)
    np.testing.assert_allclose(D, reference(path), rtol=0, atol=1e-12)
    # 5 new models in blocks (4, 1): triangle (4,·),(4,1),(1,·) and against 7 cached in (4, 3).
    assert sorted(submitted, key=str) == sorted(
        [(4, None), (4, 1), (1, None), (4, 4), (4, 3), (1, 4), (1, 3)], key=str
    )


@pytest.mark.slow
def test_fill_cache_only_and_another_writer_in_between(client, tmp_path, monkeypatch):
    path = tmp_path / "s"
    make_store(path, [("a", 7, 0), ("b", 6, 1)])
    # return_matrix=False: the tiles go into the cache one by one; nothing is returned.
    assert (
        distributed_distances(
            path, "run_id == 'a'", client=client, tile=3, progress=False, return_matrix=False
        )
        is None
    )
    _, table = Store.open(path).collection("run_id == 'a'")
    assert cached_ids(path, "bhattacharyya") == list(table["model_id"])
    arr = Store.open(path).cached_distances()
    np.testing.assert_allclose(arr[:], reference(path, "run_id == 'a'"), rtol=0, atol=1e-12)

    # Another writer extends the cache while the job runs: the job's tiles no longer fit it, so
    # the result comes through the cache's own path, and is still right.
    import taskspace.distributed as dd

    real_run = dd._run_job

    def run_then_someone_else_writes(*args, **kw):
        real_run(*args, **kw)
        other = Store.open(path, mode="a")
        _, table = other.collection("run_id == 'b'")
        other.distance_matrix(list(table["model_id"])[:2])

    commits = []
    real_commit = dd.cache.commit_blocks

    def spying_commit(*args, **kw):
        commits.append(real_commit(*args, **kw))
        return commits[-1]

    monkeypatch.setattr(dd, "_run_job", run_then_someone_else_writes)
    monkeypatch.setattr(dd.cache, "commit_blocks", spying_commit)
    D = dd.distributed_distances(path, client=client, tile=3, progress=False)
    assert commits == [False]  # the stale tiles were not written
    np.testing.assert_allclose(D, reference(path), rtol=0, atol=1e-12)
    assert len(cached_ids(path, "bhattacharyya")) == 13


def test_resume_computes_only_missing_tiles(client, tmp_path, monkeypatch):
    path = tmp_path / "s"
    make_store(path, [("a", 6, 0), ("b", 6, 1)])
    import taskspace.distributed as dd

    # First attempt dies (the client) after three tiles are on disk.
    real_write = tiles.TileJob.write
    written = []

    def dying_write(self, a, b, tile):
        if len(written) == 3:
            raise KeyboardInterrupt("client killed")
        written.append((a, b))
        real_write(self, a, b, tile)

    monkeypatch.setattr(tiles.TileJob, "write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        dd.distributed_distances(path, client=client, tile=3, progress=False)
    assert cached_ids(path, "bhattacharyya") == []  # nothing committed
    monkeypatch.setattr(tiles.TileJob, "write", real_write)

    submitted = []
    real_submit = client.submit

    def counting_submit(fn, *args, **kw):
        submitted.append(kw["key"])
        return real_submit(fn, *args, **kw)

    monkeypatch.setattr(client, "submit", counting_submit)
    D = dd.distributed_distances(path, client=client, tile=3, progress=False)
    total = len(plan_tiles(12, 0, 3))  # 4 blocks: 10 tiles
    assert total == 10
    assert len(submitted) == total - 3
    assert not any(k.endswith(f"-{a}-{b}") for k in submitted for a, b in written)
    np.testing.assert_allclose(D, reference(path), rtol=0, atol=1e-12)


@pytest.mark.slow
def test_worker_killed_mid_job(client, tmp_path):
    path = tmp_path / "s"
    make_store(path, [("a", 10, 0), ("b", 10, 1)])
    pids = client.run(os.getpid)
    victim = next(iter(pids.values()))
    import threading

    def kill_soon():
        # Tasks sleep 1.5 s each; both workers are busy with their first tiles by then.
        time.sleep(1.0)
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    D = distributed_distances(path, client=client, tile=5, progress=False, task_delay=1.5)
    killer.join()
    np.testing.assert_allclose(D, reference(path), rtol=0, atol=1e-12)
    assert victim not in client.run(os.getpid).values()  # the nanny started a new process
    client.wait_for_workers(2, timeout=30)


def test_compute_tile_reads_the_store_itself(tmp_path):
    path = tmp_path / "s"
    store = make_store(path, [("a", 4, 0), ("b", 3, 1)])
    ids = list(store.runs()["model_id"])
    tile = compute_tile(str(path), ids[:4], ids[4:], "bhattacharyya", 1e-9, None)
    np.testing.assert_allclose(tile, reference(path)[:4, 4:], rtol=0, atol=1e-12)


def test_bad_arguments(tmp_path, client):
    path = tmp_path / "s"
    make_store(path, [("a", 2, 0)])
    with pytest.raises(ValueError, match="tile"):
        distributed_distances(path, client=client, tile=0, progress=False)
    with pytest.raises(ValueError, match="metric"):
        distributed_distances(path, metric="nope", client=client, progress=False)
    with pytest.raises(FileNotFoundError):
        distributed_distances(tmp_path / "missing", client=client, progress=False)


# ---------------------------------------------------------------- CLI


def _app():
    import typer

    from taskspace.cli.distributed import register

    app = typer.Typer()
    register(app)
    return app


def test_cli_distances_and_embed(client, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    path = tmp_path / "s"
    make_store(path, [("a", 8, 0), ("b", 8, 1)])
    runner = CliRunner()
    address = client.scheduler.address
    res = runner.invoke(
        _app(), ["distances", str(path), "--scheduler", address, "--query", "run_id == 'a'"]
    )
    assert res.exit_code == 0, res.output
    assert "distances of 8 models" in res.output
    assert "range [" in " ".join(res.output.split())  # rich may wrap the line
    assert len(cached_ids(path, "bhattacharyya")) == 8
    # Past RANGE_MAX_MODELS the matrix is not read back just to print its range.
    import taskspace.cli.distributed as cd

    monkeypatch.setattr(cd, "RANGE_MAX_MODELS", 7)
    res = runner.invoke(
        _app(), ["distances", str(path), "--scheduler", address, "--query", "run_id == 'a'"]
    )
    assert res.exit_code == 0 and "distances of 8 models" in res.output
    assert "range" not in res.output
    monkeypatch.undo()
    out = tmp_path / "e.npz"
    res = runner.invoke(
        _app(), ["embed", str(path), "--scheduler", address, "-k", "2", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "explained stress" in res.output
    saved = np.load(out)
    from taskspace.geometry import InPCA

    ref = InPCA(n_components=2, metric="precomputed").fit(reference(path))
    np.testing.assert_allclose(saved["embedding"], ref.embedding_, atol=1e-9)
    assert list(saved["model_id"]) == list(Store.open(path).runs()["model_id"])
    # out of core and as CSV, from the cache (no cluster needed any more)
    csv = tmp_path / "e.csv"
    res = runner.invoke(
        _app(),
        [
            "embed",
            str(path),
            "-k",
            "2",
            "--out",
            str(csv),
            "--out-of-core",
            "--query",
            "run_id == 'b'",
        ],
    )
    assert res.exit_code == 0, res.output
    import pandas as pd

    frame = pd.read_csv(csv)
    ref_b = InPCA(n_components=2, metric="precomputed").fit(reference(path, "run_id == 'b'"))
    np.testing.assert_allclose(frame[["axis_1", "axis_2"]].to_numpy(), ref_b.embedding_, atol=1e-7)


@pytest.mark.slow
def test_cli_errors_are_one_line(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "1000"}  # rich wraps at the terminal width otherwise

    code = "import sys; from taskspace import cli; cli.main(sys.argv[1:])"
    missing = tmp_path / "missing"
    for args, text in [
        (["distances", str(missing)], "no taskspace store"),
        (["embed", str(missing), "--out", "x.txt"], ".npz or .csv"),
        (["embed", str(missing), "--landmarks", "3", "--rule", "no"], "--rule"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, env=env
        )
        assert proc.returncode == 1
        assert text in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("rule", ["farthest", "stratified"])
def test_cli_embed_landmarks_from_predictions_or_cache(tmp_path, rule):
    from typer.testing import CliRunner

    from taskspace.geometry import LandmarkInPCA

    path = tmp_path / "s"
    make_store(path, [("a", 9, 0), ("b", 7, 1), ("c", 8, 2)])
    X, table = Store.open(path).collection()
    ref = LandmarkInPCA(n_components=2, n_landmarks=6, rule=rule, random_state=0).fit(
        np.asarray(X), meta=table
    )
    runner = CliRunner()
    for step in ("predictions", "cache"):
        if step == "cache":
            assert runner.invoke(_app(), ["distances", str(path)]).exit_code == 0
        else:
            assert cached_ids(path, "bhattacharyya") == []  # nothing cached: from X
        out = tmp_path / f"{step}.npz"
        res = runner.invoke(
            _app(),
            ["embed", str(path), "-k", "2", "--landmarks", "6", "--rule", rule, "--out", str(out)],
        )
        assert res.exit_code == 0, res.output
        assert f"on 6 {rule} landmarks" in res.output
        saved = np.load(out)
        np.testing.assert_allclose(
            np.abs(saved["embedding"]), np.abs(ref.embedding_), rtol=0, atol=1e-9
        )
        assert list(saved["model_id"]) == list(table["model_id"])
    # A subset of the cached models (rows and columns picked out of the cache).
    res = runner.invoke(
        _app(),
        [
            "embed",
            str(path),
            "-k",
            "2",
            "--landmarks",
            "4",
            "--rule",
            rule,
            "--query",
            "run_id != 'b'",
            "--out",
            str(tmp_path / "sub.npz"),
        ],
    )
    assert res.exit_code == 0, res.output
    X_sub, t_sub = Store.open(path).collection("run_id != 'b'")
    ref_sub = LandmarkInPCA(n_components=2, n_landmarks=4, rule=rule, random_state=0).fit(
        np.asarray(X_sub), meta=t_sub
    )
    np.testing.assert_allclose(
        np.abs(np.load(tmp_path / "sub.npz")["embedding"]),
        np.abs(ref_sub.embedding_),
        rtol=0,
        atol=1e-9,
    )
    bad = runner.invoke(_app(), ["embed", str(path), "--landmarks", "4", "--rule", "nope"])
    assert isinstance(bad.exception, ValueError) and "--rule must be one of" in str(bad.exception)


def test_cli_embed_landmarks_leaves_the_store_as_it_is(tmp_path):
    """`embed --landmarks` without a cluster only reads: it opens the store read only, so it
    does not repair (delete) what a writer left in the staging area, as opening for appending
    does; `distances`, which fills the cache, still opens for appending and repairs."""
    from typer.testing import CliRunner

    path = tmp_path / "s"
    make_store(path, [("a", 9, 0), ("b", 7, 1)])
    leftover = path / ".taskspace" / "staging" / "run-being-created"
    leftover.mkdir(parents=True)
    runner = CliRunner()
    res = runner.invoke(
        _app(),
        ["embed", str(path), "-k", "2", "--landmarks", "4", "--out", str(tmp_path / "e.npz")],
    )
    assert res.exit_code == 0, res.output
    assert leftover.is_dir()
    assert cached_ids(path, "bhattacharyya") == []
    assert runner.invoke(_app(), ["distances", str(path)]).exit_code == 0
    assert not leftover.exists()


def test_tiled_commits_keep_the_cache_chunk_digests(client, tmp_path, monkeypatch):
    """The streaming commit (tiles written block by block) records each chunk's digest as the
    in-process extension does: chunks of 4 models here, so the tiles straddle them."""
    import zarr

    from taskspace.store import cache

    monkeypatch.setattr(cache, "CHUNK", 4)
    path = tmp_path / "s"
    store = make_store(path, [("a", 9, 0), ("b", 5, 1)])
    distributed_distances(path, client=client, tile=5, progress=False, return_matrix=False)
    store.add_run("c", task="t", classes=None, method="m", seed=2)
    store.append("c", random_models(np.random.default_rng(2), (6, N, C), 2.0), np.arange(6))
    D = distributed_distances(path, client=client, tile=5, progress=False)
    np.testing.assert_allclose(D, reference(path), rtol=0, atol=1e-12)
    key = cache.CacheKey("bhattacharyya")
    record = json.loads((path / "distances" / key.name / "zarr.json").read_text())
    arr = zarr.open_array(str(path / "distances" / key.name / "matrix"), mode="r")
    assert record["attributes"][cache.CACHE_KEY]["chunk_digests"] == cache.chunk_digests(
        arr, 20, None, 0
    )
    assert Store.open(path).check().ok
