"""Store.to_xarray: a lazy labelled view of the store's chunks; the geometry takes DataArrays."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import taskspace as ts
from taskspace.store import Store
from tests.helpers import random_models, record_chunk_reads

xr = pytest.importorskip("xarray")

N, C, B = 50, 3, 16


@pytest.fixture
def filled(tmp_path):
    rng = np.random.default_rng(2)
    store = Store.create(tmp_path / "s", np.arange(N) % C, ["p", "q", "r"], chunk_samples=B)
    for rid, task, seed, t in (("a", "x", 0, 3), ("b", "y", None, 2), ("c", "x", 1, 4)):
        store.add_run(rid, task=task, classes=None, method="m", seed=seed)
        store.append(
            rid, random_models(rng, (t, N, C)), np.arange(t) * 10, {"acc": np.linspace(0, 1, t)}
        )
    return store


def test_round_trip_bit_for_bit_with_coordinates(filled):
    ds = filled.to_xarray()
    assert ds.predictions.dims == ("record", "sample", "class")
    assert ds.predictions.shape == (9, N, C)
    assert ds.predictions.dtype == np.float32
    for rid in ("a", "b", "c"):
        traj = filled.trajectory(rid)
        got = ds.predictions.sel(record=ds.record[ds.run.values == rid])
        assert got.values.tobytes() == traj.predictions.tobytes()
        np.testing.assert_array_equal(got.step.values, traj.steps)
        np.testing.assert_array_equal(
            ds.acc.sel(record=got.record).values, traj.metrics["acc"].to_numpy()
        )
    assert list(ds.record.values[:3]) == ["a/0", "a/1", "a/2"]
    assert set(ds.task.values) == {"x", "y"}
    assert np.isnan(ds.seed.sel(record="b/0").item()) and ds.seed.sel(record="c/0") == 1
    np.testing.assert_array_equal(ds.label.values, filled.labels)
    assert list(ds.class_name.values) == ["p", "q", "r"]
    assert ds.attrs["probe_hash"] == filled.probe_hash
    assert ds.predictions.encoding["preferred_chunks"] == {"record": 1, "sample": B, "class": C}


def test_runs_pick_and_order(filled):
    ds = filled.to_xarray(runs=["c", "a"])
    assert list(ds.run.values) == ["c"] * 4 + ["a"] * 3
    assert list(ds.record_index.values) == [0, 1, 2, 3, 0, 1, 2]
    assert filled.to_xarray(runs="b").sizes["record"] == 2
    with pytest.raises(ValueError, match="no run 'zz'"):
        filled.to_xarray(runs=["zz"])


def test_building_reads_no_chunk_and_a_slice_reads_only_its_own(filled, monkeypatch):
    read = record_chunk_reads(monkeypatch)
    ds = filled.to_xarray()
    assert not [k for k in read if "/predictions/c/" in k]
    _ = ds.predictions.isel(record=4, sample=slice(40, 45)).values
    assert [k for k in read if "/predictions/c/" in k] == ["runs/b/predictions/c/1/2/0"]


def test_pairwise_distances_and_inpca_keep_record_coordinates(filled):
    ds = filled.to_xarray()
    X, _ = filled.collection()
    D = ts.pairwise_distances(ds.predictions)
    assert D.dims == ("record", "record_other")
    np.testing.assert_array_equal(D.values, ts.pairwise_distances(X))
    assert list(D.run.values) == list(ds.run.values)
    assert list(D.task_other.values) == list(ds.task.values)
    assert D.sel(record="a/1", record_other="c/2").item() == D.values[1, 7]

    sub = ds.predictions.sel(record=ds.record[ds.run.values == "b"])
    cross = ts.pairwise_distances(ds.predictions, sub)
    np.testing.assert_allclose(cross.values, D.values[:, 3:5], atol=1e-12)
    plain = ts.pairwise_distances(ds.predictions, np.asarray(sub.values))
    assert plain.dims == ("record", "model")

    inpca = ts.InPCA(n_components=2)
    Y = inpca.fit_transform(ds.predictions)
    assert Y.dims == ("record", "component")
    np.testing.assert_allclose(Y.values, ts.InPCA(n_components=2).fit_transform(X[:]), atol=1e-9)
    assert list(Y.step.values) == list(ds.step.values)
    np.testing.assert_allclose(inpca.transform(sub).values, Y.values[3:5], atol=1e-9)
    # sample and class in another order are moved last
    swapped = ts.pairwise_distances(ds.predictions.transpose("class", "record", "sample"))
    np.testing.assert_array_equal(swapped.values, D.values)


def test_a_dataarray_of_another_rank_says_how_to_stack(filled):
    da = filled.to_xarray().predictions.isel(record=0)
    with pytest.raises(ValueError, match="stack"):
        ts.pairwise_distances(da)


@pytest.mark.slow
def test_memory_stays_flat_on_a_store_larger_than_the_budget(tmp_path):
    """Stream a 96 MiB store through the Dataset in a fresh process: its peak RSS grows by
    far less than the store (one record's chunks at a time)."""
    n, c, t, runs = 4000, 200, 15, 2  # 2 runs × 15 records × 3.2 MB = 96 MB float32
    rng = np.random.default_rng(0)
    store = Store.create(
        tmp_path / "big", rng.integers(0, c, n), [str(i) for i in range(c)], chunk_samples=1000
    )
    for r in range(runs):
        store.add_run(f"r{r}", task="t", classes=None, method="m", seed=r)
        for k in range(t):
            store.append(f"r{r}", random_models(rng, (1, n, c)), [k])
    total = runs * t * n * c * 4
    code = textwrap.dedent(f"""
        import json, resource, numpy as np, taskspace as ts
        ds = ts.Store.open({str(tmp_path / "big")!r}).to_xarray()
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        sums = [float(ds.predictions.isel(record=i).sum()) for i in range(ds.sizes["record"])]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"grew": (peak - base) * 1024, "sums": sums}}))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=_env()
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    budget = total // 8
    assert got["grew"] < budget, f"RSS grew by {got['grew'] / 2**20:.0f} MiB"
    np.testing.assert_allclose(got["sums"], n, rtol=1e-3)  # each record: N rows summing to 1


def _env():
    import os

    from tests.helpers import __file__ as helpers

    root = os.path.dirname(os.path.dirname(os.path.abspath(helpers)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(root, "src"), root, env.get("PYTHONPATH", "")]
    )
    return env
