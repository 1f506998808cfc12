"""Peak memory of pairwise d_B streamed from a float16 ``numpy.memmap`` on disk.

The collection (M = 2000 models, N = 50,000 samples, C = 10: 2 GB of float16) is written chunk by
chunk to ``benchmarks/_scratch`` (git-ignored) and deleted afterwards. ``pairwise_distances`` then
runs in a fresh subprocess that opens it with ``np.load(mmap_mode="r")``; that process reports its
peak resident set size (``VmHWM``, which counts mapped file pages too, and ``ru_maxrss``, which
Linux carries over from the parent: the file is written by another subprocess so that this script
stays small). Target (issue 2): ≤ 1 GB. A few entries are checked against the float64 formula.

Usage::

    python benchmarks/bench_memory.py            # the issue's size (run behind the lock)
    python benchmarks/bench_memory.py --quick    # 200 × 5,000 × 10, to check that it works
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCRATCH = Path(__file__).resolve().parent / "_scratch"
TARGET_BYTES = 2**30

CHILD = r"""
import json, resource, sys, time
import numpy as np
import taskspace as ts
path = sys.argv[1]
X = np.load(path, mmap_mode="r")
ts.pairwise_distances(np.ones((2, 40, X.shape[2])) / X.shape[2])   # compile outside the timing
t0 = time.perf_counter()
D = ts.pairwise_distances(X)
seconds = time.perf_counter() - t0
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
np.save(path + ".D.npy", D[:5, :5])
print(json.dumps({
    "seconds": seconds,
    "vm_hwm_kib": int(status["VmHWM"].split()[0]),
    "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


def write_collection(path: Path, M: int, N: int, C: int, seed: int = 0) -> None:
    """float16 softmax predictions, written 20 models at a time (never 2 GB in memory)."""
    rng = np.random.default_rng(seed)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(M, N, C))
    for m0 in range(0, M, 20):
        m1 = min(m0 + 20, M)
        logits = 2.0 * rng.standard_normal((m1 - m0, N, C), dtype=np.float32)
        p = np.exp(logits - logits.max(axis=-1, keepdims=True))
        X[m0:m1] = p / p.sum(axis=-1, keepdims=True)
    X.flush()
    del X


def check_entries(path: Path, D5: np.ndarray) -> float:
    """Max abs difference of D[:5, :5] from the float64 formula on the stored float16 values."""
    X = np.load(path, mmap_mode="r")[:5].astype(np.float64)
    S = np.sqrt(X / X.sum(axis=-1, keepdims=True))
    bc = np.einsum("anc,bnc->abn", S, S)
    exact = -np.mean(np.log(np.clip(bc, 1e-9, 1.0)), axis=-1)
    np.fill_diagonal(exact, 0.0)
    return float(np.abs(D5 - exact).max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 × 5,000 × 10, to check it works")
    args = parser.parse_args(argv)
    M, N, C = (200, 5_000, 10) if args.quick else (2000, 50_000, 10)
    SCRATCH.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=SCRATCH))
    try:
        path = workdir / "collection.npy"
        t0 = time.perf_counter()
        writer = (
            f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
            f"from bench_memory import write_collection; from pathlib import Path; "
            f"write_collection(Path({str(path)!r}), {M}, {N}, {C})"
        )
        subprocess.run([sys.executable, "-c", writer], check=True)
        size = path.stat().st_size
        print(f"wrote {size / 2**30:.2f} GiB float16 memmap in {time.perf_counter() - t0:.0f} s")
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)], check=True, capture_output=True, text=True
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        error = check_entries(path, np.load(str(path) + ".D.npy"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    peak = result["vm_hwm_kib"] * 1024
    print(
        "\n| case | file on disk | time (s) | peak RSS (VmHWM) | ru_maxrss | target | met "
        "| max abs diff D[:5,:5] vs float64 formula |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| M={M}, N={N:,}, C={C}, float16 memmap | {size / 2**30:.2f} GiB "
        f"| {result['seconds']:.1f} | {peak / 2**20:.0f} MiB "
        f"| {result['ru_maxrss_kib'] / 2**10:.0f} MiB | ≤ 1 GiB "
        f"| {'yes' if peak <= TARGET_BYTES else 'no'} | {error:.1e} |"
    )


if __name__ == "__main__":
    main()
