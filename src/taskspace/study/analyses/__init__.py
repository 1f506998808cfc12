"""The six analyses of the paper, each ``(store, study=None, **options) -> AnalysisResult``.

Every analysis reads only the store (runs' metadata, trajectories, the cached distance matrix,
the class hierarchy); ``study`` is accepted for a uniform signature; `run_analyses` reads its
``[analyses]`` table (which analyses, and options per analysis). An analysis that lacks what it
needs returns a result whose ``finding`` starts with ``"not applicable: "`` instead of raising.
"""

from __future__ import annotations

import inspect

from taskspace.study.analyses._common import AnalysisResult
from taskspace.study.analyses.contrastive import contrastive
from taskspace.study.analyses.episodic import episodic_vs_supervised
from taskspace.study.analyses.finetuning import finetuning
from taskspace.study.analyses.low_dimension import low_dimension
from taskspace.study.analyses.progress_other_tasks import progress_on_other_tasks
from taskspace.study.analyses.tree import tree

#: Registry, in the order of the paper's findings.
ANALYSES = {
    "low_dimension": low_dimension,
    "progress_on_other_tasks": progress_on_other_tasks,
    "tree": tree,
    "finetuning": finetuning,
    "episodic_vs_supervised": episodic_vs_supervised,
    "contrastive": contrastive,
}


def run_analyses(store, study=None, names=None, **options) -> list[AnalysisResult]:
    """Run analyses on a store, in registry order.

    Parameters
    ----------
    store : taskspace.Store
    study : optional
        The study configuration (passed on to every analysis).
    names : sequence of str, optional
        Which analyses (default: all of :data:`ANALYSES`). An unknown name is a ValueError
        listing the known ones.
    **options
        Passed to every analysis that takes an option of that name (e.g. ``n_boot``). The
        study's ``[analyses.options.<name>]`` tables come first; these win over them. Without
        ``names``, the study's ``[analyses] names`` (default: all).
    """
    spec = getattr(study, "analyses", None)
    if names is None and spec is not None and spec.names is not None:
        names = spec.names
    names = list(ANALYSES) if names is None else list(names)
    unknown = [n for n in names if n not in ANALYSES]
    if unknown:
        raise ValueError(f"unknown analysis {unknown[0]!r}; known: {', '.join(ANALYSES)}")
    results = []
    for name in ANALYSES:
        if name in names:
            fn = ANALYSES[name]
            accepted = inspect.signature(fn).parameters
            given = dict(spec.options.get(name, {})) if spec is not None else {}
            unknown = sorted(set(given) - set(accepted) - {"store", "study"})
            if unknown:
                raise ValueError(f"analysis {name!r} has no option(s) {unknown}; its options: "
                                 f"{', '.join(k for k in accepted if k not in ('store', 'study'))}")
            given.update({k: v for k, v in options.items() if k in accepted})
            results.append(fn(store, study, **given))
    return results


__all__ = ["ANALYSES", "AnalysisResult", "run_analyses", *ANALYSES]
