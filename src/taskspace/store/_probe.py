"""Whether models made elsewhere are on a store's probe set and label space (SPEC §0)."""

from __future__ import annotations

import numpy as np

from taskspace.store import _meta


def check_probe_set(store, labels, class_names=None, probe_ids=None, source="the new models"):
    """Raise ValueError, naming both hashes, unless ``labels`` (with ``probe_ids``) and
    ``class_names`` describe ``store``'s probe set and label space.

    The contents are compared, not only hashes, so a store created with hashes of its own (a
    ``Split``'s) accepts the same labels; a difference is reported with the store's hash and the
    hash the given contents would have (``taskspace.data.probe_hash``, ``label_space_hash``).
    Probe ids are compared with the store's when both have them; ids given for a store without
    ids must hash to its probe hash.
    """
    if class_names is not None:
        names = [str(c) for c in class_names]
        if names != store.class_names:
            _refuse(
                "label space",
                store.label_space_hash,
                _meta.label_space_hash(names),
                source,
                f"{len(names)} classes {_head(names)} vs the store's {store.n_classes} "
                f"{_head(store.class_names)}",
            )
    y = np.asarray(labels)
    same = y.shape == (store.n_samples,) and np.array_equal(y, store.labels)
    ids = None if probe_ids is None else np.asarray(probe_ids)
    if same and ids is not None:
        have = store.probe_ids
        if have is not None:
            # As text: Zarr hands string ids back as NumPy's StringDType, which astype(str)
            # cannot convert.
            same = ids.shape == have.shape and [str(v) for v in ids.tolist()] == [
                str(v) for v in have.tolist()
            ]
        else:
            same = _meta.probe_set_hash(y, ids) == store.probe_hash
    if not same:
        try:
            theirs = _meta.probe_set_hash(y, ids)
        except (ValueError, TypeError):
            theirs = "unhashable"
        _refuse(
            "probe set",
            store.probe_hash,
            theirs,
            source,
            f"{y.shape[0] if y.ndim else 0} labels vs the store's N = {store.n_samples}"
            if y.shape != (store.n_samples,)
            else "the labels or probe ids differ",
        )


def _refuse(what, ours, theirs, source, detail):
    raise ValueError(
        f"different {what}: the store's {what} hash is {ours!r}, {source} has {theirs!r} "
        f"({detail}); models on different probe sets or label spaces cannot be mixed (SPEC §0)"
    )


def _head(names):
    return names if len(names) <= 5 else [*names[:5], "..."]
