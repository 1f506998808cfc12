"""Progress of a model towards the truth (SPEC §5).

The progress of P is the fraction ``λ ∈ [0, 1]`` of the geodesic from a start model ``P_0`` to the
truth ``P_*`` (one-hot on the probe labels) whose point is closest to P:

    t(P) = argmin_{λ ∈ [0, 1]} d(P^λ_{0,*}, P),      d = d_B (default) or d_G.

Why the argmin is well defined. Per sample, ``c_n(λ) = <ψ(P^λ)_n, ψ(P)_n>`` is a non-negative
sinusoid of λθ_n over a phase range θ_n ≤ π/2, hence concave in λ. Each d_B term ``−log c_n`` is
then convex, strictly when θ_n > 0 (second derivative ≥ θ_n²); each d_G term ``arccos(c_n)²`` is
convex too (see ``_kernels_progress``). So without the floor the objective is convex, and strictly
convex as soon as the start differs from the truth on one sample (always, for the uniform start):
one minimiser. The floor ``max(c_n, eps)`` can only bite on stretches touching the ends of [0, 1]
(``c_n`` is concave) and cuts [0, 1] into finitely many pieces, each convex; the argmin is the best
of the pieces' minimisers, the smallest λ on an exact tie. If the start *is* the truth on every
sample the geodesic is a single point and every λ is a minimiser; progress is then 0.

Each evaluation of the objective costs O(N), not O(N·C): ``<ψ(P^λ)_n, ψ(P)_n> =
[sin((1−λ)θ_n) a_n + sin(λθ_n) b_n] / sin θ_n`` with ``a_n``, ``b_n`` computed once per model.
"""

from __future__ import annotations

import math

import numpy as np

from taskspace.geometry import _kernels_progress as kernels
from taskspace.geometry.distances import DEFAULT_EPS
from taskspace.geometry.validation import (
    as_class_indices,
    as_labels,
    as_probabilities,
    check_broadcast,
    check_eps,
    check_metric,
    check_same_space,
)

PROGRESS_METRICS = ("bhattacharyya", "geodesic")


def _restrict(P: np.ndarray, rows: np.ndarray, cls: np.ndarray) -> np.ndarray:
    # Rows are renormalised by the kernels (a row with no mass left counts as uniform on the task).
    return P[..., rows[:, None], cls[None, :]]


def _flat(P: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(P.reshape((-1, *P.shape[-2:])))


def progress(
    models, labels, start="uniform", classes=None, metric="bhattacharyya", eps: float = DEFAULT_EPS
) -> np.ndarray:
    """Progress of models along the geodesic from a start to the truth (SPEC §5).

    ``t(P) = argmin_{λ∈[0,1]} d(P^λ, P)`` where ``P^λ`` is the geodesic from ``start`` to the
    one-hot truth ``P_*`` (SPEC §4) and ``d`` is ``d_B`` (with the floor ``eps``) or ``d_G``. Found
    to ``|Δλ| ≤ 1e-6`` (typically ~1e-12): the objective is convex on at most a few pieces of [0, 1]
    (module docstring) and the root of its closed-form derivative is found by Brent's method.

    Parameters
    ----------
    models : array_like, shape (..., N, C)
        Models (float32 or float64; not copied when already contiguous).
    labels : array_like of int, shape (N,)
        True class of every probe sample.
    start : "uniform" or array_like, shape (..., N, C)
        ``P_0``: the uniform model ``1/C`` (default), or a model whose leading axes broadcast with
        ``models``' (for example a trajectory's first record, to measure each record's progress
        from it).
    classes : sequence of int, optional
        Progress on another task B ⊂ label space (≥ 2 distinct classes): only the probe samples
        whose label is in B are kept, only B's columns, each row renormalised; labels become
        positions in ``classes``. A row with no mass on B counts as uniform on B (it prefers none
        of B's classes). A model ``start`` is restricted the same way; ``"uniform"`` means uniform
        on B.
    metric : {"bhattacharyya", "geodesic"}
    eps : float, default 1e-9
        Floor of the coefficients in the d_B objective, exactly as in :func:`bhattacharyya`.

    Returns
    -------
    ndarray of float64, shape (...)
        λ in [0, 1] per model (leading axes of ``models`` and ``start`` broadcast); a 0-d array for
        a single model.

    Examples
    --------
    >>> import numpy as np, taskspace as ts
    >>> truth = np.eye(3)[[0, 1]]                 # N = 2 samples, C = 3 classes
    >>> P = ts.interpolate(np.full((2, 3), 1 / 3), truth, 0.3)
    >>> round(float(ts.progress(P, labels=[0, 1])), 9)
    0.3
    """
    P, y, metric_code, eps = _checked(models, labels, metric, eps)
    n_classes = P.shape[-1]
    P0 = None
    if isinstance(start, str):
        if start != "uniform":
            raise ValueError(f"`start` must be 'uniform' or a model array, got {start!r}")
    else:
        P0 = as_probabilities("start", start, dtype=None)
        check_same_space(("models", "start"), P.shape, P0.shape)
        check_broadcast(("models", "start"), P.shape, P0.shape)
    cls = None
    if classes is not None:
        cls = as_class_indices(
            "classes", classes, n_classes, what="class", min_count=2, distinct=True
        )
    return _progress(P, y, P0, cls, metric_code, eps)


def progress_on_tasks(
    models, labels, tasks, metric: str = "bhattacharyya", eps: float = DEFAULT_EPS
) -> np.ndarray:
    """Progress of the same models on several tasks, validating and converting them once.

    ``progress_on_tasks(P, y, tasks)[t]`` is ``progress(P, y, classes=tasks[t])`` exactly (uniform
    start; a task of None, or of every class in order, is the whole label space). Validating a
    float16 collection and converting it to float64 cost more than the kernels; done once, a
    collection measured on T tasks costs one validation, not T.

    Parameters
    ----------
    models : array_like, shape (..., N, C)
    labels : array_like of int, shape (N,)
    tasks : sequence of (sequence of int or None)
        Each task's classes (≥ 2 distinct), as ``classes`` of `progress`.
    metric, eps
        As in `progress`.

    Returns
    -------
    ndarray of float64, shape (len(tasks), ...)
    """
    P, y, metric_code, eps = _checked(models, labels, metric, eps)
    n_classes = P.shape[-1]
    out = np.empty((len(tasks), *P.shape[:-2]))
    for t, classes in enumerate(tasks):
        cls = None
        if classes is not None:
            cls = as_class_indices(
                f"tasks[{t}]", classes, n_classes, what="class", min_count=2, distinct=True
            )
        out[t] = _progress(P, y, None, cls, metric_code, eps)
    return out


def _checked(models, labels, metric: str, eps: float):
    """``(P, y, metric code, eps)``: the models validated (float32/64 kept), the labels checked
    against them, the metric's kernel code and the checked floor."""
    eps = check_eps(eps)
    metric_code = {"bhattacharyya": kernels.BHATTACHARYYA, "geodesic": kernels.GEODESIC}[
        check_metric(metric, PROGRESS_METRICS)
    ]
    P = as_probabilities("models", models, dtype=None)
    n_samples, n_classes = P.shape[-2:]
    return P, as_labels("labels", labels, n_samples, n_classes), metric_code, eps


def _progress(P, y, P0, cls, metric_code: int, eps: float) -> np.ndarray:
    """`progress` of validated models ``P`` (float32/64), labels ``y``, start ``P0`` (None:
    uniform), restricted to the class indices ``cls`` (None: every class)."""
    n_samples, n_classes = P.shape[-2:]
    if cls is not None and not np.array_equal(cls, np.arange(n_classes)):
        # every class in order is the whole space: restricting would copy the same numbers
        rows = np.flatnonzero(np.isin(y, cls))
        if rows.size == 0:
            raise ValueError(f"no probe sample has a label in `classes` {cls.tolist()}")
        position = np.full(n_classes, -1, dtype=np.int64)
        position[cls] = np.arange(cls.size)
        y = position[y[rows]]
        P = _restrict(P, rows, cls)
        if P0 is not None:
            P0 = _restrict(P0, rows, cls)
        n_samples, n_classes = rows.size, cls.size

    if P0 is None:
        lead = P.shape[:-2]
        flat = _flat(P)
        a = np.empty((flat.shape[0], n_samples))
        b = np.empty_like(a)
        kernels.overlaps_uniform(flat, y, a, b)
        # Angle between the uniform row and a one-hot row, from the chord as in start_angles.
        rest = (n_classes - 1.0) / n_classes
        gap = rest / (1.0 + math.sqrt(1.0 / n_classes))
        theta = np.full(
            (1, n_samples), 2.0 * math.asin(min(0.5 * math.sqrt(gap * gap + rest), math.sqrt(0.5)))
        )
        theta_index = np.zeros(a.shape[0], dtype=np.int64)
    else:
        lead = np.broadcast_shapes(P.shape[:-2], P0.shape[:-2])
        flat, flat0 = _flat(P), _flat(P0)
        model_index = np.broadcast_to(np.arange(flat.shape[0]).reshape(P.shape[:-2]), lead).ravel()
        theta_index = np.broadcast_to(
            np.arange(flat0.shape[0]).reshape(P0.shape[:-2]), lead
        ).ravel()
        a = np.empty((model_index.size, n_samples))
        b = np.empty_like(a)
        kernels.overlaps_model(flat, flat0, model_index, theta_index, y, a, b)
        theta = np.empty((flat0.shape[0], n_samples))
        kernels.start_angles(flat0, y, theta)
    out = np.empty(a.shape[0])
    kernels.argmin_progress(a, b, theta, theta_index, metric_code, eps, out)
    return out.reshape(lead)
