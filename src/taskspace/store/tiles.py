"""Tile-level progress of a distance computation split into tiles (``taskspace.distributed``).

A distributed job computes the distances that the cache (``cache.py``) lacks, tile by tile, and
commits them to the cache only when every tile is in. So that a job that dies (a killed client, a
lost cluster) resumes with only the missing tiles, every finished tile is kept on disk at once::

    <store>/.taskspace/tiles/<key>/<job>/job.json        what the job computes (written first)
    <store>/.taskspace/tiles/<key>/<job>/<a>_<b>.npy     one finished tile, float64

``<key>`` is the cache's name (``cache.CacheKey.name``) and ``<job>`` a hash of the job's
description (the cache key, the cached and the new model ids, the tile size), so the same request
against the same cache finds the same directory. A tile file is its own commit record: written
to a temporary name, then ``os.replace``-d into place (see ``_private_dir``), so a tile file that
exists is complete. Several clients may run one job at once: they write identical tiles, and
``os.replace`` makes the last one win. After the job's matrix is committed to the cache, its
directory is removed. It lives in the store's private directory, which Zarr does not read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from taskspace.store._meta import check_name
from taskspace.store._private_dir import PRIVATE_DIR
from taskspace.store.atomic import write_json_atomic


def job_id(description: dict) -> str:
    """A stable 20-hex-digit name for a job description (JSON-serialisable)."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class TileJob:
    """The on-disk record of one tiled job: which tiles are done, and their values.

    Parameters
    ----------
    root : path
        The store directory.
    key : str
        The distance cache's name (``cache.CacheKey.name``).
    description : dict
        JSON-serialisable description of the job; its hash names the directory.
    """

    def __init__(self, root, key: str, description: dict):
        check_name("distance cache key", key)
        self.key = key
        self.description = description
        self.id = job_id(description)
        self.dir = Path(root) / PRIVATE_DIR / "tiles" / key / self.id

    def start(self) -> None:
        """Create the job's directory and description (idempotent)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.dir / "job.json").exists():
            write_json_atomic(self.dir / "job.json", self.description)

    def _path(self, a: int, b: int) -> Path:
        return self.dir / f"{int(a)}_{int(b)}.npy"

    def done(self) -> set[tuple[int, int]]:
        """Tiles ``(a, b)`` already on disk."""
        out = set()
        try:
            entries = list(self.dir.iterdir())
        except FileNotFoundError:
            return out
        for entry in entries:
            stem, _, ext = entry.name.partition(".")
            a, _sep, b = stem.partition("_")
            if ext == "npy" and a.isdigit() and b.isdigit():
                out.add((int(a), int(b)))
        return out

    def write(self, a: int, b: int, tile: np.ndarray) -> None:
        """Keep tile ``(a, b)``: temporary file first, then an atomic ``os.replace``."""
        target = self._path(a, b)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(tile, dtype=np.float64), allow_pickle=False)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def read(self, a: int, b: int, shape: tuple[int, int]) -> np.ndarray:
        """Tile ``(a, b)``; ValueError if it does not have ``shape`` (a foreign file)."""
        tile = np.load(self._path(a, b), allow_pickle=False)
        if tile.shape != tuple(shape) or tile.dtype != np.float64:
            raise ValueError(
                f"tile {a}_{b} of job {self.id} has shape {tile.shape}, "
                f"expected {tuple(shape)}; remove {self.dir}"
            )
        return tile

    def remove(self) -> None:
        """Drop the job's directory (after its result is committed to the cache)."""
        shutil.rmtree(self.dir, ignore_errors=True)


def clear(root, key: str | None = None) -> None:
    """Remove the unfinished tiled jobs of cache ``key`` (all keys when None)."""
    base = Path(root) / PRIVATE_DIR / "tiles"
    shutil.rmtree(base if key is None else base / key, ignore_errors=True)
