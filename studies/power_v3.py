"""Power analysis of the reference study v3 (issue 30), written before its run.

For findings 2, 3 and 5 of docs/results.md: the number of tasks or runs at which the
pre-registered rule decides with >= 80% power at alpha = 0.05, simulated with the analyses' own
tests (taskspace.study.power) and the spread measured by the v2 run (2026-12-02):

* finding 2: stratified Spearman rho = 0.302 (v2's estimate) over tasks of two and three classes;
* finding 3: Mantel r = 0.229 (v2's estimate) over the ten v2 two-class tasks, noise calibrated
  there, power over all 45 two-class tasks of Fashion-MNIST (WordNet distances from the shipped
  hierarchy);
* finding 5: ratio end/middle 1.47 with interval 0.14-2.81 over 6 runs per method (v2), and the
  smallest ratio the paper's "meet at the end" would be interesting at, 0.5.

Usage::

    python studies/power_v3.py            # the table in docs/results.md ("Design v3")
    python studies/power_v3.py --quick    # fewer simulations, to check that it works
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from taskspace.data.hierarchy import ClassHierarchy
from taskspace.study import power

#: The ten two-class tasks of v2 (studies/fashion-mnist.toml, finding 3).
V2_PAIRS = [
    ("T-shirt/top", "Shirt"),
    ("Trouser", "Shirt"),
    ("Sandal", "Sneaker"),
    ("Pullover", "Trouser"),
    ("Sneaker", "Ankle boot"),
    ("Pullover", "Coat"),
    ("T-shirt/top", "Dress"),
    ("Coat", "Ankle boot"),
    ("Sandal", "Bag"),
    ("Dress", "Bag"),
]


def pair_task_distances(pairs):
    """WordNet task distances (mean path distance between the tasks' classes), (n, n)."""
    tree = ClassHierarchy.for_dataset("fashion-mnist")
    C = tree.class_distances("path")
    idx = [[tree.class_index(c) for c in pair] for pair in pairs]
    n = len(pairs)
    W = np.zeros((n, n))
    for i, j in itertools.combinations(range(n), 2):
        W[i, j] = W[j, i] = C[np.ix_(idx[i], idx[j])].mean()
    return W, tree


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sims, perms = (60, 199) if args.quick else (400, 999)

    print("## Finding 2: stratified Spearman rho, one-sided permutation test, alpha 0.05")
    print("| two-class tasks | three-class tasks | power at rho = 0.302 | size at rho = 0 |")
    print("|---|---|---|---|")
    for sizes in [(10, 10), (45, 10), (45, 20), (45, 30), (45, 45), (45, 60)]:
        p = power.spearman_power(0.302, sizes, n_sims=sims, n_perm=perms)
        null = power.spearman_power(0.0, sizes, n_sims=sims, n_perm=perms, seed=1)
        print(
            f"| {sizes[0]} | {sizes[1]} | {p.power:.2f} ({p.low:.2f}-{p.high:.2f}) "
            f"| {null.power:.3f} |"
        )

    print("\n## Finding 3: Mantel test over two-class tasks, alpha 0.05")
    W10, tree = pair_task_distances(V2_PAIRS)
    names = tree.class_names
    all_pairs = list(itertools.combinations(names, 2))
    W45, _ = pair_task_distances(all_pairs)
    print(
        "| task effect share | sigma (r = 0.229 on v2's 10 tasks) | power, 10 tasks "
        "| power, all 45 |"
    )
    print("|---|---|---|---|")
    for share in (0.0, 0.5, 0.8):
        sigma = power.calibrate_mantel_noise(
            W10, 0.229, task_share=share, n_sims=100 if args.quick else 300
        )
        p10 = power.mantel_power(W10, sigma, task_share=share, n_sims=sims, n_perm=perms)
        p45 = power.mantel_power(W45, sigma, task_share=share, n_sims=sims, n_perm=perms)
        print(
            f"| {share} | {sigma:.2f} | {p10.power:.2f} ({p10.low:.2f}-{p10.high:.2f}) "
            f"| {p45.power:.2f} ({p45.low:.2f}-{p45.high:.2f}) |"
        )

    print("\n## Finding 5: the jackknife interval of ratio end/middle excludes 1")
    cv = power.run_spread_for_interval(1.47, (2.81 - 0.14) / 2, 6)
    print(f"per-run coefficient of variation from v2 (1.47, 0.14-2.81, 6 runs): {cv:.2f}")
    print("| runs per method | at ratio 1.47 (v2) | at ratio 0.5 |")
    print("|---|---|---|")
    for n in (6, 12, 24, 48, 72, 96, 120):
        a = power.ratio_power(1.47, cv, n, n_sims=sims * 5)
        b = power.ratio_power(0.5, cv, n, n_sims=sims * 5, seed=1)
        print(
            f"| {n} | {a.power:.2f} ({a.low:.2f}-{a.high:.2f}) "
            f"| {b.power:.2f} ({b.low:.2f}-{b.high:.2f}) |"
        )


if __name__ == "__main__":
    main()
