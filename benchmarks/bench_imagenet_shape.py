"""The paper's ImageNet study's shape, simulated, end to end (issue 26).

    python benchmarks/bench_imagenet_shape.py --root DIR [--samples 500] [--chunk-samples 50]
                                               [--keep]

Writes through the real ``Store`` API 6 tasks × 5 seeds × 61 checkpoints (M = 1830 models),
C = 1000 classes, float16, N probe samples, from trajectories that move like real ones: the
softmax of logits ``β_k · (4·1[c = y_n] + z_{task,seed}) − β_k · 3·1[c ∉ task]``, β growing from
0 (uniform) to 1 along a log-spaced schedule, so that progress rises and the tasks separate in
InPCA. Then, each stage in its own process: ``taskspace distances`` (one process; then the cache
cleared and ``--workers 2``), ``taskspace embed`` (in memory, then ``--out-of-core``), and the six
analyses. Per stage: wall time, peak RSS (the stage's process; Dask workers not included),
bytes read by it (``rchar``: page cache included) and their rate, and for the distances the
fraction of the compute limit, ``M²NC`` flops (``M²NC/2`` multiply-adds) at the float64
``dgemm`` rate measured in this run on the same cores.

``--chunk-samples``: samples per store chunk. A sample block of every model must hold whole
store chunks or each chunk is read and verified once per block that touches it: at M = 1830 and
C = 1000 one 524-sample chunk (the 1 MiB default at float16) of every model is 3.8 GB as float32,
past the reader's budget, so the default chunking re-reads each chunk ~28 times (see
docs/scaling.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TASKS = {  # name: classes (of 1000)
    "all": range(1000),
    "first-half": range(500),
    "second-half": range(500, 1000),
    "quarter-0": range(250),
    "quarter-1": range(250, 500),
    "even": range(0, 1000, 2),
}
SEEDS = 5
CHECKPOINTS = 61
C = 1000


def steps() -> np.ndarray:
    """61 log-spaced checkpoint steps of a 10,000-step run (0 first)."""
    s = np.unique(np.round(np.geomspace(1, 10_000, 200)).astype(int))
    pick = np.linspace(0, len(s) - 1, CHECKPOINTS - 1).round().astype(int)
    return np.concatenate([[0], s[pick]])


def write_store(path: Path, n: int, chunk_samples: int | None) -> dict:
    from taskspace.store import Store

    rng = np.random.default_rng(0)
    labels = rng.integers(0, C, size=n)
    store = Store.create(
        path, labels, [f"class{c}" for c in range(C)], dtype="float16", chunk_samples=chunk_samples
    )
    onehot = np.zeros((n, C), dtype=np.float32)
    onehot[np.arange(n), labels] = 4.0
    step = steps()
    beta = np.log1p(step) / np.log1p(step[-1])
    for task, classes in TASKS.items():
        outside = np.full(C, 3.0, dtype=np.float32)
        outside[list(classes)] = 0.0
        for seed in range(SEEDS):
            z = rng.standard_normal((n, C), dtype=np.float32)
            rid = store.add_run(
                f"{task}-s{seed}", task=task, classes=None, method="supervised", seed=seed
            )
            for k0 in range(0, CHECKPOINTS, 16):
                b = beta[k0 : k0 + 16].astype(np.float32)[:, None, None]
                logits = b * (onehot + z) - b * outside
                logits -= logits.max(-1, keepdims=True)
                p = np.exp(logits)
                p /= p.sum(-1, keepdims=True)
                store.append(
                    rid,
                    p.astype(np.float16),
                    step[k0 : k0 + 16],
                    {"accuracy": (p.argmax(-1) == labels).mean(-1)},
                )
    return {"models": len(TASKS) * SEEDS * CHECKPOINTS}


def cli(*args: str) -> None:
    from taskspace.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise RuntimeError(f"taskspace {' '.join(args)} exited with {exc.code}") from exc


def analyses(store_path: Path) -> dict:
    from taskspace.store import Store
    from taskspace.study.analyses import ANALYSES

    times, findings = {}, {}
    store = Store.open(store_path)
    for name, fn in ANALYSES.items():
        t = time.perf_counter()
        result = fn(store)
        times[name] = round(time.perf_counter() - t, 2)
        findings[name] = str(result.finding)[:100]
    return {"analyses": times, "findings": findings}


def stage(name: str, store: Path, args) -> dict:
    """Run one stage in this process; return what it reports besides time, RSS and bytes."""
    if name == "write":
        return write_store(store, args.samples, args.chunk_samples)
    if name == "distances":
        cli("distances", str(store))
    elif name == "distances-workers-2":
        from taskspace.store import Store

        Store.open(store, "a").clear_cache()  # every cache: the workers compute it all again
        cli("distances", str(store), "--workers", "2")
    elif name == "embed":
        cli("embed", str(store), "--out", str(store.parent / "embedding.npz"))
    elif name == "embed-out-of-core":
        cli("embed", str(store), "--out-of-core", "--out", str(store.parent / "embedding-ooc.npz"))
    elif name == "analyses":
        return analyses(store)
    return {}


def io_read() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def run_stage(name: str, store: Path, args) -> dict:
    """The stage in a child process: wall time, its peak RSS (wait4) and what it printed."""
    cmd = [
        sys.executable,
        __file__,
        "--stage",
        name,
        "--root",
        str(args.root),
        "--samples",
        str(args.samples),
    ]
    if args.chunk_samples:
        cmd += ["--chunk-samples", str(args.chunk_samples)]
    t = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        raise RuntimeError(f"stage {name} failed ({status}):\n{out[-3000:]}")
    report = json.loads(out.strip().splitlines()[-1])
    report.update(stage=name, wall=wall, peak_rss=usage.ru_maxrss * 1024)
    return report


def dgemm_rate() -> float:
    """float64 matmul flop/s on this process's threads (best of 3, n = 2000)."""
    a = np.random.default_rng(0).random((2000, 2000))
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    return 2 * 2000**3 / best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--chunk-samples", type=int, default=50)
    parser.add_argument("--stage", default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    store = args.root / f"imagenet-shape-{args.samples}" / "store"
    if args.stage:
        before = io_read()
        extra = stage(args.stage, store, args)
        print(json.dumps({**extra, "read": io_read() - before}))
        return
    from _machine import cpu_model

    if store.parent.exists():
        shutil.rmtree(store.parent)
    store.parent.mkdir(parents=True)
    m, n = len(TASKS) * SEEDS * CHECKPOINTS, args.samples
    print(
        f"CPU: {cpu_model()}; {os.cpu_count()} CPUs; M = {m}, N = {n}, C = {C}, float16, "
        f"{args.chunk_samples} samples a chunk ({m * n * C * 2 / 1e9:.2f} GB)"
    )
    rows = []
    try:
        for name in (
            "write",
            "distances",
            "distances-workers-2",
            "embed",
            "embed-out-of-core",
            "analyses",
        ):
            if name == "distances":
                os.sync()  # reads must not compete with the writeback of the write
            rows.append(run_stage(name, store, args))
            print(json.dumps(rows[-1]), flush=True)
        rate = dgemm_rate()
    finally:
        if not args.keep:
            shutil.rmtree(store.parent, ignore_errors=True)
    limit = m * m * n * C / rate
    print(
        f"\nfloat64 dgemm: {rate / 1e9:.1f} GFLOP/s; compute limit of the distances "
        f"(M²NC flops): {limit:.1f} s\n"
    )
    print("| stage | wall (s) | peak RSS (GB) | read (GB) | GB/s | of compute limit |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        frac = f"{limit / r['wall']:.0%}" if r["stage"].startswith("distances") else ""
        print(
            f"| {r['stage']} | {r['wall']:.1f} | {r['peak_rss'] / 1e9:.2f} | "
            f"{r['read'] / 1e9:.2f} | {r['read'] / 1e9 / r['wall']:.2f} | {frac} |"
        )
    for r in rows:
        if "analyses" in r:
            print("\nanalyses (s):", r["analyses"])
            for k, v in r["findings"].items():
                print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
