"""Validation at the boundary of the geometry (DESIGN.md: "Array conventions").

Every public geometry function calls these before doing any arithmetic, so that a bad array fails
with a message that names the argument, the first bad index and what is wrong with it, instead of
silently producing NaN distances three functions later. The store, the importers and the
distributed backend call the same checks, so their messages match the geometry's.

The row check is one fused pass in Numba (finite, non-negative, sums to 1) because validation
runs on every call of the hot paths (progress of a (T, N, C) stack touches 10^8 entries); three
separate NumPy reductions cost several times more than the geometry itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import numba
import numpy as np

#: Rows of a probability array must sum to 1 within this tolerance (DESIGN.md).
ROW_SUM_TOLERANCE = 1e-3

_OK, _NONFINITE, _NEGATIVE, _BAD_SUM = 0, 1, 2, 3


#: Below this many entries the serial kernel wins: starting the thread pool costs more.
_PARALLEL_MIN_SIZE = 1 << 18


def _row_status_impl(rows, tolerance):  # pragma: no cover - compiled
    """Status code of every row of a (R, C) array: 0 ok, 1 NaN/inf, 2 negative, 3 bad sum."""
    n_rows, n_classes = rows.shape
    status = np.zeros(n_rows, dtype=np.int8)
    for r in numba.prange(n_rows):
        total = 0.0
        code = 0
        for c in range(n_classes):
            v = np.float64(rows[r, c])
            if not np.isfinite(v):
                code = 1
                break
            if v < 0.0:
                code = 2
                break
            total += v
        if code == 0 and abs(total - 1.0) > tolerance:
            code = 3
        status[r] = code
    return status


_row_status_parallel = numba.njit(parallel=True, cache=True, nogil=True)(_row_status_impl)
_row_status_serial = numba.njit(cache=True, nogil=True)(_row_status_impl)


def _index(flat_row: int, shape: tuple[int, ...], column: int | None = None) -> tuple[int, ...]:
    idx = tuple(int(i) for i in np.unravel_index(flat_row, shape[:-1]))
    return idx if column is None else (*idx, int(column))


#: Rows that are negative or do not sum to 1 are most often logits or scores, not probabilities.
SOFTMAX_HINT = (
    "; if these are logits or scores, apply a softmax over the class axis first "
    "(torch.softmax(x, dim=-1), scipy.special.softmax(x, axis=-1))"
)


def _describe_bad_row(name: str, rows: np.ndarray, r: int, code: int, shape, offset) -> str:
    row = np.asarray(rows[r], dtype=np.float64)

    def where(column=None):
        idx = list(_index(r, shape, column))
        for axis, start in enumerate(offset):
            idx[axis] += int(start)
        return tuple(idx)

    if code == _NONFINITE:
        c = int(np.flatnonzero(~np.isfinite(row))[0])
        return f"`{name}` contains a non-finite value ({row[c]}) at index {where(c)}"
    if code == _NEGATIVE:
        c = int(np.flatnonzero(row < 0)[0])
        return f"`{name}` has a negative entry ({row[c]:.6g}) at index {where(c)}{SOFTMAX_HINT}"
    total = row.sum()
    return (
        f"`{name}` has a row that sums to {total:.6g}, not 1 (tolerance {ROW_SUM_TOLERANCE:g}), "
        f"at index {where()}{SOFTMAX_HINT}"
    )


def check_rows(name: str, block: np.ndarray, offset: Sequence[int] = ()) -> None:
    """Check that every row (last axis) of `block` is a probability vector.

    Parameters
    ----------
    name : str
        The argument's name, used in the error message.
    block : ndarray, shape (..., C)
        Real-valued array (float16/32/64 or integer). Not copied when already contiguous.
    offset : sequence of int
        Position of ``block`` inside the full argument (for chunks streamed from a larger array),
        added to the reported index so that it points into the user's array.

    Raises
    ------
    ValueError
        On the first row (in C order) with a NaN/inf, a negative entry, or a sum off 1 by more than
        ``ROW_SUM_TOLERANCE``.
    """
    if block.size == 0:
        return
    rows = block.reshape(-1, block.shape[-1])
    if rows.dtype not in (np.float32, np.float64):
        rows = rows.astype(np.float64)
    kernel = _row_status_parallel if rows.size >= _PARALLEL_MIN_SIZE else _row_status_serial
    status = kernel(np.ascontiguousarray(rows), ROW_SUM_TOLERANCE)
    bad = np.flatnonzero(status)
    if bad.size:
        r = int(bad[0])
        raise ValueError(_describe_bad_row(name, rows, r, int(status[r]), block.shape, offset))


def check_array_like(
    name: str, X, *, ndim: int | tuple[int, ...] | None = None, min_ndim: int = 2
) -> tuple[int, ...]:
    """Check rank, emptiness and dtype of an array-like *without reading its values*.

    Used for inputs that are streamed (memmaps, Zarr arrays), whose values are checked chunk by
    chunk with :func:`check_rows` as they are read.

    Returns
    -------
    shape : tuple of int
    """
    shape = getattr(X, "shape", None)
    dtype = getattr(X, "dtype", None)
    if shape is None or dtype is None:
        raise ValueError(f"`{name}` must be an array-like with .shape and .dtype, got {type(X)!r}")
    shape = tuple(int(s) for s in shape)
    _check_rank(name, shape, ndim, min_ndim)
    kind = np.dtype(dtype).kind
    if kind not in "fiub":
        raise ValueError(f"`{name}` must hold real numbers, got dtype {np.dtype(dtype)}")
    return shape


def _check_rank(name, shape, ndim, min_ndim):
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(shape) not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"`{name}` must have {want} dimensions, got shape {shape}")
    elif len(shape) < min_ndim:
        raise ValueError(
            f"`{name}` must have at least {min_ndim} dimensions (..., N samples, C classes), "
            f"got shape {shape}"
        )
    for axis, size in enumerate(shape):
        if size == 0:
            raise ValueError(f"`{name}` is empty: axis {axis} has length 0 (shape {shape})")


def as_array(name: str, X):
    """``X`` itself when it already slices like an array (ndarray, Zarr, memmap, collection),
    else ``np.asarray(X)``; a ragged or non-numeric nested list is a ValueError naming ``name``."""
    if hasattr(X, "shape") and hasattr(X, "dtype"):
        return X
    return as_numeric_array(name, X)


def as_numeric_array(name: str, X) -> np.ndarray:
    """``np.asarray(X)``; a ragged or non-numeric nested list is a ValueError naming ``name``
    (NumPy's own message names no argument)."""
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged nested lists and the like
        raise ValueError(f"`{name}` cannot be read as an array: {exc}") from exc
    if arr.dtype == object:
        raise ValueError(f"`{name}` cannot be read as a numeric array (ragged or non-numeric)")
    return arr


def as_probabilities(
    name: str, P, *, ndim: int | tuple[int, ...] | None = None, min_ndim: int = 2, dtype=np.float64
) -> np.ndarray:
    """Validate an in-memory probability array and return it as an ndarray of ``dtype``.

    Parameters
    ----------
    name : str
        The argument's name, used in error messages.
    P : array_like, shape (..., N, C)
        Probabilities; every row along the last axis sums to 1.
    ndim : int or tuple of int, optional
        Exact rank(s) required; else at least ``min_ndim``.
    dtype : dtype or None
        Output dtype; ``None`` keeps float32/float64 input as it is (other dtypes become float64).

    Returns
    -------
    ndarray
    """
    arr = as_numeric_array(name, P)  # an ndarray comes back as itself, uncopied
    check_array_like(name, arr, ndim=ndim, min_ndim=min_ndim)
    check_rows(name, arr)
    if dtype is None:
        return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)
    return np.asarray(arr, dtype=dtype)


def check_same_space(
    names: tuple[str, str], shape_a: tuple[int, ...], shape_b: tuple[int, ...]
) -> None:
    """Two models are comparable only on the same probe set and label space (SPEC §0)."""
    if shape_a[-1] != shape_b[-1]:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` have different numbers of classes C: "
            f"{shape_a[-1]} vs {shape_b[-1]} (shapes {shape_a} and {shape_b})"
        )
    if shape_a[-2] != shape_b[-2]:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` have different numbers of samples N: "
            f"{shape_a[-2]} vs {shape_b[-2]} (shapes {shape_a} and {shape_b})"
        )


def check_broadcast(
    names: tuple[str, str], shape_a: tuple[int, ...], shape_b: tuple[int, ...]
) -> None:
    """The leading (model) axes of two ``(..., N, C)`` arrays must broadcast together."""
    try:
        np.broadcast_shapes(shape_a[:-2], shape_b[:-2])
    except ValueError as exc:
        raise ValueError(
            f"the leading axes of `{names[0]}` {shape_a[:-2]} and `{names[1]}` {shape_b[:-2]} "
            "do not broadcast"
        ) from exc


def as_class_indices(
    name: str,
    values,
    n_classes: int,
    *,
    what: str = "label",
    n_samples: int | None = None,
    min_count: int = 1,
    distinct: bool = False,
) -> np.ndarray:
    """Validate class indices of a label space of ``n_classes`` classes: integers in ``[0, C)``.

    The one check behind probe labels (`as_labels`) and a task's classes (``progress``'s
    ``classes``).

    Parameters
    ----------
    name : str
        The argument, named in errors.
    values : array_like, shape (K,)
        Integers (floats holding integers are accepted).
    n_classes : int
        C.
    what : str
        What one value is, in errors: ``"label"`` or ``"class"``.
    n_samples : int, optional
        Required length K (one label per probe sample).
    min_count : int
        Fewest values allowed (a task needs 2 classes).
    distinct : bool
        Refuse repeated values.

    Returns
    -------
    ndarray of int64, shape (K,)
    """
    y = np.asarray(values)
    if y.ndim != 1:
        per = "one label per sample" if what == "label" else "a list of class indices"
        raise ValueError(f"`{name}` must be 1-D ({per}), got shape {y.shape}")
    if n_samples is not None and y.shape[0] != n_samples:
        raise ValueError(
            f"`{name}` has {y.shape[0]} labels but the models have N = {n_samples} samples"
        )
    if y.size < min_count:
        raise ValueError(f"`{name}` must name at least {min_count} classes, got {y.size}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            bad = int(np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))[0])
            raise ValueError(f"`{name}` must hold integer class indices; index {bad} is {y[bad]}")
    elif y.dtype.kind not in "iub":
        raise ValueError(f"`{name}` must hold integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    out = (y < 0) | (y >= n_classes)
    if out.any():
        bad = int(np.flatnonzero(out)[0])
        raise ValueError(
            f"`{name}` has {what} {y[bad]} at index {bad}, outside [0, {n_classes}) classes"
        )
    if distinct:
        _, first = np.unique(y, return_index=True)
        if first.size < y.size:
            i = int(np.setdiff1d(np.arange(y.size), first)[0])
            raise ValueError(f"`{name}` repeats {what} {y[i]} at index {i}")
    return y


def as_labels(name: str, labels, n_samples: int, n_classes: int) -> np.ndarray:
    """Validate probe labels: integers in ``[0, C)``, one per sample (`as_class_indices`).

    Returns
    -------
    ndarray of int64, shape (N,)
    """
    return as_class_indices(name, labels, n_classes, n_samples=n_samples)


def check_eps(eps: float) -> float:
    """The floor of the Bhattacharyya coefficient (SPEC §3) must lie in (0, 1)."""
    if isinstance(eps, bool) or not isinstance(eps, Real):
        raise ValueError(f"`eps` must be a real number in (0, 1), got {eps!r}")
    eps = float(eps)
    if not (0.0 < eps < 1.0):
        raise ValueError(f"`eps` must lie in (0, 1), got {eps}")
    return eps


METRICS = ("bhattacharyya", "hellinger", "geodesic")


def check_metric(metric: str, allowed: Sequence[str] = METRICS) -> str:
    if metric not in allowed:
        choices = ", ".join(map(repr, allowed))
        raise ValueError(f"unknown metric {metric!r}; choose one of {choices}")
    return metric
