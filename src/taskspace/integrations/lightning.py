"""Record a PyTorch Lightning training run into a taskspace store (extra ``lightning``).

>>> from taskspace.integrations.lightning import RecorderCallback            # doctest: +SKIP
>>> trainer = lightning.Trainer(max_steps=500, callbacks=[
...     RecorderCallback("runs.zarr", probe=(x_probe, y_probe), imprint=(x_imp, y_imp),
...                      task="0-4", seed=0)])                                 # doctest: +SKIP

Importing this module imports ``lightning`` (or, without it, the standalone
``pytorch_lightning``, whose ``Trainer`` then takes this callback).
"""

from __future__ import annotations

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - depends on the environment
    try:
        import pytorch_lightning as pl
    except ImportError as exc:
        raise ImportError(
            "taskspace.integrations.lightning needs PyTorch Lightning: "
            "pip install 'taskspace[lightning]'"
        ) from exc

from taskspace.integrations._common import RecordingSession

__all__ = ["RecorderCallback"]


class RecorderCallback(pl.Callback):
    """Record the module's predictions on the probe set at scheduled global steps (SPEC §11, §13).

    At step 0 (when training starts) and after every optimizer step whose ``trainer.global_step``
    is on the schedule, the LightningModule is put in eval mode, its predictions on the probe set
    are computed under ``torch.no_grad()`` — imprinted from its representation when ``imprint``
    is given, else from its own head's softmax — appended to the store as one record, and its
    training mode is restored. Only the global-zero process records (the others do nothing), so
    it works under ``Trainer(devices=1)`` and in multi-process data-parallel runs (DDP), where
    every process holds the whole model; not with strategies that shard the parameters (FSDP,
    DeepSpeed stage 3).

    Parameters
    ----------
    store : Store or path
        An existing store (``Store.create``) on the probe set; a path is opened for appending
        when training starts, on the recording process only.
    probe : (x, y)
        Probe inputs in the module's input format (a tensor or array, or a dict of them) and
        labels (N,) over the whole label space, in the store's probe order.
    imprint : (x, y), optional
        The imprint set (every class of the label space present): record in imprint mode.
        Without it, head mode: the module's output must be logits over the whole label space.
    schedule : {"log", "linear"} or sequence of int
        Global steps to record at: a checkpoint schedule (SPEC §13) of ``n_records`` records over
        the run's total steps (``max_steps``, else Lightning's estimate from ``max_epochs``), or
        the steps themselves.
    representation : callable ``(module, x) -> features``, optional
        The representation ``f(x)`` for imprinting. Default ``module.features(x)``, or the output
        of the submodule ``layer``.
    layer : str, optional
        Name of the submodule whose output is the representation (read with a forward hook).
    head : callable ``(module, x) -> logits``, optional
        Logits for head mode; default ``module(x)``.
    run_id : str, optional
        The run's id; default generated. A run of this id already in the store is continued
        (a resumed fit): steps it holds are not recorded again.
    task, classes, method, seed, network, dataset : optional
        The run's metadata (``Store.add_run``). Not given: taken from the module's ``hparams``
        of the same names; ``method`` defaults to "supervised", ``network`` to the module's
        class name. ``task`` is required one way or the other.
    n_records : int
        Records of a "log" or "linear" schedule.
    batch_size : int
        Inference batch size.
    loggers : sequence, optional
        Where to log each record's progress, distances, length so far and probe metrics, and at
        the end of training the InPCA picture of the store's runs
        (:mod:`taskspace.integrations.trackers`): Lightning ``TensorBoardLogger`` or
        ``WandbLogger`` objects (the trainer's own), SummaryWriters, wandb runs or trackers.

    Attributes
    ----------
    run_id : str
        The run recorded into (set when training starts).

    Notes
    -----
    All of the module's ``hparams`` (``save_hyperparameters``) go into the run's config, as JSON
    (values JSON cannot hold as their ``str``).
    """

    def __init__(
        self,
        store,
        *,
        probe,
        imprint=None,
        schedule="log",
        representation=None,
        layer=None,
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
        super().__init__()
        self.session = RecordingSession(
            store,
            probe=probe,
            imprint=imprint,
            schedule=schedule,
            n_records=n_records,
            representation=representation,
            layer=layer,
            head=head,
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

    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        total = (
            trainer.max_steps
            if trainer.max_steps and trainer.max_steps > 0
            else trainer.estimated_stepping_batches
        )
        self.session.begin(
            pl_module,
            total_steps=total,
            step=trainer.global_step,
            epoch=trainer.current_epoch,
            hparams=pl_module.hparams,
            defaults={"network": type(pl_module).__name__},
            framework=f"lightning {pl.__version__}",
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # Called after every batch; with gradient accumulation global_step moves only every
        # k batches, and the session records each step once.
        if trainer.is_global_zero:
            self.session.step(trainer.global_step, trainer.current_epoch)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self.session.end(trainer.global_step, trainer.current_epoch)

    def state_dict(self) -> dict:
        # Saved in Lightning checkpoints: a fit resumed from one continues the same run.
        return {"run_id": self.session.run_id}

    def load_state_dict(self, state_dict) -> None:
        if self.session.run_id is None:
            self.session.run_id = state_dict.get("run_id")
