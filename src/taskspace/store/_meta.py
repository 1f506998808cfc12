"""Metadata of a store: hashes, the header, run descriptions and the per-record table (JSON).

Everything here is plain Python and JSON; nothing touches arrays on disk.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taskspace.store import hashes
from taskspace.store.checksums import CorruptStoreError, json_digest

#: Layout version written into every store; bumped on incompatible changes. Format 2 added the
#: digests of the header, the commit records, the run index and the cache records.
FORMAT_VERSION = 2
#: The newest format whose header, commit records and run index carry no digests (read through
#: the legacy path; ``Store.upgrade`` brings such a store to :data:`FORMAT_VERSION`).
LEGACY_FORMAT = 1
HEADER_KEY = "taskspace"
STORE_KIND = "taskspace-store"
RUN_KEY = "taskspace_run"
RECORDS_KEY = "taskspace_records"
#: Key of a run's commit digest in its group attributes, beside RUN_KEY and RECORDS_KEY.
COMMIT_DIGEST_KEY = "taskspace_commit_digest"
#: Key of the run index in the attributes of ``runs/zarr.json``.
INDEX_KEY = "taskspace_run_index"
DTYPES = ("float32", "float16")
COMPRESSIONS = (None, "lz4", "zstd")

#: Columns of ``Store.runs()`` that metrics may not shadow.
RUN_COLUMNS = (
    "run_id",
    "task",
    "classes",
    "method",
    "seed",
    "network",
    "dataset",
    "parent_run",
    "parent_step",
    "config",
    "created",
    "n_records",
)
RECORD_COLUMNS = ("model_id", "record", "step")
RESERVED_METRICS = frozenset(RUN_COLUMNS + RECORD_COLUMNS)

# Run ids and cache keys are directory names: portable characters, no leading dot (dot-names are
# the store's private entries).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# JSON has no NaN/inf; we write them as Zarr writes non-finite fill values.
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def check_name(kind: str, name) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"{kind} {name!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def probe_set_hash(labels, probe_ids=None) -> str:
    """The store's default probe-set hash: ``hashes.probe_hash(ids, labels)`` with the probe ids,
    or the positions 0..N-1 when the store has none, so that a store and the ``Split`` that made
    its probe set agree."""
    labels = np.asarray(labels)
    ids = range(labels.shape[0]) if probe_ids is None else np.asarray(probe_ids).tolist()
    return hashes.probe_hash(ids, labels)


def label_space_hash(class_names: Sequence[str]) -> str:
    """The store's default label-space hash: ``taskspace.store.hashes.label_space_hash``."""
    return hashes.label_space_hash(class_names)


def to_json(name: str, value):
    """``value`` converted to plain JSON types (NumPy scalars and arrays, paths, tuples), or a
    ValueError naming ``name`` and the offending part."""

    def convert(v, where):
        if v is None or isinstance(v, bool | str):
            return v
        if isinstance(v, int | np.integer) and not isinstance(v, np.bool_):
            return int(v)
        if isinstance(v, float | np.floating):
            f = float(v)
            if math.isfinite(f):
                return f
            return "NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity")
        if isinstance(v, np.bool_):
            return bool(v)
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, list | tuple):
            return [convert(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, Mapping):
            out = {}
            for k, x in v.items():
                if not isinstance(k, str):
                    raise ValueError(f"`{name}` has a non-string key {k!r} at {where}")
                out[k] = convert(x, f"{where}[{k!r}]")
            return out
        raise ValueError(f"`{name}` holds {type(v).__name__} at {where}, which JSON cannot store")

    return convert(value, name)


#: Run metadata that says when and by which version a run was made, not what the run is.
VOLATILE_RUN_KEYS = ("created", "taskspace_version")


def run_identity(info: Mapping) -> dict:
    """A run's metadata without :data:`VOLATILE_RUN_KEYS`: what two runs must share to be one."""
    return {k: v for k, v in info.items() if k not in VOLATILE_RUN_KEYS}


def run_digest(info: Mapping) -> str:
    """10 hex digits of the SHA-256 of :func:`run_identity` as canonical JSON: the suffix of a
    run id that re-running the same ``add_run(..., resume=True)`` finds again."""
    text = json.dumps(run_identity(info), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def identity_differences(stored: Mapping, new: Mapping) -> list[str]:
    """Keys of :func:`run_identity` whose values differ between two runs' metadata (compared as
    JSON, so that a tuple and the list it was stored as are equal)."""
    a, b = run_identity(stored), run_identity(new)

    def canon(v):
        return json.dumps(v, sort_keys=True)

    return [k for k in sorted(set(a) | set(b)) if canon(a.get(k)) != canon(b.get(k))]


def from_json_scalar(v):
    return _NONFINITE.get(v, v) if isinstance(v, str) else v


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def resolve_classes(classes, class_names: Sequence[str]) -> list[str]:
    """A task's classes as names of the store's label space (from names or indices)."""
    if classes is None:
        return list(class_names)
    if isinstance(classes, str):
        raise ValueError("`classes` must be a sequence of class names or indices, not a string")
    index = {c: i for i, c in enumerate(class_names)}
    out = []
    for c in classes:
        if isinstance(c, str):
            if c not in index:
                raise ValueError(
                    f"unknown class {c!r} in `classes`; the label space is {list(class_names)}"
                )
            out.append(c)
        elif isinstance(c, int | np.integer) and not isinstance(c, bool | np.bool_):
            if not 0 <= int(c) < len(class_names):
                raise ValueError(
                    f"class index {int(c)} in `classes` is outside [0, {len(class_names)})"
                )
            out.append(class_names[int(c)])
        else:
            raise ValueError(f"`classes` holds {c!r}: expected a class name or an index")
    if len(set(out)) != len(out):
        raise ValueError(f"`classes` repeats a class: {out}")
    if len(out) < 2:
        raise ValueError(f"a task needs at least 2 classes (SPEC §12), got {out}")
    return out


@dataclass(frozen=True)
class DigestPolicy:
    """Which digests a store must have, from its header.

    Attributes
    ----------
    chained : bool
        Format 2 or later: the header, every commit record, the run index and every cache
        record carry a digest, and one that is missing is damage. False: the legacy path (they
        are verified where present, never required).
    chunks : bool
        The store declares checksums (or is chained): every committed record has chunk
        digests, the header a labels digest and every cache its chunk and id digests.
    """

    chained: bool = False
    chunks: bool = False

    @classmethod
    def of(cls, header: Mapping) -> DigestPolicy:
        chained = header.get("format_version", 0) > LEGACY_FORMAT
        return cls(chained, chained or header.get("checksums") is not None)


def header_digest(header: Mapping) -> str:
    """The digest of every field of the header but the digest itself."""
    return json_digest({k: v for k, v in header.items() if k != "header_digest"})


def header_problem(header: Mapping) -> str | None:
    """What is wrong with the digests of a (structurally sound) header, or None."""
    policy = DigestPolicy.of(header)
    if policy.chained:
        if header.get("header_digest") is None:
            return "the header has no digest, which every format-2 header has"
        if header["header_digest"] != header_digest(header):
            return (
                "the header does not match its digest: a field that changes numbers (class "
                "names, dtype, chunking, labels or probe hashes, ...) was edited"
            )
    if policy.chunks and header.get("labels_digest") is None:
        return "the header declares checksums but has no digest of the probe labels"
    if policy.chunks and header.get("has_probe_ids") and header.get("ids_digest") is None:
        return "the header declares checksums but has no digest of the probe ids"
    return None


def commit_digest(run_id: str, info, records) -> str:
    """The digest of a run's commit record: its metadata and records table, bound to its id (a
    record copied over another run's fails)."""
    return json_digest({"run": run_id, "info": info, "records": records})


def commit_problem(run_id: str, attrs: Mapping, policy: DigestPolicy) -> str | None:
    """What is wrong with the digests of a run's commit record (its group attributes, whose
    records table passed :func:`records_problem`), or None."""
    records = attrs[RECORDS_KEY]
    digest = attrs.get(COMMIT_DIGEST_KEY)
    if digest is None and policy.chained:
        return "the commit record has no digest, which every format-2 commit record has"
    if digest is not None and digest != commit_digest(run_id, attrs[RUN_KEY], records):
        return (
            "the commit record does not match its digest: its count, steps, metrics, task, "
            "classes or other metadata were edited"
        )
    chunk_digests = records.get("digests")
    if policy.chunks and (
        chunk_digests is None or any(d is None for d in chunk_digests[: records["count"]])
    ):
        return (
            "the commit record lacks chunk digests, which every record of a store that "
            "declares checksums has"
        )
    return None


def index_entry(run_ids) -> dict:
    """The run index: the sorted run ids and their digest."""
    ids = sorted(run_ids)
    return {"runs": ids, "digest": json_digest(ids)}


def check_header(header, path) -> dict:
    """The store header from the root attributes, or a ValueError saying what is wrong (a
    CorruptStoreError for digests that are missing or do not match)."""
    if not isinstance(header, Mapping) or header.get("kind") != STORE_KIND:
        raise ValueError(f"{path} is a Zarr group but not a taskspace store")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in store format {version!r}; this taskspace reads format "
            f"{FORMAT_VERSION} and older: upgrade taskspace"
        )
    problem = header_problem(header)
    required = ("n_samples", "n_classes", "class_names", "probe_hash", "label_space_hash", "dtype")
    missing = [k for k in required if k not in header]
    if not problem and missing:
        problem = f"the header lacks {missing}"
    if not problem and (
        len(header["class_names"]) != header["n_classes"] or header["dtype"] not in DTYPES
    ):
        problem = "the header's class names, number of classes or dtype are inconsistent"
    if problem:
        raise CorruptStoreError(path, problem, file="zarr.json")
    return dict(header)


def records_problem(records) -> str | None:
    """What is inconsistent in a run's records table (a hand-edited or damaged commit record),
    or None: readers index steps, metrics and digests by record up to ``count``."""
    if not isinstance(records, Mapping):
        return "the records table is not a JSON object"
    count = records.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        return f"the records table has count {count!r}"
    steps, metrics = records.get("steps"), records.get("metrics")
    if not isinstance(steps, list) or len(steps) < count:
        return (
            f"the records table counts {count} records but holds "
            f"{len(steps) if isinstance(steps, list) else 'no'} steps"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in steps[:count]):
        return "the records table holds a step that is not an integer"
    if not isinstance(metrics, Mapping):
        return "the records table has no metrics object"
    for name, values in metrics.items():
        if not isinstance(values, list) or len(values) < count:
            return f"the records table counts {count} records but metric {name!r} has fewer"
    digests = records.get("digests")
    if digests is not None and (not isinstance(digests, list) or len(digests) < count):
        return f"the records table counts {count} records but holds fewer digests"
    return None


def empty_records() -> dict:
    return {"count": 0, "steps": [], "metrics": {}, "digests": []}


def extend_records(
    records: dict, steps: list[int], metrics: dict[str, list], digests: list[list[int]]
) -> dict:
    """New records table: ``records`` plus k records (a metric new to this run is missing, None,
    in its earlier records; a metric absent from this append is None in the new ones), with
    the new records' chunk digests (None for earlier records of a run from before digests)."""
    count, k = records["count"], len(steps)
    new_metrics = {}
    for name in sorted(set(records["metrics"]) | set(metrics)):
        old = records["metrics"].get(name, [None] * count)
        new_metrics[name] = old[:count] + metrics.get(name, [None] * k)
    old_digests = records.get("digests", [None] * count)[:count]
    return {
        "count": count + k,
        "steps": records["steps"][:count] + steps,
        "metrics": new_metrics,
        "digests": old_digests + digests,
    }


def check_metrics(metrics, k: int) -> dict[str, list]:
    """Per-record metrics as lists of k JSON scalars (a scalar is allowed when k == 1)."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise ValueError(f"`metrics` must be a dict of per-record scalars, got {type(metrics)}")
    out = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"`metrics` keys must be non-empty strings, got {name!r}")
        if name in RESERVED_METRICS:
            raise ValueError(
                f"metric name {name!r} is reserved for a column of Store.runs(); rename it"
            )
        seq = value.tolist() if isinstance(value, np.ndarray) else value
        if isinstance(seq, list | tuple):
            if len(seq) != k:
                raise ValueError(
                    f"metric {name!r} has {len(seq)} values for {k} appended record(s)"
                )
        elif k == 1:
            seq = [seq]
        else:
            raise ValueError(f"metric {name!r} must have one value per record ({k} records)")
        values = to_json(f"metrics[{name!r}]", list(seq))
        for i, v in enumerate(values):
            if isinstance(v, list | dict):
                raise ValueError(f"metric {name!r} record {i} is not a scalar: {v!r}")
        out[name] = values
    return out


#: Largest training step a store takes: 2**53 - 1, the largest integer that every reader holds
#: exactly, an int64 column, a float64 one (what pandas makes of a step column with a gap) and a
#: JSON number in any language, so that a step read back is the step written.
MAX_STEP = 2**53 - 1


def check_step(value, what: str = "step") -> int:
    """One training step as an int in [0, `MAX_STEP`]: an integer, or a float with an integer
    value; anything else (a bool, a fraction, NaN, a number past `MAX_STEP`) is a ValueError
    naming the value."""
    integers = "integers" if what.endswith("s") else "an integer"
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise ValueError(f"`{what}` must be {integers}, got {value!r}")
    if isinstance(value, float | np.floating) and not (
        math.isfinite(value) and float(value).is_integer()
    ):
        raise ValueError(f"`{what}` must be {integers}, got {value!r}")
    step = int(value)
    if step < 0:
        raise ValueError(f"`{what}` must be non-negative, got {step}")
    if step > MAX_STEP:
        raise ValueError(
            f"`{what}` {step} is past the largest step a store holds, "
            f"2**53 - 1 = {MAX_STEP} (steps must read back exactly as int64, "
            "float64 and JSON numbers)"
        )
    return step


def check_steps(steps, k: int, last: int | None = None) -> list[int]:
    """k training steps as ints: in [0, `MAX_STEP`] and strictly increasing, also past ``last``
    (the run's last committed step), so that a step names one record and a trajectory runs
    forward."""
    arr = np.atleast_1d(np.asarray(steps))  # an int past int64 makes uint64 or objects
    if arr.ndim != 1 or arr.shape[0] != k:
        raise ValueError(f"`steps` must hold {k} step(s), one per record, got shape {arr.shape}")
    if arr.dtype.kind not in "iufO":
        raise ValueError(f"`steps` must be integers, got {arr.tolist()}")
    out = [check_step(s, "steps") for s in arr.tolist()]  # tolist: exact Python numbers
    for i, step in enumerate(out):
        before = out[i - 1] if i else last
        if before is not None and step <= before:
            ref = (
                f"the run's last committed step {before}"
                if i == 0
                else f"the previous step {before}"
            )
            raise ValueError(
                f"`steps` must be strictly increasing: step {step} (record {i} of "
                f"this append) is not after {ref}"
            )
    return out
