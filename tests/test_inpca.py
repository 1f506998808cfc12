"""InPCA (SPEC §10): invariants, closed forms, solver agreement, out-of-sample, validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import taskspace as ts
from taskspace.geometry._eigen import choose_solver, double_center
from tests.helpers import random_models


def plain_pairwise(X, Y=None, metric="bhattacharyya"):
    """(M, M') distances by the elementwise functions, broadcast plainly."""
    Y = X if Y is None else Y
    fn = {
        "bhattacharyya": ts.bhattacharyya,
        "hellinger": ts.hellinger,
        "geodesic": ts.geodesic_distance,
    }[metric]
    return fn(np.asarray(X)[:, None], np.asarray(Y)[None, :])


def plain_w(D):
    """W = −½ J D J with J formed explicitly."""
    m = D.shape[0]
    J = np.eye(m) - np.ones((m, m)) / m
    return -0.5 * J @ D @ J


def reconstructed(X, signature):
    """Σ_k s_k (X_ik − X_jk)²."""
    return np.einsum("ijk,k->ij", (X[:, None, :] - X[None, :, :]) ** 2, signature)


@pytest.fixture
def D():
    P = random_models(np.random.default_rng(0), (30, 6, 4), sharpness=2.0)
    return plain_pairwise(P)


def test_full_rank_reproduces_distances(D):
    model = ts.InPCA(n_components=None, metric="precomputed").fit(D)
    assert model.embedding_.shape == (30, 30)
    assert model.solver_ == "dense"
    np.testing.assert_allclose(
        reconstructed(model.embedding_, model.signature_), D, rtol=0, atol=1e-10 * D.max()
    )
    # d_B is not a squared Euclidean distance: some axes are time-like.
    assert (model.signature_ == -1).any() and (model.signature_ == 1).any()
    # The centring vector is always in the null space of W.
    assert model.signature_[-1] == 0 and model.eigenvalues_[-1] == 0.0


def test_eigenvalues_match_explicit_centring(D):
    model = ts.InPCA(n_components=8, metric="precomputed", solver="dense").fit(D)
    values = np.linalg.eigvalsh(plain_w(D))
    expected = values[np.argsort(-np.abs(values))][:8]
    np.testing.assert_allclose(model.eigenvalues_, expected, rtol=1e-10)
    np.testing.assert_array_equal(model.signature_, np.sign(expected))
    assert model.signature_.dtype.kind == "i"
    np.testing.assert_allclose(np.linalg.norm(model.eigenvectors_, axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(
        model.embedding_, model.eigenvectors_ * np.sqrt(np.abs(model.eigenvalues_))
    )


def test_explained_stress_matches_full_spectrum(D):
    model = ts.InPCA(n_components=10, metric="precomputed").fit(D)
    values = np.linalg.eigvalsh(plain_w(D))
    squares = np.sort(values**2)[::-1]
    expected = 1 - np.sqrt(1 - np.cumsum(squares)[:10] / squares.sum())
    np.testing.assert_allclose(model.explained_stress_, expected, rtol=0, atol=1e-7)


def test_explained_stress_all_axes_is_one_and_non_decreasing(D):
    stress = ts.InPCA(n_components=None, metric="precomputed").fit(D).explained_stress_
    assert stress[-1] == 1.0
    assert stress[0] > 0
    assert np.all(np.diff(stress) >= 0)
    # all non-zero axes (W has rank M − 1) already explain everything
    assert stress[-2] == 1.0


@pytest.mark.parametrize("k", [1, 4, 12])
def test_dense_and_partial_agree(D, k):
    dense = ts.InPCA(n_components=k, metric="precomputed", solver="dense").fit(D)
    partial = ts.InPCA(n_components=k, metric="precomputed", solver="partial", random_state=1).fit(
        D
    )
    assert (dense.solver_, partial.solver_) == ("dense", "partial")
    np.testing.assert_allclose(partial.eigenvalues_, dense.eigenvalues_, rtol=1e-8)
    np.testing.assert_array_equal(partial.signature_, dense.signature_)
    # The sign convention makes the embeddings themselves agree, not only up to sign.
    scale = np.abs(dense.embedding_).max()
    np.testing.assert_allclose(partial.embedding_, dense.embedding_, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(partial.explained_stress_, dense.explained_stress_, atol=1e-12)


def test_partial_independent_of_starting_vector(D):
    a = ts.InPCA(n_components=3, metric="precomputed", solver="partial", random_state=0).fit(D)
    b = ts.InPCA(n_components=3, metric="precomputed", solver="partial", random_state=7).fit(D)
    np.testing.assert_allclose(a.embedding_, b.embedding_, atol=1e-10)
    c = ts.InPCA(n_components=3, metric="precomputed", solver="partial", random_state=0).fit(D)
    np.testing.assert_array_equal(a.embedding_, c.embedding_)


def test_sign_convention(D):
    V = ts.InPCA(n_components=5, metric="precomputed").fit(D).eigenvectors_
    assert np.all(V[np.argmax(np.abs(V), axis=0), np.arange(5)] > 0)


@pytest.mark.parametrize(
    ("k", "solver"), [(2, "dense"), (2, "partial"), (7, "partial"), (None, "dense")]
)
def test_transform_of_fitted_rows_gives_embedding(D, k, solver):
    model = ts.InPCA(n_components=k, metric="precomputed", solver=solver).fit(D)
    scale = np.abs(model.embedding_).max()
    np.testing.assert_allclose(model.transform(D), model.embedding_, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(
        model.transform(D[5:9]), model.embedding_[5:9], rtol=0, atol=1e-9 * scale
    )


def test_fit_transform_returns_embedding(D):
    model = ts.InPCA(n_components=3, metric="precomputed")
    X = model.fit_transform(D)
    assert X is model.embedding_


def test_points_on_a_line_closed_form():
    x = np.array([0.0, 1.0, 3.0, 7.0, 8.5])
    D = (x[:, None] - x[None, :]) ** 2
    model = ts.InPCA(n_components=2, metric="precomputed").fit(D)
    centred = x - x.mean()
    assert model.eigenvalues_[0] == pytest.approx(np.sum(centred**2), rel=1e-12)
    np.testing.assert_array_equal(model.eigenvalues_[1:], 0.0)
    np.testing.assert_array_equal(model.signature_, [1, 0])
    # largest |entry| positive: the last point (8.5) is farthest from the mean
    np.testing.assert_allclose(model.embedding_[:, 0], centred, atol=1e-12)
    np.testing.assert_array_equal(model.embedding_[:, 1], 0.0)
    np.testing.assert_array_equal(model.explained_stress_, [1.0, 1.0])


def test_time_like_axis_closed_form():
    # D_ij = (a_i − a_j)² − (b_i − b_j)² ≥ 0, with a, b centred and orthogonal: W = a aᵀ − b bᵀ,
    # eigenvalues ‖a‖² = 20 and −‖b‖² = −1, the rest 0.
    a = np.array([-3.0, -1.0, 1.0, 3.0])
    b = np.array([0.5, -0.5, -0.5, 0.5])
    D = (a[:, None] - a[None, :]) ** 2 - (b[:, None] - b[None, :]) ** 2
    assert D.min() >= 0
    model = ts.InPCA(n_components=None, metric="precomputed").fit(D)
    np.testing.assert_allclose(model.eigenvalues_, [20.0, -1.0, 0.0, 0.0], atol=1e-13)
    np.testing.assert_array_equal(model.signature_, [1, -1, 0, 0])
    X = model.embedding_
    np.testing.assert_allclose(np.abs(X[:, 0]), np.abs(a), atol=1e-13)
    np.testing.assert_allclose(np.abs(X[:, 1]), np.abs(b), atol=1e-13)
    np.testing.assert_allclose(reconstructed(X, model.signature_), D, atol=1e-12)
    # 1 − sqrt(1 − 400/401) after the first axis
    assert model.explained_stress_[0] == pytest.approx(1 - np.sqrt(1 / 401), rel=1e-12)
    # out-of-sample on the null axes is 0, not a division by zero
    assert np.all(np.isfinite(model.transform(D)))
    np.testing.assert_array_equal(model.transform(D)[:, 2:], 0.0)


def test_out_of_sample_euclidean_points_land_at_their_distances():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(12, 2))
    new = rng.normal(size=(4, 2))
    D = np.sum((points[:, None] - points[None]) ** 2, axis=-1)
    d = np.sum((new[:, None] - points[None]) ** 2, axis=-1)
    model = ts.InPCA(n_components=2, metric="precomputed").fit(D)
    Y = model.transform(d)
    placed = np.sum((Y[:, None] - model.embedding_[None]) ** 2, axis=-1)
    np.testing.assert_allclose(placed, d, rtol=1e-10)


def test_n_components_equal_to_m_and_partial_fallback(D):
    full = ts.InPCA(n_components=30, metric="precomputed", solver="partial").fit(D)
    assert full.solver_ == "dense" and full.n_components_ == 30
    assert full.signature_[-1] == 0
    almost = ts.InPCA(n_components=29, metric="precomputed", solver="partial").fit(D)
    assert almost.solver_ == "dense"
    with pytest.raises(ValueError, match="exceeds the number of points M = 30"):
        ts.InPCA(n_components=31, metric="precomputed").fit(D)


def test_auto_solver_rule():
    assert choose_solver("auto", 100, 3) == "dense"
    assert choose_solver("auto", 300, 3) == "partial"
    assert choose_solver("auto", 300, 100) == "dense"
    assert choose_solver("dense", 5000, 3) == "dense"
    assert choose_solver("partial", 10, 3) == "partial"
    assert choose_solver("partial", 10, 9) == "dense"
    D = plain_pairwise(random_models(np.random.default_rng(1), (220, 2, 3)))
    assert ts.InPCA(metric="precomputed").fit(D).solver_ == "partial"


def test_identical_points_give_zero_embedding():
    D = np.zeros((6, 6))
    for solver in ("dense", "partial"):
        model = ts.InPCA(n_components=2, metric="precomputed", solver=solver).fit(D)
        np.testing.assert_array_equal(model.embedding_, 0.0)
        np.testing.assert_array_equal(model.signature_, 0)
        np.testing.assert_array_equal(model.explained_stress_, 1.0)
        np.testing.assert_array_equal(model.transform(D), 0.0)


def test_float32_and_tolerated_asymmetry(D):
    ref = ts.InPCA(n_components=3, metric="precomputed").fit(D)
    f32 = ts.InPCA(n_components=3, metric="precomputed").fit(D.astype(np.float32))
    np.testing.assert_allclose(f32.eigenvalues_, ref.eigenvalues_, rtol=1e-5)
    noisy = D + 1e-9 * np.triu(np.ones_like(D), 1)
    sym = 0.5 * (noisy + noisy.T)
    a = ts.InPCA(n_components=3, metric="precomputed").fit(noisy)
    b = ts.InPCA(n_components=3, metric="precomputed").fit(sym)
    np.testing.assert_allclose(a.embedding_, b.embedding_, atol=1e-13)


def test_centring_kernel_across_tiles():
    # 150 points: three 64-row tile blocks (an odd number, so one block pairs with itself)
    rng = np.random.default_rng(8)
    points = rng.normal(size=(150, 5))
    D = np.sum((points[:, None] - points[None]) ** 2, axis=-1)
    W, means, grand_mean, frobenius_sq = double_center(np.asfortranarray(D))
    np.testing.assert_allclose(W, plain_w(D), rtol=0, atol=1e-12 * np.abs(D).max())
    np.testing.assert_array_equal(W, W.T)
    np.testing.assert_allclose(means, D.mean(axis=0), rtol=1e-13)
    assert grand_mean == pytest.approx(D.mean(), rel=1e-13)
    assert frobenius_sq == pytest.approx(np.sum(plain_w(D) ** 2), rel=1e-12)


@pytest.mark.parametrize(
    ("i", "j", "value", "message"),
    [
        (140, 70, 1e3, r"not symmetric: D\[70, 140\]"),
        (149, 3, np.nan, r"non-finite value \(NaN\) at index \(149, 3\)"),
        (100, 100, 1.0, r"zero diagonal; D\[100, 100\]"),
        (65, 130, -1.0, r"negative distance \(-1\) at index \(65, 130\)"),
    ],
)
def test_validation_across_tiles(i, j, value, message):
    points = np.random.default_rng(9).normal(size=(150, 3))
    D = np.sum((points[:, None] - points[None]) ** 2, axis=-1)
    D[i, j] = value
    with pytest.raises(ValueError, match=message):
        ts.InPCA(metric="precomputed").fit(D)


# -- collections (pairwise distances computed inside) --------------------------------------------


@pytest.mark.parametrize("metric", ["bhattacharyya", "hellinger", "geodesic"])
def test_collection_matches_precomputed(metric):
    rng = np.random.default_rng(5)
    P = random_models(rng, (25, 5, 3), sharpness=2.0)
    P_new = random_models(rng, (4, 5, 3), sharpness=2.0)
    D = plain_pairwise(P, metric=metric)
    d = plain_pairwise(P_new, P, metric=metric)
    if metric != "bhattacharyya":  # classical MDS on the metric: D is the squared distance
        D, d = D**2, d**2
    model = ts.InPCA(n_components=4, metric=metric).fit(P)
    ref = ts.InPCA(n_components=4, metric="precomputed").fit(D)
    assert model.X_fit_ is P
    np.testing.assert_allclose(model.eigenvalues_, ref.eigenvalues_, rtol=1e-9)
    np.testing.assert_allclose(model.embedding_, ref.embedding_, atol=1e-9)
    np.testing.assert_allclose(model.transform(P_new), ref.transform(d), atol=1e-9)
    np.testing.assert_allclose(model.transform(P), model.embedding_, atol=1e-9)
    if metric == "hellinger":  # d_H² is half a squared chordal distance: W is PSD
        assert np.all(model.eigenvalues_ >= 0)


def test_refit_precomputed_forgets_collection():
    P = random_models(np.random.default_rng(6), (10, 3, 3))
    model = ts.InPCA(n_components=2).fit(P)
    assert hasattr(model, "X_fit_")
    model.set_params(metric="precomputed").fit(plain_pairwise(P))
    assert not hasattr(model, "X_fit_")


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(2, 12),
    n=st.integers(1, 5),
    c=st.integers(2, 5),
    sharpness=st.floats(0.1, 5.0),
    dtype=st.sampled_from([np.float32, np.float64]),
    metric=st.sampled_from(["bhattacharyya", "hellinger", "geodesic"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_full_rank_reproduces_distances_property(m, n, c, sharpness, dtype, metric, seed):
    P = random_models(np.random.default_rng(seed), (m, n, c), sharpness).astype(dtype)
    model = ts.InPCA(n_components=None, metric=metric).fit(P)
    D = plain_pairwise(P, metric=metric)
    if metric != "bhattacharyya":
        D = D**2
    np.testing.assert_allclose(
        reconstructed(model.embedding_, model.signature_),
        D,
        rtol=0,
        atol=1e-10 * max(D.max(), 1e-300),
    )
    assert model.explained_stress_[-1] == 1.0
    assert np.all(np.diff(model.explained_stress_) >= 0)


# -- validation ----------------------------------------------------------------------------------


def _spoil(D, i, j, value, symmetric=True):
    D = D.copy()
    D[i, j] = value
    if symmetric:
        D[j, i] = value
    return D


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda D: _spoil(D, 3, 7, D[3, 7] + 0.1, symmetric=False), r"not symmetric: D\[3, 7\]"),
        (lambda D: _spoil(D, 2, 5, -0.5), r"negative distance .* at index \(2, 5\)"),
        (lambda D: _spoil(D, 4, 4, 0.3), r"zero diagonal; D\[4, 4\]"),
        (lambda D: _spoil(D, 1, 6, np.nan), r"non-finite value \(NaN\) at index \(1, 6\)"),
        (lambda D: _spoil(D, 9, 0, np.inf), r"non-finite value \(inf\) at index \(0, 9\)"),
        (lambda D: D[:, :-1], r"square \(M, M\) .* shape \(30, 29\)"),
        (lambda D: D[0], r"2-D distance matrix, got shape \(30,\)"),
        (lambda D: D[:0, :0], "empty"),
        (lambda D: D.astype(str), "real numbers"),
    ],
)
def test_precomputed_validation(D, make, message):
    with pytest.raises(ValueError, match=message):
        ts.InPCA(metric="precomputed").fit(make(D))


def test_transform_validation(D):
    model = ts.InPCA(n_components=2, metric="precomputed").fit(D)
    with pytest.raises(ValueError, match=r"X has 29 features.*M = 30 fitted.*got shape \(2, 29\)"):
        model.transform(D[:2, :-1])
    with pytest.raises(ValueError, match=r"non-finite value \(NaN\) at index \(1, 2\)"):
        model.transform(_spoil(D, 1, 2, np.nan)[:3])
    with pytest.raises(ValueError, match=r"2-D"):
        model.transform(D[0])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_components": 0}, "n_components"),
        ({"n_components": 2.5}, "n_components"),
        ({"n_components": True}, "n_components"),
        (
            {"metric": "euclidean"},
            "'metric' parameter of InPCA must be a str among .* Got 'euclidean'",
        ),
        ({"solver": "arpack"}, "'solver' parameter of InPCA must be a str among .* Got 'arpack'"),
        ({"block_rows": 0}, "block_rows"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_parameter_validation(D, params, message):
    with pytest.raises(ValueError, match=message):
        ts.InPCA(**{"metric": "precomputed", **params}).fit(D)


def test_collection_validation_goes_through_pairwise():
    P = random_models(np.random.default_rng(2), (5, 3, 3))
    P[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        ts.InPCA(n_components=2).fit(P)


# -- scikit-learn conventions --------------------------------------------------------------------


def test_sklearn_conventions(D):
    model = ts.InPCA(n_components=2, metric="precomputed", solver="dense", random_state=3)
    assert model.get_params() == {
        "n_components": 2,
        "metric": "precomputed",
        "solver": "dense",
        "eps": 1e-9,
        "random_state": 3,
        "block_rows": None,
        "weights": None,
    }
    with pytest.raises(NotFittedError):
        model.transform(D)
    copy = clone(model.set_params(n_components=4))
    assert copy.get_params()["n_components"] == 4 and not hasattr(copy, "embedding_")
    model.fit(D)
    assert list(model.get_feature_names_out()) == [f"inpca{i}" for i in range(4)]
    assert clone(model).get_params() == model.get_params()
    # parameters are stored untouched; validation happens in fit
    lazy = ts.InPCA(n_components=-1, metric="nonsense", solver="?")
    assert lazy.n_components == -1 and lazy.metric == "nonsense"
    assert model.__sklearn_tags__().input_tags.pairwise
    assert not ts.InPCA().__sklearn_tags__().input_tags.pairwise


def test_set_output_pandas(D):
    frame = (
        ts.InPCA(n_components=2, metric="precomputed")
        .set_output(transform="pandas")
        .fit(D)
        .transform(D[:3])
    )
    assert list(frame.columns) == ["inpca0", "inpca1"] and frame.shape == (3, 2)


#: scikit-learn's own checks that must pass. The others it runs test the wording of its error
#: messages (complex, object, sparse, empty, 1-D input, negative values): ours name the argument
#: and the first bad index instead (DESIGN.md), so they are not required.
REQUIRED_SKLEARN_CHECKS = {
    "check_estimator_cloneable",
    "check_no_attributes_set_in_init",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_estimators_unfitted",
    "check_transformers_unfitted",
    "check_pipeline_consistency",
    "check_estimators_pickle",
    "check_transformer_general",
    "check_get_params_invariance",
    "check_set_params",
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_methods_subset_invariance",
    "check_methods_sample_order_invariance",
    "check_estimators_nan_inf",
    "check_readonly_memmap_input",
    "check_dict_unchanged",
    "check_parameters_default_constructible",
    "check_nonsquare_error",
    "check_fit_non_negative",
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_sklearn_estimator_checks_on_precomputed_input():
    from sklearn.utils.estimator_checks import check_estimator

    try:
        results = check_estimator(ts.InPCA(n_components=2, metric="precomputed"), on_fail=None)
    except TypeError:  # scikit-learn < 1.6 has no on_fail
        pytest.skip("scikit-learn too old for check_estimator(on_fail=None)")
    failed = {
        r["check_name"]: r["exception"]
        for r in results
        if r["status"] == "failed" and r["check_name"] in REQUIRED_SKLEARN_CHECKS
    }
    assert not failed, failed
    assert len({r["check_name"] for r in results} & REQUIRED_SKLEARN_CHECKS) >= 15
