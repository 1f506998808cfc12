"""The self-contained HTML report: plotly.js embedded once, every figure, table and finding.

Each analysis is one section: its verdict as a coloured badge and its headline, the figure, then
the details and the table (human column names, `taskspace.report.columns`) folded in
``<details>``. plotly.js and the figures' data are embedded once each. By default both are
packed (gzip, then Base85 text) and unpacked by the browser's own ``DecompressionStream``: that
keeps the demo's report under 2 MB, where plotly.js alone is 4.8 MB. ``packed=False`` embeds
them as plain text instead, for browsers without ``DecompressionStream`` (before Chrome 80,
Firefox 113, Safari 16.4).
"""

from __future__ import annotations

import base64
import datetime
import gzip
import html
import json

from taskspace._version import __version__
from taskspace.report.columns import human_columns
from taskspace.report.findings import VERDICTS, shown_finding

#: Rows of a table shown in the report; longer tables are cut with a note.
MAX_ROWS = 200

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
.finding { background: #f3f6fa; border-left: 4px solid #1f77b4; padding: 0.6em 1em;
           font-size: 1.05em; }
.finding.na { border-left-color: #999; color: #555; }
.badge { display: inline-block; padding: 0.1em 0.55em; border-radius: 0.8em; color: #fff;
         font-size: 0.8em; font-weight: 600; margin-right: 0.5em; white-space: nowrap; }
.agrees { background: #2e7d32; } .inconclusive { background: #b26a00; }
.disagrees { background: #c62828; } .not-applicable { background: #757575; }
.no-verdict { background: #90a4ae; }
.reason { color: #555; }
ol.overview li { margin: 0.25em 0; }
details { margin: 0.5em 0; } summary { cursor: pointer; color: #1f4e79; }
.details-text { line-height: 1.45; max-width: 70em; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
table.data td, table.data th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
table.data th { background: #f3f3f3; vertical-align: bottom; }
.tablewrap { max-height: 420px; overflow: auto; }
pre { background: #f7f7f7; padding: 1em; overflow: auto; font-size: 0.85em; }
.warning { color: #c62828; }
"""

# Unpacks the data scripts (Base85 of gzip, or plain text), loads plotly.js, draws every figure.
_SCRIPT = r"""
const B85 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";
function b85decode(s) {
  const value = new Uint8Array(128);
  for (let i = 0; i < 85; i++) value[B85.charCodeAt(i)] = i;
  const pad = (5 - s.length % 5) % 5, n = s.length + pad;
  const out = new Uint8Array(n / 5 * 4);
  for (let i = 0, o = 0; i < n; i += 5, o += 4) {
    let acc = 0;
    for (let j = i; j < i + 5; j++) acc = acc * 85 + (j < s.length ? value[s.charCodeAt(j)] : 84);
    out[o] = acc >>> 24; out[o + 1] = (acc >>> 16) & 255; out[o + 2] = (acc >>> 8) & 255;
    out[o + 3] = acc & 255;
  }
  return out.subarray(0, out.length - pad);
}
async function unpack(id) {
  const node = document.getElementById(id);
  const text = node.textContent.trim();
  if (node.dataset.packed !== "gzip-base85") return text;
  const stream = new Blob([b85decode(text)]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}
async function drawAll() {
  const packed = document.getElementById("plotly-js").dataset.packed === "gzip-base85";
  if (packed && typeof DecompressionStream === "undefined") {
    for (const div of document.querySelectorAll("div.figure"))
      div.innerHTML = '<p class="warning">This browser cannot unpack the figures ' +
        '(no DecompressionStream); write the report with packed=False.</p>';
    return;
  }
  const lib = document.createElement("script");
  lib.text = await unpack("plotly-js");
  document.head.appendChild(lib);
  const payload = JSON.parse(await unpack("figure-data"));
  for (const [id, fig] of Object.entries(payload.figures)) {
    if (fig.layout.template === undefined) fig.layout.template = payload.template;
    Plotly.newPlot(id, fig.data, fig.layout, {responsive: true, displaylogo: false});
  }
}
drawAll();
"""


def _pack(text: str) -> str:
    # mtime=0: the same report text gives the same bytes
    return base64.b85encode(gzip.compress(text.encode("utf-8"), 9, mtime=0)).decode("ascii")


def _data_script(node_id: str, text: str, packed: bool) -> str:
    if packed:
        return (
            f'<script type="application/octet-stream" id="{node_id}" '
            f'data-packed="gzip-base85">{_pack(text)}</script>'
        )
    # "</" inside a <script> would end it early; "<\/" is the same string in JavaScript.
    kind = "application/json" if node_id == "figure-data" else "text/plain"
    safe = text.replace("</", "<\\/")
    return f'<script type="{kind}" id="{node_id}" data-packed="none">{safe}</script>'


def _table_html(name: str, table) -> str:
    if table is None or table.empty:
        return ""
    shown = human_columns(name, table.head(MAX_ROWS))
    note = ""
    if len(table) > MAX_ROWS:
        note = f"<p><em>First {MAX_ROWS} of {len(table)} rows.</em></p>"
    body = shown.to_html(
        classes="data", index=False, float_format=lambda x: f"{x:.4g}", border=0, na_rep="–"
    )
    rows = f"{len(table)} row{'s' if len(table) != 1 else ''}"
    return (
        f'<details class="table"><summary>Table ({rows})</summary>'
        f'<div class="tablewrap">{body}</div>{note}</details>'
    )


def badge(verdict: str) -> str:
    """The verdict as an HTML badge (``""``: "no verdict")."""
    klass = verdict.replace(" ", "-") if verdict in VERDICTS else "no-verdict"
    return f'<span class="badge {klass}">{html.escape(verdict or "no verdict")}</span>'


def _finding_html(shown) -> str:
    klass = "finding na" if shown.verdict == "not applicable" else "finding"
    reason = ""
    if shown.reason and shown.reason not in shown.headline:
        reason = f' <span class="reason">({html.escape(shown.reason)})</span>'
    return f'<p class="{klass}">{badge(shown.verdict)}{html.escape(shown.headline)}{reason}</p>'


def _section(i: int, r, figure_id: str | None) -> str:
    shown = shown_finding(r)
    name = html.escape(r.name)
    parts = [f'<section id="{name}"><h2>{i + 1}. {html.escape(r.title)}</h2>', _finding_html(shown)]
    if figure_id is not None:
        parts.append(f'<div id="{figure_id}" class="figure"></div>')
    if shown.details:
        parts.append(
            '<details class="details"><summary>Details</summary>'
            f'<p class="details-text">{html.escape(shown.details)}</p></details>'
        )
    parts.append(_table_html(r.name, r.table))
    parts.append("</section>")
    return "\n".join(parts)


def _figures_payload(results) -> tuple[str, dict[int, str]]:
    """The JSON of every figure (plotly's layout template once, shared), and each figure's div
    id by result index."""
    from taskspace.report.plotly_figures import to_plotly

    figures, ids, template = {}, {}, None
    for i, r in enumerate(results):
        if r.figure is None:
            continue
        fig = json.loads(to_plotly(r.figure).to_json())
        own = fig["layout"].pop("template", None)
        if template is None:
            template = own
        elif own != template:  # a figure with its own template keeps it
            fig["layout"]["template"] = own
        ids[i] = f"figure-{i}"
        figures[ids[i]] = fig
    text = json.dumps(
        {"template": template, "figures": figures}, separators=(",", ":"), allow_nan=False
    )
    return text, ids


def render(
    results,
    study_config_text: str | None = None,
    title: str = "taskspace report",
    store_path: str | None = None,
    packed: bool = True,
) -> str:
    """The report as one HTML string (see :func:`taskspace.report.write_report`)."""
    from plotly.offline import get_plotlyjs

    payload, ids = _figures_payload(results)
    overview = "".join(
        f'<li>{badge(shown_finding(r).verdict)}<a href="#{html.escape(r.name)}">'
        f"{html.escape(r.title)}</a></li>"
        for r in results
    )
    sections = "\n".join(_section(i, r, ids.get(i)) for i, r in enumerate(results))
    config = (
        (
            "<section id='config'><h2>Study configuration</h2><pre>"
            f"{html.escape(study_config_text)}</pre></section>"
        )
        if study_config_text
        else ""
    )
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    source = f" from store <code>{html.escape(str(store_path))}</code>" if store_path else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>Made by taskspace {__version__} on {stamp}{source}.</p>
<h2>Findings</h2><ol class="overview">{overview}</ol>
{sections}
{config}
{_data_script("plotly-js", get_plotlyjs(), packed)}
{_data_script("figure-data", payload, packed)}
<script type="text/javascript">{_SCRIPT}</script>
</body></html>
"""
