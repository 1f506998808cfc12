"""``Store.check``: verify everything on disk and say what is damaged and how to repair it.

A full pass: the header and probe set, the run index (which runs exist), every run's commit
record and every chunk of its committed records (present, its checksum, its digest), and every
distance cache (its commit record, its key, its id list, the models it names, every committed
chunk and its place). A damaged header is reported alone (``Store.check_path``): everything else
is read with its class names, dtype and chunking, so no run is blamed for it. Reading stops at
nothing: each damaged place becomes one :class:`Damage`, and the report lists them all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from taskspace.store import _meta, _run_index, cache, checksums
from taskspace.store.atomic import read_json
from taskspace.store.checksums import CorruptStoreError
from taskspace.store.collection import open_run


@dataclass(frozen=True)
class Damage:
    """One damaged place: where (``run``/``record`` or ``cache``), which ``file`` (relative to
    the store), what is wrong and how to repair it."""

    where: str
    file: str
    problem: str
    repair: str
    run: str | None = None
    record: int | None = None
    cache: str | None = None

    @classmethod
    def of(cls, exc: CorruptStoreError) -> Damage:
        return cls(exc.where, exc.file, exc.problem, exc.repair, exc.run, exc.record, exc.cache)

    def __str__(self) -> str:
        return f"{self.where}: {self.problem} ({self.file}); {self.repair}"


@dataclass
class CheckReport:
    """What ``Store.check`` found.

    Attributes
    ----------
    damage : list of Damage
        Every damaged place (empty for a sound store).
    notes : list of str
        What could not be verified (parts written before checksums and digests existed).
    runs, records, chunks, caches : int
        How much was verified.
    """

    path: str
    damage: list[Damage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: int = 0
    records: int = 0
    chunks: int = 0
    caches: int = 0

    @property
    def ok(self) -> bool:
        return not self.damage

    @property
    def damaged_runs(self) -> list[str]:
        return sorted({d.run for d in self.damage if d.run is not None})

    @property
    def damaged_caches(self) -> list[str]:
        return sorted({d.cache for d in self.damage if d.cache is not None})

    def __str__(self) -> str:
        head = (
            f"{self.path}: {self.runs} runs, {self.records} records, {self.chunks} chunks, "
            f"{self.caches} distance caches verified: "
        )
        head += "no damage" if self.ok else f"{len(self.damage)} damaged"
        return "\n".join(
            [head, *(f"  damaged: {d}" for d in self.damage), *(f"  note: {n}" for n in self.notes)]
        )


def header_damage_report(path, exc: CorruptStoreError) -> CheckReport:
    """The report of a store whose header or probe labels are damaged (``Store.open`` raised
    ``exc``): that damage alone, since nothing else can be read without them."""
    report = CheckReport(str(path), damage=[Damage.of(exc)])
    report.notes.append(
        "runs and distance caches were not verified: they are read with the "
        "header and probe set, which are damaged"
    )
    return report


#: What ``check`` says of a store read through the legacy path.
LEGACY_NOTE = (
    "legacy store, written before store format {format}: its header, commit records "
    "and run index are not verified; `taskspace check {path} --upgrade` (or "
    "Store.upgrade) adds their digests"
)


def check_store(store) -> CheckReport:
    """Verify ``store`` completely (see the module docstring)."""
    report = CheckReport(str(store.path))
    if not store._policy.chained:
        report.notes.append(LEGACY_NOTE.format(format=_meta.FORMAT_VERSION, path=store.path))
    _check_probe(store, report)
    gone = _check_index(store, report)
    models = set()
    for run in sorted(set(_run_dirs(store.path)) - set(gone)):
        report.runs += 1
        models.update(_check_run(store, run, report))
    distances = store.path / "distances"
    staged = (
        sorted({p.name.rsplit(".", 1)[0] for p in store._private.cache_staging.glob("*")})
        if store._private.cache_staging.is_dir()
        else []
    )
    for name in staged:
        report.notes.append(
            f"distance cache {name}: a first fill is in progress or was killed "
            "(invisible to readers; the next command that writes to the store "
            "removes what a killed one left)"
        )
    for entry in sorted(distances.iterdir()) if distances.is_dir() else []:
        if entry.is_dir() and not entry.name.startswith("."):
            report.caches += 1
            _check_cache(store, entry.name, models, report)
    return report


def _run_dirs(root: Path) -> list[str]:
    with os.scandir(root / "runs") as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _check_index(store, report: CheckReport) -> list[str]:
    """Compare the run index with the run folders; return the runs it names that are gone."""
    if not store._policy.chained:
        return []
    try:
        gone, unindexed = _run_index.compare(store)
    except CorruptStoreError as exc:
        report.damage.append(Damage.of(exc))
        return []
    for run in gone:
        report.damage.append(Damage.of(_run_index.run_gone(store.path, run)))
    for run in unindexed:
        report.damage.append(
            Damage.of(
                CorruptStoreError(
                    store.path,
                    "the run is not in the store's run index (copied in by hand, or the "
                    "index was edited)",
                    run=run,
                    file=f"runs/{run}",
                )
            )
        )
    return gone


def _check_probe(store, report: CheckReport) -> None:
    try:
        ids = store.probe_ids  # verified against the header's digest as it is read
    except CorruptStoreError as exc:
        report.damage.append(Damage.of(exc))
        return
    if (
        store._header.get("labels_digest") is None
        and _meta.probe_set_hash(store.labels, ids) != store.probe_hash
    ):
        report.notes.append(
            "the probe labels have no digest (a store from before digests) "
            "and the probe hash was given at creation: they cannot be verified"
        )


def _check_run(store, run: str, report: CheckReport) -> list[str]:
    """Verify one run; return the model ids of its committed records."""
    try:
        if not (store.path / "runs" / run / "zarr.json").is_file():
            raise CorruptStoreError(
                store.path, "the run has no commit record", run=run, file=f"runs/{run}/zarr.json"
            )
        store._run_meta(run)
        arr, count, digests = open_run(store.path, store._zstore, run, store._policy)
    except CorruptStoreError as exc:
        report.damage.append(Damage.of(exc))
        return []
    if digests is None and count:
        report.notes.append(
            f"run {run!r} has records from before digests: its chunks are "
            "verified by their checksums (if any), not against the commit"
        )
    n, b = arr.shape[1], arr.chunks[1]
    for t in range(count):
        report.records += 1
        for blk, s0 in enumerate(range(0, n, b)):
            report.chunks += 1
            damage = _check_chunk(store, run, arr, t, blk, s0, b, digests)
            if damage is not None:
                report.damage.append(damage)
    return [f"{run}/{t}" for t in range(count)]


def _check_chunk(store, run, arr, t, blk, s0, b, digests) -> Damage | None:
    file = checksums.chunk_file(run, t, blk)

    def damage(problem):
        return Damage.of(CorruptStoreError(store.path, problem, run=run, record=t, file=file))

    if not (store.path / file).is_file():
        return damage("a chunk of the committed record is missing")
    try:
        values = arr[t, s0 : s0 + b]
    except Exception as exc:  # Zarr raises several types for a damaged chunk
        return damage(f"a chunk cannot be decoded ({type(exc).__name__}: {exc})")
    if digests is not None and checksums.block_digest(values) != digests[t][blk]:
        return damage(
            "a chunk does not hold the values committed for it (its digest differs: "
            "edited, or another chunk's bytes)"
        )
    if checksums.first_nan(values) is not None:
        return damage("a chunk holds NaN, which no committed record does")
    return None


def _check_cache(store, name: str, models: set[str], report: CheckReport) -> None:
    meta_file = store.path / "distances" / name / "zarr.json"
    if not meta_file.is_file():
        return  # an extension killed before its first commit: no cache (repair removes it)
    try:
        meta = read_json(meta_file)
        if cache.unfinished(meta):
            report.damage.append(
                Damage(
                    f"distance cache {name}",
                    f"distances/{name}/zarr.json",
                    "an unfinished first fill (its writer was killed before the commit): no cache "
                    "is served from it",
                    f"repair: `taskspace check {store.path} --repair` (or any "
                    "command that writes to the store) removes it",
                    cache=name,
                )
            )
            return
        attrs = meta["attributes"][cache.CACHE_KEY]
        spec = attrs.get("spec")
        if spec is None:
            report.damage.append(
                Damage(
                    f"distance cache {name}",
                    f"distances/{name}/zarr.json",
                    "a cache from before cache keys: its eps and precision are unknown, so it is "
                    "never served",
                    checksums.default_repair(str(store.path), None, name),
                    cache=name,
                )
            )
            return
        key = cache.CacheKey(spec["metric"], spec["eps"], spec["precision"], spec["kernel"])
        if key.name != name:
            raise CorruptStoreError(
                store.path,
                f"its key {spec} does not match its name",
                cache=name,
                file=f"distances/{name}/zarr.json",
            )
        ids = cache.cached_ids(store.path, key)
        stale = [m for m in ids if m not in models]
        if stale:
            raise CorruptStoreError(
                store.path,
                f"it holds {len(stale)} models the store does not (first: {stale[0]!r})",
                cache=name,
                file=f"distances/{name}/zarr.json",
            )
        if key.kernel != cache.KERNEL_VERSION:
            report.notes.append(
                f"distance cache {name} was computed by kernels v{key.kernel} "
                f"(now v{cache.KERNEL_VERSION}): never served; "
                f"Store.clear_cache({name!r}) frees its space"
            )
        matrix = cache.open_matrix(store._zstore, key)  # reads below verify chunk digests
        if matrix.digests is None and ids:
            report.notes.append(
                f"distance cache {name} was written before chunk digests: "
                "its chunks' places could not be verified (its next extension "
                "adds them)"
            )
        k = len(ids)
        for r0 in range(0, k, cache.CHUNK):
            block = matrix[r0 : min(k, r0 + cache.CHUNK), :k]
            if not np.allclose(np.diagonal(block, offset=r0), 0.0, atol=1e-12) and spec[
                "metric"
            ] in ("bhattacharyya", "hellinger", "geodesic"):
                raise CorruptStoreError(
                    store.path,
                    "a distance of a model to itself is not 0",
                    cache=name,
                    file=f"distances/{name}/matrix",
                )
    except CorruptStoreError as exc:
        report.damage.append(Damage.of(exc))
    except (KeyError, TypeError, ValueError) as exc:
        report.damage.append(
            Damage.of(
                CorruptStoreError(
                    store.path,
                    f"the commit record cannot be read ({exc})",
                    cache=name,
                    file=f"distances/{name}/zarr.json",
                )
            )
        )
