"""Seconds per training step of each network, and the CPU variants issue 10 asks about: torch
threads, channels-last batches and bf16 autocast — each kept only if it is faster *and* leaves the
recorded float64 predictions unchanged.

Usage::

    flock -x /tmp/cpu.lock .venv/bin/python benchmarks/bench_train_speed.py
    .venv/bin/python benchmarks/bench_train_speed.py --quick          # 3 steps, checks it works

Setting: real Fashion-MNIST batches (128 images, 28×28), SGD with momentum 0.9 and lr 0.05 on a
10-class cross-entropy, the networks of the reference studies (small CNN width 32 and 16; MLP with
two hidden layers of 256). Every variant starts from the same initial weights and trains on the
same batches; after ``--steps`` steps its softmax on 512 probe images is computed in float64 and
compared with the baseline variant's (float32, the default thread count, NCHW): ``max |ΔP|`` is 0
exactly when the variant computes the same numbers. Time per step is the median over steps after
2 warm-up steps (the machine is shared: hold the exclusive lock).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from _machine import cpu_model
from taskspace.data import load_dataset
from taskspace.nets import build_network

#: ``--cpu-time``: time by the process's CPU time on one thread (robust to other processes).
CLOCK = {"f": time.perf_counter}

NETWORKS = {
    "small-cnn w32": ("small-cnn", {"width": 32}),
    "small-cnn w16": ("small-cnn", {"width": 16}),
    "mlp h256": ("mlp", {"hidden": 256}),
}


def train(name, x, y, probe, steps, *, threads=None, channels_last=False, bf16=False):
    """Train ``steps`` SGD steps; return (median s/step, float64 softmax on ``probe``)."""
    kind, options = NETWORKS[name]
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        net = build_network(kind, 10, in_channels=1, image_size=28, **options)
        fmt = torch.channels_last if channels_last and kind != "mlp" else torch.contiguous_format
        net = net.to(memory_format=fmt)
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        cast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        times = []
        for step in range(steps):
            xb = x[step % len(x)].contiguous(memory_format=fmt)
            t0 = CLOCK["f"]()
            with cast:
                loss = F.cross_entropy(net(xb).float(), y[step % len(y)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            times.append(CLOCK["f"]() - t0)
        net.eval()
        with torch.no_grad():
            P = torch.softmax(net(probe.contiguous(memory_format=fmt)).double(), dim=1)
        return statistics.median(times[2:] or times), P.numpy()
    finally:
        torch.set_num_threads(before)


def inference(name, images, batch_size, *, threads=None):
    """(seconds, float64 features) of the eval-mode representation of ``images`` in batches."""
    kind, options = NETWORKS[name]
    torch.manual_seed(0)
    net = build_network(kind, 10, in_channels=1, image_size=28, **options).eval()
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            net.features(images[:batch_size])  # warm-up
            t0 = CLOCK["f"]()
            out = torch.cat(
                [
                    net.features(images[i : i + batch_size])
                    for i in range(0, len(images), batch_size)
                ]
            )
            return CLOCK["f"]() - t0, out.double().numpy()
    finally:
        torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=None, help="default 30 (quick 3)")
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="one thread, process CPU seconds (the thread variants are skipped)",
    )
    args = parser.parse_args()
    if args.cpu_time:
        torch.set_num_threads(1)
        CLOCK["f"] = time.process_time
    steps = args.steps or (3 if args.quick else 30)
    data = load_dataset("fashion-mnist", "train")
    rng = np.random.default_rng(0)
    pick = rng.choice(len(data.labels), size=(8, 128), replace=False)
    images = torch.as_tensor(np.asarray(data.images, dtype=np.float32))
    if images.ndim == 3:
        images = images[:, None]
    images = images / (255.0 if images.max() > 1.5 else 1.0)
    labels = torch.as_tensor(np.asarray(data.labels, dtype=np.int64))
    x = [images[torch.as_tensor(p)] for p in pick]
    y = [labels[torch.as_tensor(p)] for p in pick]
    probe = images[torch.as_tensor(rng.choice(len(labels), 512, replace=False))]
    print(
        f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads by "
        f"default; bf16 CPU kernels: {torch.backends.mkldnn.is_available()} (oneDNN); "
        f"{steps} steps, batch 128\n"
    )
    variants = {
        "baseline (fp32, default threads)": {},
        "1 thread": {"threads": 1},
        "channels-last": {"channels_last": True},
        "bf16 autocast": {"bf16": True},
    }
    print("| network | variant | s/step | ratio to baseline | max abs ΔP (float64) |")
    print("|---|---|---:|---:|---:|")
    for name in args.networks.split(","):
        base_t, base_P = train(name, x, y, probe, steps)
        for label, kw in variants.items():
            if (name.startswith("mlp") and kw.get("channels_last")) or (
                args.cpu_time and "threads" in kw
            ):
                continue
            t, P = (base_t, base_P) if not kw else train(name, x, y, probe, steps, **kw)
            print(
                f"| {name} | {label} | {t:.4f} | {base_t / t:.2f}× | "
                f"{float(np.abs(P - base_P).max()):.1e} |",
                flush=True,
            )
    # Recording: the representation of the imprint + probe images (3,000 in the reference study)
    # in batches of `record_batch_size` (default 256), best of 3.
    n_rec = 600 if args.quick else 3000
    rec_images = images[torch.as_tensor(rng.choice(len(labels), n_rec, replace=False))]
    print(f"\n| network | recording {n_rec} images | s | ratio to batch 256 | max abs Δfeature |")
    print("|---|---|---:|---:|---:|")
    for name in args.networks.split(","):
        base_t, base_f = min(
            (inference(name, rec_images, 256) for _ in range(3)), key=lambda r: r[0]
        )
        for label, kw in {
            "batch 256, default threads": {"batch_size": 256},
            "batch 1024": {"batch_size": 1024},
            "batch 3000": {"batch_size": n_rec},
            "batch 256, 1 thread": {"batch_size": 256, "threads": 1},
        }.items():
            if args.cpu_time and "threads" in kw:
                continue
            t, f = min((inference(name, rec_images, **kw) for _ in range(3)), key=lambda r: r[0])
            print(
                f"| {name} | {label} | {t:.3f} | {base_t / t:.2f}× | "
                f"{float(np.abs(f - base_f).max()):.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
