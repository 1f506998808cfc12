"""The self-contained HTML report: plotly.js embedded once, every figure, table and finding."""

from __future__ import annotations

import datetime
import html
import json

from taskspace._version import __version__

#: Rows of a table shown in the report; longer tables are cut with a note.
MAX_ROWS = 200

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
.finding { background: #f3f6fa; border-left: 4px solid #1f77b4; padding: 0.6em 1em; }
.na { border-left-color: #999; color: #666; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
table.data td, table.data th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
.tablewrap { max-height: 420px; overflow: auto; }
pre { background: #f7f7f7; padding: 1em; overflow: auto; font-size: 0.85em; }
"""


def _table_html(table) -> str:
    if table is None or table.empty:
        return "<p><em>No table.</em></p>"
    shown = table.head(MAX_ROWS)
    note = ""
    if len(table) > MAX_ROWS:
        note = f"<p><em>First {MAX_ROWS} of {len(table)} rows.</em></p>"
    body = shown.to_html(classes="data", index=False, float_format=lambda x: f"{x:.4g}",
                         border=0, na_rep="–")
    return f'<div class="tablewrap">{body}</div>{note}'


def _json_for_script(text: str) -> str:
    # "</" inside a <script> would end it early; "<\/" is the same string in JavaScript.
    return text.replace("</", "<\\/")


def render(results, study_config_text: str | None = None, title: str = "taskspace report",
           store_path: str | None = None) -> str:
    """The report as one HTML string (see :func:`taskspace.report.write_report`)."""
    from plotly.offline import get_plotlyjs

    from taskspace.report.plotly_figures import to_plotly

    parts, scripts = [], []
    findings = "".join(
        f'<li><a href="#{html.escape(r.name)}">{html.escape(r.title)}</a>: '
        f"{html.escape(r.finding.headline)}</li>" for r in results)
    for i, r in enumerate(results):
        klass = "finding" if getattr(r, "applicable", True) else "finding na"
        section = [f'<section id="{html.escape(r.name)}"><h2>{i + 1}. {html.escape(r.title)}</h2>',
                   f'<p class="{klass}">{html.escape(r.finding.headline)}</p>',
                   f'<p class="{klass}">{html.escape(r.finding.details)}</p>'
                   if r.finding.details else ""]
        if r.figure is not None:
            div = f"figure-{i}"
            section.append(f'<div id="{div}" class="figure"></div>')
            figure = _json_for_script(to_plotly(r.figure).to_json())
            scripts.append(f"draw({json.dumps(div)}, {figure});")
        section.append(_table_html(r.table))
        section.append("</section>")
        parts.append("\n".join(section))
    config = ("<section id='config'><h2>Study configuration</h2><pre>"
              f"{html.escape(study_config_text)}</pre></section>") if study_config_text else ""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    source = f" from store <code>{html.escape(str(store_path))}</code>" if store_path else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
<p>Made by taskspace {__version__} on {stamp}{source}.</p>
<h2>Findings</h2><ol>{findings}</ol>
{"".join(parts)}
{config}
<script type="text/javascript">
function draw(id, fig) {{
  Plotly.newPlot(id, fig.data, fig.layout, {{responsive: true, displaylogo: false}});
}}
{chr(10).join(scripts)}
</script>
</body></html>
"""
