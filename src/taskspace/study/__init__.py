"""The study: configs of the paper's experiments, the runner that trains them, and analyses.

``load_study(path)`` validates a TOML study config (`taskspace.study.loading`, against the schema
of `taskspace.study.config`); ``expand_runs`` lists its runs (`taskspace.study.plan`);
``run_study`` trains and records all of them into a store, parents before their fine-tuned
children; ``analyze`` runs the analyses of the paper on a store (`taskspace.study.analyses`).
Importing it loads neither torch nor the training loops.
"""

from __future__ import annotations

from pathlib import Path

from taskspace.study.config import (
    AnalysesSpec,
    DataSpec,
    RunSpec,
    ScheduleSpec,
    StudyConfig,
    TaskSpec,
)
from taskspace.study.loading import load_study, parse_study
from taskspace.study.outputs import StudyRun, load_split, read_study, study_of_store
from taskspace.study.plan import PlannedRun, expand_runs, resolve_tasks
from taskspace.study.runner import run_study

#: The demo study shipped with the package (`taskspace demo`).
DEMO_STUDY = Path(__file__).parent / "builtin" / "digits-demo.toml"


def analyze(store, study: StudyConfig | None = None, names=None, progress=None):
    """Run the study's analyses on ``store`` (`taskspace.study.analyses.run_analyses`; its
    ``progress`` callback)."""
    from taskspace.study.analyses import run_analyses

    return run_analyses(store, study, names=names, progress=progress)


__all__ = [
    "DEMO_STUDY",
    "AnalysesSpec",
    "DataSpec",
    "PlannedRun",
    "RunSpec",
    "ScheduleSpec",
    "StudyConfig",
    "StudyRun",
    "TaskSpec",
    "analyze",
    "expand_runs",
    "load_split",
    "load_study",
    "parse_study",
    "read_study",
    "resolve_tasks",
    "run_study",
    "study_of_store",
]
