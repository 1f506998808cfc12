"""Log the geometry of recorded runs to TensorBoard or Weights & Biases (extras ``tensorboard``,
``wandb``).

A tracker is handed to :class:`taskspace.Recorder` or a ``RecorderCallback`` as
``loggers=[...]``. At each record it logs, under ``taskspace/``:

* ``progress``: the progress of the recorded model towards the truth (SPEC §5, uniform start);
* ``d_B_to_truth``: its Bhattacharyya distance to the one-hot truth on the probe labels;
* ``d_B_travelled``: ``d_B`` between the previous record of the run and this one;
* ``length``: the run's length so far, ``Σ 2 sqrt(d_B(P_t, P_{t+1}))`` (SPEC §6), equal to
  ``ts.length`` of the stored trajectory up to this record;
* ``probe_accuracy`` and ``probe_loss``.

The numbers are computed from the predictions as the store holds them (its dtype). When the run's
schedule is complete (or on demand, :func:`taskspace.log_picture`) it logs the InPCA picture of
the store's runs: for TensorBoard the explained stress and eigenvalue of each axis as scalars
plus the coordinates as an embedding (``add_embedding``) with model, run, task, method, seed and
step as metadata; for W&B a ``wandb.Table`` of the coordinates and metadata and the plotly 3-D
figure.

>>> from taskspace.integrations.tensorboard import TensorBoardTracker   # doctest: +SKIP
>>> rec = ts.Recorder(store, run_id, model=net, probe=probe, imprint=imprint,
...                   schedule=steps, loggers=[TensorBoardTracker("tb/run0")])  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from taskspace.embedding import embed_store
from taskspace.geometry import bhattacharyya, length, progress
from taskspace.geometry.inpca_picture import embedding_figure

#: Above this many models the picture is a landmark InPCA on this many landmarks.
PICTURE_DENSE_MAX = 2000
#: Columns of the picture's metadata (a column of ``Store.runs()`` each).
PICTURE_COLUMNS = ("model_id", "run_id", "task", "method", "seed", "step")


class Tracker:
    """Base of the trackers: the numbers of each record and the picture; subclasses write them.

    Parameters
    ----------
    prefix : str
        Tags are ``"<prefix>/<name>"``.
    picture : bool
        Log the InPCA picture of the store's runs when a run's schedule is complete.
    """

    def __init__(self, prefix: str = "taskspace", picture: bool = True):
        self.prefix = prefix
        self.picture = picture
        self._runs: dict[str, tuple[np.ndarray, float]] = {}

    # -- what subclasses write ------------------------------------------------------------------
    def log_scalars(self, values: dict, step: int) -> None:
        raise NotImplementedError

    def log_embedding(self, coordinates: np.ndarray, meta, estimator, step: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush what was logged."""

    # -- called by the Recorder -----------------------------------------------------------------
    def on_record(self, store, run_id: str, step: int, predictions, metrics: dict) -> dict:
        """Log the numbers of the record just appended (``predictions`` (N, C), as stored)."""
        values = self.record_values(store, run_id, predictions, metrics)
        self.log_scalars({f"{self.prefix}/{k}": v for k, v in values.items()}, int(step))
        return values

    def on_run_end(self, store, run_id: str, step: int) -> None:
        """The run's schedule is complete: log the picture (when ``picture``) and flush."""
        # A store of one model has no picture; that must not fail the training that ends here.
        if self.picture and sum(store.n_records(r) for r in store.run_ids) >= 2:
            fit, meta = fit_picture(store)
            self.log_embedding(np.asarray(fit.estimator.embedding_), meta, fit.estimator, step)
        self.close()

    def record_values(self, store, run_id: str, predictions, metrics: dict) -> dict:
        """progress, d_B_to_truth, d_B_travelled (from the second record on), length,
        probe_accuracy and probe_loss of one record."""
        P = np.asarray(predictions, dtype=np.float64)
        labels = store.labels
        truth = np.zeros_like(P)
        truth[np.arange(len(labels)), labels] = 1.0
        values = {
            "progress": float(progress(P, labels)),
            "d_B_to_truth": float(bhattacharyya(P, truth)),
        }
        previous = self._runs.get(run_id)
        if previous is None and store.n_records(run_id) > 1:
            # A resumed run, or a tracker added midway: its stored trajectory so far.
            stored = store.trajectory(run_id).predictions
            previous = (np.asarray(stored[-2], dtype=np.float64), float(length(stored[:-1])))
        run_length = 0.0
        if previous is not None:
            travelled = float(bhattacharyya(previous[0], P))
            run_length = previous[1] + 2.0 * np.sqrt(travelled)
            values["d_B_travelled"] = travelled
        values["length"] = run_length
        self._runs[run_id] = (P, run_length)
        for name, key in (("probe_accuracy", "accuracy"), ("probe_loss", "loss")):
            if key in metrics:
                values[name] = float(metrics[key])
        return values


def fit_picture(store, query=None, *, n_components: int = 3, random_state=0):
    """InPCA of the models of ``store`` that ``query`` selects, and their metadata rows.

    Dense InPCA up to ``PICTURE_DENSE_MAX`` models, landmark InPCA on that many landmarks
    above (``taskspace.embedding.embed_store``); at most M − 1 axes of M models.

    Returns
    -------
    fit : StoreEmbedding
    meta : pandas.DataFrame
        ``Store.runs()`` rows of the models, in the order of ``fit.model_ids``.
    """
    _, meta = store.collection(query)
    m = len(meta)
    if m < 2:
        raise ValueError(f"the picture needs at least 2 models, the query selects {m}")
    k = min(int(n_components), m - 1)
    if m <= PICTURE_DENSE_MAX:
        fit = embed_store(store, query, n_components=k, random_state=random_state)
    else:
        fit = embed_store(
            store,
            query,
            n_components=k,
            method="landmark",
            n_landmarks=PICTURE_DENSE_MAX,
            random_state=random_state,
        )
    return fit, meta.set_index("model_id").loc[fit.model_ids].reset_index()


def picture_metadata(meta) -> list[list[str]]:
    """The picture's metadata rows (``PICTURE_COLUMNS``) as text, one per model."""
    return [
        ["" if v is None or v is np.nan else str(v) for v in row]
        for row in meta[list(PICTURE_COLUMNS)].astype(object).itertuples(index=False)
    ]


def picture_figure(coordinates, meta, estimator):
    """The plotly 3-D figure of a picture: one colour per task, hover text per model."""
    hover = [
        f"{r.model_id}<br>task {r.task} · {r.method} · step {r.step}"
        for r in meta.itertuples(index=False)
    ]
    return embedding_figure(
        coordinates,
        hover=hover,
        colour=list(meta["task"].astype(str)),
        signature=getattr(estimator, "signature_", None),
        title="InPCA of the store's models",
    )
