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
from dataclasses import dataclass
from pathlib import Path

from taskspace.study.config import StudyConfig
from taskspace.study.plan import PlannedRun, expand_runs, load_hierarchy, resolve_tasks

STUDY_FILE = "study.json"
RUNS_FILE = "runs.json"


@dataclass
class StudyRun:
    """What `run_study` did: the store, each planned run's id, and how many were trained."""

    out: Path
    store_path: Path
    run_ids: dict[str, str]
    trained: int
    skipped: int
    seconds: float


def load_split(study: StudyConfig):
    """The study's dataset split (`taskspace.data.Split`)."""
    from taskspace.data import load_dataset, make_splits

    d = study.data
    options = dict(d.options)
    train = load_dataset(d.dataset, "train", root=d.root, **options)
    test = load_dataset(d.dataset, "test", root=d.root, **options)
    return make_splits(train, test, n_train=d.n_train, n_imprint=d.n_imprint,
                       n_probe=d.n_probe, seed=d.seed, stratified=d.stratified)


def open_store(study: StudyConfig, split, path):
    """Create (or open, when it holds the same probe set and label space) the study's store."""
    from taskspace.store import Store

    probe = split.probe()
    hierarchy = load_hierarchy(study, split.class_names)
    return Store.create(path, probe.labels, split.class_names, probe_ids=probe.ids,
                        probe_hash=split.probe_hash, label_space_hash=split.label_space_hash,
                        hierarchy=hierarchy.to_dict() if hierarchy is not None else None)


def read_study(out) -> StudyConfig | None:
    """The study saved in an output folder by `run_study` (None when there is none)."""
    path = Path(out) / STUDY_FILE
    if not path.is_file():
        return None
    return StudyConfig.model_validate_json(path.read_text(encoding="utf-8"))


def study_of_store(store_path) -> StudyConfig | None:
    """The study whose store is ``store_path`` (``<out>/store``), if it was run by taskspace."""
    return read_study(Path(store_path).parent)


def select_runs(study: StudyConfig, only=None) -> list[PlannedRun]:
    """The study's planned runs (`expand_runs`), restricted to the run specs ``only`` and the
    specs they fine-tune from (None: all)."""
    planned = expand_runs(study)
    if only is None:
        return planned
    unknown = sorted(set(only) - set(study.runs))
    if unknown:
        raise ValueError(f"unknown run spec(s) {unknown}; run specs: {', '.join(study.runs)}")
    wanted = set()
    for name in only:
        while name is not None and name not in wanted:
            wanted.add(name)
            name = study.runs[name].parent
    return [r for r in planned if r.spec in wanted]


def run_study(study: StudyConfig, out, *, only=None, progress: bool = True,
              console=None, workers: int | None = None,
              scheduler: str | None = None) -> StudyRun:
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
            raise ValueError("give `workers` (a local cluster) or `scheduler` (an existing "
                             "cluster), not both")
        if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
            raise ValueError(f"`workers` must be a positive integer, got {workers!r}")
        return run_study_distributed(study, out, n_workers=workers, scheduler=scheduler,
                                     only=only, progress=progress, console=console)

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
        console.print(Text.assemble(label, " ", (f"({_clock(elapsed)} elapsed)", "dim")),
                      highlight=False)
        before = _n_records(store)
        try:
            run_id = train_run(store, split, tasks[run.task], run.method, run.network,
                               run.config, parent=run_ids.get(run.parent),
                               parent_step=run.parent_step, progress=progress)
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
    console.print(f"{len(planned)} runs ({trained} trained, {skipped} already complete) in "
                  f"{_clock(seconds)}; store: {out / 'store'}", highlight=False, markup=False)
    return StudyRun(out, out / "store", run_ids, trained, skipped, seconds)


def _n_records(store) -> int:
    return sum(store.n_records(r) for r in store.run_ids)


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
