"""A store's models as a lazily loaded, labelled ``xarray.Dataset`` (extra ``xarray``).

The predictions variable is backed by the store's own chunks through a
:class:`taskspace.store.LazyCollection`: building the Dataset reads only metadata, and indexing
it (``ds.predictions[i, n0:n1]``, ``.isel``, ``.sel`` on the record coordinates) reads only the
chunks that the selection touches, verified like every read of the store. Nothing is copied.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Columns of ``Store.runs()`` carried as coordinates along ``record`` (``run`` is ``run_id``).
RECORD_COORDS = ("run_id", "record_index", "step", "task", "method", "seed", "network", "dataset")


def import_xarray():
    try:
        import xarray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("Store.to_xarray needs xarray: pip install 'taskspace[xarray]'") from exc
    return xarray


def to_xarray(store, runs=None):
    """The store's models as an ``xarray.Dataset`` backed by its chunks (see
    :meth:`taskspace.Store.to_xarray`)."""
    xr = import_xarray()
    from xarray.backends import BackendArray
    from xarray.core import indexing

    table = store.runs("record")
    if runs is not None:
        runs = [runs] if isinstance(runs, str) else list(runs)
        unknown = sorted(set(runs) - set(store.run_ids))
        if unknown:
            raise ValueError(f"no run {unknown[0]!r} in store {store.path}")
        # In the order asked for, each run's records in order.
        order = {r: i for i, r in enumerate(runs)}
        table = table[table["run_id"].isin(order)]
        table = (
            table.assign(_order=table["run_id"].map(order))
            .sort_values(["_order", "record"], kind="stable")
            .drop(columns="_order")
        )
    table = table.reset_index(drop=True)
    if len(table) == 0:
        raise ValueError(
            f"store {store.path} holds no record" + ("" if runs is None else f" of runs {runs}")
        )
    models = store.models(list(table["model_id"]))

    class StoreChunks(BackendArray):
        # xarray's protocol for a lazily indexed backend: basic keys (ints and slices) reach
        # the collection, which reads only the chunks they touch; xarray applies the rest.
        def __init__(self):
            self.shape, self.dtype = models.shape, models.dtype

        def __getitem__(self, key):
            return indexing.explicit_indexing_adapter(
                key, self.shape, indexing.IndexingSupport.BASIC, self._raw
            )

        def _raw(self, key):
            return models[key]

    predictions = xr.Variable(
        ("record", "sample", "class"),
        indexing.LazilyIndexedArray(StoreChunks()),
        attrs={"long_name": "P(class | sample) of each recorded model"},
    )
    predictions.encoding["preferred_chunks"] = dict(
        zip(("record", "sample", "class"), models.chunks, strict=True)
    )
    probe_ids = store.probe_ids
    coords = {
        "record": ("record", np.asarray(table["model_id"], dtype=str)),
        "sample": ("sample", np.arange(store.n_samples) if probe_ids is None else probe_ids),
        "label": ("sample", store.labels),
        "class": ("class", np.arange(store.n_classes)),
        "class_name": ("class", np.asarray(store.class_names, dtype=str)),
    }
    renamed = table.rename(columns={"record": "record_index"})
    for column in RECORD_COORDS:
        name = "run" if column == "run_id" else column
        coords[name] = ("record", _plain(renamed[column]))
    metrics = [
        c
        for c in table.columns
        if c
        not in (
            *RECORD_COORDS,
            "model_id",
            "record",
            "parent_run",
            "parent_step",
            "classes",
            "config",
        )
    ]
    data = {"predictions": predictions}
    for m in metrics:
        data[m] = ("record", _plain(table[m]))
    attrs = {
        "store": str(store.path),
        "probe_hash": store.probe_hash,
        "label_space_hash": store.label_space_hash,
        "chunk_samples": models.chunks[1],
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _plain(column: pd.Series) -> np.ndarray:
    """A column as a NumPy array xarray keeps: nullable integers as float (NaN where missing),
    text as str (empty where missing)."""
    if isinstance(column.dtype, pd.api.extensions.ExtensionDtype) and column.dtype.kind in "iu":
        if column.isna().any():
            return column.astype("float64").to_numpy()
        return column.astype("int64").to_numpy()
    if column.dtype == object:
        values = column.to_numpy()
        if all(isinstance(v, str) or v is None for v in values):
            return np.asarray(["" if v is None else v for v in values], dtype=str)
        if all(isinstance(v, int | float | np.number) or v is None for v in values):
            return np.asarray([np.nan if v is None else v for v in values], dtype=float)
        return np.asarray([str(v) for v in values], dtype=str)
    return column.to_numpy()
