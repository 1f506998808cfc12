"""The task-level bootstrap of findings 2 and 3 (issue 30) on constructed data with a known answer:
a planted ρ found at the rate the power simulation predicts and none under the null, the Mantel
bootstrap without self-pairs covering a planted r, the vectorised design equal to its dict
reference, d_traj computed once per task equal to `compare_trajectories`, and the figure of many
tasks."""

import itertools

import numpy as np
import pytest

from taskspace import Store
from taskspace.data.hierarchy import ClassHierarchy
from taskspace.study import power
from taskspace.study.analyses import stats

FASHION = ClassHierarchy.for_dataset("fashion-mnist")
NAMES = list(FASHION.class_names)
#: The reference study v3's design of finding 2: 45 two-class and 30 three-class tasks.
V3_SIZES = (45, 30)


def _wilson_se(p: float, n: int) -> float:
    return float(np.sqrt(max(p * (1 - p), 1e-4) / n))


def _verdicts(rho: float, n_sims: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The verdict of `diversity_correlation` and its permutation p on ``n_sims`` simulated
    designs of finding 2 (`power.planted_spearman`, sizes 2 and 3)."""
    from taskspace.study.analyses.progress_other_tasks import diversity_correlation

    rng = np.random.default_rng(seed)
    verdicts, p = [], []
    for _ in range(n_sims):
        x, y, g = power.planted_spearman(rng, rho, V3_SIZES)
        boot_seed = int(rng.integers(2**31))
        pooled, _ = diversity_correlation(x, y, g + 2, n_boot=200, n_perm=199, seed=boot_seed)
        verdicts.append(stats.verdict(pooled.value, pooled.interval, pooled.p_value))
        p.append(pooled.p_value)
    return np.array(verdicts), np.array(p)


def test_planted_rho_agrees_at_the_predicted_rate_and_not_under_the_null():
    """A planted ρ = 0.3 over 45 + 30 tasks: the verdict "agrees" needs p < α *and* the 95%
    interval over tasks above 0. The interval is the binding condition, a one-sided test at
    about α/2, so the rate of "agrees" is the power `power.spearman_power` predicts at α/2
    (0.72 for this design, against 0.81 for p < α alone), within the Monte-Carlo error of both
    simulations (3 standard errors). Under ρ = 0 it agrees (or disagrees) at most at about α/2."""
    n, n_power = 150, 200
    verdicts, p = _verdicts(0.3, n, seed=1)
    agrees = float(np.mean(verdicts == "agrees"))
    predicted = power.spearman_power(
        0.3, V3_SIZES, alpha=stats.ALPHA / 2, n_sims=n_power, n_perm=299
    )
    se = np.hypot(_wilson_se(predicted.power, n_power), _wilson_se(predicted.power, n))
    assert abs(agrees - predicted.power) < 3 * se, (agrees, predicted)
    assert agrees <= np.mean(p < stats.ALPHA)  # "agrees" always needs the permutation test
    null, _ = _verdicts(0.0, 100, seed=2)
    bound = stats.ALPHA / 2 + 3 * _wilson_se(stats.ALPHA / 2, 100)
    assert np.mean(null == "agrees") <= bound and np.mean(null == "disagrees") <= bound


def test_bootstrap_resamples_within_sizes_and_matches_spearman_test():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    x, y, g = power.planted_spearman(rng, 0.5, (8, 6))
    picks = stats.resample_within(g, 50, seed=4)
    assert (g[picks] == g).all()  # every draw stays in its stratum
    pooled, within = stats.stratified_spearman_resamples(x, y, g, picks)
    for b in range(0, 50, 7):
        p = picks[b]
        expected = stats.spearman_test(x[p], y[p], strata=g, n_perm=0).statistic
        assert pooled[b] == pytest.approx(expected, abs=1e-12)
        at = g == 1
        assert within[1][b] == pytest.approx(spearmanr(x[p][at], y[p][at])[0], abs=1e-12)


def _fashion_pair_distances() -> np.ndarray:
    from taskspace.study.analyses.tree import wordnet_task_distances

    class _Store:
        hierarchy = FASHION.to_dict()
        class_names = NAMES

    pairs = {f"t{i}": list(p) for i, p in enumerate(itertools.combinations(range(10), 2))}
    return wordnet_task_distances(_Store, pairs)


def test_mantel_bootstrap_leaves_out_self_pairs():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(5)
    W = _fashion_pair_distances()[:12, :12]
    T = power.planted_task_distances(W, 1.0, rng)
    picks = stats.resample_within(np.zeros(12, dtype=int), 20, seed=6)
    picks[0] = np.arange(12)  # no repeat: the Mantel statistic itself
    boot = stats.mantel_resamples(T, W, picks)
    assert boot[0] == pytest.approx(stats.mantel(T, W, n_perm=0).statistic, abs=1e-12)
    for b in range(1, 20):
        pairs = [(p, q) for p, q in itertools.combinations(picks[b], 2) if p != q]
        expected = spearmanr([T[p, q] for p, q in pairs], [W[p, q] for p, q in pairs])[0]
        assert boot[b] == pytest.approx(expected, abs=1e-12)


def test_mantel_bootstrap_interval_covers_the_planted_r():
    """45 two-class tasks whose measured distances are WordNet's plus task effects and pair
    noise (`power.planted_task_distances`): the planted r is the mean Mantel r of the model.
    The interval over tasks covers it in nearly every simulated study (it is conservative here,
    where the 45 tasks are all the pairs there are), and its resamples keep every task's
    distances as measured: the percentile interval of a planted r near 0.46 lies around it."""
    rng = np.random.default_rng(7)
    W = _fashion_pair_distances()
    planted = np.mean(
        [
            stats.mantel(power.planted_task_distances(W, 1.5, rng), W, n_perm=0).statistic
            for _ in range(200)
        ]
    )
    covered = []
    for k in range(30):
        T = power.planted_task_distances(W, 1.5, rng)
        boot = stats.mantel_resamples(T, W, stats.resample_within(np.zeros(45, int), 100, seed=k))
        lo, hi = stats.percentile_interval(boot)
        covered.append(lo <= planted <= hi)
    assert 0.3 < planted < 0.6 and np.mean(covered) >= 0.85, (planted, np.mean(covered))


def _reference_summary(tasks, end, pick, diversity):
    """The dict version of `transfer.summarise` (before it was vectorised), as the reference."""
    names = list(tasks)
    size = np.array([len(tasks[a]) for a in names])

    def nanmean(values):
        values = np.asarray(values, dtype=float)
        return float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else np.nan

    disjoint = {}
    for a in names:
        free = [b for b in names if b != a and not set(tasks[a]) & set(tasks[b])]
        same = [b for b in free if len(tasks[b]) == len(tasks[a])]
        disjoint[a] = same or free or [b for b in names if b != a]
    mean = {(a, b): np.mean([end[r][b] for r in pick[a]]) for a in names for b in names}
    rel = {(a, b): mean[a, b] / mean[b, b] if mean[b, b] > 0 else np.nan for a, b in mean}
    transfer = np.array([nanmean([rel[a, b] for b in disjoint[a]]) for a in names])
    sizes = [k for k in sorted(set(size.tolist())) if (size == k).sum() >= 3]
    within = {k: stats.spearman(diversity[size == k], transfer[size == k]) for k in sizes}
    pooled = stats.spearman_test(diversity, transfer, strata=size, n_perm=0).statistic
    others = nanmean([rel[a, b] for a in names for b in names if a != b])
    return mean, rel, transfer, within, pooled if sizes else np.nan, others


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_summarise_equals_the_dict_reference(seed):
    from taskspace.study.analyses.transfer import summarise, transfer_design

    rng = np.random.default_rng(seed)
    chosen = [tuple(rng.choice(10, 2, replace=False)) for _ in range(5)]
    chosen += [tuple(rng.choice(10, 3, replace=False)) for _ in range(4)]
    tasks = {f"t{i}": tuple(sorted(int(c) for c in t)) for i, t in enumerate(chosen)}
    names = list(tasks)
    rows, run_ids = [], []
    for a in names:
        k = int(rng.integers(1, 4))
        rows.append(np.arange(len(run_ids), len(run_ids) + k))
        run_ids += [f"{a}-s{s}" for s in range(k)]
    E = rng.uniform(0, 1, (len(run_ids), len(names)))
    E[rows[0], 0] = 0.0  # task t0 never moves on itself: its column's relative progress is NaN
    diversity = rng.integers(1, 5, len(names)).astype(float)
    design = transfer_design(tasks, E, tuple(rows), diversity)
    pick = [rng.choice(r, r.size) for r in rows]  # a resample of seeds, with repeats
    got = summarise(design, pick)
    end = {rid: dict(zip(names, E[i], strict=True)) for i, rid in enumerate(run_ids)}
    by_name = {a: [run_ids[i] for i in p] for a, p in zip(names, pick, strict=True)}
    mean, rel, transfer, within, pooled, others = _reference_summary(tasks, end, by_name, diversity)
    index = [(a, b) for a in names for b in names]
    np.testing.assert_allclose(got.mean.ravel(), [mean[k] for k in index], rtol=1e-12)
    np.testing.assert_allclose(got.relative.ravel(), [rel[k] for k in index], rtol=1e-12)
    np.testing.assert_allclose(got.transfer, transfer, rtol=1e-12)
    assert got.within.keys() == within.keys()
    np.testing.assert_allclose(list(got.within.values()), list(within.values()), rtol=1e-12)
    np.testing.assert_allclose([got.pooled, got.others], [pooled, others], rtol=1e-12)


def _pair_store(path, n_tasks: int, seeds=(0, 1), steps=(0, 10, 100)) -> Store:
    """``n_tasks`` two-class tasks (the first pairs of Fashion-MNIST's classes in order), each
    learning its own classes fully and the others partly, by a share that varies by task."""
    labels = np.repeat(np.arange(10), 4)
    store = Store.create(path, labels, NAMES, hierarchy=FASHION.to_dict())
    truth = np.eye(10)[labels]
    t = np.log1p(steps) / np.log1p(steps[-1])
    for i, classes in enumerate(itertools.islice(itertools.combinations(range(10), 2), n_tasks)):
        w = np.where(np.isin(labels, classes), 1.0, 0.2 + 0.05 * (i % 7))[:, None]
        for seed in seeds:
            noise = np.random.default_rng([i, seed]).normal(0, 0.3, truth.shape)
            logits = t[:, None, None] * (4 * w * truth + noise)
            P = np.exp(logits - logits.max(-1, keepdims=True))
            run = store.add_run(
                task="+".join(NAMES[c] for c in classes),
                classes=[NAMES[c] for c in classes],
                method="supervised",
                seed=seed,
            )
            store.append(run, P / P.sum(-1, keepdims=True), list(steps))
    return store


def test_trajectory_distances_equal_compare_trajectories(tmp_path):
    from taskspace import average, bhattacharyya, compare_trajectories
    from taskspace.study.analyses._common import run_table
    from taskspace.study.analyses.tree import task_distances

    store = _pair_store(tmp_path / "s", 4, steps=(0, 2, 10, 40, 100))
    runs = run_table(store)
    ids = [list(part["run_id"]) for _, part in runs.groupby("task", sort=False)]
    D_end, D_traj = task_distances(store, ids)
    trajs = [[store.trajectory(r).predictions for r in task] for task in ids]
    for i, j in itertools.combinations(range(4), 2):
        expected = compare_trajectories(trajs[i], trajs[j], store.labels).mean
        assert D_traj[i, j] == D_traj[j, i] == pytest.approx(expected, rel=1e-10)
        ends = [average(np.stack([P[-1] for P in trajs[k]])) for k in (i, j)]
        assert D_end[i, j] == pytest.approx(float(bhattacharyya(*ends)), rel=1e-10)
    assert (np.diag(D_traj) == 0).all() and (np.diag(D_end) == 0).all()


@pytest.mark.parametrize("n_tasks", [12, 13])
def test_figure_switches_to_the_scatter_above_twelve_tasks(tmp_path, n_tasks):
    from taskspace.study.analyses import progress_on_other_tasks

    result = progress_on_other_tasks(_pair_store(tmp_path / "s", n_tasks), n_boot=20, n_perm=99)
    figure = result.figure
    if n_tasks <= 12:
        assert len(figure.panels) == 1 + n_tasks and result.result.curves is not None
    else:
        from tests.test_report import draw_strict

        assert result.result.curves is None  # no curves computed that no figure draws
        heat, scatter = figure.panels
        assert heat.items[0].text_format is None and heat.items[0].z.shape == (13, 13)
        assert [s.name for s in scatter.series] == ["2 classes"]
        assert all(s.mode == "markers" for s in scatter.series)
        assert sum(s.x.size for s in scatter.series) == n_tasks
        assert "stratified ρ = " in scatter.title
        # the small multiples are drawn by tests/test_report.py; this is the new drawing
        interactive, static = draw_strict(figure)
        assert [t.mode for t in interactive.data if t.type == "scatter"] == ["markers"]
        (drawn,) = [ax for ax in static.axes if ax.get_title().startswith("stratified ρ")]
        assert len(drawn.lines) == 1 and drawn.lines[0].get_linestyle() == "None"
