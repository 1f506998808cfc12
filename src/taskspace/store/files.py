"""Reading the plain files that importers take: lists (labels, class names), metadata tables and
prediction arrays (``.npy``, ``.npz``, ``.pt``). Every failure is a ValueError naming the file.

Nothing here executes code from a file: ``.npy``/``.npz`` are read with ``allow_pickle=False``,
and ``.pt`` only with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

#: Suffixes of prediction array files that :func:`load_array` reads.
ARRAY_SUFFIXES = (".npy", ".npz", ".pt")
#: The array an ``.npz`` file (or a ``.pt`` dictionary) with several entries must name.
PREDICTIONS_KEY = "predictions"


def read_list(path) -> list | np.ndarray:
    """A list stored in ``path``: ``.npy`` (an array), ``.json`` (a JSON list), else text with
    one entry per line (blank lines ignored).

    Parameters
    ----------
    path : path

    Returns
    -------
    ndarray (``.npy``) or list
    """
    path = Path(path)
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as exc:
        # EOFError: NumPy's answer to an empty .npy file.
        raise ValueError(
            f"{path}: cannot read it ({type(exc).__name__}: {exc or 'empty file'})"
        ) from exc
    if path.suffix == ".json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(value, list):
            raise ValueError(f"{path}: expected a JSON list, got {type(value).__name__}")
        return value
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_table(path) -> pd.DataFrame:
    """A metadata table: ``.csv`` (a header row, then one row per entry) or ``.json`` (a list of
    objects, one per row). Missing cells become None.

    Parameters
    ----------
    path : path

    Returns
    -------
    pandas.DataFrame of objects
        Index 0..rows-1; integers, floats, strings and None (JSON lists stay lists).
    """
    path = Path(path)
    if path.suffix not in (".csv", ".json"):
        raise ValueError(f"{path}: a metadata table must be .csv or .json")
    try:
        if path.suffix == ".csv":
            # keep_default_na=False: a task named "NA" or "null" stays a string; only empty
            # cells are missing.
            table = pd.read_csv(path, keep_default_na=False, na_values=[""])
        else:
            rows = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ValueError("expected a JSON list of objects, one per row")
            table = pd.DataFrame(rows)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: cannot read the table ({exc})") from exc
    if len(table) == 0:
        raise ValueError(f"{path}: the table has no rows")
    # DataFrame.map infers dtypes again (and turns None into NaN): objects only after it.
    table = table.map(_python_scalar).astype(object)
    return table.where(table.notna(), None)


def _python_scalar(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def load_array(path, *, mmap: bool = True):
    """The prediction array in ``path``.

    ``.npy``: the array (memory-mapped when ``mmap``, so a slice reads only what it needs);
    ``.npz``: its only array, or the one named ``"predictions"``; ``.pt``: a tensor, or the
    tensor ``"predictions"`` of a dictionary, loaded with ``torch.load(weights_only=True)``.

    Parameters
    ----------
    path : path
    mmap : bool

    Returns
    -------
    ndarray (possibly a read-only memmap)
    """
    path = Path(path)
    if path.suffix not in ARRAY_SUFFIXES:
        raise ValueError(f"{path}: prediction files must be {', '.join(ARRAY_SUFFIXES)}")
    try:
        if path.suffix == ".npy":
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                arr = _pick(path, {k: npz[k] for k in npz.files})
        else:
            arr = _load_torch(path)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: cannot read it ({exc})") from exc
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path}: holds {type(arr).__name__}, not an array of predictions")
    return arr


def _pick(path: Path, entries: dict):
    if len(entries) == 1:
        return next(iter(entries.values()))
    if PREDICTIONS_KEY in entries:
        return entries[PREDICTIONS_KEY]
    raise ValueError(
        f"{path}: holds {sorted(entries) or 'nothing'}; one array, or one named "
        f"{PREDICTIONS_KEY!r}, expected"
    )


def _load_torch(path: Path):
    import pickle

    import torch

    try:
        # weights_only=True: a .pt file is a pickle, and only this loader refuses to run code
        # from one.
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path}: not loadable with torch.load(weights_only=True) ({exc}); "
            "save the predictions as a plain tensor"
        ) from exc
    except RuntimeError as exc:  # torch's error for a corrupt archive
        raise ValueError(f"{path}: cannot read it ({exc})") from exc
    if isinstance(obj, dict):
        obj = _pick(path, obj)
    if isinstance(obj, torch.Tensor):
        if obj.dtype == torch.bfloat16:  # NumPy has no bfloat16
            obj = obj.float()
        return obj.detach().numpy()
    return obj
