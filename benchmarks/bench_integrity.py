"""Cost of the store's integrity checks (crc32c chunk checksums, per-chunk digests) on append
and read: the same store written and read with and without them, in one run; and of the
distance cache's chunk digests on filling, extending and reading a cache.

    python benchmarks/bench_integrity.py [--quick]

Prints the CPU model and one Markdown row per operation: time without, with, and the ratio.
"Without" is a store as written before the checks existed (no checksum codec, no digests), which
this version still reads; its reads then only look for missing chunks (NaN).
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
from taskspace.store import Store, _writer, cache, checksums


@contextlib.contextmanager
def without_checks():
    """Write as before integrity: no crc32c codec on new runs, no digests in commit records."""
    codecs, digests = _writer.compressors_for, checksums.record_digests
    _writer.compressors_for = lambda compression: None
    checksums.record_digests = lambda data, b: [None] * data.shape[0]
    try:
        yield
    finally:
        _writer.compressors_for, checksums.record_digests = codecs, digests


def build(path: Path, runs: int, T: int, N: int, C: int, k: int) -> tuple[Store, float]:
    """A store of ``runs`` runs of T records, appended k at a time; returns it and the append
    time (data generation excluded)."""
    rng = np.random.default_rng(0)
    block = rng.random((k, N, C), dtype=np.float32)
    block /= block.sum(-1, keepdims=True)
    store = Store.create(path, np.arange(N) % C, [f"c{i}" for i in range(C)])
    elapsed = 0.0
    for r in range(runs):
        rid = store.add_run(f"r{r}", task="t", classes=None, method="m", seed=r)
        for t0 in range(0, T, k):
            t = time.perf_counter()
            store.append(rid, block, np.arange(t0, t0 + k))
            elapsed += time.perf_counter() - t
    return store, elapsed


def read_all(store: Store) -> float:
    t = time.perf_counter()
    for rid in store.run_ids:
        store.trajectory(rid)
    return time.perf_counter() - t


def stream(store: Store) -> float:
    """Sample blocks across every model, as pairwise_distances reads a collection."""
    X, _ = store.collection()
    b = X.chunks[1]
    t = time.perf_counter()
    for s0 in range(0, X.shape[1], b):
        X[:, s0:s0 + b]
    return time.perf_counter() - t


@contextlib.contextmanager
def without_cache_digests():
    """Commit caches as before chunk digests (their reads then verify no chunk's place)."""
    real = cache.chunk_digests
    cache.chunk_digests = lambda arr, k, old, k_old: None
    try:
        yield
    finally:
        cache.chunk_digests = real


def constant_distances(X, Y):
    """A distance function that costs nothing, so that only the cache's own work is timed."""
    m = X.shape[0]
    out = np.full((m, m if Y is None else Y.shape[0]), 0.5)
    if Y is None:
        np.fill_diagonal(out, 0.0)
    return out


def cache_times(path: Path, models: int, extra: int) -> dict[str, float]:
    """Fill a cache of ``models`` models in one go, extend it by ``extra``, then read it back
    whole and as row blocks (the out-of-core InPCA's pass) from a freshly opened store."""
    store = Store.create(path, np.arange(4) % 2, ["a", "b"])
    block = np.full((100, 4, 2), 0.5, dtype=np.float32)
    for r in range(-(-(models + extra) // 100)):
        store.add_run(f"r{r}", task="t", classes=None, method="m", seed=r)
        store.append(f"r{r}", block, np.arange(100))
    ids = list(store.runs()["model_id"])[:models + extra]
    out = {}
    for name, chosen in (("cache fill", ids[:models]), ("cache extension", ids)):
        t = time.perf_counter()
        store.distance_matrix(chosen, metric="constant", compute=constant_distances)
        out[name] = time.perf_counter() - t
    os.sync()   # as above: reads must not compete with the writeback of the cache
    t = time.perf_counter()
    np.asarray(Store.open(path).cached_distances(metric="constant"))
    out["cache read, whole"] = time.perf_counter() - t
    D = Store.open(path).cached_distances(metric="constant")
    t = time.perf_counter()
    for r0 in range(0, D.shape[0], cache.CHUNK):
        D[r0:r0 + cache.CHUNK]
    out["cache read, row blocks"] = time.perf_counter() - t
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs, T, N, C, k = (2, 8, 2000, 50, 4) if args.quick else (4, 16, 10000, 100, 4)
    print(f"CPU: {cpu_model()}; {runs} runs x {T} records of (N, C) = ({N}, {C}) float32 "
          f"({runs * T * N * C * 4 / 2**20:.0f} MiB), appended {k} at a time; best of 3")
    root = Path(tempfile.mkdtemp(prefix="bench-integrity-"))
    modes = {"without": without_checks, "with": contextlib.nullcontext}
    times = {m: {"append": [], "trajectory read": [], "sample-block read": []} for m in modes}
    try:
        build(root / "warm-up", 1, k, N, C, k)   # imports, first-call costs
        for rep in range(3):   # alternate the two, so that drift hits both alike
            for label, ctx in modes.items():
                path = root / f"{label}-{rep}"
                with ctx():
                    store, t_append = build(path, runs, T, N, C, k)
                # Reads right after a large write compete with its writeback (measured: 4× slower
                # reads of a 2.2 GB store just written): flush it first.
                os.sync()
                times[label]["append"].append(t_append)
                store = Store.open(path)
                times[label]["trajectory read"].append(read_all(store))
                times[label]["sample-block read"].append(stream(store))
                shutil.rmtree(path)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    models, extra = (1500, 100) if args.quick else (4000, 200)
    print(f"distance cache: {models} models filled at once, then {extra} more; chunks of "
          f"{cache.CHUNK}; with and without its chunk digests")
    root = Path(tempfile.mkdtemp(prefix="bench-integrity-cache-"))
    cache_modes = {"without": without_cache_digests, "with": contextlib.nullcontext}
    try:
        for rep in range(3):
            for label, ctx in cache_modes.items():
                with ctx():
                    for op, t in cache_times(root / f"{label}-{rep}", models, extra).items():
                        times[label].setdefault(op, []).append(t)
                shutil.rmtree(root / f"{label}-{rep}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results = {m: {op: min(v) for op, v in t.items()} for m, t in times.items()}
    print("| operation | without checks | with checks | ratio |")
    print("|---|---|---|---|")
    for op in results["with"]:
        a, b = results["without"][op], results["with"][op]
        print(f"| {op} | {a:.3f} s | {b:.3f} s | {b / a:.2f}× |")


if __name__ == "__main__":
    main()
