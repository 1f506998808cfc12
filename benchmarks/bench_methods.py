"""Seconds per epoch of each training method on Fashion-MNIST, and the cost of recording (issue 4,
issue 3's ≤ 25 % recording overhead).

Usage::

    flock /tmp/taskspace-bench.lock .venv/bin/python benchmarks/bench_methods.py   # full
    .venv/bin/python benchmarks/bench_methods.py --quick   # 1 % of an epoch, width-8 CNN

Setting: Fashion-MNIST, all ten classes, the small CNN (width 32), batch 128 (FixMatch: the
paper's B = 64 labelled + μB = 448 unlabelled images, each unlabelled one seen weakly and strongly;
ProtoNet: 10-way 5-shot episodes with 15 queries, 200 images). Probe set 1,000 test images,
imprint set 500 training images (50 per class). Each method trains for the same fraction of its
epoch, twice (best of 2 repeats: the machine is shared), with `taskspace.methods.train_run` as
users call it:

- recording off: a single record at the last step and no model files kept;
- recording on: the default schedule (20 records, log-spaced), every record's model file kept and
  the resume state saved after each record.

Times come from the runs' own records (``wall_time`` of the last record: training plus recording,
without start-up). ``s/record`` is ``(T_on − T_off) / (R_on − R_off)``: probe and imprint inference,
the store append and the checkpoint files. The overhead is given for the measured length and
projected to a one-epoch run with 20 records, the short end of the reference study's runs (the
overhead falls as 1 / epochs).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch

import taskspace as ts
from taskspace.data import load_dataset, make_splits
from taskspace.methods import get_method, make_config, train_run
from taskspace.tasks import Task

CONFIGS = {
    "supervised": {"batch_size": 128, "lr": 0.05},
    "finetune": {"batch_size": 128, "lr": 0.01},
    "protonet": {"n_way": 10, "k_shot": 5, "n_query": 15},
    "simclr": {"batch_size": 128},
    "fixmatch": {"batch_size": 64, "mu": 7, "labels_per_class": 10},
}


def steps_per_epoch(method, config, split, task) -> int:
    cfg = make_config(method, config)
    m = get_method(method)(cfg, task, split, "cpu")
    return m.steps_per_epoch()


#: Set by ``--cpu-time``: time runs by the process's CPU time (one torch thread) instead of the
#: records' wall time.
CPU_TIME = False


def timed_run(store, split, task, method, config, network="small-cnn", **kw):
    t0, c0 = time.perf_counter(), time.process_time()
    run_id = train_run(store, split, task, method, network, config, progress=False, **kw)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    traj = store.trajectory(run_id)
    if CPU_TIME:
        return run_id, cpu, len(traj), wall
    return run_id, float(traj.metrics["wall_time"].iloc[-1]), len(traj), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1%% of an epoch, width-8 CNN")
    parser.add_argument(
        "--fraction",
        type=float,
        default=None,
        help="fraction of an epoch per run (default 0.1; quick 0.01)",
    )
    parser.add_argument("--width", type=int, default=None, help="CNN width (default 32)")
    parser.add_argument("--network", default="small-cnn", help="small-cnn (default) or mlp")
    parser.add_argument(
        "--net-options",
        default=None,
        help='network options as JSON (default {"width": WIDTH} for the CNN)',
    )
    parser.add_argument(
        "--n-train", type=int, default=None, help="training images (default: all 59,500)"
    )
    parser.add_argument("--n-probe", type=int, default=1000)
    parser.add_argument("--n-imprint", type=int, default=500)
    parser.add_argument("--n-records", type=int, default=20)
    parser.add_argument("--methods", default=",".join(CONFIGS))
    parser.add_argument("--repeats", type=int, default=None, help="best of (default 2; quick 1)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="one torch thread, times in process CPU seconds (with start-up): "
        "robust to other processes sharing the cores, an upper bound "
        "for the wall time of a run alone on 2 threads",
    )
    args = parser.parse_args()
    global CPU_TIME
    CPU_TIME = args.cpu_time
    if CPU_TIME:
        torch.set_num_threads(1)
    args.repeats = args.repeats or (1 if args.quick else 2)
    fraction = args.fraction or (0.01 if args.quick else 0.1)
    width = args.width or (8 if args.quick else 32)
    n_probe, n_imprint = (200, 100) if args.quick else (args.n_probe, args.n_imprint)

    split = make_splits(
        load_dataset("fashion-mnist", "train"),
        load_dataset("fashion-mnist", "test"),
        n_train=args.n_train,
        n_imprint=n_imprint,
        n_probe=n_probe,
        seed=0,
    )
    net_options = (
        json.loads(args.net_options)
        if args.net_options is not None
        else {"width": width}
        if args.network == "small-cnn"
        else {}
    )
    task = Task.from_classes(range(10), split.class_names, name="all")
    print(
        f"Fashion-MNIST: {len(split.train())} training, {n_imprint} imprint, {n_probe} probe "
        f"images; {args.network} {net_options}; {fraction:g} epoch per run; torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads\n"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        probe = split.probe()
        store = ts.Store.create(
            Path(tmp) / "bench.zarr", probe.labels, split.class_names, probe_ids=probe.ids
        )
        parent = None
        for method in args.methods.split(","):
            base = {**CONFIGS[method], "network_options": net_options, "checkpoint_interval_s": 0.0}
            spe = steps_per_epoch(method, base, split, task)
            steps = max(2, math.ceil(fraction * spe))
            kw = {"parent": parent} if method == "finetune" else {}
            # warm-up (first calls of the augmentations, allocator, thread pools), not timed
            kw["network"] = args.network if method != "finetune" else None
            timed_run(
                store,
                split,
                task,
                method,
                {**base, "steps": 2, "record_schedule": [2], "keep_models": "none", "seed": 99},
                **kw,
            )
            t_off = t_on = math.inf
            for rep in range(args.repeats):  # best of: the machine is shared
                _, t, r_off, _ = timed_run(
                    store,
                    split,
                    task,
                    method,
                    {
                        **base,
                        "steps": steps,
                        "record_schedule": [steps],
                        "keep_models": "none",
                        "seed": rep,
                    },
                    **kw,
                )
                t_off = min(t_off, t)
                run_on, t, r_on, _ = timed_run(
                    store,
                    split,
                    task,
                    method,
                    {**base, "steps": steps, "seed": rep, "n_records": args.n_records},
                    **kw,
                )
                t_on = min(t_on, t)
            if method == "supervised":
                parent = run_on
            per_record = max(0.0, t_on - t_off) / max(1, r_on - r_off)
            train_s = t_off - per_record * r_off
            epoch_s = train_s / steps * spe
            rows.append(
                (
                    method,
                    spe,
                    steps,
                    train_s / steps,
                    epoch_s,
                    per_record,
                    r_on,
                    t_off,
                    t_on,
                    100 * (t_on - t_off) / train_s,
                    100 * args.n_records * per_record / epoch_s,
                )
            )
            print(
                f"{method}: {steps} steps, off {t_off:.1f} s, on {t_on:.1f} s ({r_on} records)",
                flush=True,
            )

    print(
        "\n| method | steps/epoch | s/step | s/epoch (recording off) | s/record | measured: "
        "steps, records, T_off → T_on, overhead | projected overhead, 1 epoch, "
        f"{args.n_records} records |"
    )
    print("|---|---:|---:|---:|---:|---|---:|")
    for method, spe, steps, step_s, epoch_s, per_record, r_on, t_off, t_on, ov, ov1 in rows:
        print(
            f"| {method} | {spe} | {step_s:.3f} | {epoch_s:.1f} | {per_record:.2f} | "
            f"{steps}, {r_on}, "
            f"{t_off:.1f} s → {t_on:.1f} s, {ov:.0f} % | {ov1:.0f} % |"
        )


if __name__ == "__main__":
    main()
