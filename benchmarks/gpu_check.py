"""Every CUDA path of taskspace in one call, one table (issue 26).

    python benchmarks/gpu_check.py [--device cuda] [--out gpu_check.md]
    python benchmarks/gpu_check.py --device cpu --toy      # seconds; in the test suite

Rows (each: what ran, on which device, size, seconds, the number checked and pass/FAIL):

1. pairwise d_B with ``backend="torch"`` against the CPU (Numba) path on a subset, float64:
   largest difference ≤ 1e-9.
2. The same at the large size (default M = 1500, N = 1000, C = 1000, float32 inputs; the issue's
   N = 50,000 is 300 GB of inputs, more than a GPU holds: ``--samples`` raises it), float64 and
   float32 products, against LDD's algorithm (torch float32 ``bmm`` of square roots, as in
   ``bench_pairwise.py``) on the same device: the time ratio, and their largest difference.
3. InPCA's eigenproblem on the device (``torch.linalg.eigh`` of ``-½ J D J``) against
   ``taskspace.InPCA`` on the CPU: leading eigenvalues agree to 1e-8 relative.
4. Progress's objective on the device (the inner products ``a_n, b_n`` of SPEC §5, then a grid of
   λ) against ``taskspace.progress``: within the grid's step. taskspace itself has no GPU path
   for InPCA or progress; these rows check the device's arithmetic on the same formulas.
5. One short training run per method (supervised, protonet, simclr, fixmatch, and finetune from
   the supervised run) on the device, without and with mixed precision (``auto``: bf16 where
   supported; on the CPU only ``off`` exists), recorded into a store: records present, rows
   sum to 1, progress finite.
6. The Lightning ``RecorderCallback`` on a trainer on the device (skipped if Lightning is not
   installed).

Sized to finish in well under 8 minutes on one H100-class GPU. ``--device cpu`` hides CUDA
(``CUDA_VISIBLE_DEVICES=""``) so the torch backend runs on the CPU. Exit status 1 if any row
fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

SIZES = {
    "full": {"subset": (64, 2000, 1000), "large": (1500, 1000, 1000), "inpca": 1500, "steps": 1.0},
    "toy": {"subset": (12, 64, 20), "large": (40, 128, 50), "inpca": 40, "steps": 0.3},
}
METHODS = {
    "supervised": {"steps": 40, "lr": 0.1, "batch_size": 32, "n_records": 4},
    "protonet": {"steps": 30, "k_shot": 3, "n_query": 4, "n_records": 4},
    "simclr": {"steps": 12, "batch_size": 32, "n_records": 3},
    "fixmatch": {"steps": 12, "batch_size": 8, "mu": 2, "labels_per_class": 4, "n_records": 3},
    "finetune": {"steps": 20, "n_records": 3},
}


def softmax_models(torch, m, n, c, device, seed=0):
    """float32 softmax of Gaussian logits, (m, n, c), made on ``device``."""
    g = torch.Generator(device=device).manual_seed(seed)
    logits = 3.0 * torch.randn((m, n, c), generator=g, device=device, dtype=torch.float32)
    return torch.softmax(logits, dim=-1)


def ldd_algorithm(torch, T, eps=1e-9, budget=2**26):
    """LDD's: float32 ``bmm`` of square roots per chunk of samples, −log, sum (full M×M)."""
    m, n, _ = T.shape
    chunk = max(1, budget // (m * m))
    D = torch.zeros((m, m), dtype=torch.float32, device=T.device)
    for n0 in range(0, n, chunk):
        R = torch.sqrt(T[:, n0 : n0 + chunk]).permute(1, 0, 2)
        W = torch.bmm(R, R.transpose(1, 2))
        D += (-torch.log(W.clamp_(min=eps))).sum(dim=0)
    return (D / n).double().cpu().numpy()


def synced(torch, device, fn):
    """``(seconds, result)`` of ``fn()``, the device synchronised before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t, out


def check_pairwise(torch, device, size):
    import taskspace as ts

    rows = []
    m, n, c = size["subset"]
    X = softmax_models(torch, m, n, c, device).double().cpu().numpy()
    t, got = synced(torch, device, lambda: ts.pairwise_distances(X, backend="torch"))
    gap = float(np.max(np.abs(got - ts.pairwise_distances(X))))
    rows.append(
        (
            "pairwise d_B torch vs CPU, float64",
            f"{m}x{n}x{c}",
            t,
            f"max diff {gap:.1e}",
            gap <= 1e-9,
        )
    )
    m, n, c = size["large"]
    T = softmax_models(torch, m, n, c, device, seed=1)
    X = T.cpu().numpy()
    t_ldd, ldd = synced(torch, device, lambda: ldd_algorithm(torch, T))
    T = None  # free the device copy before the taskspace runs
    for precision in ("float64", "float32"):
        t, got = synced(
            torch,
            device,
            lambda p=precision: ts.pairwise_distances(X, backend="torch", precision=p),
        )
        gap = float(np.max(np.abs(got - ldd)))
        rows.append(
            (
                f"pairwise d_B torch {precision} vs LDD bmm",
                f"{m}x{n}x{c}",
                t,
                f"LDD {t_ldd:.2f} s ({t_ldd / t:.2f}x); max diff {gap:.1e}",
                bool(np.isfinite(got).all()) and gap < 1e-3,
            )
        )
    return rows


def check_inpca(torch, device, size):
    import taskspace as ts

    m = size["inpca"]
    X = softmax_models(torch, m, 32, 10, device, seed=2).double().cpu().numpy()
    D = ts.pairwise_distances(X)
    cpu = ts.InPCA(n_components=3, metric="precomputed").fit(D)

    def on_device():
        Dt = torch.from_numpy(D).to(device)
        W = -0.5 * Dt
        W = W - W.mean(0, keepdim=True) - W.mean(1, keepdim=True) + W.mean()
        return torch.linalg.eigvalsh(W).cpu().numpy()

    t, values = synced(torch, device, on_device)
    top = values[np.argsort(-np.abs(values))][:3]
    expected = np.asarray(cpu.eigenvalues_)[:3]
    gap = float(np.max(np.abs(np.sort(top) - np.sort(expected)) / np.abs(expected).max()))
    return [
        ("InPCA eigenvalues on device vs InPCA", f"M={m}", t, f"rel diff {gap:.1e}", gap <= 1e-8)
    ]


def check_progress(torch, device, size):
    import taskspace as ts

    m, n, c = size["subset"]
    labels = np.arange(n) % c
    truth = np.eye(c)[labels]
    P = softmax_models(torch, m, n, c, device, seed=3).double()
    P = 0.5 * P + 0.5 * torch.from_numpy(truth).to(device)  # somewhere along the way
    expected = ts.progress(P.cpu().numpy(), labels)
    grid = np.linspace(0.0, 1.0, 2001)

    def on_device():
        psi = torch.sqrt(P)
        a = psi.sum(-1) / np.sqrt(c)  # <ψ(uniform), ψ(P)>
        b = psi.gather(-1, torch.from_numpy(labels).to(device).expand(m, n)[..., None])[..., 0]
        theta = float(np.arccos(1.0 / np.sqrt(c)))  # uniform to one-hot, each sample
        lam = torch.from_numpy(grid).to(device)[:, None, None]
        inner = (torch.sin((1 - lam) * theta) * a + torch.sin(lam * theta) * b) / np.sin(theta)
        d = -torch.log(inner.clamp(min=1e-9)).mean(-1)  # (grid, m)
        return grid[d.argmin(0).cpu().numpy()]

    t, got = synced(torch, device, on_device)
    gap = float(np.max(np.abs(got - expected)))
    return [
        (
            "progress objective on device vs progress",
            f"{m}x{n}x{c}",
            t,
            f"max diff {gap:.1e} (grid step 5e-4)",
            gap <= 5e-4,
        )
    ]


def check_training(torch, device, size, root: Path):
    import taskspace as ts
    from taskspace.data import load_dataset, make_splits
    from taskspace.methods import train_run
    from taskspace.tasks import Task

    split = make_splits(
        load_dataset("digits", "train"), load_dataset("digits", "test"), n_imprint=100, seed=0
    )
    probe = split.probe()
    rows = []
    for amp in ("off", "auto") if device.type == "cuda" else ("off",):
        store = ts.Store.create(
            root / f"train-{amp}.zarr", probe.labels, split.class_names, probe_ids=probe.ids
        )
        parent = None
        for method, config in METHODS.items():
            config = {
                **config,
                "device": device.type,
                "mixed_precision": amp,
                "steps": max(4, int(config["steps"] * size["steps"])),
            }
            classes = range(5, 10) if method == "finetune" else range(5)
            task = Task.from_classes(classes, split.class_names, name=f"{classes[0]}-x")
            extra = {"parent": parent} if method == "finetune" else {}
            t = time.perf_counter()
            run = train_run(store, split, task, method, config=config, progress=False, **extra)
            t = time.perf_counter() - t
            parent = run if method == "supervised" else parent
            traj = store.trajectory(run)
            lam = ts.progress(traj.predictions, probe.labels)
            ok = (
                len(traj) >= 2
                and np.allclose(traj.predictions.sum(-1), 1, atol=1e-3)
                and bool(np.isfinite(lam).all())
            )
            rows.append(
                (
                    f"train {method}, mixed precision {amp}",
                    f"{len(traj)} records",
                    t,
                    f"progress {lam[0]:.3f} -> {lam[-1]:.3f}",
                    ok,
                )
            )
    return rows


def check_lightning(torch, device, root: Path):
    try:
        import lightning.pytorch as pl
    except ImportError:
        return [("Lightning RecorderCallback", "-", 0.0, "skipped: Lightning not installed", True)]
    import taskspace as ts
    from taskspace.data import load_dataset, make_splits
    from taskspace.integrations.lightning import RecorderCallback

    split = make_splits(
        load_dataset("digits", "train"), load_dataset("digits", "test"), n_imprint=100, seed=0
    )

    def tensor(d):
        return torch.as_tensor(d.float_images(dtype=np.float32)).reshape(len(d), -1)

    train, imp, probe = split.train(), split.imprint(), split.probe()

    class MLP(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU())
            self.head = torch.nn.Linear(32, 10)

        def forward(self, x):
            return self.head(self.body(x))

        def training_step(self, batch, batch_idx):
            return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.2)

    store = ts.Store.create(root / "lightning.zarr", probe.labels, split.class_names)
    rec = RecorderCallback(
        store,
        probe=(tensor(probe), probe.labels),
        imprint=(tensor(imp), imp.labels),
        schedule="log",
        n_records=4,
        task="all",
        method="sgd",
        seed=0,
        representation=lambda module, x: module.body(x),
    )
    data = torch.utils.data.TensorDataset(tensor(train), torch.as_tensor(train.labels))
    trainer = pl.Trainer(
        max_steps=24,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        callbacks=[rec],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(root),
    )
    t = time.perf_counter()
    trainer.fit(MLP(), torch.utils.data.DataLoader(data, batch_size=32, shuffle=True))
    t = time.perf_counter() - t
    traj = store.trajectory(rec.run_id)
    ok = len(traj) == 4 and np.allclose(traj.predictions.sum(-1), 1, atol=1e-3)
    return [
        (
            "Lightning RecorderCallback",
            f"{len(traj)} records",
            t,
            f"accelerator {trainer.accelerator.__class__.__name__}",
            ok,
        )
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--toy", action="store_true", help="toy sizes (seconds)")
    parser.add_argument("--samples", type=int, default=None, help="N of the large pairwise row")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.md"))
    args = parser.parse_args(argv)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch initialises CUDA
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu --toy", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    size = dict(SIZES["toy" if args.toy else "full"])
    if args.samples:
        m, _, c = size["large"]
        size["large"] = (m, args.samples, c)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        checks = [
            ("pairwise", lambda: check_pairwise(torch, device, size)),
            ("inpca", lambda: check_inpca(torch, device, size)),
            ("progress", lambda: check_progress(torch, device, size)),
            ("training", lambda: check_training(torch, device, size, Path(tmp))),
            ("lightning", lambda: check_lightning(torch, device, Path(tmp))),
        ]
        for label, check in checks:
            try:
                rows += check()
            except Exception as exc:  # a broken path is a FAIL row, the others still run
                traceback.print_exc()
                rows.append((label, "-", 0.0, f"{type(exc).__name__}: {exc}"[:120], False))
    lines = [
        f"device: {name} ({device.type}); torch {torch.__version__}; "
        f"{'toy' if args.toy else 'full'} sizes",
        "",
        "| check | size | seconds | result | status |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {c} | {s} | {t:.2f} | {r} | {'pass' if ok else 'FAIL'} |" for c, s, t, r, ok in rows
    ]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
