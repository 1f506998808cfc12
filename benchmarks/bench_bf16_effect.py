"""What bf16 autocast on the CPU does to a study's speed and to its recorded predictions (issue 30).

Usage::

    .venv/bin/python benchmarks/bench_bf16_effect.py [--steps 400] [--out DIR]
    .venv/bin/python benchmarks/bench_bf16_effect.py --quick      # 20 steps, checks it works

The same small study (the reference study's data sizes: 10,000 training, 1,000 imprint and
2,000 probe images of Fashion-MNIST; the small CNN at width 16, channels-last) is trained twice
through `taskspace.study.run_study`, once in float32 and once with ``mixed_precision = "bf16"``
(autocast of the forward pass; recording stays float32): supervised learning on a two-class task,
a three-class task and all classes, and Prototypical Networks on all classes, seeds 0 and 1.

It prints, per run spec and task:

- seconds per step of each precision (the run's wall time at its last record over its steps,
  recording included), and their ratio;
- at every recorded step, d_B between the two precisions' models of one seed (what bf16 moves),
  beside d_B between the two seeds of one precision (what a different seed moves, the noise the
  findings' intervals already carry). bf16 is a perturbation smaller than the seed noise when the
  first is well below the second;
- the end models' probe accuracy in each precision.

The decision it informs is written in docs/decisions.md ("bf16 autocast on the CPU").
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import torch

from _machine import cpu_model
from taskspace.geometry import bhattacharyya
from taskspace.store import Store
from taskspace.study import load_study, run_study

TASKS = {
    "pair_tshirt_shirt": '["T-shirt/top", "Shirt"]',
    "tri_footwear": '["Sandal", "Sneaker", "Ankle boot"]',
    "all": '"all"',
}


def study_text(steps: int, precision: str, n_records: int) -> str:
    tasks = "\n".join(f"[tasks.{name}]\nclasses = {classes}" for name, classes in TASKS.items())
    common = f'steps = {steps}, network_options = {{ width = 16 }}, mixed_precision = "{precision}"'
    return textwrap.dedent(
        """\
        name = "bf16-effect"
        [data]
        dataset = "fashion-mnist"
        n_train = 10000
        n_imprint = 1000
        n_probe = 2000
        seed = 0
        """
    ) + textwrap.dedent(
        f"""
        {tasks}
        [schedule]
        record_schedule = "log"
        n_records = {n_records}
        [runs.supervised]
        method = "supervised"
        tasks = ["pair_tshirt_shirt", "tri_footwear", "all"]
        seeds = [0, 1]
        network = "small-cnn"
        config = {{ lr = 0.05, batch_size = 128, {common} }}
        [runs.protonet]
        method = "protonet"
        tasks = ["all"]
        seeds = [0, 1]
        network = "small-cnn"
        config = {{ k_shot = 5, n_query = 15, {common} }}
        """
    )


def train(out: Path, steps: int, precision: str, n_records: int) -> Store:
    path = out / f"{precision}.toml"
    path.write_text(study_text(steps, precision, n_records))
    run_study(load_study(path), out / precision, progress=False)
    return Store.open(out / precision / "store")


def by_key(store: Store) -> dict:
    """(method, task, seed) -> run id."""
    return {
        (info["method"], info["task"], info["seed"]): rid
        for rid in store.run_ids
        for info in [store.run_info(rid)]
    }


def accuracy(P: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(P.argmax(1) == labels))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--records", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="20 steps, 3 records")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    steps, n_records = (20, 3) if args.quick else (args.steps, args.records)
    print(f"CPU: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        stores = {p: train(out, steps, p, n_records) for p in ("off", "bf16")}
        keys = {p: by_key(s) for p, s in stores.items()}
        labels = stores["off"].labels
        print(f"\n{steps} steps per run; s/step includes recording ({n_records} records)\n")
        print(
            "| method | task | s/step fp32 | s/step bf16 | speed-up | "
            "d_B(fp32, bf16) same seed, per record | d_B(seed 0, seed 1) fp32, per record | "
            "accuracy fp32 / bf16 |"
        )
        print("|---|---|---:|---:|---:|---|---|---|")
        groups = sorted({(m, t) for (m, t, _s) in keys["off"]})
        for method, task in groups:
            traj = {
                (p, s): stores[p].trajectory(keys[p][(method, task, s)])
                for p in ("off", "bf16")
                for s in (0, 1)
            }
            sec = {
                p: np.mean([traj[(p, s)].metrics["wall_time"].iloc[-1] / steps for s in (0, 1)])
                for p in ("off", "bf16")
            }
            P = {k: v.predictions.astype(np.float64) for k, v in traj.items()}
            cross = np.mean([bhattacharyya(P[("off", s)], P[("bf16", s)]) for s in (0, 1)], 0)
            seeds = bhattacharyya(P[("off", 0)], P[("off", 1)])
            acc = [
                np.mean([accuracy(P[(p, s)][-1], labels) for s in (0, 1)]) for p in ("off", "bf16")
            ]
            fmt = lambda a: " ".join(f"{x:.1e}" for x in a)  # noqa: E731
            print(
                f"| {method} | {task} | {sec['off']:.4f} | {sec['bf16']:.4f} | "
                f"{sec['off'] / sec['bf16']:.2f}× | {fmt(cross)} | {fmt(seeds)} | "
                f"{acc[0]:.3f} / {acc[1]:.3f} |"
            )
        steps_list = stores["off"].steps(keys["off"][groups[0][0], groups[0][1], 0])
        print(f"\nrecorded steps: {steps_list}")


if __name__ == "__main__":
    main()
