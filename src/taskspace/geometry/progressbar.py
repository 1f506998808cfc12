"""The optional progress bar every long loop of taskspace shows (``progress=True``).

One `rich` bar, or nothing: a disabled bar costs one ``if`` per update and never imports rich, so
loops call ``advance`` unconditionally. The geometry, the distributed backend and the training
loops all draw their bars through `ProgressBar`, so they look and behave alike.
"""

from __future__ import annotations


class ProgressBar:
    """A context manager around one rich progress bar; does nothing when ``enabled`` is False.

    Parameters
    ----------
    enabled : bool
        Draw the bar.
    total : int
        Units of work.
    description : str
        Shown left of the bar, as it is (never read as rich markup: it may hold user text).
    completed : int
        Units already done (a resumed job).
    transient : bool
        Remove the bar when it stops (True: loops inside a larger command) or leave it (False).
    count : bool
        Show ``done/total`` (else a percentage).
    stats : bool
        Show a text field that `update` sets (a running loss, for example), then "eta".
    bar_width : int, optional
        Width of the bar in columns (default: rich's).
    style : str, optional
        Rich style of the description (default: rich's ``progress.description``).
    """

    def __init__(self, enabled: bool, total: int, description: str, *, completed: int = 0,
                 transient: bool = True, count: bool = False, stats: bool = False,
                 bar_width: int | None = None, style: str | None = None):
        self._bar = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = [TextColumn("{task.description}", style=style or "progress.description",
                              markup=False),
                   BarColumn(bar_width=bar_width) if bar_width else BarColumn(),
                   MofNCompleteColumn() if count else TaskProgressColumn()]
        if stats:
            columns += [TextColumn("{task.fields[stats]}", markup=False), TextColumn("eta")]
        columns.append(TimeRemainingColumn())
        self._bar = Progress(*columns, transient=transient)
        self._task = self._bar.add_task(description, total=total, completed=completed, stats="")

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def __enter__(self) -> ProgressBar:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, n: int = 1) -> None:
        """``n`` more units done."""
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def update(self, completed: int | None = None, stats: str | None = None) -> None:
        """Set the units done and/or the stats text."""
        if self._bar is None:
            return
        fields = {} if stats is None else {"stats": stats}
        self._bar.update(self._task, completed=completed, **fields)
