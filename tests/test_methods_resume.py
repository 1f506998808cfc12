"""Resuming training runs: killed with SIGKILL, or crashed at the worst moments, a run started again
with the same call ends with exactly the records of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import taskspace as ts  # noqa: E402
from taskspace.data import load_dataset, make_splits  # noqa: E402
from taskspace.methods import get_method, train_run  # noqa: E402
from taskspace.methods._checkpoint import RunCheckpoints, default_root  # noqa: E402
from taskspace.tasks import Task  # noqa: E402

# Momentum, a cosine schedule and augmentation: resuming must restore all of them exactly.
KILL_CONFIG = {
    "steps": 120,
    "lr": 0.1,
    "batch_size": 32,
    "augment": True,
    "record_schedule": "linear",
    "n_records": 13,
    "checkpoint_interval_s": 0.0,
}

CONFIGS = {
    "supervised": {"steps": 24, "lr": 0.1, "batch_size": 16, "augment": True, "n_records": 5},
    "protonet": {"steps": 24, "k_shot": 2, "n_query": 3, "n_records": 5},
    "simclr": {"steps": 12, "batch_size": 16, "n_records": 4},
    "fixmatch": {"steps": 12, "batch_size": 8, "mu": 2, "labels_per_class": 4, "n_records": 4},
}

WORKER = """
import sys, time
import taskspace as ts
from taskspace.data import load_dataset, make_splits
from taskspace.methods import get_method, train_run
from taskspace.tasks import Task

store_path, delay = sys.argv[1], float(sys.argv[2])
config = eval(sys.argv[3])
# Bit-identical results need the same number of intra-op threads as the process that compares
# (an imported dask.distributed sets OMP_NUM_THREADS=1 in the environment it passes on).
import torch
torch.set_num_threads(int(sys.argv[4]))
if delay:   # slow every step down so that the test can kill the run in the middle
    cls = get_method("supervised")
    loss = cls.loss
    cls.loss = lambda self, *a: (time.sleep(delay), loss(self, *a))[1]
split = make_splits(load_dataset("digits", "train"), load_dataset("digits", "test"),
                    n_imprint=100, seed=0)
probe = split.probe()
store = ts.Store.create(store_path, probe.labels, split.class_names, probe_ids=probe.ids)
task = Task.from_classes([0, 2, 4, 6, 8], split.class_names, name="even")
print(train_run(store, split, task, "supervised", "mlp", config, progress=False), flush=True)
"""


@pytest.fixture(scope="module")
def split():
    return make_splits(
        load_dataset("digits", "train"), load_dataset("digits", "test"), n_imprint=100, seed=0
    )


def new_store(path, split):
    probe = split.probe()
    return ts.Store.create(path, probe.labels, split.class_names, probe_ids=probe.ids)


def assert_same_records(a, b):
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    columns = [c for c in a.metrics.columns if c not in ("wall_time", "model_id")]
    assert columns == [c for c in b.metrics.columns if c not in ("wall_time", "model_id")]
    for c in columns:
        np.testing.assert_array_equal(a.metrics[c].to_numpy(), b.metrics[c].to_numpy(), c)


def n_records(path) -> int:
    try:
        store = ts.Store.open(path)
        return sum(store.n_records(r) for r in store.run_ids)
    except (ValueError, FileNotFoundError):
        return 0


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_sigkill_then_same_command_equals_uninterrupted(tmp_path, split):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    path = tmp_path / "killed.zarr"

    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(path),
            "0.02",
            repr(KILL_CONFIG),
            str(torch.get_num_threads()),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while n_records(path) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = n_records(path)
    assert 4 <= killed_at < 13

    # the same call again (in this process: a fresh one would only add its start-up time)
    task = Task.from_classes([0, 2, 4, 6, 8], split.class_names, name="even")
    resumed = ts.Store.open(path, mode="a")
    run_id = train_run(resumed, split, task, "supervised", "mlp", KILL_CONFIG, progress=False)
    reference = new_store(tmp_path / "ref.zarr", split)
    assert (
        train_run(reference, split, task, "supervised", "mlp", KILL_CONFIG, progress=False)
        == run_id
    )
    assert resumed.run_ids == [run_id]
    assert_same_records(resumed.trajectory(run_id), reference.trajectory(run_id))
    ckpt = RunCheckpoints(default_root(resumed), run_id)
    assert ckpt.model_steps() == list(range(0, 121, 10)) and not ckpt.state_path.exists()


class Crash(Exception):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("method", list(CONFIGS))
def test_crash_after_append_before_state_save(tmp_path, split, monkeypatch, method):
    """The worst moment: a record is committed to the store but the resume state that follows it
    is not saved. Resuming replays from the previous state and must not append the record twice."""
    task = Task.from_classes([1, 3, 5, 7], split.class_names, name="odd")
    config = CONFIGS[method]
    reference = new_store(tmp_path / "ref.zarr", split)
    ref = reference.trajectory(
        train_run(reference, split, task, method, config=config, progress=False)
    )

    store = new_store(tmp_path / "s.zarr", split)
    save_state = RunCheckpoints.save_state
    calls = []

    def failing_save(self, state):
        calls.append(state["step"])
        if len(calls) == 3:  # after the third record's append
            raise Crash
        save_state(self, state)

    monkeypatch.setattr(RunCheckpoints, "save_state", failing_save)
    with pytest.raises(Crash):
        train_run(store, split, task, method, config=config, progress=False)
    monkeypatch.setattr(RunCheckpoints, "save_state", save_state)
    run_id = store.run_ids[0]
    assert store.n_records(run_id) == 3
    assert RunCheckpoints(default_root(store), run_id).load_state()["step"] == ref.steps[1]
    train_run(store, split, task, method, config=config, progress=False)
    assert_same_records(store.trajectory(run_id), ref)


@pytest.mark.slow
@pytest.mark.parametrize("method", list(CONFIGS))
def test_crash_between_records_resumes_from_timed_checkpoint(tmp_path, split, monkeypatch, method):
    """With checkpoint_interval_s > 0 the state is also saved between records (here: at every
    step); a crash in the middle resumes from there."""
    task = Task.from_classes([1, 3, 5, 7], split.class_names, name="odd")
    config = {**CONFIGS[method], "checkpoint_interval_s": 1e-9}
    reference = new_store(tmp_path / "ref.zarr", split)
    ref = reference.trajectory(
        train_run(reference, split, task, method, config=config, progress=False)
    )
    crash_at = config["steps"] - 3  # not a record step of the log schedule
    assert crash_at not in ref.steps
    cls = get_method(method)
    loss = cls.loss

    def crashing_loss(self, net, extra, step):
        if step == crash_at:
            raise Crash
        return loss(self, net, extra, step)

    store = new_store(tmp_path / "s.zarr", split)
    monkeypatch.setattr(cls, "loss", crashing_loss)
    with pytest.raises(Crash):
        train_run(store, split, task, method, config=config, progress=False)
    monkeypatch.setattr(cls, "loss", loss)
    run_id = store.run_ids[0]
    assert RunCheckpoints(default_root(store), run_id).load_state()["step"] == crash_at
    train_run(store, split, task, method, config=config, progress=False)
    assert_same_records(store.trajectory(run_id), ref)


@pytest.mark.slow
def test_small_cnn_resumes_exactly(tmp_path, split, monkeypatch):
    """Batch-norm statistics and channels-last weights survive the checkpoint too."""
    task = Task.from_classes([1, 3, 5, 7], split.class_names, name="odd")
    config = {
        **CONFIGS["supervised"],
        "network_options": {"width": 4},
        "checkpoint_interval_s": 1e-9,
    }
    reference = new_store(tmp_path / "ref.zarr", split)
    ref = reference.trajectory(
        train_run(reference, split, task, "supervised", "small-cnn", config, progress=False)
    )
    cls = get_method("supervised")
    loss = cls.loss

    def crashing_loss(self, net, extra, step):
        if step == 17:
            raise Crash
        return loss(self, net, extra, step)

    store = new_store(tmp_path / "s.zarr", split)
    monkeypatch.setattr(cls, "loss", crashing_loss)
    with pytest.raises(Crash):
        train_run(store, split, task, "supervised", "small-cnn", config, progress=False)
    monkeypatch.setattr(cls, "loss", loss)
    train_run(store, split, task, "supervised", "small-cnn", config, progress=False)
    assert_same_records(store.trajectory(store.run_ids[0]), ref)
    assert ref.info["network"] == "small-cnn"


def test_second_process_on_the_same_run_is_refused(tmp_path, split):
    store = new_store(tmp_path / "s.zarr", split)
    task = Task.from_classes([1, 3, 5, 7], split.class_names, name="odd")
    config = CONFIGS["supervised"]
    run_id = train_run(store, split, task, config=config, progress=False, run_id="held")
    ckpt = RunCheckpoints(default_root(store), run_id)
    with ckpt.lock() as acquired:
        assert acquired
        with pytest.raises(RuntimeError, match="being trained by another process"):
            train_run(store, split, task, config=config, progress=False, run_id="held")
