"""The README's examples of trackers, xarray and notebooks, run as written, on a small store
where the README assumes the demo's (``taskspace-demo/store``)."""

import glob
import re
from pathlib import Path

import numpy as np
import pytest

from taskspace.store import Store
from tests.helpers import random_models

pytest.importorskip("xarray")
pytest.importorskip("tensorboard")
pytest.importorskip("wandb")

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = "<!-- run by tests/test_readme_examples.py -->"


def readme_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(re.escape(MARK) + r"\n```python\n(.*?)```", text, flags=re.S)


def test_the_readme_marks_three_examples():
    assert len(readme_blocks()) == 3


@pytest.mark.slow
def test_the_readme_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    rng = np.random.default_rng(0)
    store = Store.create("taskspace-demo/store", np.arange(40) % 4, list("abcd"))
    for i, (task, method) in enumerate(
        [("ab", "supervised"), ("ab", "finetune"), ("cd", "supervised"), ("cd", "finetune")]
    ):
        store.add_run(f"r{i}", task=task, classes=None, method=method, seed=i)
        P = random_models(rng, (1, 40, 4)) ** np.linspace(1, 5, 5)[:, None, None]
        store.append(f"r{i}", P / P.sum(-1, keepdims=True), [0, 10, 20, 40, 80])
    namespace: dict = {}
    for block in readme_blocks():
        exec(compile(block, "README.md", "exec"), namespace)
    assert glob.glob("tb/picture/**/projector_config.pbtxt", recursive=True)
    # (wandb reads WANDB_DIR once a process: ask the run where it wrote)
    run_dir = Path(namespace["run"].dir).parent
    assert glob.glob(f"{run_dir}/run-*.wandb") and glob.glob(
        f"{run_dir}/files/media/table/**", recursive=True
    )
    out = capsys.readouterr().out
    assert "r0/4" in out  # the DataArray's record labels, printed
    assert namespace["Y"].dims == ("record", "component")
