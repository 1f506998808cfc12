"""The transformers RecorderCallback on a real tiny Trainer run: a randomly initialised BERT built
from a config (no download) learns which token group a padded sequence is drawn from; records at
the scheduled global steps in eval mode, match a recomputation from the saved model (imprinted
from the masked mean of the last hidden state, or the model's own logits)."""

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # transformers.Trainer needs it

import taskspace as ts  # noqa: E402
from taskspace.integrations.transformers import RecorderCallback, hidden_state  # noqa: E402
from taskspace.record import checkpoint_schedule, class_prototypes, imprint  # noqa: E402

C, LENGTH, VOCAB = 4, 10, 4 + 4 * 6  # tokens 0-3 special, then 6 per class


def sequences(n, seed):
    """Padded token sequences whose label is the token group most of their tokens come from."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % C
    ids = np.zeros((n, LENGTH), dtype=np.int64)
    mask = np.zeros((n, LENGTH), dtype=np.int64)
    for i, y in enumerate(labels):
        k = rng.integers(4, LENGTH + 1)  # real length; the rest is padding
        own = 4 + 6 * y + rng.integers(0, 6, k)
        noise = rng.integers(4, VOCAB, k)
        ids[i, :k] = np.where(rng.random(k) < 0.7, own, noise)
        mask[i, :k] = 1
    return {"input_ids": torch.as_tensor(ids), "attention_mask": torch.as_tensor(mask)}, labels


class Dataset(torch.utils.data.Dataset):
    def __init__(self, inputs, labels):
        self.inputs, self.labels = inputs, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {
            "input_ids": self.inputs["input_ids"][i],
            "attention_mask": self.inputs["attention_mask"][i],
            "labels": int(self.labels[i]),
        }


def tiny_bert(seed=0):
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=LENGTH,
        num_labels=C,
    )
    return transformers.BertForSequenceClassification(config)


def train(tmp_path, callback, max_steps=20, **kwargs):
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=max_steps,
        per_device_train_batch_size=16,
        learning_rate=3e-3,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        seed=11,
        dataloader_num_workers=0,
        **kwargs,
    )
    model = tiny_bert()
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=Dataset(*sequences(256, seed=1)), callbacks=[callback]
    )
    trainer.train()
    trainer.save_model(str(tmp_path / "model"))
    return model


@pytest.fixture
def sets():
    probe, probe_y = sequences(60, seed=2)
    imp, imp_y = sequences(40, seed=3)
    return (probe, probe_y), (imp, imp_y)


@pytest.mark.slow
def test_trainer_run_imprinted_and_recomputed(tmp_path, sets):
    (probe, probe_y), (imp, imp_y) = sets
    store = ts.Store.create(tmp_path / "s.zarr", probe_y, ["a", "b", "c", "d"])
    modes = []

    def rep(model, x):
        modes.append((model.training, torch.is_grad_enabled()))
        return hidden_state(model, x)

    cb = RecorderCallback(
        store,
        probe=(probe, probe_y),
        imprint=(imp, imp_y),
        schedule="log",
        n_records=5,
        task="groups",
        representation=rep,
    )
    model = train(tmp_path, cb)
    assert model.training  # the Trainer's mode, restored
    assert modes and set(modes) == {(False, False)}  # eval mode, no grad
    traj = store.trajectory(cb.run_id)
    np.testing.assert_array_equal(traj.steps, checkpoint_schedule(20, "log", 5))

    saved = transformers.BertForSequenceClassification.from_pretrained(str(tmp_path / "model"))
    saved.eval()
    with torch.no_grad():
        out = saved(**probe, output_hidden_states=True).hidden_states[-1].double()
        m = probe["attention_mask"].double().unsqueeze(-1)
        f_probe = ((out * m).sum(1) / m.sum(1)).numpy()  # the masked mean, written out
        f_imp = hidden_state(saved, imp).double().numpy()
    expected = imprint(f_probe, class_prototypes(f_imp, imp_y, C))
    np.testing.assert_allclose(traj.predictions[-1], expected, atol=1e-6)
    info = store.run_info(cb.run_id)
    assert (info["task"], info["seed"], info["network"]) == ("groups", 11, "bert")
    assert info["config"]["hparams"]["max_steps"] == 20
    assert info["config"]["hparams"]["learning_rate"] == 3e-3
    lam = ts.progress(traj.predictions, probe_y)
    assert lam[-1] > lam[0]


@pytest.mark.slow
def test_head_mode_with_gradient_accumulation(tmp_path, sets):
    (probe, probe_y), _ = sets
    store = ts.Store.create(tmp_path / "s.zarr", probe_y, ["a", "b", "c", "d"])
    cb = RecorderCallback(
        str(tmp_path / "s.zarr"),
        probe=(probe, probe_y),
        schedule=[0, 2, 5, 6, 50],
        task="groups",
        method="finetune",
        seed=4,
    )
    train(tmp_path, cb, max_steps=6, gradient_accumulation_steps=2)
    traj = store.trajectory(cb.run_id)
    assert traj.steps.tolist() == [0, 2, 5, 6]
    saved = transformers.BertForSequenceClassification.from_pretrained(str(tmp_path / "model"))
    saved.eval()
    with torch.no_grad():
        expected = torch.softmax(saved(**probe).logits.double(), 1).numpy()
    np.testing.assert_allclose(traj.predictions[-1], expected, atol=1e-6)
    assert (traj.metrics["mode"] == "head").all()
    assert store.run_info(cb.run_id)["seed"] == 4


def test_only_the_main_process_records(tmp_path, sets):
    (probe, probe_y), (imp, imp_y) = sets
    store = ts.Store.create(tmp_path / "s.zarr", probe_y, ["a", "b", "c", "d"])
    cb = RecorderCallback(store, probe=(probe, probe_y), imprint=(imp, imp_y), task="t")
    state = transformers.TrainerState(is_world_process_zero=False, max_steps=10)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    control = transformers.TrainerControl()
    cb.on_train_begin(args, state, control, model=tiny_bert())
    cb.on_step_end(args, state, control)
    assert store.run_ids == [] and cb.run_id is None


def test_a_model_without_hidden_states_needs_a_representation(sets):
    (probe, _), _ = sets

    class Plain(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, **kwargs):
            return transformers.modeling_outputs.SequenceClassifierOutput(
                logits=torch.zeros(len(input_ids), C)
            )

    with pytest.raises(ValueError, match="returns no hidden states: pass representation="):
        hidden_state(Plain(), probe)
