"""Seconds per training step and per recorded image of the CIFAR-10 and ImageNet networks (issue 16:
the expected wall time of those studies, docs/scaling.md).

Usage::

    flock -x /tmp/cpu.lock .venv/bin/python benchmarks/bench_step_cost.py [--device cuda]

One step is what `taskspace.methods.train_run` does for supervised learning: forward, cross-entropy,
backward and an SGD step with momentum, on random images of the study's size, channels-last
(as the training loop sets it), in float32 on the CPU (bf16 autocast on a GPU). Recording is
inference in eval mode on ``record_batch_size`` images. Each is timed over ``--steps`` steps after
one warm-up step; the per-image cost is per step ÷ batch size.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from taskspace.nets import build_network

CASES = {
    # study: (network, image size, classes, training batch, recording batch)
    "cifar10": ("resnet18-cifar", 32, 10, 128, 256),
    "imagenet": ("resnet50", 224, 1000, 256, 512),
}


def time_case(name, device, steps, batch_cap):
    network, size, classes, batch, rec_batch = CASES[name]
    batch, rec_batch = min(batch, batch_cap), min(rec_batch, batch_cap)
    net = build_network(network, classes, in_channels=3, image_size=size).to(device)
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(classes, (batch,), device=device)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device == "cuda"
        else contextlib.nullcontext()
    )

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def step():
        with autocast:
            loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    net.train()
    step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    per_step = (time.perf_counter() - t0) / steps
    net.eval()
    xr = torch.randn(rec_batch, 3, size, size, device=device).to(memory_format=torch.channels_last)
    with torch.no_grad(), autocast:
        net(xr)
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            net(xr)
        sync()
    per_rec_image = (time.perf_counter() - t0) / steps / rec_batch
    return network, size, batch, per_step, per_step / batch, per_rec_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument(
        "--batch-cap",
        type=int,
        default=32,
        help="largest batch timed (the per-image cost is what is used; on 2 CPU "
        "cores a ResNet-50 step of 256 images would take minutes)",
    )
    args = ap.parse_args()
    from _machine import cpu_model

    where = torch.cuda.get_device_name() if args.device == "cuda" else cpu_model()
    print(f"{where}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        "| study | network | image | batch timed | s/step | ms/training image | ms/recorded image |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in CASES:
        network, size, batch, per_step, per_img, per_rec = time_case(
            name, args.device, args.steps, args.batch_cap
        )
        print(
            f"| {name} | {network} | {size}² | {batch} | {per_step:.3f} | {1e3 * per_img:.2f} | "
            f"{1e3 * per_rec:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
