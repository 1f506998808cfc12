"""Shared pieces of the analyses: the result and finding types, run tables, end models, number
formatting and progress reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from taskspace.study.analyses.stats import Interval, unique

#: The verdicts a finding can state, strongest agreement first.
VERDICTS = ("agrees", "inconclusive", "disagrees", "not applicable")
#: Longest headline, in characters.
HEADLINE_MAX = 140

#: ``progress(what, done, total)``: an analysis's report of one of its loops.
Progress = Callable[[str, int, int], None]


class NotApplicable(Exception):
    """Raised by an analysis's ``compute`` when the store lacks what it needs; the message is
    the reason, in words."""


@dataclass(frozen=True)
class Finding:
    """What an analysis found, in words.

    Attributes
    ----------
    verdict : {"agrees", "inconclusive", "disagrees", "not applicable"}
        Against the paper's claim, by the analysis's pre-registered rule.
    headline : str
        At most ``HEADLINE_MAX`` characters, starting with the verdict: the measured number with
        its interval and the paper's, e.g. ``"agrees — 3 InPCA axes keep 0.91 (0.90–0.92) of
        the stress; paper 0.80"``.
    details : str
        The rest, plain text, possibly several sentences.
    reason : str or None
        Why the analysis is not applicable (``verdict == "not applicable"``), else None.
    """

    verdict: str
    headline: str
    details: str
    reason: str | None = None

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if not self.headline.startswith(self.verdict) or len(self.headline) > HEADLINE_MAX:
            raise ValueError(
                f"a headline starts with its verdict and has at most "
                f"{HEADLINE_MAX} characters, got {self.headline!r}"
            )

    def __str__(self) -> str:
        return f"{self.headline}. {self.details}" if self.details else self.headline


def make_finding(verdict: str, claim: str, details: str) -> Finding:
    """``Finding`` whose headline is ``"<verdict> — <claim>"``, the claim shortened with "…"
    if it would make the headline longer than ``HEADLINE_MAX``."""
    headline = f"{verdict} — {claim}"
    if len(headline) > HEADLINE_MAX:
        headline = headline[: HEADLINE_MAX - 1].rstrip() + "…"
    return Finding(verdict, headline, details)


@dataclass(frozen=True)
class Estimate:
    """A number with its 95% interval (`Interval`, NaN bounds with ``why`` when there is none)
    and its p-value (NaN when no test was made)."""

    value: float
    interval: Interval = field(default_factory=lambda: Interval.none("not estimated"))
    p_value: float = float("nan")

    @property
    def low(self) -> float:
        return self.interval[0]

    @property
    def high(self) -> float:
        return self.interval[1]

    def text(self, label: str = "95% CI", digits: int = 3) -> str:
        """``"0.42 (95% CI 0.40–0.45)"`` or ``"0.42 (no interval: <why>)"`` (`fmt_ci`)."""
        return fmt_ci(self.value, self.interval, digits, label)

    def short(self, digits: int = 2) -> str:
        """``"0.91 (0.90–0.92)"``, or ``"0.91 (no interval)"``: for headlines."""
        return fmt_short(self.value, self.interval, digits)


@dataclass
class AnalysisResult:
    """What one analysis found.

    Attributes
    ----------
    name : str
        Registry name (``"low_dimension"``, ...).
    title : str
        Human-readable title.
    table : pandas.DataFrame
        Tidy table of the measured numbers, columns named for people with their units (empty
        when the analysis is not applicable).
    figure : taskspace.study.analyses.figure.Figure or None
        What the figure shows (panels, series, labels); `taskspace.report` draws it with plotly
        (the HTML report) and with matplotlib (PNG, PDF).
    finding : Finding
        The verdict, a headline of at most 140 characters starting with it, and the details.
    applicable : bool
    summary : dict
        The headline numbers of the finding, by name (for docs/results.md and tests).
    result : object or None
        The analysis's typed result (``LowDimensionResult``, ...); None when not applicable.
    """

    name: str
    title: str
    table: pd.DataFrame
    figure: object | None
    finding: Finding
    applicable: bool = True
    summary: dict = field(default_factory=dict)
    result: object | None = None

    def _repr_html_(self) -> str:
        """Notebook display: headline, verdict, table and figure (``report.notebook``)."""
        from taskspace.report.notebook import result_html  # drawn at display time only

        return result_html(self)


def not_applicable(name: str, title: str, reason: str) -> AnalysisResult:
    claim = reason if len(reason) <= HEADLINE_MAX - 17 else reason[: HEADLINE_MAX - 18] + "…"
    finding = Finding("not applicable", f"not applicable — {claim}", "", reason=reason)
    return AnalysisResult(
        name=name, title=title, table=pd.DataFrame(), figure=None, finding=finding, applicable=False
    )


#: Bytes of predictions `ReadOnce` keeps in memory for the analyses of one `run_analyses` call.
READ_ONCE_BYTES = 1 << 30


class ReadOnce:
    """A store whose trajectories and metadata tables are read once for all the analyses of one
    `run_analyses` call, the trajectories up to ``budget`` bytes of predictions (beyond it they
    are read again when asked for); every other attribute is the store's own.

    Five of the six analyses read the runs they compare, mostly the same ones, and each read
    rebuilds the run's record table. Callers must not modify what they get (the analyses copy
    before converting); tables are handed out as copies.
    """

    def __init__(self, store, budget: int = READ_ONCE_BYTES):
        self._store, self._budget, self._used = store, budget, 0
        self._trajectories, self._tables = {}, {}

    def trajectory(self, run_id: str):
        traj = self._trajectories.get(run_id)
        if traj is None:
            traj = self._store.trajectory(run_id)
            if self._used + traj.predictions.nbytes <= self._budget:
                self._trajectories[run_id] = traj
                self._used += traj.predictions.nbytes
        return traj

    def runs(self, per: str = "record") -> pd.DataFrame:
        if per not in self._tables:
            self._tables[per] = self._store.runs(per)
        return self._tables[per].copy()

    def __getattr__(self, name: str):
        return getattr(self._store, name)


def report(progress: Progress | None, what: str, done: int, total: int) -> None:
    """Pass one progress report on, if anyone listens."""
    if progress is not None:
        progress(what, done, total)


def run_table(store) -> pd.DataFrame:
    """``store.runs(per="run")`` without empty runs, with ``class_idx`` (tuple of indices)."""
    runs = store.runs(per="run")
    runs = runs[runs["n_records"] > 0].reset_index(drop=True)
    index = {c: i for i, c in enumerate(store.class_names)}
    runs["class_idx"] = [
        tuple(sorted(index[c] for c in cls)) if len(cls) else tuple(range(len(index)))
        for cls in runs["classes"]
    ]
    return runs


def task_classes(runs: pd.DataFrame) -> dict[str, tuple[int, ...]]:
    """Task name → its class indices (the first run of the task decides)."""
    return {t: runs.loc[runs["task"] == t, "class_idx"].iloc[0] for t in unique(runs["task"])}


def hierarchy_name(store) -> str:
    """What the store's class hierarchy is, for the findings' words: ``"WordNet"``, or ``"the
    declared class tree"`` for a tree a study declared by hand (the digits demonstration)."""
    from taskspace.data.hierarchy import ClassHierarchy

    declared = not ClassHierarchy.from_dict(store.hierarchy).is_wordnet
    return "the declared class tree" if declared else "WordNet"


def end_model(store, run_id: str) -> np.ndarray:
    """Last committed record of a run, float64 (N, C): that record alone is read (a whole
    trajectory at the ImageNet study's shape is 610 MB for 10 MB of end model)."""
    last = store.n_records(run_id) - 1
    return np.asarray(store.models([f"{run_id}/{last}"])[0], dtype=np.float64)


def fmt(x: float, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def fmt_ci(
    value: float, interval: tuple[float, float], digits: int = 3, label: str = "95% CI"
) -> str:
    """``"0.42 (95% CI 0.40–0.45)"``, or ``"0.42 (no interval: <why>)"`` when none was formed.

    A narrow interval is printed with up to 3 more significant digits, so that its two bounds
    never print the same ("0.894–0.894"); one narrower than that is reported as no interval.
    """
    lo, hi = interval
    why = getattr(interval, "why", "") or "too few runs"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{fmt(value, digits)} (no interval: {why})"
    for d in range(digits, digits + 4):
        if fmt(lo, d) != fmt(hi, d):
            return f"{fmt(value, d)} ({label} {fmt(lo, d)}–{fmt(hi, d)})"
    return f"{fmt(value, digits)} (no interval: the resamples agree to {digits + 3} digits)"


def fmt_short(value: float, interval: tuple[float, float], digits: int = 2) -> str:
    """``"0.91 (0.90–0.92)"`` (bounds with more digits where they would print alike), or
    ``"0.91 (no interval)"``: `fmt_ci` without the label and the reason, for headlines."""
    lo, hi = interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{fmt(value, digits)} (no interval)"
    sep = "–" if lo >= 0 else " to "  # "−0.9 to −0.6", never "−0.9–−0.6"
    for d in range(digits, digits + 4):
        if fmt(lo, d) != fmt(hi, d):
            return f"{fmt(value, d)} ({fmt(lo, d)}{sep}{fmt(hi, d)})"
    return f"{fmt(value, digits)} (no interval)"


PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
)


def colours(keys) -> dict:
    """A stable colour for each distinct key."""
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(unique(keys))}
