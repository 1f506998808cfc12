"""The six analyses of the paper, each ``(store, study=None, **options) -> AnalysisResult``.

Every analysis reads only the store (runs' metadata, trajectories, the cached distance matrix,
the class hierarchy); ``study`` is accepted for a uniform signature; `run_analyses` reads its
``[analyses]`` table (which analyses, and options per analysis). Each module has three parts:
``compute(store, ...)`` returns a typed result (a frozen dataclass, every number an `Estimate`
with its interval and p-value), ``describe(result)`` turns it into a `Finding` (verdict, a
headline of at most 140 characters that starts with it, and the details), and the registered
function adds the table and the figure. An analysis that lacks what it needs returns a result
whose finding's verdict is ``"not applicable"`` with the reason, instead of raising.
"""

from __future__ import annotations

import inspect

from taskspace.study.analyses._common import (
    VERDICTS,
    AnalysisResult,
    Estimate,
    Finding,
    NotApplicable,
    ReadOnce,
)
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


def run_analyses(store, study=None, names=None, progress=None, **options) -> list[AnalysisResult]:
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
    progress : callable ``(analysis, what, done, total)``, optional
        Told what runs: ``what == "analyses"`` before each analysis (``done`` of ``total``
        analyses finished) and once after the last; any other ``what`` names a loop of that
        analysis (a bootstrap, a jackknife, subsets) with ``done`` of its ``total`` steps. The
        command line prints these on standard error.
    """
    spec = getattr(study, "analyses", None)
    if names is None and spec is not None and spec.names is not None:
        names = spec.names
    names = list(ANALYSES) if names is None else list(names)
    unknown = [n for n in names if n not in ANALYSES]
    if unknown:
        raise ValueError(f"unknown analysis {unknown[0]!r}; known: {', '.join(ANALYSES)}")
    chosen = [name for name in ANALYSES if name in names]
    store = ReadOnce(store)  # the analyses share their reads of the store
    results = []
    for i, name in enumerate(chosen):
        if progress is not None:
            progress(name, "analyses", i, len(chosen))
        given = _options(name, spec, options)
        if progress is not None:
            given["progress"] = lambda what, done, total, name=name: progress(
                name, what, done, total
            )
        results.append(ANALYSES[name](store, study, **given))
    if progress is not None and chosen:
        progress(chosen[-1], "analyses", len(chosen), len(chosen))
    return results


def _options(name: str, spec, options: dict) -> dict:
    """The options of one analysis: the study's table for it, then those ``options`` it takes."""
    accepted = [
        k
        for k in inspect.signature(ANALYSES[name]).parameters
        if k not in ("store", "study", "progress")
    ]
    given = dict(spec.options.get(name, {})) if spec is not None else {}
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(
            f"analysis {name!r} has no option(s) {unknown}; its options: {', '.join(accepted)}"
        )
    given.update({k: v for k, v in options.items() if k in accepted})
    return given


__all__ = [
    "ANALYSES",
    "VERDICTS",
    "AnalysisResult",
    "Estimate",
    "Finding",
    "NotApplicable",
    "run_analyses",
    *ANALYSES,
]
