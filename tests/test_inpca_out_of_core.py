"""Out-of-core InPCA equals the in-memory fit; landmark InPCA and its reported error."""

import numpy as np
import pandas as pd
import pytest
import zarr

from taskspace.geometry import InPCA, LandmarkInPCA, pairwise_distances
from taskspace.geometry.inpca_ooc import _Streamed, centering_stats
from taskspace.geometry.landmarks import (
    landmark_error,
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
    meta = pd.DataFrame(
        {
            "run_id": np.repeat([f"r{i}" for i in range(n_runs)], t),
            "record": np.tile(np.arange(t), n_runs),
        }
    )
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
    ooc = InPCA(
        n_components=4,
        metric="precomputed",
        solver="out-of-core",
        block_rows=block_rows,
        random_state=0,
    ).fit(z)
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
    means, g, frob, _ = centering_stats(S)
    assert frob == pytest.approx(np.sum(W * W), rel=1e-12)
    from taskspace.geometry.inpca_ooc import centred_operator

    V = np.random.default_rng(0).standard_normal((len(D), 3))
    np.testing.assert_allclose(centred_operator(S, means, g).matmat(V), W @ V, atol=1e-12)


def ooc(k, **kw):
    return InPCA(n_components=k, metric="precomputed", solver="out-of-core", **kw)


def test_bad_input():
    with pytest.raises(ValueError, match="square"):
        ooc(1).fit(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="n_components"):
        ooc(4).fit(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="n_components"):
        ooc(None).fit(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="metric='precomputed'"):
        InPCA(n_components=2, solver="out-of-core").fit(np.full((4, 3, 2), 0.5))
    bad = np.ones((6, 6))
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"non-finite value at index \(2, 3\)"):
        ooc(2).fit(bad)


def test_refit_with_another_solver_clears_out_of_core_attributes(D):
    model = ooc(3, random_state=0).fit(D)
    assert model.n_passes_ > 0
    model.set_params(solver="dense").fit(D)
    assert model.solver_ == "dense" and not hasattr(model, "n_passes_")


def test_landmark_estimator_conventions(D):
    X, _ = trajectories()
    est = LandmarkInPCA(n_components=2, n_landmarks=10, random_state=0)
    E = est.fit_transform(X)
    np.testing.assert_array_equal(E, est.embedding_)
    # transform of the fitted models gives back their rows (landmark MDS is exact on its input).
    np.testing.assert_allclose(est.transform(X[:7]), E[:7], atol=1e-9)
    # precomputed: transform takes the (M', L) distances to the landmarks.
    pre = LandmarkInPCA(n_components=2, n_landmarks=10, metric="precomputed", random_state=0).fit(D)
    np.testing.assert_allclose(pre.embedding_, E, atol=1e-9)
    np.testing.assert_allclose(pre.transform(D[:7][:, pre.landmarks_]), E[:7], atol=1e-9)
    assert list(pre.get_feature_names_out()) == ["landmarkinpca0", "landmarkinpca1"]
    assert est.get_params()["n_landmarks"] == 10


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_landmarks": 0}, "n_landmarks"),
        ({"n_landmarks": 100}, r"\[n_components, M\] = \[3, 72\]"),
        ({"n_landmarks": True}, "n_landmarks"),
        ({"rule": "random"}, "'rule' parameter of LandmarkInPCA must be a str among"),
        ({"metric": "euclidean"}, "'metric' parameter"),
        ({"rule": "stratified"}, "needs `meta`"),
    ],
)
def test_landmark_parameter_validation(D, params, message):
    with pytest.raises(ValueError, match=message):
        LandmarkInPCA(**{"metric": "precomputed", "n_landmarks": 10, **params}).fit(D)


def test_from_the_store_cache(tmp_path):
    store = Store.create(tmp_path / "s", np.arange(20) % 3, list("abc"), chunk_samples=8)
    store.add_run("a", task="t", classes=None, method="m", seed=0)
    store.append("a", random_models(np.random.default_rng(0), (30, 20, 3)), np.arange(30))
    full = store.distance_matrix()
    arr = store.cached_distances()
    assert arr.model_ids == list(store.runs()["model_id"])
    ooc = InPCA(
        n_components=3, metric="precomputed", solver="out-of-core", block_rows=8, random_state=1
    ).fit(arr)
    ref = InPCA(n_components=3, metric="precomputed", solver="dense").fit(full)
    np.testing.assert_allclose(
        ooc.eigenvalues_, ref.eigenvalues_, atol=1e-8 * abs(ref.eigenvalues_[0])
    )


def test_landmarks_all_points_is_the_full_fit(D):
    full = InPCA(n_components=3, metric="precomputed", solver="dense").fit(D)
    res = LandmarkInPCA(
        n_components=3, n_landmarks=len(D), metric="precomputed", solver="dense"
    ).fit(D)
    assert sorted(res.landmarks_) == list(range(len(D)))
    # Same points, another order: the same embedding row by row, and the same spectrum.
    np.testing.assert_allclose(res.embedding_, full.embedding_, atol=1e-9)
    np.testing.assert_allclose(res.eigenvalues_, full.eigenvalues_, rtol=1e-10)
    np.testing.assert_allclose(res.explained_stress_, full.explained_stress_, atol=1e-12)
    np.testing.assert_array_equal(res.signature_, full.signature_)


def test_farthest_point_rule(D):
    res = LandmarkInPCA(n_components=2, n_landmarks=5, metric="precomputed").fit(D)
    lm = list(res.landmarks_)
    assert lm[0] == int(np.argmax(D[0]))
    for i in range(1, 5):
        nearest = D[:, lm[:i]].min(axis=1)
        nearest[lm[:i]] = -np.inf
        assert lm[i] == int(np.argmax(nearest))
    np.testing.assert_array_equal(res.columns_, D[:, res.landmarks_])


@pytest.mark.parametrize("rule", ["farthest", "stratified"])
def test_landmark_error_is_reported_and_small(rule):
    X, meta = trajectories()
    D = pairwise_distances(X)
    k = 3
    full = InPCA(n_components=k, metric="precomputed", solver="dense").fit(D)
    full_err = landmark_error(D, full.embedding_, full.signature_)
    res = LandmarkInPCA(n_components=k, n_landmarks=24, rule=rule).fit(X, meta=meta)
    err = landmark_error(D, res.embedding_, res.signature_)
    # Landmark fit on 24 of 72 models: within a few % of the full fit's own error.
    print(f"{rule}: landmark error {err:.4f}, full-fit error {full_err:.4f}")
    assert full_err <= err + 1e-9
    assert err <= full_err + 0.05
    # the error is a plain formula: compare with a loop over pairs
    E, s = res.embedding_, res.signature_
    i, j = 3, 40
    assert reconstructed_distances(E, s)[i, j] == pytest.approx(np.sum(s * (E[i] - E[j]) ** 2))


def test_stratified_rule():
    meta = pd.DataFrame(
        {
            "run_id": ["a"] * 10 + ["b"] * 4 + ["c"] * 2,
            "record": list(range(10)) + list(range(4)) + [0, 1],
        }
    )
    idx = stratified_landmarks(meta, 6)
    assert len(idx) == 6
    runs = meta["run_id"].to_numpy()[idx]
    assert set(runs) == {"a", "b", "c"}
    a = meta["record"].to_numpy()[idx[runs == "a"]]
    assert a[0] == 0 and a[-1] == 9  # first and last record of the long run
    assert list(stratified_landmarks(meta, 2)) == [9, 15]  # fewer than runs: last records
