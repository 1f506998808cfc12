"""Any logger a researcher already has open, as a taskspace tracker; the InPCA picture on
demand (:func:`log_picture`, also ``taskspace.log_picture``)."""

from __future__ import annotations

import numpy as np

from taskspace.integrations.trackers import Tracker, fit_picture


def log_picture(store, logger, query=None, *, step: int = 0, n_components: int = 3, random_state=0):
    """Fit InPCA to the models of ``store`` that ``query`` selects and log the picture.

    Parameters
    ----------
    store : Store
        Open for appending (the fit reads and extends its distance cache).
    logger : Tracker, or what :func:`as_tracker` takes (a SummaryWriter, a wandb run, a
        Lightning TensorBoardLogger or WandbLogger)
    query : str, dict, callable or None
        As in ``Store.collection``; default every model.
    step : int
        The global step the picture is logged at.
    n_components : int
        Axes of the fit (at most M − 1 of M models).

    Returns
    -------
    StoreEmbedding
        The fit (``taskspace.embedding.embed_store``): dense InPCA up to ``PICTURE_DENSE_MAX``
        models, landmark InPCA on that many landmarks above.
    """
    tracker = as_tracker(logger)
    fit, meta = fit_picture(store, query, n_components=n_components, random_state=random_state)
    tracker.log_embedding(np.asarray(fit.estimator.embedding_), meta, fit.estimator, int(step))
    return fit


def as_tracker(logger) -> Tracker:
    """A :class:`Tracker` for ``logger``: itself if it is one; a ``TensorBoardTracker`` for a
    ``torch.utils.tensorboard.SummaryWriter`` or a Lightning ``TensorBoardLogger``; a
    ``WandbTracker`` for a wandb run or a Lightning ``WandbLogger``."""
    if isinstance(logger, Tracker):
        return logger
    kind = type(logger).__name__
    if kind == "TensorBoardLogger" or hasattr(logger, "add_embedding"):
        from taskspace.integrations.tensorboard import TensorBoardTracker

        return TensorBoardTracker(logger)
    if kind == "WandbLogger" or (hasattr(logger, "log") and hasattr(logger, "define_metric")):
        from taskspace.integrations.wandb import WandbTracker

        return WandbTracker(logger)
    raise TypeError(
        f"cannot log to a {kind}: give a taskspace tracker "
        "(taskspace.integrations.tensorboard.TensorBoardTracker, "
        "taskspace.integrations.wandb.WandbTracker), a SummaryWriter, a wandb run "
        "or a Lightning TensorBoardLogger or WandbLogger"
    )
