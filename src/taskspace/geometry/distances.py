"""Distances between models in prediction space (SPEC §1–3), broadcasting over leading axes.

Every per-sample quantity is computed from the squared chord between the two square-root embeddings,

    s_n = ‖ψ(P)_n − ψ(Q)_n‖²,    ψ(P) = sqrt(P),

because for rows that sum to 1 (inputs are renormalised after validation)

    BC_n = Σ_c sqrt(P_nc Q_nc) = 1 − s_n / 2,     θ_n = arccos BC_n = 2 arcsin(sqrt(s_n) / 2),

and ``s_n`` is free of the cancellation in ``1 − BC_n``: it is exactly 0 when the rows are equal,
and accurate to the last digit for nearby models, where ``1 − Σ sqrt(PQ)`` would keep only rounding
noise (whose square root, in Hellinger and geodesic distances, is ~1e-8).

The symmetrised Kullback–Leibler divergence ``d_J`` is the exception: it is computed from its
definition, term by term, ``(P_nc − Q_nc)(log max(P_nc, ε) − log max(Q_nc, ε))``. Every term is
≥ 0 (the floored logarithm is non-decreasing), so the sum has no cancellation and equal rows give
exactly 0.
"""

from __future__ import annotations

import numpy as np

from taskspace.geometry.validation import (
    as_probabilities,
    check_broadcast,
    check_eps,
    check_same_space,
)

#: Default floor of the Bhattacharyya coefficient (SPEC §3).
DEFAULT_EPS = 1e-9


def normalize_rows(P: np.ndarray) -> np.ndarray:
    """Rescale each row (last axis) to sum to exactly 1, in place for float64 arrays we own.

    Validation accepts rows within 1e-3 of 1 (float16 storage); renormalising makes the identities
    behind every formula hold exactly, so storage error never appears as distance.
    """
    return P / P.sum(axis=-1, keepdims=True)


def _pair(P, Q, names=("P", "Q")) -> tuple[np.ndarray, np.ndarray]:
    P = normalize_rows(as_probabilities(names[0], P))
    Q = normalize_rows(as_probabilities(names[1], Q))
    check_same_space(names, P.shape, Q.shape)
    check_broadcast(names, P.shape, Q.shape)
    return P, Q


def squared_chords(P, Q) -> np.ndarray:
    """Squared chord ``s_n = ‖sqrt(P_n) − sqrt(Q_n)‖²`` per sample.

    Parameters
    ----------
    P, Q : array_like, shape (..., N, C)
        Probabilities; leading axes broadcast.

    Returns
    -------
    ndarray of float64, shape (..., N)
        Values in [0, 2].
    """
    P, Q = _pair(P, Q)
    return _squared_chords(P, Q)


def _squared_chords(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    diff = np.sqrt(P) - np.sqrt(Q)
    return np.einsum("...c,...c->...", diff, diff)


def bhattacharyya_coefficients(P, Q) -> np.ndarray:
    """Per-sample Bhattacharyya coefficients ``BC_n = Σ_c sqrt(P_nc Q_nc)`` (SPEC §2).

    Parameters
    ----------
    P, Q : array_like, shape (..., N, C)

    Returns
    -------
    ndarray of float64, shape (..., N)
        Values in [0, 1], computed as ``1 − s_n / 2``.
    """
    return np.clip(1.0 - 0.5 * squared_chords(P, Q), 0.0, 1.0)


def sample_angles(P, Q) -> np.ndarray:
    """Per-sample angles ``θ_n = arccos BC_n = 2 arcsin(‖ψ(P)_n − ψ(Q)_n‖/2)`` (SPEC §2).

    Parameters
    ----------
    P, Q : array_like, shape (..., N, C)

    Returns
    -------
    ndarray of float64, shape (..., N)
        Values in [0, π/2].
    """
    return _angles_from_chords(squared_chords(P, Q))


def _angles_from_chords(s: np.ndarray) -> np.ndarray:
    return 2.0 * np.arcsin(np.minimum(np.sqrt(s) / 2.0, np.sqrt(0.5)))


def bhattacharyya(P, Q, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Bhattacharyya distance ``d_B(P, Q) = −(1/N) Σ_n log max(BC_n, eps)`` (SPEC §3).

    Intensive (averaged over samples), symmetric, 0 exactly when ``P = Q``; not a metric.

    Parameters
    ----------
    P, Q : array_like, shape (..., N, C)
        Probabilities over C classes for the same N probe samples; leading axes broadcast.
    eps : float, default 1e-9
        Floor of each coefficient, so that one sample with disjoint supports costs
        ``−log(eps)/N`` instead of infinity.

    Returns
    -------
    ndarray of float64, shape (...)
        Scalars come back as 0-d arrays.

    Examples
    --------
    >>> import numpy as np, taskspace as ts
    >>> P = np.array([[0.5, 0.5]]); Q = np.array([[1.0, 0.0]])
    >>> round(float(ts.bhattacharyya(P, Q)), 12)  # −log sqrt(0.5)
    0.34657359028
    """
    eps = check_eps(eps)
    bc = 1.0 - 0.5 * squared_chords(P, Q)
    return -np.mean(np.log(np.maximum(bc, eps)), axis=-1)


def hellinger(P, Q) -> np.ndarray:
    """Hellinger distance ``d_H(P, Q) = sqrt((1/N) Σ_n (1 − BC_n))`` (SPEC §3).

    Parameters
    ----------
    P, Q : array_like, shape (..., N, C)

    Returns
    -------
    ndarray of float64, shape (...)
        Values in [0, 1]; a metric.
    """
    return np.sqrt(np.mean(0.5 * squared_chords(P, Q), axis=-1))


def geodesic_distance(P, Q) -> np.ndarray:
    """Geodesic distance on the product of spheres, ``d_G = sqrt((1/N) Σ_n θ_n²)`` (SPEC §3).

    The Fisher–Rao distance between the product distributions is ``2 · sqrt(N) · d_G``; this
    intensive version does not grow with N.

    Parameters
    ----------
    P, Q : array_like, shape (..., N, C)

    Returns
    -------
    ndarray of float64, shape (...)
        Values in [0, π/2]; a metric.
    """
    theta = sample_angles(P, Q)
    return np.sqrt(np.mean(theta * theta, axis=-1))


def symmetric_kl(P, Q, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Symmetrised Kullback–Leibler divergence (Jeffreys), averaged over samples (SPEC §3).

    ``d_J(P, Q) = (1/N) Σ_n ½ Σ_c (P_nc − Q_nc)(log max(P_nc, eps) − log max(Q_nc, eps))``,
    i.e. the mean over samples of ``½ (KL(P_n‖Q_n) + KL(Q_n‖P_n))`` with floored logarithms.

    Parameters
    ----------
    P, Q : array_like, shape (..., N, C)
        Probabilities over C classes for the same N probe samples; leading axes broadcast.
    eps : float, default 1e-9
        Floor of each probability inside the logarithm, so that a class one model gives
        probability 0 costs ``|log eps|`` instead of infinity.

    Returns
    -------
    ndarray of float64, shape (...)
        Non-negative, symmetric, exactly 0 when ``P = Q``; not a metric (no triangle inequality).

    Examples
    --------
    >>> import numpy as np, taskspace as ts
    >>> P = np.array([[0.5, 0.5]]); Q = np.array([[0.9, 0.1]])
    >>> round(float(ts.symmetric_kl(P, Q)), 12)  # ½ · 0.4 · (log 5 − log(5/9)) = 0.2 · log 9
    0.439444915467
    """
    eps = check_eps(eps)
    P, Q = _pair(P, Q)
    log_ratio = np.log(np.maximum(P, eps)) - np.log(np.maximum(Q, eps))
    return 0.5 * np.mean(np.sum((P - Q) * log_ratio, axis=-1), axis=-1)
