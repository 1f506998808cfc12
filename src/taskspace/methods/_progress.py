"""The training progress bar (rich): steps, loss, accuracy, probe accuracy and the time left."""

from __future__ import annotations

import math

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)


class TrainingProgress:
    """A context manager around one rich progress bar; does nothing when ``enabled`` is False.

    ``due(step)`` says when to refresh the numbers (about 100 times per run, and never more often
    than needed: reading the running loss synchronises with the GPU).
    """

    def __init__(self, description: str, total: int, start: int, enabled: bool = True):
        self.enabled = enabled
        self.every = max(1, total // 100)
        self.probe_accuracy = math.nan
        self._progress = None
        if enabled:
            self._progress = Progress(
                # The description holds the task's name: user text, never read as markup.
                TextColumn("{task.description}", style="bold", markup=False),
                BarColumn(bar_width=24), MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}", markup=False), TextColumn("eta"),
                TimeRemainingColumn(),
            )
            self._task = self._progress.add_task(description, total=total, completed=start,
                                                 stats="")

    def __enter__(self):
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()

    def due(self, step: int) -> bool:
        return self.enabled and step % self.every == 0

    def update(self, step: int, means: dict[str, float]) -> None:
        if self._progress is None:
            return
        parts = []
        loss, acc = means.get("train_loss", math.nan), means.get("train_accuracy", math.nan)
        if math.isfinite(loss):
            parts.append(f"loss {loss:.3f}")
        if math.isfinite(acc):
            parts.append(f"acc {acc:.3f}")
        if math.isfinite(self.probe_accuracy):
            parts.append(f"probe {self.probe_accuracy:.3f}")
        self._progress.update(self._task, completed=step, stats="  ".join(parts))
