"""The consoles the command line prints through.

rich hard-wraps every line at 80 columns whenever its stream is not a terminal (a pipe, a log file,
CI), which breaks paths, run ids and findings mid-word. Output that is not a terminal is therefore
never wrapped: each message is one line, and a table takes its natural width. In a terminal rich
measures the window, and long messages are left to the terminal to wrap (soft wrap), so copying a
path or an id from the screen still gives it whole.

Nothing printed is read as rich markup: messages carry paths, queries, task and class names and
error texts (``must be an integer in [n_components, M]``) whose brackets rich would take for tags
(swallowing them, or raising ``MarkupError`` on ``[/red]``). Styles come from :func:`styled`.
"""

from __future__ import annotations

import sys

from rich.console import Console

# Wide enough that no table or message of ours is ever folded; rich allocates nothing per column.
UNWRAPPED_WIDTH = 100_000


def make_console(stderr: bool = False, **options) -> Console:
    """A rich console for standard output (or error) that never hard-wraps a non-terminal.

    Parameters
    ----------
    stderr : bool
        Print to standard error instead of standard output.
    **options
        Passed to :class:`rich.console.Console` (``quiet=...``, for example). ``markup`` and
        ``highlight`` default to False.
    """
    stream = sys.stderr if stderr else sys.stdout
    if not _is_terminal(stream) and "width" not in options:
        options["width"] = UNWRAPPED_WIDTH
    options.setdefault("soft_wrap", True)
    # User text is printed as it is: no markup, and no highlighting of numbers and paths in it.
    options.setdefault("markup", False)
    options.setdefault("highlight", False)
    return Console(stderr=stderr, **options)


def styled(*parts):
    """One line of text from ``parts``: plain strings, or ``(text, style)`` pairs such as
    ``("error:", "bold red")``; the text of every part is literal (never markup)."""
    from rich.text import Text

    return Text.assemble(*parts)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
