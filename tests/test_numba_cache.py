"""The Numba cache trap: a cached kernel that calls numba code of another file must hold its digest.

Numba invalidates a ``cache=True`` kernel by its own file only; code it inlines from another file
(an ``overload``, an ``intrinsic``, another ``njit`` function) is compiled into the cache and kept
when that file changes. So such a caller keeps ``CALLEE_DIGESTS`` (file → SHA-256, 16 hex digits)
and these tests fail when a digest is stale or missing: updating it edits the caller, which is
what makes Numba recompile.
"""

import ast
import hashlib
import importlib
from pathlib import Path

import pytest

GEOMETRY = Path(__file__).resolve().parents[1] / "src" / "taskspace" / "geometry"
NUMBA_MARKS = ("njit", "overload", "intrinsic", "vectorize", "numba.jit")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _has_numba_code(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        any(mark in ast.unparse(d) for mark in NUMBA_MARKS)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        for d in node.decorator_list
    )


def _jitted_callees(path: Path) -> set[str]:
    """Files of the geometry with numba code whose names this file's numba functions use."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    origin: dict[str, str] = {}  # local name -> file it comes from
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "taskspace.geometry":
            for a in node.names:
                origin[a.asname or a.name] = f"{a.name}.py"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "taskspace.geometry."
        ):
            for a in node.names:
                origin[a.asname or a.name] = node.module.rsplit(".", 1)[1] + ".py"
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
            any(m in ast.unparse(d) for m in NUMBA_MARKS) for d in node.decorator_list
        ):
            used |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return {
        origin[name]
        for name in used
        if name in origin
        and (GEOMETRY / origin[name]).exists()
        and _has_numba_code(GEOMETRY / origin[name])
    }


CACHED = sorted(p for p in GEOMETRY.glob("*.py") if "cache=True" in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", CACHED, ids=lambda p: p.name)
def test_cached_kernels_hold_the_digest_of_every_numba_file_they_call(path):
    callees = _jitted_callees(path)
    if not callees:
        return
    module = importlib.import_module(f"taskspace.geometry.{path.stem}")
    held = getattr(module, "CALLEE_DIGESTS", {})
    for callee in sorted(callees):
        actual = _digest(GEOMETRY / callee)
        assert held.get(callee) == actual, (
            f"{path.name} compiles numba code of {callee} into its Numba cache, which is "
            f"invalidated only when {path.name} itself changes. Set "
            f'CALLEE_DIGESTS["{callee}"] = "{actual}" in {path.name} (this edit makes Numba '
            f"recompile; without it the old {callee} keeps running from the cache)."
        )


def test_the_pairwise_kernels_are_found_to_call_the_micro_kernels():
    # The detector itself: it must see the one known case, or the test above checks nothing.
    assert _jitted_callees(GEOMETRY / "_kernels_pairwise.py") == {
        "_kernels_pairwise_micro.py",
        "_prefetch.py",
    }


def test_a_stale_digest_is_caught(tmp_path):
    edited = tmp_path / "_kernels_pairwise_micro.py"
    edited.write_bytes((GEOMETRY / "_kernels_pairwise_micro.py").read_bytes() + b"\n# edited\n")
    from taskspace.geometry import _kernels_pairwise

    assert _kernels_pairwise.CALLEE_DIGESTS["_kernels_pairwise_micro.py"] != _digest(edited)
