"""Intensive principal component analysis, InPCA (SPEC §10; Quinn et al., PNAS 2019).

Classical multidimensional scaling that keeps the negative eigenvalues: the Bhattacharyya distance
is not a squared Euclidean distance, so ``W = −½ J D J`` is indefinite, and its negative eigenvalues
become "time-like" axes of a Minkowski-like embedding that reproduces D exactly.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from taskspace.geometry._eigen import (
    SOLVERS,
    choose_solver,
    double_center,
    eigen_by_magnitude,
    explained_distance,
    explained_stress,
)
from taskspace.geometry._kernels_inpca import distance_matrix_faults, row_max_abs
from taskspace.geometry.estimator_params import (
    IntAtLeast,
    OneOf,
    RandomState,
    RealBetween,
    check_params,
)
from taskspace.geometry.labelled import is_data_array, labelled_embedding, labelled_models
from taskspace.geometry.pairwise import pairwise_distances
from taskspace.geometry.validation import METRICS
from taskspace.geometry.weights import normalized_weights

#: A precomputed D may be asymmetric, have a non-zero diagonal or negative entries by this much,
#: relative to its largest entry (float32 storage, distances computed in another order); beyond that
#: it is not a distance matrix. Within it, D is symmetrised and its diagonal ignored.
DISTANCE_TOLERANCE = 1e-6

#: Metrics whose distance is squared before centring, so that InPCA is classical MDS on them.
_SQUARED = ("hellinger", "geodesic")


class InPCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Intensive principal component analysis of a collection of models (SPEC §10).

    ``W = −½ J D J`` (``J = I − 11ᵀ/M``) is decomposed as ``V Λ Vᵀ`` with eigenvalues ordered by
    ``|λ|`` descending; the embedding is ``X = V |Λ|^{1/2}`` with signature ``s = sign(λ)``, so that
    with all components ``Σ_k s_k (X_ik − X_jk)² = D_ij``.

    With ``weights`` (SPEC §10) the centring is weighted, ``W = −½ J_w D J_wᵀ`` with
    ``J_w = I − 1wᵀ/M``, the eigenproblem is the symmetric ``W̃ = diag(√w) W diag(√w) = U Λ Uᵀ``
    and ``X = diag(w)^{−1/2} U |Λ|^{1/2}``: a model of weight 2 sits where two copies of it
    would, and pulls on the axes as much as they would.

    Parameters
    ----------
    n_components : int or None, default=3
        Number of axes k, ``1 ≤ k ≤ M``. ``None``: all M (dense solver). W has rank at most M − 1 (J
        removes the constant vector), so the last axes may have eigenvalue 0: they are kept, with
        signature 0 and a zero column.
    metric : {"bhattacharyya", "hellinger", "geodesic", "precomputed"}, default="bhattacharyya"
        ``"bhattacharyya"``: ``D = d_B`` (the paper's choice; ``d_B`` already behaves as a squared
        distance, ``d_B ≈ d_H²`` for nearby models). ``"hellinger"``, ``"geodesic"``: ``D = d²``,
        i.e. classical MDS on that metric (``W`` is then positive semi-definite for Hellinger).
        ``"precomputed"``: ``X`` is D itself, on the scale of ``d_B`` (or of a squared distance).
    solver : {"auto", "dense", "partial", "out-of-core"}, default="auto"
        ``"dense"``: ``scipy.linalg.eigh`` of W, O(M³). ``"partial"``: Lanczos
        (``scipy.sparse.linalg.eigsh``, ``which="LM"``) for the k eigenvalues of largest magnitude
        from both ends of the spectrum; falls back to dense when ``k ≥ M − 1``. ``"auto"``: partial
        when ``M ≥ 200`` and ``k ≤ M/6``, else dense (measured crossover,
        ``benchmarks/bench_inpca.py --crossover``). ``"out-of-core"`` (``metric="precomputed"``
        only, ``1 ≤ k ≤ M − 2``): Lanczos on W as an operator, D any array-like that slices rows
        (a Zarr array, ``Store.cached_distances``, a memmap) read in blocks and never held whole
        (`taskspace.geometry.inpca_ooc`); D is checked for finiteness block by block, not for
        symmetry. The fitted ``solver_`` says which ran.
    eps : float, default=1e-9
        Floor of the Bhattacharyya coefficient (SPEC §3); used with ``metric="bhattacharyya"``.
    random_state : int, RandomState or None, default=None
        Seeds the Lanczos starting vector. Eigenvector signs are fixed afterwards (largest entry of
        each column positive), so results agree across seeds and solvers up to rounding.
    block_rows : int or None, default=None
        Rows of D per block for ``solver="out-of-core"`` (default: 128 MiB of float64).
    weights : array-like of shape (M,) or None, default=None
        Non-negative weight of each model (finite, positive sum), scaled to mean 1; ``None`` or
        equal weights: the unweighted fit. For example ``1 / (runs × records of the run)`` so that
        every run counts once whatever its number of records. A model of weight 0 does not shape
        the axes and is placed out of sample (as `transform` would place it). Every solver
        supports weights.

    Attributes
    ----------
    embedding_ : ndarray of shape (M, k)
        ``X = V_k |Λ_k|^{1/2}`` (``diag(w)^{−1/2} U_k |Λ_k|^{1/2}`` with weights).
    eigenvalues_ : ndarray of shape (k,)
        ``λ_1..λ_k`` of W (of W̃ with weights), ``|λ|`` descending; those zero to rounding are
        exactly 0. They grow with M (``λ/M`` is the variance along the axis): two copies of every
        model double them.
    signature_ : ndarray of int of shape (k,)
        ``sign(λ)``: +1 for space-like axes, −1 for time-like ("imaginary") ones, 0 for null ones.
    explained_stress_ : ndarray of shape (k,)
        ``explained_stress_[k−1] = 1 − sqrt(1 − Σ_{i≤k} λ_i² / ‖W‖_F²)``, with ``‖W‖_F²`` computed
        from W (never from the whole spectrum); non-decreasing, 1 once all non-zero axes are in.
        With weights, of W̃.
    explained_distance_ : ndarray of shape (k,)
        ``explained_distance_[k−1] = 1 − ‖D − D_k‖_F / ‖D‖_F``, D_k the distances the first k axes
        reproduce, ``(D_k)_ij = Σ_{a≤k} s_a (X_ia − X_ja)²``: how faithful the picture's distances
        are. In closed form from the k eigenpairs, ``diag(W)`` and ``‖W‖_F`` (SPEC §10), never from
        D_k. With weights, in the weighted norm ``‖A‖_w² = Σ_ij w_i w_j A_ij²``.
    eigenvectors_ : ndarray of shape (M, k)
        ``V_k`` (``U_k`` with weights), orthonormal columns, largest-magnitude entry of each
        column positive (with weights: of each column of ``embedding_``).
    weights_ : ndarray of shape (M,)
        The weights scaled to mean 1; all ones without weights.
    distance_means_ : ndarray of shape (M,)
        (Weighted) column means of (the symmetrised) D, ``r = D w / M``, for out-of-sample points.
    distance_grand_mean_ : float
        (Weighted) mean of all entries of D, ``wᵀ r / M``.
    n_components_ : int
        k actually used.
    solver_ : {"dense", "partial", "out-of-core"}
        The solver that ran.
    n_passes_ : int
        Passes over D (``solver="out-of-core"`` only).
    X_fit_ : array-like of shape (M, N, C)
        The fitted collection (a reference, not a copy), for ``transform``; absent when
        ``metric="precomputed"``.
    records_ : LabelledModels or None
        The fitted DataArray of models (dims record, sample, class) with its record
        coordinates, when ``fit`` was given one; ``fit_transform`` and ``transform`` of a
        DataArray then return DataArrays of dims (record, component) carrying them.

    Examples
    --------
    >>> import numpy as np, taskspace as ts
    >>> P = np.random.default_rng(0).dirichlet(np.ones(3), size=(20, 5))   # 20 models, N=5, C=3
    >>> D = ts.bhattacharyya(P[:, None], P[None, :])
    >>> inpca = ts.InPCA(n_components=2, metric="precomputed").fit(D)
    >>> inpca.embedding_.shape, inpca.signature_.dtype
    ((20, 2), dtype('int64'))
    """

    _param_rules: ClassVar[dict] = {
        "n_components": IntAtLeast(1, none=True),
        "metric": OneOf({*METRICS, "precomputed"}),
        "solver": OneOf({*SOLVERS, "out-of-core"}),
        "eps": RealBetween(0, 1),
        "random_state": RandomState(),
        "block_rows": IntAtLeast(1, none=True),
    }

    def __init__(
        self,
        n_components=3,
        metric="bhattacharyya",
        solver="auto",
        eps=1e-9,
        random_state=None,
        block_rows=None,
        weights=None,
    ):
        self.n_components = n_components
        self.metric = metric
        self.solver = solver
        self.eps = eps
        self.random_state = random_state
        self.block_rows = block_rows
        self.weights = weights

    def fit(self, X, y=None):
        """Fit the embedding of a collection, or of a precomputed distance matrix.

        Parameters
        ----------
        X : array-like of shape (M, N, C), or (M, M) with ``metric="precomputed"``
            Models (probabilities over C classes on N probe samples), or the matrix D.
        y : ignored

        Returns
        -------
        self : InPCA
        """
        self._check_params()
        self.records_ = None
        if is_data_array(X):
            if self.metric == "precomputed":
                raise ValueError(
                    "a DataArray of models needs metric='bhattacharyya' (or "
                    "another metric), not 'precomputed'"
                )
            X = self.records_ = labelled_models("X", X)
        if self.solver == "out-of-core":
            return self._fit_out_of_core(X)
        if hasattr(self, "n_passes_"):
            del self.n_passes_
        if self.metric == "precomputed":
            D = check_distance_matrix("X", X)
            self.n_features_in_ = D.shape[1]
            if hasattr(self, "X_fit_"):
                del self.X_fit_
        else:
            D = self._distances(X)
            self.X_fit_ = X
            if hasattr(self, "n_features_in_"):
                del self.n_features_in_
        n_points = D.shape[0]
        k = self._check_n_components(n_points)
        weights = normalized_weights(self.weights, n_points)

        W, means, grand_mean, frobenius_sq = double_center(D, weights)
        left_out = _rows_left_out(D, weights)
        del D
        diagonal = np.diagonal(W).copy()  # the dense solver overwrites W
        solver = choose_solver(self.solver, n_points, k)
        values, vectors = eigen_by_magnitude(W, k, solver, check_random_state(self.random_state))

        self._set_fitted(
            values, vectors, frobenius_sq, means, grand_mean, solver, weights, diagonal
        )
        return self._place_left_out(left_out)

    def _fit_out_of_core(self, D):
        from taskspace.geometry.inpca_ooc import eigen_out_of_core

        if self.metric != "precomputed":
            raise ValueError(
                "solver='out-of-core' needs metric='precomputed': X is then the "
                "(M, M) distance matrix, any array-like that slices rows"
            )
        if self.n_components is None:
            raise ValueError(
                "`n_components` must be an integer in [1, M − 2] for the "
                "out-of-core solver, got None"
            )
        weights = normalized_weights(self.weights, int(D.shape[0]))
        values, vectors, frobenius_sq, means, grand_mean, passes, diagonal = eigen_out_of_core(
            D,
            int(self.n_components),
            block_rows=self.block_rows,
            random_state=self.random_state,
            weights=weights,
        )
        self._set_fitted(
            values, vectors, frobenius_sq, means, grand_mean, "out-of-core", weights, diagonal
        )
        self.n_features_in_ = len(means)
        self.n_passes_ = passes
        if hasattr(self, "X_fit_"):
            del self.X_fit_
        left_out = None
        if weights is not None and not np.all(weights > 0):
            # Rows of a symmetric D; one at a time, as any array-like can give them.
            zero = np.flatnonzero(weights == 0)
            left_out = (zero, np.stack([np.asarray(D[i], dtype=np.float64) for i in zero]))
        return self._place_left_out(left_out)

    def _set_fitted(
        self, values, vectors, frobenius_sq, means, grand_mean, solver, weights, diagonal
    ):
        """Set the fitted attributes from the eigenpairs of W or W̃ (every solver)."""
        self.eigenvalues_ = values
        self.eigenvectors_ = vectors
        self.signature_ = np.sign(values).astype(np.int64)
        self.embedding_ = vectors * np.sqrt(np.abs(values))
        if weights is not None:
            # X = diag(w)^{−1/2} U |Λ|^{1/2}; rows of weight 0 are placed by _place_left_out.
            root = np.sqrt(weights)
            np.divide(self.embedding_, root[:, None], out=self.embedding_, where=root[:, None] > 0)
            self.embedding_[root == 0] = 0.0
            # Signs fixed on X rather than U (largest entry of each column positive), so that a
            # model of weight 2 gets the signs it would get as two copies.
            if values.size:
                biggest = np.argmax(np.abs(self.embedding_), axis=0)
                signs = np.sign(self.embedding_[biggest, np.arange(values.size)])
                signs[signs == 0] = 1.0
                self.embedding_ *= signs
                vectors *= signs
        self.explained_stress_ = explained_stress(values, frobenius_sq, len(vectors))
        self.explained_distance_ = explained_distance(
            values, vectors, diagonal, frobenius_sq, weights
        )
        self.weights_ = np.ones(len(vectors)) if weights is None else weights
        self.distance_means_ = means
        self.distance_grand_mean_ = grand_mean
        self.n_components_ = len(values)
        self.solver_ = solver
        return self

    def _place_left_out(self, left_out):
        """Embed the models of weight 0 from their rows of D, as out-of-sample points."""
        if left_out is not None:
            rows, d = left_out
            self.embedding_[rows] = self._project(d)
        return self

    def fit_transform(self, X, y=None):
        """Fit and return ``embedding_``, shape (M, k), without computing distances twice.

        For a DataArray ``X`` of dims (record, sample, class), a DataArray of dims (record,
        component) carrying ``X``'s record coordinates.
        """
        self.fit(X, y)
        if self.records_ is not None:
            return labelled_embedding(self.embedding_, self.records_)
        return self.embedding_

    def transform(self, X):
        """Place new models in the fitted embedding (SPEC §10, out-of-sample).

        With ``d`` the (M', M) distances from the new points to the fitted ones,
        ``B' = −½ (d − rowmean(d) − colmean(D) + mean(D))`` and ``X' = B' V_k |Λ_k|^{−1/2} S_k``;
        axes with eigenvalue 0 get coordinate 0. With weights the means are weighted
        (``rowmean(d) = d w / M``, ...) and ``X' = B' diag(√w) U_k |Λ_k|^{−1/2} S_k``. For a
        fitted point's own row of D this gives back its row of ``embedding_`` (whatever k, since
        ``W V_k = V_k Λ_k``).

        Parameters
        ----------
        X : array-like of shape (M', N, C), or (M', M) with ``metric="precomputed"``
            New models, or their distances to the fitted points, on the scale of D (``d_B``, or the
            squared distance for a precomputed Hellinger/geodesic D).

        Returns
        -------
        ndarray of shape (M', k)
        """
        check_is_fitted(self)
        if is_data_array(X) and self.metric != "precomputed":
            records = labelled_models("X", X)
            return labelled_embedding(self.transform(records), records)
        n_points = self.distance_means_.shape[0]
        if self.metric == "precomputed":
            d = check_cross_distances("X", X, n_points)
        else:
            d = self._distances(X, self.X_fit_)
        return self._project(d)

    def _project(self, d: np.ndarray) -> np.ndarray:
        """``X' = B' diag(√w) U_k |Λ_k|^{−1/2} S_k`` of (M', M) distances d (SPEC §10)."""
        weights = self.weights_
        uniform = bool(np.all(weights == 1.0))
        if uniform:
            B = d - d.mean(axis=1, keepdims=True)
        else:
            B = d - (d @ weights)[:, None] / len(weights)
        B -= self.distance_means_
        B += self.distance_grand_mean_
        B *= -0.5
        scale = np.zeros_like(self.eigenvalues_)
        nonzero = self.eigenvalues_ != 0.0
        scale[nonzero] = self.signature_[nonzero] / np.sqrt(np.abs(self.eigenvalues_[nonzero]))
        projection = self.eigenvectors_ * scale
        if not uniform:
            projection *= np.sqrt(weights)[:, None]
        return B @ projection

    # -- notebook display ------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        """Fitted: the interactive 3-D picture and the axes (``inpca_picture.inpca_html``);
        else scikit-learn's display of the estimator."""
        if not hasattr(self, "embedding_"):
            return self._repr_html_inner()
        from taskspace.geometry.inpca_picture import inpca_html

        return inpca_html(self)

    def _repr_mimebundle_(self, **kwargs):
        # Jupyter asks for the bundle first; scikit-learn's would show the estimator diagram.
        bundle = super()._repr_mimebundle_(**kwargs)
        if hasattr(self, "embedding_"):
            bundle["text/html"] = self._repr_html_()
        return bundle

    # -- internals -------------------------------------------------------------------------------

    def _check_params(self) -> None:
        check_params(type(self).__name__, self.get_params(deep=False), self._param_rules)

    def _check_n_components(self, n_points: int) -> int:
        if self.n_components is None:
            return n_points
        if self.n_components > n_points:
            raise ValueError(
                f"`n_components` = {self.n_components} exceeds the number of points M = {n_points}"
            )
        return int(self.n_components)

    def _distances(self, X, Y=None) -> np.ndarray:
        d = np.asarray(pairwise_distances(X, Y, metric=self.metric, eps=self.eps), dtype=np.float64)
        if self.metric in _SQUARED:
            d = d * d
        return d

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self.metric == "precomputed"
        tags.input_tags.three_d_array = self.metric != "precomputed"
        tags.input_tags.two_d_array = self.metric == "precomputed"
        tags.input_tags.positive_only = self.metric == "precomputed"
        return tags

    @property
    def _n_features_out(self) -> int:
        return self.eigenvalues_.shape[0]


def _rows_left_out(D: np.ndarray, weights: np.ndarray | None):
    """``(rows, S[rows])``: the models of weight 0 and their rows of the symmetrised D, or None."""
    if weights is None or np.all(weights > 0):
        return None
    rows = np.flatnonzero(weights == 0)
    return rows, 0.5 * (
        np.asarray(D[rows], dtype=np.float64) + np.asarray(D[:, rows], dtype=np.float64).T
    )


def _as_float_matrix(name: str, A) -> np.ndarray:
    try:
        arr = np.asarray(A)
    except Exception as exc:  # ragged nested lists and the like
        raise ValueError(f"`{name}` cannot be read as an array: {exc}") from exc
    if arr.dtype == object or arr.dtype.kind not in "fiub":
        raise ValueError(f"`{name}` must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D distance matrix, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"`{name}` is empty (shape {arr.shape})")
    return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)


def _check_finite_nonnegative(
    name: str, block: np.ndarray, tol: float, offset: tuple[int, int] = (0, 0)
) -> None:
    """Raise on the first non-finite, then the first negative (below −tol) entry of ``block``,
    which sits at ``offset`` in the user's matrix."""
    for bad, problem in (
        (lambda b: ~np.isfinite(b), "contains a non-finite value"),
        (lambda b: b < -tol, "has a negative distance"),
    ):
        mask = bad(block)
        if mask.any():
            i, j = (int(a) for a in np.unravel_index(int(np.flatnonzero(mask)[0]), mask.shape))
            value = block[i, j]
            shown = "NaN" if np.isnan(value) else f"{value:.6g}"
            raise ValueError(
                f"`{name}` {problem} ({shown}) at index {(i + offset[0], j + offset[1])}"
            )


def check_distance_matrix(name: str, D) -> np.ndarray:
    """Validate a precomputed (M, M) distance matrix: square, finite, symmetric, zero diagonal.

    Tolerances are ``DISTANCE_TOLERANCE`` times the largest entry. One parallel pass over D in
    tiles (no M² temporary); the first faulty row is then explained from the data.

    Returns
    -------
    ndarray of float32 or float64, shape (M, M)
        D itself when it is already such an array (no copy).

    Raises
    ------
    ValueError
        Naming the first bad index ``(i, j)`` and the problem.
    """
    D = _as_float_matrix(name, D)
    if D.shape[0] != D.shape[1]:
        # A non-finite entry is the more basic fault; report it first.
        _check_finite_nonnegative(name, D, np.inf)
        raise ValueError(f"`{name}` must be a square (M, M) distance matrix, got shape {D.shape}")
    scale = float(np.max(row_max_abs(D)))
    tol = DISTANCE_TOLERANCE * scale if np.isfinite(scale) else 0.0
    faulty = np.flatnonzero(distance_matrix_faults(D, tol))
    if faulty.size:
        _explain_fault(name, D, int(faulty[0]), tol)
    return D


def _explain_fault(name: str, D: np.ndarray, r: int, tol: float) -> None:
    """Raise for row r, the first row touched by a fault. Faults in its column come from rows
    below r (those above are clean), so in C order the row's own entries come first."""
    row = np.asarray(D[r], dtype=np.float64)
    column = np.asarray(D[:, r], dtype=np.float64)
    _check_finite_nonnegative(name, row[None, :], tol, offset=(r, 0))
    _check_finite_nonnegative(name, column[:, None], tol, offset=(0, r))
    asymmetric = np.flatnonzero(np.abs(row - column) > tol)
    if asymmetric.size:
        j = int(asymmetric[0])
        raise ValueError(
            f"`{name}` is not symmetric: D[{r}, {j}] = {row[j]:.6g} but "
            f"D[{j}, {r}] = {column[j]:.6g}"
        )
    raise ValueError(f"`{name}` must have a zero diagonal; D[{r}, {r}] = {row[r]:.6g}")


def check_cross_distances(name: str, d, n_points: int) -> np.ndarray:
    """Validate the (M', M) distances from new points to the M fitted ones; return float64."""
    d = _as_float_matrix(name, d)
    scale = float(np.max(np.abs(d)))
    _check_finite_nonnegative(name, d, DISTANCE_TOLERANCE * scale if np.isfinite(scale) else 0.0)
    if d.shape[1] != n_points:
        # The first clause is scikit-learn's wording for this error.
        raise ValueError(
            f"X has {d.shape[1]} features, but InPCA is expecting {n_points} features as input: "
            f"`{name}` must hold distances to the M = {n_points} fitted points, shape "
            f"(M', {n_points}); got shape {d.shape}"
        )
    return np.asarray(d, dtype=np.float64)
