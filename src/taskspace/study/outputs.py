"""What every way of running a study shares: the output folder's files, the split, the store.

`run_study` (one run after another in this process) and `run_study_distributed` (one Dask task per
run) write the same folder: ``store/``, ``study.json`` (the validated config, read back by
``taskspace analyze``) and ``runs.json`` (study run key → store run id).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from taskspace.study.config import StudyConfig
from taskspace.study.plan import PlannedRun, expand_runs, load_hierarchy

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
    return make_splits(
        train,
        test,
        n_train=d.n_train,
        n_imprint=d.n_imprint,
        n_probe=d.n_probe,
        seed=d.seed,
        stratified=d.stratified,
    )


def open_store(study: StudyConfig, split, path):
    """Create (or open, when it holds the same probe set and label space) the study's store."""
    from taskspace.store import Store

    probe = split.probe()
    hierarchy = load_hierarchy(study, split.class_names)
    return Store.create(
        path,
        probe.labels,
        split.class_names,
        probe_ids=probe.ids,
        probe_hash=split.probe_hash,
        label_space_hash=split.label_space_hash,
        hierarchy=hierarchy.to_dict() if hierarchy is not None else None,
    )


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


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` past an hour."""
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
