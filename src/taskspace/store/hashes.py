"""The hashes that identify a probe set and a label space (SPEC §0).

A store keeps both and refuses to mix models recorded on different probe sets or label spaces;
a `taskspace.data.Split` reports the same hashes for the probe set it draws, so the two agree.
"""

from __future__ import annotations

import hashlib

import numpy as np


def probe_hash(ids, labels) -> str:
    """sha256 (hex) of a probe set: ``sha256("".join(f"{id}\\t{label}\\n" for each sample))``.

    The store keeps it and refuses to mix predictions made on different probe sets.
    """
    ids = [str(i) for i in ids]
    labels = np.asarray(labels)
    if labels.shape != (len(ids),):
        raise ValueError(f"ids and labels disagree in length: {len(ids)} and {labels.shape}")
    if any("\t" in i or "\n" in i for i in ids):
        raise ValueError("sample ids must not contain tabs or newlines")
    text = "".join(f"{i}\t{int(y)}\n" for i, y in zip(ids, labels, strict=True))
    return hashlib.sha256(text.encode()).hexdigest()


def label_space_hash(class_names) -> str:
    """sha256 (hex) of a label space: ``sha256("".join(f"{name}\\n" for each class, in order))``."""
    names = [str(c) for c in class_names]
    if any("\n" in c for c in names):
        raise ValueError("class names must not contain newlines")
    return hashlib.sha256("".join(f"{c}\n" for c in names).encode()).hexdigest()
