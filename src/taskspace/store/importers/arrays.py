"""Import of predictions a researcher already has on disk: a folder of arrays plus a metadata table.

Layout of the folder (names of the table and list files are the defaults; each may be given)::

    DIR/
      metadata.csv        one row per record (or metadata.json: a list of row objects)
      labels.npy          probe labels, (N,) ints in [0, C)  (or labels.json / labels.txt)
      class_names.json    the label space, C names (or .txt, one per line); needed to create STORE
      probe_ids.npy       optional ids of the probe samples (or .json / .txt)
      <any path>.npy|.npz|.pt   predictions on the probe set: (N, C) per checkpoint, or (T, N, C)
                          per run

Columns of the metadata table:

``file`` (required)
    Path of the array file, relative to DIR (or absolute).
``run``, ``step``, ``task``, ``method`` (required); ``seed``, ``classes``, ``network``,
``dataset`` (optional)
    The record's run id and training step, and the run's metadata (the same on every row of a
    run). ``classes``: the task's classes, a JSON list or names/indices separated by ``;``
    (default: the whole label space).
``index`` (optional)
    The record's position in a (T, N, C) file. Without it, the rows naming such a file are its
    records 0..T−1 in table order, and there must be T of them.
anything else
    Per-record metrics (numbers, strings, booleans), columns of ``Store.runs()``.

Everything is validated before anything is written: the table, every file and every record's
values (SPEC §0: finite, non-negative rows that sum to 1), the probe set and label space against
the store's, and runs the store already holds. Importing again resumes: a run whose records are
all in the store is skipped, one that an interrupted import left short is completed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from taskspace.geometry.validation import as_labels, check_array_like, check_rows
from taskspace.store import _meta
from taskspace.store._resume import records_done
from taskspace.store.files import ARRAY_SUFFIXES, load_array, read_list, read_table

REQUIRED_COLUMNS = ("file", "run", "step", "task", "method")
#: Columns that describe a run and so must be the same on all of its rows.
RUN_COLUMNS = ("task", "method", "seed", "classes", "network", "dataset")
_RECORD_COLUMNS = ("file", "index", "run", "step")


@dataclass
class _Record:
    row: int  # position in the table: the default order of a (T, N, C) file
    file: Path
    index: int | None
    step: int
    metrics: dict


@dataclass
class _Run:
    run_id: str
    info: dict
    records: list[_Record] = field(default_factory=list)


def import_arrays(
    directory,
    store,
    *,
    metadata=None,
    labels=None,
    class_names=None,
    probe_ids=None,
    dtype: str = "float32",
    records_per_append: int = 8,
) -> list[str]:
    """Import a folder of prediction arrays into ``store`` (layout in the module docstring).

    Parameters
    ----------
    directory : path
        The folder.
    store : Store or path
        An existing store (a path is opened for appending), or a path where a new store is
        created from the folder's labels and class names.
    metadata : path, optional
        The metadata table; default ``DIR/metadata.csv`` or ``DIR/metadata.json``.
    labels, class_names, probe_ids : path or array_like, optional
        The probe labels (N,), label space (C names) and probe ids (N,); default the files
        ``DIR/labels.*``, ``DIR/class_names.*``, ``DIR/probe_ids.*``. Labels are required; class
        names and probe ids, when given, must equal an existing store's.
    dtype : {"float32", "float16"}
        Storage dtype of a new store.
    records_per_append : int
        Records read and appended at a time (bounds memory; each append is atomic).

    Returns
    -------
    list of str
        The run ids, in the order of their first row in the table.
    """
    from taskspace.store.store import Store

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"`directory` {directory} is not a folder")
    if records_per_append < 1:
        raise ValueError(f"`records_per_append` must be ≥ 1, got {records_per_append}")
    table_path = (
        Path(metadata)
        if metadata is not None
        else _default_file(directory, "metadata", (".csv", ".json"), required=True)
    )
    labels, labels_src = _list_arg(directory, "labels", labels, required=True)
    class_names, names_src = _list_arg(directory, "class_names", class_names)
    probe_ids, ids_src = _list_arg(directory, "probe_ids", probe_ids)

    existing = store if isinstance(store, Store) else None
    if existing is None and (Path(store) / "zarr.json").exists():
        existing = Store.open(store, mode="a")
    if existing is not None and existing.mode != "a":
        raise ValueError(f"store {existing.path} is open read-only; use Store.open(path, 'a')")
    if existing is None and class_names is None:
        raise ValueError(
            f"store {store} does not exist, and creating it needs the class names: "
            f"put class_names.json (or .txt) in {directory} or pass class_names"
        )
    n_classes = existing.n_classes if existing is not None else len(class_names)
    labels = _integers(labels)
    labels = as_labels(f"labels ({labels_src})", labels, len(labels), n_classes)
    if existing is not None:
        files = ", ".join(
            Path(s).name if s[0] != "`" else s for s in (labels_src, names_src, ids_src) if s
        )
        source = f"{directory} ({files})"
        existing.check_probe_set(labels, class_names, probe_ids, source=source)
        class_names = existing.class_names
    else:
        class_names = [str(c) for c in class_names]

    runs = _read_runs(table_path, directory, class_names)
    _check_arrays(runs, table_path, len(labels), n_classes)
    if existing is None:
        target = Store.create(store, labels, class_names, probe_ids=probe_ids, dtype=dtype)
        done = {r.run_id: 0 for r in runs}
    else:
        target = existing
        done = {
            r.run_id: records_done(
                target,
                r.run_id,
                [rec.step for rec in r.records],
                table_path,
                {k: r.info[k] for k in ("task", "method", "seed")},
            )
            for r in runs
        }

    files = _OpenFile()
    for run in runs:
        created = run.run_id not in target.run_ids
        if created:
            target.add_run(run.run_id, **run.info, config={"source": str(table_path)})
        try:
            _append_run(target, run, done[run.run_id], files, records_per_append)
        except ValueError:
            # Everything was checked above, so this is a surprise; still, a run this call
            # created is not left empty or partial (an interrupted import keeps its records).
            if created:
                target.drop_run(run.run_id)
            raise
    return [r.run_id for r in runs]


def _append_run(target, run: _Run, done: int, files, records_per_append: int) -> None:
    todo = run.records[done:]
    for i in range(0, len(todo), records_per_append):
        batch = todo[i : i + records_per_append]
        P = np.stack([files.record(rec) for rec in batch])
        names = sorted({k for rec in batch for k in rec.metrics})
        metrics = {k: [rec.metrics.get(k) for rec in batch] for k in names}
        target.append(run.run_id, P, [rec.step for rec in batch], metrics)


def _integers(values) -> np.ndarray:
    """Labels read from a text file are strings of digits: make them integers."""
    arr = np.asarray(values)
    if arr.dtype.kind == "U" and arr.size and all(v.lstrip("-").isdigit() for v in arr.tolist()):
        return arr.astype(np.int64)
    return arr


def _default_file(directory: Path, stem: str, suffixes: Sequence[str], required=False):
    found = [directory / f"{stem}{s}" for s in suffixes if (directory / f"{stem}{s}").is_file()]
    if len(found) > 1:
        raise ValueError(f"{directory} holds {' and '.join(f.name for f in found)}: keep one")
    if not found:
        if required:
            names = ", ".join(stem + s for s in suffixes)
            raise ValueError(f"{directory} has no {stem} file ({names})")
        return None
    return found[0]


def _list_arg(directory: Path, name: str, value, required=False):
    """(values, where they came from) for labels / class names / probe ids."""
    if value is not None and not isinstance(value, str | Path):
        return value, f"`{name}`"
    path = (
        Path(value)
        if value is not None
        else _default_file(directory, name, (".npy", ".json", ".txt"), required=required)
    )
    if path is None:
        return None, None
    return read_list(path), str(path)


def _read_runs(table_path: Path, directory: Path, class_names: list[str]) -> list[_Run]:
    table = read_table(table_path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"{table_path}: missing column(s) {missing}; the table needs {list(REQUIRED_COLUMNS)}"
        )
    extra = [c for c in table.columns if c not in _RECORD_COLUMNS + RUN_COLUMNS]
    for c in extra:
        if not isinstance(c, str) or not c or c in _meta.RESERVED_METRICS:
            raise ValueError(f"{table_path}: column {c!r} is reserved for Store.runs(); rename it")
    runs: dict[str, _Run] = {}
    for i, row in table.iterrows():
        where = f"{table_path}, row {i + 1}"
        run_id = _meta.check_name(f"{where}: run", _string(row["run"], where, "run"))
        info = _run_info(row, where, class_names)
        run = runs.setdefault(run_id, _Run(run_id, info))
        for key in RUN_COLUMNS:
            if json.dumps(run.info[key]) != json.dumps(info[key]):
                raise ValueError(
                    f"{where}: run {run_id!r} has {key}={info[key]!r} here and "
                    f"{run.info[key]!r} on an earlier row; a run has one {key}"
                )
        file = Path(_string(row["file"], where, "file"))
        file = file if file.is_absolute() else directory / file
        if file.suffix not in ARRAY_SUFFIXES:
            raise ValueError(f"{where}: file {file} is not {', '.join(ARRAY_SUFFIXES)}")
        if not file.is_file():
            raise ValueError(f"{where}: file {file} does not exist")
        index = None if row.get("index") is None else _integer(row["index"], where, "index")
        step = _integer(row["step"], where, "step")
        try:
            _meta.check_step(step)  # bounded as Store.append bounds it: refused before writing
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        metrics = {c: row[c] for c in extra}
        try:
            _meta.check_metrics(metrics, 1)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        run.records.append(_Record(int(i), file, index, step, metrics))
    for run in runs.values():
        run.records.sort(key=lambda r: r.step)
        steps = [r.step for r in run.records]
        dup = next((s for s, t in itertools.pairwise(steps) if s == t), None)
        if dup is not None:
            raise ValueError(f"{table_path}: run {run.run_id!r} has two records at step {dup}")
    return list(runs.values())


def _run_info(row, where: str, class_names: list[str]) -> dict:
    seed = row.get("seed")
    classes = row.get("classes")
    if isinstance(classes, str):
        classes = (
            json.loads(classes)
            if classes.lstrip().startswith("[")
            else [c.strip() for c in classes.split(";") if c.strip()]
        )
    if classes is not None:
        classes = [
            int(c) if isinstance(c, str) and c.isdigit() and c not in class_names else c
            for c in classes
        ]
        try:
            classes = _meta.resolve_classes(classes, class_names)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
    return {
        "task": _string(row["task"], where, "task"),
        "method": _string(row["method"], where, "method"),
        "seed": None if seed is None else _integer(seed, where, "seed", minimum=None),
        "classes": classes,
        "network": None if row.get("network") is None else str(row["network"]),
        "dataset": None if row.get("dataset") is None else str(row["dataset"]),
    }


def _string(value, where: str, column: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{where}: `{column}` is empty")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _integer(value, where: str, column: str, minimum: int | None = 0) -> int:
    given = value
    if isinstance(value, str):
        try:
            # int first: float("10000000000000000001") rounds to another integer.
            value = int(value.strip()) if value.strip().lstrip("+-").isdigit() else float(value)
        except ValueError:
            value = None
    ok = (
        isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    )
    if not ok or (minimum is not None and value < minimum):
        value = given
        bound = "" if minimum is None else f" ≥ {minimum}"
        raise ValueError(f"{where}: `{column}` must be an integer{bound}, got {value!r}")
    return int(value)


def _check_arrays(runs: list[_Run], table_path: Path, n: int, c: int) -> None:
    """Open every file once, give each record its position in it, check every record's values."""
    by_file: dict[Path, list[_Record]] = {}
    for run in runs:
        for rec in run.records:
            by_file.setdefault(rec.file, []).append(rec)
    for file, records in by_file.items():
        records.sort(key=lambda rec: rec.row)
        arr = load_array(file)
        check_array_like(str(file), arr, ndim=(2, 3))
        if arr.shape[-2:] != (n, c):
            raise ValueError(
                f"{file}: predictions of shape {arr.shape}, the probe set and label "
                f"space need (N, C) = ({n}, {c}) or (T, {n}, {c})"
            )
        if arr.ndim == 2:
            if len(records) != 1 or records[0].index not in (None, 0):
                raise ValueError(
                    f"{file} holds one (N, C) record, but {table_path} names it "
                    f"{len(records)} times (or with an index other than 0)"
                )
            records[0].index = None
            check_rows(str(file), np.asarray(arr))
            continue
        T = arr.shape[0]
        given = [rec.index for rec in records]
        if all(i is None for i in given):
            if len(records) != T:
                raise ValueError(
                    f"{file} holds T = {T} records but {table_path} names it on "
                    f"{len(records)} rows: give one row per record, or an `index` "
                    "column"
                )
            for t, rec in enumerate(records):
                rec.index = t
        elif any(i is None for i in given) or len(set(given)) != len(given) or max(given) >= T:
            raise ValueError(
                f"{file} holds T = {T} records: the `index` of each row of "
                f"{table_path} naming it must be given, distinct and below {T}"
            )
        for rec in records:
            check_rows(
                str(file), np.asarray(arr[rec.index : rec.index + 1]), offset=(rec.index, 0, 0)
            )


class _OpenFile:
    """The last prediction file read: a run's records usually come from one (T, N, C) file."""

    def __init__(self):
        self.path, self.array = None, None

    def record(self, rec: _Record) -> np.ndarray:
        if rec.file != self.path:
            self.path, self.array = rec.file, load_array(rec.file)
        block = self.array if rec.index is None else self.array[rec.index]
        return np.asarray(block)
