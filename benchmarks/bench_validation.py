"""Validation of a (T, N, C) probability stack: fused Numba pass vs three NumPy reductions.

python benchmarks/bench_validation.py [--quick]
"""

import argparse
import time

import numpy as np

from taskspace.geometry.validation import ROW_SUM_TOLERANCE, check_rows


def straightforward(P):
    """Three NumPy passes, as one would write it."""
    if not np.isfinite(P).all():
        raise ValueError("non-finite")
    if (P < 0).any():
        raise ValueError("negative")
    if (np.abs(P.sum(-1) - 1) > ROW_SUM_TOLERANCE).any():
        raise ValueError("row sum")


def best_of(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    shape = (4, 1000, 100) if args.quick else (20, 5000, 1000)
    P = np.random.default_rng(0).random(shape)
    P /= P.sum(-1, keepdims=True)
    check_rows("P", P[:1])  # compile
    ours = best_of(lambda: check_rows("P", P))
    plain = best_of(lambda: straightforward(P))
    print(f"| validation {shape} float64 | {plain:.3f} s | {ours:.3f} s | {plain / ours:.1f}× |")


if __name__ == "__main__":
    main()
