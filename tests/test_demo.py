"""`taskspace demo`, the README's first command, end to end on the built-in digits."""

import json
import re
import subprocess
import sys

import numpy as np

import taskspace as ts


def test_demo_command_end_to_end(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "taskspace", "demo", "--out", str(out),
                           "--seeds", "1"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    report = out / "report.html"
    assert f"report: {report}" in " ".join(done.stdout.split())
    html = report.read_text()
    assert html.count("Plotly.newPlot") >= 1 and "Low dimension" in html
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
