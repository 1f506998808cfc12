"""Pairwise Bhattacharyya distances: taskspace against its peers and the machine's dgemm rate.

Run side by side in one process on the same float32 input (issue 12), per case:

* **straightforward**: per chunk of 8 samples, a batched NumPy float32 matmul of square roots,
  clip, log, sum; no symmetry (issue 2's baseline).
* **taskspace** ``pairwise_distances`` in float64 (the default contract, 1e-9 of the direct
  formula) and with ``precision="float32"``.
* **PoST's algorithm** (``compute_inpca_h5`` of grasp-lyrl/picture_of_space_of_tasks, written here
  from its description): NumPy float32, square roots transposed to (N, M, C), batched matmul over
  1000 samples at a time, clip, log, sum.
* **LDD's algorithm** (``utils/distance.dbhat`` of grasp-lyrl/low-dimensional-deepnets, written
  here from its description): torch float32, ``bmm`` of the square roots over chunks of samples,
  −log, sum, no symmetry; CPU, as many threads as cores.
* **dgemm**: NumPy float64 matmul of 2000 × 2000 matrices (BLAS, all threads), measured in the same
  run; the "limit" of a case is its M²·N·C/2 multiply-adds at that rate, and each implementation's
  fraction is ``limit / its time``.

Timing is round-robin: each round runs every implementation and dgemm once, in turn, and each
gets the best of its rounds, so that a drift of the machine's speed moves them all together.

Usage::

    python benchmarks/bench_pairwise.py            # the issue's sizes, 3 rounds
    python benchmarks/bench_pairwise.py --quick    # small sizes, to check that it works
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import taskspace as ts
from _machine import cpu_model
from taskspace.geometry import _numba_target, _pairwise_blas

EPS = 1e-9
# (name, M, N, C)
CASES = [("C=10", 1000, 1000, 10), ("C=1000", 150, 2000, 1000)]
QUICK = [("C=10", 200, 200, 10), ("C=1000", 40, 100, 1000)]


def straightforward(X, eps=EPS, chunk=8):
    """d_B the plain way: per chunk of samples, batched float32 matmul of square roots."""
    M, N, _ = X.shape
    D = np.zeros((M, M))
    for n0 in range(0, N, chunk):
        R = np.sqrt(np.asarray(X[:, n0 : n0 + chunk], dtype=np.float32)).transpose(1, 0, 2)
        G = np.matmul(R, R.transpose(0, 2, 1))  # (chunk, M, M) Bhattacharyya coefficients
        np.clip(G, eps, 1.0, out=G)
        np.log(G, out=G)
        D -= G.sum(axis=0)
    return D / N


def post_algorithm(X, eps=EPS, batch=1000):
    """PoST's: float32 square roots as (N, M, C); per 1000 samples a batched matmul, clip, log."""
    M, N, _ = X.shape
    R = np.sqrt(np.asarray(X, dtype=np.float32)).transpose(1, 0, 2)  # (N, M, C) view
    D = np.zeros((M, M), dtype=np.float32)
    G = np.empty((min(batch, N), M, M), dtype=np.float32)
    for n0 in range(0, N, batch):
        A = np.ascontiguousarray(R[n0 : n0 + batch])
        g = G[: len(A)]
        np.matmul(A, A.transpose(0, 2, 1), out=g)
        np.clip(g, eps, 1.0, out=g)
        np.log(g, out=g)
        D -= g.sum(axis=0)
    return D.astype(np.float64) / N


def ldd_algorithm(X, torch, budget=2**26):
    """LDD's: torch float32 ``bmm`` of square roots per chunk of samples, −log, sum (full M×M)."""
    M, N, _ = X.shape
    T = torch.from_numpy(np.asarray(X, dtype=np.float32))
    chunk = max(1, budget // (M * M))  # (chunk, M, M) float32 coefficients: ≤ 256 MiB
    D = torch.zeros((M, M), dtype=torch.float32)
    for n0 in range(0, N, chunk):
        R = torch.sqrt(T[:, n0 : n0 + chunk]).permute(1, 0, 2)  # (chunk, M, C)
        W = torch.bmm(R, R.transpose(1, 2))
        D += (-torch.log(W.clamp_(min=EPS))).sum(dim=0)
    return (D / N).double().numpy()


def direct_float64(X, eps=EPS):
    """The SPEC §3 formula in float64 on renormalised rows (for a subset of models)."""
    X = np.asarray(X, dtype=np.float64)
    X = X / X.sum(axis=-1, keepdims=True)
    S = np.sqrt(X)
    bc = np.einsum("anc,bnc->abn", S, S)
    D = -np.mean(np.log(np.clip(bc, eps, 1.0)), axis=-1)
    np.fill_diagonal(D, 0.0)
    return D


def models(M, N, C, seed=0):
    """float32 softmax predictions of random Gaussian logits, built model by model."""
    rng = np.random.default_rng(seed)
    X = np.empty((M, N, C), dtype=np.float32)
    for m in range(M):
        logits = 2.0 * rng.standard_normal((N, C))
        p = np.exp(logits - logits.max(axis=-1, keepdims=True))
        X[m] = p / p.sum(axis=-1, keepdims=True)
    return X


def round_robin(functions, rounds, pause=0.5):
    """Best time and last result of each function, timed in turn, one call each per round.

    This machine's speed drifts by 15-20% over minutes; interleaving puts every implementation
    (and the dgemm rate) under the same conditions, so the ratios between them hold even when
    the absolute times move. Before each call, ``pause`` seconds let the spinning threads of
    BLAS, torch and our pool go idle, so that no call starts with another's threads still busy.
    """
    best = dict.fromkeys(functions, float("inf"))
    results = {}
    for _ in range(rounds):
        for label, fn in functions.items():
            time.sleep(pause)
            t0 = time.perf_counter()
            results[label] = fn()
            best[label] = min(best[label], time.perf_counter() - t0)
    return {label: (best[label], results[label]) for label in functions}


def dgemm_product():
    """A 2000 × 2000 float64 matmul (BLAS, all threads) and its multiply-adds."""
    A = np.random.default_rng(1).random((2000, 2000))
    A @ A
    return (lambda: A @ A), 2000**3


def with_gram_kernel(kernel, function, *args):
    """``function(*args)`` with the Gram kernel forced to ``kernel`` (``"numba"`` or ``"blas"``)."""
    chosen = _pairwise_blas.gram_kernel
    _pairwise_blas.gram_kernel = lambda: kernel
    try:
        return function(*args)
    finally:
        _pairwise_blas.gram_kernel = chosen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it works")
    parser.add_argument(
        "--gram",
        action="store_true",
        help="also time float64 with the other Gram kernel (BLAS where the "
        "register-count rule picks Numba's, and the reverse)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of timing; each round runs every implementation and dgemm "
        "once, in turn (best of the rounds)",
    )
    args = parser.parse_args(argv)
    import torch

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    cases = QUICK if args.quick else CASES
    print(f"# pairwise d_B benchmark ({'quick' if args.quick else 'full'} sizes)")
    print(
        f"machine: {cpu_model(with_isa=True)}, {threads} cores; taskspace {ts.__version__}, "
        f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"Numba 512-bit vectors: {_numba_target.STATUS}; no GPU used\n"
    )
    rows = []
    for name, M, N, C in cases:
        X = models(M, N, C)
        small = X[: min(M, 50), : min(N, 64)]
        for precision in ("float64", "float32"):  # compile (or load from cache) first
            ts.pairwise_distances(small, precision=precision)
        straightforward(small), post_algorithm(small), ldd_algorithm(small, torch)
        product, gemm_fma = dgemm_product()
        contenders = {}
        if args.gram:
            other = "blas" if _pairwise_blas.gram_kernel() == "numba" else "numba"
            contenders[f"taskspace float64, {other} Gram"] = lambda X=X, other=other: (
                with_gram_kernel(other, ts.pairwise_distances, X)
            )
            with_gram_kernel(other, ts.pairwise_distances, small)
        results = round_robin(
            {
                **contenders,
                "taskspace float64": lambda X=X: ts.pairwise_distances(X),
                "taskspace float32": lambda X=X: ts.pairwise_distances(X, precision="float32"),
                "straightforward": lambda X=X: straightforward(X),
                "PoST's algorithm": lambda X=X: post_algorithm(X),
                "LDD's algorithm": lambda X=X: ldd_algorithm(X, torch),
                "dgemm": product,
            },
            args.rounds,
        )
        gemm = gemm_fma / results.pop("dgemm")[0] / 1e9
        D64 = results["taskspace float64"][1]
        subset = min(M, 40)
        exact = direct_float64(X[:subset])
        limit = M * M * N * C / 2 / gemm / 1e9
        print(
            f"## {name}: M={M}, N={N}, C={C}; dgemm {gemm:.1f} GFMA/s in this run; "
            f"limit (M²NC/2 at that rate) {limit:.3f} s"
        )
        print(
            "| implementation | time (s) | fraction of the dgemm limit | taskspace float64 is "
            "| max abs diff vs float64 formula (40 models) |"
        )
        print("|---|---|---|---|---|")
        t64 = results["taskspace float64"][0]
        for label, (seconds, D) in results.items():
            D = np.array(D, dtype=np.float64)
            np.fill_diagonal(D, 0.0)  # float32 peers leave ~1e-8 on the diagonal
            err = np.abs(D[:subset, :subset] - exact).max()
            if label == "taskspace float64":
                versus = "—"
            else:
                ratio = seconds / t64
                versus = f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"
            print(
                f"| {label} | {seconds:.3f} | {100 * limit / seconds:.0f}% | {versus} | {err:.1e} |"
            )
        t32 = results["taskspace float32"][0]
        ldd = results["LDD's algorithm"][0]
        post = results["PoST's algorithm"][0]
        rows.append((name, t64, t32, ldd, post, limit))
        print(
            f"\ntaskspace float32 vs float64: max abs diff "
            f"{np.abs(results['taskspace float32'][1] - D64).max():.1e}; "
            f"vs LDD: float64 {ldd / t64:.2f}×, float32 {ldd / t32:.2f}× faster; "
            f"vs PoST: float64 {post / t64:.2f}×, float32 {post / t32:.2f}× faster\n"
        )
    print(
        "| case | float64: fraction of dgemm | float64 vs LDD | float32 vs LDD | float32: "
        "fraction of dgemm |"
    )
    print("|---|---|---|---|---|")
    for name, t64, t32, ldd, _, limit in rows:
        print(
            f"| {name} | {100 * limit / t64:.0f}% | {ldd / t64:.2f}× | {ldd / t32:.2f}× "
            f"| {100 * limit / t32:.0f}% |"
        )


if __name__ == "__main__":
    main()
