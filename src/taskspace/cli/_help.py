"""How the `taskspace` command formats its help: click's plain text, in click's conventions.

typer's plain mode (``rich_markup_mode=None``) leaves two marks of its own that these classes undo:
required arguments in braces on the usage line (``{STORE}``), and click's text wrapper splitting
words at hyphens, which breaks paths and names such as ``studies/digits-demo.toml`` over two lines.
"""

from __future__ import annotations

import contextlib
import importlib
import re

from typer.core import TyperCommand, TyperGroup
from typer.core import _click as click  # the click typer vendors: its Context, formatter, Exit


@contextlib.contextmanager
def _whole_words():
    """Wrap help text between words only: never inside a hyphenated word or a long path."""
    try:
        _textwrap = importlib.import_module(f"{click.__name__}._textwrap")
    except ImportError:  # a click without its wrapper module: its own wrapping stays
        yield
        return
    original = _textwrap.TextWrapper

    class Wrapper(original):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("break_on_hyphens", False)
            kwargs.setdefault("break_long_words", False)
            super().__init__(*args, **kwargs)

    _textwrap.TextWrapper = Wrapper
    try:
        yield
    finally:
        _textwrap.TextWrapper = original


class _Formatter(click.HelpFormatter):
    def write_text(self, text: str) -> None:
        with _whole_words():
            super().write_text(text)

    def write_dl(self, rows, *args, **kwargs) -> None:
        with _whole_words():
            super().write_dl(rows, *args, **kwargs)

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        with _whole_words():
            super().write_usage(prog, args, prefix)


class _Context(click.Context):
    formatter_class = _Formatter


class Command(TyperCommand):
    """A command whose usage line shows a required argument bare (``STORE``), not ``{STORE}``."""

    context_class = _Context

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [
            re.sub(r"^\{(.*)\}(\.\.\.)?$", r"\1\2", piece)
            for piece in super().collect_usage_pieces(ctx)
        ]


class Group(TyperGroup):
    """The `taskspace` group, formatted as its commands are."""

    context_class = _Context
