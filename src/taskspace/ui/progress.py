"""The terminal progress bars of taskspace: the one home of every bar any layer draws.

One `rich` bar, or nothing: a disabled bar costs one ``if`` per update and never imports rich, so
loops call ``advance`` unconditionally. The store, the distributed backend and the training loops
draw their bars through `ProgressBar`, so they look and behave alike; the geometry draws none of
its own and reports through a callback (`taskspace.geometry.callbacks`), for which `progress_bar`
is the default: importing this module installs it, so ``progress=True`` draws this bar.
"""

from __future__ import annotations

import math

from taskspace.geometry.callbacks import set_default_progress


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

    def __init__(
        self,
        enabled: bool,
        total: int,
        description: str,
        *,
        completed: int = 0,
        transient: bool = True,
        count: bool = False,
        stats: bool = False,
        bar_width: int | None = None,
        style: str | None = None,
    ):
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

        columns = [
            TextColumn("{task.description}", style=style or "progress.description", markup=False),
            BarColumn(bar_width=bar_width) if bar_width else BarColumn(),
            MofNCompleteColumn() if count else TaskProgressColumn(),
        ]
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


def progress_bar(total: int, description: str) -> ProgressBar:
    """The geometry's default progress factory: a transient bar over ``total`` units."""
    return ProgressBar(True, total, description)


def as_factory(progress):
    """A geometry ``progress`` argument from a caller's bool: `progress_bar` for True, else None.

    A callable passes through unchanged, so a caller may hand the geometry its own callback.
    """
    if progress is True:
        return progress_bar
    return progress or None


set_default_progress(progress_bar)


class TrainingProgress:
    """A `ProgressBar` over training steps with the running metrics; nothing when disabled.

    ``due(step)`` says when to refresh the numbers (about 100 times per run, and never more often
    than needed: reading the running loss synchronises with the GPU).
    """

    def __init__(self, description: str, total: int, start: int, enabled: bool = True):
        self.enabled = enabled
        self.every = max(1, total // 100)
        self.probe_accuracy = math.nan
        # The description holds the task's name: user text, printed as it is (never markup).
        self._bar = ProgressBar(
            enabled,
            total,
            description,
            completed=start,
            transient=False,
            count=True,
            stats=True,
            bar_width=24,
            style="bold",
        )

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        self._bar.__exit__(*exc)

    def due(self, step: int) -> bool:
        return self.enabled and step % self.every == 0

    def update(self, step: int, means: dict[str, float]) -> None:
        if not self._bar.enabled:
            return
        parts = []
        loss, acc = means.get("train_loss", math.nan), means.get("train_accuracy", math.nan)
        if math.isfinite(loss):
            parts.append(f"loss {loss:.3f}")
        if math.isfinite(acc):
            parts.append(f"acc {acc:.3f}")
        if math.isfinite(self.probe_accuracy):
            parts.append(f"probe {self.probe_accuracy:.3f}")
        self._bar.update(completed=step, stats="  ".join(parts))
