"""Code run in subprocesses by ``test_store_hostile``: distance-cache fills killed at a chosen
write, and the distances they must leave.

A fill uses ``compute``, a NumPy Bhattacharyya distance under a test metric name: the numbers
are checked against it, and no Numba kernel is compiled in a child.
"""

import os
import signal

import numpy as np
import zarr.storage._local as zarr_local

from taskspace.store import Store
from tests import _store_workers as base

METRIC = "test-bhattacharyya"
RUNS, RECORDS = 3, 4  # 12 models


def compute(X, Y):
    """(len(X), len(Y)) Bhattacharyya distances, -mean_n log sum_c sqrt(p q); Y None: X, X."""
    A = np.sqrt(np.asarray(X[:], dtype=np.float64))
    B = A if Y is None else np.sqrt(np.asarray(Y[:], dtype=np.float64))
    bc = np.clip(np.einsum("inc,jnc->ijn", A, B), 1e-300, 1.0)
    D = -np.log(bc).mean(-1)
    if Y is None:
        D = (D + D.T) / 2
        np.fill_diagonal(D, 0.0)
    return D


def make_store(path) -> list[str]:
    """A store of RUNS runs of RECORDS records; returns its model ids."""
    store = Store.create(path, base.labels(), base.CLASSES, chunk_samples=base.CHUNK)
    for i in range(RUNS):
        run = store.add_run(f"r{i}", task="t", classes=None, method="m", seed=i)
        base.append_next(store, run, RECORDS)
    return list(store.runs()["model_id"])


def expected(ids: list[str]) -> np.ndarray:
    """The distances of ``ids`` from the records themselves (no store involved)."""
    X = np.stack([base.record(m.rsplit("/", 1)[0], int(m.rsplit("/", 1)[1])) for m in ids])
    return compute(X.astype(np.float32), None)


def fill(path: str, n_models: int, kill_at: int, count_file: str | None = None) -> None:
    """Fill the cache with the first ``n_models`` models; SIGKILL this process just before its
    ``kill_at``-th write event (a Zarr file write, an ``os.replace`` or an ``os.rename``). If it
    gets through, the number of events goes to ``count_file``."""
    events = [0]

    def counted(fn):
        def wrapper(*args, **kwargs):
            events[0] += 1
            if events[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)

        return wrapper

    zarr_local._put = counted(zarr_local._put)
    os.replace = counted(os.replace)
    os.rename = counted(os.rename)
    store = Store.open(path, mode="a")
    ids = list(store.runs()["model_id"])[:n_models]
    store.distance_matrix(ids, metric=METRIC, compute=compute)
    if count_file is not None:
        with open(count_file, "w") as f:
            f.write(str(events[0]))
