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

`LandmarkInPCA` is the estimator. ``landmark_error`` measures what the approximation costs: the
relative error of the distances the embedding reconstructs, to be compared with that of the full
fit with the same k.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from taskspace.geometry._eigen import SOLVERS
from taskspace.geometry.callbacks import reporting
from taskspace.geometry.distances import DEFAULT_EPS
from taskspace.geometry.estimator_params import (
    FlagOrCallable,
    IntAtLeast,
    OneOf,
    RandomState,
    RealBetween,
    check_params,
)
from taskspace.geometry.validation import METRICS
from taskspace.geometry.weights import normalized_weights

RULES = ("farthest", "stratified")


def farthest_point_landmarks(
    distances_to: Callable, n_points: int, n_landmarks: int, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
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
    with reporting(progress, n_landmarks + 1, "farthest-point landmarks (columns of D)") as bar:
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
    groups = [
        np.flatnonzero(mask)
        for mask in (meta["run_id"].to_numpy() == r for r in pd.unique(meta["run_id"]))
    ]
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


class LandmarkInPCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """InPCA of M models fitted on ``n_landmarks`` of them, the rest placed out of sample.

    The InPCA of the L × L landmark block of D, then `InPCA.transform` of every model from its
    distances to the landmarks (landmark MDS): M·L distances instead of M²/2. Fitted attributes
    are those of `InPCA` (for the landmark fit) with ``embedding_`` holding every model.

    Parameters
    ----------
    n_components : int, default=3
        Number of axes k, ``1 ≤ k ≤ L``.
    n_landmarks : int, default=1000
        L, ``n_components ≤ L ≤ M``.
    rule : {"farthest", "stratified"}, default="farthest"
        How the landmarks are chosen (module docstring); ``"stratified"`` needs ``meta`` in `fit`.
    metric : {"bhattacharyya", "hellinger", "geodesic", "precomputed"}, default="bhattacharyya"
        As for `InPCA`: ``X`` models (columns of D computed on demand, ``D = d²`` for Hellinger
        and geodesic), or ``"precomputed"``: ``X`` is D, any (M, M) array-like of which only the
        landmark columns are read (``Store.cached_distances``, a Zarr array, a memmap).
    eps : float, default=1e-9
        Floor of the Bhattacharyya coefficient (SPEC §3).
    solver : {"auto", "dense", "partial"}, default="auto"
        Eigen-solver of the landmark fit (`InPCA`).
    random_state : int, RandomState or None, default=None
        Seeds the Lanczos starting vector of the landmark fit.
    progress : bool or callable, default=False
        Progress: over the landmarks (farthest), or over samples while the landmark columns are
        computed from models (stratified); a callable is a progress factory
        (`taskspace.geometry.callbacks`).
    weights : array-like of shape (M,) or None, default=None
        Weight of every model (as for `InPCA`); the landmark fit uses the landmarks' weights
        (at least one must be positive) and every model is placed with the weighted means.
        The choice of landmarks does not depend on them.

    Attributes
    ----------
    embedding_ : ndarray of shape (M, k)
        Every model, landmarks included (their rows are the landmark fit's own embedding).
    eigenvalues_, signature_, explained_stress_, explained_distance_, eigenvectors_ : ndarray
        Of the landmark fit (`InPCA`); ``explained_stress_`` and ``explained_distance_`` are
        the landmarks' (``landmark_error`` measures the distance error over all models).
    landmarks_ : ndarray of int of shape (L,)
        Row positions of the landmarks, in the order chosen.
    columns_ : ndarray of shape (M, L)
        ``D[:, landmarks_]``, the only distances computed or read.
    inpca_ : InPCA
        The fit on the L × L landmark block (``metric="precomputed"``).
    n_components_ : int
    solver_ : str
        The solver of the landmark fit.
    n_features_in_ : int
        L with ``metric="precomputed"``: what `transform` takes.
    landmark_models_ : array of shape (L, N, C)
        The landmark models, for `transform` (absent with ``metric="precomputed"``).

    Examples
    --------
    >>> import numpy as np, taskspace as ts
    >>> P = np.random.default_rng(0).dirichlet(np.ones(3), size=(40, 5))   # 40 models, N=5, C=3
    >>> est = ts.LandmarkInPCA(n_components=2, n_landmarks=10).fit(P)
    >>> est.embedding_.shape, est.landmarks_.shape
    ((40, 2), (10,))
    """

    _param_rules: ClassVar[dict] = {
        "n_components": IntAtLeast(1),
        "n_landmarks": IntAtLeast(1),
        "rule": OneOf(RULES),
        "metric": OneOf({*METRICS, "precomputed"}),
        "eps": RealBetween(0, 1),
        "solver": OneOf(SOLVERS),
        "random_state": RandomState(),
        "progress": FlagOrCallable(),
    }

    def __init__(
        self,
        n_components=3,
        n_landmarks=1000,
        rule="farthest",
        metric="bhattacharyya",
        eps=DEFAULT_EPS,
        solver="auto",
        random_state=None,
        progress=False,
        weights=None,
    ):
        self.n_components = n_components
        self.n_landmarks = n_landmarks
        self.rule = rule
        self.metric = metric
        self.eps = eps
        self.solver = solver
        self.random_state = random_state
        self.progress = progress
        self.weights = weights

    def fit(self, X, y=None, meta: pd.DataFrame | None = None):
        """Choose the landmarks, fit InPCA on them and place every model.

        Parameters
        ----------
        X : array-like of shape (M, N, C), or (M, M) with ``metric="precomputed"``
            Models (a ``LazyCollection`` works), or D.
        y : ignored
        meta : pandas.DataFrame, optional
            One row per model with ``run_id`` and ``record`` columns (``Store.collection``'s
            table); required by ``rule="stratified"``.

        Returns
        -------
        self : LandmarkInPCA
        """
        from taskspace.geometry.inpca import InPCA

        check_params(type(self).__name__, self.get_params(deep=False), self._param_rules)
        m = int(X.shape[0])
        if not self.n_components <= self.n_landmarks <= m:
            raise ValueError(
                f"`n_landmarks` must be an integer in [n_components, M] = "
                f"[{self.n_components}, {m}], got {self.n_landmarks!r}"
            )
        weights = normalized_weights(self.weights, m)
        distances_to = self._columns_of(X)
        if self.rule == "farthest":
            landmarks, columns = farthest_point_landmarks(
                distances_to, m, int(self.n_landmarks), progress=self.progress
            )
        else:
            if meta is None or len(meta) != m:
                raise ValueError("rule 'stratified' needs `meta`, one row per model")
            landmarks = stratified_landmarks(meta, int(self.n_landmarks))
            columns = np.asarray(distances_to(landmarks), dtype=np.float64)
        block = columns[landmarks]
        block = 0.5 * (block + block.T)
        np.fill_diagonal(block, 0.0)
        inner_weights = None if weights is None else weights[landmarks]
        if inner_weights is not None and not inner_weights.any():
            raise ValueError(
                "every landmark has weight 0: the landmark fit needs at least one "
                "positive weight among `weights[landmarks_]`"
            )
        inner = InPCA(
            n_components=self.n_components,
            metric="precomputed",
            solver=self.solver,
            random_state=self.random_state,
            weights=inner_weights,
        ).fit(block)
        self.inpca_, self.landmarks_, self.columns_ = inner, landmarks, columns
        self.embedding_ = inner.transform(columns)
        for name in (
            "eigenvalues_",
            "eigenvectors_",
            "signature_",
            "explained_stress_",
            "explained_distance_",
            "n_components_",
            "solver_",
        ):
            setattr(self, name, getattr(inner, name))
        if self.metric == "precomputed":
            self.n_features_in_ = len(landmarks)
            if hasattr(self, "landmark_models_"):
                del self.landmark_models_
        else:
            self.landmark_models_ = np.asarray(X[landmarks])
            if hasattr(self, "n_features_in_"):
                del self.n_features_in_
        return self

    def fit_transform(self, X, y=None, meta: pd.DataFrame | None = None):
        """Fit and return ``embedding_``, shape (M, k)."""
        return self.fit(X, y, meta=meta).embedding_

    def transform(self, X):
        """Place new models from their distances to the landmarks.

        Parameters
        ----------
        X : array-like of shape (M', N, C), or (M', L) with ``metric="precomputed"``
            New models, or their distances to the landmarks (columns in ``landmarks_`` order).

        Returns
        -------
        ndarray of shape (M', k)
        """
        check_is_fitted(self)
        if self.metric == "precomputed":
            return self.inpca_.transform(X)
        return self.inpca_.transform(self._distances(X, self.landmark_models_))

    # -- internals -------------------------------------------------------------------------------
    def _distances(self, X, Y, progress: bool = False) -> np.ndarray:
        from taskspace.geometry.pairwise import pairwise_distances

        d = pairwise_distances(X, Y, metric=self.metric, eps=self.eps, progress=progress)
        return d * d if self.metric in ("hellinger", "geodesic") else d

    def _columns_of(self, X) -> Callable:
        """``distances_to(idx)``: the (M, len(idx)) distances of every model to models idx."""
        if self.metric != "precomputed":
            stream = self.progress and self.rule == "stratified"
            return lambda idx: self._distances(X, np.asarray(X[np.asarray(idx)]), stream)

        def from_matrix(idx):
            idx = np.asarray(idx)
            if hasattr(X, "get_orthogonal_selection"):
                return X.get_orthogonal_selection((slice(None), idx))
            return np.asarray(X[:, idx])

        return from_matrix

    @property
    def _n_features_out(self) -> int:
        return self.eigenvalues_.shape[0]


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
