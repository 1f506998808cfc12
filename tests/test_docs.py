"""Docs that cannot drift: the shared contracts are copied verbatim, and every name a docstring,
a test or the README points at exists."""

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The design and the mathematical contract are written outside the repository and copied in.
SHARED = REPO.parent / "shared"
#: Paths the code names that exist only while it runs (git-ignored scratch space).
GENERATED = {"benchmarks/_scratch"}

ROOTS = "src|docs|benchmarks|tests|scripts|studies|examples"
PATH = re.compile(rf"(?<![\w/.])((?:{ROOTS})/[\w./*-]*[\w*])")
DOTTED = re.compile(r"(?<![\w.])taskspace(?:\.\w+)+")


def _sources() -> list[Path]:
    files = [
        *REPO.glob("src/**/*.py"),
        *REPO.glob("tests/*.py"),
        *REPO.glob("benchmarks/*.py"),
        *REPO.glob("scripts/*"),
        REPO / "README.md",
        REPO / "CONTRIBUTING.md",
    ]
    return sorted(p for p in files if p.is_file())


@pytest.mark.parametrize(
    ("copy", "original"), [("docs/design.md", "DESIGN.md"), ("docs/spec.md", "SPEC.md")]
)
def test_docs_hold_the_shared_contracts_verbatim(copy, original):
    source = SHARED / original
    if not source.exists():
        pytest.skip(f"no {source} beside this checkout (a fresh clone holds only the copy)")
    assert (REPO / copy).read_text(encoding="utf-8") == source.read_text(encoding="utf-8"), (
        f"{copy} differs from {source}: copy it again (cp {source} {copy})"
    )


def _exists(path: str) -> bool:
    """A path, or a glob pattern (``tests/test_store*.py``) that matches something."""
    return any(REPO.glob(path)) if "*" in path else (REPO / path).exists()


def test_every_file_the_code_and_readme_name_exists():
    missing = [
        f"{p.relative_to(REPO)}: {m.group(1)}"
        for p in _sources()
        for m in PATH.finditer(p.read_text(encoding="utf-8"))
        if m.group(1) not in GENERATED and not _exists(m.group(1))
    ]
    assert not missing, "named but not in the repository:\n" + "\n".join(missing)


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError as exc:
            if exc.name and not exc.name.startswith("taskspace"):
                return True  # an optional framework is missing here: cannot tell
            continue
        for name in parts[i:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_every_module_and_name_the_code_and_readme_name_exists():
    names = {
        m.group(0).rstrip(".")
        for p in _sources()
        for m in DOTTED.finditer(p.read_text(encoding="utf-8"))
    }
    missing = sorted(n for n in names if not _resolves(n))
    assert not missing, "named but not found (renamed or removed?):\n" + "\n".join(missing)


def test_the_suite_runs_the_doctests_of_the_geometry_and_the_public_api():
    import tomllib

    pytest_options = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "pytest"
    ]["ini_options"]
    assert "--doctest-modules" in pytest_options["addopts"]
    for path in ("src/taskspace/geometry", "src/taskspace/store", "src/taskspace/record.py"):
        assert path in pytest_options["testpaths"], path
