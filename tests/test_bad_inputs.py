"""Odd inputs a hostile user tries (issue 15 §5): each is refused with a message naming it."""

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import taskspace as ts
from taskspace.store import Store
from taskspace.study import parse_study
from tests.helpers import random_models
from tests.test_study import TINY

RAGGED = [[[0.5, 0.5], [1.0]], [[0.5, 0.5], [0.5, 0.5]]]
P = np.full((2, 3, 2), 0.5)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: ts.pairwise_distances(RAGGED), "X"),
        (lambda: ts.pairwise_distances(P, RAGGED), "Y"),
        (lambda: ts.bhattacharyya(RAGGED, P), "P"),
        (lambda: ts.InPCA().fit(RAGGED), "X"),
        (lambda: ts.interpolate(RAGGED, P, 0.5), "P"),
    ],
)
def test_ragged_lists_name_the_argument(call, name):
    with pytest.raises(ValueError, match=f"`{name}` cannot be read as"):
        call()


@pytest.mark.parametrize("eps", [None, "a", True, [1e-9]])
@pytest.mark.parametrize(
    "call",
    [
        lambda eps: ts.pairwise_distances(P, eps=eps),
        lambda eps: ts.bhattacharyya(P, P, eps=eps),
        lambda eps: ts.InPCA(eps=eps).fit(P),
    ],
)
def test_bad_eps_is_a_value_error_naming_eps(call, eps):
    # The functions say "`eps` must be a real number"; InPCA checks through scikit-learn's
    # parameter constraints ("The 'eps' parameter of InPCA must be a float ..."): both name it.
    with pytest.raises(ValueError, match=r"[`']eps[`'] (parameter of InPCA )?must be"):
        call(eps)


def test_eps_still_takes_numpy_and_python_reals():
    a = ts.pairwise_distances(P, eps=np.float32(1e-6))
    np.testing.assert_array_equal(a, ts.pairwise_distances(P, eps=1e-6))


def test_unsafe_study_names_are_refused():
    for name in ("../../etc/x", "/tmp/x", "a/b", "..", "-rf", ".hidden", "x" * 129):
        d = copy.deepcopy(TINY)
        d["name"] = name
        with pytest.raises(ValueError, match=r"study key `name`.*not a safe folder name"):
            parse_study(d)
    d = copy.deepcopy(TINY)
    d["name"] = "ok-name_1.2"
    assert parse_study(d).name == "ok-name_1.2"


@pytest.mark.slow
def test_study_named_outside_writes_nothing_outside(tmp_path):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    demo = (Path(__file__).parent.parent / "studies" / "digits-demo.toml").read_text()
    (work / "s.toml").write_text(
        re.sub(r"^name = .*$", 'name = "../../etc/x"', demo, count=1, flags=re.M)
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "src")}
    res = subprocess.run(
        [sys.executable, "-m", "taskspace", "run", "s.toml", "--quick"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 1, res.stderr
    assert "not a safe folder name" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert sorted(p.name for p in work.iterdir()) == ["s.toml"]


# ------------------------------------------------------------------------ Store.create options
def _labels():
    return np.arange(12) % 3


@pytest.mark.parametrize(
    "option, value",
    [
        ("dtype", "float16"),
        ("compression", "zstd"),
        ("chunk_samples", 5),
        ("hierarchy", {"root": ["a", "b", "c"]}),
        ("probe_ids", np.arange(12) + 100),
    ],
)
def test_create_refuses_an_existing_store_made_with_other_options(tmp_path, option, value):
    path = tmp_path / "s"
    Store.create(path, _labels(), ["a", "b", "c"], chunk_samples=4)
    with pytest.raises(ValueError, match=option.split("_")[0]):
        Store.create(path, _labels(), ["a", "b", "c"], **{option: value})
    # The same options (and omitted optional ones) still reopen it, as parallel workers do.
    again = Store.create(path, _labels(), ["a", "b", "c"], chunk_samples=4)
    assert again.dtype == np.float32


def test_create_reopens_with_the_same_explicit_options(tmp_path):
    path = tmp_path / "s"
    kw = dict(
        dtype="float16",
        compression="lz4",
        chunk_samples=5,
        probe_ids=np.arange(12) * 2,
        hierarchy={"root": ["a"]},
    )
    Store.create(path, _labels(), ["a", "b", "c"], **kw)
    s = Store.create(path, _labels(), ["a", "b", "c"], **kw)
    assert s.dtype == np.float16 and s.hierarchy == {"root": ["a"]}


# ------------------------------------------------------------------------ steps of append
@pytest.mark.parametrize(
    "first, second, match",
    [
        ([-1], None, "non-negative"),
        ([0, 2, 1], None, "strictly increasing: step 1 .record 2"),
        ([0, 0], None, "strictly increasing: step 0 .record 1"),
        ([0, 5], [5], "last committed step 5"),
        ([0, 5], [3, 7], "last committed step 5"),
    ],
)
def test_append_refuses_negative_decreasing_and_repeated_steps(tmp_path, first, second, match):
    s = Store.create(tmp_path / "s", _labels(), ["a", "b", "c"])
    s.add_run("r", task="t", classes=None, method="m", seed=0)
    rng = np.random.default_rng(0)
    steps = second if second is not None else first
    if second is not None:
        s.append("r", random_models(rng, (len(first), 12, 3)), first)
    before = s.n_records("r")
    with pytest.raises(ValueError, match=match):
        s.append("r", random_models(rng, (len(steps), 12, 3)), steps)
    assert s.n_records("r") == before
    s.append("r", random_models(rng, (1, 12, 3)), [100])  # a later step is fine
    assert s.steps("r")[-1] == 100
