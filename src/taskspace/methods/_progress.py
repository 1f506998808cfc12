"""The training progress bar: steps, loss, accuracy, probe accuracy and the time left."""

from __future__ import annotations

import math

from taskspace.geometry.progressbar import ProgressBar


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
        self._bar = ProgressBar(enabled, total, description, completed=start, transient=False,
                                count=True, stats=True, bar_width=24, style="bold")

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
