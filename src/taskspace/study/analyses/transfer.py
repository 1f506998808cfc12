"""The design of analysis 2 (`progress_other_tasks`) as arrays: the end progress of every run on
every task, ``E[r, b]`` (R runs × T tasks), read once; the seed-averaged progress of every training
task A on every task B, ``mean[a, b] = mean_{r ∈ runs(A)} E[r, b]``, and relative to B's own,
``relative[a, b] = mean[a, b] / mean[b, b]``; and the tasks each transfer is measured on, a
boolean (T, T) mask, so that ``transfer(A)`` is a mean over a row of ``relative`` under the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import report
from taskspace.study.analyses.stats import BOOT_SEED, percentile_bounds, spearman, spearman_test

#: Bytes of predictions (counted as float64) read per block of runs: each task's progress is
#: computed on a whole block at once (one kernel call per task and block, not per task and run).
BLOCK_BYTES = 1 << 28


@dataclass(frozen=True)
class Summary:
    """The statistics of one pick of runs per task (all of them, or a resample of seeds)."""

    mean: np.ndarray  # (T, T): [a, b] mean progress on B of A's picked runs
    relative: np.ndarray  # (T, T): mean / B's own (mean[b, b]); NaN where B's own is 0
    transfer: np.ndarray  # (T,): mean finite relative progress of A on its `measured_on` tasks
    within: dict  # size -> Spearman ρ of diversity and transfer within that size
    pooled: float  # size-stratified ρ
    others: float  # mean finite relative progress over all A ≠ B


@dataclass(frozen=True)
class TransferDesign:
    """What every pick of runs shares: tasks, their runs' end progress, diversity and size."""

    tasks: dict  # name -> class indices
    names: list
    end: np.ndarray  # (R, T): progress on task b of run r's last record
    runs: tuple  # per task, its rows of `end`
    diversity: np.ndarray  # (T,)
    size: np.ndarray  # (T,)
    sizes: list  # sizes with at least 3 tasks
    measured_on: np.ndarray  # (T, T) bool: [a, b] when A's transfer is measured on B


def end_progress(store, runs, tasks: dict, progress, whole: bool):
    """The progress of every run on every task (SPEC §5, uniform start, restricted to the task).

    Parameters
    ----------
    store : Store
    runs : pandas.DataFrame
        R runs (`run_table` rows): ``run_id``, ``task``.
    tasks : dict
        T task names → class indices.
    progress : callable or None
        Told ``("progress of every run on every task", done, R·T)``.
    whole : bool
        Every record (the curves), not only each run's last.

    Returns
    -------
    end : ndarray (R, T)
        ``E[r, b]``: progress on task b of run r's last record.
    curves : pandas.DataFrame or None
        With ``whole``: ``train_task``, ``eval_task``, ``run_id``, ``fraction`` (of the run's
        steps), ``progress``, one row per record, run and task.

    Runs are read in blocks of about `BLOCK_BYTES` and each task's progress is computed on a
    whole block at once: one call of the kernel per task and block, not per task and run.
    """
    from taskspace.geometry.progress import progress_on_tasks

    end = np.empty((len(runs), len(tasks)))
    frames, done, total = [], 0, len(runs) * len(tasks)
    for rows, P, counts, fraction in _record_blocks(store, list(runs["run_id"]), whole):
        last = np.cumsum(counts) - 1
        # the block validated and converted once for every task (float16 stores: ~6x faster)
        progress_all = progress_on_tasks(P, store.labels, list(tasks.values()))
        for b, (name, lam) in enumerate(zip(tasks, progress_all, strict=True)):
            end[rows, b] = lam[last]
            if whole:
                part = runs.iloc[rows]
                frames.append(
                    pd.DataFrame(
                        {
                            "train_task": np.repeat(part["task"].to_numpy(), counts),
                            "eval_task": name,
                            "run_id": np.repeat(part["run_id"].to_numpy(), counts),
                            "fraction": fraction,
                            "progress": lam,
                        }
                    )
                )
            done += len(rows)
            report(progress, "progress of every run on every task", done, total)
    return end, (pd.concat(frames, ignore_index=True) if whole else None)


def _record_blocks(store, run_ids: list, whole: bool, budget: int = BLOCK_BYTES):
    """Runs in blocks of about ``budget`` bytes of predictions: ``(rows, P, counts, fraction)``,
    the runs' positions in ``run_ids``, their records stacked (K, N, C) (only the last of each
    run unless ``whole``), the records of each run, and each record's fraction of training."""
    rows, parts, counts, fraction, size = [], [], [], [], 0
    for i, run_id in enumerate(run_ids):
        traj = store.trajectory(run_id)
        P = traj.predictions if whole else traj.predictions[-1:]
        steps = np.asarray(traj.steps if whole else traj.steps[-1:], dtype=np.float64)
        rows.append(i)
        parts.append(P)
        counts.append(P.shape[0])
        fraction.append(steps / max(int(traj.steps[-1]), 1))
        size += P.size * 8  # as float64, the dtype the progress kernels get
        if size >= budget or i == len(run_ids) - 1:
            yield np.array(rows), np.concatenate(parts), np.array(counts), np.concatenate(fraction)
            rows, parts, counts, fraction, size = [], [], [], [], 0


def transfer_design(
    tasks: dict, end: np.ndarray, runs: tuple, diversity: np.ndarray
) -> TransferDesign:
    """Sizes, diversity, and the tasks each task's transfer is measured on.

    Parameters
    ----------
    tasks : dict
        T task names → class indices.
    end : ndarray (R, T)
        `end_progress`.
    runs : tuple of T int arrays
        The rows of ``end`` holding each task's runs.
    diversity : array (T,)

    Returns
    -------
    TransferDesign
        ``measured_on[a, b]``: transfer is measured on the tasks of A's size that share no
        class with A (on a task that shares classes, A's own training counts as transfer, and
        relative progress differs with the evaluation task's size, so a mix of sizes that
        varies with A would confound diversity); fallbacks: the disjoint tasks of any size,
        then all other tasks.
    """
    names = list(tasks)
    size = np.array([len(tasks[a]) for a in names])
    members = np.zeros((len(names), 1 + max(max(c) for c in tasks.values())), dtype=bool)
    for i, a in enumerate(names):
        members[i, list(tasks[a])] = True
    other = ~np.eye(len(names), dtype=bool)
    free = other & ~(members.astype(int) @ members.T.astype(int)).astype(bool)
    same = free & (size[:, None] == size[None, :])
    fallback = np.where(free.any(axis=1, keepdims=True), free, other)
    measured_on = np.where(same.any(axis=1, keepdims=True), same, fallback)
    return TransferDesign(
        tasks=tasks,
        names=names,
        end=end,
        runs=runs,
        diversity=np.asarray(diversity, dtype=np.float64),
        size=size,
        sizes=[k for k in sorted(set(size.tolist())) if (size == k).sum() >= 3],
        measured_on=measured_on,
    )


def summarise(d: TransferDesign, pick) -> Summary:
    """The statistics of one pick of runs per task.

    Parameters
    ----------
    d : TransferDesign
    pick : sequence of T int arrays
        ``pick[a]``: rows of ``d.end`` (A's runs, or a resample of them with repeats).

    Returns
    -------
    Summary
        ``mean[a, b] = mean_{r ∈ pick[a]} E[r, b]`` (T, T); ``relative[a, b] = mean[a, b] /
        mean[b, b]`` (NaN where ``mean[b, b] ≤ 0``); ``transfer[a]``, the mean of the finite
        ``relative[a, b]`` over ``measured_on[a]``; the within-size and stratified Spearman ρ
        of diversity and transfer; ``others``, the mean finite ``relative[a, b]`` over a ≠ b.
    """
    mean = np.stack([d.end[rows].mean(axis=0) for rows in pick])
    own = np.diag(mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(own[None, :] > 0, mean / own[None, :], np.nan)
    transfer = _masked_mean(relative, d.measured_on)
    within = {k: spearman(d.diversity[d.size == k], transfer[d.size == k]) for k in d.sizes}
    pooled = (
        spearman_test(d.diversity, transfer, strata=d.size, n_perm=0).statistic
        if d.sizes
        else np.nan
    )
    others = _masked_mean(relative, ~np.eye(len(d.names), dtype=bool), axis=None)
    return Summary(mean, relative, transfer, within, pooled, float(others))


def _masked_mean(values: np.ndarray, mask: np.ndarray, axis: int | None = 1):
    """Mean of the finite ``values`` where ``mask``, along ``axis``; NaN, without NumPy's "Mean
    of empty slice" warning, where none is left (every own progress 0, as in runs too short to
    move)."""
    keep = mask & np.isfinite(values)
    total = np.where(keep, values, 0.0).sum(axis=axis)
    count = keep.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def seed_bounds(d: TransferDesign, n_boot: int, progress) -> tuple[np.ndarray, np.ndarray]:
    """Percentile 95% bounds (T, T) of each (A, B)'s mean progress over ``n_boot`` resamples of
    A's seeds (with replacement); NaN for a task with one seed."""
    n = len(d.names)
    if n_boot < 1:
        return np.full((n, n), np.nan), np.full((n, n), np.nan)
    rng = np.random.default_rng(BOOT_SEED)
    boot = np.empty((n_boot, n, n))
    for a, rows in enumerate(d.runs):
        boot[:, a] = d.end[rows[rng.integers(0, rows.size, (n_boot, rows.size))]].mean(axis=1)
        report(progress, "bootstrap over seeds", a + 1, n)
    low, high = percentile_bounds(boot)
    single = np.array([rows.size < 2 for rows in d.runs])
    low[single], high[single] = np.nan, np.nan
    return low, high
