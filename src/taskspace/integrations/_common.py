"""What the framework callbacks share, free of any framework: the run's metadata, the schedule and
a :class:`taskspace.Recorder` that records each scheduled global step once."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from taskspace.integrations.loggers import as_tracker
from taskspace.record import Recorder, checkpoint_schedule

SCHEDULE_KINDS = ("log", "linear")


class RecordingSession:
    """Record one training run of a framework's trainer into a store (rank 0 only).

    The callbacks translate their framework's hooks into :meth:`begin` (training starts: the
    model, the run's total and current step, its hyperparameters) and :meth:`step` (after an
    optimizer step). Parameters are those of the callbacks (see their docstrings).
    """

    def __init__(
        self,
        store,
        *,
        probe,
        imprint=None,
        schedule="log",
        n_records=20,
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
        batch_size=512,
        loggers=(),
    ):
        if isinstance(schedule, str):
            if schedule not in SCHEDULE_KINDS:
                raise ValueError(
                    f"unknown `schedule` {schedule!r}; choose 'log', 'linear' or a "
                    "list of global steps"
                )
            if n_records < 2:
                raise ValueError(f"`n_records` must be ≥ 2, got {n_records}")
        else:
            steps = np.asarray(schedule)
            if (
                steps.ndim != 1
                or steps.size == 0
                or steps.dtype.kind not in "iu"
                or steps.min() < 0
            ):
                raise ValueError(
                    "`schedule` must be 'log', 'linear' or a non-empty list of global steps ≥ 0"
                )
        if not (isinstance(probe, Sequence) and len(probe) == 2):
            raise ValueError("`probe` must be (inputs, labels)")
        if imprint is not None and not (isinstance(imprint, Sequence) and len(imprint) == 2):
            raise ValueError("`imprint` must be (inputs, labels), or None for head mode")
        self.store = store
        self.probe, self.imprint = probe, imprint
        self.mode = "head" if imprint is None else "imprint"
        self.schedule, self.n_records = schedule, int(n_records)
        self.representation, self.layer, self.head = representation, layer, head
        self.run_id, self.batch_size = run_id, batch_size
        self.meta = {
            "task": task,
            "classes": classes,
            "method": method,
            "seed": seed,
            "network": network,
            "dataset": dataset,
        }
        self.loggers = list(loggers)
        self.recorder: Recorder | None = None
        self.recorded: set[int] = set()

    def steps(self, total_steps) -> np.ndarray:
        """The global steps to record at, for a run of ``total_steps`` optimizer steps."""
        if not isinstance(self.schedule, str):
            return np.unique(np.asarray(self.schedule, dtype=np.int64))
        if total_steps is None or not math.isfinite(total_steps) or total_steps < 1:
            raise ValueError(
                f"schedule={self.schedule!r} needs the run's total number of steps, "
                f"and the trainer reports {total_steps}: set max_steps (or "
                "max_epochs), or give the schedule as a list of global steps"
            )
        return checkpoint_schedule(int(total_steps), self.schedule, self.n_records)

    def begin(
        self,
        model,
        *,
        total_steps,
        step: int,
        epoch=None,
        hparams=None,
        defaults=None,
        framework: str = "",
    ) -> None:
        """Open the store, create the run (or continue the run ``run_id`` already names) and
        record ``step`` if it is scheduled.

        ``hparams`` go into the run's config; ``task``, ``method``, ``seed``, ``classes``,
        ``network`` and ``dataset`` not given to the callback are taken from ``hparams`` of
        those names, then from ``defaults``.
        """
        from taskspace.store import Store

        store = (
            self.store if isinstance(self.store, Store) else Store.open(Path(self.store), mode="a")
        )
        hparams = jsonable(dict(hparams or {}))
        defaults = defaults or {}
        meta = {
            k: next((c for c in (v, hparams.get(k), defaults.get(k)) if c is not None), None)
            for k, v in self.meta.items()
        }
        if not meta["task"]:
            raise ValueError(
                "name the task: RecorderCallback(..., task='...'), or an hparam 'task'"
            )
        meta["method"] = meta["method"] or "supervised"
        if meta["seed"] is not None:
            meta["seed"] = int(meta["seed"])
        if self.run_id is not None and self.run_id in store.run_ids:
            self.recorded = set(store.steps(self.run_id))  # continuing: each step once
        else:
            config = {"hparams": hparams, "framework": framework, "record_mode": self.mode}
            self.run_id = store.add_run(self.run_id, **meta, config=config)
            self.recorded = set()
        self.store = store
        self.recorder = Recorder(
            store,
            self.run_id,
            model=model,
            probe=self.probe,
            imprint=self.imprint,
            representation=self.representation,
            layer=self.layer,
            head=self.head,
            mode=self.mode,
            schedule=self.steps(total_steps),
            batch_size=self.batch_size,
            loggers=[as_tracker(lg) for lg in self.loggers],
        )
        self.step(step, epoch)

    def end(self, step: int, epoch=None) -> None:
        """Training ended: record ``step`` if scheduled; if the schedule stopped short (early
        stopping, an interrupted fit), tell the loggers the run ended all the same."""
        self.step(step, epoch)
        recorder = self.recorder
        if recorder is not None and not recorder.complete and recorder.last_step is not None:
            for logger in recorder.loggers:
                logger.on_run_end(self.store, self.run_id, recorder.last_step)

    def step(self, step: int, epoch=None) -> bool:
        """Record the current model if ``step`` is scheduled and not yet recorded."""
        step = int(step)
        if self.recorder is None or step in self.recorded or not self.recorder.due(step):
            return False
        self.recorder.record(step, epoch=None if epoch is None else int(epoch))
        self.recorded.add(step)
        return True


def jsonable(value):
    """``value`` with everything JSON cannot hold made into strings (hyperparameters may hold
    classes, paths, enums, tensors): a record of them, not something to rebuild them from."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)
