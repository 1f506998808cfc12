"""Tangent vectors on the product of spheres: logarithm and exponential maps (SPEC §14).

Under ψ(P) = sqrt(P) every sample of a model is a unit vector ψ_n, and the tangent space at ψ(P)
is the product of the planes orthogonal to each ψ_n. Per sample, with φ = ψ(Q)_n and θ = θ_n:

    log_map(P, Q)_n = (θ / sin θ) · (φ − cos θ · ψ),            ‖log_map(P, Q)_n‖ = θ_n,
    exp_map(P, V)_n = cos ‖v_n‖ · ψ + sin ‖v_n‖ · v_n / ‖v_n‖,

so ``sqrt(mean_n ‖log_map(P, Q)_n‖²) = d_G(P, Q)`` and ``exp_map(P, t · log_map(P, Q))`` is the
geodesic point ``interpolate(P, Q, t)``. ``φ − cos θ · ψ`` is evaluated as
``(φ − ψ) + (s/2) ψ`` with ``s = ‖φ − ψ‖²`` (since cos θ = 1 − s/2): the difference of two nearly
equal unit vectors is then formed once, exactly, instead of cancelling in ``φ − cos θ ψ``.
"""

from __future__ import annotations

import numpy as np

from taskspace.geometry.distances import _angles_from_chords, _pair, normalize_rows
from taskspace.geometry.validation import (
    as_numeric_array,
    as_probabilities,
    check_array_like,
    check_broadcast,
    check_same_space,
)

#: A tangent row may lean out of its tangent plane by this much relative to its length (plus
#: ``_TANGENT_ATOL``) and is then projected back; more is a ValueError (not a tangent at P).
_TANGENT_RTOL = 1e-6
_TANGENT_ATOL = 1e-12


def log_map(P, Q) -> np.ndarray:
    """Tangent vector at ψ(P) of the geodesic from P to Q (SPEC §14).

    Per sample ``v_n = (θ_n / sin θ_n) · (ψ(Q)_n − cos θ_n · ψ(P)_n)``, and ``v_n = 0`` where
    ``θ_n = 0``; each row is orthogonal to ``ψ(P)_n`` and has length ``θ_n``, so
    ``sqrt((1/N) Σ_n ‖v_n‖²) = d_G(P, Q)``.

    Parameters
    ----------
    P, Q : array_like, shape (..., N, C)
        Probabilities (rows sum to 1); leading axes broadcast.

    Returns
    -------
    ndarray of float64, shape (broadcast of leading axes, N, C)
        Tangent vectors in square-root coordinates (the embedding of SPEC §1).

    Examples
    --------
    >>> import numpy as np, taskspace as ts
    >>> P = np.array([[1.0, 0.0]]); Q = np.array([[0.0, 1.0]])
    >>> ts.log_map(P, Q).round(12)           # a quarter circle: length π/2, towards Q
    array([[0.        , 1.57079633]])
    """
    P, Q = _pair(P, Q)
    psi, phi = np.sqrt(P), np.sqrt(Q)
    diff = phi - psi
    s = np.einsum("...c,...c->...", diff, diff)  # squared chord, (..., N)
    theta = _angles_from_chords(s)
    moving = theta > 0.0
    # θ / sin θ → 1 as θ → 0; only θ = 0 exactly is 0/0, and there diff is exactly 0 as well.
    scale = np.where(moving, theta / np.where(moving, np.sin(theta), 1.0), 1.0)
    v = scale[..., None] * (diff + (0.5 * s)[..., None] * psi)
    return np.where(moving[..., None], v, 0.0)


def exp_map(P, V) -> np.ndarray:
    """Model reached from P by following the tangent vector V for unit time (SPEC §14).

    Per sample ``ψ'_n = cos ‖v_n‖ · ψ(P)_n + sin ‖v_n‖ · v_n / ‖v_n‖`` (``ψ(P)_n`` where
    ``v_n = 0``); the model is ``ψ'²`` with rows renormalised to sum to 1. The inverse of
    :func:`log_map`: ``exp_map(P, log_map(P, Q)) = Q`` and
    ``exp_map(P, t · log_map(P, Q)) = interpolate(P, Q, t)`` for t in [0, 1].

    A tangent may point out of the positive orthant (a long vector, or one that lowers a
    probability that is already 0): ``ψ'`` then has negative entries and squaring folds it back
    into the orthant, so the result is still a model but no longer on the geodesic that V
    started. Tangents from :func:`log_map` (scaled by t ∈ [0, 1]) never leave it.

    Parameters
    ----------
    P : array_like, shape (..., N, C)
        Base models (rows sum to 1).
    V : array_like, shape (..., N, C)
        Tangent vectors at ψ(P) in square-root coordinates: each row orthogonal to
        ``sqrt(P_n)``. Leading axes broadcast with P's. Rows that lean out of the tangent plane
        by rounding (``|<v_n, ψ_n>| ≤ 1e-6 ‖v_n‖ + 1e-12``) are projected onto it; more is an
        error.

    Returns
    -------
    ndarray of float64, shape (broadcast of leading axes, N, C)

    Examples
    --------
    >>> import numpy as np, taskspace as ts
    >>> P = np.array([[1.0, 0.0]]); V = np.array([[0.0, np.pi / 4]])
    >>> ts.exp_map(P, V).round(12)          # an eighth of a circle: halfway to [0, 1]
    array([[0.5, 0.5]])
    """
    P = normalize_rows(as_probabilities("P", P))
    V = _as_tangent("V", V)
    check_same_space(("P", "V"), P.shape, V.shape)
    check_broadcast(("P", "V"), P.shape, V.shape)
    psi = np.sqrt(P)
    normal = np.einsum("...c,...c->...", V, psi)  # component along ψ, (..., N)
    length = np.sqrt(np.einsum("...c,...c->...", V, V))
    bad = np.abs(normal) > _TANGENT_RTOL * length + _TANGENT_ATOL
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"`V` is not a tangent vector at `P`: row {index} has component "
            f"{float(np.broadcast_to(normal, bad.shape)[index]):.3g} along sqrt(P) (length "
            f"{float(np.broadcast_to(length, bad.shape)[index]):.3g}); a tangent row must be "
            "orthogonal to sqrt(P) of its sample (use log_map to make one)"
        )
    V = V - normal[..., None] * psi  # remove the rounding-sized part
    norm = np.sqrt(np.einsum("...c,...c->...", V, V))
    moving = norm > 0.0
    sinc = np.where(moving, np.sin(norm) / np.where(moving, norm, 1.0), 1.0)
    out = np.cos(norm)[..., None] * psi + sinc[..., None] * V
    out = out * out
    out /= out.sum(axis=-1, keepdims=True)
    return np.where(moving[..., None], out, np.broadcast_to(P, out.shape))


def velocity(trajectory, steps) -> np.ndarray:
    """Velocity of a trajectory between consecutive records (SPEC §14).

    ``velocity_t = log_map(P_t, P_{t+1}) / (step_{t+1} − step_t)``: the tangent at record t of the
    geodesic to the next record, per unit of training step. Its norm
    ``sqrt(mean_n ‖v_tn‖²)`` is ``d_G(P_t, P_{t+1})`` divided by the step gap (the speed).

    Parameters
    ----------
    trajectory : array_like, shape (T, N, C)
        Models in training order, T ≥ 2 (for example ``store.trajectory(run_id).predictions``).
    steps : array_like, shape (T,)
        Their training steps, strictly increasing.

    Returns
    -------
    ndarray of float64, shape (T − 1, N, C)
        Row t is the velocity at record t (tangent at ``sqrt(P_t)``).
    """
    P = normalize_rows(as_probabilities("trajectory", trajectory, ndim=3))
    T = P.shape[0]
    if T < 2:
        raise ValueError(f"`trajectory` needs at least 2 records for a velocity, got {T}")
    s = np.asarray(steps)
    if s.dtype.kind not in "iuf" or s.shape != (T,):
        raise ValueError(
            f"`steps` must be {T} numbers (one per record of `trajectory`), got "
            f"shape {s.shape} and dtype {s.dtype}"
        )
    s = s.astype(np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError(
            f"`steps` must be finite; index {int(np.flatnonzero(~np.isfinite(s))[0])} "
            f"is {s[~np.isfinite(s)][0]}"
        )
    gaps = np.diff(s)
    if np.any(gaps <= 0):
        i = int(np.flatnonzero(gaps <= 0)[0])
        raise ValueError(
            f"`steps` must be strictly increasing; step {s[i + 1]:g} at index "
            f"{i + 1} follows {s[i]:g}"
        )
    return log_map(P[:-1], P[1:]) / gaps[:, None, None]


def _as_tangent(name: str, V) -> np.ndarray:
    """Validate a tangent array: finite reals of rank ≥ 2, as float64."""
    arr = as_numeric_array(name, V)
    check_array_like(name, arr)
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"`{name}` contains a non-finite value at index {index}")
    return arr
