"""How a store shows itself in a notebook: its probe set, sizes, hashes and runs as HTML tables."""

from __future__ import annotations

import html

#: Runs listed in full; a larger store shows the first ones and says how many there are.
MAX_RUNS = 50


def store_html(store) -> str:
    """An HTML summary of ``store``: path, N, C, dtype, chunking, records and bytes of
    predictions, probe and label-space hashes, and one row per run (id, task, method, seed,
    network, records, first and last step)."""
    runs = store.runs("run")
    n_records = int(runs["n_records"].sum()) if len(runs) else 0
    per_record = store.n_samples * store.n_classes * store.dtype.itemsize
    facts = [
        ("path", str(store.path)),
        ("mode", store.mode),
        ("probe samples N", f"{store.n_samples:,}"),
        ("classes C", f"{store.n_classes:,}"),
        ("dtype", str(store.dtype)),
        ("runs / records", f"{len(runs):,} / {n_records:,}"),
        ("predictions", f"{_bytes(per_record * n_records)} ({_bytes(per_record)} a record)"),
        ("probe hash", store.probe_hash),
        ("label-space hash", store.label_space_hash),
    ]
    head = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>"
        for k, v in facts
    )
    columns = [
        c for c in ("run_id", "task", "method", "seed", "network", "n_records") if c in runs.columns
    ]
    shown = runs[columns].head(MAX_RUNS).astype(object)
    shown = shown.where(shown.notna(), "")  # a run without a seed or network: blank
    if len(runs):
        steps = {r: store.steps(r) for r in shown["run_id"]}
        shown["steps"] = [f"{s[0]}–{s[-1]}" if s else "" for s in map(steps.get, shown["run_id"])]
    table = (
        shown.to_html(index=False, na_rep="", classes="taskspace-runs", border=0, escape=True)
        if len(runs)
        else "<p>No runs yet.</p>"
    )
    more = (
        f"<p>… and {len(runs) - MAX_RUNS:,} more runs (<code>store.runs('run')</code>)</p>"
        if len(runs) > MAX_RUNS
        else ""
    )
    return (
        f"<div class='taskspace-store'><strong>taskspace Store</strong>"
        f"<table>{head}</table>{table}{more}</div>"
    )


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover - unreachable
