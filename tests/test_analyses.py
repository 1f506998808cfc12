"""The six analyses on a small synthetic store (no network is trained: trajectories are softmaxes
of logits moving from noise towards the truth), their tables, findings and not-applicable paths."""

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskspace import Store
from taskspace.data.hierarchy import ClassHierarchy
from taskspace.study.analyses.figure import Figure

FASHION = ClassHierarchy.for_dataset("fashion-mnist")
TASKS = {
    "all": list(FASHION.class_names),
    "upper_body": ["T-shirt/top", "Pullover", "Dress", "Coat", "Shirt"],
    "footwear": ["Sandal", "Sneaker", "Ankle boot"],
    "trouser_bag": ["Trouser", "Bag"],
}
STEPS = [0, 1, 2, 5, 10, 20, 50, 100]
N_PER_CLASS = 6


def _trajectory(rng, labels, classes, method, seed_noise, steps=STEPS, start_noise=None):
    N, C = labels.size, len(FASHION.class_names)
    truth = np.eye(C)[labels]
    in_task = np.isin(labels, classes)
    # Samples of the task's classes are learnt fully; others partially (transfer).
    weight = np.where(in_task, 1.0, 0.35)[:, None]
    noise0 = start_noise if start_noise is not None else rng.standard_normal((N, C))
    detour = rng.standard_normal((N, C)) if method == "protonet" else np.zeros((N, C))
    out = []
    for step in steps:
        t = np.log1p(step) / np.log1p(steps[-1])
        logits = (1 - t) * noise0 + 6 * t * weight * truth + 3 * t * (1 - t) * detour
        logits += 0.1 * seed_noise.standard_normal((N, C))
        P = np.exp(logits - logits.max(axis=1, keepdims=True))
        out.append(P / P.sum(axis=1, keepdims=True))
    return np.array(out), noise0


def _add(store, P, labels, steps=STEPS, **meta):
    run = store.add_run(**meta)
    acc = (P.argmax(-1) == labels).mean(axis=1)
    store.append(run, P, list(steps), metrics={"accuracy": list(acc), "loss": list(1 - acc)})
    return run


def build_store(
    path, methods=("supervised", "protonet", "simclr", "finetune"), hierarchy=True, seeds=(0, 1)
) -> Store:
    """A small store: 4 tasks × 2 seeds supervised, protonet on upper_body, simclr on two
    subsets, and fine-tuning from the all-classes run at two pre-training steps."""
    labels = np.repeat(np.arange(10), N_PER_CLASS)
    store = Store.create(
        path, labels, FASHION.class_names, hierarchy=FASHION.to_dict() if hierarchy else None
    )
    rng = np.random.default_rng(0)
    idx = {c: i for i, c in enumerate(FASHION.class_names)}
    parents = {}
    for seed in seeds:
        for task, classes in TASKS.items():
            cls = [idx[c] for c in classes]
            if "supervised" in methods:
                P, _ = _trajectory(rng, labels, cls, "supervised", np.random.default_rng(seed))
                run = _add(
                    store,
                    P,
                    labels,
                    task=task,
                    classes=classes,
                    method="supervised",
                    seed=seed,
                    network="synthetic",
                )
                if task == "all":
                    parents[seed] = (run, P)
        if "protonet" in methods:
            cls = [idx[c] for c in TASKS["upper_body"]]
            P, _ = _trajectory(rng, labels, cls, "protonet", np.random.default_rng(seed + 10))
            _add(
                store,
                P,
                labels,
                task="upper_body",
                classes=TASKS["upper_body"],
                method="protonet",
                seed=seed,
            )
        if "simclr" in methods:
            for task in ("upper_body", "footwear"):
                cls = [idx[c] for c in TASKS[task]]
                P, _ = _trajectory(rng, labels, cls, "simclr", np.random.default_rng(seed + 20))
                _add(store, P, labels, task=task, classes=TASKS[task], method="simclr", seed=seed)
    if "finetune" in methods and parents:
        for seed, (parent, Pp) in parents.items():
            for record, parent_step in ((2, 2), (4, 10), (6, 50)):
                start = np.log(Pp[record])
                cls = [idx[c] for c in TASKS["footwear"]]
                P, _ = _trajectory(
                    rng,
                    labels,
                    cls,
                    "finetune",
                    np.random.default_rng(seed + 30),
                    steps=[0, 5, 20, 50],
                    start_noise=start,
                )
                _add(
                    store,
                    P,
                    labels,
                    steps=[0, 5, 20, 50],
                    task="footwear",
                    classes=TASKS["footwear"],
                    method="finetune",
                    seed=seed,
                    parent_run=parent,
                    parent_step=parent_step,
                )
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("study") / "store")


@pytest.fixture(scope="module")
def results(store):
    from taskspace.study.analyses import run_analyses

    return {r.name: r for r in run_analyses(store, n_boot=30)}


NUMBER = re.compile(r"\d\.\d")


COLUMNS = {
    "low_dimension": {
        "axes",
        "explained stress",
        "95% range low",
        "95% range high",
        "eigenvalue",
        "signature",
    },
    "progress_on_other_tasks": {
        "training task A",
        "evaluation task B",
        "progress on B",
        "B's own progress on B",
        "relative progress",
        "class diversity of A",
        "95% CI low",
        "95% CI high",
    },
    "tree": {
        "distances",
        "Mantel r with WordNet",
        "p-value (one-sided)",
        "cophenetic correlation",
        "Spearman ρ, dendrogram vs WordNet",
        "95% CI low",
        "95% CI high",
        "verdict",
    },
    "finetuning": {"run", "pre-training steps", "d_B(start, end)", "length"},
    "episodic_vs_supervised": {"task", "progress", "d_B at equal progress"},
    "contrastive": {"method", "task A", "task B", "same task", "d_B between end models"},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(COLUMNS))
def test_each_analysis_has_table_figure_and_numeric_finding(results, name):
    r = results[name]
    assert r.applicable, r.finding
    assert COLUMNS[name] <= set(r.table.columns)
    assert len(r.table) > 0
    assert isinstance(r.figure, Figure) and r.figure.panels
    assert all(p.items for p in r.figure.panels)
    assert r.finding.verdict != "not applicable"
    assert len(NUMBER.findall(str(r.finding))) >= 2, r.finding


@pytest.mark.parametrize("name", list(COLUMNS))
def test_each_finding_has_a_verdict_first_headline_and_a_typed_result(results, name):
    from taskspace.study.analyses import VERDICTS, Finding

    f = results[name].finding
    assert isinstance(f, Finding) and f.verdict in VERDICTS[:3]
    assert f.headline.startswith(f"{f.verdict} — ") and len(f.headline) <= 140, f.headline
    assert f.details and f.details not in f.headline
    r = results[name].result
    assert type(r).__name__.endswith("Result") and r.verdict == f.verdict
    with pytest.raises(AttributeError):  # frozen
        r.verdict = "agrees"


def test_low_dimension_stress_matches_inpca(store, results):
    from taskspace import InPCA

    D = store.distance_matrix()
    expected = InPCA(n_components=10, metric="precomputed").fit(D).explained_stress_
    np.testing.assert_allclose(results["low_dimension"].table["explained stress"], expected)
    panel = results["low_dimension"].figure.panels[0]
    assert panel.is3d
    assert all("imaginary" in t or "real" in t for t in (panel.xlabel, panel.ylabel, panel.zlabel))
    # One 3-D series per run, holding every record of the run, on the InPCA embedding.
    embedding = InPCA(n_components=10, metric="precomputed", random_state=0).fit(D).embedding_
    lines = [s for s in panel.series if s.mode == "lines" and s.x.size]
    assert len(lines) == store.runs(per="run").shape[0]
    np.testing.assert_allclose(np.concatenate([s.x for s in lines]), embedding[:, 0])


def test_progress_own_task_is_relative_one_and_transfer_is_partial(results):
    t = results["progress_on_other_tasks"].result.table
    own = t[t["train_task"] == t["eval_task"]]
    np.testing.assert_allclose(own["relative"], 1.0)
    disjoint = t[t["overlap"] == 0]
    # Synthetic models learn other classes only partially: less progress than B's own training.
    assert (disjoint["relative"] < 1).all() and (disjoint["relative"] > 0).all()


def test_finetuning_distance_is_direct_formula(store, results):
    t = results["finetuning"].result.table
    row = t.iloc[0]
    P = store.trajectory(row["run_id"]).predictions.astype(float)
    P /= P.sum(axis=-1, keepdims=True)  # float32 storage: rows renormalised, as the library does
    bc = np.sqrt(P[0] * P[-1]).sum(axis=1)
    assert row["d_start_end"] == pytest.approx(-np.log(bc).mean(), rel=1e-9)
    # Longer pre-training: closer to the end already, so fine-tuning moves less (by construction).
    mean = t.groupby("parent_step")["d_start_end"].mean()
    assert mean.iloc[-1] < mean.iloc[0]


def test_episodic_curve_larger_in_middle_than_at_end(results):
    s = results["episodic_vs_supervised"].summary
    assert s["middle"] > s["end"] >= 0
    # Jackknife intervals (distances between seed averages): centred on the estimates.
    for key in ("middle", "end"):
        lo, hi = s[f"{key}_ci"]
        assert lo < s[key] < hi and s[key] == pytest.approx((lo + hi) / 2)
    assert "jackknife over runs" in results["episodic_vs_supervised"].finding.details
    # The tree's interval resamples the 4 tasks: a percentile interval, not centred, and none
    # at all if every resample left too few distinct tasks (then the finding says why).
    tree = results["tree"].summary
    lo, hi = tree["mantel_end_ci"]
    if np.isnan(lo):
        assert f"(no interval: {tree['mantel_end_ci'].why})" in results["tree"].finding.details
    else:
        assert -1 <= lo < hi <= 1 and "bootstrap over tasks" in results["tree"].finding.details


def test_jackknife_of_the_mean_is_the_standard_error():
    from scipy.stats import norm

    from taskspace.study.analyses.stats import jackknife_interval, leave_one_out

    x = np.array([0.3, 1.1, 0.7, 2.0, 0.4])
    deleted = [(x.sum() - v) / (len(x) - 1) for v in x]
    lo, hi = jackknife_interval(x.mean(), deleted)
    half = norm.ppf(0.975) * x.std(ddof=1) / np.sqrt(len(x))
    assert lo == pytest.approx(x.mean() - half, rel=1e-12)
    assert hi == pytest.approx(x.mean() + half, rel=1e-12)
    assert all(np.isnan(jackknife_interval(1.0, [0.5])))
    picks = leave_one_out({"a": ["r1", "r2", "r3"], "b": ["r4"]})
    assert [key for key, _ in picks] == ["a", "a", "a"]  # a single run is never left out
    assert [pick["a"] for _, pick in picks] == [["r2", "r3"], ["r1", "r3"], ["r1", "r2"]]
    assert all(pick["b"] == ["r4"] for _, pick in picks)


#: "x (95% CI a–a)": an interval whose two bounds print the same.
DEGENERATE = re.compile(r"(?<![-+\d.e])([-+\d.e]+)–\1\)")


def test_no_finding_prints_a_degenerate_interval(results):
    for r in results.values():
        assert not DEGENERATE.search(str(r.finding)), r.finding


def test_one_seed_gives_no_interval_and_says_why(tmp_path):
    """With one seed no resample of seeds or runs can vary: every such interval of a one-seed
    store is "no interval" with the reason, never "0.699 (95% CI 0.699–0.699)" (the one-seed
    quick study did). Findings 2 and 3 resample tasks, which one seed leaves free to vary."""
    from taskspace.study.analyses import run_analyses

    one = build_store(tmp_path / "one", seeds=(0,))
    out = {r.name: r for r in run_analyses(one, n_boot=20)}
    expected = {
        # four tasks, each of its own size: nothing to resample within a size
        "progress_on_other_tasks": "no interval: one task of each size",
        "episodic_vs_supervised": "no interval: one run of each method per task",
        "finetuning": "no interval: one run",
        "contrastive": "no interval: one pair",
    }
    for name, why in expected.items():
        assert why in out[name].finding.details, out[name].finding
        assert "CI" not in str(out[name].finding), out[name].finding
    assert "bootstrap over tasks" in out["tree"].finding.details
    for r in out.values():
        assert not DEGENERATE.search(str(r.finding)), r.finding
    s = out["progress_on_other_tasks"].summary
    assert np.isnan(s["spearman_ci"]).all()
    assert s["spearman_ci"].why == "no size has 3 or more tasks"
    table = out["progress_on_other_tasks"].table  # the table's intervals are over seeds
    assert table["95% CI low"].isna().all() and table["95% CI high"].isna().all()
    assert np.isfinite(s["relative_progress"])  # the estimate itself is still reported
    # Every task has its own size here: no within-size correlation, and the finding says so.
    assert (
        np.isnan(s["spearman"])
        and "no size has 3 or more tasks" in out["progress_on_other_tasks"].finding.details
    )


def test_interval_helpers_refuse_zero_width():
    from taskspace.study.analyses._common import fmt_ci
    from taskspace.study.analyses.stats import (
        Interval,
        bootstrap,
        jackknife_interval,
        percentile_interval,
    )

    assert bootstrap([0.5]).why == "one run"
    assert bootstrap([]).why == "no run"
    assert bootstrap([0.2, 0.2, 0.2], unit="pair").why == "all 3 pairs equal"
    assert np.isnan(bootstrap([0.2, 0.2, 0.2])).all()
    assert percentile_interval([0.7] * 50).why == "every resample gives the same value"
    assert percentile_interval([0.7] * 50, why="one seed").why == "one seed"
    assert percentile_interval([np.nan]).why == "too few runs"
    # A rank statistic that no deletion changes: jackknife SE 0.
    assert (
        jackknife_interval(0.894, [0.894] * 5).why
        == "leaving out any one of 5 runs gives the same value"
    )
    assert jackknife_interval(0.894, [0.894] * 5, why="one seed").why == "one seed"
    assert (
        fmt_ci(0.894, jackknife_interval(0.894, [0.894] * 5))
        == "0.894 (no interval: leaving out any one of 5 runs gives the same value)"
    )
    # A genuine interval keeps its bounds and still unpacks as a pair (and survives pickling).
    lo, hi = bootstrap([0.1, 0.4, 0.3, 0.9], n_boot=50)
    assert 0.1 <= lo < hi <= 0.9
    import pickle

    iv = pickle.loads(pickle.dumps(Interval.none("one seed")))
    assert iv.why == "one seed" and np.isnan(iv).all()
    # Narrow but real: printed with more digits until the bounds differ.
    assert fmt_ci(0.8941, (0.8940, 0.8942)) == "0.8941 (95% CI 0.894–0.8942)"
    assert fmt_ci(0.5, (0.5, 0.5 + 1e-13)).startswith("0.5 (no interval: ")
    assert fmt_ci(0.5, (float("nan"), float("nan"))) == "0.5 (no interval: too few runs)"


@settings(max_examples=300, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(0, 1e3))
def test_fmt_ci_bounds_never_print_the_same(lo, width):
    from taskspace.study.analyses._common import fmt_ci

    text = fmt_ci(lo + width / 2, (lo, lo + width))
    assert "no interval" in text or not DEGENERATE.search(text), text


def test_not_applicable_paths(tmp_path):
    from taskspace.study.analyses import run_analyses

    bare = build_store(tmp_path / "bare", methods=("supervised",), hierarchy=False)
    out = {r.name: r for r in run_analyses(bare, n_boot=5)}
    for name in ("finetuning", "episodic_vs_supervised", "contrastive", "tree"):
        finding = out[name].finding
        assert finding.verdict == "not applicable" and finding.reason, finding
        assert finding.headline == f"not applicable — {finding.reason}"
        assert not out[name].applicable and out[name].figure is None
    assert out["low_dimension"].applicable
    assert "number of classes" in out["progress_on_other_tasks"].finding.details


@pytest.mark.slow
def test_analyses_import_no_plotting_library(store):
    """The analyses describe their figures; only taskspace.report imports plotly/matplotlib."""
    code = (
        "import sys\n"
        "from taskspace import Store\n"
        "from taskspace.study.analyses import run_analyses\n"
        f"results = run_analyses(Store.open({str(store.path)!r}), n_boot=2)\n"
        "assert all(r.figure is not None for r in results)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'plotly', 'matplotlib'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_unknown_analysis_name(store):
    from taskspace.study.analyses import run_analyses

    with pytest.raises(ValueError, match="unknown analysis 'nope'"):
        run_analyses(store, names=["nope"])
    assert [r.name for r in run_analyses(store, names=["finetuning"])] == ["finetuning"]


def test_results_are_reproducible(store, results):
    from taskspace.study.analyses import run_analyses

    again = run_analyses(store, names=["contrastive"], n_boot=30)[0]
    assert again.finding == results["contrastive"].finding
    pd.testing.assert_frame_equal(again.table, results["contrastive"].table)


def test_low_dimension_of_a_single_method_reuses_the_whole_fit(tmp_path, monkeypatch):
    """When one method holds every model its 3-axis stress and range are the whole store's,
    computed once (the subsets of the whole store are not fitted a second time)."""
    import importlib

    from taskspace.geometry import inpca_subsets

    ld_module = importlib.import_module("taskspace.study.analyses.low_dimension")
    rng = np.random.default_rng(4)
    store = Store.create(tmp_path / "s", np.arange(12) % 3, ["a", "b", "c"])
    for r in range(6):
        store.add_run(f"r{r}", task="t", classes=None, method="m", seed=r)
        store.append(f"r{r}", rng.dirichlet(np.ones(3), size=(4, 12)), np.arange(4))
    fitted = []
    real = inpca_subsets.subset_explained_stress
    monkeypatch.setattr(
        inpca_subsets,
        "subset_explained_stress",
        lambda D, subsets, *a, **k: fitted.append(len(subsets)) or real(D, subsets, *a, **k),
    )
    result = ld_module.low_dimension(store, n_boot=30)
    (method,) = result.summary["per_method"]
    assert fitted == [31]  # the whole store and its 30 subsets, once
    np.testing.assert_allclose(method["stress_3"], result.summary["stress_3"], rtol=1e-12)
    np.testing.assert_allclose(method["ci"], result.summary["stress_3_ci"], rtol=1e-12)
    assert method["n_models"] == 24


def test_episodic_band_is_drawn_from_zero_where_the_interval_dips_below():
    """d_B ≥ 0: the figure's band starts at 0, the table keeps the computed interval."""
    import pandas as pd

    from taskspace.study.analyses import episodic
    from taskspace.study.analyses.figure import Area

    table = pd.DataFrame(
        {
            "task": ["t"] * 3,
            "progress": [0.1, 0.5, 0.9],
            "distance": [0.02, 0.05, 0.01],
            "ci_low": [-0.01, 0.03, -0.02],
            "ci_high": [0.05, 0.07, 0.04],
        }
    )
    panels = episodic._figure(table).panels
    areas = [i for p in panels for i in p.items if isinstance(i, Area) and len(i.x)]
    assert areas and all(np.min(a.ylow) >= 0.0 for a in areas)
    np.testing.assert_allclose(areas[0].ylow, [0.0, 0.03, 0.0])
    assert table["ci_low"].min() < 0  # the table itself is unchanged


def test_record_progress_reads_the_records_of_the_table_it_is_given(tmp_path):
    """A store analysed while a study trains: a run gains records after the table was read;
    the progress of the table's records is what it was, not a shape error."""
    import importlib

    from taskspace.study.analyses._common import run_table

    # the module, not the analysis function the package re-exports under the same name
    low_dimension = importlib.import_module("taskspace.study.analyses.low_dimension")
    store = build_store(tmp_path / "s", methods=("supervised",), seeds=(0,))
    runs, records = run_table(store), store.runs()
    before, refs_before = low_dimension._record_measures(store, runs, records)
    rid = runs["run_id"].iloc[0]
    last = store.trajectory(rid)
    store.append(rid, last.predictions[-1:], [int(last.steps[-1]) + 1])
    after, refs_after = low_dimension._record_measures(store, runs, records)
    np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(refs_before, refs_after)
    assert np.isfinite(before).all() and refs_before.shape == (2, len(records))
