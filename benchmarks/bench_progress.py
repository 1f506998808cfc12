"""Progress of T = 20 models, N = 5,000 samples, C = 1000 classes (issue 2): ours vs a bounded
scalar minimisation that rebuilds the geodesic point at every evaluation.

Usage::

    flock /tmp/taskspace-bench.lock .venv/bin/python benchmarks/bench_progress.py  # full size
    .venv/bin/python benchmarks/bench_progress.py --quick  # T=5, N=500, C=100

The models are a synthetic training run stored as float32 (400 MB at full size): ``P_t =
softmax(β_t · (3·onehot(label) + noise))`` with β_t growing geometrically, so they move from near
uniform towards the truth, off the reference geodesic.

The straightforward implementation (written here, float64): per model, ``scipy.optimize.
minimize_scalar(method="bounded", xatol=1e-6)`` (the accuracy SPEC §5 asks for) of ``λ ↦ d_B(P^λ,
P)``, where every evaluation rebuilds the whole geodesic point ``P^λ`` (N×C) from SPEC §4 and
computes ``d_B`` from it. Ours: ``taskspace.progress`` on the float32 stack, validation included (it
is part of the call).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import minimize_scalar

import taskspace as ts
from taskspace.geometry.validation import check_rows

EPS = 1e-9


def synthetic_run(n_models: int, n_samples: int, n_classes: int, seed: int = 0):
    """(T, N, C) float32 models of one run and the (N,) labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_samples)
    truth = np.eye(n_classes, dtype=np.float32)[labels]
    direction = 3.0 * truth + rng.normal(0.0, 1.0, (n_samples, n_classes)).astype(np.float32)
    models = np.empty((n_models, n_samples, n_classes), dtype=np.float32)
    for t, beta in enumerate(np.geomspace(0.05, 4.0, n_models)):
        logits = beta * direction + rng.normal(0.0, 0.1, direction.shape).astype(np.float32)
        logits -= logits.max(axis=-1, keepdims=True)
        np.exp(logits, out=logits)
        models[t] = logits / logits.sum(axis=-1, keepdims=True)
    return models, labels


def straightforward_progress(P: np.ndarray, labels: np.ndarray, eps: float = EPS) -> float:
    """λ of one model (N, C): bounded minimisation of d_B(P^λ, P), P^λ rebuilt every evaluation."""
    P = np.asarray(P, dtype=np.float64)
    n_samples, n_classes = P.shape
    root_start = np.full((n_samples, n_classes), 1.0 / np.sqrt(n_classes))
    root_truth = np.eye(n_classes)[labels]
    theta = np.arccos(np.clip(np.sum(root_start * root_truth, axis=-1), 0.0, 1.0))[:, None]

    def objective(lam: float) -> float:
        psi = np.sin((1 - lam) * theta) * root_start + np.sin(lam * theta) * root_truth
        psi /= np.sin(theta)
        P_lam = psi * psi
        P_lam /= P_lam.sum(axis=-1, keepdims=True)
        bc = np.sum(np.sqrt(P_lam * P), axis=-1)
        return float(-np.mean(np.log(np.maximum(bc, eps))))

    return minimize_scalar(
        objective, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-6}
    ).x


def best_of(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T=5, N=500, C=100")
    parser.add_argument("--repeat", type=int, default=3, help="timings of ours (best is kept)")
    args = parser.parse_args()
    n_models, n_samples, n_classes = (5, 500, 100) if args.quick else (20, 5000, 1000)

    t0 = time.perf_counter()
    models, labels = synthetic_run(n_models, n_samples, n_classes)
    print(
        f"built {models.shape} float32 models ({models.nbytes / 2**20:.0f} MiB) in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    ts.progress(models[:1, :8, :], labels[:8])  # compile / load the Numba kernels

    t_ours, ours = best_of(lambda: ts.progress(models, labels), args.repeat)
    t_check, _ = best_of(lambda: check_rows("models", models), args.repeat)
    t_ref, ref = best_of(lambda: np.array([straightforward_progress(P, labels) for P in models]), 1)
    diff = np.max(np.abs(ours - ref))

    print(f"λ (ours): {np.array2string(ours, precision=4, max_line_width=100)}")
    print(f"validation alone: {t_check:.3f} s of ours' {t_ours:.3f} s")
    print("\n| case | straightforward (s) | ours (s) | ratio | max abs Δλ |")
    print("|---|---|---|---|---|")
    print(
        f"| progress, T={n_models}, N={n_samples}, C={n_classes} (float32) | {t_ref:.2f} | "
        f"{t_ours:.3f} | {t_ref / t_ours:.0f}× | {diff:.1e} |"
    )
    if diff > 1e-5:
        raise SystemExit(f"accuracy check failed: max |Δλ| = {diff:.2e} > 1e-5")


if __name__ == "__main__":
    main()
