"""Import of the HDF5 prediction files published by the paper's authors (extra ``h5``).

Their layout (grasp-lyrl/picture_of_space_of_tasks, ``predictions/README.md``): one folder per
task (``imagenet_all``, ``imagenet_vert``, ...), and in it one file per seed, ``preds_<seed>.h5``,
holding a dataset ``data`` of shape (T, N, C): the imprinted predictions of the T checkpoints of
that run on the probe set, stored as float16 (rounded to 5 decimals) with the LZ4 filter of
``hdf5plugin``. The files carry no steps, so records get steps 0..T-1 unless ``steps`` says
otherwise.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from taskspace.store import _meta
from taskspace.store._resume import records_done


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "importing HDF5 prediction files needs h5py: pip install 'taskspace[h5]'"
        ) from exc
    try:  # registers the LZ4/Blosc filters the published files use
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass
    return h5py


def _seed_pattern(pattern: str) -> re.Pattern:
    if pattern.count("*") != 1:
        raise ValueError(f"`pattern` must contain one '*' standing for the seed, got {pattern!r}")
    head, tail = pattern.split("*")
    return re.compile(f"^{re.escape(head)}(-?[0-9]+){re.escape(tail)}$")


def _task_folders(directory: Path, pattern: str) -> list[tuple[str, Path]]:
    if any(directory.glob(pattern)):
        return [(directory.name, directory)]
    return [(d.name, d) for d in sorted(directory.iterdir()) if d.is_dir() and any(d.glob(pattern))]


def import_h5(
    directory,
    store,
    *,
    method: str = "supervised",
    pattern: str = "preds_*.h5",
    dataset_key: str = "data",
    classes: Mapping | None = None,
    steps: Callable | None = None,
    network=None,
    dataset=None,
    run_id: str = "{task}-{method}-seed{seed}",
    records_per_append: int = 8,
    labels=None,
    class_names=None,
    probe_ids=None,
) -> list[str]:
    """Import ``<directory>/<task>/preds_<seed>.h5`` files into ``store``, one run per file.

    Parameters
    ----------
    directory : path
        A folder of task folders, or a single task folder (its name is the task).
    store : Store or path
        The store: an existing one (opened for appending when given as a path), or a path that
        does not exist yet, created from ``labels`` and ``class_names``.
    method : str
        Method recorded for every run.
    pattern : str
        File name pattern; ``*`` stands for the seed (``"reindex_preds_*.h5"`` for the
        re-indexed files).
    dataset_key : str
        Name of the HDF5 dataset holding the (T, N, C) predictions.
    classes : dict task -> sequence of class names or indices, optional
        Each task's classes (the published label files ``imagenet_<task>.json`` hold indices);
        default: the whole label space.
    steps : callable ``steps(task, seed, T) -> T ints``, optional
        Training steps of the records; default 0..T-1.
    network, dataset : optional
        Recorded with every run.
    run_id : str
        Format of run ids, with fields ``task``, ``method``, ``seed``.
    records_per_append : int
        Records read and appended at a time (bounds memory; each append is atomic).
    labels : array_like of int, shape (N,), optional
        The probe labels the files were made on. For an existing store they must be its labels
        (and ``class_names`` its class names, ``probe_ids`` its ids): otherwise a ValueError
        naming both hashes, before anything is written. Required to create a store.
    class_names : sequence of str, optional
        The label space, as ``labels``.
    probe_ids : array_like, shape (N,), optional
        Probe sample ids, as ``labels``.

    Returns
    -------
    list of str
        The run ids, in import order. Importing again resumes: a run that already holds all
        T records is skipped, one with fewer (an interrupted import) is completed.

    Every file is opened and its shape checked against the probe set before anything is
    written (or the store created). A file whose predictions are not probabilities (NaN, ...)
    is a ValueError naming it; a run this call created for it is dropped again.
    """
    from taskspace.store.store import Store

    h5py = _h5py()
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"`directory` {directory} is not a directory")
    plan = _plan(h5py, directory, pattern, dataset_key, run_id, method)
    if isinstance(store, Store) or Path(store).exists():
        if not isinstance(store, Store):
            store = Store.open(store, mode="a")
        if labels is not None or class_names is not None or probe_ids is not None:
            store.check_probe_set(
                store.labels if labels is None else labels,
                class_names,
                probe_ids,
                source=f"the probe set given for {directory}",
            )
        n, c = store.n_samples, store.n_classes
    else:
        if labels is None or class_names is None:
            raise ValueError(
                f"store {store} does not exist; give `labels` and `class_names` to create it"
            )
        n, c = len(np.asarray(labels)), len(class_names)
    all_steps = []
    for task, seed, path, rid, shape in plan:
        if len(shape) != 3 or shape[1:] != (n, c):
            raise ValueError(
                f"{path}: dataset {dataset_key!r} has shape {shape}, the probe set "
                f"and label space hold (T, N, C) = (T, {n}, {c})"
            )
        _meta.check_name(f"{path}: run id", rid)
        all_steps.append(_run_steps(steps, task, seed, shape[0], path))
        if (classes or {}).get(task) is not None:
            names = store.class_names if isinstance(store, Store) else list(class_names)
            try:
                _meta.resolve_classes((classes or {})[task], names)
            except ValueError as exc:
                raise ValueError(f"`classes` of task {task!r}: {exc}") from exc
    if not isinstance(store, Store):
        new_store = Store.create(store, labels, class_names, probe_ids=probe_ids)
        try:
            return _import_all(
                h5py,
                new_store,
                plan,
                all_steps,
                method,
                dataset_key,
                classes,
                network,
                dataset,
                records_per_append,
            )
        except ValueError:
            # Values are checked as they are appended (reading every file twice would double
            # the import): a store this call created is not left behind.
            shutil.rmtree(new_store.path, ignore_errors=True)
            raise
    return _import_all(
        h5py,
        store,
        plan,
        all_steps,
        method,
        dataset_key,
        classes,
        network,
        dataset,
        records_per_append,
    )


def _import_all(
    h5py, store, plan, all_steps, method, dataset_key, classes, network, dataset, records_per_append
) -> list[str]:
    existing = set(store.run_ids)
    imported = []
    for (task, seed, path, rid, (n_records, _, _)), run_steps in zip(plan, all_steps, strict=True):
        done = records_done(
            store, rid, run_steps, path, {"task": task, "method": method, "seed": seed}
        )
        created = rid not in existing
        if created:
            store.add_run(
                rid,
                task=task,
                classes=(classes or {}).get(task),
                method=method,
                seed=seed,
                network=network,
                dataset=dataset,
                config={"source": str(path)},
            )
        try:
            _append_file(
                h5py, store, rid, path, dataset_key, done, n_records, run_steps, records_per_append
            )
        except ValueError:
            # A file that cannot be imported leaves no empty or partial run (an interrupted
            # import, by contrast, keeps its records and resumes).
            if created:
                store.drop_run(rid)
            raise
        imported.append(rid)
    return imported


def _run_steps(steps, task, seed, n_records: int, path) -> list[int]:
    """The T steps of one file's records, checked as ``Store.append`` checks them (before
    anything is written)."""
    run_steps = np.arange(n_records) if steps is None else steps(task, seed, n_records)
    if np.shape(run_steps) != (n_records,):
        raise ValueError(
            f"`steps` returned shape {np.shape(run_steps)} for {path}, expected ({n_records},)"
        )
    try:
        return _meta.check_steps(run_steps, n_records)
    except ValueError as exc:
        raise ValueError(f"`steps` for {path}: {exc}") from exc


def _plan(h5py, directory: Path, pattern: str, dataset_key: str, run_id: str, method: str):
    """(task, seed, path, run id, dataset shape) of every file, in import order."""
    seed_re = _seed_pattern(pattern)
    folders = _task_folders(directory, pattern)
    if not folders:
        raise ValueError(f"no file matching {pattern!r} in {directory} or its task folders")
    plan = []
    for task, folder in folders:
        files = []
        for f in folder.glob(pattern):
            m = seed_re.match(f.name)
            if m:
                files.append((int(m.group(1)), f))
        for seed, path in sorted(files):
            with h5py.File(path, "r") as h5:
                if dataset_key not in h5:
                    raise ValueError(f"{path} has no dataset {dataset_key!r}")
                shape = tuple(h5[dataset_key].shape)
            plan.append(
                (task, seed, path, run_id.format(task=task, method=method, seed=seed), shape)
            )
    return plan


def _append_file(
    h5py, store, rid, path, dataset_key, done, n_records, run_steps, records_per_append
) -> None:
    with h5py.File(path, "r") as h5:
        data = h5[dataset_key]
        for t0 in range(done, n_records, records_per_append):
            t1 = min(t0 + records_per_append, n_records)
            try:
                block = data[t0:t1]
            except OSError as exc:
                raise ValueError(
                    f"cannot read {path} ({exc}); files written with hdf5plugin "
                    "filters (LZ4) need `pip install hdf5plugin`"
                ) from exc
            try:
                store.append(rid, block, run_steps[t0:t1])
            except ValueError as exc:
                raise ValueError(
                    f"{path}, records {t0}..{t1 - 1} of dataset {dataset_key!r}: {exc}"
                ) from exc
