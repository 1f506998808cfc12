"""The Recorder on plain PyTorch training loops, end to end into a store, on real data."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import taskspace as ts  # noqa: E402
from taskspace.data import load_dataset, make_splits  # noqa: E402
from taskspace.nets import MLP, SmallCNN  # noqa: E402
from taskspace.record import Recorder, checkpoint_schedule, class_prototypes, imprint  # noqa: E402
from taskspace.tasks import Task  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")


def as_tensor(dataset, channels_first=True):
    x = torch.as_tensor(dataset.float_images(dtype=np.float32))
    return x.unsqueeze(1) if channels_first and x.ndim == 3 else x


def train_recorded(
    store,
    split,
    task,
    net,
    total_steps,
    batch_size=64,
    seed=0,
    resume=False,
    stop_after=None,
    progress=False,
):
    """A plain PyTorch loop with the Recorder attached: the README's example (``stop_after``
    records: the script killed there)."""
    train, imp, probe = split.train(), split.imprint(), split.probe()
    mask, y_task = task.relabel(train.labels)
    x_train = as_tensor(train)[torch.as_tensor(mask)]
    y_train = torch.as_tensor(y_task)
    run_id = store.add_run(
        task=task.name,
        classes=list(task.classes),
        method="supervised",
        seed=seed,
        network=type(net).__name__,
        resume=resume,
    )
    rec = Recorder(
        store,
        run_id,
        model=net,
        probe=(as_tensor(probe), probe.labels),
        imprint=(as_tensor(imp), imp.labels),
        schedule=checkpoint_schedule(total_steps, "log", 8),
        progress=progress,
    )
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    recorded = 0
    for step in range(total_steps + 1):
        recorded += rec.maybe_record(step, epoch=step * batch_size // len(y_train))
        if step == total_steps or recorded == stop_after:
            break
        idx = torch.randint(len(y_train), (batch_size,), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(x_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return run_id, rec


def direct_predictions(net, split):
    """Imprinted predictions recomputed from the model, written out plainly."""
    net.eval()
    with torch.no_grad():
        f_probe = net.features(as_tensor(split.probe())).double().numpy()
        f_imp = net.features(as_tensor(split.imprint())).double().numpy()
    return imprint(f_probe, class_prototypes(f_imp, split.imprint().labels, 10))


def test_recorder_digits_end_to_end(tmp_path):
    torch.manual_seed(0)
    split = make_splits(
        load_dataset("digits", "train"), load_dataset("digits", "test"), n_imprint=100, seed=0
    )
    probe = split.probe()
    store = ts.Store.create(
        tmp_path / "s.zarr", probe.labels, split.class_names, probe_ids=probe.ids
    )
    task = Task.from_classes([0, 1, 2, 3, 4], split.class_names, name="0-4")
    net = MLP(64, n_classes=len(task))
    net.train()
    run_id, _ = train_recorded(store, split, task, net, total_steps=60)
    assert net.training  # the recorder restored the mode

    reopened = ts.Store.open(tmp_path / "s.zarr")
    assert reopened.probe_hash == split.probe_hash
    assert reopened.label_space_hash == split.label_space_hash
    traj = reopened.trajectory(run_id)
    np.testing.assert_array_equal(traj.steps, checkpoint_schedule(60, "log", 8))
    assert traj.predictions.shape == (len(traj.steps), len(probe), 10)
    # the last record equals a recomputation from the saved model (float32 storage)
    torch.save(net.state_dict(), tmp_path / "model.pt")
    saved = MLP(64, n_classes=len(task))
    saved.load_state_dict(torch.load(tmp_path / "model.pt"))
    np.testing.assert_allclose(traj.predictions[-1], direct_predictions(saved, split), atol=1e-6)
    metrics = traj.metrics
    assert set(metrics.columns) >= {"accuracy", "loss", "epoch", "wall_time", "mode"}
    assert (metrics["mode"] == "imprint").all()
    assert np.all(np.diff(metrics["wall_time"]) > 0)
    acc = (traj.predictions[-1].argmax(1) == probe.labels).mean()
    assert metrics["accuracy"].iloc[-1] == pytest.approx(acc, abs=1e-12)
    runs = reopened.runs(per="run")
    assert runs.loc[0, "task"] == "0-4" and runs.loc[0, "method"] == "supervised"
    # training on digits 0-4 makes progress towards the truth of all ten digits
    lam = ts.progress(traj.predictions, probe.labels)
    assert lam[-1] > lam[0]


def test_rerunning_the_recording_script_is_idempotent(tmp_path, capfd):
    """The README's re-run rule: with add_run(..., resume=True) a script killed after 3 records
    and run again ends with the uninterrupted trajectory (each scheduled step once, the same
    predictions: training is seeded), and a third run records nothing."""
    split = make_splits(
        load_dataset("digits", "train"), load_dataset("digits", "test"), n_imprint=100, seed=0
    )
    probe = split.probe()
    task = Task.from_classes([0, 1, 2, 3, 4], split.class_names, name="0-4")
    schedule = checkpoint_schedule(40, "log", 8)

    def script(store, **kwargs):
        torch.manual_seed(0)
        return train_recorded(
            store,
            split,
            task,
            MLP(64, n_classes=len(task)),
            total_steps=40,
            resume=True,
            progress=True,
            **kwargs,
        )

    whole = ts.Store.create(tmp_path / "whole", probe.labels, split.class_names)
    run_whole, _ = script(whole)
    store = ts.Store.create(tmp_path / "s", probe.labels, split.class_names)
    run_id, _ = script(store, stop_after=3)
    assert store.n_records(run_id) == 3 and run_id == run_whole  # the id is the metadata's
    capfd.readouterr()
    again, rec = script(store)
    err = capfd.readouterr().err
    assert again == run_id and store.run_ids == [run_id]
    assert f"run {run_id}: 3 records already stored (last at step {schedule[2]})" in err
    assert f"({len(schedule)}/{len(schedule)}): probe accuracy" in err
    traj, ref = store.trajectory(run_id), whole.trajectory(run_whole)
    np.testing.assert_array_equal(traj.steps, schedule)
    np.testing.assert_array_equal(traj.predictions, ref.predictions)
    assert rec.complete and rec.remaining == []
    # Complete: nothing is due, nothing is recorded, and it says so.
    _, rec = script(store)
    assert "every scheduled step is recorded, nothing to do" in capfd.readouterr().err
    assert store.n_records(run_id) == len(schedule) and rec.complete
    assert not rec.due(int(schedule[-1]))
    with pytest.raises(ValueError, match=r"already has a record at step 40; `step` 40"):
        rec.record(40)


def test_head_mode_and_errors(tmp_path):
    split = make_splits(
        load_dataset("digits", "train"), load_dataset("digits", "test"), n_imprint=100, seed=0
    )
    probe = split.probe()
    store = ts.Store.create(tmp_path / "s.zarr", probe.labels, split.class_names)
    run_id = store.add_run(task="all", classes=None, method="supervised", seed=0)
    net = MLP(64, n_classes=10)
    rec = Recorder(
        store, run_id, model=net, probe=(as_tensor(probe), probe.labels), mode="head", schedule=[0]
    )
    P = rec.record(0)
    with torch.no_grad():
        expected = torch.softmax(net(as_tensor(probe)).double(), 1).numpy()
    np.testing.assert_allclose(P, expected, atol=1e-12)
    assert store.trajectory(run_id).metrics["mode"].iloc[0] == "head"
    with pytest.raises(ValueError, match="needs the imprint set"):
        Recorder(store, run_id, model=net, probe=(as_tensor(probe), probe.labels))
    with pytest.raises(ValueError, match="differ from the store's probe labels"):
        Recorder(
            store, run_id, model=net, probe=(as_tensor(probe), probe.labels[::-1]), mode="head"
        )
    with pytest.raises(ValueError, match="has no submodule 'nope'"):
        Recorder(
            store,
            run_id,
            model=net,
            probe=(as_tensor(probe), probe.labels),
            imprint=(as_tensor(split.imprint()), split.imprint().labels),
            layer="nope",
        )
    # a representation read from a named layer with a hook equals features()
    hooked = Recorder._representation_fn(net, None, "body")
    x = as_tensor(probe)[:5]
    torch.testing.assert_close(hooked(net, x), net.features(x))


@pytest.mark.slow
@pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_recorder_fashion_mnist_small_cnn(tmp_path):
    torch.manual_seed(0)
    split = make_splits(
        load_dataset("fashion-mnist", "train"),
        load_dataset("fashion-mnist", "test"),
        n_train=2000,
        n_imprint=200,
        n_probe=300,
        seed=0,
    )
    probe = split.probe()
    store = ts.Store.create(
        tmp_path / "f.zarr", probe.labels, split.class_names, probe_ids=probe.ids, dtype="float16"
    )
    task = Task.from_node("footwear.n.02", "fashion-mnist", label_space=split.class_names)
    net = SmallCNN(1, n_classes=len(task), width=8)
    run_id, rec = train_recorded(store, split, task, net, total_steps=30)
    traj = ts.Store.open(tmp_path / "f.zarr").trajectory(run_id)
    assert traj.predictions.dtype == np.float16
    np.testing.assert_allclose(
        traj.predictions[-1].astype(np.float64), direct_predictions(net, split), atol=1e-3
    )
    assert rec.overhead_s > 0


def test_head_mode_needs_no_representation_and_inputs_may_be_a_dict(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.arange(12) % 3
    store = ts.Store.create(tmp_path / "s.zarr", labels, ["a", "b", "c"])
    run_id = store.add_run(task="all", classes=None, method="m", seed=0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))  # no features(), no layer named
    x = {
        "a": rng.standard_normal((12, 2)).astype(np.float32),
        "b": rng.standard_normal((12, 2)).astype(np.float32),
    }

    def head(m, inputs):
        return m(torch.cat([inputs["a"], inputs["b"]], dim=1))

    rec = Recorder(
        store, run_id, model=net, probe=(x, labels), mode="head", head=head, batch_size=5
    )  # batches slice every entry together
    with torch.no_grad():
        expected = torch.softmax(net(torch.as_tensor(np.hstack([x["a"], x["b"]]))).double(), 1)
    np.testing.assert_allclose(rec.record(0), expected.numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="different numbers of rows"):
        Recorder(
            store, run_id, model=net, probe=({"a": x["a"], "b": x["b"][:5]}, labels), mode="head"
        )
    with pytest.raises(ValueError, match="the probe set has 5 inputs but 12 labels"):
        Recorder(store, run_id, model=net, probe=(x["a"][:5], labels), mode="head")
