"""Log recorded runs to TensorBoard (extra ``tensorboard``): see
:mod:`taskspace.integrations.trackers` for what is logged.

>>> from taskspace.integrations.tensorboard import TensorBoardTracker      # doctest: +SKIP
>>> rec = ts.Recorder(..., loggers=[TensorBoardTracker("tb/run0")])        # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from taskspace.integrations.trackers import PICTURE_COLUMNS, Tracker, picture_metadata

__all__ = ["TensorBoardTracker"]


def _summary_writer(log_dir):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch raises ImportError when tensorboard is missing
        raise ImportError(
            "logging to TensorBoard needs tensorboard: pip install 'taskspace[tensorboard]'"
        ) from exc
    return SummaryWriter(log_dir=str(log_dir))


class TensorBoardTracker(Tracker):
    """Write each record's numbers and the InPCA picture to TensorBoard event files.

    Parameters
    ----------
    target : path, ``torch.utils.tensorboard.SummaryWriter`` or Lightning ``TensorBoardLogger``
        A log directory (a writer is made for it, and closed at the end of the run), or a
        writer to write through (flushed, not closed).
    prefix, picture
        As in :class:`taskspace.integrations.trackers.Tracker`.

    Notes
    -----
    Scalars go to ``<prefix>/<name>`` at the training step; the picture to the projector as
    ``<prefix>/inpca`` (metadata columns model_id, run_id, task, method, seed, step) and its
    axes' ``<prefix>/inpca/explained_stress_<k>`` and ``<prefix>/inpca/eigenvalue_<k>``.
    """

    def __init__(self, target, prefix: str = "taskspace", picture: bool = True):
        super().__init__(prefix=prefix, picture=picture)
        self._target = target
        self._writer = None
        self._owned = isinstance(target, str | Path)
        if self._owned:
            self._writer = _summary_writer(target)

    @property
    def writer(self):
        """The SummaryWriter written to (a Lightning logger's is created on first use)."""
        if self._writer is None:
            target = self._target
            self._writer = (
                target.experiment if type(target).__name__ == "TensorBoardLogger" else target
            )
        return self._writer

    def log_scalars(self, values: dict, step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, global_step=step)

    def log_embedding(self, coordinates, meta, estimator, step: int) -> None:
        for k, (stress, value) in enumerate(
            zip(estimator.explained_stress_, estimator.eigenvalues_, strict=True), start=1
        ):
            self.writer.add_scalar(
                f"{self.prefix}/inpca/explained_stress_{k}", float(stress), global_step=step
            )
            self.writer.add_scalar(
                f"{self.prefix}/inpca/eigenvalue_{k}", float(value), global_step=step
            )
        self.writer.add_embedding(
            np.asarray(coordinates, dtype=np.float32),
            metadata=picture_metadata(meta),
            metadata_header=list(PICTURE_COLUMNS),
            tag=f"{self.prefix}/inpca",
            global_step=step,
        )
        self.writer.flush()

    def close(self) -> None:
        if self._writer is None:
            return
        if self._owned:
            self._writer.close()
        else:
            self._writer.flush()
