"""The store's write paths, each crash-safe (rules in ``_private_dir``): creating a run, appending
records, and repairing what a killed writer left. Arguments arrive validated by ``Store``."""

from __future__ import annotations

import errno
import os
import shutil
import uuid

import numpy as np
import zarr
from zarr.storage import LocalStore

from taskspace.store import _meta, _run_index, cache
from taskspace.store._layout import compressors_for, open_array
from taskspace.store.atomic import (
    disk_full_reported,
    file_lock,
    read_json,
    remove_temporaries,
    write_json_atomic,
)
from taskspace.store.checksums import CorruptStoreError


def create_run(store, run_id: str, info: dict) -> None:
    """Build the run group in the staging area, then rename it into ``runs/``: a run directory
    that exists is complete, and then added to the run index. Holds the staging lock shared, so
    ``repair`` (exclusive) only ever deletes staging entries whose creator is gone."""
    private, header = store._private, store._header
    target = store.path / "runs" / run_id
    with (
        file_lock(private.lock("staging"), shared=True),
        disk_full_reported(f"a new run of store {store.path}"),
    ):
        staging = private.staging / f"{run_id}.{uuid.uuid4().hex}"
        records = _meta.empty_records()
        group = zarr.open_group(
            LocalStore(staging),
            mode="w",
            zarr_format=3,
            attributes={
                _meta.RUN_KEY: info,
                _meta.RECORDS_KEY: records,
                _meta.COMMIT_DIGEST_KEY: _meta.commit_digest(run_id, info, records),
            },
        )
        n, c = store.n_samples, store.n_classes
        # Chunks of one record by a block of samples: an append never rewrites a committed chunk,
        # and a sample block across M models costs M chunk reads.
        group.create_array(
            "predictions",
            shape=(0, n, c),
            dtype=store.dtype,
            chunks=(1, int(header["chunk_samples"]), c),
            fill_value=np.nan,
            compressors=compressors_for(header.get("compression")),
        )
        with _run_index.changing(store):
            try:
                os.rename(staging, target)
            except OSError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    raise ValueError(f"run {run_id!r} already exists in {store.path}") from exc
                raise
            _run_index.update(store, add=run_id)


def append_records(
    store,
    run_id: str,
    data: np.ndarray,
    steps: list[int],
    metrics: dict[str, list],
    digests: list[list[int]],
) -> int:
    """Append the (k, N, C) ``data`` to a run; return the index of its first new record.

    Under the run's lock: write the chunks of records t..t+k-1 (past the commit, invisible),
    then replace the run's ``zarr.json`` with the longer records table and the new records'
    chunk ``digests`` (the commit), digested again. The record it extends is verified first, so
    that a damaged one is never given a fresh digest. The pending marker outlives the lock only
    if this process dies in between.
    """
    run_dir = store.path / "runs" / run_id
    name = f"run.{run_id}"
    k = data.shape[0]
    with (
        file_lock(store._private.lock(name)),
        store._private.pending_write(name),
        disk_full_reported(f"run {run_id!r} of store {store.path}"),
    ):
        meta = read_json(run_dir / "zarr.json")
        attrs = meta["attributes"]
        problem = _meta.records_problem(attrs[_meta.RECORDS_KEY]) or _meta.commit_problem(
            run_id, attrs, store._policy
        )
        if problem:
            raise CorruptStoreError(
                store.path, problem, run=run_id, file=f"runs/{run_id}/zarr.json"
            )
        records = attrs[_meta.RECORDS_KEY]
        t = records["count"]
        # Against the committed steps, under the lock: two writers cannot both pass this check.
        _meta.check_steps(steps, k, records["steps"][t - 1] if t else None)
        arr = open_array(store._zstore, f"runs/{run_id}/predictions", mode="r+")
        arr.resize((t + k, *data.shape[1:]))  # also drops chunks of a failed earlier append
        arr[t : t + k] = data
        records = _meta.extend_records(records, steps, metrics, digests)
        attrs[_meta.RECORDS_KEY] = records
        attrs[_meta.COMMIT_DIGEST_KEY] = _meta.commit_digest(run_id, attrs[_meta.RUN_KEY], records)
        write_json_atomic(run_dir / "zarr.json", meta)
    return t


def repair(store) -> None:
    """Clean what killed writers left: the staging area, and for every pending marker whose
    lock is free (its writer is dead) the data past that run's (or cache's) commit."""
    private = store._private
    with file_lock(private.lock("staging")):
        for entry in list(private.staging.iterdir()):
            shutil.rmtree(entry, ignore_errors=True)
    for name in private.pending_names():
        kind, _, key = name.partition(".")
        with file_lock(private.lock(name), blocking=False) as acquired:
            if not acquired:
                continue  # a live writer: its uncommitted data are not garbage
            if kind == "run":
                trim_run(store, key)
            elif kind == "distances":
                cache.trim(store, key)
            elif kind == _run_index.LOCK:
                _run_index.rebuild_unlocked(store)
            (private.pending / name).unlink(missing_ok=True)


def trim_run(store, run_id: str) -> None:
    """Cut a run's predictions back to its committed record count."""
    run_dir = store.path / "runs" / run_id
    if not (run_dir / "zarr.json").exists():
        return
    count = read_json(run_dir / "zarr.json")["attributes"][_meta.RECORDS_KEY]["count"]
    arr = open_array(store._zstore, f"runs/{run_id}/predictions", mode="r+")
    if arr.shape[0] != count:
        arr.resize((count, *arr.shape[1:]))
    chunk_dir = run_dir / "predictions" / "c"
    if chunk_dir.is_dir():  # chunks past the array's shape too (c/<record>/<block>/0)
        for entry in chunk_dir.iterdir():
            if not entry.name.isdigit() or int(entry.name) >= count:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
    remove_temporaries(run_dir)
    remove_temporaries(run_dir / "predictions")
