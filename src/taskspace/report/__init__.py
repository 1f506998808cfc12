"""Reports of a study: one self-contained interactive HTML file, and PNG/PDF figures.

The analyses describe their figures (`taskspace.study.analyses.figure`); this package alone
draws them: `to_plotly` for the report, `to_matplotlib` for the static files.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from taskspace.report.figures import to_matplotlib, write_figures
from taskspace.report.html import render
from taskspace.report.plotly_figures import to_plotly
from taskspace.store.atomic import write_text_atomic


def check_writable(out_path) -> Path:
    """Fail now, with a clear message, when a file cannot be written at ``out_path``.

    Creates the missing parent folders and writes (and removes) a temporary file beside
    ``out_path``, so that a report that cannot be saved fails before the analyses run rather
    than after. Raises ``OSError`` (``PermissionError``, ``IsADirectoryError``, ...) saying
    which path; returns ``out_path`` as a Path.
    """
    out_path = Path(out_path)
    if out_path.is_dir():
        raise IsADirectoryError(
            f"cannot write the report to {out_path}: it is a folder "
            "(give a file name, e.g. report.html)"
        )
    existing = next(p for p in out_path.parents if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(
            f"cannot write the report to {out_path}: {existing} is a file, not a folder"
        )
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out_path.parent, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise type(exc)(f"cannot write the report to {out_path}: {exc.strerror or exc}") from None
    return out_path


def write_report(
    store,
    results,
    study_config_text: str | None = None,
    out_path="report.html",
    title: str = "taskspace report",
    packed: bool = True,
) -> Path:
    """Write the analyses' results as one HTML file that works offline.

    plotly.js and the figures' JSON are embedded once each; the figures are drawn by
    ``Plotly.newPlot``. The page holds every finding (a verdict badge and the headline, the
    details folded), figure and table (human column names, cut at ``html.MAX_ROWS`` rows) and
    the study's configuration text. ``packed`` (default) stores plotly.js and the figures'
    data gzip-compressed as Base85 text that the browser unpacks (``DecompressionStream``);
    ``packed=False`` embeds them as plain text, about three times larger. Written atomically
    (`taskspace.store.atomic`). Returns the path.
    """
    out_path = check_writable(out_path)
    text = render(
        results,
        study_config_text,
        title=title,
        store_path=getattr(store, "path", None),
        packed=packed,
    )
    write_text_atomic(out_path, text)
    return out_path


__all__ = [
    "check_writable",
    "render",
    "to_matplotlib",
    "to_plotly",
    "write_figures",
    "write_report",
]
