"""The metadata tables of ``Store.runs()`` built from the runs' JSON, and query filters."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from taskspace.store._meta import RUN_COLUMNS, from_json_scalar

_RUN_FIELDS = ("task", "method", "seed", "network", "dataset", "parent_run", "parent_step")


def _nullable_int(values) -> pd.Series:
    return pd.Series(pd.array(values, dtype="Int64"))


def _metric_column(values: list) -> pd.Series:
    decoded = [from_json_scalar(v) for v in values]
    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in decoded):
        return pd.Series(
            np.array([np.nan if v is None else v for v in decoded], dtype=float)
            if any(v is None or isinstance(v, float) for v in decoded)
            else np.array(decoded, dtype=np.int64)
        )
    return pd.Series(decoded, dtype=object).infer_objects()


def run_table(runs: list[tuple[str, dict, dict]]) -> pd.DataFrame:
    """One row per run: the columns ``RUN_COLUMNS``."""
    cols: dict[str, list] = {c: [] for c in RUN_COLUMNS}
    for run_id, info, records in runs:
        cols["run_id"].append(run_id)
        for f in _RUN_FIELDS:
            cols[f].append(info.get(f))
        cols["classes"].append(tuple(info.get("classes", ())))
        cols["config"].append(info.get("config"))
        cols["created"].append(info.get("created"))
        cols["n_records"].append(records["count"])
    df = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in cols.items()})
    for c in ("seed", "parent_step"):
        df[c] = _nullable_int(cols[c])
    df["n_records"] = np.asarray(cols["n_records"], dtype=np.int64)
    for c in ("run_id", "task", "method", "created"):
        df[c] = df[c].infer_objects()
    return df


def record_table(runs: list[tuple[str, dict, dict]]) -> pd.DataFrame:
    """One row per record: model id, run id, record index, step, the run's fields, then every
    metric (missing where a run did not record it), then classes and config."""
    metric_names = sorted({m for _, _, rec in runs for m in rec["metrics"]})
    cols: dict[str, list] = {
        c: []
        for c in (
            "model_id",
            "run_id",
            "record",
            "step",
            *_RUN_FIELDS,
            *metric_names,
            "classes",
            "config",
        )
    }
    for run_id, info, records in runs:
        t = records["count"]
        cols["model_id"] += [f"{run_id}/{i}" for i in range(t)]
        cols["run_id"] += [run_id] * t
        cols["record"] += range(t)
        cols["step"] += records["steps"][:t]
        for f in _RUN_FIELDS:
            cols[f] += [info.get(f)] * t
        for m in metric_names:
            cols[m] += records["metrics"].get(m, [None] * t)[:t]
        cols["classes"] += [tuple(info.get("classes", ()))] * t
        cols["config"] += [info.get("config")] * t
    df = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in cols.items()})
    df["record"] = np.asarray(cols["record"], dtype=np.int64)
    df["step"] = np.asarray(cols["step"], dtype=np.int64)
    for c in ("seed", "parent_step"):
        df[c] = _nullable_int(cols[c])
    for m in metric_names:
        df[m] = _metric_column(cols[m])
    for c in ("model_id", "run_id", "task", "method"):
        df[c] = df[c].infer_objects()
    return df


def metrics_table(run_id: str, records: dict) -> pd.DataFrame:
    """One run's records as `record_table` gives them, only its ``model_id``, ``record``,
    ``step`` and metric columns (same values and dtypes), built directly: a trajectory read
    needs no more, and the full table costs ~4 ms a run in pandas."""
    t = records["count"]
    df = pd.DataFrame(
        {
            "model_id": pd.Series([f"{run_id}/{i}" for i in range(t)], dtype=object),
            "record": np.arange(t, dtype=np.int64),
            "step": np.asarray(records["steps"][:t], dtype=np.int64),
        }
    )
    for m in sorted(records["metrics"]):
        df[m] = _metric_column(records["metrics"][m][:t])
    df["model_id"] = df["model_id"].infer_objects()
    return df


def select(table: pd.DataFrame, query) -> pd.DataFrame:
    """Rows of ``table`` chosen by a pandas query string, a callable returning a boolean mask
    (or a sub-frame), or a dict ``{column: value or list of values}``."""
    if query is None:
        return table
    if isinstance(query, str):
        try:
            return table.query(query)
        except Exception as exc:  # pandas raises many types for a bad expression
            raise ValueError(
                f"query {query!r} failed on the record table ({type(exc).__name__}: {exc}); "
                f"columns: {list(table.columns)}"
            ) from exc
    if isinstance(query, Mapping):
        mask = np.ones(len(table), dtype=bool)
        for column, value in query.items():
            if column not in table.columns:
                raise ValueError(
                    f"unknown column {column!r} in query; columns: {list(table.columns)}"
                )
            if isinstance(value, list | tuple | set | frozenset | np.ndarray):
                mask &= table[column].isin(list(value)).to_numpy(dtype=bool)
            else:
                mask &= (table[column] == value).to_numpy(dtype=bool, na_value=False)
        return table[mask]
    if isinstance(query, Callable):
        chosen = query(table)
        if isinstance(chosen, pd.DataFrame):
            return chosen
        return table[np.asarray(chosen, dtype=bool)]
    raise ValueError(
        f"`query` must be a query string, a dict or a callable, got {type(query).__name__}"
    )
