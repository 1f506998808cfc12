"""How the geometry reports progress: through a callback its caller passes, never a bar of its own.

A long geometry loop (pairwise streaming over samples, farthest-point landmarks) accepts
``progress``, one of

* ``False`` or ``None``: nothing is reported;
* a *progress factory*: a callable ``factory(total, description)`` returning a context manager
  whose ``advance(n)`` the loop calls after each ``n`` units of work (`taskspace.ui.progress.
  progress_bar` draws a terminal bar, a test may count the calls);
* ``True``: the default factory, which `taskspace.ui.progress` installs with
  `set_default_progress` when it is imported (the store, the training loops and the top-level
  ``taskspace`` names import it). Without one installed, ``True`` reports nothing.

The geometry imports nothing else of taskspace (DESIGN.md), so it holds the hook and the UI fills
it, not the other way round.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol


class Progress(Protocol):
    """What a loop sees: ``advance(n)`` after ``n`` more units of work."""

    def advance(self, n: int = 1) -> None: ...


#: ``factory(total, description)`` -> a context manager yielding a `Progress`.
ProgressFactory = Callable[[int, str], Any]

_default_factory: ProgressFactory | None = None


def set_default_progress(factory: ProgressFactory | None) -> ProgressFactory | None:
    """Install the factory that ``progress=True`` uses; returns the one it replaces."""
    global _default_factory
    previous, _default_factory = _default_factory, factory
    return previous


class _Silent:
    def advance(self, n: int = 1) -> None:
        pass


def as_factory(progress) -> ProgressFactory | None:
    """The factory that ``progress`` stands for (None: report nothing).

    Raises
    ------
    TypeError
        If ``progress`` is neither a bool, None nor a callable.
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        return _default_factory
    if callable(progress):
        return progress
    raise TypeError(
        f"progress must be a bool or a callable factory(total, description), "
        f"got {type(progress).__name__}"
    )


@contextlib.contextmanager
def reporting(progress, total: int, description: str) -> Iterator[Progress]:
    """Open the progress ``progress`` stands for over ``total`` units; a silent one if none.

    >>> calls = []
    >>> class Counter:
    ...     def __enter__(self): return self
    ...     def __exit__(self, *exc): pass
    ...     def advance(self, n=1): calls.append(n)
    >>> with reporting(lambda total, description: Counter(), 5, "work") as p:
    ...     p.advance(2); p.advance(3)
    >>> calls
    [2, 3]
    """
    factory = as_factory(progress)
    if factory is None:
        yield _Silent()
        return
    with factory(total, description) as bar:
        yield bar
