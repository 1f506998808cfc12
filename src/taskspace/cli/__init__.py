"""The `taskspace` command: arguments in, messages out.

One module per group of commands: :mod:`taskspace.cli.study` (``run``, ``analyze``, ``report``,
``info``, ``import-h5`` and the ``demo``) and :mod:`taskspace.cli.distributed` (``distances``,
``embed``); ``_help`` formats help the click way, ``_console`` prints.

Errors from bad input are printed as one clear line and exit with status 1; `--debug` shows the
traceback instead.

Help is click's plain text (``rich_markup_mode=None``): nothing in a help string is read as markup
(``[quick]`` stays), paragraphs are re-flowed evenly, flags show no type and every value shows a
named metavar (``--landmarks L``) instead of typer's ``<int range>``. Each command imports what it
needs only after its arguments are checked, so ``--help`` and a bad argument cost the import of
typer alone (``tests/test_cli.py`` checks that torch, plotly, scikit-learn, zarr and pandas stay
out).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from taskspace._version import __version__
from taskspace.cli._console import make_console, styled
from taskspace.cli._help import Command, Group


class _App(typer.Typer):
    """Every command is a :class:`taskspace.cli._help.Command` (click's usage conventions)."""

    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or Command, **kwargs)


app = _App(
    name="taskspace",
    help="The picture of the space of learning tasks: information geometry of trained networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=Group,
)
console = make_console()
err_console = make_console(stderr=True)
_state = {"debug": False}


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"taskspace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Print the version and exit.",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    _state["debug"] = debug


@app.command()
def demo(
    out: Path = typer.Option(
        Path("taskspace-demo"), "--out", metavar="DIR", help="Folder for the results."
    ),
    seeds: int = typer.Option(
        2, "--seeds", min=1, metavar="N", help="Training runs per task and method."
    ),
) -> None:
    """The whole pipeline on the built-in 8×8 digits, in a few minutes on a CPU.

    Runs the study digits-demo (shipped with taskspace; see studies/digits-demo.toml): five
    tasks, supervised learning, fine-tuning, Prototypical Networks and SimCLR, each run
    recorded into a store; then the analyses of the paper and the interactive HTML report.
    Prints where the report is.
    """
    from taskspace.cli.study import demo as run_demo

    run_demo(out, seeds)


from taskspace.cli.distributed import register as _register_distributed  # noqa: E402

_register_distributed(app)

from taskspace.cli.study import register as _register_study  # noqa: E402

_register_study(app)

from taskspace.cli.check import register as _register_check  # noqa: E402

_register_check(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    try:
        # Outside standalone mode click returns the code of a `typer.Exit` instead of exiting.
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:
        # Usage errors (bad options) print themselves; typer may vendor click, so duck-type them.
        if callable(getattr(exc, "show", None)) and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        if _state["debug"] or "--debug" in (argv if argv is not None else sys.argv):
            raise
        err_console.print(styled(("error:", "bold red"), " ", _message(exc)))
        sys.exit(1)


def _message(exc: Exception) -> str:
    """The one line printed for an error: its text, or for a full disk not caught by a write
    path of the store (which words it itself) what ran out and where."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        from taskspace.store.atomic import DiskFullError

        if not isinstance(exc, DiskFullError):
            return str(DiskFullError(exc.filename or "a file", exc))
    return str(exc)
