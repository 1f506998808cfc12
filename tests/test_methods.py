"""Training methods on digits: each trains, records, is deterministic; configs and errors."""

import itertools
import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import taskspace as ts  # noqa: E402
from taskspace.data import load_dataset, make_splits  # noqa: E402
from taskspace.methods import make_config, resolve_device, train_run  # noqa: E402
from taskspace.methods._checkpoint import RunCheckpoints, default_root  # noqa: E402
from taskspace.methods._data import BatchStream  # noqa: E402
from taskspace.methods.base import lr_factor  # noqa: E402
from taskspace.record import checkpoint_schedule  # noqa: E402
from taskspace.tasks import Task  # noqa: E402

# Small, fast settings per method (a second or less each on 2 CPU cores).
QUICK = {
    "supervised": {"steps": 40, "lr": 0.1, "batch_size": 32, "n_records": 4},
    "protonet": {"steps": 30, "k_shot": 3, "n_query": 4, "n_records": 4},
    "simclr": {"steps": 12, "batch_size": 32, "n_records": 3},
    "fixmatch": {"steps": 12, "batch_size": 8, "mu": 2, "labels_per_class": 4, "n_records": 3},
}


@pytest.fixture(scope="module")
def split():
    return make_splits(
        load_dataset("digits", "train"), load_dataset("digits", "test"), n_imprint=100, seed=0
    )


@pytest.fixture(scope="module")
def digits():
    return [str(d) for d in range(10)]


def new_store(path, split):
    probe = split.probe()
    return ts.Store.create(path, probe.labels, split.class_names, probe_ids=probe.ids)


def all_digits(split):
    return Task.from_classes(range(10), split.class_names, name="all")


@pytest.mark.parametrize("method", list(QUICK))
def test_each_method_records_a_trajectory(tmp_path, split, method):
    store = new_store(tmp_path / "s.zarr", split)
    task = Task.from_classes([0, 1, 2, 3, 4, 5], split.class_names, name="0-5")
    config = QUICK[method]
    run_id = train_run(store, split, task, method, config=config, progress=False)
    traj = store.trajectory(run_id)
    expected = checkpoint_schedule(config["steps"], "log", config["n_records"])
    np.testing.assert_array_equal(traj.steps, expected)
    assert traj.predictions.shape == (len(expected), len(split.probe()), 10)
    np.testing.assert_allclose(traj.predictions.sum(-1), 1, atol=1e-5)
    m = traj.metrics
    assert (m["mode"] == "imprint").all()
    assert math.isnan(m["train_loss"].iloc[0])  # nothing trained before step 0
    assert np.isfinite(m["train_loss"].iloc[1:]).all()
    acc = (traj.predictions.argmax(-1) == store.labels).mean(-1)
    np.testing.assert_allclose(m["accuracy"], acc, atol=1e-12)
    info = traj.info
    assert info["method"] == method and info["task"] == "0-5" and info["seed"] == 0
    assert info["network"] == "mlp"  # the default for 8×8 images
    assert info["config"]["identity"] and info["dataset"]["probe_hash"] == split.probe_hash
    # the model at every record step is kept beside the store, and the resume state is gone
    ckpt = RunCheckpoints(default_root(store), run_id)
    assert ckpt.model_steps() == expected.tolist()
    assert not ckpt.state_path.exists()


@pytest.mark.slow
def test_supervised_accuracy_and_progress_rise(tmp_path, split):
    store = new_store(tmp_path / "s.zarr", split)
    run_id = train_run(
        store,
        split,
        all_digits(split),
        "supervised",
        "mlp",
        {"steps": 150, "lr": 0.1, "batch_size": 32, "n_records": 6},
        progress=False,
    )
    traj = store.trajectory(run_id)
    acc = traj.metrics["accuracy"].to_numpy()
    lam = ts.progress(traj.predictions, store.labels)
    assert acc[-1] > acc[0] + 0.1 and acc[-1] > 0.9
    assert lam[-1] > lam[0] + 0.5
    assert traj.metrics["train_loss"].iloc[-1] < traj.metrics["train_loss"].iloc[1]
    # cross-entropy on the task's classes: the head has len(task) outputs
    payload = RunCheckpoints(default_root(store), run_id).load_model(150)
    assert payload["n_outputs"] == 10 and payload["network"]["head.weight"].shape[0] == 10


@pytest.mark.slow
@pytest.mark.parametrize("method", ["protonet", "simclr"])
def test_representation_learning_makes_progress(tmp_path, split, method):
    store = new_store(tmp_path / "s.zarr", split)
    config = {
        "protonet": {"steps": 80, "k_shot": 3, "n_query": 5, "n_records": 3},
        "simclr": {"steps": 60, "batch_size": 64, "n_records": 3},
    }[method]
    run_id = train_run(store, split, all_digits(split), method, config=config, progress=False)
    traj = store.trajectory(run_id)
    lam = ts.progress(traj.predictions, store.labels)
    assert lam[-1] > lam[0]
    if method == "protonet":
        assert traj.metrics["accuracy"].iloc[-1] > traj.metrics["accuracy"].iloc[0]


@pytest.mark.slow
def test_fixmatch_learns_from_few_labels(tmp_path, split):
    store = new_store(tmp_path / "s.zarr", split)
    run_id = train_run(
        store,
        split,
        all_digits(split),
        "fixmatch",
        config={
            "steps": 60,
            "lr": 0.1,
            "batch_size": 16,
            "mu": 2,
            "labels_per_class": 5,
            "threshold": 0.8,
            "n_records": 3,
        },
        progress=False,
    )
    traj = store.trajectory(run_id)
    lam = ts.progress(traj.predictions, store.labels)
    assert lam[-1] > lam[0]
    loss = traj.metrics["train_loss"].to_numpy()
    assert loss[-1] < loss[1]
    assert "train_mask_rate" in traj.metrics


@pytest.mark.slow
@pytest.mark.parametrize("method", list(QUICK))
def test_deterministic_on_cpu(tmp_path, split, method):
    task = Task.from_classes([3, 5, 8, 9], split.class_names)
    config = {**QUICK[method], "seed": 3}
    if method == "supervised":
        config["augment"] = True
    runs = []
    for name in ("a", "b"):
        store = new_store(tmp_path / f"{name}.zarr", split)
        runs.append(
            store.trajectory(train_run(store, split, task, method, config=config, progress=False))
        )
    np.testing.assert_array_equal(runs[0].predictions, runs[1].predictions)
    np.testing.assert_array_equal(runs[0].metrics["train_loss"], runs[1].metrics["train_loss"])
    assert runs[0].run_id == runs[1].run_id  # same call, same run id
    # another seed is another run
    store = new_store(tmp_path / "c.zarr", split)
    other = store.trajectory(
        train_run(store, split, task, method, config={**config, "seed": 4}, progress=False)
    )
    assert other.run_id != runs[0].run_id
    assert not np.array_equal(other.predictions[-1], runs[0].predictions[-1])


def test_finished_run_does_nothing(tmp_path, split):
    store = new_store(tmp_path / "s.zarr", split)
    task = all_digits(split)
    run_id = train_run(store, split, task, config=QUICK["supervised"], progress=False)
    before = store.trajectory(run_id)
    again = train_run(store, split, task, config=QUICK["supervised"], progress=False)
    after = store.trajectory(again)
    assert again == run_id and len(store.run_ids) == 1
    np.testing.assert_array_equal(before.metrics["wall_time"], after.metrics["wall_time"])
    # the same run id with another setup is refused
    with pytest.raises(ValueError, match=r"different setup.*config\.lr"):
        train_run(
            store,
            split,
            task,
            config={**QUICK["supervised"], "lr": 0.2},
            run_id=run_id,
            progress=False,
        )


@pytest.mark.slow
def test_finetune_records_parent_and_starts_from_it(tmp_path, split):
    store = new_store(tmp_path / "s.zarr", split)
    parent = train_run(
        store,
        split,
        Task.from_classes(range(5), split.class_names, name="0-4"),
        config=QUICK["supervised"],
        progress=False,
    )
    parent_traj = store.trajectory(parent)
    step = int(parent_traj.steps[-2])
    task = Task.from_classes(range(5, 10), split.class_names, name="5-9")
    child = train_run(
        store,
        split,
        task,
        "finetune",
        parent=parent,
        parent_step=step,
        config={"steps": 20, "n_records": 3},
        progress=False,
    )
    traj = store.trajectory(child)
    assert traj.info["parent_run"] == parent and traj.info["parent_step"] == step
    assert traj.info["network"] == parent_traj.info["network"]
    runs = store.runs(per="run").set_index("run_id")
    assert runs.loc[child, "parent_run"] == parent
    # step 0 of the child is the parent's representation at that step, imprinted again
    np.testing.assert_array_equal(traj.predictions[0], parent_traj.predictions[-2])
    assert not np.array_equal(traj.predictions[-1], traj.predictions[0])
    payload = RunCheckpoints(default_root(store), child).load_model(20)
    assert payload["n_outputs"] == 5
    # head only: the body does not move, so the imprinted predictions do not either
    frozen = train_run(
        store,
        split,
        task,
        "finetune",
        parent=parent,
        parent_step=step,
        config={"steps": 10, "n_records": 2, "head_only": True, "lr": 0.5},
        progress=False,
    )
    ft = store.trajectory(frozen)
    np.testing.assert_array_equal(ft.predictions[-1], ft.predictions[0])
    assert ft.metrics["train_loss"].iloc[-1] > 0
    # default step: the parent's last record
    last = train_run(
        store,
        split,
        task,
        "finetune",
        parent=parent,
        config={"steps": 5, "n_records": 2},
        progress=False,
    )
    assert store.trajectory(last).info["parent_step"] == int(parent_traj.steps[-1])


def test_finetune_errors(tmp_path, split):
    store = new_store(tmp_path / "s.zarr", split)
    task = all_digits(split)
    with pytest.raises(ValueError, match="parent run 'nope' does not exist"):
        train_run(store, split, task, "finetune", parent="nope", progress=False)
    with pytest.raises(ValueError, match="needs a parent run"):
        train_run(store, split, task, "finetune", progress=False)
    parent = train_run(
        store, split, task, config={**QUICK["supervised"], "keep_models": "last"}, progress=False
    )
    with pytest.raises(ValueError, match="has no record at step 3"):
        train_run(store, split, task, "finetune", parent=parent, parent_step=3, progress=False)
    with pytest.raises(ValueError, match=r"no model checkpoint at step 0.*steps \[40\]"):
        train_run(store, split, task, "finetune", parent=parent, parent_step=0, progress=False)
    with pytest.raises(ValueError, match="differs from the fine-tuning parent's network"):
        train_run(store, split, task, "finetune", "small-cnn", parent=parent, progress=False)
    with pytest.raises(ValueError, match="only 'finetune' takes `parent`"):
        train_run(store, split, task, "supervised", parent=parent, progress=False)


def test_config_errors(tmp_path, split):
    store = new_store(tmp_path / "s.zarr", split)
    pair = Task.from_classes([1, 7], split.class_names)
    cases = [
        ("supervised", {"lr": 0}, "config key `lr`: Input should be greater than 0"),
        ("supervised", {"lr": -1.0}, "`lr`"),
        ("supervised", {"optimizer": "rmsprop"}, "allowed: 'sgd', 'adam' or 'adamw'"),
        ("supervised", {"lr_schedule": "poly"}, "allowed: 'constant', 'cosine' or 'step'"),
        ("supervised", {"weight_decay": -0.1}, "`weight_decay`"),
        ("supervised", {"batch_size": 0}, "`batch_size`"),
        ("supervised", {"batch_size": 2.5}, "`batch_size`"),
        ("supervised", {"epochs": 1, "steps": 5}, "`epochs` or `steps`, not both"),
        ("supervised", {"device": "tpu"}, "allowed: 'auto', 'cpu' or 'cuda'"),
        ("supervised", {"device": "cpu", "mixed_precision": "fp16"}, "needs a GPU"),
        ("supervised", {"n_way": 2}, "unknown config key `n_way` for method 'supervised'"),
        ("supervised", {"record_schedule": "cubic"}, "allowed: 'log' or 'linear', or list"),
        ("supervised", {"record_mode": "both"}, "allowed: 'imprint' or 'head'"),
        ("simclr", {"record_mode": "head"}, "needs a trained classification head"),
        ("fixmatch", {"threshold": 1.5}, "`threshold`"),
        ("bogus", {}, "unknown method 'bogus'; allowed: supervised, finetune"),
    ]
    for method, config, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            make_config(method, config)
        with pytest.raises(ValueError, match=re.escape(message)):
            train_run(store, split, pair, method, config=config, progress=False)
    with pytest.raises(ValueError, match=r"protonet n_way=5 but task .* has only 2 classes"):
        train_run(store, split, pair, "protonet", config={"n_way": 5}, progress=False)
    with pytest.raises(ValueError, match=r"k_shot \+ n_query = 5 \+ 200"):
        train_run(
            store, split, pair, "protonet", config={"k_shot": 5, "n_query": 200}, progress=False
        )
    with pytest.raises(ValueError, match=r"labels_per_class=500 .* leaves none unlabelled"):
        train_run(store, split, pair, "fixmatch", config={"labels_per_class": 500}, progress=False)
    with pytest.raises(ValueError, match="head over the whole label space"):
        train_run(store, split, pair, "supervised", config={"record_mode": "head"}, progress=False)
    with pytest.raises(ValueError, match="step 99 is past the run's last step 10"):
        train_run(
            store, split, pair, config={"steps": 10, "record_schedule": [0, 99]}, progress=False
        )
    with pytest.raises(ValueError, match="unknown network 'vgg'"):
        train_run(store, split, pair, "supervised", "vgg", progress=False)
    assert store.run_ids == []  # nothing was created by a config that cannot work


def test_progress_bar(tmp_path, split, capsys):
    store = new_store(tmp_path / "s.zarr", split)
    train_run(store, split, all_digits(split), config=QUICK["supervised"], progress=True)
    out = capsys.readouterr().out
    assert "supervised · all" in out and "40/40" in out
    assert "loss" in out and "acc" in out and "probe" in out and "eta" in out
    train_run(
        store, split, all_digits(split), config={**QUICK["supervised"], "seed": 1}, progress=False
    )
    assert capsys.readouterr().out == ""


def test_head_mode_on_all_classes(tmp_path, split):
    store = new_store(tmp_path / "s.zarr", split)
    run_id = train_run(
        store,
        split,
        all_digits(split),
        "supervised",
        config={**QUICK["supervised"], "record_mode": "head"},
        progress=False,
    )
    traj = store.trajectory(run_id)
    assert (traj.metrics["mode"] == "head").all()
    assert traj.metrics["accuracy"].iloc[-1] > 0.5


def test_epochs_store_path_and_divergence(tmp_path, split):
    new_store(tmp_path / "s.zarr", split)
    task = Task.from_classes([0, 1], split.class_names)
    # 0.5 epoch of the task's ~ 290 training samples in batches of 32: ceil(0.5 * 10) = 5 steps
    run_id = train_run(
        tmp_path / "s.zarr",
        split,
        task,
        config={"epochs": 0.5, "batch_size": 32, "n_records": 2},
        progress=False,
    )
    store = ts.Store.open(tmp_path / "s.zarr")
    n = int(np.isin(split.train().labels, [0, 1]).sum())
    assert store.trajectory(run_id).steps[-1] == math.ceil(0.5 * math.ceil(n / 32))
    with pytest.raises(RuntimeError, match=r"training diverged.*lower the learning rate"):
        train_run(
            tmp_path / "s.zarr",
            split,
            task,
            config={
                "steps": 30,
                "lr": 1e6,
                "momentum": 0.0,
                "lr_schedule": "constant",
                "record_schedule": "linear",
                "n_records": 4,
            },
            progress=False,
        )


def test_device_auto_is_cpu_here():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert resolve_device("auto", "auto") == (torch.device("cpu"), None)
    assert resolve_device("auto", "fp16") == (torch.device("cpu"), None)
    # bf16 autocast runs on the CPU when asked for; "auto" keeps float32 there
    assert resolve_device("auto", "bf16") == (torch.device("cpu"), torch.bfloat16)
    assert resolve_device("cpu", "bf16") == (torch.device("cpu"), torch.bfloat16)
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda", "off")


def test_batch_stream_is_a_function_of_the_step():
    stream = BatchStream(10, 4, seed=1, purpose="x")
    batches = [stream.batch(t) for t in range(5)]
    flat = torch.cat(batches).tolist()
    # consecutive epochs are permutations of range(10), read off in order
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
    fresh = BatchStream(10, 4, seed=1, purpose="x")
    assert fresh.batch(3).tolist() == batches[3].tolist()
    assert BatchStream(10, 4, seed=2, purpose="x").batch(0).tolist() != batches[0].tolist()


def test_lr_schedules():
    def lrs(**kw):
        f = lr_factor(make_config("supervised", kw), 10)
        return [f(t) for t in range(10)]

    assert lrs(lr_schedule="constant") == [1.0] * 10
    cos = lrs(lr_schedule="cosine", warmup_steps=2)
    assert cos[:2] == [0.5, 1.0] and cos[2] == 1.0
    assert all(a > b for a, b in itertools.pairwise(cos[2:]))
    assert cos[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert (
        lrs(lr_schedule="step", lr_step_every=4, lr_gamma=0.5) == [1.0] * 4 + [0.5] * 4 + [0.25] * 2
    )


def test_bf16_autocast_trains_on_the_cpu_and_records_float32(tmp_path, split):
    """`mixed_precision="bf16"` on the CPU: the forward pass runs in bfloat16 (the trajectory
    differs from float32's), the recorded predictions stay normalised float32 probabilities."""
    runs = {}
    for precision in ("off", "bf16"):
        store = new_store(tmp_path / precision, split)
        config = {"steps": 12, "device": "cpu", "mixed_precision": precision, "n_records": 3}
        rid = train_run(
            store, split, all_digits(split), "supervised", config=config, progress=False
        )
        runs[precision] = store.trajectory(rid).predictions
    off, bf16 = runs["off"], runs["bf16"]
    assert off.dtype == bf16.dtype == np.float32
    np.testing.assert_allclose(bf16.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(off[0], bf16[0])  # step 0: no training yet
    assert np.abs(off[-1] - bf16[-1]).max() > 0  # bf16 changed the trajectory
