"""Weighted InPCA and the explained distance (SPEC §10).

Checked against: the unweighted fit (uniform weights), copies of models (integer weights), the
direct ``‖D − D_k‖ / ‖D‖`` from the reconstructed distances, the fit without a model (weight 0),
and the formulas of the companion paper's code (LDD, grasp-lyrl/low-dimensional-deepnets,
``utils/embed.py``: ``explained_distance`` and ``weighted_MDS``), written out plainly below.
"""

import numpy as np
import pytest
import zarr
from scipy import linalg

from taskspace.geometry import InPCA, LandmarkInPCA, pairwise_distances
from taskspace.geometry._eigen import double_center, explained_distance
from taskspace.geometry.landmarks import reconstructed_distances
from tests.helpers import random_models

SOLVERS = ("dense", "partial", "out-of-core")


def random_D(m=40, seed=0):
    return pairwise_distances(random_models(np.random.default_rng(seed), (m, 30, 4), 2.0))


def digits_trajectories(lengths=(5, 9, 14), seed=0):
    """Real training trajectories: logistic regression (SGD) on scikit-learn's digits, recorded
    as predictions on 120 held-out probe images after every epoch; runs of different lengths."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import SGDClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    probe, train, y_train = X[:120], X[120:], y[120:]
    models, run_of = [], []
    for run, steps in enumerate(lengths):
        clf = SGDClassifier(
            loss="log_loss",
            alpha=1e-3,
            learning_rate="constant",
            eta0=0.01,
            random_state=seed + run,
        )
        rng = np.random.default_rng(seed + run)
        for _ in range(steps):
            order = rng.permutation(len(train))[:300]
            clf.partial_fit(train[order], y_train[order], classes=np.arange(10))
            P = clf.predict_proba(probe)
            models.append(P / P.sum(axis=1, keepdims=True))
            run_of.append(run)
    return np.array(models), np.array(run_of)


@pytest.fixture(scope="module")
def D():
    return random_D()


@pytest.fixture(scope="module")
def D_real():
    P, run_of = digits_trajectories()
    return pairwise_distances(P), run_of


def fit(D, k, solver="dense", weights=None):
    if solver == "out-of-core":
        D = zarr.array(D, chunks=(16, 16))  # read in blocks of rows, as from a store
    return InPCA(
        n_components=k, metric="precomputed", solver=solver, random_state=0, weights=weights
    ).fit(D)


def direct_explained_distance(D, X, sig, w=None):
    """``1 − ‖D − D_k‖_w / ‖D‖_w`` from the reconstructed D_k, k = 1..len(sig)."""
    w = np.ones(len(D)) if w is None else w
    ww = w[:, None] * w[None, :]
    norm = np.sqrt(np.sum(ww * D * D))
    return np.array(
        [
            1.0 - np.sqrt(np.sum(ww * (D - reconstructed_distances(X[:, :k], sig[:k])) ** 2)) / norm
            for k in range(1, len(sig) + 1)
        ]
    )


# ------------------------------------------------------------------------------ uniform weights
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_uniform_weights_give_the_unweighted_fit(D, solver, scale):
    ref = fit(D, 4, solver)
    got = fit(D, 4, solver, weights=np.full(len(D), scale))
    for name in (
        "embedding_",
        "eigenvalues_",
        "eigenvectors_",
        "explained_stress_",
        "explained_distance_",
        "distance_means_",
    ):
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got.weights_, np.ones(len(D)))
    np.testing.assert_allclose(
        got.transform(D[:3] + 0.01), ref.transform(D[:3] + 0.01), rtol=0, atol=1e-12
    )


def test_weighted_centring_with_ones_is_the_plain_centring(D):
    """The weighted code path itself, fed all-ones weights, reproduces W to 1e-12."""
    W, means, g, frob = double_center(D)
    Ww, means_w, g_w, frob_w = double_center(D, np.ones(len(D)))
    assert np.max(np.abs(Ww - W)) <= 1e-12 * np.max(np.abs(W))
    np.testing.assert_allclose(means_w, means, rtol=1e-12)
    assert g_w == pytest.approx(g, rel=1e-12) and frob_w == pytest.approx(frob, rel=1e-12)
    values, vectors = linalg.eigh(W)
    np.testing.assert_allclose(
        explained_distance(values[::-1], vectors[:, ::-1], np.diag(W).copy(), frob, np.ones(40)),
        explained_distance(values[::-1], vectors[:, ::-1], np.diag(W).copy(), frob),
        atol=1e-12,
    )


# ------------------------------------------------------------------ integer weights = copies
@pytest.mark.parametrize("solver", SOLVERS)
def test_integer_weights_equal_copies(D, solver):
    m, k = len(D), 5
    copies = np.random.default_rng(1).integers(1, 4, m)
    idx = np.repeat(np.arange(m), copies)
    dup = fit(D[np.ix_(idx, idx)], k, "dense")
    got = fit(D, k, solver, weights=copies)
    first = np.searchsorted(idx, np.arange(m))  # the first copy of every model
    scale = np.sqrt(np.abs(dup.eigenvalues_[0]))
    np.testing.assert_allclose(got.embedding_, dup.embedding_[first], atol=1e-9 * scale)
    np.testing.assert_array_equal(got.signature_, dup.signature_)
    # Eigenvalues grow with the number of points: M' copies vs M mean-1 weights.
    np.testing.assert_allclose(got.eigenvalues_ * len(idx) / m, dup.eigenvalues_, rtol=1e-9)
    np.testing.assert_allclose(got.explained_stress_, dup.explained_stress_, atol=1e-9)
    np.testing.assert_allclose(got.explained_distance_, dup.explained_distance_, atol=1e-9)
    new = D[:4] * 0.7 + 0.05  # out of sample: same placement
    np.testing.assert_allclose(got.transform(new), dup.transform(new[:, idx]), atol=1e-9 * scale)


def test_landmark_weights_equal_copies(D):
    m, k = len(D), 3
    copies = np.random.default_rng(2).integers(1, 4, m)
    idx = np.repeat(np.arange(m), copies)
    dup = fit(D[np.ix_(idx, idx)], k)
    est = LandmarkInPCA(
        n_components=k, n_landmarks=m, metric="precomputed", solver="dense", weights=copies
    ).fit(D)
    first = np.searchsorted(idx, np.arange(m))
    np.testing.assert_allclose(
        est.embedding_, dup.embedding_[first], atol=1e-9 * np.sqrt(dup.eigenvalues_[0])
    )
    np.testing.assert_allclose(est.explained_distance_, dup.explained_distance_, atol=1e-9)


def test_zero_weight_is_the_fit_without_the_model_then_placed(D):
    m, k, out = len(D), 4, 7
    keep = np.delete(np.arange(m), out)
    w = np.random.default_rng(3).uniform(0.5, 2.0, m)
    w[out] = 0.0
    ref = fit(D[np.ix_(keep, keep)], k, weights=w[keep])
    scale = np.sqrt(np.abs(ref.eigenvalues_[0]))
    for solver in SOLVERS:
        got = fit(D, k, solver, weights=w)
        np.testing.assert_allclose(got.embedding_[keep], ref.embedding_, atol=1e-9 * scale)
        np.testing.assert_allclose(
            got.embedding_[out], ref.transform(D[out : out + 1, keep])[0], atol=1e-9 * scale
        )
        np.testing.assert_allclose(got.explained_distance_, ref.explained_distance_, atol=1e-9)


# ------------------------------------------------------------------ explained distance
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("which", ["random", "real"])
def test_explained_distance_matches_direct(D, D_real, weighted, which):
    Dm = D if which == "random" else D_real[0]
    m = len(Dm)
    w = np.random.default_rng(4).uniform(0.2, 3.0, m) if weighted else None
    model = fit(Dm, m, "dense", weights=w)  # all axes: the curve ends at 1
    wn = None if w is None else w * m / w.sum()
    direct = direct_explained_distance(Dm, model.embedding_, model.signature_, wn)
    # The closed form is a difference of squared norms: it resolves residuals down to
    # sqrt(32 sqrt(M) ε) ≈ 2e-7 of ‖D‖ (smaller ones are reported as exactly 0).
    resolution = np.sqrt(32 * np.sqrt(m) * np.finfo(float).eps)
    np.testing.assert_allclose(model.explained_distance_, direct, atol=1e-9 + resolution)
    coarse = direct < 1.0 - 10 * resolution
    assert coarse.sum() >= 5
    np.testing.assert_allclose(model.explained_distance_[coarse], direct[coarse], atol=1e-9)
    assert model.explained_distance_[-1] == 1.0
    for solver in ("partial", "out-of-core"):
        np.testing.assert_allclose(
            fit(Dm, 6, solver, weights=w).explained_distance_, direct[:6], atol=1e-9
        )


def test_explained_distance_closed_form_on_points_on_a_line():
    """Points on a line with D = squared distances: one axis reproduces D exactly."""
    x = np.array([0.0, 1.0, 3.0, 7.0, 8.0])
    D = (x[:, None] - x[None, :]) ** 2
    model = fit(D, 2)
    assert model.explained_distance_[0] == pytest.approx(1.0, abs=1e-12)
    # Two clusters far apart, weighted: still exact on one axis, and unchanged by the weights.
    np.testing.assert_allclose(
        fit(D, 2, weights=[5, 1, 1, 1, 2]).explained_distance_[0], 1.0, atol=1e-12
    )


# ---------------------------------------------------------------------- LDD's formulas
def ldd_explained_distance(es, vs, diag, fn):
    """LDD's ``explained_distance(r)``, written plainly: the residual ``‖D − D_i‖ / ‖D‖`` for
    i = 0..len(es)−1 axes, from all eigenpairs (es, vs) of W, ``diag(W)`` and ``fn = ‖W‖_F``."""
    order = np.argsort(np.abs(es))[::-1]
    es, vs = es[order], vs[:, order]
    n, trb = len(diag), np.sum(diag)
    dfnorm = 2 * trb**2 + 2 * n * np.linalg.norm(diag) ** 2 + 4 * fn**2
    out = []
    for i in range(len(es)):
        t1 = 2 * (trb - es[:i].sum()) ** 2
        bk = ((vs[:, :i] ** 2) * es[:i]).sum(-1)
        t2 = 2 * n * np.linalg.norm(diag - bk) ** 2
        t3 = 4 * (fn**2 - (es[:i] ** 2).sum())
        out.append(np.sqrt((t1 + t2 + t3) / dfnorm))
    return np.array(out)


def ldd_weighted_mds(D, weight, ne):
    """LDD's ``weighted_MDS(w, weight, ne)``, written plainly (weights summing to 1).

    LDD calls a symmetric solver on ``W diag(weight)``, which is not symmetric; the formula
    means its eigenvectors, taken here from the general eigen-decomposition."""
    dmean = (D * weight).sum(1, keepdims=True)
    w = D - dmean
    w = w - (w * weight[:, None]).sum(0)
    w0 = -0.5 * w
    e, v = linalg.eig(w0 * weight[None, :])
    order = np.argsort(np.abs(e))[::-1][:ne]
    e, v = e[order].real, v[:, order].real
    scaling = np.linalg.norm(v * np.sqrt(weight[:, None]), axis=0, keepdims=True)
    return v * np.sqrt(np.abs(e)) / scaling, e


@pytest.mark.parametrize("which", ["random", "real"])
def test_explained_distance_matches_ldd(D, D_real, which):
    Dm = D if which == "random" else D_real[0]
    W, _, _, frob = double_center(Dm)
    diag = np.diag(W).copy()
    es, vs = linalg.eigh(W)
    theirs = ldd_explained_distance(es, vs, diag, np.sqrt(frob))
    ours = fit(Dm, 8, "dense").explained_distance_
    # LDD's entry i is the residual with i axes (i = 0: none); ours is one minus it, k = i.
    np.testing.assert_allclose(ours, 1.0 - theirs[1:9], atol=1e-9)


@pytest.mark.parametrize("which", ["random", "real"])
def test_weighted_embedding_matches_ldd(D, D_real, which):
    Dm = D if which == "random" else D_real[0]
    m, ne = len(Dm), 4
    weight = np.random.default_rng(5).uniform(0.2, 3.0, m)
    theirs, their_values = ldd_weighted_mds(Dm, weight / weight.sum(), ne)
    ours = fit(Dm, ne, "dense", weights=weight)
    # Same axes up to sign; their eigenvalues are ours over M (weights summing to 1, not M).
    signs = np.sign(np.sum(ours.embedding_ * theirs, axis=0))
    scale = np.sqrt(np.abs(ours.eigenvalues_[0]))
    np.testing.assert_allclose(ours.embedding_, theirs * signs, atol=1e-8 * scale)
    np.testing.assert_allclose(ours.eigenvalues_ / m, their_values, rtol=1e-9)


def test_one_weight_per_run_balances_runs(D_real):
    """Weights 1/records per run: a run's share of the weight no longer grows with its length;
    the fit equals that of the runs' models with each run repeated to a common length."""
    Dm, run_of = D_real
    counts = np.bincount(run_of)
    w = 1.0 / counts[run_of]
    total = np.lcm.reduce(counts)
    copies = (total // counts)[run_of]  # every run `total` records in all
    idx = np.repeat(np.arange(len(Dm)), copies)
    dup = fit(Dm[np.ix_(idx, idx)], 3)
    got = fit(Dm, 3, weights=w)
    first = np.searchsorted(idx, np.arange(len(Dm)))
    np.testing.assert_allclose(
        got.embedding_, dup.embedding_[first], atol=1e-9 * np.sqrt(dup.eigenvalues_[0])
    )


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.ones(39), r"shape \(M,\) = \(40,\)"),
        (np.ones((40, 1)), "shape"),
        (np.r_[np.ones(39), np.nan], r"non-finite weight \(NaN|non-finite weight \(nan"),
        (np.r_[np.ones(5), -1.0, np.ones(34)], r"negative weight \(-1\) at index 5"),
        (np.zeros(40), "sum to 0"),
        (np.array(["a"] * 40), "real numbers"),
    ],
)
@pytest.mark.parametrize("solver", ["dense", "out-of-core"])
def test_bad_weights(D, weights, message, solver):
    with pytest.raises(ValueError, match=message):
        fit(D, 3, solver, weights=weights)
    if solver == "dense":
        with pytest.raises(ValueError, match=message):
            LandmarkInPCA(
                n_components=3, n_landmarks=10, metric="precomputed", weights=weights
            ).fit(D)


def test_landmarks_all_of_weight_zero(D):
    w = np.ones(len(D))
    est = LandmarkInPCA(n_components=2, n_landmarks=5, metric="precomputed", rule="farthest")
    landmarks = est.fit(D).landmarks_
    w[landmarks] = 0.0
    with pytest.raises(ValueError, match="every landmark has weight 0"):
        est.set_params(weights=w).fit(D)


# ------------------------------------------------------- the low-dimension analysis and config
@pytest.mark.slow
def test_low_dimension_reports_distance_and_run_weighting(tmp_path):
    from taskspace.geometry.weights import group_weights
    from taskspace.study.analyses import run_analyses
    from tests.test_analyses import build_store

    store = build_store(tmp_path / "store")  # fine-tuning runs are shorter
    D, records = store.distance_matrix(), store.runs()
    results = {
        w: run_analyses(store, names=["low_dimension"], n_boot=5, weighting=w)[0]
        for w in ("model", "run")
    }
    for weighting, weights in (("model", None), ("run", group_weights(records["run_id"]))):
        res = results[weighting]
        ref = InPCA(n_components=10, metric="precomputed", random_state=0, weights=weights).fit(D)
        np.testing.assert_allclose(res.table["explained distance"], ref.explained_distance_)
        np.testing.assert_allclose(res.table["explained stress"], ref.explained_stress_)
        assert res.summary["weighting"] == weighting
        assert res.summary["distance_3"] == pytest.approx(ref.explained_distance_[2])
        assert res.figure.subtitle == f"each {weighting} weighted equally"
        assert "explained distance" in res.finding.details
        assert res.result.weighting == weighting
    assert not np.allclose(
        results["run"].table["explained distance"], results["model"].table["explained distance"]
    )
    with pytest.raises(ValueError, match="weighting must be 'model' or 'run'"):
        run_analyses(store, names=["low_dimension"], weighting="method")


def test_study_config_checks_the_weighting():
    import tomllib
    from importlib.resources import files

    from taskspace.study import parse_study

    raw = tomllib.loads(
        files("taskspace.study.builtin").joinpath("digits-demo.toml").read_text(encoding="utf-8")
    )
    raw["analyses"] = {"options": {"low_dimension": {"weighting": "run"}}}
    assert parse_study(raw).analyses.options["low_dimension"]["weighting"] == "run"
    raw["analyses"] = {"options": {"low_dimension": {"weighting": "runs"}}}
    with pytest.raises(ValueError, match=r"analyses.options.*weighting.*'model', 'run'.*'runs'"):
        parse_study(raw)


def test_group_weights():
    from taskspace.geometry.weights import group_weights

    w = group_weights(["a", "b", "a", "c", "a", "b"])
    np.testing.assert_allclose(w, [1 / 9, 1 / 6, 1 / 9, 1 / 3, 1 / 9, 1 / 6])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        group_weights([])
