"""The Lightning RecorderCallback on real tiny training runs (an MLP with dropout on the 8×8
digits): records at the scheduled global steps, in eval mode under no_grad, restores the mode,
matches a recomputation from the saved checkpoint, and continues a resumed fit."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

import taskspace as ts  # noqa: E402
from taskspace.data import load_dataset, make_splits  # noqa: E402
from taskspace.integrations.lightning import RecorderCallback  # noqa: E402
from taskspace.record import checkpoint_schedule, class_prototypes, imprint  # noqa: E402
from taskspace.tasks import Task  # noqa: E402


class DigitsMLP(pl.LightningModule):
    def __init__(self, n_classes=5, hidden=32, lr=0.2, task="0-4", seed=3):
        super().__init__()
        self.save_hyperparameters()
        # dropout: predictions differ between train and eval mode, so the test sees which one
        # was recorded
        self.body = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.5)
        )
        self.head = torch.nn.Linear(hidden, n_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


@pytest.fixture(scope="module")
def digits():
    split = make_splits(
        load_dataset("digits", "train"), load_dataset("digits", "test"), n_imprint=100, seed=0
    )

    def tensor(d):
        return torch.as_tensor(d.float_images(dtype=np.float32)).reshape(len(d), -1)

    train, imp, probe = split.train(), split.imprint(), split.probe()
    task = Task.from_classes([0, 1, 2, 3, 4], split.class_names, name="0-4")
    mask, y = task.relabel(train.labels)
    data = torch.utils.data.TensorDataset(tensor(train)[torch.as_tensor(mask)], torch.as_tensor(y))
    return SimpleNamespace(
        split=split,
        task=task,
        data=data,
        probe=(tensor(probe), probe.labels),
        imprint=(tensor(imp), imp.labels),
    )


def make_trainer(tmp_path, callbacks, **kwargs):
    kwargs = {
        "max_steps": 24,
        "devices": 1,
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": str(tmp_path),
        **kwargs,
    }
    return pl.Trainer(callbacks=callbacks, **kwargs)


def loader(digits, seed=0):
    return torch.utils.data.DataLoader(
        digits.data, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )


class ModeSpy(pl.Callback):
    """Runs after the recorder on every batch: the module must be back in training mode."""

    def __init__(self):
        self.modes = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.modes.append(pl_module.training)


def imprinted(module, digits):
    module.eval()
    with torch.no_grad():
        f_probe = module.features(digits.probe[0]).double().numpy()
        f_imp = module.features(digits.imprint[0]).double().numpy()
    return imprint(f_probe, class_prototypes(f_imp, digits.imprint[1], 10))


@pytest.mark.slow
def test_records_a_fit_and_matches_the_saved_model(tmp_path, digits):
    torch.manual_seed(0)
    probe = digits.split.probe()
    store = ts.Store.create(tmp_path / "s.zarr", probe.labels, digits.split.class_names)
    seen = []

    def representation(module, x):
        seen.append((torch.is_grad_enabled(), module.training))
        return module.features(x)

    rec = RecorderCallback(
        str(tmp_path / "s.zarr"),
        probe=digits.probe,
        imprint=digits.imprint,
        schedule="log",
        n_records=6,
        representation=representation,
        classes=list(digits.task.classes),
    )
    spy = ModeSpy()
    module = DigitsMLP()
    trainer = make_trainer(tmp_path, [rec, spy])
    trainer.fit(module, loader(digits))
    trainer.save_checkpoint(tmp_path / "final.ckpt")

    traj = store.trajectory(rec.run_id)
    np.testing.assert_array_equal(traj.steps, checkpoint_schedule(24, "log", 6))
    assert seen and all(grad is False and training is False for grad, training in seen)
    assert spy.modes and all(spy.modes)  # restored after every record
    saved = DigitsMLP.load_from_checkpoint(tmp_path / "final.ckpt")
    np.testing.assert_allclose(traj.predictions[-1], imprinted(saved, digits), atol=1e-6)
    assert (traj.metrics["mode"] == "imprint").all()
    info = store.run_info(rec.run_id)
    assert (info["task"], info["seed"], info["method"], info["network"]) == (
        "0-4",
        3,
        "supervised",
        "DigitsMLP",
    )  # task and seed from hparams
    assert info["classes"] == [digits.split.class_names[c] for c in digits.task.classes]
    assert info["config"]["hparams"] == {
        "n_classes": 5,
        "hidden": 32,
        "lr": 0.2,
        "task": "0-4",
        "seed": 3,
    }
    assert info["config"]["framework"].startswith("lightning ")
    lam = ts.progress(traj.predictions, probe.labels)
    assert lam[-1] > lam[0]  # it learned something


def test_head_mode_gradient_accumulation_and_explicit_steps(tmp_path, digits):
    torch.manual_seed(1)
    probe = digits.split.probe()
    store = ts.Store.create(tmp_path / "s.zarr", probe.labels, digits.split.class_names)
    rec = RecorderCallback(
        store, probe=digits.probe, schedule=[0, 3, 5, 10, 99], task="all", method="sgd", seed=7
    )
    module = DigitsMLP(n_classes=10)
    trainer = make_trainer(tmp_path, [rec], max_steps=10, accumulate_grad_batches=2)
    trainer.fit(module, loader(digits))
    traj = store.trajectory(rec.run_id)
    assert traj.steps.tolist() == [0, 3, 5, 10]  # each step once, though 2 batches
    module.eval()
    with torch.no_grad():
        expected = torch.softmax(module(digits.probe[0]).double(), 1).numpy()
    np.testing.assert_allclose(traj.predictions[-1], expected, atol=1e-6)
    assert (traj.metrics["mode"] == "head").all()
    assert store.run_info(rec.run_id)["seed"] == 7  # given beats hparams


def test_a_resumed_fit_continues_the_run(tmp_path, digits):
    torch.manual_seed(2)
    probe = digits.split.probe()
    store = ts.Store.create(tmp_path / "s.zarr", probe.labels, digits.split.class_names)
    schedule = [0, 4, 8, 12, 16]
    first = RecorderCallback(store, probe=digits.probe, imprint=digits.imprint, schedule=schedule)
    trainer = make_trainer(tmp_path, [first], max_steps=8)
    trainer.fit(DigitsMLP(), loader(digits))
    trainer.save_checkpoint(tmp_path / "half.ckpt")
    again = RecorderCallback(store, probe=digits.probe, imprint=digits.imprint, schedule=schedule)
    trainer = make_trainer(tmp_path, [again], max_steps=16)
    trainer.fit(DigitsMLP(), loader(digits), ckpt_path=tmp_path / "half.ckpt")
    assert again.run_id == first.run_id and store.run_ids == [first.run_id]
    assert store.steps(first.run_id) == schedule


def test_does_nothing_off_rank_zero_and_validates(tmp_path, digits):
    probe = digits.split.probe()
    store = ts.Store.create(tmp_path / "s.zarr", probe.labels, digits.split.class_names)
    rec = RecorderCallback(store, probe=digits.probe, imprint=digits.imprint, task="t")
    worker = SimpleNamespace(is_global_zero=False, global_step=0, current_epoch=0, max_steps=10)
    module = DigitsMLP()
    rec.on_train_start(worker, module)
    rec.on_train_batch_end(worker, module, None, None, 0)
    rec.on_train_end(worker, module)
    assert store.run_ids == [] and rec.run_id is None
    with pytest.raises(ValueError, match="unknown `schedule` 'every'"):
        RecorderCallback(store, probe=digits.probe, schedule="every")
    with pytest.raises(ValueError, match="`probe` must be \\(inputs, labels\\)"):
        RecorderCallback(store, probe=digits.probe[0])
    unnamed = RecorderCallback(store, probe=digits.probe, imprint=digits.imprint)
    with pytest.raises(ValueError, match="name the task"):
        make_trainer(tmp_path, [unnamed], max_steps=2).fit(
            DigitsMLP(n_classes=5, task=None), loader(digits)
        )
    endless = RecorderCallback(store, probe=digits.probe, task="t")
    with pytest.raises(ValueError, match="needs the run's total number of steps"):
        make_trainer(tmp_path, [endless], max_steps=-1, max_epochs=-1).fit(
            DigitsMLP(n_classes=10), loader(digits)
        )


@pytest.mark.slow
def test_importing_taskspace_imports_no_framework():
    code = (
        "import sys, taskspace, taskspace.integrations, taskspace.store, taskspace.geometry;"
        "bad = [m for m in ('lightning', 'pytorch_lightning', 'transformers') "
        "if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_two_process_ddp_records_once(tmp_path, digits):
    # A real multi-process run (gloo on CPU): only global rank 0 writes, and its records are
    # the schedule, once each.
    probe = digits.split.probe()
    path = tmp_path / "s.zarr"
    ts.Store.create(path, probe.labels, digits.split.class_names)
    rec = RecorderCallback(
        str(path), probe=digits.probe, imprint=digits.imprint, schedule=[0, 2, 4], run_id="ddp-run"
    )
    trainer = make_trainer(tmp_path, [rec], max_steps=4, devices=2, strategy="ddp_fork")
    trainer.fit(DigitsMLP(), loader(digits))
    store = ts.Store.open(path)
    assert store.run_ids == ["ddp-run"]
    assert store.steps("ddp-run") == [0, 2, 4]
