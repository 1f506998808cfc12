"""Landmark InPCA: fit on L models, place the other M − L out of sample (SPEC §10).

Needs only L columns of D (M·L distances instead of M²/2): the InPCA of the L × L landmark block,
then ``InPCA.transform`` of every model from its distances to the landmarks. Two rules choose the
landmarks:

* ``"farthest"`` (farthest-point / max-min sampling): the first landmark is the model farthest from
  model 0; each next one is the model whose distance to its nearest landmark is largest (ties: the
  lowest index). It uses the columns of the landmarks only (plus model 0's), each computed when
  its landmark is chosen.
* ``"stratified"`` (by run and progress): landmarks are split among runs in proportion to their
  number of records (largest remainders; every run gets one when L ≥ number of runs, otherwise L
  runs evenly spaced in the table's order), and within a run taken at evenly spaced records from
  the first to the last (the run's progress in training time).

``landmark_error`` measures what the approximation costs: the relative error of the distances the
embedding reconstructs, to be compared with that of the full fit with the same k.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from taskspace.geometry.distances import DEFAULT_EPS

RULES = ("farthest", "stratified")


def farthest_point_landmarks(distances_to: Callable, n_points: int, n_landmarks: int,
                             progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Farthest-point landmarks and their columns of D.

    Parameters
    ----------
    distances_to : callable
        ``distances_to(idx)`` returns the (M, len(idx)) distances from every model to models
        ``idx``.
    n_points, n_landmarks : int
    progress : bool
        A progress bar over the landmarks (each costs one column of D).

    Returns
    -------
    landmarks : ndarray of int, shape (L,)
        In the order chosen.
    columns : ndarray, shape (M, L)
        ``D[:, landmarks]``.
    """
    from taskspace.geometry.progressbar import ProgressBar

    with ProgressBar(progress, n_landmarks + 1,
                     "farthest-point landmarks (columns of D)") as bar:
        first = int(np.argmax(_column(distances_to, 0, n_points)))
        bar.advance(1)
        chosen, columns = [first], [_column(distances_to, first, n_points)]
        bar.advance(1)
        nearest = columns[0].copy()
        while len(chosen) < n_landmarks:
            nearest[chosen] = -np.inf
            nxt = int(np.argmax(nearest))
            chosen.append(nxt)
            col = _column(distances_to, nxt, n_points)
            columns.append(col)
            np.minimum(nearest, col, out=nearest)
            bar.advance(1)
    return np.array(chosen, dtype=np.int64), np.stack(columns, axis=1)


def _column(distances_to, i: int, n_points: int) -> np.ndarray:
    col = np.asarray(distances_to(np.array([i])), dtype=np.float64).reshape(n_points)
    return col


def stratified_landmarks(meta: pd.DataFrame, n_landmarks: int) -> np.ndarray:
    """Landmarks stratified by run and progress (see the module docstring).

    ``meta`` is the table of ``Store.collection`` (columns ``run_id`` and ``record``, one row per
    model, in the collection's order). Returns sorted row positions.
    """
    for col in ("run_id", "record"):
        if col not in meta.columns:
            raise ValueError(f"`meta` needs a {col!r} column for stratified landmarks")
    groups = [np.flatnonzero(mask) for mask in
              (meta["run_id"].to_numpy() == r for r in pd.unique(meta["run_id"]))]
    groups = [g[np.argsort(meta["record"].to_numpy()[g], kind="stable")] for g in groups]
    if n_landmarks < len(groups):
        picks = np.linspace(0, len(groups) - 1, n_landmarks).round().astype(int)
        return np.sort([groups[p][-1] for p in picks])
    sizes = np.array([len(g) for g in groups], dtype=float)
    share = 1 + (n_landmarks - len(groups)) * (sizes - 1) / max(1.0, (sizes - 1).sum())
    counts = np.minimum(np.floor(share).astype(int), sizes.astype(int))
    remainder = share - np.floor(share)
    for i in np.argsort(-remainder, kind="stable"):
        if counts.sum() >= n_landmarks:
            break
        if counts[i] < sizes[i]:
            counts[i] += 1
    out = []
    for g, c in zip(groups, counts, strict=True):
        out.extend(g[np.unique(np.linspace(0, len(g) - 1, c).round().astype(int))])
    return np.sort(np.array(out, dtype=np.int64))


@dataclass
class LandmarkInPCA:
    """Result of :func:`landmark_inpca`.

    Attributes
    ----------
    embedding : ndarray, shape (M, k)
        Every model, landmarks included (their rows equal the landmark fit's ``embedding_``).
    landmarks : ndarray of int, shape (L,)
    model : InPCA
        Fitted on the L × L landmark distances (``metric="precomputed"``).
    columns : ndarray, shape (M, L)
        ``D[:, landmarks]``, the only distances computed.
    rule : str
    """

    embedding: np.ndarray
    landmarks: np.ndarray
    model: object
    columns: np.ndarray
    rule: str

    @property
    def signature(self) -> np.ndarray:
        return self.model.signature_


def landmark_inpca(X=None, *, D=None, n_landmarks: int, n_components: int = 3,
                   rule: str = "farthest", meta: pd.DataFrame | None = None,
                   metric: str = "bhattacharyya", eps: float = DEFAULT_EPS,
                   solver: str = "auto", random_state=None,
                   progress: bool = False) -> LandmarkInPCA:
    """InPCA of M models fitted on ``n_landmarks`` of them, the rest placed out of sample.

    Parameters
    ----------
    X : array-like, shape (M, N, C), optional
        The models (a ``LazyCollection`` works); columns of D are computed from it on demand.
    D : array-like, shape (M, M), optional
        Or the distances themselves (only the landmark columns are read).
    n_landmarks : int
        L, ``n_components ≤ L ≤ M``.
    rule : {"farthest", "stratified"}
        See the module docstring; ``"stratified"`` needs ``meta`` (``Store.collection``'s table).
    metric : str
        With ``X``: ``"bhattacharyya"`` (D = d_B) or ``"hellinger"``/``"geodesic"`` (D = d²).
    progress : bool
        Progress bars: over the landmarks (farthest), or over samples while the landmark columns
        are computed from ``X`` (stratified).
    """
    from taskspace.geometry.inpca import InPCA
    from taskspace.geometry.pairwise import pairwise_distances

    if (X is None) == (D is None):
        raise ValueError("give exactly one of `X` (models) and `D` (distances)")
    if rule not in RULES:
        raise ValueError(f"unknown landmark rule {rule!r}; choose one of {RULES}")
    m = int(X.shape[0] if X is not None else D.shape[0])
    if isinstance(n_landmarks, bool) or not isinstance(n_landmarks, int | np.integer) or \
            not n_components <= n_landmarks <= m:
        raise ValueError(f"`n_landmarks` must be an integer in [n_components, M] = "
                         f"[{n_components}, {m}], got {n_landmarks!r}")
    if X is not None:
        def distances_to(idx):
            d = pairwise_distances(X, np.asarray(X[np.asarray(idx)]), metric=metric, eps=eps,
                                   progress=progress and rule == "stratified")
            return d * d if metric in ("hellinger", "geodesic") else d
    else:
        def distances_to(idx):
            idx = np.asarray(idx)
            if hasattr(D, "get_orthogonal_selection"):
                return D.get_orthogonal_selection((slice(None), idx))
            return np.asarray(D[:, idx])
    if rule == "farthest":
        landmarks, columns = farthest_point_landmarks(distances_to, m, int(n_landmarks),
                                                      progress=progress)
    else:
        if meta is None or len(meta) != m:
            raise ValueError("rule 'stratified' needs `meta`, one row per model")
        landmarks = stratified_landmarks(meta, int(n_landmarks))
        columns = np.asarray(distances_to(landmarks), dtype=np.float64)
    block = columns[landmarks]
    block = 0.5 * (block + block.T)
    np.fill_diagonal(block, 0.0)
    model = InPCA(n_components=n_components, metric="precomputed", solver=solver,
                  random_state=random_state).fit(block)
    embedding = model.transform(columns)
    return LandmarkInPCA(embedding, landmarks, model, columns, rule)


def reconstructed_distances(embedding: np.ndarray, signature: np.ndarray) -> np.ndarray:
    """``D̂_ij = Σ_k s_k (x_ik − x_jk)²``, shape (M, M)."""
    sq = (embedding * embedding) @ signature
    gram = (embedding * signature) @ embedding.T
    return sq[:, None] + sq[None, :] - 2.0 * gram


def landmark_error(D, embedding: np.ndarray, signature: np.ndarray) -> float:
    """Relative error ``‖D̂ − D‖_F / ‖D‖_F`` of the distances an embedding reproduces.

    Compare the landmark embedding's value with the full fit's (same k): the difference is what
    the landmark approximation costs. Needs all of D (for an evaluation, on a subset of models).
    """
    D = np.asarray(D, dtype=np.float64)
    diff = reconstructed_distances(embedding, signature) - D
    np.fill_diagonal(diff, 0.0)
    return float(np.linalg.norm(diff) / np.linalg.norm(D))
