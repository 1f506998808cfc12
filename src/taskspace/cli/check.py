"""The `taskspace check` command: verify a store and say what is damaged and how to repair it."""

from __future__ import annotations

from pathlib import Path

import typer

from taskspace.cli._console import make_console

console = make_console()


def check(
    store: Path = typer.Argument(..., help="The taskspace store to verify."),
    repair: bool = typer.Option(
        False,
        "--repair",
        help="Remove the damaged distance caches "
        "(they are recomputed when next needed); runs are kept: drop "
        "or re-import them as the report says.",
    ),
    drop_damaged_runs: bool = typer.Option(
        False,
        "--drop-damaged-runs",
        help="As --repair, and also drop every damaged run (its "
        "predictions are deleted: re-import or retrain it afterwards).",
    ),
    upgrade: bool = typer.Option(
        False,
        "--upgrade",
        help="Bring a legacy store (written before store format 2) to the "
        "current format: after a clean check, add the digests of its header, commit records, "
        "run index and caches.",
    ),
) -> None:
    """Verify everything on disk: header, probe set, run index, every commit record, every
    chunk of every committed record (present, checksum, digest) and every distance cache.
    Exits with status 1 if damage is left."""
    from taskspace.store import Store

    if not store.exists():
        raise FileNotFoundError(f"store {store} does not exist")
    repair = repair or drop_damaged_runs
    s, report = Store.check_path(store, mode="a" if repair or upgrade else "r")
    # Paths, run ids and messages are user text: printed without markup.
    console.print(str(report), markup=False, highlight=False, soft_wrap=True)
    left = report.damage
    if s is not None and repair and left:
        dropped, removed, left = s.repair_damage(report, drop_runs=drop_damaged_runs)
        if removed:
            console.print(
                f"removed distance caches {', '.join(removed)}; they are recomputed "
                "when next needed",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        if dropped:
            console.print(
                f"dropped damaged runs {', '.join(dropped)}; re-import or retrain them",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        if left:
            console.print("damage is left: see the report above", markup=False)
    if left:
        raise typer.Exit(1)
    if upgrade:
        added = s.upgrade()
        console.print(
            "\n".join(added) if added else "the store is already current",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    """Add the command to the `taskspace` app."""
    app.command("check")(check)
