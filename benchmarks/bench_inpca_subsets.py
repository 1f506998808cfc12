"""The explained-stress intervals of finding 1 (issue 25): batched Lanczos on masked subsets of
the distance matrix against one dense copy and ARPACK per subset, side by side in one run.

Usage::

    .venv/bin/python benchmarks/bench_inpca_subsets.py STORE [--n-boot 200]

STORE is a store with its distances cached (``taskspace distances STORE``), for example the
reference study's. The subsets are exactly those `low_dimension` draws (the whole store and each
method with enough models, ``n_boot`` random 80% subsets of the runs of each, same seed). Both
paths get the same validated, symmetrised matrix; the "per subset" path is the one before this
change (copy and centre the submatrix, ``eigsh`` without vectors from 120 points, ``eigvalsh``
below, one BLAS thread under 1000 points); the batched path is `subset_explained_stress`. The
largest difference of any explained stress is printed with the ratio and the CPU model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model
from taskspace.geometry._eigen import explained_stress
from taskspace.geometry.inpca_subsets import (
    SINGLE_THREAD_BELOW,
    centred_submatrix,
    subset_explained_stress,
    top_eigenvalues,
)
from taskspace.store import Store
from taskspace.study.analyses._common import run_table
from taskspace.study.analyses.low_dimension import BOOT_SEED, _run_subsets


def low_dimension_subsets(store, n_boot: int, k: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(D, the subsets low_dimension fits) for ``store``."""
    runs = run_table(store)
    records = store.runs()
    records = records[records["run_id"].isin(set(runs["run_id"]))].reset_index(drop=True)
    D = np.asarray(store.distance_matrix(records["model_id"]))
    groups = [(np.arange(len(records)), runs, k)]
    for method in records["method"].unique():
        rows = np.flatnonzero((records["method"] == method).to_numpy())
        if rows.size < len(records) and rows.size >= 5:
            groups.append((rows, runs[runs["method"] == method], 3))
    subsets = []
    for rows, group_runs, axes in groups:
        picks, _ = _run_subsets(
            records.iloc[rows].reset_index(drop=True), group_runs, axes, n_boot, BOOT_SEED
        )
        subsets += [rows] + [rows[p] for p in picks]
    return D, subsets


def per_subset(D: np.ndarray, subsets, k: int) -> np.ndarray:
    """The path before batched Lanczos: one dense copy and one eigensolver per subset."""
    S = 0.5 * (D + D.T)
    out = np.full((len(subsets), k), np.nan)
    small = max(rows.size for rows in subsets) < SINGLE_THREAD_BELOW
    with threadpool_limits(limits=1 if small else None, user_api="blas"):
        for i, rows in enumerate(subsets):
            kk = min(k, rows.size)
            W, frobenius_sq = centred_submatrix(S, rows)
            out[i, :kk] = explained_stress(top_eigenvalues(W, kk, 0), frobenius_sq, rows.size)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args(argv)
    D, subsets = low_dimension_subsets(Store.open(args.store), args.n_boot, args.k)
    sizes = np.array([rows.size for rows in subsets])
    print(
        f"CPU: {cpu_model(with_isa=True)}; {len(D)} models, {len(subsets)} subsets of "
        f"{sizes.min()}–{sizes.max()} points, k = {args.k}\n"
    )
    subset_explained_stress(D[:200, :200], [np.arange(150)], 3)  # warm-up
    t0 = time.perf_counter()
    before = per_subset(D, subsets, args.k)
    t1 = time.perf_counter()
    after = subset_explained_stress(D, subsets, args.k)
    t2 = time.perf_counter()
    diff = np.nanmax(np.abs(after - before))
    print("| path | seconds | ratio |")
    print("|---|---:|---:|")
    print(f"| one copy + ARPACK per subset | {t1 - t0:.2f} | 1.00× |")
    ratio = (t1 - t0) / (t2 - t1)
    print(f"| batched Lanczos (`subset_explained_stress`) | {t2 - t1:.2f} | {ratio:.2f}× |")
    print(f"\nlargest |Δ explained stress| between the paths: {diff:.1e}")


if __name__ == "__main__":
    main()
