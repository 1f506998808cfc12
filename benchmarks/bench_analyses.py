"""The six analyses on a store (default: the demo's), today's code path against the one before
issue 25, side by side in one run, with the summary entries both report compared.

Usage::

    .venv/bin/python -m taskspace demo --out taskspace-demo        # the store, about a minute
    .venv/bin/python benchmarks/bench_analyses.py taskspace-demo/store [--profile]

The earlier implementation is not kept in the package: it is read from git (the analyses package
at ``BEFORE``, the last commit before the rewrite) into a temporary folder and imported as
``analyses_before``; it calls the same geometry, store and statistics below it. Both paths run
with the same seeds (``n_boot`` = 200 resamples, ``n_perm`` = 9999 permutations, the defaults)
after one warm-up that fills the store's distance cache and compiles the Numba kernels, so
the times compare the analyses alone. The earlier code runs each analysis by a call of its own
(it shared nothing between them), today's all six in one call, as `taskspace analyze` does.
The summary entries both paths report under the same name are compared (the largest relative
difference is printed per analysis; findings 2 and 3's intervals are over tasks since issue 30,
so theirs differ by design); the ratio before/after is printed with the CPU model.
``--profile`` prints the top functions of each path by cumulative time (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import pstats
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_model

#: The last commit with the analyses as they were before issue 25 (22.9 s on the demo store).
BEFORE = "c6a31ab"
PACKAGE = "src/taskspace/study/analyses"


def import_before(folder: Path):
    """The analyses package at ``BEFORE``, imported as ``analyses_before``."""
    repo = Path(__file__).resolve().parents[1]
    blob = subprocess.run(
        ["git", "-C", str(repo), "archive", BEFORE, PACKAGE], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(folder, filter="data")
    target = folder / "analyses_before"
    (folder / PACKAGE).rename(target)
    for path in target.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace("taskspace.study.analyses", "analyses_before"), encoding="utf-8"
        )
    sys.path.insert(0, str(folder))
    import analyses_before

    return analyses_before


def numbers(value) -> list[float]:
    """Every number in a summary value or table, flattened in order (strings skipped)."""
    if isinstance(value, dict):
        return [x for k in value for x in numbers(value[k])]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in numbers(v)]
    if hasattr(value, "to_numpy"):  # a table: its numeric columns, by position
        cols = [c for c in value.columns if value[c].dtype.kind in "fiub"]
        return [float(x) for c in cols for x in value[c].to_numpy()]
    if isinstance(value, (bool, np.bool_, int, float, np.integer, np.floating)):
        return [float(value)]
    return []


def compare(old, new) -> tuple[float, int]:
    """Largest difference (relative above 1 in size) over the summary entries both paths have
    under the same name and with the same count of numbers, and how many entries were compared.
    Entries added since, or whose statistic changed by design (findings 2 and 3's intervals are
    over tasks since issue 30), are not comparable and are left out."""
    assert old.name == new.name
    worst, compared = 0.0, 0
    a_sum, b_sum = old.summary or {}, new.summary or {}
    for key in sorted(set(a_sum) & set(b_sum)):
        a, b = numbers(a_sum[key]), numbers(b_sum[key])
        if len(a) != len(b) or not a:
            continue
        diffs = [
            0.0 if math.isnan(x) and math.isnan(y) else abs(x - y) / max(1.0, abs(x))
            for x, y in zip(a, b, strict=True)
        ]
        worst, compared = max(worst, *diffs), compared + 1
    return worst, compared


def timed_apart(run, store, names, profile: bool):
    """Results of every analysis, each run by a call of its own, with the seconds each took
    (the earlier code shares nothing between analyses)."""
    profiler = cProfile.Profile() if profile else None
    results, seconds = [], {}
    for name in names:
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        results += run(store, names=[name])
        if profiler:
            profiler.disable()
        seconds[name] = time.perf_counter() - start
    show(profiler)
    return results, seconds


def timed_together(run, store, profile: bool):
    """Results of all analyses from one call (as the command line runs them: they share their
    reads of the store), with the seconds each took, from the progress reports."""
    profiler = cProfile.Profile() if profile else None
    starts = {}

    def progress(analysis, what, done, total):
        if what == "analyses":
            starts[analysis if done < total else "end"] = time.perf_counter()

    if profiler:
        profiler.enable()
    results = run(store, progress=progress)
    if profiler:
        profiler.disable()
    show(profiler)
    marks = [*(starts[r.name] for r in results), starts["end"]]
    return results, {r.name: b - a for r, a, b in zip(results, marks, marks[1:], strict=False)}


def show(profiler) -> None:
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, nargs="?", default=Path("taskspace-demo/store"))
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    from taskspace import Store
    from taskspace.study.analyses import ANALYSES, run_analyses

    store = Store.open(args.store, mode="a")  # the warm-up fills the distance cache
    print(
        f"CPU: {cpu_model(with_isa=True)}; store {args.store}: "
        f"{len(store.runs(per='run'))} runs, {len(store.runs())} models"
    )
    with tempfile.TemporaryDirectory() as folder:
        before = import_before(Path(folder))
        run_analyses(store, n_boot=2, n_perm=9)  # warm-up: distance cache, Numba kernels
        old, s_old = timed_apart(before.run_analyses, store, list(ANALYSES), args.profile)
        new, s_new = timed_together(run_analyses, store, args.profile)
    print("| analysis | before (s) | after (s) | ratio | summary entries compared: largest Δ |")
    print("|---|---|---|---|---|")
    for a, b in zip(old, new, strict=True):
        worst, compared = compare(a, b)
        ratio = s_old[a.name] / s_new[a.name]
        print(
            f"| {a.name} | {s_old[a.name]:.2f} | {s_new[a.name]:.2f} | {ratio:.1f}x "
            f"| {compared}: {worst:.1e} |"
        )
    t_old, t_new = sum(s_old.values()), sum(s_new.values())
    print(f"| all six | {t_old:.2f} | {t_new:.2f} | {t_old / t_new:.1f}x | |")


if __name__ == "__main__":
    main()
