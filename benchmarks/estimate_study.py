"""The wall-time estimate of a study from measured seconds per step and per record.

Usage::

    .venv/bin/python benchmarks/estimate_study.py studies/fashion-mnist.toml --rates RATES.json
    .venv/bin/python benchmarks/estimate_study.py studies/fashion-mnist.toml --quick ...

``RATES.json`` maps ``"<method> <network>"`` (network as the run names it, with its options,
e.g. ``"supervised small-cnn width=16"``) to measured seconds per training step, and
``"record <network>"`` to seconds per record (imprint + probe inference, store append, model
file) at the study's imprint and probe sizes; ``"analyses"`` to the seconds the analyses and the
report take, and ``"run_startup"`` to the seconds each run costs besides its steps and records
(opening the store, building the method, the resume state). Fine-tuning runs use their
parent's network. Prints one row per run spec (runs, steps, records, seconds) and the total, the
arithmetic written out for docs/results.md.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from taskspace.record import checkpoint_schedule
from taskspace.study import expand_runs, load_study


def network_key(network: str | None, options: dict) -> str:
    opts = " ".join(f"{k}={v}" for k, v in sorted(options.items()))
    return f"{network} {opts}".strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("study")
    parser.add_argument("--rates", required=True, help="JSON file of measured rates")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--analyses",
        type=float,
        default=None,
        help="seconds of the analyses and report (overrides the rates file)",
    )
    args = parser.parse_args()
    rates = json.loads(open(args.rates, encoding="utf-8").read())
    study = load_study(args.study, quick=args.quick)
    specs = {name: spec for name, spec in study.runs.items()}
    rows = defaultdict(lambda: [0, 0, 0, 0.0, 0.0, ""])
    for run in expand_runs(study):
        spec = specs[run.spec]
        source = spec if spec.parent is None else specs[spec.parent]
        net = network_key(source.network, source.config.get("network_options", {}))
        steps = int(run.config["steps"])
        schedule = run.config.get("record_schedule", "log")
        records = len(checkpoint_schedule(steps, schedule, run.config.get("n_records", 20)))
        key = f"{run.method} {net}"
        if key not in rates or f"record {net}" not in rates:
            raise SystemExit(f"no measured rate for {key!r} or 'record {net}' in {args.rates}")
        row = rows[run.spec]
        row[0] += 1
        row[1] += steps
        row[2] += records
        row[3] += steps * rates[key]
        row[4] += records * rates[f"record {net}"]
        row[5] = f"{rates[key]:.3f} s/step × steps + {rates[f'record {net}']:.2f} s/record"
    print("| run spec | runs | steps | records | rates | training (s) | recording (s) |")
    print("|---|---:|---:|---:|---|---:|---:|")
    total = 0.0
    for name, (n, steps, records, train_s, record_s, how) in rows.items():
        print(
            f"| {name} | {n} | {steps:,} | {records:,} | {how} | {train_s:,.0f} | {record_s:,.0f} |"
        )
        total += train_s + record_s
    n_runs = sum(r[0] for r in rows.values())
    startup = n_runs * float(rates.get("run_startup", 0.0))
    print(
        f"| start-up of each run | {n_runs} | | | {rates.get('run_startup', 0.0)} s/run | "
        f"{startup:,.0f} | |"
    )
    analyses = float(args.analyses if args.analyses is not None else rates.get("analyses", 0.0))
    print(f"| analyses and report | | | | as given | {analyses:,.0f} | |")
    total += analyses + startup
    print(f"\nTotal: {total:,.0f} s = {total / 60:.0f} min")


if __name__ == "__main__":
    main()
