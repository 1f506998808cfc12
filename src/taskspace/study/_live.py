"""The live view of a study trained on a cluster: one line of totals and one bar per running run.

The totals line counts runs done / running / waiting (waiting: not started yet — for its
parent's checkpoint, or queued for a free worker). Each running run's bar shows its steps, its
speed (steps per second since it started or resumed in this session, recording included) and the
time it has left. A finished run's bar is replaced by one printed line.
"""

from __future__ import annotations

import math

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class StudyView:
    """A rich `Progress` of a study's runs (prints nothing when ``console`` is quiet)."""

    def __init__(self, keys, console):
        self.console = console
        self.n = len(keys)
        self.done = 0
        self.running: dict[str, int] = {}  # key -> rich task id
        self.base: dict[str, tuple[int, float]] = {}  # key -> (step, time) when it (re)started
        self.speed: dict[str, float] = {}
        self.progress = Progress(
            # Descriptions are run keys, which hold task names: user text, never markup.
            TextColumn("{task.description}", markup=False),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.total = self.progress.add_task("runs", total=self.n, info="")
        self._counts()

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def _counts(self) -> None:
        waiting = self.n - self.done - len(self.running)
        self.progress.update(
            self.total,
            completed=self.done,
            info=f"done {self.done} · running {len(self.running)} · waiting {waiting}",
        )

    def event(self, msg: dict) -> None:
        """Show one progress event of a task (`taskspace.study.run_task`)."""
        key = msg["key"]
        if msg.get("locked"):
            if key not in self.running:
                self.running[key] = self.progress.add_task(key, total=None, info="")
            self.progress.update(self.running[key], info="waiting for the run's lock")
            self._counts()
            return
        step, total, t = int(msg["step"]), int(msg["total"]), float(msg["t"])
        if msg.get("start") or key not in self.base:
            self.base[key] = (step, t)
        if key not in self.running:
            self.running[key] = self.progress.add_task(key, total=total, completed=step, info="")
            self._counts()
        s0, t0 = self.base[key]
        info = ""
        if t > t0 and step > s0:
            self.speed[key] = (step - s0) / (t - t0)
            info = f"{self.speed[key]:,.0f} steps/s"
        self.progress.update(self.running[key], total=total, completed=step, info=info)

    def finished(self, key: str, result: dict) -> None:
        """A run's task returned: print its line, count it done."""
        task = self.running.pop(key, None)
        if task is not None:
            self.progress.remove_task(task)
        self.done += 1
        if result["trained"]:
            rate = result["steps"] / result["seconds"] if result["seconds"] > 0 else math.nan
            line = Text.assemble(
                ("done", "green"),
                f" {key}: {result['steps']} steps in "
                f"{result['seconds']:.1f} s ({rate:,.0f} steps/s)",
            )
        else:
            line = Text(f"complete, skipped: {key}", style="dim")
        self.console.print(line, highlight=False)
        self._counts()
