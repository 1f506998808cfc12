"""Analysis 5: episodic (protonet) against supervised trajectories on the same task."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from taskspace.study.analyses._common import (
    AnalysisResult,
    Estimate,
    Finding,
    NotApplicable,
    Progress,
    colours,
    fmt,
    make_finding,
    not_applicable,
    report,
    run_table,
)
from taskspace.study.analyses.figure import Area, Band, Figure, Panel, Series
from taskspace.study.analyses.stats import jackknife_interval, leave_one_out, plateau, verdict

NAME = "episodic_vs_supervised"
TITLE = "Episodic vs supervised training"
MIDDLE = (0.2, 0.8)  # progress range counted as "the middle" of training
#: The plateau criterion (`stats.plateau`): progress on the run's own task changes by less than
#: ``PLATEAU_TOL`` over the last ``PLATEAU_FRACTION`` of its steps.
PLATEAU_FRACTION, PLATEAU_TOL = 0.2, 0.02
#: What each task's measurement holds, in this order (the columns of its array).
MEASURES = ("whole", "middle", "end", "episodic_to_truth", "supervised_to_truth")
#: Table columns, for people.
COLUMNS = {
    "task": "task",
    "progress": "progress",
    "distance": "d_B at equal progress",
    "ci_low": "95% jackknife low",
    "ci_high": "95% jackknife high",
    "note": "note",
}


@dataclass(frozen=True)
class EpisodicResult:
    """Episodic against supervised trajectories (`compute`). Every distance is a mean over the
    tasks with a delete-one jackknife interval over runs.

    Attributes
    ----------
    episodic, supervised : str
        The two methods.
    n_tasks : int
    whole, middle, end : Estimate
        ``d_B`` between the seed-averaged trajectories over their whole common progress range,
        over the middle (progress in ``MIDDLE``), and between their end models.
    episodic_to_truth, supervised_to_truth : Estimate
        Each method's end models' ``d_B`` to the truth.
    ratio : Estimate
        end / middle (the paper: below 1, they meet at the end).
    n_converged, n_runs : int
        Runs meeting the plateau criterion.
    verdict : str
    reason : str
        Why the verdict is inconclusive when runs have not plateaued, else "".
    ranges : str
        Each task's common progress range, in words.
    plateaus : pandas.DataFrame
        `plateau_table` of the runs involved.
    curves : pandas.DataFrame
        ``task, progress, distance`` (code column names).
    """

    episodic: str
    supervised: str
    n_tasks: int
    whole: Estimate
    middle: Estimate
    end: Estimate
    episodic_to_truth: Estimate
    supervised_to_truth: Estimate
    ratio: Estimate
    n_converged: int
    n_runs: int
    verdict: str
    reason: str
    ranges: str
    plateaus: pd.DataFrame = field(repr=False, compare=False)
    curves: pd.DataFrame = field(repr=False, compare=False)


def own_progress(store, run) -> tuple[np.ndarray, np.ndarray]:
    """(steps, progress on the run's own task classes) of one run (a row of `run_table`)."""
    from taskspace import progress

    traj = store.trajectory(run["run_id"])
    classes = run["class_idx"] if len(run["class_idx"]) < store.n_classes else None
    return np.asarray(traj.steps), progress(traj.predictions, store.labels, classes=classes)


def plateau_table(
    store, runs, fraction: float = PLATEAU_FRACTION, tol: float = PLATEAU_TOL
) -> pd.DataFrame:
    """The plateau criterion of every run in ``runs``: ``run_id, task, method, last_step,
    final_progress, change, converged``."""
    rows = []
    for _, run in runs.iterrows():
        steps, lam = own_progress(store, run)
        p = plateau(steps, lam, fraction=fraction, tol=tol) if len(steps) >= 2 else None
        rows.append(
            {
                "run_id": run["run_id"],
                "task": run["task"],
                "method": run["method"],
                "last_step": int(steps[-1]),
                "final_progress": float(lam[-1]),
                "change": p.change if p else np.nan,
                "converged": bool(p.converged) if p else False,
            }
        )
    return pd.DataFrame(
        rows,
        columns=["run_id", "task", "method", "last_step", "final_progress", "change", "converged"],
    )


def episodic_vs_supervised(
    store,
    study=None,
    episodic: str = "protonet",
    supervised: str = "supervised",
    progress: Progress | None = None,
) -> AnalysisResult:
    """Episodic vs supervised: `compute`, `describe`, the table and the figure (see
    `compute`)."""
    try:
        r = compute(store, episodic=episodic, supervised=supervised, progress=progress)
    except NotApplicable as why:
        return not_applicable(NAME, TITLE, str(why))
    est = {k: getattr(r, k) for k in MEASURES}
    summary = {
        **{k: e.value for k, e in est.items()},
        **{f"{k}_ci": e.interval for k, e in est.items()},
        "ratio": r.ratio.value,
        "ratio_ci": r.ratio.interval,
        "n_converged": r.n_converged,
        "n_runs": r.n_runs,
        "verdict": f"{r.verdict} ({r.reason})" if r.reason else r.verdict,
        "plateaus": r.plateaus.to_dict("records"),
    }
    return AnalysisResult(
        NAME,
        TITLE,
        r.curves.rename(columns=COLUMNS),
        _figure(r.curves),
        describe(r),
        summary=summary,
        result=r,
    )


def compute(
    store,
    episodic: str = "protonet",
    supervised: str = "supervised",
    progress: Progress | None = None,
) -> EpisodicResult:
    """For every task with runs of both methods: ``compare_trajectories`` (SPEC §9) between the
    episodic and the supervised runs (curve over the whole common progress range), its mean
    over the whole range and over the middle of training (progress in ``MIDDLE``), ``d_B``
    between the seed-averaged end models, each method's end-model distance to the truth, and
    the ratio end/middle.

    Intervals: delete-one jackknife over runs (a bootstrap would repeat runs and bias distances
    between seed averages upward); the curve's pointwise interval is in the table's ``ci_low``,
    ``ci_high`` (`curve_band`). Every run's plateau criterion (`plateau_table`) is reported;
    the paper's claim is about converged runs. Verdict (pre-registered): **agrees** when every
    run has plateaued and the interval of end/middle lies below 1 (they meet); **disagrees**
    when every run has plateaued and it lies above 1; **inconclusive** otherwise (with the
    reason). Raises `NotApplicable` when no task has runs of both methods or none shares a
    progress range in the middle of training."""
    runs = run_table(store)
    both = sorted(
        set(runs.loc[runs["method"] == episodic, "task"])
        & set(runs.loc[runs["method"] == supervised, "task"])
    )
    if not both:
        raise NotApplicable(f"no task has runs of both {episodic!r} and {supervised!r}")
    involved = runs[runs["task"].isin(both) & runs["method"].isin([episodic, supervised])]
    plateaus = plateau_table(store, involved)
    curves, stats, deleted = _measure_tasks(store, runs, both, episodic, supervised, progress)
    if all(np.isnan(v[1]) for v in stats):
        raise NotApplicable(
            "the episodic and supervised runs share no progress range in the middle of training"
        )
    curves = pd.concat(curves, ignore_index=True)
    est, ratio = _estimates(np.array(stats), deleted)
    n_conv, n_runs = int(plateaus["converged"].sum()), len(plateaus)
    reason = _not_plateaued(n_conv, n_runs)
    return EpisodicResult(
        episodic=episodic,
        supervised=supervised,
        n_tasks=len(both),
        **est,
        ratio=ratio,
        n_converged=n_conv,
        n_runs=n_runs,
        verdict=(
            "inconclusive"
            if reason
            else verdict(ratio.value, ratio.interval, None, expected="less", null=1.0)
        ),
        reason=reason,
        ranges=_progress_ranges(curves),
        plateaus=plateaus,
        curves=curves,
    )


def _measure_tasks(
    store, runs: pd.DataFrame, tasks: list[str], episodic: str, supervised: str, progress
) -> tuple[list[pd.DataFrame], list[tuple], list[list[tuple]]]:
    """Every task's `_Measure` with all its runs and with each run left out in turn: the
    distance curve of each task (`_curve`), its values (a tuple in the order of ``MEASURES``)
    and its delete-one values (one such tuple per run left out)."""
    curves, stats, deleted = [], [], []
    for i, task in enumerate(tasks):
        ids = {
            m: list(runs.loc[(runs["task"] == task) & (runs["method"] == m), "run_id"])
            for m in (episodic, supervised)
        }
        measure = _Measure(store, ids, episodic, supervised)
        values, cmp = measure(ids)
        left_out = [measure(pick) for _, pick in leave_one_out(ids)]
        curves.append(_curve(task, cmp, [c for _, c in left_out]))
        stats.append(values)
        deleted.append([v for v, _ in left_out])
        report(progress, "tasks, each with a jackknife over runs", i + 1, len(tasks))
    return curves, stats, deleted


def _not_plateaued(n_converged: int, n_runs: int) -> str:
    """Why the verdict is inconclusive when some runs have not plateaued, else ``""``."""
    return (
        ""
        if n_converged == n_runs
        else f"{n_runs - n_converged} of {n_runs} runs have not plateaued: progress changed by "
        f"≥ {PLATEAU_TOL} over the last {PLATEAU_FRACTION:.0%} of training"
    )


def _progress_ranges(curves: pd.DataFrame) -> str:
    """Each task's common progress range (where its curve has a distance), in words."""
    common = curves.dropna(subset=["distance"]).groupby("task")["progress"].agg(["min", "max"])
    return ", ".join(f"{t} {r['min']:.2f} to {r['max']:.2f}" for t, r in common.iterrows())


def describe(result: EpisodicResult) -> Finding:
    """Headline: the verdict and the ratio of the end distance to the middle one."""
    r = result
    finals = ", ".join(
        f"{m} {g.min():.2f}"
        if f"{g.min():.2f}" == f"{g.max():.2f}"
        else f"{m} {g.min():.2f} to {g.max():.2f}"
        for m, g in r.plateaus.groupby("method", sort=False)["final_progress"]
    )
    details = (
        f"Over {r.n_tasks} task(s), {r.episodic} and {r.supervised} trajectories are "
        f"d_B = {r.middle.text()} apart in the middle of training (progress "
        f"{MIDDLE[0]}–{MIDDLE[1]}), {r.whole.text()} over the whole common progress range "
        f"({r.ranges}), and their end models d_B = {r.end.text()} apart; ratio "
        f"end/middle = {r.ratio.text()} (jackknife over runs). End models' distance to "
        f"the truth: {r.episodic} {r.episodic_to_truth.text()}, {r.supervised} "
        f"{r.supervised_to_truth.text()}. Plateau criterion met by {r.n_converged} of "
        f"{r.n_runs} runs (largest change {fmt(r.plateaus['change'].max(), 2)}; final "
        f"progress on the own task: {finals})."
        + (f" Inconclusive because {r.reason}." if r.reason else "")
    )
    claim = f"end/middle distance {r.ratio.short()}"
    claim += (
        f"; {r.n_runs - r.n_converged} of {r.n_runs} runs not plateaued"
        if r.reason
        else f", {r.n_runs} runs plateaued"
    )
    return make_finding(r.verdict, claim + "; paper < 1", details)


#: Largest re-parameterised copy of a task's runs kept for its jackknife (`ReparameterizedRuns`);
#: past it each pick re-parameterises its runs again (`compare_trajectories`, one run at a time).
REPARAMETERIZED_BYTES = 1 << 30


class _Measure:
    """The distances between the episodic and supervised runs of one task, for any pick of
    them: ``(values, comparison)``, values in the order of ``MEASURES``. Every run is
    re-parameterised once for all the picks of the jackknife (the same numbers as
    `compare_trajectories` of each pick, bit for bit)."""

    def __init__(self, store, ids, episodic, supervised):
        from taskspace.geometry.trajectories import DEFAULT_GRID_POINTS, ReparameterizedRuns

        self.methods, self.labels = (episodic, supervised), store.labels
        self.truth = np.eye(store.n_classes)[store.labels]
        runs = [r for rs in ids.values() for r in rs]
        self.trajs = {
            r: np.asarray(store.trajectory(r).predictions, dtype=np.float64) for r in runs
        }
        self.ends = {r: P[-1] for r, P in self.trajs.items()}  # end_model, without a re-read
        self.position = {r: i for i, r in enumerate(runs)}
        size = len(runs) * DEFAULT_GRID_POINTS * self.truth.size * 8
        self.reparameterized = (
            ReparameterizedRuns([self.trajs[r] for r in runs], self.labels)
            if size <= REPARAMETERIZED_BYTES
            else None
        )

    def __call__(self, pick):
        from taskspace import bhattacharyya

        a, b = (np.mean([self.ends[r] for r in pick[m]], axis=0) for m in self.methods)
        end = float(bhattacharyya(a, b))
        to_truth = (float(bhattacharyya(a, self.truth)), float(bhattacharyya(b, self.truth)))
        try:
            cmp = self._compare(*(pick[m] for m in self.methods))
        except ValueError:  # no common progress range
            return (np.nan, np.nan, end, *to_truth), None
        inside = (cmp.grid >= MIDDLE[0]) & (cmp.grid <= MIDDLE[1])
        mid = float(cmp.distance[inside].mean()) if inside.any() else np.nan
        return (float(cmp.mean), mid, end, *to_truth), cmp

    def _compare(self, episodic_runs, supervised_runs):
        from taskspace import compare_trajectories

        if self.reparameterized is not None:
            return self.reparameterized.compare(
                [self.position[r] for r in episodic_runs],
                [self.position[r] for r in supervised_runs],
            )
        return compare_trajectories(
            [self.trajs[r] for r in episodic_runs],
            [self.trajs[r] for r in supervised_runs],
            self.labels,
        )


def _curve(task, cmp, left_out) -> pd.DataFrame:
    """The task's distance curve with its pointwise jackknife band (`curve_band`)."""
    if cmp is None:
        return pd.DataFrame(
            {
                "task": [task],
                "progress": [np.nan],
                "distance": [np.nan],
                "note": ["no common progress range"],
            }
        )
    lo, hi = curve_band(cmp, left_out)
    return pd.DataFrame(
        {"task": task, "progress": cmp.grid, "distance": cmp.distance, "ci_low": lo, "ci_high": hi}
    )


def _estimates(stats: np.ndarray, deleted: list) -> tuple[dict, Estimate]:
    """Means over tasks (``stats``: (tasks, len(MEASURES))) with jackknife intervals, and the
    ratio end/middle with its own."""
    est = dict(zip(MEASURES, np.nanmean(stats, axis=0), strict=True))
    one_run = None if any(deleted) else "one run of each method per task"
    out = {
        k: Estimate(
            float(est[k]),
            jackknife_interval(
                est[k],
                _deleted_means(list(stats[:, i]), [[d[i] for d in task] for task in deleted]),
                why=one_run,
            ),
        )
        for i, k in enumerate(MEASURES)
    }
    ratio = est["end"] / est["middle"]
    return out, Estimate(
        float(ratio), jackknife_interval(ratio, _deleted_ratios(stats, deleted), why=one_run)
    )


def _deleted_ratios(stats: np.ndarray, deleted: list[list[tuple]]) -> list[float]:
    """Delete-one values of mean(end)/mean(middle) over tasks: each task's delete-one values
    replace its own in turn."""
    out = []
    for t, task in enumerate(deleted):
        for d in task:
            s = stats.copy()
            s[t] = d
            out.append(np.nanmean(s[:, 2]) / np.nanmean(s[:, 1]))
    return out


def _deleted_means(values: list[float], deleted: list[list[float]]) -> list[float]:
    """The mean over tasks with one run left out: each task's delete-one values replace its own
    value in turn."""
    values = np.asarray(values, dtype=np.float64)
    total, count = np.nansum(values), np.isfinite(values).sum()
    out = []
    for v, task_deleted in zip(values, deleted, strict=True):
        for d in task_deleted:
            if np.isfinite(v) and np.isfinite(d):
                out.append((total - v + d) / count)
            elif np.isfinite(d):  # the task had no value with all its runs
                out.append((total + d) / (count + 1))
            else:
                out.append(np.nan)
    return out


def curve_band(cmp, left_out, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise delete-one jackknife interval of a distance curve, ``θ̂(g) ± z·SE(g)`` (see
    `jackknife_interval`), on the grid of ``cmp`` (a `compare_trajectories` result).

    ``left_out`` holds the curves with one run left out (None where they share no progress
    range); each is interpolated onto ``cmp.grid`` (NaN outside its own range). NaN bounds
    where fewer than two delete-one curves reach a grid point.
    """
    from scipy.stats import norm

    grid = np.asarray(cmp.grid, dtype=np.float64)
    rows = [
        np.interp(grid, c.grid, c.distance, left=np.nan, right=np.nan)
        for c in left_out
        if c is not None
    ]
    lo = hi = np.full(grid.shape, np.nan)
    if len(rows) < 2:
        return lo, hi
    values = np.array(rows)  # (n, G)
    finite = np.isfinite(values)
    n = finite.sum(axis=0)
    mean = np.where(finite, values, 0.0).sum(axis=0) / np.maximum(n, 1)
    spread = np.where(finite, (values - mean) ** 2, 0.0).sum(axis=0)
    se = np.sqrt((n - 1) / np.maximum(n, 1) * spread)
    z = float(norm.ppf(0.5 + level / 2))
    ok = n >= 2
    lo, hi = lo.copy(), hi.copy()
    lo[ok] = cmp.distance[ok] - z * se[ok]
    hi[ok] = cmp.distance[ok] + z * se[ok]
    return lo, hi


def _figure(table: pd.DataFrame) -> Figure:
    """The distance curve of every task over progress with its 95% jackknife band, the middle
    of training shaded."""
    colour = colours(table["task"].astype(str))
    items = []
    curves = table.dropna(subset=["distance"])
    for task, part in curves.groupby("task", sort=False):
        items += _task_curve(task, part, colour[str(task)])
    if any(isinstance(i, Area) for i in items):
        items.append(_band_legend())
    band = Band(*MIDDLE, name=f"middle of training (progress {MIDDLE[0]}–{MIDDLE[1]})")
    return Figure(
        [
            Panel(
                [band, *items],
                xlabel="progress λ (0 uniform, 1 truth)",
                ylabel="d_B between seed averages",
            )
        ],
        title="Episodic vs supervised: d_B at equal progress",
        height=420,
    )


def _task_curve(task, part: pd.DataFrame, color: str) -> list:
    """One task's curve: its 95% band (an `Area`, when the table has one) and its distance
    over progress (a `Series`)."""
    key = str(task)
    items = []
    if "ci_low" in part and np.isfinite(part["ci_low"]).any():
        items.append(
            Area(
                part["progress"],
                # d_B ≥ 0: the normal-approximation band is drawn from 0 where it dips below
                # (the table keeps the interval as computed)
                part["ci_low"].clip(lower=0.0),
                part["ci_high"],
                group=key,
                color=color,
                opacity=0.2,
            )
        )
    items.append(
        Series(
            part["progress"],
            part["distance"],
            name=key,
            color=color,
            mode="lines+markers",
            hover=[
                f"task {task}\nprogress {p:.2f}\nd_B {d:.4g}"
                for p, d in zip(part["progress"], part["distance"], strict=True)
            ],
        )
    )
    return items


def _band_legend() -> Area:
    """A point-less grey `Area` that names the bands in the legend."""
    empty = np.array([])
    return Area(
        empty,
        empty,
        empty,
        name="shaded: 95% interval (jackknife over runs)",
        color="#777777",
        opacity=0.3,
    )
