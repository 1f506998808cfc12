"""The `taskspace distances` and `taskspace embed` commands (registered by :mod:`taskspace.cli`).

``distances`` fills the store's distance cache, on a Dask cluster (``--scheduler`` an existing
one, ``--workers N`` a local one) or in this process; ``embed`` runs InPCA on the cached matrix
(computing what is missing first) and writes the embedding to ``.npz`` or ``.csv``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer

from taskspace.cli._console import make_console

console = make_console()

_STORE = typer.Argument(..., metavar="STORE", help="The taskspace store (a directory).")
_QUERY = typer.Option(None, "--query", "-q", metavar="QUERY",
                      help="pandas query over the model table, e.g. \"task == 'a'\".")
_METRIC = typer.Option("bhattacharyya", "--metric", metavar="NAME",
                       help="bhattacharyya, hellinger or geodesic.")
_SCHEDULER = typer.Option(None, "--scheduler", metavar="ADDR",
                          help="Address of a running Dask scheduler (tcp://host:8786).")
_WORKERS = typer.Option(None, "--workers", min=1, metavar="N",
                        help="Start a local Dask cluster of N worker processes.")
_TILE = typer.Option(None, "--tile", min=1, metavar="T",
                     help="Models per tile side (default: automatic).")
#: Largest collection whose distance range `distances` reads back from the cache to print.
RANGE_MAX_MODELS = 20_000


def _compute(store_path: Path, query, metric, scheduler, workers, tile,
             materialise: bool = True) -> tuple[np.ndarray | None, list]:
    """Distances of the query's models: on Dask when asked, else in this process (both cached).

    With ``materialise=False`` the Dask path only fills the cache (tile by tile, never the whole
    matrix in memory) and returns None for the matrix; the in-process path always builds it.
    """
    from taskspace.store import Store

    if scheduler is not None and workers is not None:
        raise ValueError("give --scheduler or --workers, not both")
    store = Store.open(store_path, mode="a")
    _, table = store.collection(query)
    ids = list(table["model_id"])
    if scheduler is None and workers is None:
        return store.distance_matrix(ids, metric=metric, progress=True), ids
    from taskspace.distributed import distributed_distances

    D = distributed_distances(store_path, query, metric, scheduler=scheduler, n_workers=workers,
                              tile=tile, progress=True, return_matrix=materialise)
    return D, ids


def _off_diagonal_range(D) -> tuple[float, float] | None:
    """(min, max) of the off-diagonal entries of a square matrix or row-block view, read one
    block of rows at a time; None for a single model."""
    m = D.shape[0]
    if m < 2:
        return None
    lo, hi = np.inf, -np.inf
    step = max(1, (1 << 24) // m)     # ~128 MB of float64 rows per block
    for r0 in range(0, m, step):
        block = np.array(D[r0:min(m, r0 + step)], dtype=np.float64)   # a copy: NaN goes in
        block[np.arange(len(block)), np.arange(r0, r0 + len(block))] = np.nan
        lo, hi = min(lo, np.nanmin(block)), max(hi, np.nanmax(block))
    return float(lo), float(hi)


def distances(
    store: Path = _STORE, query: str | None = _QUERY, metric: str = _METRIC,
    scheduler: str | None = _SCHEDULER, workers: int | None = _WORKERS, tile: int | None = _TILE,
) -> None:
    """Compute the pairwise distances of a store's models into its distance cache.

    Only pairs the cache lacks are computed. With --scheduler or --workers the work is split into
    tiles on Dask (an interrupted run resumes with the missing tiles); otherwise it runs here.
    """
    t0 = time.perf_counter()
    D, ids = _compute(store, query, metric, scheduler, workers, tile, materialise=False)
    # The range is a check a person can read; past RANGE_MAX_MODELS it would mean reading the
    # whole M × M matrix back (180 GB at 150,000 models) just to print two numbers.
    span = None
    if D is not None:
        span = _off_diagonal_range(D)
    elif len(ids) <= RANGE_MAX_MODELS:
        span = _off_diagonal_range(_cached_view(store, metric, ids))
    rng = f", range [{span[0]:.4g}, {span[1]:.4g}]" if span else ""
    console.print(f"{metric} distances of {len(ids)} models cached in {store} "
                  f"({time.perf_counter() - t0:.1f} s{rng})")


def embed(
    store: Path = _STORE, query: str | None = _QUERY, metric: str = _METRIC,
    components: int = typer.Option(3, "--components", "-k", min=1, metavar="K",
                                   help="Number of axes."),
    out: Path = typer.Option(None, "--out", metavar="FILE", help="Output: .npz or .csv "
                             "(default: embedding.npz beside the store)."),
    out_of_core: bool = typer.Option(False, "--out-of-core",
                                     help="Stream the cached matrix; never hold it in memory."),
    landmarks: int | None = typer.Option(
        None, "--landmarks", min=1, metavar="L",
        help="Fit on L landmark models only, place the rest out of sample (needs M·L distances: "
             "from the cache when it holds every model, else computed from the predictions)."),
    rule: str = typer.Option("farthest", "--rule", metavar="RULE",
                             help="Landmark rule: farthest (farthest-point) or stratified (by run "
                                  "and progress; one pass over the predictions)."),
    scheduler: str | None = _SCHEDULER, workers: int | None = _WORKERS, tile: int | None = _TILE,
) -> None:
    """InPCA embedding of a store's models (computing missing distances first).

    The embedding is written beside the store (as the report is) unless --out says otherwise;
    the path is printed.
    """
    out = out if out is not None else store.parent / "embedding.npz"
    if out.suffix not in (".npz", ".csv"):
        raise ValueError(f"--out must end in .npz or .csv, got {out.name!r}")
    if out_of_core and landmarks is not None:
        raise ValueError("give --out-of-core or --landmarks, not both")
    if out_of_core and metric in ("hellinger", "geodesic"):
        raise ValueError("--out-of-core supports --metric bhattacharyya only (the cache holds d, "
                         "InPCA needs d² for the other metrics)")
    if landmarks is not None:
        from taskspace.geometry.landmarks import RULES

        if rule not in RULES:
            raise ValueError(f"--rule must be one of {', '.join(RULES)}, got {rule!r}")
    if not store.exists():
        raise FileNotFoundError(f"no taskspace store at {store}: the path does not exist")
    if landmarks is not None:
        res, ids = _landmark_fit(store, query, metric, landmarks, rule, components, scheduler,
                                 workers, tile)
        values = res.eigenvalues_
        _write(out, ids, res.embedding_, values, res.signature_, res.explained_stress_)
        console.print(f"landmark InPCA of {len(ids)} models on {len(res.landmarks_)} {rule} "
                      f"landmarks, {len(values)} axes → {out}")
        _print_axes(values, res.explained_stress_, "of the landmarks' stress")
        return
    from taskspace.geometry.inpca import InPCA

    D, ids = _compute(store, query, metric, scheduler, workers, tile, materialise=not out_of_core)
    if metric in ("hellinger", "geodesic"):
        D = D * D   # InPCA is classical MDS on the squared metric (SPEC §10)
    if out_of_core:
        del D
        model = InPCA(n_components=components, metric="precomputed", solver="out-of-core",
                      random_state=0).fit(_cached_view(store, metric, ids))
        E, values, signature = model.embedding_, model.eigenvalues_, model.signature_
    else:
        model = InPCA(n_components=components, metric="precomputed", random_state=0).fit(D)
        E, values, signature = model.embedding_, model.eigenvalues_, model.signature_
    stress = model.explained_stress_
    _write(out, ids, E, values, signature, stress)
    console.print(f"InPCA of {len(ids)} models, {len(values)} axes → {out}")
    _print_axes(values, stress)


def _print_axes(values, stress, of: str = "") -> None:
    for i, (lam, s) in enumerate(zip(values, stress, strict=True)):
        kind = "space-like" if lam > 0 else "time-like" if lam < 0 else "null"
        console.print(f"  axis {i + 1}: λ = {lam:+.5g} ({kind}), explained stress {s:.4f}"
                      + (f" {of}" if of else ""))


def _landmark_fit(store_path: Path, query, metric, n_landmarks, rule, components, scheduler,
                  workers, tile):
    """Landmark InPCA of the query's models, reading only M·L distances.

    With a Dask cluster the missing distances are computed into the cache first; then (or when
    the cache already holds every model) the landmark columns are read from the cache. Otherwise
    they are computed from the predictions (``farthest``: one pass over them per landmark;
    ``stratified``: one pass).
    """
    from taskspace.geometry import LandmarkInPCA
    from taskspace.geometry.landmarks import RULES
    from taskspace.store import Store
    from taskspace.store.cache import cached_ids

    if rule not in RULES:
        raise ValueError(f"--rule must be one of {', '.join(RULES)}, got {rule!r}")
    if scheduler is not None or workers is not None:
        _compute(store_path, query, metric, scheduler, workers, tile, materialise=False)
    store = Store.open(store_path)
    X, table = store.collection(query)
    ids = list(table["model_id"])
    L = min(n_landmarks, len(ids))
    if L < n_landmarks:
        console.print(f"--landmarks {n_landmarks} is more than the {len(ids)} models selected: "
                      f"using all {len(ids)} as landmarks")
    cached = set(cached_ids(store.path, metric)) if metric == "bhattacharyya" else set()
    if cached.issuperset(ids):
        D = _cached_view(store_path, metric, ids)
        res = LandmarkInPCA(n_components=components, n_landmarks=L, rule=rule,
                            metric="precomputed", random_state=0, progress=True).fit(D, meta=table)
    else:
        res = LandmarkInPCA(n_components=components, n_landmarks=L, rule=rule, metric=metric,
                            random_state=0, progress=True).fit(X, meta=table)
    return res, ids


def _cached_view(store_path: Path, metric: str, ids: list[str]):
    """Rows of the cached matrix for ``ids`` (in that order), read on demand."""
    from taskspace.store import Store

    return Store.open(store_path).cached_distances(ids, metric)


def _write(out: Path, ids, E, values, signature, stress) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        np.savez(out, model_id=np.array(ids), embedding=E, eigenvalues=values,
                 signature=signature, explained_stress=stress)
        return
    import pandas as pd

    frame = pd.DataFrame(E, columns=[f"axis_{i + 1}" for i in range(E.shape[1])])
    frame.insert(0, "model_id", ids)
    frame.to_csv(out, index=False)


def register(app: typer.Typer) -> None:
    """Add the commands to the `taskspace` app."""
    app.command()(distances)
    app.command()(embed)
