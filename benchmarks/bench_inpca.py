"""InPCA top-10 + explained stress, M = 8000 (issue 2): ours vs dense ``eigh`` of W.

Usage::

    flock /tmp/taskspace-bench.lock .venv/bin/python benchmarks/bench_inpca.py   # M = 8000
    .venv/bin/python benchmarks/bench_inpca.py --quick                            # M = 800
    flock /tmp/taskspace-bench.lock .venv/bin/python benchmarks/bench_inpca.py --crossover

``--crossover`` times the two solvers over M and k: the measurement behind ``solver="auto"``.
``--weighted`` times weighted against unweighted fits (issue 29: within 1.2×), side by side in one
run: alternately, best of ``repeat``, for the partial (``"auto"`` at this size) and out-of-core
solvers, with random weights in [0.5, 2] (uniform weights would take the unweighted path).

The distance matrix is a genuine pairwise ``d_B`` matrix of a synthetic collection shaped like
the paper's: ``runs`` training trajectories of ``steps`` models each, every run a path of softmax
models ``P(t) = softmax(β_t · (a·onehot(label) + noise_run))`` from the uniform model towards the
truth, on a small probe set (N = 20 samples, C = 10 classes) so that D is cheap to build. d_B is
computed with the direct formula ``−(1/N) log Π_n max(BC_n, eps)`` (one log per pair after
multiplying the N floored coefficients, which cannot underflow: eps^N = 1e-180), one matrix
product per sample.

The straightforward implementation (written here): double centring, ``scipy.linalg.eigh`` of the
whole W, sort by ``|λ|``, keep 10, explained stress from the full spectrum.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import linalg

from taskspace.geometry import InPCA
from taskspace.geometry._eigen import double_center, eigen_by_magnitude

N_SAMPLES, N_CLASSES, EPS = 20, 10, 1e-9


def synthetic_collection(n_models: int, seed: int = 0, steps: int = 100) -> np.ndarray:
    """(M, N, C) float64: ``M / steps`` trajectories from uniform towards the truth."""
    rng = np.random.default_rng(seed)
    runs = -(-n_models // steps)
    labels = rng.integers(0, N_CLASSES, N_SAMPLES)
    truth = np.eye(N_CLASSES)[labels]  # (N, C)
    directions = 3.0 * truth + rng.normal(0.0, 1.5, (runs, N_SAMPLES, N_CLASSES))
    beta = np.geomspace(0.01, 3.0, steps)
    logits = beta[None, :, None, None] * directions[:, None]  # (runs, steps, N, C)
    logits = logits + rng.normal(0.0, 0.05, logits.shape)  # SGD noise
    logits = logits.reshape(-1, N_SAMPLES, N_CLASSES)[:n_models]
    P = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return P / P.sum(axis=-1, keepdims=True)


def bhattacharyya_matrix(P: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Pairwise ``d_B`` (M, M) of a small-N collection: one BLAS product per sample."""
    m, n, _ = P.shape
    roots = np.sqrt(P)
    product = np.ones((m, m))
    for s in range(n):
        bc = roots[:, s, :] @ roots[:, s, :].T
        np.clip(bc, eps, 1.0, out=bc)
        product *= bc
    D = -np.log(product) / n
    D = 0.5 * (D + D.T)
    np.fill_diagonal(D, 0.0)
    return D


def straightforward_top(D: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense reference: eigenvalues/vectors of largest |λ| and explained stress, full spectrum."""
    W = -0.5 * (D - D.mean(axis=0)[None, :] - D.mean(axis=1)[:, None] + D.mean())
    values, vectors = linalg.eigh(W)
    order = np.argsort(-np.abs(values))
    values, vectors = values[order], vectors[:, order]
    total = np.sum(values**2)
    stress = 1.0 - np.sqrt(np.clip(1.0 - np.cumsum(values[:k] ** 2) / total, 0.0, None))
    return values[:k], vectors[:, :k], stress


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main_case(m: int, k: int, repeat: int) -> None:
    t0 = time.perf_counter()
    D = bhattacharyya_matrix(synthetic_collection(m))
    print(f"built D ({m}×{m}, d_B of a synthetic collection) in {time.perf_counter() - t0:.1f} s")

    InPCA(n_components=2, metric="precomputed").fit(D[:300, :300])  # compile the Numba kernels
    t_ref, (ref_values, ref_vectors, ref_stress) = best_of(lambda: straightforward_top(D, k), 1)
    t_ours, model = best_of(
        lambda: InPCA(n_components=k, metric="precomputed", random_state=0).fit(D), repeat
    )
    rel = np.max(np.abs(model.eigenvalues_ - ref_values) / np.abs(ref_values))
    stress_diff = np.max(np.abs(model.explained_stress_ - ref_stress))
    # Eigenvectors up to sign: |<v_ours, v_ref>| = 1.
    alignment = np.min(np.abs(np.sum(model.eigenvectors_ * ref_vectors, axis=0)))

    print(
        f"\nours: solver_={model.solver_!r}, signature {model.signature_.tolist()}, "
        f"explained stress (k={k}) {model.explained_stress_[-1]:.4f}"
    )
    print(
        "\n| case | straightforward (s) | ours (s) | ratio | max rel. Δλ | max Δ stress "
        "| min abs cos(v) |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| InPCA top-{k} + stress, M={m} | {t_ref:.2f} | {t_ours:.2f} | "
        f"{t_ref / t_ours:.1f}× | {rel:.1e} | {stress_diff:.1e} | {alignment:.12f} |"
    )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def weighted_case(m: int, k: int, repeat: int) -> None:
    """Weighted vs unweighted InPCA, timed alternately in one process (same load on both)."""
    import os

    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs")
    D = bhattacharyya_matrix(synthetic_collection(m))
    weights = np.random.default_rng(1).uniform(0.5, 2.0, m)
    InPCA(n_components=2, metric="precomputed", weights=weights[:300]).fit(D[:300, :300])
    print(
        "| solver | M | k | unweighted (s) | weighted (s) | weighted / unweighted "
        "| passes over D (unw. / w.) |"
    )
    print("|---|---|---|---|---|---|---|")

    def fit(solver, w):
        return InPCA(
            n_components=k, metric="precomputed", solver=solver, random_state=0, weights=w
        ).fit(D)

    for solver in ("partial", "out-of-core"):
        best = {"unweighted": np.inf, "weighted": np.inf}
        passes = {}
        for _ in range(repeat):
            for name, w in (("unweighted", None), ("weighted", weights)):
                t, model = best_of(lambda s=solver, w=w: fit(s, w), 1)
                best[name] = min(best[name], t)
                passes[name] = getattr(model, "n_passes_", "-")
        print(
            f"| {solver} | {m} | {k} | {best['unweighted']:.2f} | {best['weighted']:.2f} | "
            f"{best['weighted'] / best['unweighted']:.2f} | {passes['unweighted']} / "
            f"{passes['weighted']} |",
            flush=True,
        )


def crossover(ms: list[int], ks: list[int], repeat: int) -> None:
    """Time the two solvers of ``eigen_by_magnitude`` on W alone, for the "auto" rule."""
    print("| M | k | dense (s) | partial (s) | dense / partial |")
    print("|---|---|---|---|---|")
    for m in ms:
        W, *_ = double_center(bhattacharyya_matrix(synthetic_collection(m)))
        t_dense, _ = best_of(
            lambda W=W: eigen_by_magnitude(W.copy(), 1, "dense", np.random.RandomState(0)), repeat
        )
        for k in ks:
            if k >= m - 1:
                continue
            t_part, _ = best_of(
                lambda W=W, k=k: eigen_by_magnitude(W, k, "partial", np.random.RandomState(0)),
                repeat,
            )
            print(
                f"| {m} | {k} | {t_dense:.4f} | {t_part:.4f} | {t_dense / t_part:.2f} |", flush=True
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument(
        "--crossover",
        action="store_true",
        help="time dense vs partial over M and k (the rule behind solver='auto')",
    )
    parser.add_argument(
        "--weighted",
        action="store_true",
        help="weighted vs unweighted fits, side by side (issue 29)",
    )
    args = parser.parse_args()
    if args.weighted:
        weighted_case(800 if args.quick else 8000, 10, repeat=1 if args.quick else 3)
    elif args.crossover:
        ms = [50, 100, 200] if args.quick else [50, 100, 150, 200, 300, 400, 600, 1000, 2000]
        ks = [3, 10] if args.quick else [2, 3, 10, 30, 100]
        crossover(ms, ks, repeat=1 if args.quick else 3)
    else:
        main_case(800 if args.quick else 8000, 10, repeat=1 if args.quick else 3)


if __name__ == "__main__":
    main()
