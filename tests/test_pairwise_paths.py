"""Every code path of ``pairwise_distances``, forced on any machine, against the SPEC §3 formulas;
and the choice of path (`choose_pairwise_path`), a pure function of sizes and machine."""

import numpy as np
import pytest

from taskspace.geometry import pairwise as PW

EPS = 1e-9


def spec_distances(X, Y, metric, eps=EPS):
    """SPEC §3 written plainly, in float64: (M, N, C) × (M', N, C) -> (M, M')."""
    X, Y = (np.asarray(A, dtype=np.float64) for A in (X, Y))
    X, Y = X / X.sum(-1, keepdims=True), Y / Y.sum(-1, keepdims=True)
    if metric == "symmetric_kl":
        lx, ly = np.log(np.maximum(X, eps)), np.log(np.maximum(Y, eps))
        diff = X[:, None] - Y[None, :]
        return np.mean(0.5 * np.sum(diff * (lx[:, None] - ly[None, :]), -1), -1)
    bc = np.einsum("anc,bnc->abn", np.sqrt(X), np.sqrt(Y))
    if metric == "bhattacharyya":
        return -np.mean(np.log(np.maximum(bc, eps)), -1)
    if metric == "hellinger":
        return np.sqrt(np.maximum(np.mean(1.0 - bc, -1), 0.0))
    chord = np.linalg.norm(np.sqrt(X)[:, None] - np.sqrt(Y)[None, :], axis=-1)
    theta = 2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0))
    return np.sqrt(np.mean(theta**2, -1))


# (path, metric, C): every path with every metric it computes, at class counts it serves
# by default and at ones it reaches only when forced.
CASES = (
    [("symmetric_kl", "symmetric_kl", c) for c in (3, 40, 300)]
    + [("blocks", m, c) for m in ("bhattacharyya", "hellinger", "geodesic") for c in (3, 10, 32)]
    + [("rows", m, c) for m in ("bhattacharyya", "hellinger", "geodesic") for c in (10, 40, 300)]
    + [(g, "bhattacharyya", c) for g in ("gram_numba", "gram_blas") for c in (10, 40, 300)]
)


def _models(rng, shape, concentration):
    return rng.dirichlet(np.full(shape[-1], concentration), size=shape[:-1])


def _forced(X, Y, metric, path, precision="float64"):
    sums = PW._pairwise_sums_numba(X, Y, metric, EPS, None, False, precision, path=path)
    return PW.finish(sums, metric, X.shape[1], symmetric=Y is None)


@pytest.mark.parametrize(("path", "metric", "n_classes"), CASES)
def test_each_forced_path_computes_the_spec_formula(path, metric, n_classes):
    rng = np.random.default_rng(n_classes)
    X = _models(rng, (7, 33, n_classes), 0.4)
    Y = _models(rng, (5, 33, n_classes), 2.0)
    expected = spec_distances(X, X, metric)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(_forced(X, None, metric, path), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        _forced(X, Y, metric, path), spec_distances(X, Y, metric), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("path", ["gram_numba", "gram_blas", "rows", "blocks"])
def test_float32_mode_on_each_bhattacharyya_path(path):
    rng = np.random.default_rng(11)
    X = _models(rng, (6, 40, 30), 0.4).astype(np.float32)
    expected = spec_distances(X, X, "bhattacharyya")
    np.fill_diagonal(expected, 0.0)
    D = _forced(X, None, "bhattacharyya", path, precision="float32")
    np.testing.assert_allclose(D, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("path", "metric", "n_classes"),
    [
        ("blocks", "hellinger", 40),
        ("rows", "symmetric_kl", 10),
        ("gram_blas", "geodesic", 300),
        ("symmetric_kl", "bhattacharyya", 10),
        ("nope", "bhattacharyya", 10),
    ],
)
def test_a_path_that_cannot_compute_the_metric_is_refused(path, metric, n_classes):
    X = _models(np.random.default_rng(0), (3, 4, n_classes), 1.0)
    with pytest.raises(ValueError, match="does not compute"):
        _forced(X, None, metric, path)


def test_choice_covers_every_path_and_follows_the_documented_bounds():
    choose = PW.choose_pairwise_path
    big = 2**40
    seen = {
        choose("symmetric_kl", 1000, 10, 10, threads=2, memory=big),
        choose("geodesic", PW.ROWS_MIN_CLASSES - 1, 10, 10, threads=2, memory=big),
        choose("geodesic", PW.ROWS_MIN_CLASSES, 10, 10, threads=2, memory=big),
        choose("bhattacharyya", PW.GRAM_MIN_CLASSES, 10, 10, threads=2, memory=big),
        choose(
            "bhattacharyya", PW.GRAM_MIN_CLASSES, 10, 10, threads=2, memory=big, gram_kernel="blas"
        ),
    }
    assert seen == set(PW.PAIRWISE_PATHS)
    # Below GRAM_MIN_CLASSES the rows kernel; float32 takes the Gram path at any C ≥ 33.
    assert choose("bhattacharyya", PW.GRAM_MIN_CLASSES - 1, 10, 10, threads=2, memory=big) == "rows"
    assert (
        choose("bhattacharyya", PW.ROWS_MIN_CLASSES, 10, 10, "float32", threads=2, memory=big)
        == "gram_numba"
    )
    # Between GRAM_MIN and GRAM_ANY_SIZE classes: only while M·M' ≤ GRAM_SMALL_PAIRS.
    side = int(PW.GRAM_SMALL_PAIRS**0.5)
    c = PW.GRAM_ANY_SIZE_CLASSES - 1
    assert choose("bhattacharyya", c, side, side, threads=2, memory=big) == "gram_numba"
    assert choose("bhattacharyya", c, side + 1, side, threads=2, memory=big) == "rows"
    # From GRAM_ANY_SIZE classes on: while 3·threads M × M' float64 matrices fit the share.
    c = PW.GRAM_ANY_SIZE_CLASSES
    memory = int(3 * 4 * 30 * 30 * 8 / PW.GRAM_MEMORY_SHARE)
    assert choose("bhattacharyya", c, 30, 30, threads=4, memory=memory) == "gram_numba"
    assert choose("bhattacharyya", c, 31, 30, threads=4, memory=memory) == "rows"
    assert choose("bhattacharyya", c, 30, 30, threads=5, memory=memory) == "rows"
    assert choose("bhattacharyya", c, 31, 30, "float32", threads=4, memory=memory) == "rows"


def test_unforced_calls_take_the_chosen_path(monkeypatch):
    """``pairwise_distances`` runs what `choose_pairwise_path` names for this machine."""
    import taskspace as ts
    from taskspace.geometry import _pairwise_blas as BLAS

    taken = []
    for name in ("kl_sums", "gram_sums"):
        original = getattr(BLAS, name)
        monkeypatch.setattr(
            BLAS, name, lambda *a, _f=original, _n=name, **k: taken.append(_n) or _f(*a, **k)
        )
    for name in ("_blocks_sums", "_rows_sums"):
        original = getattr(PW, name)
        monkeypatch.setattr(
            PW, name, lambda *a, _f=original, _n=name, **k: taken.append(_n) or _f(*a, **k)
        )
    rng = np.random.default_rng(5)
    runs = {
        "blocks": ("hellinger", 10),
        "rows": ("hellinger", 40),
        "symmetric_kl": ("symmetric_kl", 10),
        "gram": ("bhattacharyya", 300),
    }
    names = {
        "blocks": "_blocks_sums",
        "rows": "_rows_sums",
        "symmetric_kl": "kl_sums",
        "gram": "gram_sums",
    }
    for key, (metric, c) in runs.items():
        taken.clear()
        ts.pairwise_distances(_models(rng, (4, 6, c), 1.0), metric=metric)
        assert taken == [names[key]], key
