"""The HTML report (self-contained, plotly.js once, every finding and table), the static figures,
and a real headless Chromium opening the report."""

import html
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.test_analyses import build_store

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    from taskspace.report import write_report
    from taskspace.study.analyses import run_analyses

    root = tmp_path_factory.mktemp("report")
    store = build_store(root / "store")
    results = run_analyses(store, n_boot=10)
    config = '[study]\nname = "synthetic </script> test"\n'
    path = write_report(store, results, study_config_text=config, out_path=root / "r.html")
    return root, results, path, config


def _unpacked(text: str, node_id: str) -> str:
    """The text of a data script of the report, unpacked as the page's JavaScript does."""
    import base64
    import gzip
    import re

    found = re.findall(
        rf'<script type="[^"]+" id="{node_id}" data-packed="([^"]+)">(.*?)</script>', text, re.S
    )
    assert len(found) == 1, node_id
    packing, body = found[0]
    if packing == "gzip-base85":
        return gzip.decompress(base64.b85decode(body.strip())).decode("utf-8")
    return body  # "</" written "<\\/": the same JavaScript and JSON


@pytest.mark.slow
def test_report_is_self_contained(made):
    import json

    from plotly.offline import get_plotlyjs

    from taskspace.report.findings import shown_finding

    _, results, path, config = made
    text = path.read_text(encoding="utf-8")
    assert _unpacked(text, "plotly-js") == get_plotlyjs()  # the bundle, exactly once
    assert text.count("<script") == 3  # plotly.js, the figures' data, the code
    assert "<script src" not in text and '<link rel="stylesheet" href' not in text
    figures = json.loads(_unpacked(text, "figure-data"))
    assert len(figures["figures"]) == sum(r.figure is not None for r in results)
    # plotly's layout template once for all figures, not once per figure
    assert figures["template"] and all(
        "template" not in f["layout"] for f in figures["figures"].values()
    )
    for r in results:
        shown = shown_finding(r)
        assert 0 < len(shown.headline) <= 140
        assert text.count(html.escape(shown.headline)) == 1, r.name  # the headline once
        assert f'id="{r.name}"' in text
        first = r.table.iloc[0]
        assert html.escape(str(first.iloc[0])) in text
    assert text.count('<span class="badge ') == 2 * len(results)  # overview and section
    assert html.escape(config) in text
    assert "<details" in text and "95% " in text and "ci_low" not in text


def test_each_finding_header_says_its_verdict_once(made):
    """The badge says the verdict; the headline beside it does not say it again."""
    import re

    _, results, path, _ = made
    text = path.read_text(encoding="utf-8")
    headers = re.findall(r'<p class="finding[^"]*">(.*?)</p>', text, re.S)
    assert len(headers) == len(results)
    for header in headers:
        verdict = re.match(r'<span class="badge [a-z-]+">([^<]*)</span>', header).group(1)
        words = html.unescape(re.sub(r"<[^>]+>", " ", header))
        # "disagrees" does not count as "agrees": whole words only
        assert len(re.findall(rf"\b{re.escape(verdict)}\b", words)) == 1, words


def test_plain_report_holds_plotly_js_as_text_and_is_larger(made, tmp_path):
    from plotly.offline import get_plotlyjs

    from taskspace.report import write_report

    _, results, packed, _ = made
    plain = write_report(None, results, out_path=tmp_path / "plain.html", packed=False)
    text = plain.read_text(encoding="utf-8")
    assert _unpacked(text, "plotly-js") == get_plotlyjs().replace("</", "<\\/")
    assert plain.stat().st_size > 2.5 * packed.stat().st_size
    assert packed.stat().st_size < 2_000_000


def test_report_into_a_path_that_cannot_be_written_fails_first(tmp_path):
    from taskspace.report import check_writable, write_report

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(NotADirectoryError, match="a-file is a file, not a folder"):
        check_writable(blocker / "sub" / "report.html")
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        write_report(None, [], out_path=tmp_path)
    assert check_writable(tmp_path / "new" / "r.html").parent.is_dir()


@pytest.mark.slow
def test_write_figures_png_and_pdf(made):
    from PIL import Image

    from taskspace.report import write_figures

    root, results, _, _ = made
    paths = write_figures(results, root / "figures")
    assert len(paths) == 2 * sum(r.figure is not None for r in results)
    for p in paths:
        assert p.stat().st_size > 1000
    png = Image.open(root / "figures" / "low_dimension.png").convert("RGB")
    assert len(np.unique(np.asarray(png).reshape(-1, 3), axis=0)) > 50


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (Debian chromium)")
def test_report_in_headless_chromium(made, tmp_path):
    from PIL import Image

    from taskspace.report import write_report

    _, results, _, _ = made
    # Only the 3-D figure, so that it lies inside the screenshot.
    page = write_report(None, results[:1], out_path=tmp_path / "inpca.html")
    shot = tmp_path / "shot.png"
    flags = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=8000",
        "--window-size=1200,1400",
    ]
    run = subprocess.run(
        [*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    errors = [
        line
        for line in run.stderr.splitlines()
        if "Uncaught" in line or ("CONSOLE" in line and ("Error" in line or "ERROR" in line))
    ]
    assert not errors, errors
    assert shot.exists(), run.stderr[-2000:]
    image = np.asarray(Image.open(shot).convert("RGB"))
    plot = image[500:, :]  # below the findings
    assert len(np.unique(plot.reshape(-1, 3), axis=0)) > 200
    dom = subprocess.run(
        [*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert "gl-container" in dom.stdout or "<canvas" in dom.stdout
    assert "main-svg" in dom.stdout
    # The whole report: every figure is drawn (one error stops the figures after it) and the
    # episodic band is on the page.
    whole = subprocess.run(
        [*flags, "--dump-dom", made[2].as_uri()], capture_output=True, text=True, timeout=120
    )
    errors = [line for line in whole.stderr.splitlines() if "Uncaught" in line]
    assert not errors, errors
    drawn = whole.stdout.count('class="plot-container plotly"')
    assert drawn == sum(r.figure is not None for r in results)
    assert "opacity: 0.25;" in whole.stdout and "fill: rgb(153, 153, 153)" in whole.stdout
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


# ---- the figures: one description, two drawings that agree, no matplotlib warning ------------


def draw_strict(figure):
    """Both drawings of a figure description, with every warning an error (matplotlib's "Tight
    layout not applied" among them); the static one is rendered to PNG and PDF so that its layout
    runs."""
    import io
    import warnings

    from taskspace.report import to_matplotlib, to_plotly

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interactive = to_plotly(figure)
        interactive.to_json()
        static = to_matplotlib(figure)
        static.savefig(io.BytesIO(), format="png", dpi=60)
        static.savefig(io.BytesIO(), format="pdf")
    return interactive, static


@pytest.fixture(scope="module")
def drawn(made):
    import matplotlib.pyplot as plt

    _, results, _, _ = made
    out = {r.name: (r.figure, *draw_strict(r.figure)) for r in results if r.figure is not None}
    yield out
    for _, _, static in out.values():
        plt.close(static)


def _plotly_legend(fig) -> list[str]:
    return [t.name for t in fig.data if t.showlegend is not False and t.name]


def _static_legend(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


@pytest.mark.slow
def test_every_figure_draws_without_warning_and_both_drawings_agree(drawn):
    from taskspace.study.analyses.figure import legend_entries

    assert len(drawn) == 6
    for name, (spec, interactive, static) in drawn.items():
        expected = [e.name for e in legend_entries(spec)]
        assert _plotly_legend(interactive) == expected, name
        assert _static_legend(static) == expected, name
        titles = [p.title for p in sorted(spec.panels, key=lambda p: (p.row, p.col)) if p.title]
        plotly_titles = [a.text for a in interactive.layout.annotations]
        assert plotly_titles[: len(titles)] == titles, name
        static_titles = [ax.get_title() for ax in static.axes if ax.get_title()]
        assert sorted(static_titles) == sorted(titles), name


def _title_and_subtitle(static):
    """The static figure's title and subtitle Texts (None: none), laid out as they are drawn."""
    static.canvas.draw()
    subtitles = [a for a in static.artists if hasattr(a, "get_text")]
    return static._suptitle, (subtitles[0] if subtitles else None)


def _inside(static, text) -> bool:
    extent = text.get_window_extent(static.canvas.get_renderer())
    box = static.bbox
    return box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0 <= box.y1


def test_static_titles_fit_the_figure_on_one_line(drawn):
    """Measured by matplotlib's renderer: each title is one line no wider than its figure, the
    weighting of the InPCA picture on a subtitle line of its own, above the panels."""
    for name, (spec, _, static) in drawn.items():
        title, subtitle = _title_and_subtitle(static)
        assert title.get_text().rstrip("\n") == spec.title, name  # one line, not wrapped
        assert _inside(static, title), name
        assert (subtitle is None) == (not spec.subtitle), name
    spec, _, static = drawn["low_dimension"]
    title, subtitle = _title_and_subtitle(static)
    assert subtitle.get_text() == "each model weighted equally" and _inside(static, subtitle)
    renderer = static.canvas.get_renderer()
    below = subtitle.get_window_extent(renderer)
    assert below.y1 <= title.get_window_extent(renderer).y1 - title.get_fontsize()
    assert all(ax.get_window_extent(renderer).y1 <= below.y0 + 1 for ax in static.axes)


@pytest.mark.parametrize("words", [12, 18, 60])
def test_a_long_static_title_shrinks_then_wraps_inside_the_figure(words):
    import matplotlib.pyplot as plt

    from taskspace.report import to_matplotlib
    from taskspace.report.figures import MIN_TITLE_SIZE, TITLE_SIZE
    from taskspace.study.analyses.figure import Figure, Panel, Series

    line = Series([0.0, 1.0], [0.0, 1.0], name="a")
    text = " ".join(["stress"] * words)
    static = to_matplotlib(Figure([Panel([line])], title=text, subtitle="each run weighted"))
    title, subtitle = _title_and_subtitle(static)
    assert _inside(static, title) and _inside(static, subtitle)
    assert MIN_TITLE_SIZE <= title.get_fontsize() <= TITLE_SIZE
    lines = title.get_text().rstrip("\n").split("\n")
    assert " ".join(lines).split() == text.split()  # every word, shrunk before it is wrapped
    assert len(lines) == 1 or title.get_fontsize() == MIN_TITLE_SIZE
    plt.close(static)


def test_static_axis_labels_stay_inside_and_clear_of_the_legend(drawn):
    """The 3-D panel's z label stands outside its axes' box, where the legend goes."""
    for name, (_, _, static) in drawn.items():
        static.canvas.draw()
        renderer = static.canvas.get_renderer()
        legends = [legend.get_window_extent(renderer) for legend in static.legends]
        for ax in static.axes:
            axes = [ax.xaxis, ax.yaxis] + ([ax.zaxis] if hasattr(ax, "zaxis") else [])
            for label in (a.label for a in axes if a.label.get_text()):
                assert _inside(static, label), (name, label.get_text())
                extent = label.get_window_extent(renderer)
                assert not any(extent.overlaps(box) for box in legends), (name, label.get_text())


def test_legend_titles_are_short_lines_in_both_drawings(drawn):
    from taskspace.study.analyses.figure import LEGEND_TITLE_CHARS, legend_title_lines

    for name, (spec, interactive, static) in drawn.items():
        lines = legend_title_lines(spec)
        assert " ".join(lines) == " ".join(spec.legend_title.split()), name  # every word
        assert all(len(line) <= LEGEND_TITLE_CHARS for line in lines), name
        assert (interactive.layout.legend.title.text or "") == "<br>".join(lines), name
        shown = static.legends[0].get_title().get_text() if static.legends else ""
        assert shown == "\n".join(lines), name
    spec, _, _ = drawn["finetuning"]
    assert legend_title_lines(spec) == ["task: mean over runs, 95% interval;", "circles: runs"]


def test_plotly_log_axis_labels_decades_only(drawn):
    """plotly's own labels of a log axis over decades ("0.01, 2, 5, 0.1, 2, 5") read "5" for
    0.5; the report labels the powers of ten, as matplotlib does."""
    _, interactive, _ = drawn["contrastive"]
    axis = interactive.layout.yaxis
    assert axis.type == "log" and axis.dtick == 1 and axis.minor.dtick == "D2"


def test_3d_legend_keys_are_drawn_at_a_readable_size(drawn):
    from taskspace.report.plotly_figures import LEGEND_KEY_3D

    _, interactive, _ = drawn["low_dimension"]
    keys = [t for t in interactive.data if t.type == "scatter3d" and list(t.x) == [None]]
    assert keys and all(t.marker.size >= LEGEND_KEY_3D for t in keys if "markers" in t.mode)


def test_tree_panels_are_titled(drawn):
    _, interactive, static = drawn["tree"]
    titles = ["end models (d_B)", "trajectories (d_traj)", "WordNet (mean path distance)"]
    assert [ax.get_title() for ax in static.axes] == titles
    assert [a.text for a in interactive.layout.annotations] == titles


def test_inpca_every_run_from_start_to_end_with_truth_ignorance_and_method_styles(made, drawn):
    from taskspace.study.analyses.low_dimension_figure import METHOD_DASHES, METHOD_SYMBOLS

    _, results, _, _ = made
    spec, interactive, static = drawn["low_dimension"]
    series = spec.panels[0].series
    lines = [s for s in series if s.mode == "lines" and s.x.size]
    runs = {s.hover[0].split("\n")[0] for s in lines}
    assert len(runs) == len(lines) == results[0].summary["n_runs"]  # one line per run
    tasks, methods = (
        ["all", "upper_body", "footwear", "trouser_bag"],
        ["supervised", "protonet", "simclr", "finetune"],
    )
    legend = [
        "start of a run",
        "truth (labels)",
        "ignorance (uniform prediction)",
        *tasks,
        *methods,
    ]
    assert _plotly_legend(interactive) == _static_legend(static) == legend
    # a method's runs share one line style, different methods differ (also in the PNG)
    dash = {}
    for s in lines:
        dash.setdefault(s.hover[0].split("method ")[1].split("\n")[0], set()).add(s.dash)
    assert all(len(v) == 1 for v in dash.values())
    assert [dash[m].pop() for m in methods] == list(METHOD_DASHES)
    keys = {s.name: s for s in series if s.name in methods}
    assert [keys[m].symbol for m in methods] == list(METHOD_SYMBOLS[:4])
    # each run's start and end are marked: starts in one series, ends by (task, method)
    starts = next(s for s in series if s.name == "start of a run")
    assert starts.x.size == len(lines)
    ends = [s for s in series if s.mode == "markers" and s.name is None]
    assert sum(s.x.size for s in ends) == len(lines)
    assert {s.symbol for s in ends} == set(METHOD_SYMBOLS[:4])
    for line in lines:
        assert any(np.isclose(e.x, line.x[-1]).any() for e in ends)
    assert f"{results[0].summary['stress_3']:.2f} of the stress" in spec.title
    assert interactive.layout.scene.xaxis.nticks <= 6


def _plotly_3d_glyphs() -> dict[str, str]:
    """plotly.js's 3-D marker symbols and the character that draws each, read from the bundle
    that the report embeds (``{}`` if this plotly.js writes the table differently)."""
    import json
    import re

    from plotly.offline import get_plotlyjs

    found = re.search(r'\{circle:"[^{}]*"diamond-open":"[^{}]*\}', get_plotlyjs())
    if found is None:
        return {}
    as_json = re.sub(r"([{,])([A-Za-z]+):", r'\1"\2":', found.group(0))
    return json.loads(as_json)


def _drawable(glyph: str) -> bool:
    """A character that any font draws: ASCII or a geometric shape (U+25A0–U+25FF), not an
    emoji, which a browser without an emoji font draws as an empty box."""
    return all(ord(c) < 0x80 or 0x25A0 <= ord(c) <= 0x25FF for c in glyph)


def test_3d_markers_are_shapes_that_plotly_draws_in_any_browser():
    from plotly.validator_cache import ValidatorCache

    from taskspace.report import to_plotly
    from taskspace.study.analyses.figure import SYMBOLS, Figure, Panel, Series

    allowed = set(ValidatorCache.get_validator("scatter3d.marker", "symbol").values)
    glyphs = _plotly_3d_glyphs()
    assert not glyphs or set(glyphs) == allowed  # the table read is the one plotly.js uses
    assert not glyphs or not _drawable(glyphs["x"])  # why "x" is never drawn in 3-D
    one = [Series([0.0], [0.0], [0.0], name=s, mode="markers", symbol=s) for s in SYMBOLS]
    fig = to_plotly(Figure([Panel(one)]))
    for trace in fig.data:
        assert trace.type == "scatter3d"
        assert trace.marker.symbol in allowed, trace.name
        if glyphs:
            assert _drawable(glyphs[trace.marker.symbol]), (trace.name, trace.marker.symbol)


def test_inpca_3d_reference_marks_differ_from_starts_and_ends(drawn):
    from plotly.validator_cache import ValidatorCache

    allowed = set(ValidatorCache.get_validator("scatter3d.marker", "symbol").values)
    _, interactive, _ = drawn["low_dimension"]
    traces = [t for t in interactive.data if t.type == "scatter3d"]
    assert traces and all(t.marker.symbol in allowed for t in traces)
    symbol = {t.name: t.marker.symbol for t in traces if t.name}
    ignorance, truth = symbol["ignorance (uniform prediction)"], symbol["truth (labels)"]
    ends = {t.marker.symbol for t in traces if t.mode == "markers" and not t.name}
    assert ends and ignorance not in {truth, symbol["start of a run"], *ends}
    assert truth not in {symbol["start of a run"], *ends}
    # its legend entry is drawn with the symbol of the marker in the scene
    entry = next(t for t in traces if t.name == "ignorance (uniform prediction)")
    assert entry.showlegend is not False and len(entry.x) == 1


def test_truth_and_ignorance_are_placed_out_of_sample(made):
    import taskspace as ts
    from taskspace.study.analyses.low_dimension_figure import reference_points

    root, _, _, _ = made
    store = ts.Store.open(root / "store")
    records = store.runs()
    records = records[records["n_records"] > 0] if "n_records" in records else records
    D = store.distance_matrix(records["model_id"])
    inpca = ts.InPCA(n_components=3, metric="precomputed").fit(D)
    placed = reference_points(store, records, inpca)
    models = np.asarray(store.models(list(records["model_id"])), dtype=np.float64)
    C = store.n_classes
    for name, model in (
        ("truth (labels)", np.eye(C)[store.labels]),
        ("ignorance (uniform prediction)", np.full_like(models[0], 1 / C)),
    ):
        d = np.array([[float(ts.bhattacharyya(model, m)) for m in models]])
        np.testing.assert_allclose(placed[name], inpca.transform(d)[0], rtol=1e-9, atol=1e-12)
    # the distances low_dimension measures on its one pass over the runs place them the same
    import importlib

    from taskspace.study.analyses._common import run_table

    ld = importlib.import_module("taskspace.study.analyses.low_dimension")
    _, d = ld._record_measures(store, run_table(store), records.reset_index(drop=True))
    again = reference_points(store, records, inpca, d)
    for name in placed:
        np.testing.assert_allclose(again[name], placed[name], rtol=1e-8, atol=1e-9)
    # a fitted model placed out of sample lands on its own embedding: the placement is right
    own = np.array([[float(ts.bhattacharyya(models[5], m)) for m in models]])
    np.testing.assert_allclose(inpca.transform(own)[0], inpca.embedding_[5], atol=1e-9)


def test_finetuning_log_axis_and_interval_bars_per_task(drawn):
    spec, interactive, static = drawn["finetuning"]
    assert all(p.xlog for p in spec.panels)
    assert interactive.layout.xaxis.type == "log" and static.axes[0].get_xscale() == "log"
    means = [s for s in spec.panels[0].series if s.bars]
    assert [s.name for s in means] == ["footwear"]  # the one fine-tuned task
    assert np.all(means[0].ylow <= means[0].y) and np.all(means[0].y <= means[0].yhigh)
    assert np.all(means[0].yhigh > means[0].ylow)
    bars = [t for t in interactive.data if t.error_y is not None and t.error_y.array is not None]
    assert len(bars) == 2  # one per panel


def test_contrastive_log_axis_shows_small_and_large_distances(drawn):
    spec, interactive, static = drawn["contrastive"]
    assert spec.panels[0].ylog and static.axes[0].get_yscale() == "log"
    assert interactive.layout.yaxis.type == "log"
    values = np.concatenate([s.y for s in spec.panels[0].series])
    lo, hi = static.axes[0].get_ylim()
    assert lo <= values.min() and values.max() <= hi and values.max() / values.min() > 10


def test_episodic_band_in_both_drawings(drawn):
    from matplotlib.patches import Rectangle

    from taskspace.study.analyses.episodic import MIDDLE

    _, interactive, static = drawn["episodic_vs_supervised"]
    shapes = [(s.x0, s.x1) for s in interactive.layout.shapes]
    assert shapes == [MIDDLE]
    # the legend says what each shaded thing is; the title fits on one line
    legend = _static_legend(static)
    assert legend[0].startswith("middle of training") and "95% interval" in legend[-1]
    assert _plotly_legend(interactive) == legend and "\n" not in static._suptitle.get_text()
    assert not static.legends[0].get_title().get_text()
    filled = [t for t in interactive.data if t.fill == "tonexty"]
    assert filled and len(static.axes[0].collections) >= 1  # the jackknife band
    ax = static.axes[0]
    bands = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bands) == 1
    x0 = bands[0].get_x()
    assert (x0, x0 + bands[0].get_width()) == pytest.approx(MIDDLE)


def test_progress_small_multiples_and_unclipped_heatmap_labels(made, drawn):
    _, results, _, _ = made
    spec, interactive, static = drawn["progress_on_other_tasks"]
    tasks = list(dict.fromkeys(results[1].result.table["train_task"]))
    assert _plotly_legend(interactive) == tasks
    heatmap = next(t for t in interactive.data if t.type == "heatmap")
    assert list(heatmap.y) == tasks and interactive.layout.yaxis.autorange == "reversed"
    curves = [p for p in spec.panels if p.series]
    assert [p.title for p in curves] == [f"trained on {a}" for a in tasks]
    assert all(len(p.series) == len(tasks) for p in curves)
    assert _static_legend(static) == tasks  # one entry per task B, not A×B
    renderer = static.canvas.get_renderer()
    heat = next(ax for ax in static.axes if ax.images)
    box = static.bbox
    for label in heat.get_xticklabels() + heat.get_yticklabels():
        extent = label.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, label.get_text()
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, label.get_text()
    legend = static.legends[0].get_window_extent(renderer)
    for ax in static.axes:
        assert not ax.get_window_extent(renderer).overlaps(legend)


@pytest.mark.parametrize("n", range(2, 22))
def test_progress_grid_has_no_empty_cells_below_the_heatmap(n):
    from taskspace.study.analyses.progress_figure import (
        grid_columns,
        row_spans,
        small_multiple_cells,
    )

    block = 3 if n > 10 else 2
    cols = grid_columns(n, block_rows=block)
    cells = small_multiple_cells(n, cols=cols, block_rows=block)
    spans = row_spans(cells, cols)
    last = max(r for r, _ in cells)
    first = min(c for r, c in cells if r == last)  # 0 below the heatmap, 2 beside it
    assert sum(s for (r, _), s in zip(cells, spans, strict=True) if r == last) == cols - first
    assert all(s == 1 for (r, _), s in zip(cells, spans, strict=True) if r < last)
    assert max(spans) <= 3  # widened, never wider than three cells


def test_small_multiple_cells_fill_the_grid_around_the_heatmap():
    from taskspace.study.analyses.progress_figure import small_multiple_cells

    assert small_multiple_cells(3) == [(0, 2), (0, 3), (1, 2)]
    cells = small_multiple_cells(8)
    assert cells[:4] == [(0, 2), (0, 3), (1, 2), (1, 3)] and cells[4:] == [(2, c) for c in range(4)]
    assert len(set(small_multiple_cells(25))) == 25
    # a taller heatmap block (many tasks): panels beside its three rows, then full rows
    tall = small_multiple_cells(7, block_rows=3)
    assert tall[:6] == [(r, c) for r in range(3) for c in (2, 3)] and tall[6] == (3, 0)


def test_figure_description_rejects_bad_input():
    from taskspace.study.analyses.figure import Figure, Heatmap, Panel, Series

    with pytest.raises(ValueError, match="one length"):
        Series([0, 1], [0, 1, 2])
    with pytest.raises(ValueError, match="mode must be"):
        Series([0], [0], mode="bars")
    with pytest.raises(ValueError, match=r"shape \(len\(y\), len\(x\)\)"):
        Heatmap(np.zeros((2, 3)), x=["a", "b"], y=["c", "d"])
    with pytest.raises(ValueError, match="mixes 2-D and 3-D"):
        Panel([Series([0], [0]), Series([0], [0], z=[0])])
    with pytest.raises(ValueError, match="overlap"):
        Figure([Panel(title="a", colspan=2), Panel(title="b", col=1)], cols=2)
    with pytest.raises(ValueError, match="outside"):
        Figure([Panel(row=1)], rows=1)
    with pytest.raises(ValueError, match="figure must be"):
        from taskspace.report import to_matplotlib

        to_matplotlib(object())
