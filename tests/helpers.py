"""Shared test helpers: random models with controllable sharpness."""

import numpy as np


def random_models(rng: np.random.Generator, shape, sharpness: float = 1.0) -> np.ndarray:
    """Random probabilities of ``shape`` (..., N, C): softmax of Gaussian logits × sharpness."""
    logits = sharpness * rng.standard_normal(shape)
    logits -= logits.max(axis=-1, keepdims=True)
    P = np.exp(logits)
    return P / P.sum(axis=-1, keepdims=True)


def make_legacy(path, checksums: bool = True) -> None:
    """Rewrite the store at ``path`` as the previous version wrote it: format 1, no digests of
    the header, the commit records, the run index or the cache records; with ``checksums``
    false, as written before checksums and digests existed (no labels, ids, chunk digests)."""
    import json
    from pathlib import Path

    def edit(file, change):
        meta = json.loads(file.read_text())
        change(meta["attributes"])
        file.write_text(json.dumps(meta))

    def header(attrs):
        h = attrs["taskspace"]
        h["format_version"] = 1
        drop = ["header_digest"] + (
            [] if checksums else ["labels_digest", "checksums", "ids_digest"]
        )
        for k in drop:
            h.pop(k, None)

    def run(attrs):
        attrs.pop("taskspace_commit_digest", None)
        if not checksums:
            attrs["taskspace_records"].pop("digests", None)

    def cache(attrs):
        c = attrs["taskspace_distances"]
        for k in ["record_digest"] + ([] if checksums else ["chunk_digests", "ids_digest"]):
            c.pop(k, None)

    path = Path(path)
    edit(path / "zarr.json", header)
    edit(path / "runs" / "zarr.json", lambda a: a.pop("taskspace_run_index", None))
    for file in (path / "runs").glob("*/zarr.json"):
        edit(file, run)
    for file in (path / "distances").glob("*/zarr.json"):
        edit(file, cache)


def record_chunk_reads(monkeypatch) -> list[str]:
    """Keys of every prediction chunk read from now on, in order: Zarr's reads (``LocalStore.get``)
    and the direct reads of uncompressed chunks (``store.chunkfile.read_chunk``), as paths under
    the store's root (``runs/<run>/predictions/c/<t>/<block>/0``)."""
    from zarr.storage import LocalStore

    from taskspace.store import chunkfile

    read: list[str] = []
    original_get, original_read_chunk = LocalStore.get, chunkfile.read_chunk

    async def counting_get(self, key, *args, **kwargs):
        read.append(key)
        return await original_get(self, key, *args, **kwargs)

    def counting_read_chunk(root, run, record, block, file, *args):
        read.append(str(file.relative_to(root)))
        return original_read_chunk(root, run, record, block, file, *args)

    monkeypatch.setattr(LocalStore, "get", counting_get)
    monkeypatch.setattr(chunkfile, "read_chunk", counting_read_chunk)
    return read
