"""Log recorded runs to Weights & Biases (extra ``wandb``): see
:mod:`taskspace.integrations.trackers` for what is logged.

>>> from taskspace.integrations.wandb import WandbTracker                 # doctest: +SKIP
>>> rec = ts.Recorder(..., loggers=[WandbTracker(wandb.init(project="p"))])  # doctest: +SKIP

Offline (``WANDB_MODE=offline``) everything is written to the run's directory and synced later.
"""

from __future__ import annotations

import numpy as np

from taskspace.integrations.trackers import (
    PICTURE_COLUMNS,
    Tracker,
    picture_figure,
    picture_metadata,
)

__all__ = ["WandbTracker"]


def import_wandb():
    try:
        import wandb
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "logging to Weights & Biases needs wandb: pip install 'taskspace[wandb]'"
        ) from exc
    return wandb


class WandbTracker(Tracker):
    """Log each record's numbers and the InPCA picture to a W&B run.

    Parameters
    ----------
    run : wandb run, Lightning ``WandbLogger`` or None
        The run to log to; None: the active run (``wandb.run``), else one started with
        ``wandb.init(**init)`` and finished at the end of the recorded run.
    prefix, picture
        As in :class:`taskspace.integrations.trackers.Tracker`.
    **init
        Arguments of ``wandb.init`` when this tracker starts the run.

    Notes
    -----
    The scalars are logged against their own x-axis ``<prefix>/step`` (the training step, set
    with ``define_metric``), so they never compete with the steps of other logging into the same
    run (Lightning's, for one). The picture is ``<prefix>/inpca_table`` (a ``wandb.Table``:
    model_id, run_id, task, method, seed, step, axis_1..axis_k), ``<prefix>/inpca`` (the plotly
    3-D figure) and ``<prefix>/inpca/explained_stress_<k>``.
    """

    def __init__(self, run=None, prefix: str = "taskspace", picture: bool = True, **init):
        super().__init__(prefix=prefix, picture=picture)
        self._wandb = import_wandb()
        self._target, self._init = run, init
        self._run = None
        self._owned = False

    @property
    def run(self):
        """The wandb run logged to (started or taken on first use)."""
        if self._run is None:
            target = self._target
            if type(target).__name__ == "WandbLogger":
                target = target.experiment
            elif target is None:
                target = self._wandb.run
                if target is None:
                    target, self._owned = self._wandb.init(**self._init), True
            target.define_metric(f"{self.prefix}/step")
            target.define_metric(f"{self.prefix}/*", step_metric=f"{self.prefix}/step")
            self._run = target
        return self._run

    def log_scalars(self, values: dict, step: int) -> None:
        self.run.log({**values, f"{self.prefix}/step": int(step)})

    def log_embedding(self, coordinates, meta, estimator, step: int) -> None:
        wandb = self._wandb
        E = np.asarray(coordinates, dtype=np.float64)
        axes = [f"axis_{k + 1}" for k in range(E.shape[1])]
        rows = [
            [*text, *map(float, coords)]
            for text, coords in zip(picture_metadata(meta), E, strict=True)
        ]
        logged = {
            f"{self.prefix}/inpca_table": wandb.Table(columns=[*PICTURE_COLUMNS, *axes], data=rows),
            f"{self.prefix}/inpca": wandb.Plotly(picture_figure(E, meta, estimator)),
            f"{self.prefix}/step": int(step),
        }
        for k, stress in enumerate(estimator.explained_stress_, start=1):
            logged[f"{self.prefix}/inpca/explained_stress_{k}"] = float(stress)
        self.run.log(logged)

    def close(self) -> None:
        if self._owned and self._run is not None:
            self._run.finish()
            self._run, self._owned = None, False
