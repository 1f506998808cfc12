"""Notebooks: how a Store, an InPCA fit and an analysis result show themselves, and the tutorial
notebook run top to bottom by a real kernel."""

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import taskspace as ts
from taskspace.store import Store
from taskspace.study.analyses.figure import Figure, Panel, Series
from tests.helpers import random_models

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = REPO / "examples" / "tutorial.ipynb"


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    store = Store.create(tmp_path / "s", np.arange(20) % 3, ["cat", "dog", "<b>eel</b>"])
    for rid, task, t in (("run-a", "ab", 3), ("run-b", "abc", 4)):
        store.add_run(rid, task=task, classes=None, method="sgd", seed=0)
        store.append(rid, random_models(rng, (t, 20, 3)), np.arange(t) * 5)
    return store


def test_store_shows_sizes_hashes_and_runs(store):
    page = store._repr_html_()
    for text in (
        "run-a",
        "run-b",
        store.probe_hash,
        store.label_space_hash,
        "2 / 7",
        "abc",
        "float32",
        "0–15",
    ):
        assert text in page, text
    assert "<table" in page and "None" not in page  # no network given: a blank cell
    empty = Store.create(store.path.parent / "e", [0, 1], ["x", "y"])
    assert "No runs yet" in empty._repr_html_()


def test_inpca_shows_its_picture_once_fitted(store):
    xr = pytest.importorskip("xarray")
    inpca = ts.InPCA(n_components=3)
    assert "InPCA" in inpca._repr_html_()  # unfitted: scikit-learn's display
    ds = store.to_xarray()
    inpca.fit(ds.predictions)
    page = inpca._repr_html_()
    assert "scatter3d" in page and "explained stress" in page
    assert "run-b\\u002f3" in page and "task abc" in page  # hover: the record coords (JSON)
    assert "scatter3d" in inpca._repr_mimebundle_()["text/html"]  # not the diagram
    plain = ts.InPCA(n_components=2).fit(np.asarray(ds.predictions.values))
    assert "model 6" in plain._repr_html_()
    assert isinstance(ds, xr.Dataset)


def _figure():
    series = Series(x=np.array([0.0, 1.0]), y=np.array([1.0, 2.0]), name="a")
    return Figure(panels=[Panel(items=[series], title="p")])


@pytest.mark.parametrize(
    "finding",
    [
        "supported: the runs lie in 3 dimensions <x>",
        SimpleNamespace(
            headline="the runs lie in 3 dimensions <x>",
            verdict="supported",
            details=["explained stress 0.9", "n = 8"],
        ),
    ],
)
def test_an_analysis_result_shows_verdict_headline_table_and_figure(finding):
    from taskspace.study.analyses._common import AnalysisResult

    result = AnalysisResult(
        name="low_dimension",
        title="Low dimension",
        table=pd.DataFrame({"k": range(20), "stress": np.linspace(0, 1, 20)}),
        figure=_figure(),
        finding=finding,
    )
    page = result._repr_html_()
    assert "Low dimension" in page and "supported" in page
    assert "the runs lie in 3 dimensions &lt;x&gt;" in page  # escaped
    assert "8 more rows" in page and "plotly" in page.lower()
    if not isinstance(finding, str):
        assert "<strong>supported</strong>" in page and "explained stress 0.9 n = 8" in page


def test_the_tutorial_is_stored_without_outputs():
    nb = json.loads(TUTORIAL.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)


@pytest.mark.slow
def test_the_tutorial_runs_top_to_bottom(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(TUTORIAL, as_version=4)
    src = str(REPO / "src")
    # The kernel is a fresh process: it imports this checkout's taskspace.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env)  # ipykernel's own "python3" kernel: this interpreter
    html = [
        o["data"].get("text/html", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "execute_result"
    ]
    assert any("taskspace Store" in h for h in html)
    assert any("scatter3d" in h for h in html)  # the InPCA picture
    assert any("taskspace-result" in h for h in html)  # the analysis
    assert any("xarray.Dataset" in h or "xr-wrap" in h for h in html)
