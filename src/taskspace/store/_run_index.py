"""The run index: which runs a store holds (``runs/zarr.json``, ``attributes[INDEX_KEY]``).

A run directory appears and disappears by one rename (``_writer.create_run``,
``Store.drop_run``); the index is updated right after it, under the ``index`` lock and a pending
marker, so a writer killed in between leaves a marker that ``Store.open(path, "a")`` resolves by
rebuilding the index from the runs present. Anything else that makes the index and the folders
disagree is damage: a run folder deleted by hand is a run the index names and the disk lacks,
which ``Store.check`` names and ``Store.drop_run`` removes from the index.

Format-2 stores always have an index; legacy stores have none until ``Store.upgrade``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from taskspace.store import _meta
from taskspace.store.atomic import file_lock, read_json, write_json_atomic
from taskspace.store.checksums import CorruptStoreError, json_digest

INDEX_FILE = "runs/zarr.json"
LOCK = "index"


def index_damage(root, problem: str) -> CorruptStoreError:
    return CorruptStoreError(
        root,
        problem,
        file=INDEX_FILE,
        place="run index",
        repair="repair: restore any run folder that is gone, then rebuild the index from the "
        f"runs present (`taskspace check {root} --repair`)",
    )


def run_gone(root, run_id: str) -> CorruptStoreError:
    return CorruptStoreError(
        root,
        "the run index names this run but its folder (or its commit record) is gone",
        run=run_id,
        file=f"runs/{run_id}",
        repair=f"repair: restore the folder from a copy, or drop the run (Store.drop_run("
        f"{run_id!r}), or `taskspace check {root} --drop-damaged-runs`, which also removes "
        "the caches holding its models) and re-import or retrain it",
    )


def run_dirs(root: Path) -> list[str]:
    """Names of the run folders that hold a commit record."""
    with os.scandir(Path(root) / "runs") as entries:
        return sorted(
            e.name
            for e in entries
            if e.is_dir()
            and not e.name.startswith(".")
            and os.path.isfile(os.path.join(e.path, "zarr.json"))
        )


def read_index(root: Path, required: bool) -> list[str] | None:
    """The run ids the index names; None where there is no index and ``required`` is false (a
    legacy store); CorruptStoreError where it cannot be read, fails its digest or is missing
    but ``required``."""
    try:
        entry = (read_json(Path(root) / INDEX_FILE).get("attributes") or {}).get(_meta.INDEX_KEY)
    except (OSError, ValueError, AttributeError) as exc:
        raise index_damage(root, f"the run index cannot be read ({exc})") from exc
    if entry is None:
        if required:
            raise index_damage(root, "the run index is missing, which every format-2 store has")
        return None
    ids = entry.get("runs") if isinstance(entry, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise index_damage(root, "the run index holds no list of run ids")
    if entry.get("digest") != json_digest(sorted(ids)):
        raise index_damage(root, "the run index does not match its digest (edited)")
    return ids


def write_index(root: Path, ids) -> None:
    """Replace the index (atomically) by ``ids``, keeping the rest of ``runs/zarr.json``."""
    path = Path(root) / INDEX_FILE
    try:
        meta = read_json(path)
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError):
        meta = {"zarr_format": 3, "node_type": "group"}
    meta["attributes"] = {**(meta.get("attributes") or {}), _meta.INDEX_KEY: _meta.index_entry(ids)}
    write_json_atomic(path, meta)


@contextlib.contextmanager
def changing(store, verify: bool = True):
    """Hold the index lock with a pending marker around a rename in ``runs/`` and the index
    update that follows it (:func:`update`). With ``verify`` a damaged index raises first,
    before anything changes (a new run is not added to an index that cannot say which runs
    exist; ``drop_run``, itself a repair, passes False)."""
    with file_lock(store._private.lock(LOCK)):
        if verify:
            read_index(store.path, required=store._policy.chained)
        with store._private.pending_write(LOCK):
            yield


def update(store, add: str | None = None, remove: str | None = None) -> None:
    """Add or remove one run id (inside :func:`changing`); a store without index (legacy) is
    left without one, a damaged one is rebuilt from the runs present (after the rename)."""
    try:
        ids = read_index(store.path, required=False)
    except CorruptStoreError:
        ids = run_dirs(store.path)
    if ids is None:
        return
    ids = [i for i in ids if i != remove and i != add] + ([add] if add is not None else [])
    write_index(store.path, ids)


def rebuild(store) -> None:
    """The index made from the runs present, under the index lock (``check --repair`` of a
    damaged index)."""
    with file_lock(store._private.lock(LOCK)):
        rebuild_unlocked(store)


def rebuild_unlocked(store) -> None:
    """:func:`rebuild` for a caller holding the index lock (the repair of a writer killed
    between its rename and its index update); a store without index is left without one."""
    if store._policy.chained:
        write_index(store.path, run_dirs(store.path))


def compare(store) -> tuple[list[str], list[str]]:
    """``(gone, unindexed)``: runs the index names whose folder is missing, and run folders the
    index does not name; read under the index lock, shared, where the store has locks (a writer
    between its rename and its index update is waited for)."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(store._private.lock(LOCK), shared=True))
        except OSError:
            pass  # no lock directory, or a read-only file system: no writer to wait for
        ids = read_index(store.path, required=True)
        present = run_dirs(store.path)
    index = set(ids)
    return sorted(index - set(present)), sorted(set(present) - index)


def check_listing(store, present: list[str]) -> None:
    """Raise CorruptStoreError for the first run the index names and ``present`` lacks (after
    a second look under the lock, so that a concurrent drop is not taken for damage)."""
    ids = read_index(store.path, required=True)
    if set(ids) <= set(present):
        return
    gone, _ = compare(store)
    if gone:
        raise run_gone(store.path, gone[0])
