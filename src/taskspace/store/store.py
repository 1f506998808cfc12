"""``Store``: a Zarr directory of trajectories on one probe set and label space (SPEC §0).

Layout (Zarr v3; every ``zarr.json`` is a group or array node readable by plain Zarr)::

    <store>/zarr.json              root group; attributes["taskspace"] = header: format version,
                                   N, C, class names, hierarchy, probe/label-space hashes, dtype,
                                   chunking, the digests of the labels and ids and its own
    <store>/probe/labels           (N,) int64 probe labels
    <store>/probe/ids              (N,) sample ids of the probe set (optional)
    <store>/runs/zarr.json         attributes["taskspace_run_index"]: which runs exist, digested
    <store>/runs/<run_id>/zarr.json  run group; attributes["taskspace_run"] = run metadata,
                                   attributes["taskspace_records"] = {"count", "steps", "metrics",
                                   "digests"}, attributes["taskspace_commit_digest"]
    <store>/runs/<run_id>/predictions  (T, N, C) float32 | float16, chunks (1, B, C)
    <store>/distances/<metric>/    the distance cache (``cache.py``)
    <store>/.taskspace/            locks, pending-write markers, staging area (``_private_dir.py``)

A run's ``zarr.json`` is its commit record: ``count`` says how many records are valid, and readers
never look past it. Appending writes the new records' chunks first and then replaces that file
atomically, so a writer killed at any instant leaves every completed record intact and the
half-written one invisible; ``Store.open(path, "a")`` trims it away.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from zarr.storage import LocalStore

from taskspace._version import __version__
from taskspace.geometry.validation import check_array_like, check_rows
from taskspace.store import _meta, _probe, _run_index, _tables, _writer, cache, checksums
from taskspace.store._layout import make_header, open_array, read_header, write_new_store
from taskspace.store._private_dir import Private
from taskspace.store.atomic import file_lock, read_json
from taskspace.store.checksums import CorruptStoreError
from taskspace.store.collection import LazyCollection


@dataclass(frozen=True)
class Trajectory:
    """One run's records, in order.

    Attributes
    ----------
    run_id : str
    predictions : ndarray, shape (T, N, C)
        In the store's dtype (float32 or float16).
    steps : ndarray of int64, shape (T,)
    metrics : pandas.DataFrame
        T rows: ``model_id``, ``record``, ``step`` and one column per recorded metric.
    info : dict
        The run's metadata (task, classes, method, seed, network, dataset, parent run, config).
    """

    run_id: str
    predictions: np.ndarray
    steps: np.ndarray
    metrics: pd.DataFrame
    info: dict = field(repr=False)

    def __len__(self) -> int:
        return self.predictions.shape[0]


class Store:
    """Trajectories of models on one probe set and label space, in a Zarr directory.

    Make one with :meth:`create`, open one with :meth:`open`; the constructor is private.
    """

    def __init__(self, path: Path, header: dict, labels: np.ndarray, mode: str):
        self.path = path
        self.mode = mode
        self._header = header
        self._policy = _meta.DigestPolicy.of(header)
        self._labels = labels
        self._private = Private(path)
        self._zstore = LocalStore(path, read_only=(mode == "r"))

    # ---------------------------------------------------------------- creating and opening
    @classmethod
    def create(
        cls,
        path,
        labels,
        class_names: Sequence[str],
        *,
        probe_ids=None,
        probe_hash: str | None = None,
        label_space_hash: str | None = None,
        hierarchy: dict | None = None,
        dtype: str = "float32",
        overwrite: bool = False,
        chunk_samples: int | None = None,
        compression: str | None = None,
    ) -> Store:
        """Create a store for a probe set (``labels``, ``probe_ids``) and a label space.

        Parameters
        ----------
        path : path
            A directory that does not exist, is empty, or holds a taskspace store.
        labels : array_like of int, shape (N,)
            Probe labels, indices into ``class_names``.
        class_names : sequence of str, length C
        probe_ids : array_like, shape (N,), optional
            Ids of the probe samples (integers or strings), stored and hashed with the labels.
        probe_hash, label_space_hash : str, optional
            Hashes to record. Default: ``taskspace.data.probe_hash(ids, labels)`` (ids: the
            probe ids, or the positions 0..N-1) and ``taskspace.data.label_space_hash``, the
            hashes a ``Split`` reports for the same probe set.
        hierarchy : dict, optional
            A JSON-serialisable class hierarchy (for example WordNet paths), kept as metadata.
        dtype : {"float32", "float16"}
            Storage dtype of predictions (readers get this dtype; the geometry computes in
            float64).
        overwrite : bool
            Replace an existing taskspace store at ``path``. Without it, an existing store with
            the same probe set and label space is opened for appending (several workers may all
            call ``create``) if it was made with the same options (labels, class names, probe
            ids, dtype, compression, and chunk_samples and hierarchy where given); one with
            another probe set or label space is a ValueError naming both hashes, one with any
            other option a ValueError naming the option.
        chunk_samples : int, optional
            Samples per chunk (default: ~1 MiB chunks, ``2**20 // (C * itemsize)`` samples).
        compression : {None, "lz4", "zstd"}
            Blosc compression of predictions. Off by default: float32 probabilities barely
            compress (about 3% with zstd) and reading them raw is fastest.

        Returns
        -------
        Store
            Opened in mode "a".
        """
        path = Path(path)
        header, labels, probe_ids = make_header(
            labels,
            class_names,
            probe_ids,
            probe_hash,
            label_space_hash,
            hierarchy,
            dtype,
            chunk_samples,
            compression,
        )
        if path.exists():
            existing = _existing_store(path)
            if existing is not None and overwrite:
                trash = path.with_name(f".{path.name}.deleting-{uuid.uuid4().hex}")
                os.rename(path, trash)
                shutil.rmtree(trash)
            elif existing is not None:
                return _matching(existing, header, labels, probe_ids, chunk_samples is not None)
        try:
            write_new_store(path, header, labels, probe_ids)
        except FileExistsError:
            # Another process created it first: same rule as an existing store.
            return _matching(
                cls.open(path, mode="a"), header, labels, probe_ids, chunk_samples is not None
            )
        return cls.open(path, mode="a")

    @classmethod
    def open(cls, path, mode: str = "r") -> Store:
        """Open a store: ``mode="r"`` read only, ``"a"`` read and append.

        Opening with ``"a"`` first cleans what killed writers left (half-written records and
        runs, see :meth:`repair`). A path that is not a taskspace store, or a corrupt one, raises
        ValueError; a missing path raises FileNotFoundError.
        """
        if mode not in ("r", "a"):
            raise ValueError(f"`mode` must be 'r' or 'a', got {mode!r}")
        path = Path(path)
        header, labels = read_header(path)
        store = cls(path, header, labels, mode)
        if mode == "a":
            store._private.make()
            store.repair()
        return store

    def repair(self) -> None:
        """Clean what killed writers left: staging directories of runs being created, and the
        records (and cache entries) past each commit that a pending-write marker names. Runs
        whose writer is alive (its lock is held) are left alone."""
        self._check_writable()
        _writer.repair(self)

    # ---------------------------------------------------------------- header
    @property
    def labels(self) -> np.ndarray:
        """Probe labels, int64 (N,)."""
        return self._labels.copy()

    @property
    def class_names(self) -> list[str]:
        return list(self._header["class_names"])

    @property
    def probe_ids(self) -> np.ndarray | None:
        if not self._header.get("has_probe_ids"):
            return None
        try:
            ids = open_array(self._zstore, path="probe/ids", mode="r")[:]
        except Exception as exc:  # Zarr raises several types for a damaged array
            raise CorruptStoreError(
                self.path,
                f"the probe ids cannot be read ({type(exc).__name__}: {exc})",
                file="probe/ids",
            ) from exc
        expected = self._header.get("ids_digest")  # absent in stores from before digests
        if (
            expected is not None
            and checksums.text_digest([str(v) for v in ids.tolist()]) != expected
        ):
            raise CorruptStoreError(
                self.path, "the probe ids do not match the header's digest", file="probe/ids"
            )
        return ids

    probe_hash = property(lambda self: self._header["probe_hash"])
    label_space_hash = property(lambda self: self._header["label_space_hash"])
    hierarchy = property(lambda self: self._header.get("hierarchy"))
    n_samples = property(lambda self: int(self._header["n_samples"]))
    n_classes = property(lambda self: int(self._header["n_classes"]))
    dtype = property(lambda self: np.dtype(self._header["dtype"]))

    def __repr__(self) -> str:
        return (
            f"Store({str(self.path)!r}, mode={self.mode!r}, N={self.n_samples}, "
            f"C={self.n_classes}, dtype={self.dtype}, probe_hash={self.probe_hash[:12]!r})"
        )

    def _repr_html_(self) -> str:
        """Notebook display: sizes, hashes and runs (``taskspace.store.html_view``)."""
        from taskspace.store.html_view import store_html

        return store_html(self)

    def _check_writable(self) -> None:
        if self.mode != "a":
            raise ValueError(f"store {self.path} is open read-only; use Store.open(path, 'a')")

    def check_probe_set(
        self, labels, class_names=None, probe_ids=None, source: str = "the new models"
    ) -> None:
        """Raise ValueError, naming both hashes, unless ``labels`` (N,) (with ``probe_ids``) and
        ``class_names`` are this store's probe set and label space (SPEC §0). Importers call it
        before writing; ``source`` names what is checked in the message."""
        _probe.check_probe_set(self, labels, class_names, probe_ids, source)

    # ---------------------------------------------------------------- runs
    @property
    def run_ids(self) -> list[str]:
        """Ids of the store's runs, in creation order."""
        return [r for r, _, _ in self._read_runs()]

    def add_run(
        self,
        run_id: str | None = None,
        *,
        task: str,
        classes,
        method: str,
        seed: int | None,
        network=None,
        dataset=None,
        parent_run: str | None = None,
        parent_step: int | None = None,
        config: dict | None = None,
        probe_hash: str | None = None,
        label_space_hash: str | None = None,
        resume: bool = False,
    ) -> str:
        """Create an empty run and return its id (or, with ``resume``, find the same run again).

        Parameters
        ----------
        run_id : str, optional
            1-128 letters, digits, '.', '_', '-'. Default ``"<task>-<method>-seed<seed>-<hex>"``,
            with 8 random hex digits, or with ``resume`` 10 hex digits of a hash of the
            metadata below, so that the same call names the same run.
        task : str
            Name of the task (SPEC §12).
        classes : sequence of str or int, or None
            The task's classes, by name or index in the label space (None: all of them).
        method : str
            Training method ("supervised", "finetune", ...).
        seed : int or None
        network, dataset : str or JSON-serialisable, optional
        parent_run, parent_step : optional
            For fine-tuning: the run (already in this store) and step it starts from.
        config : dict, optional
            Any JSON-serialisable configuration.
        probe_hash, label_space_hash : str, optional
            When given, must equal the store's (the models were made on its probe set).
        resume : bool
            Make re-running a script idempotent: when the run (``run_id``, or the one the
            metadata names) already exists with the same metadata, return its id instead of
            refusing, so that appends continue it (:class:`taskspace.Recorder` then skips the
            steps it already holds). The same id with other metadata is a ValueError naming the
            fields that differ. Without ``resume`` an existing ``run_id`` is a ValueError and a
            default id is new each call.

        Creation is atomic: the run is built in a staging directory and renamed into place.
        """
        self._check_writable()
        self._check_hashes(probe_hash, label_space_hash)
        for name, value in (("task", task), ("method", method)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"`{name}` must be a non-empty string, got {value!r}")
        if seed is not None and (not isinstance(seed, int | np.integer) or isinstance(seed, bool)):
            raise ValueError(f"`seed` must be an integer or None, got {seed!r}")
        if parent_step is not None and parent_run is None:
            raise ValueError("`parent_step` given without `parent_run`")
        if parent_run is not None:
            try:
                self._run_dir(parent_run)
            except ValueError as exc:
                raise ValueError(f"`parent_run` {parent_run!r} is not a run of this store") from exc
        info = {
            "task": task,
            "classes": _meta.resolve_classes(classes, self.class_names),
            "method": method,
            "seed": None if seed is None else int(seed),
            "network": _meta.to_json("network", network),
            "dataset": _meta.to_json("dataset", dataset),
            "parent_run": parent_run,
            "parent_step": None if parent_step is None else int(parent_step),
            "config": _meta.to_json("config", config if config is not None else {}),
            "created": _meta.now(),
            "taskspace_version": __version__,
        }
        if run_id is None:
            # A task named "[x]" must still give a valid id: no leading '_', '.' or '-'.
            stem = "".join(
                ch if ch.isalnum() or ch in "._-" else "_" for ch in f"{task}-{method}-seed{seed}"
            )[:100].lstrip("._-")
            run_id = f"{stem}-{_meta.run_digest(info) if resume else uuid.uuid4().hex[:8]}"
        _meta.check_name("run id", run_id)
        if resume and (self.path / "runs" / run_id / "zarr.json").is_file():
            return self._same_run(run_id, info)
        if (self.path / "runs" / run_id).exists():
            raise ValueError(
                f"run {run_id!r} already exists in {self.path} (pass resume=True to continue it)"
            )
        try:
            _writer.create_run(self, run_id, info)
        except ValueError:
            if not resume:  # another process created it between the check and the rename
                raise
            return self._same_run(run_id, info)
        return run_id

    def _same_run(self, run_id: str, info: dict) -> str:
        differ = _meta.identity_differences(self.run_info(run_id), info)
        if differ:
            raise ValueError(
                f"run {run_id!r} already exists in {self.path} with different "
                f"{', '.join(differ)}: resume=True continues only the same run; "
                "give another run_id"
            )
        return run_id

    def append(self, run_id: str, predictions, steps, metrics: dict | None = None) -> list[str]:
        """Append k records to a run, atomically.

        Parameters
        ----------
        run_id : str
        predictions : array_like, shape (N, C) or (k, N, C)
            Probabilities (rows sum to 1), stored in the store's dtype.
        steps : int or sequence of k ints
        metrics : dict, optional
            Per-record scalars (numbers, strings, bools, None): ``{"accuracy": 0.9,
            "mode": "imprint"}`` for one record, or sequences of k values. Non-finite floats are
            kept (JSON holds them as the strings "NaN", "Infinity", "-Infinity", which are
            therefore read back as floats). Names of ``runs()`` columns are reserved.

        Returns
        -------
        list of str
            The model ids ``"<run_id>/<record>"`` of the new records.
        """
        self._check_writable()
        self._run_dir(run_id)
        P = np.asarray(predictions)
        check_array_like("predictions", P, ndim=(2, 3))
        expected = (self.n_samples, self.n_classes)
        if P.shape[-2:] != expected:
            n, c = expected
            raise ValueError(
                f"`predictions` has shape {P.shape} but the store holds models with (N, C) = "
                f"{expected}: give ({n}, {c}) or (k, {n}, {c})"
            )
        check_rows("predictions", P)  # before adding an axis: indices name the user's array
        if P.ndim == 2:
            P = P[None]
        k = P.shape[0]
        steps = _meta.check_steps(steps, k)
        metrics = _meta.check_metrics(metrics, k)
        data = P.astype(self.dtype, copy=False)
        digests = checksums.record_digests(data, int(self._header["chunk_samples"]))
        t = _writer.append_records(self, run_id, data, steps, metrics, digests)
        return [f"{run_id}/{t + i}" for i in range(k)]

    # ---------------------------------------------------------------- reading
    def _run_dir(self, run_id: str) -> Path:
        run_dir = self.path / "runs" / str(run_id)
        valid = isinstance(run_id, str) and _meta.NAME_PATTERN.match(run_id)
        if not valid or not (run_dir / "zarr.json").is_file():
            raise ValueError(f"no run {run_id!r} in store {self.path}")
        return run_dir

    def _run_meta(self, run_id: str) -> tuple[dict, dict]:
        file = f"runs/{run_id}/zarr.json"
        try:
            attrs = read_json(self.path / file)["attributes"]
            info, records = attrs[_meta.RUN_KEY], attrs[_meta.RECORDS_KEY]
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptStoreError(
                self.path, f"the run's metadata cannot be read ({exc})", run=run_id, file=file
            ) from exc
        problem = _meta.records_problem(records) or _meta.commit_problem(
            run_id, attrs, self._policy
        )
        if problem:
            raise CorruptStoreError(self.path, problem, run=run_id, file=file)
        return info, records

    def _records(self, run_id: str) -> dict:
        return self._run_meta(run_id)[1]

    def n_records(self, run_id: str) -> int:
        """Number of committed records of a run."""
        self._run_dir(run_id)
        return int(self._records(run_id)["count"])

    def steps(self, run_id: str) -> list[int]:
        """Training steps of a run's committed records, without reading its predictions."""
        self._run_dir(run_id)
        records = self._records(run_id)
        return [int(s) for s in records["steps"][: int(records["count"])]]

    def run_info(self, run_id: str) -> dict:
        """A run's metadata as given to :meth:`add_run` (task, classes, method, seed, network,
        dataset, parent run and step, config)."""
        self._run_dir(run_id)
        return dict(self._run_meta(run_id)[0])

    def _read_runs(self) -> list[tuple[str, dict, dict]]:
        names = _run_index.run_dirs(self.path)
        if self._policy.chained:
            _run_index.check_listing(self, names)  # a run folder deleted by hand
        runs = [(name, *self._run_meta(name)) for name in names]
        runs.sort(key=lambda r: (r[1].get("created") or "", r[0]))
        return runs

    def runs(self, per: str = "record") -> pd.DataFrame:
        """Metadata table: ``per="record"`` one row per model (``model_id``, ``run_id``,
        ``record``, ``step``, task, method, seed, network, dataset, parent run/step, every
        metric, classes, config), ``per="run"`` one row per run (with ``n_records``)."""
        if per == "record":
            return _tables.record_table(self._read_runs())
        if per == "run":
            return _tables.run_table(self._read_runs())
        raise ValueError(f"`per` must be 'record' or 'run', got {per!r}")

    def trajectory(self, run_id: str) -> Trajectory:
        """The committed records of one run (see :class:`Trajectory`)."""
        self._run_dir(run_id)
        info, records = self._run_meta(run_id)
        t = records["count"]
        metrics = _tables.metrics_table(run_id, records)
        predictions = (
            self._lazy([run_id] * t, np.arange(t))[:]
            if t
            else np.empty((0, self.n_samples, self.n_classes), dtype=self.dtype)
        )
        return Trajectory(
            run_id=run_id,
            predictions=predictions,
            steps=np.asarray(records["steps"][:t], dtype=np.int64),
            metrics=metrics,
            info=info,
        )

    def collection(self, query=None) -> tuple[LazyCollection, pd.DataFrame]:
        """Models chosen by ``query`` as a lazy (M, N, C) array plus their metadata rows.

        Parameters
        ----------
        query : str, dict, callable or None
            A pandas query string over ``runs()`` (``"task == 'a' and step > 0"``), a dict
            ``{column: value or list}``, or a callable taking the table and returning a boolean
            mask. None: every model.

        Returns
        -------
        X : LazyCollection, shape (M, N, C)
            Reads only the chunks a slice needs.
        meta : pandas.DataFrame
            The M rows of ``runs()`` in the order of ``X``, index 0..M-1.
        """
        table = _tables.select(self.runs("record"), query).reset_index(drop=True)
        if len(table) == 0:
            raise ValueError(f"no model of store {self.path} matches query {query!r}")
        return self._lazy(table["run_id"], table["record"]), table

    def _lazy(self, run_ids, records) -> LazyCollection:
        return LazyCollection(
            self.path,
            list(run_ids),
            np.asarray(records),
            self.n_samples,
            self.n_classes,
            self.dtype,
            int(self._header["chunk_samples"]),
            policy=self._policy,
        )

    def models(self, model_ids: list[str]) -> LazyCollection:
        """A lazy (M, N, C) collection of the given models (``"<run_id>/<record>"``), in order."""
        parsed = [m.rsplit("/", 1) for m in model_ids]
        return self._lazy([p[0] for p in parsed], [int(p[1]) for p in parsed])

    def to_xarray(self, runs=None):
        """The models of ``runs`` (default every run) as a lazily loaded ``xarray.Dataset``.

        ``predictions`` has dims (record, sample, class) and is read from the store's chunks
        only when indexed or loaded (no copy); coordinates: ``record`` (model ids), ``run``,
        ``record_index``, ``step``, ``task``, ``method``, ``seed``, ``network``, ``dataset``
        along record; ``sample`` (probe ids) and ``label`` along sample; ``class`` and
        ``class_name`` along class. Every recorded metric is a (record,) variable. Needs the
        extra ``xarray``.
        """
        from taskspace.store.xarray_view import to_xarray

        return to_xarray(self, runs)

    # ---------------------------------------------------------------- integrity
    def check(self):
        """Verify everything on disk: the probe set, the run index, every commit record and its
        chunks (present, checksum, digest) and every distance cache (:meth:`check_path` also
        reports a damaged header, which :meth:`open` refuses).

        Returns
        -------
        taskspace.store.damage_report.CheckReport
            ``.ok``, and ``.damage``: one entry per damaged place, naming run and record (or
            cache) and file, what is wrong and how to repair it (:meth:`drop_run` for a run,
            :meth:`clear_cache` for a cache).
        """
        from taskspace.store.damage_report import check_store

        return check_store(self)

    @classmethod
    def check_path(cls, path, mode: str = "r"):
        """Open the store at ``path`` in ``mode`` and :meth:`check` it, also when its header or
        probe labels are damaged (which :meth:`open` refuses).

        Returns
        -------
        store : Store or None
            None when the header or probe labels are damaged.
        report : taskspace.store.damage_report.CheckReport
            For a damaged header, that damage alone (nothing else is read without it).
        """
        from taskspace.store.damage_report import header_damage_report

        try:
            store = cls.open(path, mode=mode)
        except CorruptStoreError as exc:
            return None, header_damage_report(path, exc)
        return store, store.check()

    def repair_damage(self, report, drop_runs: bool = False):
        """Repair what :meth:`check` found: remove the damaged distance caches (recomputed when
        next needed) and, with ``drop_runs``, drop the damaged runs (:meth:`drop_run`: their
        predictions are deleted, to be re-imported or retrained). Damage to the header or probe
        set cannot be repaired here. A damaged run index is rebuilt from the runs present (run
        folders that are gone are named separately: dropping them removes them from the index).

        Returns
        -------
        dropped_runs, removed_caches : list of str
        left : list of taskspace.store.damage_report.Damage
            The damage of ``report`` still there: the runs not dropped, the header and probe set.
        """
        self._check_writable()
        dropped = list(report.damaged_runs) if drop_runs else []
        for run_id in dropped:
            self.drop_run(run_id)  # also removes every cache naming one of its models
        removed = [n for n in report.damaged_caches if (self.path / "distances" / n).is_dir()]
        for name in removed:
            self.clear_cache(name)
        index_damaged = any(
            d.file == _run_index.INDEX_FILE and d.run is None for d in report.damage
        )
        if index_damaged:
            _run_index.rebuild(self)
        left = [
            d
            for d in report.damage
            if d.cache is None
            and d.run not in dropped
            and not (index_damaged and d.file == _run_index.INDEX_FILE)
        ]
        return dropped, removed, left

    def upgrade(self) -> list[str]:
        """Bring a legacy store (format 1) to the current format: verify it completely, then
        add the digests it lacks (chunk digests of every record, the probe labels' and ids',
        every commit record's, the run index, every cache record's) and write the header last.

        Returns
        -------
        list of str
            What was added, one line per kind (empty for a store already current).

        Raises
        ------
        CorruptStoreError
            If :meth:`check` finds damage: repair it first (digests added to damaged data
            would vouch for it).
        """
        from taskspace.store.upgrade import upgrade_store

        self._check_writable()
        return upgrade_store(self)

    def drop_run(self, run_id: str) -> None:
        """Remove a run, and every distance cache holding any of its models (a new run of the
        same id must never be served the old one's distances; the caches are recomputed when
        next asked for). The run disappears at once (one rename) and is then deleted. A run
        whose folder is gone but which the run index still names is removed from the index."""
        self._check_writable()
        folder = self.path / "runs" / str(run_id)
        if not _meta.NAME_PATTERN.match(str(run_id)) or not (
            folder.is_dir() or run_id in self._indexed_runs()
        ):
            raise ValueError(f"no run {run_id!r} in store {self.path}")
        trash = self._private.staging / f".dropped-{run_id}.{uuid.uuid4().hex}"
        with (
            file_lock(self._private.lock(f"run.{run_id}")),
            _run_index.changing(self, verify=False),
        ):
            if folder.is_dir():
                os.rename(folder, trash)
            _run_index.update(self, remove=run_id)
        prefix = f"{run_id}/"
        for name in cache.cache_names(self.path):
            if any(m.startswith(prefix) for m in cache.committed_ids(self.path, name)):
                cache.remove(self, name)
        shutil.rmtree(trash, ignore_errors=True)

    def _indexed_runs(self) -> list[str]:
        try:
            return _run_index.read_index(self.path, required=False) or []
        except CorruptStoreError:
            return []

    def clear_cache(self, name: str | None = None) -> list[str]:
        """Remove the distance cache ``distances/<name>`` (every cache when None), damaged or
        not; it is recomputed when next asked for. Returns the names removed."""
        self._check_writable()
        names = cache.cache_names(self.path) if name is None else [name]
        for n in names:
            if not (self.path / "distances" / n).is_dir():
                raise ValueError(f"no distance cache {n!r} in store {self.path}")
            cache.remove(self, n)
        return names

    # ---------------------------------------------------------------- distances
    def distance_matrix(
        self,
        model_ids=None,
        metric: str = "bhattacharyya",
        compute=None,
        progress: bool = False,
        *,
        eps: float = cache.DEFAULT_EPS,
        precision: str = "float64",
    ) -> np.ndarray:
        """(M, M) float64 distances between models, kept in the store's distance cache.

        Parameters
        ----------
        model_ids : sequence of str, or a DataFrame with a ``model_id`` column, optional
            Default: every model, in the order of ``runs()``.
        metric : str
            The metric passed to the default ``compute``. A custom ``compute`` must be given a
            name of its own (it is part of the cache key).
        compute : callable, optional
            ``compute(X, Y)`` returns the (len(X), len(Y)) distances between two
            :class:`LazyCollection` s, and ``compute(X, None)`` the symmetric (len(X), len(X))
            matrix of X against itself (the convention of ``pairwise_distances``, which then
            computes one triangle). Default ``taskspace.pairwise_distances(X, Y, metric=metric)``.
        progress : bool
            Progress bars over samples for the default ``compute``.
        eps, precision
            As in ``pairwise_distances``. With ``metric`` and the version of the distance
            kernels they make the cache key (``cache.CacheKey``): a cache computed with any
            other value is never served for this request.

        Returns
        -------
        ndarray of float64, shape (M, M)
            Rows and columns in the order of ``model_ids``.

        Only models not yet in the cache are computed: k new models cost
        ``compute(X_new, X_cached)`` and ``compute(X_new, None)``, and extend the cache (under a
        lock, atomically) so that no pair is ever computed twice. A read-only store computes what
        the cache lacks without saving it.
        """
        table = self.runs("record")
        if model_ids is None:
            ids = list(table["model_id"])
        elif isinstance(model_ids, pd.DataFrame):
            ids = list(model_ids["model_id"])
        else:
            ids = [str(m) for m in model_ids]
        if not ids:
            raise ValueError("no models to compute distances between")
        known = set(table["model_id"])
        unknown = [m for m in ids if m not in known]
        if unknown:
            raise ValueError(f"unknown model id(s) {unknown[:5]} in store {self.path}")
        if len(set(ids)) != len(ids):
            raise ValueError("`model_ids` repeats a model")
        key = cache.CacheKey(metric, eps, precision)
        if compute is None:
            compute = cache.default_compute(key, progress)
        return cache.distance_matrix(self, ids, key, compute, self.models)

    def cached_distances(self, ids=None, metric: str = "bhattacharyya") -> cache.CachedDistances:
        """The cached distance matrix as a lazy (M, M) array-like; nothing is computed or read.

        Parameters
        ----------
        ids : sequence of str, or a DataFrame with a ``model_id`` column, optional
            Rows and columns, in this order. Default: every cached model, in cache order.
        metric : str
            The cache key (as in :meth:`distance_matrix`).

        Returns
        -------
        CachedDistances
            Slices like NumPy and Zarr (``D[r0:r1]``, ``D.get_orthogonal_selection``), so it
            feeds ``InPCA(solver="out-of-core")`` and ``LandmarkInPCA`` directly; ``model_ids``
            names its rows.

        Raises
        ------
        ValueError
            If the cache is empty or lacks one of ``ids`` (compute them with
            :meth:`distance_matrix` or ``taskspace distances`` first).
        """
        if isinstance(ids, pd.DataFrame):
            ids = list(ids["model_id"])
        elif ids is not None:
            ids = [str(m) for m in ids]
        return cache.cached_distances(self, ids, metric)

    def _check_hashes(self, probe_hash, label_space_hash) -> None:
        _check_hash("probe set", self.probe_hash, probe_hash)
        _check_hash("label space", self.label_space_hash, label_space_hash)


def _check_hash(what: str, ours: str, theirs: str | None) -> None:
    if theirs is not None and theirs != ours:
        raise ValueError(
            f"different {what}: the store's {what} hash is {ours!r}, the new one is {theirs!r}; "
            "models on different probe sets or label spaces cannot be mixed (SPEC §0)"
        )


def _existing_store(path: Path) -> Store | None:
    """The taskspace store at an existing ``path``; None for an empty directory; ValueError for
    anything else (never overwritten)."""
    if path.is_dir() and not any(path.iterdir()):
        return None
    try:
        return Store.open(path, mode="a")
    except ValueError as exc:
        raise ValueError(
            f"{path} exists and is not a taskspace store; refusing to overwrite it ({exc})"
        ) from exc


def _matching(
    store: Store, header: dict, labels: np.ndarray, probe_ids, explicit_chunks: bool
) -> Store:
    """``store`` if it was created with these options, else a ValueError naming the first that
    differs: reopening must never hand back a store other than the one asked for."""
    store._check_hashes(header["probe_hash"], header["label_space_hash"])
    if store.class_names != header["class_names"] or not np.array_equal(store._labels, labels):
        raise ValueError(
            f"store {store.path} has the same hashes but different labels or class names"
        )
    ours = store._header
    options = [
        ("dtype", ours["dtype"], header["dtype"]),
        ("compression", ours.get("compression"), header["compression"]),
    ]
    if explicit_chunks:
        options.append(("chunk_samples", ours.get("chunk_samples"), header["chunk_samples"]))
    if header["hierarchy"] is not None:
        options.append(("hierarchy", ours.get("hierarchy"), header["hierarchy"]))
    for name, have, asked in options:
        if have != asked:
            raise ValueError(
                f"store {store.path} exists with {name}={have!r}, not {asked!r}; "
                f"open it with Store.open, or give overwrite=True to replace it"
            )
    if probe_ids is not None:
        have = store.probe_ids
        # As text: Zarr hands variable-length strings back as NumPy's StringDType.
        if have is None or [str(v) for v in have.tolist()] != [str(v) for v in probe_ids.tolist()]:
            raise ValueError(
                f"store {store.path} exists with other probe ids; open it with "
                "Store.open, or give overwrite=True to replace it"
            )
    return store
