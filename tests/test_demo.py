"""`taskspace demo`, the README's first command, end to end on the built-in digits."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import taskspace as ts


@pytest.mark.slow
def test_demo_command_end_to_end(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "taskspace", "demo", "--out", str(out), "--seeds", "1"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    report = out / "report.html"
    assert f"report: {report}" in " ".join(done.stdout.split())
    html = report.read_text()
    assert html.count("Plotly.newPlot") >= 1 and "Low dimension" in html
    # all six analyses apply to the demo: six figures, six verdicts, none "not applicable"
    assert html.count('<div id="figure-') == 6
    verdicts = re.findall(r'<p class="finding[^"]*"><span class="badge ([a-z-]+)"', html)
    assert len(verdicts) == 6 and set(verdicts) <= {"agrees", "inconclusive", "disagrees"}
    assert report.stat().st_size < 2_000_000
    assert len(list((out / "figures").glob("*.png"))) == 6
    assert any(p.suffix == ".png" for p in (out / "figures").iterdir())
    # the six findings, one headline each: verdict first, at most 140 characters
    from taskspace.study.analyses import ANALYSES, VERDICTS

    verdict_first = re.compile(rf"^  [^—]+?: ((?:{'|'.join(VERDICTS)}) — .*)$")
    headlines = [m.group(1) for m in map(verdict_first.match, done.stdout.splitlines()) if m]
    assert len(headlines) == len(ANALYSES), done.stdout
    assert all(len(h) <= 140 for h in headlines), headlines
    assert "analysis 1/6: low_dimension" in done.stderr.splitlines()

    store = ts.Store.open(out / "store")
    runs = store.runs(per="run")
    assert set(runs["method"]) >= {"supervised", "finetune", "protonet", "simclr"}
    # every supervised run moves towards the truth of all ten digits
    for run_id in runs.loc[runs["method"] == "supervised", "run_id"]:
        lam = ts.progress(store.trajectory(run_id).predictions, store.labels)
        assert lam[-1] > lam[0]
    study = json.loads((out / "study.json").read_text())
    assert study  # the study that made the store is kept beside it
    D = store.distance_matrix()
    np.testing.assert_array_equal(D, D.T)


def test_make_demo_installs_only_the_package_and_make_test_the_dev_tools(tmp_path):
    import shutil
    from pathlib import Path

    import pytest

    if shutil.which("make") is None:
        pytest.skip("needs make")
    repo = Path(__file__).resolve().parents[1]

    def dry(target):
        return subprocess.run(
            ["make", "-n", "-C", str(repo), target, f"VENV={tmp_path}/v"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout

    demo, test = dry("demo"), dry("test")
    assert "pip install -q -e ." in demo and "[dev]" not in demo
    assert "taskspace demo" in demo
    assert "pip install -q -e '.[dev]'" in test
