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
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

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
    return [(d.name, d) for d in sorted(directory.iterdir())
            if d.is_dir() and any(d.glob(pattern))]


def import_h5(directory, store, *, method: str = "supervised", pattern: str = "preds_*.h5",
              dataset_key: str = "data", classes: Mapping | None = None,
              steps: Callable | None = None, network=None, dataset=None,
              run_id: str = "{task}-{method}-seed{seed}", records_per_append: int = 8,
              ) -> list[str]:
    """Import ``<directory>/<task>/preds_<seed>.h5`` files into ``store``, one run per file.

    Parameters
    ----------
    directory : path
        A folder of task folders, or a single task folder (its name is the task).
    store : Store or path
        An existing store (opened for appending when given as a path) on the same probe set
        and label space: N and C of every file must match it.
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

    Returns
    -------
    list of str
        The run ids, in import order. Importing again resumes: a run that already holds all
        T records is skipped, one with fewer (an interrupted import) is completed.
    """
    from taskspace.store.store import Store

    h5py = _h5py()
    if not isinstance(store, Store):
        store = Store.open(store, mode="a")
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"`directory` {directory} is not a directory")
    seed_re = _seed_pattern(pattern)
    folders = _task_folders(directory, pattern)
    if not folders:
        raise ValueError(f"no file matching {pattern!r} in {directory} or its task folders")
    existing = set(store.run_ids)
    imported = []
    for task, folder in folders:
        files = []
        for f in folder.glob(pattern):
            m = seed_re.match(f.name)
            if m:
                files.append((int(m.group(1)), f))
        for seed, path in sorted(files):
            rid = run_id.format(task=task, method=method, seed=seed)
            with h5py.File(path, "r") as h5:
                if dataset_key not in h5:
                    raise ValueError(f"{path} has no dataset {dataset_key!r}")
                data = h5[dataset_key]
                if data.ndim != 3 or data.shape[1:] != (store.n_samples, store.n_classes):
                    raise ValueError(
                        f"{path}: dataset {dataset_key!r} has shape {data.shape}, the store "
                        f"holds (T, N, C) = (T, {store.n_samples}, {store.n_classes})"
                    )
                n_records = data.shape[0]
                run_steps = (np.arange(n_records) if steps is None
                             else np.asarray(steps(task, seed, n_records)))
                if run_steps.shape != (n_records,):
                    raise ValueError(f"`steps` returned shape {run_steps.shape} for {path}, "
                                     f"expected ({n_records},)")
                done = records_done(store, rid, run_steps, path,
                                    {"task": task, "method": method, "seed": seed})
                if rid not in existing:
                    store.add_run(rid, task=task, classes=(classes or {}).get(task),
                                  method=method, seed=seed, network=network, dataset=dataset,
                                  config={"source": str(path)})
                for t0 in range(done, n_records, records_per_append):
                    t1 = min(t0 + records_per_append, n_records)
                    try:
                        block = data[t0:t1]
                    except OSError as exc:
                        raise ValueError(
                            f"cannot read {path} ({exc}); files written with hdf5plugin "
                            "filters (LZ4) need `pip install hdf5plugin`"
                        ) from exc
                    store.append(rid, block, run_steps[t0:t1])
            imported.append(rid)
    return imported
