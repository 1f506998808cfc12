"""The layering of DESIGN.md, checked on the source: who may import whom.

Every ``import`` in ``src/taskspace`` is read with ``ast`` (those inside functions too: a lazy
import is still a dependency). Packages are ranked from the geometry up; a module may import its
own package and packages ranked strictly below it, never above; no package imports another's
``_``-prefixed module or name; within a package the modules import one another without cycles.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "taskspace"

#: Rank of each top-level package or module of taskspace: an import must go strictly down. The
#: root package (`taskspace/__init__.py`, the public API) re-exports the geometry, the store, the
#: recorder and, lazily, training; the study and everything above may use it.
RANKS = {
    "geometry": 0,
    "ui": 0.5,  # terminal bars: above the geometry, below all that draw them
    "store": 1,
    "data": 2,
    "nets": 2,
    "tasks": 3,
    "record": 3,
    "distributed": 3,
    "methods": 4,
    "embedding": 4,
    # The callbacks and trackers use the recorder and the store's embedding; the root package
    # re-exports their `log_picture` (lazily).
    "integrations": 4.5,
    "": 5,  # "": the root package taskspace/__init__.py
    "study": 6,
    "report": 7,
    "cli": 8,
    "__main__": 9,
}
#: `taskspace._version` holds only the version string, so that setuptools and every package
#: can read ``__version__`` without importing taskspace; it imports nothing.
VERSION = "taskspace._version"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("taskspace", *parts))


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_module(name: str) -> bool:
    return name in MODULES


def _imports(name: str):
    """(target module, imported name or None, line) of every taskspace import in module ``name``.

    ``from pkg import sub`` counts as an import of the module ``pkg.sub`` when it is one."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "taskspace":
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}:{node.lineno}: relative import"
            if node.module is None or node.module.split(".")[0] != "taskspace":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if _is_module(sub):
                    yield sub, None, node.lineno
                else:
                    yield node.module, alias.name, node.lineno


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


EDGES = [(src, tgt, name, line) for src in MODULES for tgt, name, line in _imports(src)]
CROSS = [e for e in EDGES if _package(e[0]) != _package(e[1])]


def test_every_package_has_a_rank():
    packages = {_package(m) for m in MODULES} - {"_version"}
    assert packages <= set(RANKS), f"rank these in RANKS: {sorted(packages - set(RANKS))}"


#: The one import that runs up: an analysis result draws itself in a notebook
#: (``AnalysisResult._repr_html_``) with the report's figures, at display time only.
DISPLAY_HOOKS = {("taskspace.study.analyses._common", "taskspace.report.notebook")}


def test_no_import_runs_up_a_layer():
    bad = [
        f"{s}:{line} imports {t} (rank {RANKS[_package(t)]} ≥ {RANKS[_package(s)]})"
        for s, t, _, line in CROSS
        if t != VERSION and RANKS[_package(t)] >= RANKS[_package(s)] and (s, t) not in DISPLAY_HOOKS
    ]
    assert not bad, "\n".join(bad)


def _look_alikes(modules) -> list[str]:
    """Modules of one package whose names differ only by a leading underscore."""
    seen: dict[tuple[str, str], str] = {}
    clashes = []
    for module in sorted(modules):
        package, _, name = module.rpartition(".")
        other = seen.setdefault((package, name.lstrip("_")), module)
        if other != module:
            clashes.append(f"{other} and {module}")
    return clashes


def test_no_two_modules_differ_only_by_a_leading_underscore():
    clashes = _look_alikes(MODULES)
    assert not clashes, "rename one so that the name says its job:\n" + "\n".join(clashes)


def test_look_alike_detector_finds_a_planted_pair():
    planted = ["pkg.store.atomic", "pkg.store._atomic", "pkg.geometry.atomic"]
    assert _look_alikes(planted) == ["pkg.store._atomic and pkg.store.atomic"]


def test_geometry_imports_nothing_else_of_taskspace():
    bad = [f"{s}:{line} imports {t}" for s, t, _, line in CROSS if _package(s) == "geometry"]
    assert not bad, "\n".join(bad)


def test_store_imports_only_public_names_of_the_geometry_and_the_ui():
    bad = [
        f"{s}:{line} imports {t}"
        for s, t, _, line in CROSS
        if _package(s) == "store" and t != VERSION and _package(t) not in ("geometry", "ui")
    ]
    assert not bad, "\n".join(bad)


def test_no_package_imports_another_packages_private_names():
    bad = []
    for s, t, name, line in CROSS:
        if t == VERSION:
            continue
        if any(part.startswith("_") for part in t.split(".")[1:]):
            bad.append(f"{s}:{line} imports the private module {t}")
        elif name is not None and name.startswith("_"):
            bad.append(f"{s}:{line} imports the private name {t}.{name}")
    assert not bad, "\n".join(bad)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles():
    # Between packages the ranks already forbid cycles; within one, modules must not import each
    # other in a circle (a package's __init__ importing its modules is its job, so edges into an
    # __init__ from its own submodules count too).
    graph: dict[str, set[str]] = {}
    for s, t, _, _ in EDGES:
        if s != t:
            graph.setdefault(s, set()).add(t)
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_cycle_detector_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


@pytest.mark.slow
@pytest.mark.parametrize(
    "modules",
    [
        "taskspace",
        "taskspace.geometry",
        "taskspace.store",
        "taskspace.study",
        "taskspace.study.analyses",
        "taskspace.methods",
        "taskspace.nets",
    ],
)
def test_import_does_not_load_torch(modules):
    code = (
        f"import sys, {modules}; loaded = [m for m in ('torch',) if m in sys.modules]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"import {modules} loaded torch\n{proc.stderr[-2000:]}"


#: DESIGN.md's public API, name by name. Names other sessions are adding are checked once they
#: exist (``OPTIONAL``); the rest must be there.
API = [
    "bhattacharyya",
    "hellinger",
    "geodesic_distance",
    "pairwise_distances",
    "interpolate",
    "progress",
    "length",
    "reparameterize",
    "average",
    "compare_trajectories",
    "frechet_distance",
    "distance_to_trajectory",
    "InPCA",
    "LandmarkInPCA",
    "Store",
    "Recorder",
    "log_map",
    "exp_map",
]
STORE_METHODS = ["create", "open", "runs", "trajectory", "collection", "cached_distances"]
ESTIMATOR_API = ["fit", "transform", "fit_transform"]
FITTED = ["embedding_", "eigenvalues_", "signature_", "explained_stress_"]


@pytest.mark.parametrize("name", API)
def test_public_api_is_importable(name):
    import taskspace as ts

    assert callable(getattr(ts, name))
    assert name in ts.__all__


def test_store_and_estimators_have_their_public_methods():
    import numpy as np

    import taskspace as ts

    for method in STORE_METHODS:
        assert callable(getattr(ts.Store, method)), method
    P = np.random.default_rng(0).dirichlet(np.ones(3), size=(12, 4))
    for est in (ts.InPCA(n_components=2), ts.LandmarkInPCA(n_components=2, n_landmarks=6)):
        for method in ESTIMATOR_API:
            assert callable(getattr(est, method)), method
        est.fit(P)
        for attr in FITTED:
            assert getattr(est, attr).shape[0] in (2, 12), attr
    assert set(ts.InPCA._param_rules["solver"].options) == {
        "auto",
        "dense",
        "partial",
        "out-of-core",
    }


@pytest.mark.slow
def test_integrations_import_without_their_frameworks():
    for module in ("taskspace.integrations.lightning", "taskspace.integrations.transformers"):
        code = f"from {module} import RecorderCallback"
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-2000:]


def _private_third_party_imports(name: str) -> list[str]:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        modules = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        for module in modules:
            parts = module.split(".")
            private = any(p.startswith("_") for p in parts)
            if private and parts[0] not in ("taskspace", "__future__"):
                found.append(f"{name}:{node.lineno} imports {module}")
    return found


def test_no_module_imports_a_private_module_of_a_library():
    # A library's private module (sklearn.utils._param_validation) may change in any release
    # and break `import taskspace.geometry`; use its public API or taskspace's own checks.
    bad = [line for name in MODULES for line in _private_third_party_imports(name)]
    assert not bad, "\n".join(bad)


#: The longest function of `taskspace.study.analyses`, in lines of code: from its ``def`` to its
#: last line, its docstring not counted (blank lines and comments are). DESIGN.md: no function
#: over ~50 lines; an analysis reads as compute → result → describe → finding only when each
#: step is a few small, named helpers.
MAX_FUNCTION_LINES = 50
ANALYSES = SRC / "study" / "analyses"


def _docstring_lines(node: ast.AST) -> int:
    first = node.body[0]
    is_doc = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    return first.end_lineno - first.lineno + 1 if is_doc else 0


def _long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int, int]]:
    """(qualified name, line, lines of code) of every function of ``source`` (methods and nested
    functions too) with more than ``limit`` lines of code, docstring excluded."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            name = f"{prefix}{getattr(child, 'name', '')}"
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = child.end_lineno - child.lineno + 1 - _docstring_lines(child)
                if lines > limit:
                    found.append((name, child.lineno, lines))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def test_no_function_of_the_analyses_is_over_50_lines():
    bad = [
        f"{path.relative_to(SRC)}:{line} {name} has {lines} lines of code (docstring not "
        f"counted; at most {MAX_FUNCTION_LINES}): split it into named helpers"
        for path in sorted(ANALYSES.glob("*.py"))
        for name, line, lines in _long_functions(path.read_text(encoding="utf-8"))
    ]
    assert not bad, "\n".join(bad)


def test_long_function_detector_counts_code_not_docstrings():
    doc = '    """' + "\n" * 20 + '    """\n'
    body = "    x = 1\n" * 49

    def source(extra: int) -> str:
        method = "    def m(self):\n" + "        y = 2\n" * (49 + extra)
        return f"def f():\n{doc}{body}\n\nclass C:\n{method}"

    # f spans 71 lines but has 50 of code (its 21-line docstring does not count); C.m, on line
    # 75, has 50, or 51 with one line more.
    assert _long_functions(source(0)) == []
    assert _long_functions(source(1)) == [("C.m", 75, 51)]
