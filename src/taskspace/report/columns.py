"""Human names, with units, for the columns of the analyses' tables as the report shows them.

The analyses' tables keep their code names (``ci_low``, ``own_progress``): Python users and
docs/results.md read them by those names. Only the report renames them, through
:func:`human_columns`. Distances are Bhattacharyya distances ``d_B`` (SPEC §1: a mean over probe
samples of ``−log`` of a coefficient, so in nats); progress λ is 0 at the ignorance model
(uniform prediction) and 1 at the truth (SPEC §5).
"""

from __future__ import annotations

#: Column names shared by several analyses.
COMMON = {
    "ci_low": "95% interval, low",
    "ci_high": "95% interval, high",
    "p_value": "p-value",
    "verdict": "verdict",
    "run_id": "run",
    "task": "task",
    "method": "method",
    "seed": "seed",
    "n_tasks": "tasks",
    "n_seeds": "seeds",
    "note": "note",
}

#: Per analysis: code name → human name (with its unit).
BY_ANALYSIS = {
    "low_dimension": {
        "k": "InPCA axes k",
        "explained_stress": "explained stress of k axes (fraction)",
        "eigenvalue": "k-th eigenvalue",
        "signature": "k-th axis (+1 real, −1 imaginary)",
    },
    "progress_on_other_tasks": {
        "train_task": "trained on A",
        "eval_task": "evaluated on B",
        "overlap": "classes of B in A (fraction)",
        "progress": "progress λ on B (0 uniform, 1 truth)",
        "own_progress": "λ of B's own runs on B",
        "relative": "relative progress (λ / own λ)",
        "diversity_A": "class diversity of A",
        "size_A": "classes in A",
    },
    "tree": {
        "distances": "task distances",
        "mantel_r": "Mantel r (Spearman)",
        "cophenetic_correlation": "cophenetic correlation",
        "spearman_with_wordnet": "Spearman ρ of the tree with the hierarchy",
    },
    "finetuning": {
        "parent_run": "pre-trained run",
        "parent_step": "pre-training (steps)",
        "d_start_end": "d_B start → end (nats)",
        "length": "length of the trajectory (√nats)",
    },
    "episodic_vs_supervised": {
        "progress": "progress λ (0 uniform, 1 truth)",
        "distance": "d_B episodic ↔ supervised (nats)",
    },
    "contrastive": {
        "run_a": "run a",
        "run_b": "run b",
        "task_a": "task of a",
        "task_b": "task of b",
        "same_task": "same task",
        "d_B": "d_B between end models (nats)",
    },
}


def human_name(analysis: str, column: str) -> str:
    """The report's name of ``column`` in the table of ``analysis``: the analysis' own, else a
    common one, else the code name with underscores as spaces."""
    return (
        BY_ANALYSIS.get(analysis, {}).get(column)
        or COMMON.get(column)
        or str(column).replace("_", " ")
    )


def human_columns(analysis: str, table):
    """``table`` (a pandas DataFrame) with its columns renamed by :func:`human_name`."""
    return table.rename(columns={c: human_name(analysis, c) for c in table.columns})


__all__ = ["BY_ANALYSIS", "COMMON", "human_columns", "human_name"]
