"""Per-model weights of InPCA (SPEC §10): their check, and one weight per group of models.

A weight says how much a model pulls on the axes: weight 2 counts as two copies of the model.
`group_weights` gives every group (a run, a method) the same total, whatever its size.
"""

from __future__ import annotations

import numpy as np


def normalized_weights(weights, n_points: int) -> np.ndarray | None:
    """Check per-model weights and scale them to mean 1 (SPEC §10); ``None`` stays ``None``.

    Parameters
    ----------
    weights : array-like of shape (M,) or None
        Finite, non-negative, with a positive sum. A weight of 0 keeps the model out of the axes
        (it is then placed out of sample).
    n_points : int
        M.

    Returns
    -------
    ndarray of float64, shape (M,), or None
        ``w · M / Σw``. ``None`` also when every weight is the same: uniform weights are the
        unweighted fit, and take its code path.

    Raises
    ------
    ValueError
        Naming the problem (shape, dtype, first non-finite or negative index, zero sum).
    """
    if weights is None:
        return None
    w = np.asarray(weights)
    if w.dtype == object or w.dtype.kind not in "fiu":
        raise ValueError(f"`weights` must hold real numbers, got dtype {w.dtype}")
    if w.shape != (n_points,):
        raise ValueError(
            f"`weights` must have shape (M,) = ({n_points},), one weight per "
            f"model, got shape {w.shape}"
        )
    w = w.astype(np.float64)
    for bad, problem in ((~np.isfinite(w), "a non-finite weight"), (w < 0, "a negative weight")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"`weights` has {problem} ({w[i]:.6g}) at index {i}")
    total = float(w.sum())
    if not total > 0.0:
        raise ValueError("`weights` sum to 0: at least one model needs a positive weight")
    if np.all(w == w[0]):
        return None
    return w * (n_points / total)


def group_weights(groups) -> np.ndarray:
    """One weight per group, shared by its models: ``w_i = 1 / (G · |group of i|)``.

    For example ``groups`` = the run of every record: each run then counts once, whatever its
    number of records (and each method once, with the methods as groups).

    Parameters
    ----------
    groups : array-like of shape (M,)
        Any hashable labels (run ids, method names).

    Returns
    -------
    ndarray of float64, shape (M,)
        Sums to 1 over every group's models together, ``1/G`` per group.

    Examples
    --------
    >>> group_weights(["a", "a", "a", "b"]).round(3).tolist()
    [0.167, 0.167, 0.167, 0.5]
    """
    labels = np.asarray(groups)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(
            f"`groups` must be a non-empty 1-D array of labels, got shape {labels.shape}"
        )
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return 1.0 / (len(counts) * counts[inverse].astype(np.float64))
