"""Out-of-core InPCA equals the in-memory fit; landmark InPCA and its reported error."""

import numpy as np
import pandas as pd
import pytest
import zarr

from taskspace.geometry import InPCA, pairwise_distances
from taskspace.geometry.inpca_ooc import (
    _Streamed,
    centering_stats,
    inpca_out_of_core,
)
from taskspace.geometry.landmarks import (
    landmark_error,
    landmark_inpca,
    reconstructed_distances,
    stratified_landmarks,
)
from taskspace.store import Store
from tests.helpers import random_models


def trajectories(n_runs=6, t=12, n=60, c=5, seed=0):
    """Runs that move in logit space from a common start to their own end: low-dimensional."""
    rng = np.random.default_rng(seed)
    start = rng.standard_normal((n, c))
    out = []
    for _ in range(n_runs):
        end = 3.0 * rng.standard_normal((n, c))
        for s in np.linspace(0, 1, t):
            z = (1 - s) * start + s * end
            p = np.exp(z - z.max(-1, keepdims=True))
            out.append(p / p.sum(-1, keepdims=True))
    meta = pd.DataFrame({"run_id": np.repeat([f"r{i}" for i in range(n_runs)], t),
                         "record": np.tile(np.arange(t), n_runs)})
    return np.array(out), meta


@pytest.fixture(scope="module")
def D():
    X, _ = trajectories()
    return pairwise_distances(X)


def w_plain(D):
    m = len(D)
    J = np.eye(m) - 1.0 / m
    return -0.5 * J @ D @ J


@pytest.mark.parametrize("block_rows", [7, 1000])
def test_matches_in_memory(D, tmp_path, block_rows):
    z = zarr.create_array(tmp_path / "d.zarr", shape=D.shape, chunks=(16, 16), dtype="float64")
    z[:] = D
    ooc = inpca_out_of_core(z, 4, block_rows=block_rows, random_state=0)
    ref = InPCA(n_components=4, metric="precomputed", solver="dense").fit(D)
    scale = np.abs(ref.eigenvalues_[0])
    assert np.max(np.abs(ooc.eigenvalues_ - ref.eigenvalues_)) <= 1e-8 * scale
    np.testing.assert_allclose(ooc.embedding_, ref.embedding_, atol=1e-7 * np.sqrt(scale))
    np.testing.assert_allclose(ooc.explained_stress_, ref.explained_stress_, atol=1e-10)
    np.testing.assert_allclose(ooc.distance_means_, ref.distance_means_, rtol=1e-13)
    assert ooc.solver_ == "out-of-core" and ooc.n_passes_ > 2
    # transform works as for the in-memory fit (a fitted point's row gives its embedding).
    np.testing.assert_allclose(ooc.transform(D[:5]), ooc.embedding_[:5], atol=1e-9)


def test_streamed_frobenius_and_operator(D):
    W = w_plain(D)
    S = _Streamed(D, 11)
    means, g, frob = centering_stats(S)
    assert frob == pytest.approx(np.sum(W * W), rel=1e-12)
    from taskspace.geometry.inpca_ooc import centred_operator

    V = np.random.default_rng(0).standard_normal((len(D), 3))
    np.testing.assert_allclose(centred_operator(S, means, g).matmat(V), W @ V, atol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="square"):
        inpca_out_of_core(np.zeros((3, 4)), 1)
    with pytest.raises(ValueError, match="n_components"):
        inpca_out_of_core(np.zeros((5, 5)), 4)
    bad = np.ones((6, 6))
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"non-finite value at index \(2, 3\)"):
        inpca_out_of_core(bad, 2)


def test_from_the_store_cache(tmp_path):
    store = Store.create(tmp_path / "s", np.arange(20) % 3, list("abc"), chunk_samples=8)
    store.add_run("a", task="t", classes=None, method="m", seed=0)
    store.append("a", random_models(np.random.default_rng(0), (30, 20, 3)), np.arange(30))
    full = store.distance_matrix()
    arr = store.cached_distances()
    assert arr.model_ids == list(store.runs()["model_id"])
    ooc = inpca_out_of_core(arr, 3, block_rows=8, random_state=1)
    ref = InPCA(n_components=3, metric="precomputed", solver="dense").fit(full)
    np.testing.assert_allclose(ooc.eigenvalues_, ref.eigenvalues_,
                               atol=1e-8 * abs(ref.eigenvalues_[0]))


def test_landmarks_all_points_is_the_full_fit(D):
    full = InPCA(n_components=3, metric="precomputed", solver="dense").fit(D)
    res = landmark_inpca(D=D, n_landmarks=len(D), n_components=3, solver="dense")
    assert sorted(res.landmarks) == list(range(len(D)))
    # Same points, another order: the same embedding row by row.
    np.testing.assert_allclose(res.embedding, full.embedding_, atol=1e-9)


def test_farthest_point_rule(D):
    res = landmark_inpca(D=D, n_landmarks=5, n_components=2)
    lm = list(res.landmarks)
    assert lm[0] == int(np.argmax(D[0]))
    for i in range(1, 5):
        nearest = D[:, lm[:i]].min(axis=1)
        nearest[lm[:i]] = -np.inf
        assert lm[i] == int(np.argmax(nearest))
    np.testing.assert_array_equal(res.columns, D[:, res.landmarks])


@pytest.mark.parametrize("rule", ["farthest", "stratified"])
def test_landmark_error_is_reported_and_small(rule):
    X, meta = trajectories()
    D = pairwise_distances(X)
    k = 3
    full = InPCA(n_components=k, metric="precomputed", solver="dense").fit(D)
    full_err = landmark_error(D, full.embedding_, full.signature_)
    res = landmark_inpca(X, n_landmarks=24, n_components=k, rule=rule, meta=meta)
    err = landmark_error(D, res.embedding, res.signature)
    # Landmark fit on 24 of 72 models: within a few % of the full fit's own error.
    print(f"{rule}: landmark error {err:.4f}, full-fit error {full_err:.4f}")
    assert full_err <= err + 1e-9
    assert err <= full_err + 0.05
    # the error is a plain formula: compare with a loop over pairs
    E, s = res.embedding, res.signature
    i, j = 3, 40
    assert reconstructed_distances(E, s)[i, j] == pytest.approx(np.sum(s * (E[i] - E[j]) ** 2))


def test_stratified_rule():
    meta = pd.DataFrame({"run_id": ["a"] * 10 + ["b"] * 4 + ["c"] * 2,
                         "record": list(range(10)) + list(range(4)) + [0, 1]})
    idx = stratified_landmarks(meta, 6)
    assert len(idx) == 6
    runs = meta["run_id"].to_numpy()[idx]
    assert set(runs) == {"a", "b", "c"}
    a = meta["record"].to_numpy()[idx[runs == "a"]]
    assert a[0] == 0 and a[-1] == 9                  # first and last record of the long run
    assert list(stratified_landmarks(meta, 2)) == [9, 15]   # fewer than runs: last records
