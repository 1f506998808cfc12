"""Wall time of training a study serially vs on a local Dask cluster (issue 16).

Usage::

    flock -x /tmp/cpu.lock .venv/bin/python benchmarks/bench_study_workers.py \\
        src/taskspace/study/builtin/digits-demo.toml [--quick] [--modes serial workers2 workers1]

Modes (each in a fresh process and a fresh output folder, training only — no analyses):

- ``serial``: `taskspace.study.run_study`, one process, torch's default threads (one per core);
- ``workersN``: `run_study_distributed` on a ``LocalCluster`` of N single-threaded worker
  processes, each run's torch with ``cores // N`` threads.

Per-run speed is a run's steps over the ``wall_time`` of its last record (training plus
recording, without the process's start-up); the table gives the median over runs of each method,
and the total of the runs' own times (the core time the runs took, when each holds its threads).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model

CHILD = """
import json, sys, time
from taskspace.study import load_study, run_study
from taskspace.study.distributed_runner import run_study_distributed
study = load_study(sys.argv[1], quick=sys.argv[2] == "1")
mode, out = sys.argv[3], sys.argv[4]
t0 = time.perf_counter()
if mode == "serial":
    run_study(study, out, progress=False)
else:
    run_study_distributed(study, out, n_workers=int(mode.removeprefix("workers")), progress=False)
print(json.dumps({"wall": time.perf_counter() - t0}))
"""


def run_speeds(store_path: Path) -> dict[str, list[float]]:
    from taskspace.store import Store

    store = Store.open(store_path)
    out: dict[str, list[float]] = {}
    for rid in store.run_ids:
        traj = store.trajectory(rid)
        wall = float(traj.metrics["wall_time"].iloc[-1])
        out.setdefault(traj.info["method"], []).append((int(traj.steps[-1]), wall))
    return out


def same_records(a_path: Path, b_path: Path) -> str:
    """Whether two stores hold the same runs with bit-identical predictions (else the largest
    difference)."""
    import numpy as np

    from taskspace.store import Store

    a, b = Store.open(a_path), Store.open(b_path)
    if sorted(a.run_ids) != sorted(b.run_ids):
        return "different run ids"
    worst = 0.0
    for rid in a.run_ids:
        pa, pb = a.trajectory(rid).predictions, b.trajectory(rid).predictions
        if pa.shape != pb.shape:
            return f"run {rid}: {pa.shape} records against {pb.shape}"
        worst = max(worst, float(np.max(np.abs(pa.astype(np.float64) - pb))))
    return "predictions bit-identical" if worst == 0 else f"max |ΔP| = {worst:.2e}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--modes", nargs="+", default=["serial", "workers2", "workers1"])
    args = ap.parse_args()
    import os

    print(
        f"CPU: {cpu_model()} ({len(os.sched_getaffinity(0))} cores available); "
        f"study {args.study}{' --quick' if args.quick else ''}"
    )
    rows = []
    root = Path(tempfile.mkdtemp(prefix="bench-study-workers-"))
    for mode in args.modes:
        tmp = root / mode
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-c", CHILD, args.study, "1" if args.quick else "0", mode, str(tmp)],
            capture_output=True,
            text=True,
            check=False,
        )
        total = time.perf_counter() - t0
        if res.returncode != 0:
            sys.exit(f"{mode} failed:\n{res.stderr[-3000:]}")
        inner = json.loads(res.stdout.strip().splitlines()[-1])["wall"]
        speeds = run_speeds(tmp / "store")
        n_runs = sum(len(v) for v in speeds.values())
        run_seconds = sum(w for v in speeds.values() for _, w in v)
        per_method = {m: statistics.median(s / w for s, w in v) for m, v in speeds.items()}
        rows.append((mode, total, inner, n_runs, run_seconds, per_method))
        print(
            f"{mode}: process {total:.1f} s, run_study {inner:.1f} s, {n_runs} runs, "
            f"sum of run times {run_seconds:.1f} s, median steps/s "
            + ", ".join(f"{m} {v:.0f}" for m, v in per_method.items()),
            flush=True,
        )
    for mode in args.modes[1:]:
        print(
            f"{mode} vs {args.modes[0]}: "
            + same_records(root / args.modes[0] / "store", root / mode / "store")
        )
    shutil.rmtree(root)
    methods = list(rows[0][5])
    print(
        "\n| mode | wall (s), process | training (s) | runs | Σ run time (s) | "
        + " | ".join(f"{m} steps/s" for m in methods)
        + " |"
    )
    print("|---" * (5 + len(methods)) + "|")
    for mode, total, inner, n_runs, run_seconds, per_method in rows:
        print(
            f"| {mode} | {total:.1f} | {inner:.1f} | {n_runs} | {run_seconds:.1f} | "
            + " | ".join(f"{per_method.get(m, float('nan')):.0f}" for m in methods)
            + " |"
        )


if __name__ == "__main__":
    main()
