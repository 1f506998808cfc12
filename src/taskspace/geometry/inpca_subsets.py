"""Explained stress of InPCA fits to many subsets of the points of one distance matrix (SPEC §10).

An interval for the explained stress refits InPCA on hundreds of subsets of the models. Each refit
needs neither an embedding nor a new validation of D: the stress of the first k axes is
``1 − sqrt(1 − Σ_{i≤k} λ_i² / ‖W‖_F²)``, so it takes only the k eigenvalues of largest magnitude
of the subset's centred matrix and that matrix's Frobenius norm. Here D is validated and
symmetrised once. Subsets of at least `PARTIAL_MIN_POINTS` points run Lanczos in batches that
never copy their submatrices out (`taskspace.geometry._lanczos`: one product with the matrix per
step serves the whole batch, 3-6x faster than a dense copy and ARPACK per subset on the reference
study, docs/performance.md); smaller ones, and any batch member that does not converge, have
their principal submatrix centred in NumPy and handed to an eigenvalue-only solver. The numbers
are those of ``InPCA(metric="precomputed").fit(D[s][:, s])`` to rounding (eigenvalue residuals
≤ 1e-11 of the largest).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import linalg
from scipy.sparse.linalg import eigsh
from threadpoolctl import threadpool_limits

from taskspace.geometry._eigen import explained_stress
from taskspace.geometry._lanczos import batch_size, batched_top_eigenvalues, masked_frobenius_sq
from taskspace.geometry.inpca import check_distance_matrix

#: From this many points on, the k eigenvalues of largest magnitude come from Lanczos
#: (``eigsh``), below it from the full eigenvalue-only ``eigvalsh`` (fewer calls into ARPACK than
#: it saves in flops); see docs/performance.md.
PARTIAL_MIN_POINTS = 120
#: A Lanczos batch multiplies by the principal submatrix of the union of its subsets' rows: it
#: ends before that union exceeds this many times its largest subset (two random 80% subsets of
#: one group's runs span ~96% of it, 1.2 times either; a subset of another group adds all of it).
UNION_GROWTH = 1.5
#: Subsets all smaller than this run their eigensolvers with BLAS on one thread: on matrices of a
#: few hundred points BLAS's threads cost more in synchronisation than they save (5-9x slower on
#: the 2-core development machine under load, docs/performance.md); larger ones keep them.
SINGLE_THREAD_BELOW = 1000


def centred_submatrix(S: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, float]:
    """``W = −½ J S_rr J`` of the principal submatrix ``S_rr`` of a symmetric S, and ``‖W‖_F²``.

    Parameters
    ----------
    S : ndarray of float64, shape (M, M)
        Symmetric bit for bit (e.g. ``(D + Dᵀ)/2``), so that W is too.
    rows : ndarray of int, shape (m,)

    Returns
    -------
    W : ndarray of float64, shape (m, m)
    frobenius_sq : float
    """
    sub = S[np.ix_(rows, rows)]
    means = sub.mean(axis=1)
    # (r_i + r_j) is symmetric in i and j bit for bit, so W is as well.
    sub -= means[:, None] + means[None, :]
    sub += means.mean()
    sub *= -0.5
    return sub, float(np.vdot(sub, sub))


def top_eigenvalues(W: np.ndarray, k: int, random_state: int | None = 0) -> np.ndarray:
    """The ``k`` eigenvalues of the symmetric W of largest ``|λ|``, ordered by ``|λ|`` descending
    (positive first on ties), those zero to rounding (``|λ| ≤ m·ε·|λ_1|``) set to exactly 0.

    Lanczos (``eigsh``, ``which="LM"``, a starting vector drawn from ``random_state``) for
    ``m ≥ PARTIAL_MIN_POINTS`` and ``k < m − 1``, else the full ``eigvalsh``.
    """
    m = W.shape[0]
    if not W.any():
        return np.zeros(k)
    if m >= PARTIAL_MIN_POINTS and k < m - 1:
        v0 = np.random.RandomState(random_state).uniform(-1.0, 1.0, m)
        values = eigsh(W, k=k, which="LM", v0=v0, return_eigenvectors=False)
    else:
        values = linalg.eigvalsh(W, overwrite_a=True, check_finite=False)
    return zero_below_rounding(values[np.lexsort((-values, -np.abs(values)))[:k]], m)


def zero_below_rounding(values: np.ndarray, m: int) -> np.ndarray:
    """``values`` (ordered by ``|λ|`` descending) with those zero to rounding, ``|λ| ≤
    m·ε·|λ_1|`` for an m × m matrix, set to exactly 0 (in place; returned)."""
    if values[0] != 0.0:
        values[np.abs(values) <= m * np.finfo(np.float64).eps * abs(values[0])] = 0.0
    return values


def subset_explained_stress(
    D,
    subsets: Sequence[np.ndarray],
    n_components: int,
    *,
    random_state: int | None = 0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Explained stress of the first 1..k InPCA axes of every subset of the points of D.

    Parameters
    ----------
    D : array-like, shape (M, M)
        Precomputed distance matrix (validated once, as `InPCA` does).
    subsets : sequence of int arrays
        The points of each subset, each of size ``m_s ≥ 2``.
    n_components : int
        ``k``.
    random_state : int or None
        Seeds each Lanczos starting vector (the same for every subset, as a fresh seeded fit).
    progress : callable ``(done, total)``, optional
        Called as subsets finish (after each Lanczos batch, and after each subset solved
        densely), ``done`` rising to ``total``.

    Returns
    -------
    ndarray of float64, shape (len(subsets), k)
        Row s: ``1 − sqrt(1 − Σ_{i≤j} λ_i² / ‖W_s‖_F²)`` for j = 1..k; NaN beyond ``m_s`` axes.
    """
    D = check_distance_matrix("D", D)
    S = np.asarray(D, dtype=np.float64)
    S = 0.5 * (S + S.T)
    subsets = [np.asarray(rows, dtype=np.intp) for rows in subsets]
    out = np.full((len(subsets), n_components), np.nan)
    done = 0

    def finished(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, len(subsets))

    lanczos = [
        i
        for i, rows in enumerate(subsets)
        if rows.size >= PARTIAL_MIN_POINTS and min(n_components, rows.size) < rows.size - 1
    ]
    dense = sorted(set(range(len(subsets))) - set(lanczos))
    for batch in _batches([subsets[i] for i in lanczos]):
        picked = [lanczos[i] for i in batch]
        failed = _lanczos_batch(S, subsets, picked, n_components, random_state, out)
        dense += failed
        finished(len(picked) - len(failed))
    small = max((subsets[i].size for i in dense), default=0) < SINGLE_THREAD_BELOW
    with threadpool_limits(limits=1 if small else None, user_api="blas"):
        for i in sorted(dense):
            rows = subsets[i]
            k = min(n_components, rows.size)
            W, frobenius_sq = centred_submatrix(S, rows)
            values = top_eigenvalues(W, k, random_state)
            out[i, :k] = explained_stress(values, frobenius_sq, rows.size)
            finished(1)
    return out


def _batches(subsets: list[np.ndarray]) -> list[list[int]]:
    """Consecutive subsets grouped to run Lanczos together: a batch ends when adding the next
    subset would make the union of its rows (the matrix the batch multiplies by) more than
    `UNION_GROWTH` times its largest subset, or when it holds `_lanczos.batch_size` subsets."""
    out: list[list[int]] = []
    union = np.zeros(0, dtype=np.intp)
    for i, rows in enumerate(subsets):
        grown = np.union1d(union, rows)
        if out and (
            grown.size > UNION_GROWTH * max(subsets[j].size for j in out[-1] + [i])
            or len(out[-1]) >= batch_size(grown.size)
        ):
            out.append([i])
            union = rows
        else:
            if not out:
                out.append([])
            out[-1].append(i)
            union = grown
    return out


def _lanczos_batch(S, subsets, picked, n_components, random_state, out) -> list[int]:
    """Explained stress of the subsets ``picked`` by batched Lanczos on the principal submatrix
    of their union (rows of ``out`` filled in); returns those left to the dense solver."""
    union = np.unique(np.concatenate([subsets[i] for i in picked]))
    S_u = S if union.size == S.shape[0] else S[np.ix_(union, union)]
    masks = np.zeros((len(picked), union.size))
    for row, i in enumerate(picked):
        masks[row, np.searchsorted(union, subsets[i])] = 1.0
    start = np.random.RandomState(random_state).uniform(-1.0, 1.0, union.size)
    with threadpool_limits(limits=1 if union.size < SINGLE_THREAD_BELOW else None, user_api="blas"):
        values, converged = batched_top_eigenvalues(S_u, masks, n_components, start)
        frobenius_sq = masked_frobenius_sq(S_u, masks)
    failed = []
    for row, i in enumerate(picked):
        if not converged[row]:
            failed.append(i)
            continue
        m = subsets[i].size
        out[i] = explained_stress(zero_below_rounding(values[row], m), frobenius_sq[row], m)
    return failed
