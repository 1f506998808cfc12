"""The `taskspace distances` and `taskspace embed` commands (registered by :mod:`taskspace.cli`).

``distances`` fills the store's distance cache, on a Dask cluster (``--scheduler`` an existing
one, ``--workers N`` a local one) or in this process; ``embed`` runs InPCA on the cached matrix
(computing what is missing first) and writes the embedding to ``.npz`` or ``.csv``. What they
decide is `taskspace.embedding`'s; here the arguments are read, the store opened once, and the
result printed.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from taskspace.cli._console import make_console

console = make_console()

_STORE = typer.Argument(..., metavar="STORE", help="The taskspace store (a directory).")
_QUERY = typer.Option(
    None,
    "--query",
    "-q",
    metavar="QUERY",
    help="pandas query over the model table, e.g. \"task == 'a'\".",
)
_METRIC = typer.Option(
    "bhattacharyya",
    "--metric",
    metavar="NAME",
    help="bhattacharyya, hellinger, geodesic or symmetric_kl.",
)
_SCHEDULER = typer.Option(
    None,
    "--scheduler",
    metavar="ADDR",
    help="Address of a running Dask scheduler (tcp://host:8786).",
)
_WORKERS = typer.Option(
    None, "--workers", min=1, metavar="N", help="Start a local Dask cluster of N worker processes."
)
_TILE = typer.Option(
    None, "--tile", min=1, metavar="T", help="Models per tile side (default: automatic)."
)
#: Largest collection whose distance range `distances` reads back from the cache to print.
RANGE_MAX_MODELS = 20_000


def _open(store: Path, scheduler, workers, mode: str = "a"):
    """The store, opened once for the whole command (after every argument is checked): for
    appending where the command fills the cache, else read only (opening for appending repairs
    what killed writers left, which a command that only reads has no business doing)."""
    if scheduler is not None and workers is not None:
        raise ValueError("give --scheduler or --workers, not both")
    if not store.exists():
        raise FileNotFoundError(f"no taskspace store at {store}: the path does not exist")
    from taskspace.store import Store

    return Store.open(store, mode=mode)


def distances(
    store: Path = _STORE,
    query: str | None = _QUERY,
    metric: str = _METRIC,
    scheduler: str | None = _SCHEDULER,
    workers: int | None = _WORKERS,
    tile: int | None = _TILE,
) -> None:
    """Compute the pairwise distances of a store's models into its distance cache.

    Only pairs the cache lacks are computed. With --scheduler or --workers the work is split into
    tiles on Dask (an interrupted run resumes with the missing tiles); otherwise it runs here.
    """
    from taskspace.embedding import compute_distances, off_diagonal_range

    t0 = time.perf_counter()
    s = _open(store, scheduler, workers)
    D, ids = compute_distances(
        s,
        query,
        metric,
        scheduler=scheduler,
        n_workers=workers,
        tile=tile,
        return_matrix=False,
        progress=True,
    )
    # The range is a check a person can read; past RANGE_MAX_MODELS it would mean reading the
    # whole M × M matrix back (180 GB at 150,000 models) just to print two numbers.
    if D is None and len(ids) <= RANGE_MAX_MODELS:
        D = s.cached_distances(ids, metric)
    span = off_diagonal_range(D) if D is not None else None
    rng = f", range [{span[0]:.4g}, {span[1]:.4g}]" if span else ""
    console.print(
        f"{metric} distances of {len(ids)} models cached in {store} "
        f"({time.perf_counter() - t0:.1f} s{rng})"
    )


def embed(
    store: Path = _STORE,
    query: str | None = _QUERY,
    metric: str = _METRIC,
    components: int = typer.Option(
        3, "--components", "-k", min=1, metavar="K", help="Number of axes."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        metavar="FILE",
        help="Output: .npz or .csv (default: embedding.npz beside the store).",
    ),
    out_of_core: bool = typer.Option(
        False, "--out-of-core", help="Stream the cached matrix; never hold it in memory."
    ),
    landmarks: int | None = typer.Option(
        None,
        "--landmarks",
        min=1,
        metavar="L",
        help="Fit on L landmark models only, place the rest out of sample (needs M·L distances: "
        "from the cache when it holds every model, else computed from the predictions).",
    ),
    rule: str = typer.Option(
        "farthest",
        "--rule",
        metavar="RULE",
        help="Landmark rule: farthest (farthest-point) or stratified (by run "
        "and progress; one pass over the predictions).",
    ),
    scheduler: str | None = _SCHEDULER,
    workers: int | None = _WORKERS,
    tile: int | None = _TILE,
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
        raise ValueError(
            "--out-of-core supports --metric bhattacharyya only (the cache holds d, "
            "InPCA needs d² for the other metrics)"
        )
    if landmarks is not None:
        from taskspace.geometry.landmarks import RULES

        if rule not in RULES:
            raise ValueError(f"--rule must be one of {', '.join(RULES)}, got {rule!r}")
    # A landmark embedding without a cluster reads the cache or the predictions and writes
    # nothing to the store; everything else fills the cache first.
    reads_only = landmarks is not None and scheduler is None and workers is None
    s = _open(store, scheduler, workers, mode="r" if reads_only else "a")
    from taskspace.embedding import embed_store

    method = "landmark" if landmarks is not None else "out-of-core" if out_of_core else "dense"
    result = embed_store(
        s,
        query,
        metric,
        components,
        method=method,
        n_landmarks=landmarks,
        rule=rule,
        scheduler=scheduler,
        n_workers=workers,
        tile=tile,
        random_state=0,
        progress=True,
    )
    result.save(out)
    est, n = result.estimator, len(result.model_ids)
    if method == "landmark":
        if landmarks > n:
            console.print(
                f"--landmarks {landmarks} is more than the {n} models selected: "
                f"using all {n} as landmarks"
            )
        console.print(
            f"landmark InPCA of {n} models on {len(est.landmarks_)} {rule} "
            f"landmarks, {len(est.eigenvalues_)} axes → {out}"
        )
        _print_axes(est.eigenvalues_, est.explained_stress_, "of the landmarks' stress")
        return
    console.print(f"InPCA of {n} models, {len(est.eigenvalues_)} axes → {out}")
    _print_axes(est.eigenvalues_, est.explained_stress_)


def _print_axes(values, stress, of: str = "") -> None:
    for i, (lam, s) in enumerate(zip(values, stress, strict=True)):
        kind = "space-like" if lam > 0 else "time-like" if lam < 0 else "null"
        console.print(
            f"  axis {i + 1}: λ = {lam:+.5g} ({kind}), explained stress {s:.4f}"
            + (f" {of}" if of else "")
        )


def register(app: typer.Typer) -> None:
    """Add the commands to the `taskspace` app."""
    app.command()(distances)
    app.command()(embed)
