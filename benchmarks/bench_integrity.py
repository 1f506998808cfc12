"""Cost of the store's integrity checks on append and read, and on filling, extending and
reading a distance cache: the same store written and read in three formats, in one run.

    python benchmarks/bench_integrity.py [--quick] [--repeats N] [--cpu-time]

- "unverified": as written before the checks existed (format 1, no checksum codec, no digests),
  which this version still reads; its reads only look for missing chunks (NaN).
- "format 1": crc32c chunk checksums and per-chunk digests (commit records, cache records), as
  the previous version wrote; read through the legacy path.
- "format 2": also the digests of the header, every commit record, the run index and every
  cache record (the chain of issue 23), verified once per open and per record read.

Prints the CPU model and one Markdown row per operation: the three times, and the ratios of
format 2 to format 1 (the chain's cost) and to unverified (all checks).
"""

import argparse
import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import cpu_model
from taskspace.store import Store, _meta, _writer, cache
from taskspace.store import checksums as integrity
from taskspace.store.atomic import read_json, write_json_atomic

MODES = ("unverified", "format 1", "format 2")
#: The clock timed with: wall time, or with --cpu-time the CPU time of this process (all its
#: threads), which other jobs on a shared machine disturb far less.
clock = time.perf_counter


@contextlib.contextmanager
def writing(mode: str):
    """Write as ``mode`` does: format 1 without the digests of commit and cache records;
    unverified also without crc32c codec and chunk digests."""
    saved = (
        _meta.commit_digest,
        cache.record_digest,
        _writer.compressors_for,
        integrity.record_digests,
        cache.chunk_digests,
    )
    if mode != "format 2":
        _meta.commit_digest = lambda *args: None
        cache.record_digest = lambda attrs: None
    if mode == "unverified":
        _writer.compressors_for = lambda compression: None
        integrity.record_digests = lambda data, b: [None] * data.shape[0]
        cache.chunk_digests = lambda arr, k, old, k_old: None
    try:
        yield
    finally:
        (
            _meta.commit_digest,
            cache.record_digest,
            _writer.compressors_for,
            integrity.record_digests,
            cache.chunk_digests,
        ) = saved


def create(path: Path, labels, class_names, mode: str) -> Store:
    """A new store in ``mode``'s format (format 1: the header without its digest and the store
    without run index; unverified: nor labels digest nor checksums)."""
    store = Store.create(path, labels, class_names)
    if mode == "format 2":
        return store
    meta = read_json(path / "zarr.json")
    header = meta["attributes"][_meta.HEADER_KEY]
    header["format_version"] = _meta.LEGACY_FORMAT
    drop = ["header_digest"] + (
        ["labels_digest", "checksums", "ids_digest"] if mode == "unverified" else []
    )
    for k in drop:
        header.pop(k, None)
    write_json_atomic(path / "zarr.json", meta)
    write_json_atomic(
        path / "runs" / "zarr.json", {"zarr_format": 3, "node_type": "group", "attributes": {}}
    )
    return Store.open(path, "a")


def build(
    path: Path, runs: int, T: int, N: int, C: int, k: int, mode: str = "format 2"
) -> tuple[Store, float]:
    """A store of ``runs`` runs of T records, appended k at a time; returns it and the append
    time (data generation excluded)."""
    rng = np.random.default_rng(0)
    block = rng.random((k, N, C), dtype=np.float32)
    block /= block.sum(-1, keepdims=True)
    store = create(path, np.arange(N) % C, [f"c{i}" for i in range(C)], mode)
    elapsed = 0.0
    for r in range(runs):
        rid = store.add_run(f"r{r}", task="t", classes=None, method="m", seed=r)
        for t0 in range(0, T, k):
            t = clock()
            store.append(rid, block, np.arange(t0, t0 + k))
            elapsed += clock() - t
    return store, elapsed


def read_all(store: Store) -> float:
    t = clock()
    for rid in store.run_ids:
        store.trajectory(rid)
    return clock() - t


def stream(store: Store) -> float:
    """Sample blocks across every model, as pairwise_distances reads a collection."""
    X, _ = store.collection()
    b = X.chunks[1]
    t = clock()
    for s0 in range(0, X.shape[1], b):
        X[:, s0 : s0 + b]
    return clock() - t


def constant_distances(X, Y):
    """A distance function that costs nothing, so that only the cache's own work is timed."""
    m = X.shape[0]
    out = np.full((m, m if Y is None else Y.shape[0]), 0.5)
    if Y is None:
        np.fill_diagonal(out, 0.0)
    return out


def cache_times(path: Path, models: int, extra: int, mode: str) -> dict[str, float]:
    """Fill a cache of ``models`` models in one go, extend it by ``extra``, then read it back
    whole and as row blocks (the out-of-core InPCA's pass) from a freshly opened store."""
    store = create(path, np.arange(4) % 2, ["a", "b"], mode)
    block = np.full((100, 4, 2), 0.5, dtype=np.float32)
    for r in range(-(-(models + extra) // 100)):
        store.add_run(f"r{r}", task="t", classes=None, method="m", seed=r)
        store.append(f"r{r}", block, np.arange(100))
    ids = list(store.runs()["model_id"])[: models + extra]
    out = {}
    for name, chosen in (("cache fill", ids[:models]), ("cache extension", ids)):
        t = clock()
        store.distance_matrix(chosen, metric="constant", compute=constant_distances)
        out[name] = clock() - t
    os.sync()  # as above: reads must not compete with the writeback of the cache
    t = clock()
    np.asarray(Store.open(path).cached_distances(metric="constant"))
    out["cache read, whole"] = clock() - t
    D = Store.open(path).cached_distances(metric="constant")
    t = clock()
    for r0 in range(0, D.shape[0], cache.CHUNK):
        D[r0 : r0 + cache.CHUNK]
    out["cache read, row blocks"] = clock() - t
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many")
    parser.add_argument("--cpu-time", action="store_true", help="time CPU, not wall time")
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.cpu_time else time.perf_counter
    runs, T, N, C, k = (2, 8, 2000, 50, 4) if args.quick else (4, 16, 10000, 100, 4)
    print(
        f"CPU: {cpu_model()}; {runs} runs x {T} records of (N, C) = ({N}, {C}) float32 "
        f"({runs * T * N * C * 4 / 2**20:.0f} MiB), appended {k} at a time; "
        f"best of {args.repeats}; {'CPU' if args.cpu_time else 'wall'} time"
    )
    root = Path(tempfile.mkdtemp(prefix="bench-integrity-"))
    times = {m: {"append": [], "trajectory read": [], "sample-block read": []} for m in MODES}
    try:
        build(root / "warm-up", 1, k, N, C, k)  # imports, first-call costs
        for rep in range(args.repeats):  # alternate the modes, so that drift hits them alike
            for label in MODES:
                path = root / f"{label}-{rep}".replace(" ", "")
                with writing(label):
                    store, t_append = build(path, runs, T, N, C, k, label)
                # Reads right after a large write compete with its writeback (measured: 4× slower
                # reads of a 2.2 GB store just written): flush it first.
                os.sync()
                times[label]["append"].append(t_append)
                with writing(label):  # the legacy path reads no digest that it lacks
                    store = Store.open(path)
                    times[label]["trajectory read"].append(read_all(store))
                    times[label]["sample-block read"].append(stream(store))
                shutil.rmtree(path)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    models, extra = (1500, 100) if args.quick else (4000, 200)
    print(
        f"distance cache: {models} models filled at once, then {extra} more; chunks of "
        f"{cache.CHUNK}"
    )
    root = Path(tempfile.mkdtemp(prefix="bench-integrity-cache-"))
    try:
        for rep in range(args.repeats):
            for label in MODES:
                path = root / f"{label}-{rep}".replace(" ", "")
                with writing(label):
                    for op, t in cache_times(path, models, extra, label).items():
                        times[label].setdefault(op, []).append(t)
                shutil.rmtree(path)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results = {m: {op: min(v) for op, v in t.items()} for m, t in times.items()}
    print(
        "| operation | unverified | format 1 | format 2 | format 2 / format 1 | "
        "format 2 / unverified |"
    )
    print("|---|---|---|---|---|---|")
    for op in results["format 2"]:
        a, b, c = (results[m][op] for m in MODES)
        print(f"| {op} | {a:.3f} s | {b:.3f} s | {c:.3f} s | {c / b:.2f}× | {c / a:.2f}× |")


if __name__ == "__main__":
    main()
