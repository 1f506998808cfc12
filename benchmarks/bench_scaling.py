"""Scaling of distances and InPCA with the number of models M (issue 6, docs/scaling.md).

For each M (N = 1000 probe samples, C = 10 classes, runs of 50 records in one store):

* distances, 1 process: ``pairwise_distances`` of the store's ``LazyCollection`` (Numba threads);
* distances, Dask: ``distributed_distances`` on a 2-worker ``LocalCluster`` (1 thread each),
  written to the store's cache tile by tile (``return_matrix=False``: the client never holds D);
* InPCA, in memory: ``InPCA(metric="precomputed", solver="partial")`` of the cached D (k = 3);
* InPCA, out of core: ``InPCA(solver="out-of-core")`` streaming the cached Zarr D (k = 3);
* landmark InPCA (k = 3, L = 250 and 1000, farthest-point and stratified): time, and the relative
  error of the distances it reconstructs against the full fit's, on 2,000 random models.

Each case runs in a fresh child process, which reports its wall time and peak RSS (for Dask: the
client's and the largest worker's). A least-squares fit ``t = a·M² + b`` of the distance times
gives the cost per pair per sample, printed for the extrapolations in docs/scaling.md.

    python benchmarks/bench_scaling.py --quick          # M = 1000, 2000
    python benchmarks/bench_scaling.py                  # M = 1k, 2k, 5k, 10k, 20k
    python benchmarks/bench_scaling.py --sizes 1000 2000 5000
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N, C, RECORDS = 1000, 10, 50


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_store(path: Path, m: int) -> None:
    from taskspace.store import Store

    rng = np.random.default_rng(0)
    store = Store.create(path, np.arange(N) % C, [f"c{i}" for i in range(C)])
    for r in range(-(-m // RECORDS)):
        t = min(RECORDS, m - r * RECORDS)
        start, end = rng.standard_normal((N, C)), 3 * rng.standard_normal((N, C))
        s = np.linspace(0, 1, t)[:, None, None]
        z = (1 - s) * start + s * end
        p = np.exp(z - z.max(-1, keepdims=True))
        rid = f"run{r:05d}"
        store.add_run(rid, task="t", classes=None, method="m", seed=r)
        store.append(rid, (p / p.sum(-1, keepdims=True)).astype(np.float32), np.arange(t))


def case(name: str, store: str) -> dict:
    """Run one case in this process; return its timing and memory."""
    from taskspace.store import Store

    t0 = time.perf_counter()
    extra = {}
    if name == "dist-1proc":
        from taskspace.geometry import pairwise_distances

        X, _ = Store.open(store).collection()
        pairwise_distances(X[:64, :50])  # compile the kernels before timing
        t0 = time.perf_counter()
        D = pairwise_distances(X)
        extra["checksum"] = float(D.sum())
    elif name == "dist-dask":
        from distributed import Client, LocalCluster

        from taskspace.distributed import distributed_distances

        shutil.rmtree(Path(store) / "distances" / "bhattacharyya", ignore_errors=True)
        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            t0 = time.perf_counter()
            # Fill the cache tile by tile; the client never holds the M×M matrix.
            distributed_distances(store, client=client, progress=False, return_matrix=False)
            elapsed = time.perf_counter() - t0
            workers = client.run(peak_mb)
        extra["checksum"] = streamed_sum(store)
        extra["worker_peak_mb"] = max(workers.values())
        return {"time": elapsed, "peak_mb": peak_mb(), **extra}
    elif name == "inpca-mem":
        from taskspace.geometry import InPCA

        arr = Store.open(store).cached_distances()
        D = arr[:]
        t0 = time.perf_counter()
        model = InPCA(n_components=3, metric="precomputed", solver="partial", random_state=0).fit(D)
        extra["eigenvalues"] = model.eigenvalues_.tolist()
    elif name == "landmarks":
        from taskspace.geometry import InPCA, LandmarkInPCA
        from taskspace.geometry.landmarks import landmark_error

        arr = Store.open(store).cached_distances()
        D = arr[:]
        _, table = Store.open(store).collection()
        # Errors are measured on 2,000 random models (the full M×M reconstruction is M² floats).
        sub = np.sort(np.random.default_rng(1).choice(len(D), min(2000, len(D)), replace=False))
        D_sub = D[np.ix_(sub, sub)]
        full = InPCA(n_components=3, metric="precomputed", solver="partial", random_state=0).fit(D)
        extra["full_error"] = landmark_error(D_sub, full.embedding_[sub], full.signature_)
        for rule in ("farthest", "stratified"):
            for n_landmarks in (250, 1000):
                t0 = time.perf_counter()
                res = LandmarkInPCA(
                    n_components=3,
                    n_landmarks=n_landmarks,
                    rule=rule,
                    metric="precomputed",
                    random_state=0,
                ).fit(D, meta=table)
                extra[f"{rule}-{n_landmarks}"] = {
                    "time": time.perf_counter() - t0,
                    "error": landmark_error(D_sub, res.embedding_[sub], res.signature_),
                }
    elif name == "inpca-ooc":
        from taskspace.geometry import InPCA

        arr = Store.open(store).cached_distances()
        model = InPCA(
            n_components=3, metric="precomputed", solver="out-of-core", random_state=0
        ).fit(arr)
        extra["eigenvalues"] = model.eigenvalues_.tolist()
        extra["passes"] = model.n_passes_
    else:
        raise ValueError(name)
    return {"time": time.perf_counter() - t0, "peak_mb": peak_mb(), **extra}


def streamed_sum(store: str) -> float:
    """Sum of the cached matrix, read 1,000 rows at a time (after timing)."""
    from taskspace.store import Store

    arr = Store.open(store).cached_distances()
    return float(sum(arr[r : r + 1000].sum() for r in range(0, arr.shape[0], 1000)))


def child(name: str, store: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--case", name, "--store", str(store)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="*")
    ap.add_argument("--case")
    ap.add_argument("--store")
    ap.add_argument("--tmp", default=None, help="Directory for the benchmark stores.")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(case(args.case, args.store)))
        return
    sizes = args.sizes or ([1000, 2000] if args.quick else [1000, 2000, 5000, 10000, 20000])
    rows = []
    for m in sizes:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            store = Path(tmp) / "s"
            build_store(store, m)
            r = {"M": m}
            for name in ("dist-1proc", "dist-dask", "inpca-mem", "inpca-ooc", "landmarks"):
                r[name] = child(name, store)
            diff = abs(r["dist-1proc"]["checksum"] - r["dist-dask"]["checksum"])
            r["dist_agree"] = diff <= 1e-9 * abs(r["dist-1proc"]["checksum"])
            ev_m, ev_o = (np.array(r[k]["eigenvalues"]) for k in ("inpca-mem", "inpca-ooc"))
            r["eig_rel"] = float(np.max(np.abs(ev_m - ev_o)) / np.abs(ev_m[0]))
            rows.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    print(
        "| M | distances 1 proc (s) | peak MB | distances Dask 2×1 (s) | client / worker peak MB "
        "| InPCA in-memory (s) | peak MB | InPCA out-of-core (s) | peak MB | passes | "
        "checks |"
    )
    print("|---" * 11 + "|")
    for r in rows:
        a, b, c, d = (r[k] for k in ("dist-1proc", "dist-dask", "inpca-mem", "inpca-ooc"))
        ok = f"D equal: {r['dist_agree']}, λ rel diff {r['eig_rel']:.1e}"
        print(
            f"| {r['M']} | {a['time']:.2f} | {a['peak_mb']:.0f} | {b['time']:.2f} | "
            f"{b['peak_mb']:.0f} / {b['worker_peak_mb']:.0f} | {c['time']:.2f} | "
            f"{c['peak_mb']:.0f} | {d['time']:.2f} | {d['peak_mb']:.0f} | {d['passes']} | "
            f"{ok} |"
        )
    print(
        "\n| M | full fit error | "
        + " | ".join(
            f"{rule} L={n} (s / error)" for rule in ("farthest", "stratified") for n in (250, 1000)
        )
        + " |"
    )
    print("|---" * 6 + "|")
    for r in rows:
        lm = r["landmarks"]
        cells = [
            f"{lm[f'{rule}-{n}']['time']:.2f} / {lm[f'{rule}-{n}']['error']:.4f}"
            for rule in ("farthest", "stratified")
            for n in (250, 1000)
        ]
        print(f"| {r['M']} | {lm['full_error']:.4f} | " + " | ".join(cells) + " |")
    ms = np.array([r["M"] for r in rows], dtype=float)
    for key in ("dist-1proc", "dist-dask"):
        t = np.array([r[key]["time"] for r in rows])
        A = np.stack([ms * ms, np.ones_like(ms)], axis=1)
        (a, b), *_ = np.linalg.lstsq(A, t, rcond=None)
        per = a * 2 / (N * C)  # M²/2 pairs, N·C terms each
        print(
            f"{key}: t ≈ {a:.3e}·M² + {b:.2f} s; {per * 1e9:.3f} ns per pair·sample·class "
            f"({a * 2 / N * 1e9:.2f} ns per pair·sample)"
        )


if __name__ == "__main__":
    main()
