"""Crash safety of the store: its private directory of locks and pending-write markers.

The store survives a writer killed at any instant (SIGKILL, OOM killer, an exception) because of
three rules, applied everywhere in this package:

1. Data first, commit last. New data go to places no reader looks at yet (chunks past the
   committed record count, a staging directory); the single step that makes them visible is an
   atomic ``os.replace`` of one small JSON file (or a directory ``rename``); the atomic writes
   and the locks are `taskspace.store.atomic`'s.
2. Shared state changes under a lock. ``fcntl.flock`` on a lock file in ``.taskspace/locks``; the
   kernel drops it when the process dies, so a killed writer never leaves a stale lock.
3. A writer announces unfinished work with a marker file in ``.taskspace/pending`` before it
   writes and removes it after the commit. Opening the store for writing cleans only what the
   markers name, so cleanup costs nothing for a store of 10^5 healthy runs.

Not covered: power loss or a kernel crash. That would need ``fsync`` of every chunk, which Zarr
does not do; the page cache outlives a killed process, which is the failure this guards against.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

#: Name of the store's private directory (locks, staging area, pending markers). It is not a Zarr
#: node; Zarr's recursive listings skip it with a warning.
PRIVATE_DIR = ".taskspace"


class Private:
    """Paths of the store's private directory ``<root>/.taskspace``."""

    def __init__(self, root: Path):
        self.dir = root / PRIVATE_DIR
        self.locks = self.dir / "locks"
        self.pending = self.dir / "pending"
        self.staging = self.dir / "staging"
        # First fills of distance caches, removed by the cache's own repair (``cache.trim``)
        # under the cache's lock: a fill can outlast many openings of the store.
        self.cache_staging = self.dir / "caches"

    def make(self) -> None:
        for d in (self.locks, self.pending, self.staging, self.cache_staging):
            d.mkdir(parents=True, exist_ok=True)

    def lock(self, name: str) -> Path:
        return self.locks / f"{name}.lock"

    @contextlib.contextmanager
    def pending_write(self, name: str) -> Iterator[None]:
        """Mark ``name`` as being written; the marker survives only if the writer dies."""
        marker = self.pending / name
        marker.touch()
        yield
        marker.unlink(missing_ok=True)

    def pending_names(self) -> list[str]:
        try:
            return sorted(p.name for p in self.pending.iterdir())
        except FileNotFoundError:
            return []
