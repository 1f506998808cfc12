"""Reading a store collection against the same data in memory: pairwise d_B (the hot path at
many classes, where the store may set the pace) and sequential sample-block reads.

    python benchmarks/bench_store_read.py [--models 300] [--samples 2000] [--classes 1000]
                                          [--repeats 3] [--root DIR] [--keep]

Writes a float32 store of M models (runs of 50 records, flushed), reads it back as a
collection, and alternates, in one process, ``pairwise_distances`` of the collection and of the
same values as a NumPy array (best of ``--repeats`` each, so that drift and other jobs hit both
alike). Prints the CPU model and one Markdown row per measurement; sequential reads are
``X[:, s0:s1]`` over whole store chunks of every model, from the page cache (the store was
just read), in GB/s of values returned.
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import cpu_model
from taskspace import pairwise_distances
from taskspace.geometry import _pairwise_stream
from taskspace.store import Store

RECORDS_PER_RUN = 50


def build(path: Path, models: int, n: int, c: int) -> Store:
    """A store of ``models`` models in runs of RECORDS_PER_RUN records (random rows)."""
    if path.exists():
        store = Store.open(path)
        if len(store.runs()) == models and store.n_samples == n and store.n_classes == c:
            return store
        shutil.rmtree(path)
    rng = np.random.default_rng(0)
    store = Store.create(path, np.arange(n) % c, [f"c{i}" for i in range(c)])
    for r in range(-(-models // RECORDS_PER_RUN)):
        rid = store.add_run(f"r{r}", task="t", classes=None, method="m", seed=r)
        count = min(RECORDS_PER_RUN, models - r * RECORDS_PER_RUN)
        for t0 in range(0, count, 10):
            k = min(10, count - t0)
            block = rng.random((k, n, c), dtype=np.float32) + np.float32(0.01)
            block /= block.sum(-1, keepdims=True)
            store.append(rid, block, np.arange(t0, t0 + k))
    os.sync()  # reads must not compete with the writeback of the write
    return Store.open(path)


def sequential(X) -> float:
    """Seconds to read every whole chunk of samples of every model once."""
    b = X.chunks[1]
    t = time.perf_counter()
    for s0 in range(0, X.shape[1], b):
        X[:, s0 : s0 + b]
    return time.perf_counter() - t


def sequential_into(X) -> float:
    """The same through ``read_into`` one reused buffer, as ``pairwise_distances`` reads."""
    b = X.chunks[1]
    out = np.empty((X.shape[0], b, X.shape[2]), dtype=X.dtype)
    X.read_into(0, b, out)  # touch the buffer's pages once
    t = time.perf_counter()
    for s0 in range(0, X.shape[1], b):
        X.read_into(s0, min(s0 + b, X.shape[1]), out)
    return time.perf_counter() - t


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=300)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the store for the next run")
    parser.add_argument("--reads-only", action="store_true", help="sequential reads only")
    args = parser.parse_args()
    m, n, c = args.models, args.samples, args.classes
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-store-read-"))
    path = root / f"store-{m}-{n}-{c}"
    print(
        f"CPU: {cpu_model()}; {os.cpu_count()} CPUs; M = {m}, N = {n}, C = {c}, float32 "
        f"({m * n * c * 4 / 1e9:.2f} GB); best of {args.repeats}, alternating"
    )
    try:
        store = build(path, m, n, c)
        X, _ = store.collection()
        nbytes = X.nbytes
        times = {"sequential read, store": [], "sequential read_into, store": []}
        if not args.reads_only:
            in_memory = np.asarray(X)
            pairwise_distances(in_memory[:8, :64])  # compile and warm up
            times.update(
                {
                    "pairwise d_B, in memory": [],
                    "pairwise d_B, store": [],
                    "pairwise d_B, store, reading in turn": [],
                }
            )
        D = {}
        for _ in range(args.repeats):
            times["sequential read, store"].append(timed(lambda: sequential(X)))
            times["sequential read_into, store"].append(sequential_into(X))
            if args.reads_only:
                continue
            times["pairwise d_B, in memory"].append(
                timed(lambda: D.__setitem__("memory", pairwise_distances(in_memory)))
            )
            times["pairwise d_B, store"].append(
                timed(lambda: D.__setitem__("store", pairwise_distances(X)))
            )
            # the same without reading the next chunk on a background thread
            default = _pairwise_stream.READ_AHEAD_MIN_THREADS
            _pairwise_stream.READ_AHEAD_MIN_THREADS = 1 << 30
            try:
                times["pairwise d_B, store, reading in turn"].append(
                    timed(lambda: pairwise_distances(X))
                )
            finally:
                _pairwise_stream.READ_AHEAD_MIN_THREADS = default
        if D:
            gap = float(np.max(np.abs(D["store"] - D["memory"])))
            print(f"largest difference store - memory: {gap:.1e}")
        best = {k: min(v) for k, v in times.items()}
        print("| measurement | best | all | note |")
        print("|---|---|---|---|")
        for name, value in best.items():
            note = ""
            if name.startswith("pairwise d_B, store"):
                note = f"{value / best['pairwise d_B, in memory']:.2f}x in memory"
            elif name.startswith("sequential"):
                note = f"{nbytes / value / 1e9:.2f} GB/s"
            runs = ", ".join(f"{v:.2f}" for v in times[name])
            print(f"| {name} | {value:.2f} s | {runs} | {note} |")
    finally:
        if not args.keep:
            shutil.rmtree(path, ignore_errors=True)
            if args.root is None:
                shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
