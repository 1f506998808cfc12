"""``Store.upgrade``: bring a legacy store (format 1) to the current format.

A legacy store is read through the legacy path: its header, commit records and run index carry
no digests and are not verified. Upgrading first verifies everything that can be (``check``
must find no damage: a digest added to damaged data would vouch for it), then adds, in this
order, so that a kill at any point leaves a legacy store that a second upgrade finishes:

1. each run's missing chunk digests (from its committed values) and its commit digest, under
   the run's lock;
2. the run index (the runs present);
3. each distance cache's missing id and chunk digests and its record digest, under its lock;
4. the header: missing probe digests, ``format_version`` and the header digest, written last.
"""

from __future__ import annotations

from taskspace.store import _meta, _run_index, cache, checksums
from taskspace.store._layout import open_array
from taskspace.store.atomic import file_lock, read_json, write_json_atomic
from taskspace.store.damage_report import check_store


def upgrade_store(store) -> list[str]:
    """Upgrade ``store`` (opened for writing); return what was added, one line per kind."""
    if store._policy.chained:
        return []
    report = check_store(store)
    if not report.ok:
        raise checksums.CorruptStoreError(
            store.path,
            f"{len(report.damage)} damaged place(s), first {report.damage[0]}; the "
            "store is not upgraded",
            file=report.damage[0].file,
            place="upgrade refused",
            repair=f"repair: `taskspace check {store.path} --repair` (or --drop-damaged-runs) "
            "first, then upgrade",
        )
    runs = _run_index.run_dirs(store.path)
    for run in runs:
        _upgrade_run(store, run)
    _run_index.write_index(store.path, runs)
    caches = [
        n
        for n in cache.cache_names(store.path)
        if (store.path / "distances" / n / "zarr.json").is_file()
    ]
    for name in caches:
        _upgrade_cache(store, name)
    _upgrade_header(store)
    return [
        f"commit digests added to {len(runs)} runs",
        f"run index of {len(runs)} runs written",
        f"record digests added to {len(caches)} distance caches",
        f"header digest written: store format {_meta.FORMAT_VERSION}",
    ]


def _upgrade_run(store, run: str) -> None:
    path = store.path / "runs" / run / "zarr.json"
    with file_lock(store._private.lock(f"run.{run}")):
        meta = read_json(path)
        attrs = meta["attributes"]
        records = attrs[_meta.RECORDS_KEY]
        count = records["count"]
        digests = list(records.get("digests") or [None] * count)[:count]
        missing = [t for t in range(count) if digests[t] is None]
        if missing:
            arr = open_array(store._zstore, f"runs/{run}/predictions", mode="r")
            b = arr.chunks[1]
            for t in missing:
                digests[t] = checksums.record_digests(arr[t : t + 1], b)[0]
        records["digests"] = digests
        attrs[_meta.COMMIT_DIGEST_KEY] = _meta.commit_digest(run, attrs[_meta.RUN_KEY], records)
        write_json_atomic(path, meta)


def _upgrade_cache(store, name: str) -> None:
    path = store.path / "distances" / name / "zarr.json"
    with file_lock(store._private.lock(f"distances.{name}")):
        meta = read_json(path)
        attrs = meta["attributes"][cache.CACHE_KEY]
        ids = list(attrs["model_ids"])
        if attrs.get("ids_digest") is None:
            attrs["ids_digest"] = checksums.text_digest(ids)
        if attrs.get("chunk_digests") is None:
            arr = open_array(store._zstore, f"distances/{name}/matrix", mode="r")
            attrs["chunk_digests"] = cache.chunk_digests(arr, len(ids), None, 0)
        attrs["record_digest"] = cache.record_digest(attrs)
        write_json_atomic(path, meta)


def _upgrade_header(store) -> None:
    path = store.path / "zarr.json"
    meta = read_json(path)
    header = meta["attributes"][_meta.HEADER_KEY]
    if header.get("labels_digest") is None:
        header["labels_digest"] = checksums.labels_digest(store._labels)
    if header.get("has_probe_ids") and header.get("ids_digest") is None:
        header["ids_digest"] = checksums.text_digest([str(v) for v in store.probe_ids.tolist()])
    header["format_version"] = _meta.FORMAT_VERSION
    header["header_digest"] = _meta.header_digest(header)
    write_json_atomic(path, meta)
    store._header = dict(header)
    store._policy = _meta.DigestPolicy.of(header)
