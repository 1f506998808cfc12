"""Findings: the typed results' words (headline verdict first, at most 140 characters, details
apart), built from constructed results without a store; the one `unique` and one Spearman."""

import numpy as np
import pytest

from taskspace.study.analyses import VERDICTS, Estimate, Finding
from taskspace.study.analyses._common import fmt_short, make_finding
from taskspace.study.analyses.stats import Interval, spearman, unique


def test_finding_refuses_a_headline_without_its_verdict_or_too_long():
    Finding("agrees", "agrees — fine", "")
    with pytest.raises(ValueError, match="starts with its verdict"):
        Finding("agrees", "fine, agrees", "")
    with pytest.raises(ValueError, match="at most 140"):
        Finding("agrees", "agrees — " + "x" * 140, "")
    with pytest.raises(ValueError, match="verdict must be one of"):
        Finding("maybe", "maybe — x", "")
    long = make_finding("inconclusive", "y" * 300, "the rest")
    assert len(long.headline) == 140 and long.headline.endswith("…")
    assert long.headline.startswith("inconclusive — ") and long.details == "the rest"


def test_short_numbers_for_headlines():
    assert fmt_short(0.912, (0.901, 0.923)) == "0.91 (0.9–0.92)"
    assert fmt_short(-0.48, (-0.92, 0.9)) == "-0.48 (-0.92 to 0.9)"
    # bounds that print alike get more digits; none at all says so without the reason
    assert fmt_short(0.6771, (0.6770, 0.6779)) == "0.677 (0.677–0.678)"
    assert fmt_short(0.5, Interval.none("one seed")) == "0.5 (no interval)"
    e = Estimate(0.42, Interval(0.40, 0.45), 0.01)
    assert (e.low, e.high, e.p_value) == (0.40, 0.45, 0.01)
    assert e.text() == "0.42 (95% CI 0.4–0.45)" and e.short() == "0.42 (0.4–0.45)"


def _low_dimension(verdict="agrees", lo=0.90):
    from taskspace.study.analyses.low_dimension import LowDimensionResult, MethodStress

    stress = (
        Estimate(0.5, Interval(0.4, 0.6)),
        Estimate(0.8, Interval(0.7, 0.85)),
        Estimate(0.91, Interval(lo, 0.92)),
    )
    return LowDimensionResult(
        n_models=312,
        n_runs=26,
        axes=3,
        stress=stress,
        eigenvalues=(3.0, -2.0, 1.0),
        n_imaginary=1,
        per_method=(MethodStress("simclr", 40, 4, stress[2]),),
        distance=(0.3, 0.5, 0.62),
        weighting="model",
        verdict=verdict,
        inpca=None,
        records=None,
    )


def test_low_dimension_headline_states_verdict_number_interval_and_paper():
    from taskspace.study.analyses.low_dimension import describe

    f = describe(_low_dimension())
    assert f.headline == (
        "agrees — 3 InPCA axes keep 0.91 (0.9–0.92) of the stress of 312 models; paper 0.80"
    )
    assert "1 of the first 3 axes are imaginary" in f.details
    assert "simclr (40 models)" in f.details and f.reason is None


def test_every_describe_on_constructed_results():
    from importlib import import_module

    # the package's names are the analysis functions; the modules hold compute and describe
    tree, finetuning, contrastive = (
        import_module(f"taskspace.study.analyses.{m}")
        for m in ("tree", "finetuning", "contrastive")
    )
    ci = Interval(0.2, 0.6)
    t = tree.TreeResult(
        n_tasks=5,
        n_perm=999,
        mantel_end=Estimate(0.4, ci, 0.003),
        mantel_traj=Estimate(np.nan, Interval.none("no range")),
        cophenetic={"end": 0.9, "traj": np.nan, "wordnet": 1.0},
        spearman_end=0.3,
        spearman_traj=np.nan,
        verdict="agrees",
        verdict_traj="inconclusive",
        names=(),
        distances={},
    )
    ft = finetuning.FinetuningResult(
        n_runs=6,
        by_step=(finetuning.StepMove(10, 3, Estimate(0.3, ci)),),
        rho=Estimate(-0.8, Interval(-0.95, -0.5), 0.004),
        mean_length=1.2,
        parents_converged=1,
        n_parents=2,
        verdict="agrees",
        table=None,
    )
    c = contrastive.ContrastiveResult(
        contrastive="simclr",
        supervised="supervised",
        n_pairs=4,
        different_tasks=Estimate(0.1, Interval(0.05, 0.15)),
        supervised_different_tasks=Estimate(0.5, ci),
        ratio=Estimate(1.3, Interval(1.1, 1.5)),
        same_task=0.02,
        verdict="disagrees",
        table=None,
    )
    headlines = {
        "tree": tree.describe(t).headline,
        "finetuning": finetuning.describe(ft).headline,
        "contrastive": contrastive.describe(c).headline,
    }
    assert headlines == {
        "tree": "agrees — 5 tasks' end-model distances follow WordNet: Mantel r = 0.4 "
        "(0.2–0.6), p = 0.003; paper r > 0",
        "finetuning": "agrees — longer pre-training, smaller fine-tuning moves: ρ = -0.8 "
        "(-0.95 to -0.5), p = 0.004; paper ρ < 0",
        "contrastive": "disagrees — simclr end models on different data are 1.3 (1.1–1.5)× as "
        "far apart as supervised; paper < 1",
    }
    assert "by d_traj: n/a" in tree.describe(t).details


def test_unique_keeps_first_appearance_order_for_any_iterable():
    assert unique(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
    assert unique(np.array([3, 1, 3])) == [3, 1]
    assert unique(iter([("m", True), ("m", False), ("m", True)])) == [("m", True), ("m", False)]


def test_spearman_known_answers():
    from scipy.stats import spearmanr

    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    # one swapped pair of five: ρ = 1 − 6·Σd² / (n(n²−1)) = 1 − 6·2/120 = 0.9
    assert spearman(x, [1, 2, 4, 3, 5]) == pytest.approx(0.9)
    y = np.array([0.3, 0.1, 0.9, 0.9, 0.2, 0.7])
    z = np.array([1.0, 0.2, 0.5, 0.8, 0.1, 0.9])
    assert spearman(y, z) == pytest.approx(spearmanr(y, z).statistic, abs=1e-15)
    assert np.isnan(spearman([1, 2], [2, 1])) and np.isnan(spearman(x, np.ones(5)))
    assert spearman([1, 2, np.nan, 3], [1, 2, 0, 3]) == pytest.approx(1.0)  # NaN pair dropped


def test_verdicts_are_the_four():
    assert VERDICTS == ("agrees", "inconclusive", "disagrees", "not applicable")


def test_progress_headline_says_why_there_is_no_diversity_correlation():
    from importlib import import_module

    m = import_module("taskspace.study.analyses.progress_other_tasks")
    none = Interval.none("too few runs")
    base = dict(
        method="supervised",
        n_tasks=5,
        relative=Estimate(0.6, Interval(0.5, 0.7)),
        partial=np.nan,
        diversity_kind="number of classes",
        most_diverse="all",
        most_diverse_diversity=10.0,
        most_diverse_transfer=0.7,
        verdict="inconclusive",
        table=None,
        curves=None,
    )
    constant = m.ProgressResult(
        by_size=(m.SizeCorrelation(5, 3, Estimate(np.nan, none, np.nan)),),
        stratified=Estimate(np.nan, none, np.nan),
        **base,
    )
    assert m.describe(constant).headline == (
        "inconclusive — others' training reaches 0.6 (0.5–0.7) of own progress; no diversity "
        "ρ: number of classes is constant within each size"
    )
    found = m.ProgressResult(
        by_size=constant.by_size,
        stratified=Estimate(0.7, Interval(0.3, 0.9), 0.002),
        **{**base, "verdict": "agrees"},
    )
    assert m.describe(found).headline == (
        "agrees — diverse tasks transfer more: ρ = 0.7 (0.3–0.9), p = 0.002; paper ρ > 0"
    )


def test_read_once_shares_reads_within_its_budget():
    from types import SimpleNamespace

    import pandas as pd

    from taskspace.study.analyses._common import ReadOnce

    class Store:
        labels = np.arange(3)
        reads = 0

        def trajectory(self, run_id):
            self.reads += 1
            return SimpleNamespace(predictions=np.zeros(100))  # 800 bytes

        def runs(self, per="record"):
            self.reads += 1
            return pd.DataFrame({"run_id": ["a"]})

    inner = Store()
    store = ReadOnce(inner, budget=1000)
    assert store.trajectory("a") is store.trajectory("a") and inner.reads == 1
    store.trajectory("b"), store.trajectory("b")  # over the budget: read each time
    assert inner.reads == 3
    table = store.runs()
    table["run_id"] = "changed"  # a copy: the next caller is unaffected
    assert list(store.runs()["run_id"]) == ["a"] and inner.reads == 4
    assert store.labels is inner.labels
