"""The store's root: header validation, atomic creation of a new store, reading the header."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec
from zarr.storage import LocalStore

from taskspace._version import __version__
from taskspace.geometry.validation import as_labels
from taskspace.store import _meta
from taskspace.store._private_dir import Private
from taskspace.store.atomic import disk_full_reported, read_json
from taskspace.store.checksums import CHECKSUM, CorruptStoreError, labels_digest, text_digest

#: Target size of one predictions chunk (one record by a block of samples): large enough that
#: reading is throughput-bound, small enough that a sample block of 10^4 models fits in memory.
CHUNK_BYTES = 1 << 20


def open_array(zstore, path: str, mode: str = "r") -> zarr.Array:
    """Open a Zarr v3 array (naming the format spares the probe for v2 metadata files)."""
    return zarr.open_array(zstore, path=path, mode=mode, zarr_format=3)


def chunk_samples_for(n_samples: int, n_classes: int, dtype) -> int:
    """Samples per chunk so that a (1, B, C) chunk holds about ``CHUNK_BYTES``."""
    per_sample = n_classes * np.dtype(dtype).itemsize
    return int(max(1, min(n_samples, CHUNK_BYTES // per_sample)))


def compressors_for(compression: str | None) -> list:
    """Bytes-to-bytes codecs of a predictions array: Blosc (optional), then the crc32c
    checksum of the stored bytes (``checksums``)."""
    if compression is None:
        return [CHECKSUM]
    return [BloscCodec(cname=compression, clevel=5, shuffle="shuffle"), CHECKSUM]


def make_header(
    labels,
    class_names,
    probe_ids,
    probe_hash,
    label_space_hash,
    hierarchy,
    dtype,
    chunk_samples,
    compression,
):
    """Validate the arguments of ``Store.create``; return (header, labels, probe_ids)."""
    if isinstance(class_names, str) or not all(isinstance(c, str) and c for c in class_names):
        raise ValueError("`class_names` must be a sequence of non-empty strings")
    class_names = list(class_names)
    if len(class_names) < 2:
        raise ValueError(f"a label space needs at least 2 classes, got {class_names}")
    if len(set(class_names)) != len(class_names):
        dup = next(c for c in class_names if class_names.count(c) > 1)
        raise ValueError(f"`class_names` repeats {dup!r}")
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] == 0:
        raise ValueError(f"`labels` must be a non-empty 1-D array, got shape {y.shape}")
    y = as_labels("labels", y, y.shape[0], len(class_names))
    if probe_ids is not None:
        probe_ids = np.asarray(probe_ids)
        if probe_ids.shape != y.shape:
            raise ValueError(
                f"`probe_ids` has shape {probe_ids.shape}, `labels` has shape {y.shape}"
            )
        if probe_ids.dtype.kind not in "iuU":
            probe_ids = probe_ids.astype(str)
    if dtype not in _meta.DTYPES:
        raise ValueError(f"`dtype` must be one of {_meta.DTYPES}, got {dtype!r}")
    if compression not in _meta.COMPRESSIONS:
        raise ValueError(f"`compression` must be one of {_meta.COMPRESSIONS}, got {compression!r}")
    n, c = y.shape[0], len(class_names)
    if chunk_samples is None:
        chunk_samples = chunk_samples_for(n, c, dtype)
    elif not isinstance(chunk_samples, int | np.integer) or chunk_samples < 1:
        raise ValueError(f"`chunk_samples` must be a positive integer, got {chunk_samples!r}")
    try:
        json.dumps(hierarchy, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`hierarchy` must be JSON-serialisable: {exc}") from exc
    header = {
        "kind": _meta.STORE_KIND,
        "format_version": _meta.FORMAT_VERSION,
        "n_samples": int(n),
        "n_classes": int(c),
        "class_names": class_names,
        "probe_hash": probe_hash or _meta.probe_set_hash(y, probe_ids),
        "label_space_hash": label_space_hash or _meta.label_space_hash(class_names),
        "hierarchy": hierarchy,
        "dtype": dtype,
        "chunk_samples": int(min(chunk_samples, n)),
        "compression": compression,
        "has_probe_ids": probe_ids is not None,
        "labels_digest": labels_digest(y),
        "checksums": "crc32c",
        "ids_digest": None
        if probe_ids is None
        else text_digest([str(v) for v in probe_ids.tolist()]),
        "created": _meta.now(),
        "taskspace_version": __version__,
    }
    header["header_digest"] = _meta.header_digest(header)
    return header, y, probe_ids


def write_new_store(path: Path, header: dict, labels: np.ndarray, probe_ids) -> None:
    """Build the store in a sibling staging directory, then rename it to ``path``: a store that
    exists is complete. Raises FileExistsError if ``path`` became a non-empty directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with disk_full_reported(f"the new store {path}"):
        _write_new_store(path, header, labels, probe_ids)


def _write_new_store(path: Path, header: dict, labels: np.ndarray, probe_ids) -> None:
    staging = path.with_name(f".{path.name}.creating-{uuid.uuid4().hex}")
    try:
        zs = LocalStore(staging)
        root = zarr.open_group(zs, mode="w", attributes={_meta.HEADER_KEY: header})
        root.create_group("runs", attributes={_meta.INDEX_KEY: _meta.index_entry([])})
        root.create_group("distances")
        probe = root.create_group("probe")
        probe.create_array("labels", data=labels.astype(np.int64), compressors=[CHECKSUM])
        if probe_ids is not None and probe_ids.dtype.kind == "U":
            # Variable-length strings: Zarr's fixed-width UTF-32 type has no v3 specification.
            ids = probe.create_array(
                "ids", shape=probe_ids.shape, dtype=str, compressors=[CHECKSUM]
            )
            ids[:] = probe_ids
        elif probe_ids is not None:
            probe.create_array("ids", data=probe_ids.astype(np.int64), compressors=[CHECKSUM])
        Private(staging).make()
        try:
            os.rename(staging, path)
        except OSError as exc:
            if path.is_dir():
                raise FileExistsError(str(path)) from exc
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _stores_below(path: Path) -> str:
    """``"; did you mean <path>/store?"`` when folders one level down hold taskspace stores (the
    output folder of a study holds its store in ``store/``); else ``""``."""
    found = []
    try:
        for child in sorted(path.iterdir()):
            try:
                meta = read_json(child / "zarr.json") if child.is_dir() else None
            except (OSError, ValueError, UnicodeDecodeError):
                continue
            if isinstance(meta, dict) and _meta.HEADER_KEY in (meta.get("attributes") or {}):
                found.append(str(child))
    except OSError:
        return ""
    if not found:
        return ""
    return f"; did you mean {' or '.join(found[:3])}?"


def read_header(path: Path) -> tuple[dict, np.ndarray]:
    """Header and labels of the store at ``path``; ValueError if it is not a (sound) one."""
    if not path.exists():
        raise FileNotFoundError(f"no taskspace store at {path}: the path does not exist")
    if not path.is_dir():
        raise ValueError(f"{path} is not a taskspace store (not a directory)")
    meta_path = path / "zarr.json"
    if not meta_path.is_file():
        raise ValueError(f"{path} is not a taskspace store (no zarr.json)" + _stores_below(path))
    try:
        meta = read_json(meta_path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"corrupt store {path}: zarr.json is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("node_type") != "group":
        raise ValueError(f"{path} is not a taskspace store (its root is not a Zarr group)")
    header = _meta.check_header(meta.get("attributes", {}).get(_meta.HEADER_KEY), path)
    try:
        labels = open_array(LocalStore(path, read_only=True), path="probe/labels", mode="r")[:]
    except Exception as exc:  # Zarr raises several types for missing or damaged arrays
        raise CorruptStoreError(
            path,
            f"the probe labels cannot be read ({type(exc).__name__}: {exc})",
            file="probe/labels",
        ) from exc
    if labels.shape != (header["n_samples"],) or labels.dtype.kind not in "iu":
        raise CorruptStoreError(
            path,
            f"the probe labels have shape {labels.shape}, the header "
            f"says N = {header['n_samples']}",
            file="probe/labels",
        )
    expected = header.get("labels_digest")  # absent in stores written before digests
    if expected is not None and labels_digest(labels) != expected:
        raise CorruptStoreError(
            path,
            f"the probe labels do not match the header's digest (probe hash "
            f"{header['probe_hash'][:16]}...): they were edited or damaged",
            file="probe/labels",
        )
    if not (path / "runs").is_dir():
        raise ValueError(f"corrupt taskspace store {path}: no runs/ directory")
    return header, labels.astype(np.int64)
