"""Atomic file writes and file locks: the one home of both (the store, checkpoints, reports).

A write goes to a temporary file beside its target and is moved onto it with ``os.replace``, so a
process killed at any instant leaves the old file or the new one, never a torn file. A lock is
``fcntl.flock`` on a lock file: the kernel drops it when its process dies, so a killed process
never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

#: errno values of a write that ran out of space (the disk, or the user's quota).
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """A write ran out of space; raised by `disk_full_reported` in place of the bare OSError.

    Its message is one line: what ran out, where, and that nothing half-written was committed
    (every write path of the store and of checkpoints is atomic or rolled back on open), so that
    freeing space and running the command again resumes.
    """

    def __init__(self, where, cause: OSError):
        super().__init__(cause.errno, cause.strerror, cause.filename)
        self.where = str(where)

    def __str__(self) -> str:
        what = (
            "the disk quota is exhausted"
            if self.errno == errno.EDQUOT
            else "no space left on the device"
        )
        return (
            f"{what} while writing {self.where}; the store's writes are atomic, so it is "
            "consistent: free some space and run the command again to resume"
        )


@contextlib.contextmanager
def disk_full_reported(where) -> Iterator[None]:
    """Turn an ``OSError`` of a full disk (`DISK_FULL`) raised in the block into a
    `DiskFullError` naming ``where`` (a store, a run, a checkpoint file)."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise DiskFullError(where, exc) from exc
        raise


@contextlib.contextmanager
def atomic_open(path, mode: str = "w", *, fsync: bool = False) -> Iterator[IO]:
    """Open a file that replaces ``path`` atomically when the block ends without an error.

    Writes go to a temporary file in the same directory (``.<name>.<hex>.tmp``), which
    ``os.replace`` moves onto ``path``: readers see the old file or the new one, never a mixture.
    On an error the temporary file is removed and ``path`` is untouched; a killed writer leaves
    only the temporary file (`remove_temporaries`).

    Parameters
    ----------
    path : path-like
    mode : {"w", "wb"}
        Text (UTF-8) or binary.
    fsync : bool
        ``fsync`` the file before the replace (checkpoints: worth the cost when they are large
        and rare; the store's small commit files skip it, see ``_private_dir``).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"`mode` must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (`atomic_open`)."""
    with atomic_open(path, "w") as f:
        f.write(text)


def write_json_atomic(path, obj) -> None:
    """Write ``obj`` as compact JSON (no NaN) to ``path`` atomically (`atomic_open`)."""
    with atomic_open(path, "w") as f:
        json.dump(obj, f, allow_nan=False, separators=(",", ":"))


def read_json(path: Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@contextlib.contextmanager
def file_lock(path: Path, *, shared: bool = False, blocking: bool = True) -> Iterator[bool]:
    """Hold ``flock`` on ``path`` (created if missing) for the duration of the block.

    Yields whether the lock was acquired (always True when ``blocking``). The lock belongs to this
    open file description, so two ``file_lock`` calls on the same path exclude each other even in
    one process: never nest them.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        flags = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        if not blocking:
            flags |= fcntl.LOCK_NB
        try:
            fcntl.flock(fd, flags)
        except OSError as exc:
            if blocking or exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def remove_temporaries(directory: Path) -> None:
    """Remove the temporary files that a killed atomic write leaves next to its target: ours
    (``.<name>.<hex>.tmp``) and Zarr's LocalStore (``<stem>.<hex>.partial``)."""
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_file() and entry.name.endswith((".tmp", ".partial")):
            entry.unlink(missing_ok=True)
