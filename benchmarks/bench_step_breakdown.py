"""Where a training step of the reference study goes (issue 30, item 4): data, forward, backward,
optimiser and recording, against the FLOPs a step does and the GEMM rate measured in the same run.

Usage::

    .venv/bin/python benchmarks/bench_step_breakdown.py              # the machine to itself
    .venv/bin/python benchmarks/bench_step_breakdown.py --quick      # 20 steps: checks it works

For each torch thread count (1: one of the two single-threaded workers of ``--workers 2``, as
the reference study trains; 2: one run alone on the machine) and each of the study's two step
shapes (supervised, batch 128, on a two-class task: 225 of its 308 runs; Prototypical Networks,
a 10-way 5-shot 15-query episode of 200 images), with the study's own config (small CNN width
16, channels-last, bf16 autocast):

1. **The real loop.** `taskspace.methods.train_run` trains ``--steps`` steps with 12 log-spaced
   records into a throw-away store; an ``on_step`` callback timestamps every step and record, so
   the wall time splits into optimiser steps and records (inference on the 1,000 imprint and
   2,000 probe images, the store append, the model file and the resume state).
2. **One step taken apart.** The same method object's step is timed piece by piece, median over
   steps after a warm-up: data (every call of `ImageTensor.__getitem__`: the batch's indexing and
   uint8 → float32), forward (the method's ``loss`` less its data), backward, and the optimiser
   (``zero_grad`` + SGD + the scheduler).
3. **The limit.** FLOPs of one step (forward + backward) counted by
   ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls), against float32 and
   bf16 ``torch.mm`` rates at n = 2048 measured in this process on the same threads: the fraction
   of the limit is FLOPs ÷ (s/step × rate).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import torch

from _machine import cpu_model
from taskspace.methods import _data, train_run
from taskspace.methods.base import make_optimizer, make_scheduler
from taskspace.methods.config import make_config
from taskspace.methods.registry import get_method
from taskspace.nets import build_network
from taskspace.study.loading import load_study
from taskspace.study.outputs import load_split, open_store
from taskspace.study.plan import expand_runs, load_hierarchy, resolve_tasks

STUDY = Path(__file__).resolve().parents[1] / "studies" / "fashion-mnist.toml"
#: The two step shapes, by the study's run keys.
SHAPES = {
    "supervised, pair (batch 128)": "supervised/pair_tshirt_trouser/seed0",
    "protonet, all (200-image episode)": "protonet/all/seed0",
}


def gemm_rate(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of ``torch.mm`` on two n × n matrices of ``dtype`` (best of ``repeats``)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class DataClock:
    """Accumulates the seconds spent in `ImageTensor.__getitem__` (every method's batches)."""

    def __init__(self):
        self.seconds = 0.0
        self._original = _data.ImageTensor.__getitem__

    def __enter__(self):
        original, clock = self._original, self

        def timed(tensor, idx):
            t0 = time.perf_counter()
            out = original(tensor, idx)
            clock.seconds += time.perf_counter() - t0
            return out

        _data.ImageTensor.__getitem__ = timed
        return self

    def __exit__(self, *exc):
        _data.ImageTensor.__getitem__ = self._original


def prepare(key: str, steps: int):
    """(split, task, planned run, its config with ``steps`` and 12 log-spaced records)."""
    study = load_study(STUDY)
    split = load_split(study)
    tasks = resolve_tasks(study, split.class_names, load_hierarchy(study, split.class_names))
    run = {r.key: r for r in expand_runs(study)}[key]
    config = {**run.config, "steps": steps, "record_schedule": "log", "n_records": 12}
    return study, split, tasks[run.task], run, config


def real_loop(key: str, steps: int) -> dict:
    """Wall seconds of ``train_run`` split into optimiser steps and records."""
    study, split, task, run, config = prepare(key, steps)
    marks = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(study, split, Path(tmp) / "store")
        t0 = time.perf_counter()
        train_run(
            store,
            split,
            task,
            run.method,
            run.network,
            config,
            progress=False,
            on_step=lambda _rid, step, _tot, rec: marks.append((time.perf_counter(), rec)),
        )
        total = time.perf_counter() - t0
    # marks[0]: training starts (after building the method, the network and the recorder)
    in_records = sum(t1 - t0 for (t0, _), (t1, rec) in itertools.pairwise(marks) if rec)
    return {
        "total": total,
        "setup": marks[0][0] - t0,
        "records": in_records,
        "n_records": sum(rec for _, rec in marks),
        "steps": marks[-1][0] - marks[0][0] - in_records,
    }


def pieces(key: str, steps: int) -> dict:
    """Median seconds per step of data, forward, backward and optimiser, and FLOPs per step."""
    _, split, task, run, config = prepare(key, steps)
    cfg = make_config(run.method, config)
    m = get_method(run.method)(cfg, task, split, "cpu")
    options = cfg.network_options
    torch.manual_seed(0)
    net = m.init_network(
        lambda n, name=None, opts=None: build_network(
            name or run.network,
            n,
            in_channels=m.x.in_channels,
            image_size=m.x.image_size,
            **(options if opts is None else opts),
        )
    )
    net = net.to(memory_format=torch.channels_last)
    opt = make_optimizer(cfg, m.parameters(net, None))
    sched = make_scheduler(cfg, opt, steps)
    cast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if cfg.mixed_precision == "bf16"
        else contextlib.nullcontext()
    )
    rows = []
    for step in range(steps):
        m.train_mode(net, None)
        with DataClock() as data:
            t0 = time.perf_counter()
            with cast:
                loss, _ = m.loss(net, None, step)
            t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        t3 = time.perf_counter()
        rows.append((data.seconds, t1 - t0 - data.seconds, t2 - t1, t3 - t2))
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, cast:
        loss, _ = m.loss(net, None, steps)
        loss.backward()
    opt.zero_grad(set_to_none=True)
    kept = rows[3:] or rows
    med = [statistics.median(r[i] for r in kept) for i in range(4)]
    return {
        "data": med[0],
        "forward": med[1],
        "backward": med[2],
        "optimiser": med[3],
        "flops": counter.get_total_flops(),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--quick", action="store_true", help="20 steps, 1 thread")
    args = parser.parse_args(argv)
    steps = 20 if args.quick else args.steps
    threads = [1] if args.quick else [int(t) for t in args.threads.split(",")]
    print(f"CPU: {cpu_model(with_isa=True)}; torch {torch.__version__}; {steps} steps per shape\n")
    print(
        "| threads | step | steps/s in train_run | set-up, records: share of the run | data "
        "| forward | backward | optimiser | GFLOP/step | of the fp32 mm rate "
        "| of the bf16 mm rate |"
    )
    print("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    before = torch.get_num_threads()
    try:
        for n in threads:
            torch.set_num_threads(n)
            rate32, rate16 = gemm_rate(torch.float32), gemm_rate(torch.bfloat16)
            for label, key in SHAPES.items():
                loop = real_loop(key, steps)
                p = pieces(key, steps)
                step_s = p["data"] + p["forward"] + p["backward"] + p["optimiser"]
                share = lambda s, total=step_s: f"{s / total:.0%}"  # noqa: E731
                print(
                    f"| {n} | {label} | {steps / loop['steps']:.1f} "
                    f"| {loop['setup'] / loop['total']:.0%}, {loop['records'] / loop['total']:.0%} "
                    f"({loop['n_records']} records) "
                    f"| {share(p['data'])} | {share(p['forward'])} | {share(p['backward'])} "
                    f"| {share(p['optimiser'])} | {p['flops'] / 1e9:.2f} "
                    f"| {p['flops'] / step_s / rate32:.0%} | {p['flops'] / step_s / rate16:.0%} |",
                    flush=True,
                )
            print(
                f"|  | (mm rates on {n} thread(s): fp32 {rate32 / 1e9:.0f} GFLOP/s, "
                f"bf16 {rate16 / 1e9:.0f} GFLOP/s) |||||||||",
                flush=True,
            )
    finally:
        torch.set_num_threads(before)


if __name__ == "__main__":
    main()
