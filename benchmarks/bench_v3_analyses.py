"""Findings 2 and 3 on a store of the reference study v3's shape, simulated (issue 30).

    python benchmarks/bench_v3_analyses.py --root DIR [--n-boot 200] [--n-perm 9999] [--keep]

Writes through the real ``Store`` API the 45 two-class and 30 three-class Fashion-MNIST tasks of
``studies/fashion-mnist.toml`` (`taskspace.study.task_sets`), 3 seeds each, 12 log-spaced records,
N = 2,000 probe samples, C = 10, with the shipped WordNet hierarchy, from trajectories that move
like real ones: the softmax of ``β_k · (4·1[c = y_n] · w_c + z_{run})``, β growing from 0
(uniform) to 1, where ``w_c`` is 1 on the task's classes and a task-dependent share below 1 on the
others (transfer). Then times `progress_on_other_tasks` over the 75 tasks and `tree` over the 45
two-class tasks, each on a fresh ``Store.open`` (nothing cached), and prints the wall time of each
with its progress reports.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

N, SEEDS = 2000, 3
STEPS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 400, 600]


def tasks() -> dict[str, tuple[int, ...]]:
    from taskspace.data.hierarchy import ClassHierarchy
    from taskspace.study.task_sets import all_tasks, evenly_spaced_diversity, task_name

    tree = ClassHierarchy.for_dataset("fashion-mnist")
    chosen = [(t, "pair") for t in all_tasks(tree, 2)]
    chosen += [(t, "tri") for t in evenly_spaced_diversity(tree, 3, 30)]
    return {task_name(tree, t, prefix): t for t, prefix in chosen}


def write_store(path: Path):
    from taskspace import Store
    from taskspace.data.hierarchy import ClassHierarchy

    tree = ClassHierarchy.for_dataset("fashion-mnist")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=N)
    store = Store.create(path, labels, list(tree.class_names), hierarchy=tree.to_dict())
    onehot = 4.0 * np.eye(10)[labels]
    beta = (np.log1p(STEPS) / np.log1p(STEPS[-1]))[:, None, None]
    for name, classes in tasks().items():
        share = rng.uniform(0.2, 0.6)
        w = np.full(10, share)
        w[list(classes)] = 1.0
        for seed in range(SEEDS):
            z = rng.standard_normal((N, 10))
            logits = beta * (onehot * w + z)
            P = np.exp(logits - logits.max(-1, keepdims=True))
            P /= P.sum(-1, keepdims=True)
            run = store.add_run(
                task=name,
                classes=[tree.class_names[c] for c in classes],
                method="supervised",
                seed=seed,
            )
            store.append(run, P.astype(np.float32), STEPS)
    return store


def timed(label, fn):
    reports = {}

    def progress(what, done, total):
        reports[what] = f"{done}/{total}"

    start = time.perf_counter()
    result = fn(progress)
    seconds = time.perf_counter() - start
    print(f"{label}: {seconds:.1f} s; reports {reports}")
    print(f"  {result.finding.headline}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--n-perm", type=int, default=9999)
    parser.add_argument("--keep", action="store_true", help="reuse and keep the store")
    args = parser.parse_args()
    from taskspace import Store
    from taskspace.study.analyses import progress_on_other_tasks, tree

    path = args.root / "v3-shape"
    if not (args.keep and path.exists()):
        shutil.rmtree(path, ignore_errors=True)
        start = time.perf_counter()
        write_store(path)
        print(f"store written in {time.perf_counter() - start:.1f} s")
    names = list(tasks())
    pairs = [t for t in names if t.startswith("pair_")]
    timed(
        f"progress_on_other_tasks, {len(names)} tasks",
        lambda p: progress_on_other_tasks(
            Store.open(path), n_boot=args.n_boot, n_perm=args.n_perm, tasks=names, progress=p
        ),
    )
    timed(
        f"tree, {len(pairs)} tasks",
        lambda p: tree(Store.open(path), n_perm=args.n_perm, tasks=pairs, progress=p),
    )
    if not args.keep:
        shutil.rmtree(path)


if __name__ == "__main__":
    main()
