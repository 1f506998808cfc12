"""Record a Hugging Face ``transformers.Trainer`` run into a taskspace store (extra
``transformers``).

>>> from taskspace.integrations.transformers import RecorderCallback          # doctest: +SKIP
>>> trainer = transformers.Trainer(model, args, train_dataset=train, callbacks=[
...     RecorderCallback("runs.zarr", probe=(tokenizer(texts, padding=True), labels),
...                      imprint=(tokenizer(imp_texts, padding=True), imp_labels),
...                      task="sentiment")])                                   # doctest: +SKIP

Importing this module imports ``transformers``.
"""

from __future__ import annotations

from collections.abc import Mapping

try:
    import transformers
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "taskspace.integrations.transformers needs transformers: "
        "pip install 'taskspace[transformers]'"
    ) from exc

from taskspace.integrations._common import RecordingSession

__all__ = ["RecorderCallback", "hidden_state", "logits"]


def _call(model, x, **kwargs):
    if isinstance(x, Mapping):
        # the loss needs labels, the representation does not
        return model(**{k: v for k, v in x.items() if k != "labels"}, **kwargs)
    return model(x, **kwargs)


def hidden_state(model, x):
    """Default representation: the last hidden state, pooled over positions.

    ``model(**x, output_hidden_states=True)`` (``model(x, ...)`` for a tensor ``x``); of its last
    hidden state, a (B, L, h) sequence is averaged over the positions that ``x["attention_mask"]``
    keeps (all without a mask), a (B, h, H, W) feature map over its spatial axes, and anything
    else is flattened per sample.

    Returns
    -------
    torch.Tensor, shape (B, h)
    """
    out = _call(model, x, output_hidden_states=True)
    states = getattr(out, "hidden_states", None) or getattr(out, "encoder_hidden_states", None)
    if not states:
        raise ValueError(
            f"{type(model).__name__} returns no hidden states: pass "
            "representation=(model, x) -> features to RecorderCallback"
        )
    h = states[-1]
    if h.ndim == 3:
        mask = x.get("attention_mask") if isinstance(x, Mapping) else None
        if mask is None:
            return h.mean(dim=1)
        w = mask.to(h.dtype).unsqueeze(-1)
        return (h * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
    if h.ndim == 4:
        return h.mean(dim=(2, 3))
    return h.reshape(h.shape[0], -1)


def logits(model, x):
    """Default for head mode: ``model(**x).logits``, (B, C)."""
    out = _call(model, x)
    value = getattr(out, "logits", None)
    if value is None:
        raise ValueError(
            f"{type(model).__name__} returns no logits: pass head=(model, x) -> "
            "logits, or record in imprint mode (imprint=...)"
        )
    return value


class RecorderCallback(transformers.TrainerCallback):
    """Record the model's predictions on the probe set at scheduled global steps (SPEC §11, §13).

    When training starts (``state.global_step``, 0 for a fresh run) and after every optimizer
    step (``on_step_end``) whose global step is on the schedule, the model is put in eval mode,
    its predictions on the probe set are computed under ``torch.no_grad()`` — imprinted from its
    representation when ``imprint`` is given, else from its own logits — appended to the store
    as one record, and its training mode is restored. Only the main process
    (``state.is_world_process_zero``) records.

    Parameters
    ----------
    store : Store or path
        An existing store on the probe set; a path is opened for appending when training starts.
    probe : (x, y)
        Probe inputs as the model takes them — a dict of tensors such as a tokeniser's output
        (``input_ids``, ``attention_mask``; a ``labels`` entry is ignored), or one tensor — and
        labels (N,) over the whole label space, in the store's probe order.
    imprint : (x, y), optional
        The imprint set (every class of the label space present): record in imprint mode.
        Without it, head mode: the model's logits must span the whole label space.
    schedule : {"log", "linear"} or sequence of int
        Global steps to record at: a checkpoint schedule (SPEC §13) of ``n_records`` records over
        ``state.max_steps``, or the steps themselves.
    representation : callable ``(model, x) -> features``, optional
        The representation for imprinting, for models whose hidden state the default
        (:func:`hidden_state`) does not read well.
    head : callable ``(model, x) -> logits``, optional
        Logits for head mode; default :func:`logits`.
    run_id : str, optional
        The run's id; default generated (see :attr:`run_id`). To continue a run when training
        resumes (``trainer.train(resume_from_checkpoint=...)``), pass its id: a run of this id
        already in the store is continued, and steps it holds are not recorded again.
    task, classes, method, seed, network, dataset : optional
        The run's metadata (``Store.add_run``). Not given: ``seed`` is the
        ``TrainingArguments``' seed, ``network`` the model's ``config.model_type`` (else its
        class name), ``method`` "supervised"; ``task`` is required.
    n_records : int
        Records of a "log" or "linear" schedule.
    batch_size : int
        Inference batch size.
    loggers : sequence, optional
        Where to log each record's progress, distances, length so far and probe metrics, and at
        the end of training the InPCA picture of the store's runs
        (:mod:`taskspace.integrations.trackers`): SummaryWriters, wandb runs or trackers.

    Notes
    -----
    The run's config holds the ``TrainingArguments`` (``to_dict()``) as ``hparams``.
    """

    def __init__(
        self,
        store,
        *,
        probe,
        imprint=None,
        schedule="log",
        representation=None,
        head=None,
        run_id=None,
        task=None,
        classes=None,
        method=None,
        seed=None,
        network=None,
        dataset=None,
        n_records=20,
        batch_size=512,
        loggers=(),
    ):
        self.session = RecordingSession(
            store,
            probe=probe,
            imprint=imprint,
            schedule=schedule,
            n_records=n_records,
            representation=representation or hidden_state,
            head=head or logits,
            run_id=run_id,
            task=task,
            classes=classes,
            method=method,
            seed=seed,
            network=network,
            dataset=dataset,
            batch_size=batch_size,
            loggers=loggers,
        )

    @property
    def run_id(self):
        return self.session.run_id

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero:
            return
        config = getattr(model, "config", None)
        network = getattr(config, "model_type", None) or type(model).__name__
        self.session.begin(
            model,
            total_steps=state.max_steps,
            step=state.global_step,
            epoch=state.epoch,
            hparams=args.to_dict(),
            defaults={"seed": args.seed, "network": network},
            framework=f"transformers {transformers.__version__}",
        )

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.session.step(state.global_step, state.epoch)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.session.end(state.global_step, state.epoch)
