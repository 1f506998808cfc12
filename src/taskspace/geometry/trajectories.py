"""Trajectories in prediction space (SPEC §6–9): length, re-parameterisation by progress, averages
over seeds, comparison of groups of runs, distance from a model to a trajectory. The discrete
Fréchet distance lives in ``frechet.py`` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from taskspace.geometry.distances import (
    DEFAULT_EPS,
    _angles_from_chords,
    _squared_chords,
    bhattacharyya,
    normalize_rows,
)
from taskspace.geometry.frechet import frechet_distance, iter_cost_blocks
from taskspace.geometry.geodesic import _geodesic_points
from taskspace.geometry.progress import progress
from taskspace.geometry.validation import (
    as_probabilities,
    check_eps,
    check_metric,
    check_same_space,
)

__all__ = [
    "TrajectoryComparison",
    "average",
    "compare_trajectories",
    "distance_to_trajectory",
    "frechet_distance",
    "length",
    "reparameterize",
]

MEANS = ("arithmetic", "bhattacharyya")
LENGTH_METRICS = ("bhattacharyya", "geodesic")
#: Default progress grid of SPEC §7: 0, 0.02, ..., 1 (linspace, so no drift from repeated 0.02).
DEFAULT_GRID_POINTS = 51
#: Entries of the chunk of consecutive pairs handled at once by ``length``.
_CHUNK_ENTRIES = 1 << 22


def _trajectory(name: str, X, ndim=3) -> np.ndarray:
    return normalize_rows(as_probabilities(name, X, ndim=ndim, min_ndim=3))


def _as_grid(grid) -> np.ndarray:
    """Validate a progress grid: 1-D, finite, in [0, 1], strictly increasing; default SPEC §7's."""
    if grid is None:
        return np.linspace(0.0, 1.0, DEFAULT_GRID_POINTS)
    g = np.asarray(grid)
    if g.dtype.kind not in "fiub":
        raise ValueError(f"`grid` must hold real numbers, got dtype {g.dtype}")
    g = g.astype(np.float64)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"`grid` must be a non-empty 1-D array, got shape {g.shape}")
    bad = ~np.isfinite(g) | (g < 0.0) | (g > 1.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"`grid` must lie in [0, 1]; index {i} is {g[i]}")
    steps = np.flatnonzero(np.diff(g) <= 0.0)
    if steps.size:
        i = int(steps[0]) + 1
        raise ValueError(f"`grid` must be strictly increasing; index {i} is {g[i]} ≤ {g[i - 1]}")
    return g


def _as_progress(values, n_records: int) -> np.ndarray:
    lam = np.asarray(values)
    if lam.dtype.kind not in "fiub":
        raise ValueError(f"`progress` must hold real numbers, got dtype {lam.dtype}")
    lam = lam.astype(np.float64)
    if lam.shape != (n_records,):
        raise ValueError(
            f"`progress` must have shape ({n_records},), one value per record of the trajectory; "
            f"got shape {lam.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(lam))
    if bad.size:
        raise ValueError(f"`progress` has a non-finite value at index {int(bad[0])}")
    return lam


def _check_mean(mean: str) -> str:
    if mean not in MEANS:
        raise ValueError(f"unknown mean {mean!r}; choose one of {', '.join(map(repr, MEANS))}")
    return mean


def length(trajectory, metric: str = "bhattacharyya", eps: float = DEFAULT_EPS) -> np.ndarray:
    """Length of a trajectory (SPEC §6).

    ``L = Σ_{t=1}^{T−1} 2 sqrt(d_B(P_t, P_{t+1}))`` (the Riemann length of the poster), or with
    ``metric="geodesic"`` ``L = Σ_t d_G(P_t, P_{t+1})`` (a metric, so it is additive along a
    geodesic and never shorter than ``d_G(P_1, P_T)``).

    Parameters
    ----------
    trajectory : array_like, shape (..., T, N, C)
        Records in training order; leading axes are independent trajectories.
    metric : {"bhattacharyya", "geodesic"}
    eps : float, default 1e-9
        Floor of the Bhattacharyya coefficients.

    Returns
    -------
    ndarray of float64, shape (...)
        0 for a single record; a 0-d array for one trajectory.
    """
    eps = check_eps(eps)
    check_metric(metric, LENGTH_METRICS)
    X = _trajectory("trajectory", trajectory, ndim=None)
    n_records = X.shape[-3]
    per_record = int(np.prod(X.shape[:-3], dtype=np.int64)) * X.shape[-2] * X.shape[-1]
    chunk = max(1, _CHUNK_ENTRIES // max(per_record, 1))
    total = np.zeros(X.shape[:-3])
    for t0 in range(0, n_records - 1, chunk):
        t1 = min(n_records - 1, t0 + chunk)
        s = _squared_chords(X[..., t0:t1, :, :], X[..., t0 + 1 : t1 + 1, :, :])
        if metric == "bhattacharyya":
            d_b = -np.mean(np.log(np.maximum(1.0 - 0.5 * s, eps)), axis=-1)
            steps = 2.0 * np.sqrt(d_b)
        else:
            theta = _angles_from_chords(s)
            steps = np.sqrt(np.mean(theta * theta, axis=-1))
        total += steps.sum(axis=-1)
    return total


def _reparameterize(X: np.ndarray, lam: np.ndarray, grid: np.ndarray) -> np.ndarray:
    n_records = X.shape[0]
    above = lam[None, :] > grid[:, None]  # (K, T)
    found = above.any(axis=1)
    first = np.argmax(above, axis=1)
    interior = found & (first > 0)
    hi = np.where(found, first, n_records - 1)
    lo = np.where(interior, first - 1, hi)
    # λ_lo ≤ g < λ_hi on interior points (hi is the *first* record past g), so the gap is positive;
    # clip only guards the rounding of the division.
    gap = np.where(interior, lam[hi] - lam[lo], 1.0)
    frac = np.where(interior, np.clip((grid - lam[lo]) / gap, 0.0, 1.0), 0.0)
    return _geodesic_points(X[lo], X[hi], frac)


def reparameterize(trajectory, progress, grid=None) -> np.ndarray:
    """Re-parameterise a trajectory by progress on a grid (SPEC §7).

    For each grid value g take the first record i with ``λ_i > g``. None: the last record ``P_T``.
    ``i = 1``: the first record ``P_1``. Otherwise the point of the geodesic from ``P_{i−1}`` to
    ``P_i`` at fraction ``clip((g − λ_{i−1}) / (λ_i − λ_{i−1}), 0, 1)``. Progress need not be
    monotone: the rule always picks one segment, so the result is well defined.

    Parameters
    ----------
    trajectory : array_like, shape (T, N, C)
    progress : array_like, shape (T,)
        Progress of each record (for example :func:`taskspace.progress` of the trajectory).
    grid : array_like, shape (K,), optional
        Strictly increasing values in [0, 1]; default ``0, 0.02, ..., 1`` (51 points).

    Returns
    -------
    ndarray of float64, shape (K, N, C)
    """
    X = _trajectory("trajectory", trajectory)
    lam = _as_progress(progress, X.shape[0])
    return _reparameterize(X, lam, _as_grid(grid))


def _finish_mean(total: np.ndarray, mean: str) -> np.ndarray:
    """The mean from the sum of P (arithmetic) or of sqrt(P) (bhattacharyya) over the models."""
    if mean == "arithmetic":
        return normalize_rows(total)
    # Scaling by the count would cancel in the per-sample normalisation, so it is skipped.
    centroid = total / np.linalg.norm(total, axis=-1, keepdims=True)
    return normalize_rows(centroid * centroid)


def _mean_stack(X: np.ndarray, mean: str, axis: int) -> np.ndarray:
    return _finish_mean((X if mean == "arithmetic" else np.sqrt(X)).sum(axis=axis), mean)


def average(models, mean: str = "arithmetic", axis: int = 0) -> np.ndarray:
    """Average of models over one leading axis, for example over seeds (SPEC §8).

    ``mean="arithmetic"``: ``P̄ = (1/K) Σ_k P_k``. ``mean="bhattacharyya"``: per sample the
    normalised mean of ``ψ = sqrt(P)``, squared: ``P̄_n = (m_n / ‖m_n‖)²``, ``m_n = (1/K) Σ_k
    ψ(P_k)_n`` (the centroid on the sphere; the mean of unit vectors of the positive orthant is
    never 0).

    Parameters
    ----------
    models : array_like, shape (..., N, C)
        At least one leading axis.
    mean : {"arithmetic", "bhattacharyya"}
    axis : int, default 0
        The leading axis averaged over (negative values count from the end, but the sample and
        class axes cannot be averaged over).

    Returns
    -------
    ndarray of float64
        ``models``' shape without ``axis``; rows sum to 1.
    """
    _check_mean(mean)
    X = _trajectory("models", models, ndim=None)
    ax = int(axis)
    if ax < 0:
        ax += X.ndim
    if not 0 <= ax < X.ndim - 2:
        raise ValueError(
            f"`axis` {axis} is not a leading axis of `models` (shape {X.shape}); the last two "
            "axes are samples and classes"
        )
    return _mean_stack(X, mean, ax)


@dataclass(frozen=True, eq=False)
class TrajectoryComparison:
    """Result of :func:`compare_trajectories`.

    Attributes
    ----------
    grid : ndarray, shape (K,)
        Grid points in the runs' common progress range.
    distance : ndarray, shape (K,)
        ``d_B(Ā(g), B̄(g))`` at each of those grid points.
    mean : float
        ``d_traj``, the mean of ``distance``.
    """

    grid: np.ndarray
    distance: np.ndarray
    mean: float


def _as_runs(name: str, runs) -> list[np.ndarray]:
    if isinstance(runs, np.ndarray) or hasattr(runs, "shape"):
        stack = _trajectory(name, runs, ndim=4)
        return list(stack)
    if not isinstance(runs, Sequence) or isinstance(runs, str) or len(runs) == 0:
        raise ValueError(
            f"`{name}` must be a non-empty sequence of trajectories (T, N, C) or an array "
            "(R, T, N, C)"
        )
    out = [_trajectory(f"{name}[{r}]", run) for r, run in enumerate(runs)]
    for r, run in enumerate(out[1:], start=1):
        check_same_space((f"{name}[0]", f"{name}[{r}]"), out[0].shape, run.shape)
    return out


def _common_range(grid: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Mask of the grid points in the runs' common progress range ``[lo, hi]`` (``max λ_1``,
    ``min λ_T`` over the runs); ValueError when it holds none."""
    keep = (grid >= lo) & (grid <= hi)
    if not keep.any():
        raise ValueError(
            f"the runs have no common progress range on the grid: [max λ_1, min λ_T] = "
            f"[{lo:.6g}, {hi:.6g}] contains no grid point"
        )
    return keep


def compare_trajectories(
    runs_a,
    runs_b,
    labels,
    grid=None,
    mean: str = "arithmetic",
    start="uniform",
    eps: float = DEFAULT_EPS,
) -> TrajectoryComparison:
    """Compare two groups of runs along progress (SPEC §9).

    Every run is re-parameterised by its progress (SPEC §5, from ``start``) on ``grid`` (SPEC §7),
    each group is averaged per grid point (SPEC §8), and the curve ``d_B(Ā(g), B̄(g))`` is returned
    over the common range ``[max over all runs of λ_1, min over all runs of λ_T]``, snapped inwards
    to the grid (the grid points inside it), with its mean ``d_traj``.

    Parameters
    ----------
    runs_a, runs_b : sequence of array_like (T_i, N, C), or array_like (R, T, N, C)
        The runs of each group (for example the seeds of two tasks); lengths T_i may differ.
    labels : array_like of int, shape (N,)
        Probe labels, for progress.
    grid : array_like, shape (K,), optional
        Default ``0, 0.02, ..., 1``.
    mean : {"arithmetic", "bhattacharyya"}
        How runs are averaged per grid point.
    start : "uniform" or array_like (N, C)
        Start of the reference geodesic of progress, shared by all runs.
    eps : float, default 1e-9

    Returns
    -------
    TrajectoryComparison
        ``.grid``, ``.distance``, ``.mean``.

    Raises
    ------
    ValueError
        If no grid point lies in the common range (the runs do not overlap in progress).
    """
    eps = check_eps(eps)
    _check_mean(mean)
    grid = _as_grid(grid)
    groups = {"runs_a": _as_runs("runs_a", runs_a), "runs_b": _as_runs("runs_b", runs_b)}
    check_same_space(
        ("runs_a[0]", "runs_b[0]"), groups["runs_a"][0].shape, groups["runs_b"][0].shape
    )
    lams = {
        name: [progress(run, labels, start=start, eps=eps) for run in runs]
        for name, runs in groups.items()
    }
    everything = [lam for group in lams.values() for lam in group]
    keep = _common_range(
        grid, max(float(lam[0]) for lam in everything), min(float(lam[-1]) for lam in everything)
    )
    inside = grid[keep]
    means = []
    for name, runs in groups.items():
        # Accumulate run by run: memory of one re-parameterised run, whatever the number of runs.
        total = None
        for run, lam in zip(runs, lams[name], strict=True):
            points = _reparameterize(run, lam, inside)
            term = points if mean == "arithmetic" else np.sqrt(points)
            total = term if total is None else total + term
        means.append(_finish_mean(total, mean))
    distance = bhattacharyya(means[0], means[1], eps=eps) + 0.0  # no −0.0 for equal models
    return TrajectoryComparison(grid=inside, distance=distance, mean=float(distance.mean()))


class ReparameterizedRuns:
    """Runs re-parameterised by progress once, then compared for many picks of them.

    ``ReparameterizedRuns(runs, labels).compare(a, b)`` is ``compare_trajectories([runs[i] for i
    in a], [runs[j] for j in b], labels)`` (arithmetic mean) bit for bit: every run's progress and
    its points on the whole grid are computed once, and a pick only restricts them to its common
    range and sums them in the same order. For a jackknife over runs (each run left out in turn)
    that is one re-parameterisation per run instead of one per run and pick.

    Parameters
    ----------
    runs : sequence of array_like (T_i, N, C), or array_like (R, T, N, C)
    labels : array_like of int, shape (N,)
    grid : array_like, shape (K,), optional
        Default ``0, 0.02, ..., 1``.
    start : "uniform" or array_like (N, C)
    eps : float, default 1e-9

    Notes
    -----
    Holds ``R × K × N × C`` float64 numbers (``nbytes``); for large probe sets compare picks with
    `compare_trajectories`, which holds one re-parameterised run at a time.
    """

    def __init__(self, runs, labels, grid=None, start="uniform", eps: float = DEFAULT_EPS):
        self.eps = check_eps(eps)
        self.grid = _as_grid(grid)
        self._points, first, last = [], [], []
        for run in _as_runs("runs", runs):
            lam = progress(run, labels, start=start, eps=self.eps)
            first.append(float(lam[0]))
            last.append(float(lam[-1]))
            self._points.append(_reparameterize(run, lam, self.grid))
        self._first, self._last = np.array(first), np.array(last)

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self._points)

    def compare(self, a: Sequence[int], b: Sequence[int]) -> TrajectoryComparison:
        """`compare_trajectories` of the runs at positions ``a`` against those at ``b``.

        Raises
        ------
        ValueError
            If no grid point lies in the picked runs' common progress range.
        """
        picked = [*a, *b]
        keep = _common_range(
            self.grid, float(self._first[picked].max()), float(self._last[picked].min())
        )
        means = []
        for pick in (a, b):
            terms = [self._points[i][keep] for i in pick]
            total = terms[0]
            for term in terms[1:]:  # in pick order, as compare_trajectories sums its runs
                total = total + term
            means.append(_finish_mean(total, "arithmetic"))
        distance = bhattacharyya(means[0], means[1], eps=self.eps) + 0.0
        return TrajectoryComparison(
            grid=self.grid[keep], distance=distance, mean=float(distance.mean())
        )


def distance_to_trajectory(
    model,
    trajectory,
    labels=None,
    grid=None,
    metric: str = "bhattacharyya",
    eps: float = DEFAULT_EPS,
) -> np.ndarray:
    """Distance from model(s) to a trajectory: the smallest distance to its points (SPEC §9).

    With ``labels``, the trajectory's points are its re-parameterisation by progress (uniform
    start) on ``grid`` (SPEC §7), so that densely and sparsely recorded stretches weigh the same and
    the geodesic segments between records count; without, its recorded points.

    Parameters
    ----------
    model : array_like, shape (..., N, C)
    trajectory : array_like, shape (T, N, C)
    labels : array_like of int, shape (N,), optional
    grid : array_like, shape (K,), optional
        Only with ``labels``; default ``0, 0.02, ..., 1``.
    metric : {"bhattacharyya", "hellinger", "geodesic"}
    eps : float, default 1e-9

    Returns
    -------
    ndarray of float64, shape (...)
        ``min_k d(model, point_k)``; a 0-d array for one model.
    """
    eps = check_eps(eps)
    check_metric(metric)
    X = _trajectory("trajectory", trajectory)
    M = normalize_rows(as_probabilities("model", model))
    check_same_space(("model", "trajectory"), M.shape, X.shape)
    if labels is not None:
        X = _reparameterize(X, progress(X, labels, eps=eps), _as_grid(grid))
    elif grid is not None:
        raise ValueError("`grid` is only used with `labels` (it is a grid of progress values)")
    lead = M.shape[:-2]
    root_m = np.ascontiguousarray(np.sqrt(M.reshape((-1, *M.shape[-2:]))))
    root_x = np.ascontiguousarray(np.sqrt(X))
    best = np.empty(root_m.shape[0])
    for start, block in iter_cost_blocks(root_m, root_x, metric, eps):
        best[start : start + block.shape[0]] = block.min(axis=1)
    return best.reshape(lead)
