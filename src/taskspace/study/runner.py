"""Run a study: load its data, open its store, train and record every run in dependency order.

Runs are found again by their ids (`taskspace.methods.train_run` derives them from what they
compute), so running a study again skips what is complete and resumes what was interrupted. The
output folder holds ``store/`` (the trajectories), ``store.checkpoints/`` (models and resume
states), ``study.json`` (the validated config, read back by ``taskspace analyze``) and
``runs.json`` (study run key → store run id).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from taskspace.study.config import StudyConfig
from taskspace.study.outputs import (
    RUNS_FILE,
    STUDY_FILE,
    StudyRun,
    clock,
    load_split,
    open_store,
    select_runs,
)
from taskspace.study.plan import load_hierarchy, resolve_tasks


def run_study(
    study: StudyConfig,
    out,
    *,
    only=None,
    progress: bool = True,
    console=None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> StudyRun:
    """Train and record every run of ``study`` into ``<out>/store``.

    Parameters
    ----------
    study : StudyConfig
    out : path
        Output folder (created).
    only : list of str, optional
        Run only these run specs (and the specs they fine-tune from).
    progress : bool
        Print the overall progress (run i of n, elapsed time) and each run's progress bar.
    console : rich.console.Console, optional
    workers : int, optional
        Train on a local Dask cluster of this many single-threaded worker processes, one run per
        worker at a time (`taskspace.study.distributed_runner.run_study_distributed`; extra
        ``distributed``). None with no ``scheduler``: one run after another in this process.
    scheduler : str, optional
        Train on the existing Dask cluster at this address instead.

    Returns
    -------
    StudyRun
        The same store and records whichever way the runs were trained.
    """
    from rich.console import Console
    from rich.text import Text

    if workers is not None or scheduler is not None:
        from taskspace.study.distributed_runner import run_study_distributed

        if workers is not None and scheduler is not None:
            raise ValueError(
                "give `workers` (a local cluster) or `scheduler` (an existing cluster), not both"
            )
        if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
            raise ValueError(f"`workers` must be a positive integer, got {workers!r}")
        return run_study_distributed(
            study,
            out,
            n_workers=workers,
            scheduler=scheduler,
            only=only,
            progress=progress,
            console=console,
        )

    from taskspace.methods import train_run

    console = console or Console(quiet=not progress)
    out = Path(out)
    started = time.perf_counter()
    planned = select_runs(study, only)
    split = load_split(study)
    tasks = resolve_tasks(study, split.class_names, load_hierarchy(study, split.class_names))
    # Only now, with the data loaded and every task resolved, is anything created on disk.
    out.mkdir(parents=True, exist_ok=True)
    store = open_store(study, split, out / "store")
    (out / STUDY_FILE).write_text(study.model_dump_json(indent=1), encoding="utf-8")

    run_ids: dict[str, str] = {}
    trained = skipped = 0
    width = len(str(len(planned)))
    for i, run in enumerate(planned, 1):
        elapsed = time.perf_counter() - started
        label = f"[{i:>{width}}/{len(planned)}] {run.key}"
        # Run keys hold task names (user text): styled by Text, never parsed as markup.
        console.print(
            Text.assemble(label, " ", (f"({clock(elapsed)} elapsed)", "dim")), highlight=False
        )
        before = _n_records(store)
        try:
            run_id = train_run(
                store,
                split,
                tasks[run.task],
                run.method,
                run.network,
                run.config,
                parent=run_ids.get(run.parent),
                parent_step=run.parent_step,
                progress=progress,
            )
        except ValueError as exc:
            raise ValueError(f"run {run.key} (runs.{run.spec}): {exc}") from None
        run_ids[run.key] = run_id
        # A complete run returns at once without appending: that is a skipped run.
        if _n_records(store) != before:
            trained += 1
        else:
            skipped += 1
            console.print(Text("  complete, skipped", style="dim"), highlight=False)
        (out / RUNS_FILE).write_text(json.dumps(run_ids, indent=1), encoding="utf-8")
    seconds = time.perf_counter() - started
    console.print(
        f"{len(planned)} runs ({trained} trained, {skipped} already complete) in "
        f"{clock(seconds)}; store: {out / 'store'}",
        highlight=False,
        markup=False,
    )
    return StudyRun(out, out / "store", run_ids, trained, skipped, seconds)


def _n_records(store) -> int:
    return sum(store.n_records(r) for r in store.run_ids)
