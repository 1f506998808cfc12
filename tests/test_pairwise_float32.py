"""``pairwise_distances(..., precision="float32")`` (SPEC §3): float32 products, float64 floors,
logarithms and sums; its error bound on constructed and on real (Fashion-MNIST) predictions."""

from pathlib import Path

import numpy as np
import pytest

import taskspace as ts
from tests.helpers import random_models
from tests.test_pairwise import direct

FASHION = Path("/usr/share/datasets/fashion-mnist")
#: The bound documented in docs/performance.md for real predictions (measured 6.3e-9 at C = 10).
REAL_BOUND = 1e-7


@pytest.mark.parametrize("n_classes", [10, 40, 200])
def test_float32_precision_within_its_bound(n_classes):
    # SPEC §3: float32 products, float64 floors and sums: each coefficient within ~C·2⁻²⁴
    # relative, so d_B within ~C·2⁻²⁴ of the float64 result (coefficients above 1e-3 here)
    rng = np.random.default_rng(20)
    X = random_models(rng, (30, 64, n_classes), sharpness=1.5)
    Y = random_models(rng, (7, 64, n_classes), sharpness=1.5)
    bound = n_classes * 2.0**-24
    for other in (None, Y):
        D64 = ts.pairwise_distances(X, other)
        D32 = ts.pairwise_distances(X, other, precision="float32", chunk_size=20)
        assert D32.dtype == np.float64 and D32.shape == D64.shape
        assert np.abs(D32 - D64).max() <= bound
        if other is None:
            assert np.array_equal(D32, D32.T) and np.all(np.diag(D32) == 0)
    if n_classes > 32:  # float32 products really happen there: not the float64 numbers
        assert not np.array_equal(D32, D64)
    assert np.abs(D32 - direct(X, Y, "bhattacharyya")).max() <= bound


def test_float32_precision_keeps_floors_in_float64():
    # disjoint supports on one sample: the floor (1e-300 is below float32's range) still applies
    X = np.zeros((2, 2, 40))
    X[0, 0, 0] = X[1, 0, 1] = 1.0
    X[:, 1, :] = 1.0 / 40
    for eps in (1e-9, 1e-300):
        D = ts.pairwise_distances(X, eps=eps, precision="float32")
        assert D[0, 1] == pytest.approx(-np.log(eps) / 2, rel=1e-6)


def test_torch_backend_float32_precision():
    pytest.importorskip("torch")
    X = random_models(np.random.default_rng(21), (9, 35, 40))
    np.testing.assert_allclose(
        ts.pairwise_distances(X, backend="torch", precision="float32"),
        ts.pairwise_distances(X, precision="float32"),
        rtol=0,
        atol=1e-6,
    )


def fashion_mnist_trajectories(seeds=(0, 1), steps=40, records=8, n_probe=300):
    """Softmax predictions along small-CNN training runs on real Fashion-MNIST: (M, N, 10).

    Plain PyTorch (SGD with momentum, batch 64) on 2,000 training images; each run is recorded
    at ``records`` log-spaced steps on ``n_probe`` test images, as the recorder's tests do.
    """
    torch = pytest.importorskip("torch")
    from taskspace.data import load_dataset, make_splits
    from taskspace.nets import SmallCNN
    from taskspace.record import checkpoint_schedule

    split = make_splits(
        load_dataset("fashion-mnist", "train"),
        load_dataset("fashion-mnist", "test"),
        n_train=2000,
        n_imprint=10,
        n_probe=n_probe,
        seed=0,
    )
    train, probe = split.train(), split.probe()
    x = torch.as_tensor(train.float_images(dtype=np.float32)).unsqueeze(1)
    y = torch.as_tensor(train.labels)
    x_probe = torch.as_tensor(probe.float_images(dtype=np.float32)).unsqueeze(1)
    schedule = set(checkpoint_schedule(steps, "log", records))
    models = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: on a busy machine 2 OpenMP threads were 25× slower
    try:
        for seed in seeds:
            models += _train_and_record(torch, SmallCNN, seed, x, y, x_probe, steps, schedule)
    finally:
        torch.set_num_threads(threads)
    return np.stack(models)


def _train_and_record(torch, SmallCNN, seed, x, y, x_probe, steps, schedule):
    """One run: its softmax predictions on ``x_probe`` at the steps in ``schedule``."""
    models = []
    torch.manual_seed(seed)
    net = SmallCNN(1, n_classes=10, width=8)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps + 1):
        if step in schedule:
            net.eval()
            with torch.no_grad():
                models.append(torch.softmax(net(x_probe).double(), 1).numpy())
            net.train()
        idx = torch.randint(len(y), (64,), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return models


@pytest.mark.slow
@pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_float32_error_on_real_fashion_mnist_predictions():
    X = fashion_mnist_trajectories()
    # 30 zero-probability classes: every coefficient (and its float32 rounding) is unchanged,
    # and C > 32 sends d_B to the float32 Gram path
    padded = np.concatenate([X, np.zeros((*X.shape[:2], 30))], axis=-1)
    D64 = ts.pairwise_distances(X)
    np.testing.assert_allclose(ts.pairwise_distances(padded), D64, rtol=0, atol=1e-12)
    D32 = ts.pairwise_distances(padded, precision="float32")
    error = np.abs(D32 - D64)
    nearest = np.unravel_index(np.argmin(np.where(D64 > 0, D64, np.inf)), D64.shape)
    print(
        f"real Fashion-MNIST predictions {X.shape}: d_B in [{D64[nearest]:.2e}, "
        f"{D64.max():.3f}], float32 max abs error {error.max():.2e}; at the nearest pair "
        f"{error[nearest]:.1e} ({error[nearest] / D64[nearest]:.0e} relative)"
    )
    assert 0 < error.max() <= REAL_BOUND
