"""How an analysis result shows itself in a notebook: headline, verdict, details, table and the
interactive figure (``AnalysisResult._repr_html_`` calls :func:`result_html`)."""

from __future__ import annotations

import html

from taskspace.report.findings import without_verdict
from taskspace.report.plotly_figures import to_plotly

#: Rows of the result's table shown in the notebook.
TABLE_ROWS = 12


def finding_parts(finding) -> tuple[str, str | None, str | None]:
    """(headline, verdict, details) of a finding: a ``Finding`` (``.headline``, ``.verdict``,
    ``.details``) or the text of one."""
    headline = getattr(finding, "headline", None)
    if headline is None:
        return str(finding), None, None
    verdict = getattr(finding, "verdict", None)
    details = getattr(finding, "details", None)
    if isinstance(details, list | tuple):
        details = " ".join(map(str, details))
    return (
        str(headline),
        None if verdict is None else str(verdict),
        None if not details else str(details),
    )


def result_html(result) -> str:
    """An analysis result as HTML: its title, the finding's verdict and headline (and details),
    the first rows of its table and its figure drawn with plotly (plotly.js from its CDN)."""
    headline, verdict, details = finding_parts(result.finding)
    parts = [f"<h3>{html.escape(str(result.title))}</h3>"]
    lead = f"<strong>{html.escape(verdict)}</strong> " if verdict else ""
    # the verdict stands in bold before the headline: not once more inside it
    shown = without_verdict(headline, verdict) if verdict else headline
    parts.append(f"<p>{lead}{html.escape(shown)}</p>")
    if details:
        parts.append(f"<p style='color:#555'>{html.escape(details)}</p>")
    table = getattr(result, "table", None)
    if table is not None and len(table):
        parts.append(
            table.head(TABLE_ROWS).to_html(index=False, float_format=lambda x: f"{x:.4g}", border=0)
        )
        if len(table) > TABLE_ROWS:
            parts.append(f"<p>… {len(table) - TABLE_ROWS:,} more rows (<code>.table</code>)</p>")
    if getattr(result, "figure", None) is not None:
        fig = to_plotly(result.figure)
        parts.append(fig.to_html(full_html=False, include_plotlyjs="cdn"))
    return f"<div class='taskspace-result'>{''.join(parts)}</div>"
