"""Code run in subprocesses by the store's crash and concurrency tests.

Every record's content is a pure function of (run id, record index), so a test can check any
store left behind by a killed or concurrent writer against a direct recomputation.
"""

import zlib

import numpy as np

from taskspace.store import Store

N_SAMPLES, N_CLASSES, CHUNK = 600, 5, 64  # 10 chunks per record: kills land mid-record
CLASSES = [f"c{i}" for i in range(N_CLASSES)]


def labels() -> np.ndarray:
    return np.arange(N_SAMPLES) % N_CLASSES


def record(run_id: str, t: int) -> np.ndarray:
    """The predictions of record t of run ``run_id`` (float64, rows sum to 1)."""
    rng = np.random.default_rng([zlib.crc32(run_id.encode()), t])
    logits = 2.0 * rng.standard_normal((N_SAMPLES, N_CLASSES))
    P = np.exp(logits - logits.max(-1, keepdims=True))
    return P / P.sum(-1, keepdims=True)


def append_next(store: Store, run_id: str, k: int) -> None:
    """Append records t..t+k-1 (t = current length) with steps t.. and metric ``t``. Only for
    a run with a single writer (the length is read outside the store's lock)."""
    t = store.n_records(run_id)
    P = np.stack([record(run_id, t + i) for i in range(k)])
    steps = list(range(t, t + k))
    store.append(run_id, P, steps, {"t": steps})


def append_forever(path: str, started, records_per_run: int = 6) -> None:
    """Keep creating runs and appending 1-2 records at a time until killed."""
    store = Store.open(path, mode="a")
    i = 0
    while True:
        runs = [r for r in store.run_ids if r.startswith("kill-")]
        run = runs[-1] if runs else None
        if run is None or store.n_records(run) >= records_per_run:
            run = store.add_run(
                f"kill-{len(runs):03d}", task="t", classes=None, method="m", seed=len(runs)
            )
        append_next(store, run, 1 + i % 2)
        started.set()
        i += 1


def write_concurrently(path: str, own_run: str, shared_run: str, n: int, barrier) -> None:
    """Append ``n`` records to ``own_run`` and ``n`` to ``shared_run``, interleaved. In the
    shared run, record i of this writer is ``record(own_run, i)`` with metric t = i, at a step
    past the run's last one (steps must increase; the other writer may take a step first, which
    the store refuses under its lock, and then this writer tries the next one)."""
    store = Store.open(path, mode="a")
    barrier.wait()
    for i in range(n):
        append_next(store, own_run, 1)
        while True:
            steps = store.steps(shared_run)
            try:
                store.append(
                    shared_run,
                    record(own_run, i),
                    steps[-1] + 1 if steps else 0,
                    {"t": i, "writer": own_run},
                )
                break
            except ValueError as exc:
                if "strictly increasing" not in str(exc):
                    raise


def check_store(path: str) -> dict[str, int]:
    """Assert that every committed record of every run equals its recomputation; return the
    number of records per run."""
    store = Store.open(path, mode="r")
    counts = {}
    for run_id in store.run_ids:
        if run_id.startswith("shared"):
            continue
        traj = store.trajectory(run_id)
        t = len(traj)
        expected = (
            np.stack([record(run_id, i) for i in range(t)])
            if t
            else np.empty((0, N_SAMPLES, N_CLASSES))
        )
        np.testing.assert_array_equal(traj.predictions, expected.astype(np.float32))
        np.testing.assert_array_equal(traj.steps, np.arange(t))
        if t:
            np.testing.assert_array_equal(traj.metrics["t"].to_numpy(), np.arange(t))
        counts[run_id] = t
    return counts
