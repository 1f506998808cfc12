"""Reports of a study: one self-contained interactive HTML file, and PNG/PDF figures.

The analyses describe their figures (`taskspace.study.analyses.figure`); this package alone
draws them: `to_plotly` for the report, `to_matplotlib` for the static files.
"""

from __future__ import annotations

from pathlib import Path

from taskspace.report.figures import to_matplotlib, write_figures
from taskspace.report.html import render
from taskspace.report.plotly_figures import to_plotly
from taskspace.store.atomic import write_text_atomic


def write_report(store, results, study_config_text: str | None = None,
                 out_path="report.html", title: str = "taskspace report") -> Path:
    """Write the analyses' results as one HTML file that works offline.

    plotly.js is embedded once, in the page's head; each figure is drawn from its JSON by
    ``Plotly.newPlot``. The page holds every finding, figure and table (tables cut at
    ``html.MAX_ROWS`` rows) and the study's configuration text. Written atomically
    (`taskspace.store.atomic`). Returns the path.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    text = render(results, study_config_text, title=title,
                  store_path=getattr(store, "path", None))
    write_text_atomic(out_path, text)
    return out_path


__all__ = ["render", "to_matplotlib", "to_plotly", "write_figures", "write_report"]
