"""Distances and InPCA embeddings of a store's models: the choices behind ``taskspace distances``
and ``taskspace embed``, as functions a Python user calls too.

Two decisions are made here, once:

* where the distances come from: the store's distance cache, extended in this process or on a
  Dask cluster (`taskspace.distributed`) with whatever it lacks (`compute_distances`);
* which embedding (`embed_store`): ``"dense"`` InPCA of the (M, M) matrix in memory,
  ``"out-of-core"`` InPCA streaming the cache (``InPCA(solver="out-of-core")``, D never held
  whole), or ``"landmark"`` InPCA reading M·L distances (`LandmarkInPCA`), from the cache when it
  holds every model and otherwise computed from the predictions.

>>> from taskspace.embedding import embed_store                           # doctest: +SKIP
>>> result = embed_store(store, "task == 'a'", n_components=3, method="landmark",
...                      n_landmarks=500)                                  # doctest: +SKIP
>>> result.estimator.embedding_.shape, result.source                       # doctest: +SKIP
((12000, 3), 'predictions')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taskspace.geometry import InPCA, LandmarkInPCA
from taskspace.geometry.landmarks import RULES

#: The embeddings `embed_store` makes.
METHODS = ("dense", "out-of-core", "landmark")

#: Metrics whose distance InPCA squares (classical MDS on them); the cache holds d, not d².
_SQUARED = ("hellinger", "geodesic")


def compute_distances(
    store,
    query=None,
    metric: str = "bhattacharyya",
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    tile: int | None = None,
    return_matrix: bool = True,
    progress: bool = False,
) -> tuple[np.ndarray | None, list[str]]:
    """Distances among the models a query selects, through the store's cache.

    Only the pairs the cache lacks are computed: on Dask when ``scheduler`` (an address) or
    ``n_workers`` (a local cluster) is given (`taskspace.distributed.distributed_distances`),
    otherwise in this process (`Store.distance_matrix`).

    Parameters
    ----------
    store : Store
        Opened for appending (``Store.open(path, "a")``).
    query : str, dict, callable or None
        As in ``Store.collection`` (None: every model).
    metric : {"bhattacharyya", "hellinger", "geodesic"}
        Also the cache key.
    return_matrix : bool
        False: the Dask path only fills the cache (tile by tile, the M×M matrix never in memory)
        and returns None for it; the in-process path always builds it.

    Returns
    -------
    D : ndarray of float64, shape (M, M), or None
    model_ids : list of str, length M
        In the order of ``Store.collection(query)``.
    """
    if scheduler is not None and n_workers is not None:
        raise ValueError("give `scheduler` or `n_workers`, not both")
    _, table = store.collection(query)
    ids = list(table["model_id"])
    if scheduler is None and n_workers is None:
        return store.distance_matrix(ids, metric=metric, progress=progress), ids
    from taskspace.distributed import distributed_distances

    D = distributed_distances(
        store,
        query,
        metric,
        scheduler=scheduler,
        n_workers=n_workers,
        tile=tile,
        progress=progress,
        return_matrix=return_matrix,
    )
    return D, ids


def off_diagonal_range(D) -> tuple[float, float] | None:
    """(min, max) of the off-diagonal entries of a square (M, M) array-like, read one block of
    rows at a time (~128 MB); None for a single model."""
    m = D.shape[0]
    if m < 2:
        return None
    lo, hi = np.inf, -np.inf
    step = max(1, (1 << 24) // m)
    for r0 in range(0, m, step):
        block = np.array(D[r0 : min(m, r0 + step)], dtype=np.float64)  # a copy: NaN goes in
        block[np.arange(len(block)), np.arange(r0, r0 + len(block))] = np.nan
        lo, hi = min(lo, np.nanmin(block)), max(hi, np.nanmax(block))
    return float(lo), float(hi)


@dataclass(frozen=True)
class StoreEmbedding:
    """What `embed_store` made.

    Attributes
    ----------
    model_ids : list of str, length M
        Rows of the embedding.
    estimator : InPCA or LandmarkInPCA
        Fitted; ``estimator.embedding_`` is (M, k).
    method : {"dense", "out-of-core", "landmark"}
    source : {"cache", "predictions"}
        Where the distances the fit read came from.
    """

    model_ids: list[str]
    estimator: InPCA | LandmarkInPCA
    method: str
    source: str

    def save(self, path) -> Path:
        """Write the embedding: ``.npz`` (``model_id``, ``embedding``, ``eigenvalues``,
        ``signature``, ``explained_stress``) or ``.csv`` (``model_id``, ``axis_1``...)."""
        path = Path(path)
        if path.suffix not in (".npz", ".csv"):
            raise ValueError(f"`path` must end in .npz or .csv, got {path.name!r}")
        est = self.estimator
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".npz":
            np.savez(
                path,
                model_id=np.array(self.model_ids),
                embedding=est.embedding_,
                eigenvalues=est.eigenvalues_,
                signature=est.signature_,
                explained_stress=est.explained_stress_,
            )
            return path
        import pandas as pd

        E = est.embedding_
        frame = pd.DataFrame(E, columns=[f"axis_{i + 1}" for i in range(E.shape[1])])
        frame.insert(0, "model_id", self.model_ids)
        frame.to_csv(path, index=False)
        return path


def embed_store(
    store,
    query=None,
    metric: str = "bhattacharyya",
    n_components: int = 3,
    *,
    method: str = "dense",
    n_landmarks: int | None = None,
    rule: str = "farthest",
    scheduler: str | None = None,
    n_workers: int | None = None,
    tile: int | None = None,
    random_state=0,
    progress: bool = False,
) -> StoreEmbedding:
    """InPCA embedding of the models a query selects, computing missing distances first.

    Parameters
    ----------
    store : Store
        Opened for appending; read only is enough for ``method="landmark"`` without a cluster,
        which writes nothing to the store.
    query, metric, scheduler, n_workers, tile
        As in `compute_distances`.
    n_components : int
        Axes k.
    method : {"dense", "out-of-core", "landmark"}
        ``"dense"``: the (M, M) matrix in memory (``d²`` for Hellinger and geodesic).
        ``"out-of-core"``: fill the cache, then stream it (``metric="bhattacharyya"`` only: the
        cache holds d, InPCA of the other metrics needs d²). ``"landmark"``: `LandmarkInPCA` on
        ``min(n_landmarks, M)`` landmarks; with a cluster the cache is filled first; the landmark
        columns are read from the cache when it holds every model (Bhattacharyya), otherwise
        computed from the predictions (``farthest``: one pass over them per landmark;
        ``stratified``: one pass).
    n_landmarks : int
        L, required by ``method="landmark"``.
    rule : {"farthest", "stratified"}
        Landmark rule.
    random_state : int, RandomState or None
        Seeds the Lanczos starting vectors.
    progress : bool
        Progress bars.

    Returns
    -------
    StoreEmbedding
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {', '.join(METHODS)}, got {method!r}")
    dask = {"scheduler": scheduler, "n_workers": n_workers, "tile": tile, "progress": progress}
    if method == "landmark":
        return _landmark(store, query, metric, n_components, n_landmarks, rule, dask, random_state)
    if method == "out-of-core" and metric in _SQUARED:
        raise ValueError(
            "the out-of-core embedding supports metric 'bhattacharyya' only (the "
            "cache holds d, InPCA needs d² for the other metrics)"
        )
    D, ids = compute_distances(store, query, metric, return_matrix=method == "dense", **dask)
    if method == "out-of-core":
        del D
        model = InPCA(
            n_components=n_components,
            metric="precomputed",
            solver="out-of-core",
            random_state=random_state,
        ).fit(store.cached_distances(ids, metric))
        return StoreEmbedding(ids, model, method, "cache")
    if metric in _SQUARED:
        D = D * D  # InPCA is classical MDS on the squared metric (SPEC §10)
    model = InPCA(n_components=n_components, metric="precomputed", random_state=random_state).fit(D)
    return StoreEmbedding(ids, model, method, "cache")


def _landmark(store, query, metric, n_components, n_landmarks, rule, dask, random_state):
    from taskspace.store.cache import cached_ids

    if n_landmarks is None:
        raise ValueError("method 'landmark' needs `n_landmarks`")
    if rule not in RULES:
        raise ValueError(f"`rule` must be one of {', '.join(RULES)}, got {rule!r}")
    if dask["scheduler"] is not None or dask["n_workers"] is not None:
        compute_distances(store, query, metric, return_matrix=False, **dask)
    X, table = store.collection(query)
    ids = list(table["model_id"])
    est = LandmarkInPCA(
        n_components=n_components,
        n_landmarks=min(n_landmarks, len(ids)),
        rule=rule,
        metric=metric,
        random_state=random_state,
        progress=dask["progress"],
    )
    cached = set(cached_ids(store.path, metric)) if metric not in _SQUARED else set()
    if cached.issuperset(ids):
        est.set_params(metric="precomputed").fit(store.cached_distances(ids, metric), meta=table)
        return StoreEmbedding(ids, est, "landmark", "cache")
    est.fit(X, meta=table)
    return StoreEmbedding(ids, est, "landmark", "predictions")
