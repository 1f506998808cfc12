"""Labelled inputs: an ``xarray.DataArray`` of models in, its record coordinates kept on the result.

A DataArray of dims (record, sample, class) — any name for the first — is read as the (M, N, C)
array it labels, one block of samples at a time (a lazily loaded one, as ``Store.to_xarray``
hands out, is never loaded whole); the result carries the coordinates of its record dimension.
xarray is imported only when one is given: it is an optional extra, and ``import taskspace``
does not load it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE, CLASS = "sample", "class"


def is_data_array(X) -> bool:
    """Whether ``X`` is an ``xarray.DataArray`` (without importing xarray)."""
    return type(X).__name__ == "DataArray" and type(X).__module__.split(".")[0] == "xarray"


@dataclass(frozen=True)
class LabelledModels:
    """A DataArray of models seen as an (M, N, C) array that slices like NumPy.

    Attributes
    ----------
    array : xarray.DataArray
        Transposed to (record, sample, class).
    dim : str
        The name of its record dimension.
    """

    array: object
    dim: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self):
        return self.array.dtype

    ndim = 3

    @property
    def chunks(self):
        # Preferred by the store's lazy Dataset: stream in whole store chunks.
        preferred = self.array.encoding.get("preferred_chunks") or {}
        if SAMPLE in preferred:
            return (1, int(preferred[SAMPLE]), self.shape[2])
        return None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        # Positional indexing of a lazily indexed DataArray reads only the selected block.
        return np.asarray(self.array[key].values)

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.array.values)
        return out if dtype is None else out.astype(dtype, copy=False)

    def coords(self, suffix: str = "") -> dict:
        """The coordinates along the record dimension, renamed with ``suffix``."""
        out = {}
        for name, coord in self.array.coords.items():
            if coord.dims == (self.dim,):
                out[f"{name}{suffix}"] = (f"{self.dim}{suffix}", coord.values)
        return out


def labelled_models(name: str, X) -> LabelledModels:
    """``X`` (a DataArray of dims (..., sample, class), one leading dimension) as an array.

    Dimensions named ``sample`` and ``class`` are moved last; without those names the last two
    dimensions are taken as samples and classes.
    """
    if X.ndim != 3:
        dims = ", ".join(map(str, X.dims))
        raise ValueError(
            f"`{name}` must be a DataArray of dims (record, sample, class), got "
            f"({dims}); stack the model dimensions into one first, "
            f"e.g. {name}.stack(record=(...))"
        )
    if SAMPLE in X.dims and CLASS in X.dims:
        X = X.transpose(..., SAMPLE, CLASS)
    return LabelledModels(X, str(X.dims[0]))


def labelled_matrix(
    D: np.ndarray, rows: LabelledModels | None, columns: LabelledModels | None, *, symmetric: bool
):
    """``D`` (M, M') as a DataArray whose dims are the record dimensions of ``rows`` and
    ``columns`` (the second suffixed ``_other`` when they share a name), with their
    coordinates; a side given as a plain array is a dimension ``model`` without coordinates."""
    import xarray as xr

    if symmetric:
        columns = rows
    row_dim = rows.dim if rows is not None else "model"
    column_dim = columns.dim if columns is not None else "model"
    suffix = "_other" if column_dim == row_dim else ""
    coords = {
        **(rows.coords() if rows is not None else {}),
        **(columns.coords(suffix) if columns is not None else {}),
    }
    return xr.DataArray(D, dims=(row_dim, f"{column_dim}{suffix}"), coords=coords)


def labelled_embedding(Y: np.ndarray, rows: LabelledModels):
    """An embedding (M, k) as a DataArray of dims (record, component), with record coords."""
    import xarray as xr

    coords = rows.coords()
    coords["component"] = ("component", np.arange(1, Y.shape[1] + 1))
    return xr.DataArray(Y, dims=(rows.dim, "component"), coords=coords)
