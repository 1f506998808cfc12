"""`taskspace demo`, the README's first command, end to end on the built-in digits."""

import json
import subprocess
import sys

import numpy as np
import pytest

import taskspace as ts


@pytest.mark.slow
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
