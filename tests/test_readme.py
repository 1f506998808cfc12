"""The README stays true about what the test suite needs from the system."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_names_every_package_ci_installs_and_every_skip_names_its_package():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    installed = re.search(r"apt-get install -y -qq ([^>\n]+)", ci).group(1).split()
    assert installed, "no apt-get line in .ci/run"
    table = readme.split("### What the tests and examples need from the system", 1)[1]
    for package in installed:
        assert f"| `{package}` |" in table, package
        assert package in re.search(r"apt-get install ([^\n]+)", table).group(1)
    # Every skip for missing system data says which package to install, and it is one of them.
    mentioned = set()
    for path in (REPO / "tests").glob("test_*.py"):
        text = path.read_text(encoding="utf-8")
        for reason in re.findall(
            r"(?:skip\(|reason=)\s*f?\"([^\"]*(?:Debian|apt-get)[^\"]*)", text
        ):
            named = [p for p in installed if p in reason]
            assert named, f"{path.name}: skip reason {reason!r} names no package of .ci/run"
            mentioned.update(named)
    assert mentioned == set(installed)


def test_readme_analyses_from_python_snippet_runs_as_written(tmp_path, monkeypatch):
    """The "analyses from Python" snippet, run as written, on a small store where it says
    "taskspace-demo/store" (plotly's ``show`` made a no-op: no browser here)."""
    import plotly.graph_objects as go

    from tests.test_analyses import build_store

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The analyses from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "taskspace-demo/store" in code
    monkeypatch.chdir(tmp_path)
    build_store(
        tmp_path / "taskspace-demo" / "store", methods=("supervised",), hierarchy=False, seeds=(0,)
    )
    shown = []
    monkeypatch.setattr(go.Figure, "show", lambda self, *a, **k: shown.append(self))
    exec(compile(code, "README.md", "exec"), {})  # a NameError if an import is missing
    assert len(shown) == 1 and (tmp_path / "inpca.pdf").stat().st_size > 1000
