"""Study commands of the `taskspace` CLI: run, analyze, report, info, import-h5, import-arrays
(and the demo)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from taskspace.cli._console import make_console, styled

console = make_console()


class AnalysisProgress:
    """Prints what `run_analyses` reports on standard error: a line as each analysis starts,
    then, in a terminal, one bar per loop (bootstrap, jackknife, subsets); elsewhere (a pipe, a
    log) a line at every tenth of a loop, so that a log shows the analyses moving."""

    def __init__(self):
        from taskspace.ui.progress import ProgressBar

        self._bar_type = ProgressBar
        self.console = make_console(stderr=True)
        self.terminal = self.console.is_terminal
        self._bar, self._loop, self._shown = None, None, -1

    def __call__(self, analysis: str, what: str, done: int, total: int) -> None:
        if what == "analyses":
            self._close()
            if done < total:
                self.console.print(f"analysis {done + 1}/{total}: {analysis}")
            return
        if (analysis, what) != self._loop:
            self._close()
            self._loop, self._shown = (analysis, what), -1
            if self.terminal:
                self._bar = self._bar_type(True, total, f"  {what}", count=True).__enter__()
        if self._bar is not None:
            self._bar.update(completed=done)
        elif done * 10 // total > self._shown:
            self._shown = done * 10 // total
            self.console.print(f"  {analysis}: {what} {done}/{total}")
        if done >= total:
            self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
        self._bar, self._loop = None, None


def print_findings(results, details: bool = False, indent: str = "") -> None:
    """Each analysis's title and headline, and with ``details`` the details below it."""
    for r in results:
        console.print(styled(indent, (r.title, "bold"), ": ", r.finding.headline))
        if details and (r.finding.details or r.finding.reason):
            console.print(f"{indent}    {r.finding.details or r.finding.reason}")


def _analyze_and_report(store_path: Path, study, report_path: Path, figures: Path | None):
    """Analyses of the store, then the HTML report (and figure files); returns the report path."""
    from taskspace.report import write_figures, write_report
    from taskspace.store import Store
    from taskspace.study.analyses import run_analyses

    console.print(styled(("analyses", "bold")))
    # Opened for appending: the distances the analyses compute go into the store's cache, so a
    # later `taskspace analyze` or `report` of this store reads them (10 s on the reference study).
    store = Store.open(store_path, mode="a")
    results = run_analyses(store, study, progress=AnalysisProgress())
    print_findings(results, indent="  ")
    path = write_report(store, results, study.source if study else None, report_path)
    if figures is not None:
        write_figures(results, figures)
    return Path(path)


def run_and_report(
    study, out: Path, workers: int | None = None, scheduler: str | None = None
) -> Path:
    """Train and record every run of ``study`` into ``out``, analyse, and write the report."""
    from taskspace.report import check_writable
    from taskspace.study import run_study

    check_writable(out / "report.html")  # before hours of training, not after
    mode = " (quick)" if study.quick else ""
    console.print(styled((f"study {study.name}{mode}", "bold"), f" → {out}"))
    run = run_study(study, out, console=console, workers=workers, scheduler=scheduler)
    return _analyze_and_report(run.store_path, study, out / "report.html", out / "figures")


def run(
    study_file: Path = typer.Argument(
        ..., metavar="STUDY_FILE", help="The study config (TOML), e.g. studies/fashion-mnist.toml."
    ),
    out: Path = typer.Option(
        None, "--out", metavar="DIR", help="Output folder (default: ./<study name>)."
    ),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="Apply the study's [quick] overrides: fewer samples, steps and seeds.",
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        min=1,
        metavar="N",
        help="Train on a local Dask cluster of N worker processes, one "
        "run each at a time (torch threads per run: cores / N). Needs "
        "the `distributed` extra.",
    ),
    scheduler: str = typer.Option(
        None,
        "--scheduler",
        metavar="ADDR",
        help="Train on the Dask cluster at this address "
        "(tcp://host:8786); workers must see --out and the data at "
        "the same paths.",
    ),
) -> None:
    """Train and record every run of a study, then analyse it and write the report.

    Runs already complete are skipped and interrupted ones resumed, so the command can be run
    again after a crash or with more runs added to the study. With --workers or --scheduler each
    run is a Dask task; the store is the same.
    """
    if workers is not None and scheduler is not None:
        raise ValueError(
            "give --workers (a local cluster) or --scheduler (an existing one), not both"
        )
    if not study_file.is_file():
        raise FileNotFoundError(f"study config {study_file} does not exist")
    from taskspace.study import load_study

    study = load_study(study_file, quick=quick)
    out = out if out is not None else Path(study.name + ("-quick" if quick else ""))
    report = run_and_report(study, out, workers=workers, scheduler=scheduler)
    console.print(f"report: {report}")


def analyze(
    store: Path = typer.Argument(
        ..., metavar="STORE", help="A store written by `taskspace run` (or any store)."
    ),
    details: bool = typer.Option(
        False,
        "--details",
        "-v",
        help="Print each finding's details (every number with its interval) below its headline.",
    ),
) -> None:
    """Run the paper's analyses on a store and print each finding's headline.

    Each headline starts with the verdict against the paper (agrees, inconclusive, disagrees,
    not applicable). Progress goes to standard error.
    """
    _check_store(store)
    from taskspace.store import Store
    from taskspace.study import study_of_store
    from taskspace.study.analyses import run_analyses

    results = run_analyses(Store.open(store), study_of_store(store), progress=AnalysisProgress())
    print_findings(results, details=details)


def report(
    store: Path = typer.Argument(
        ..., metavar="STORE", help="A store written by `taskspace run` (or any store)."
    ),
    out: Path = typer.Option(
        None, "--out", metavar="FILE", help="The HTML file (default: report.html beside the store)."
    ),
) -> None:
    """Run the analyses and write the self-contained HTML report (and PNG/PDF figures).

    The report goes beside the store unless --out says otherwise, and the figures into figures/
    beside the report; the path is printed.
    """
    _check_store(store)
    from taskspace.report import check_writable
    from taskspace.study import study_of_store

    out = out if out is not None else store.parent / "report.html"
    check_writable(out)  # fail before the analyses run, not after
    path = _analyze_and_report(store, study_of_store(store), out, out.parent / "figures")
    console.print(f"report: {path}")


def _check_store(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"store {path} does not exist")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def info(
    store: Path = typer.Argument(..., metavar="STORE", help="A taskspace store."),
) -> None:
    """The store's probe set, label space, hashes and size, and a table of its runs."""
    _check_store(store)
    from rich.table import Table

    from taskspace.store import Store

    s = Store.open(store)
    runs = s.runs("run")
    n_models = int(runs["n_records"].sum()) if len(runs) else 0
    console.print(
        styled(
            (str(s.path), "bold"),
            f": {len(runs)} runs, {n_models} models, "
            f"N={s.n_samples} probe samples, C={s.n_classes} classes, {s.dtype}, "
            f"{_human(_size(s.path))} on disk",
        )
    )
    console.print(f"probe hash        {s.probe_hash}")
    console.print(f"label-space hash  {s.label_space_hash}")
    table = Table(
        "task", "method", "seed", "network", "records", title="runs", title_justify="left"
    )
    # Ids are copied from here into queries and commands: never fold them.
    table.add_column("parent", no_wrap=True)
    table.add_column("run", no_wrap=True)
    for _, r in runs.iterrows():
        parent = r.get("parent_run")
        parent = "" if parent is None or parent != parent else f"{parent}@{r.get('parent_step')}"
        table.add_row(
            str(r["task"]),
            str(r["method"]),
            str(r["seed"]),
            str(r.get("network") or ""),
            str(r["n_records"]),
            parent,
            str(r["run_id"]),
        )
    console.print(table)


def import_h5(
    directory: Path = typer.Argument(
        ..., metavar="DIR", help="Folder of task folders holding preds_<seed>.h5."
    ),
    store: Path = typer.Argument(..., metavar="STORE", help="The store to import into."),
    labels: Path = typer.Option(
        None,
        "--labels",
        metavar="FILE",
        help="Probe labels (.npy, "
        ".json or one per line): create STORE when it does not exist, "
        "else checked against its labels.",
    ),
    class_names: Path = typer.Option(
        None,
        "--class-names",
        metavar="FILE",
        help="Class names (.json or one per line): create STORE, or checked against its own.",
    ),
    method: str = typer.Option(
        "supervised", "--method", metavar="NAME", help="Method recorded for every run."
    ),
    pattern: str = typer.Option(
        "preds_*.h5", "--pattern", metavar="GLOB", help="File name pattern; * is the seed."
    ),
    dataset_key: str = typer.Option(
        "data", "--dataset-key", metavar="NAME", help="HDF5 dataset of the (T, N, C) predictions."
    ),
    network: str = typer.Option(
        None, "--network", metavar="NAME", help="Network recorded with every run."
    ),
) -> None:
    """Import HDF5 prediction files (the paper's published layout) into a store.

    Importing again completes interrupted runs and skips complete ones.
    """
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder")
    if not store.exists() and (labels is None or class_names is None):
        raise ValueError(
            f"store {store} does not exist; give --labels and --class-names to create it"
        )
    from taskspace.store import import_h5 as _import
    from taskspace.store.files import read_list

    started = time.perf_counter()
    ids = _import(
        directory,
        str(store),
        method=method,
        pattern=pattern,
        dataset_key=dataset_key,
        network=network,
        labels=None if labels is None else read_list(labels),
        class_names=None if class_names is None else [str(c) for c in read_list(class_names)],
    )
    console.print(f"imported {len(ids)} runs into {store} in {time.perf_counter() - started:.1f} s")


def import_arrays(
    directory: Path = typer.Argument(
        ...,
        metavar="DIR",
        help="Folder of .npy/.npz/.pt "
        "prediction arrays with a metadata table and the probe "
        "labels.",
    ),
    store: Path = typer.Argument(
        ...,
        metavar="STORE",
        help="The store to import into; created "
        "from the folder's labels and class names if it does not "
        "exist.",
    ),
    metadata: Path = typer.Option(
        None,
        "--metadata",
        metavar="FILE",
        help="The metadata table (default DIR/metadata.csv or DIR/metadata.json).",
    ),
    labels: Path = typer.Option(
        None,
        "--labels",
        metavar="FILE",
        help="Probe labels (default DIR/labels.npy, .json or .txt).",
    ),
    class_names: Path = typer.Option(
        None,
        "--class-names",
        metavar="FILE",
        help="Class names (default DIR/class_names.json or .txt).",
    ),
    probe_ids: Path = typer.Option(
        None,
        "--probe-ids",
        metavar="FILE",
        help="Probe sample ids (default DIR/probe_ids.npy, .json or .txt, if there).",
    ),
    dtype: str = typer.Option(
        "float32",
        "--dtype",
        metavar="DTYPE",
        help="Storage dtype of a new store: float32 or float16.",
    ),
) -> None:
    """Import a folder of prediction arrays (one per checkpoint or per run) into a store.

    Everything is checked before anything is written; run it again after an interruption and
    it completes what is missing without duplicating a record. Layout: README, "Bringing
    predictions you already have".
    """
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder")
    from taskspace.store import Store
    from taskspace.store import import_arrays as _import

    def n_records() -> int:
        if not (store / "zarr.json").is_file():
            return 0
        s = Store.open(store)
        return sum(s.n_records(r) for r in s.run_ids)

    before = n_records()
    started = time.perf_counter()
    ids = _import(
        directory,
        store,
        metadata=metadata,
        labels=labels,
        class_names=class_names,
        probe_ids=probe_ids,
        dtype=dtype,
    )
    console.print(
        f"imported {len(ids)} runs into {store} ({n_records() - before} new records) "
        f"in {time.perf_counter() - started:.1f} s"
    )


def demo(out: Path, seeds: int) -> Path:
    """`taskspace demo`: the built-in digits study end to end; returns the report's path."""
    from taskspace.study import DEMO_STUDY, load_study

    study = load_study(DEMO_STUDY, overrides={"all_runs": {"seeds": list(range(seeds))}})
    started = time.perf_counter()
    path = run_and_report(study, out)
    console.print(f"demo finished in {time.perf_counter() - started:.0f} s; report: {path}")
    return path


def register(app: typer.Typer) -> None:
    """Add the study commands to the `taskspace` app."""
    app.command("run")(run)
    app.command("analyze")(analyze)
    app.command("report")(report)
    app.command("info")(info)
    app.command("import-h5")(import_h5)
    app.command("import-arrays")(import_arrays)
