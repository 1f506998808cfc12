"""The `taskspace` command: version, help, and one-line errors."""

import re
import subprocess
import sys

import pytest

from taskspace import __version__


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "taskspace", *args], capture_output=True, text=True, timeout=300
    )


def test_version():
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"taskspace {__version__}"


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    assert "demo" in out.stdout
    out = run("demo", "--help")
    assert out.returncode == 0 and "--out" in out.stdout


def test_bad_option_is_one_clear_error():
    out = run("demo", "--seeds", "0")
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "seeds" in out.stderr


# ------------------------------------------------------------------ user text is never markup
def _bracket_store(path):
    """A store whose task and class names are rich markup tags."""
    import numpy as np

    from taskspace import Store
    from tests.helpers import random_models

    store = Store.create(path, np.arange(12) % 3, ["[red]a", "b[/]", "c"])
    rng = np.random.default_rng(0)
    for task, classes in (("[/red]t", None), ("u[b]", ["[red]a", "b[/]"]), ("v", ["b[/]", "c"])):
        for seed in (0, 1):
            run = store.add_run(task=task, classes=classes, method="supervised", seed=seed)
            store.append(run, random_models(rng, (4, 12, 3)), [0, 1, 2, 3])
    return store


@pytest.mark.slow
def test_user_text_with_brackets_is_printed_as_it_is(tmp_path):
    """Paths, queries, task and class names and error texts with brackets are printed verbatim,
    one line per error, never a MarkupError traceback nor a swallowed "[...]"."""
    for name in ("x/[/red]nostore", "x/[red]nostore"):
        out = run("info", str(tmp_path / name))
        assert out.returncode == 1
        assert out.stderr.splitlines() == [f"error: store {tmp_path / name} does not exist"]
    store = _bracket_store(tmp_path / "[b]s")
    out = run("info", str(store.path))
    assert out.returncode == 0, out.stderr
    assert f"{store.path}: 6 runs" in out.stdout
    assert "[/red]t" in out.stdout and "u[b]" in out.stdout
    query = "task == '[/x]'"
    for command in ("distances", "embed"):
        out = run(command, str(store.path), "--query", query)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert out.stderr.splitlines() == [
            f"error: no model of store {store.path} matches query {query!r}"
        ]
    # A library message holding brackets (the allowed range of --landmarks) keeps them.
    out = run("embed", str(store.path), "--landmarks", "3", "--components", "5")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.splitlines()) == 1 and "[" in out.stderr, out.stderr
    out = run("analyze", str(store.path), "--details")
    assert out.returncode == 0, out.stderr
    assert "Progress on other tasks: " in out.stdout and "[/red]t" in out.stdout


@pytest.mark.slow
def test_embed_writes_beside_the_store_and_says_when_landmarks_are_capped(tmp_path):
    store = _bracket_store(tmp_path / "study" / "store")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "taskspace",
            "embed",
            str(store.path),
            "-k",
            "2",
            "--landmarks",
            "1000",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=elsewhere,
    )
    assert out.returncode == 0, out.stderr
    target = tmp_path / "study" / "embedding.npz"
    assert target.is_file() and not list(elsewhere.iterdir())  # the rule of `report`
    lines = out.stdout.splitlines()
    assert (
        "--landmarks 1000 is more than the 24 models selected: using all 24 as landmarks" in lines
    )
    assert any(line.endswith(f"→ {target}") for line in lines), out.stdout


@pytest.mark.slow
def test_info_on_a_study_folder_suggests_its_store(tmp_path):
    _bracket_store(tmp_path / "demo" / "store")
    out = run("info", str(tmp_path / "demo"))
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"error: {tmp_path / 'demo'} is not a taskspace store (no zarr.json); did you mean "
        f"{tmp_path / 'demo' / 'store'}?"
    ]


# ------------------------------------------------------------------ help
@pytest.mark.slow
def test_help_is_plain_text_with_named_metavars():
    out = run("run", "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "Usage: python -m taskspace run [OPTIONS] STUDY_FILE" in text
    assert "Apply the study's [quick] overrides" in text  # not swallowed as markup
    assert "--out DIR" in text
    for command in ("demo", "run", "analyze", "report", "info", "import-h5", "distances", "embed"):
        out = run(command, "--help")
        assert out.returncode == 0, out.stderr
        for leftover in ("``", "<bool>", "<int range>", "<int>", "<str>", "{", "╭"):
            assert leftover not in out.stdout, (command, leftover, out.stdout)
    out = run("demo", "--help")
    assert "studies/digits-demo.toml" in out.stdout  # never split at a hyphen
    assert "--seeds N" in out.stdout and "--out DIR" in out.stdout


# ------------------------------------------------------------------ import cost
HEAVY = ("torch", "plotly", "sklearn", "zarr", "pandas", "scipy", "numba", "matplotlib")


def _modules_after(args, cwd):
    code = (
        "import sys\nfrom taskspace.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    return out.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_help_and_bad_arguments_import_nothing_heavy(tmp_path):
    """`--help` and a call with a bad argument answer before any heavy module is imported (they
    took 2.7 s of imports before)."""
    missing = str(tmp_path / "missing")
    for args in (
        ["--help"],
        ["info", "--help"],
        ["run", "--help"],
        ["embed", "--help"],
        ["info", missing],
        ["analyze", missing],
        ["report", missing],
        ["run", str(tmp_path / "missing.toml")],
        ["embed", missing, "--out", "e.txt"],
        ["embed", missing],
        ["import-h5", missing, missing],
        ["import-arrays", missing, missing],
    ):
        assert _modules_after(args, tmp_path) == "[]", args


def test_study_progress_prints_run_keys_literally(capsys):
    """The live view of a study on a cluster and the training bar take task names as text."""
    from taskspace.cli._console import make_console
    from taskspace.study._live import StudyView
    from taskspace.ui.progress import TrainingProgress

    with StudyView(["[/red]a", "b[x]"], make_console()) as view:
        view.event({"key": "[/red]a", "step": 1, "total": 4, "t": 0.0, "start": True})
        view.finished("[/red]a", {"trained": True, "steps": 4, "seconds": 1.0})
        view.finished("b[x]", {"trained": False})
    with TrainingProgress("supervised · [/red]a", 10, 0) as bar:
        bar.update(5, {"train_loss": 0.5})
    lines = capsys.readouterr().out.splitlines()
    assert "done [/red]a: 4 steps in 1.0 s (4 steps/s)" in lines
    assert "complete, skipped: b[x]" in lines


@pytest.mark.slow
def test_analyze_prints_headlines_and_progress_when_piped(tmp_path):
    """Standard output: one headline per analysis, verdict first (details only with -v);
    standard error (a pipe here): a line as each analysis starts and lines along its loops."""
    from taskspace.study.analyses import ANALYSES, VERDICTS

    store = _bracket_store(tmp_path / "s")
    out = run("analyze", str(store.path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(ANALYSES), out.stdout
    verdict_first = re.compile(rf"^[^—]+?: ((?:{'|'.join(VERDICTS)}) — .*)$")
    for line in lines:  # "<title>: <headline>"; a title may hold ": " itself
        match = verdict_first.match(line)
        assert match and len(match.group(1)) <= 140, line
    err = out.stderr.splitlines()
    starts = [line for line in err if line.startswith("analysis ")]
    assert starts == [
        f"analysis {i + 1}/{len(ANALYSES)}: {name}" for i, name in enumerate(ANALYSES)
    ], out.stderr
    # the loops report along the way, each ending at its total
    assert any("low_dimension: InPCA of random 80% subsets of the runs" in line for line in err)
    assert any(
        line.strip().startswith("progress_on_other_tasks: bootstrap over tasks 200/200")
        for line in err
    ), out.stderr
    verbose = run("analyze", str(store.path), "-v")
    assert len(verbose.stdout.splitlines()) > len(lines)


def test_metric_option_offers_every_metric_of_the_api():
    from taskspace.geometry.pairwise import PAIRWISE_METRICS

    for command in ("distances", "embed"):
        out = " ".join(run(command, "--help").stdout.split())
        for metric in PAIRWISE_METRICS:
            assert metric in out, (command, metric)


@pytest.mark.slow
def test_report_into_an_unwritable_path_fails_before_the_analyses(tmp_path):
    from tests.test_analyses import build_store

    build_store(tmp_path / "store", methods=("supervised",), hierarchy=False, seeds=(0,))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    out = run("report", str(tmp_path / "store"), "--out", str(blocker / "report.html"))
    assert out.returncode == 1
    text = " ".join((out.stdout + out.stderr).split())
    assert "cannot write the report" in text and "not-a-folder is a file" in text
    assert "analyses" not in out.stdout and not (tmp_path / "figures").exists()
