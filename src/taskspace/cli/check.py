"""The `taskspace check` command: verify a store and say what is damaged and how to repair it."""

from __future__ import annotations

from pathlib import Path

import typer

from taskspace.cli._console import make_console

console = make_console()


def check(
    store: Path = typer.Argument(..., help="The taskspace store to verify."),
    repair: bool = typer.Option(False, "--repair", help="Remove the damaged distance caches "
                                "(they are recomputed when next needed); runs are never "
                                "removed: drop or re-import them as the report says."),
) -> None:
    """Verify everything on disk: probe set, every chunk of every committed record (present,
    checksum, digest) and every distance cache. Exits with status 1 if anything is damaged."""
    from taskspace.store import Store

    if not store.exists():
        raise FileNotFoundError(f"store {store} does not exist")
    s = Store.open(store, mode="a" if repair else "r")
    report = s.check()
    # Paths, run ids and messages are user text: printed without markup.
    console.print(str(report), markup=False, highlight=False, soft_wrap=True)
    if repair and report.damaged_caches:
        removed = [n for name in report.damaged_caches for n in s.clear_cache(name)]
        console.print(f"removed distance caches {', '.join(removed)}; they are recomputed when "
                      "next needed", markup=False, highlight=False, soft_wrap=True)
        if not report.damaged_runs:
            return
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the command to the `taskspace` app."""
    app.command("check")(check)
