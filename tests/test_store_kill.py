"""Crash safety and concurrency of the store, with real subprocesses.

Writers run in processes forked from a forkserver that has already imported taskspace, so each
starts in well under a second (the first start pays the import of taskspace once).
"""

import multiprocessing as mp
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from taskspace.store import Store
from tests import _store_workers as workers

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and fcntl are POSIX")


@pytest.fixture(scope="module")
def ctx():
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["taskspace.store", "tests._store_workers"])
    return context


def _new_store(path: Path) -> Store:
    return Store.create(path, workers.labels(), workers.CLASSES, chunk_samples=workers.CHUNK)


def _assert_clean(path: Path) -> None:
    """After Store.open(path, 'a'): nothing past any commit, no temporaries, no markers."""
    store = Store.open(path, mode="r")
    assert not list((path / ".taskspace" / "pending").iterdir())
    assert not list((path / ".taskspace" / "staging").iterdir())
    for run_id in store.run_ids:
        count = store.n_records(run_id)
        arr = zarr.open_array(
            zarr.storage.LocalStore(path, read_only=True),
            path=f"runs/{run_id}/predictions",
            mode="r",
        )
        assert arr.shape[0] == count
        chunk_dir = path / "runs" / run_id / "predictions" / "c"
        on_disk = {int(p.name) for p in chunk_dir.iterdir()} if chunk_dir.exists() else set()
        assert on_disk == set(range(count))
    leftovers = [p for p in path.rglob("*") if p.name.endswith((".partial", ".tmp"))]
    assert leftovers == []


@pytest.mark.slow
def test_sigkill_at_random_times_loses_nothing_committed(tmp_path, ctx):
    path = tmp_path / "s.zarr"
    _new_store(path)
    rng = random.Random(1234)
    totals = []
    for _ in range(4):
        started = ctx.Event()
        proc = ctx.Process(target=workers.append_forever, args=(str(path), started))
        proc.start()
        assert started.wait(60), "the writer never appended"
        # Kill somewhere inside the append loop: mid-chunk, mid-commit, mid-run-creation.
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        assert proc.exitcode == -signal.SIGKILL
        counts = workers.check_store(str(path))  # readable as left, before any repair
        totals.append(sum(counts.values()))
        Store.open(path, mode="a")  # repairs
        _assert_clean(path)
        assert workers.check_store(str(path)) == counts
    assert totals == sorted(totals) and totals[-1] > totals[0]


@pytest.mark.slow
def test_two_processes_write_one_store(tmp_path, ctx):
    path = tmp_path / "s.zarr"
    store = _new_store(path)
    for rid in ("own-a", "own-b", "shared"):
        store.add_run(rid, task="t", classes=None, method="m", seed=0)
    n = 12
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=workers.write_concurrently, args=(str(path), rid, "shared", n, barrier))
        for rid in ("own-a", "own-b")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert workers.check_store(str(path)) == {"own-a": n, "own-b": n}
    traj = store.trajectory("shared")
    assert len(traj) == 2 * n
    np.testing.assert_array_equal(traj.steps, np.arange(2 * n))  # each append took the next
    for writer in ("own-a", "own-b"):
        mine = traj.metrics["writer"].to_numpy() == writer
        np.testing.assert_array_equal(traj.metrics["t"].to_numpy()[mine], np.arange(n))
        expected = np.stack([workers.record(writer, i) for i in range(n)]).astype(np.float32)
        np.testing.assert_array_equal(traj.predictions[mine], expected)
    Store.open(path, mode="a")
    _assert_clean(path)
