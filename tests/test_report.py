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


def test_report_is_self_contained(made):
    _, results, path, config = made
    text = path.read_text(encoding="utf-8")
    from plotly.offline import get_plotlyjs

    assert text.count(get_plotlyjs()[:2000]) == 1      # the plotly.js bundle, exactly once
    assert text.count("<script") == 2                  # plotly.js, then the figures
    assert "<script src" not in text and '<link rel="stylesheet" href' not in text
    for r in results:
        assert html.escape(r.finding) in text
        assert f'id="{r.name}"' in text
        first = r.table.iloc[0]
        assert html.escape(str(first.iloc[0])) in text
    assert html.escape(config) in text
    assert text.count("draw(\"figure-") == sum(r.figure is not None for r in results)


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
    flags = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=8000", "--window-size=1200,1400"]
    run = subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    errors = [line for line in run.stderr.splitlines()
              if "Uncaught" in line or ("CONSOLE" in line and ("Error" in line or
                                                               "ERROR" in line))]
    assert not errors, errors
    assert shot.exists(), run.stderr[-2000:]
    image = np.asarray(Image.open(shot).convert("RGB"))
    plot = image[500:, :]   # below the findings
    assert len(np.unique(plot.reshape(-1, 3), axis=0)) > 200
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert "gl-container" in dom.stdout or "<canvas" in dom.stdout
    assert "main-svg" in dom.stdout
    # The whole report: every figure is drawn (one error stops the figures after it) and the
    # episodic band is on the page.
    whole = subprocess.run([*flags, "--dump-dom", made[2].as_uri()], capture_output=True,
                           text=True, timeout=120)
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


def test_every_figure_draws_without_warning_and_both_drawings_agree(drawn):
    from taskspace.study.analyses.figure import legend_entries

    assert len(drawn) == 6
    for name, (spec, interactive, static) in drawn.items():
        expected = [e.name for e in legend_entries(spec)]
        assert _plotly_legend(interactive) == expected, name
        assert _static_legend(static) == expected, name
        titles = [p.title for p in sorted(spec.panels, key=lambda p: (p.row, p.col)) if p.title]
        plotly_titles = [a.text for a in interactive.layout.annotations]
        assert plotly_titles[:len(titles)] == titles, name
        static_titles = [ax.get_title() for ax in static.axes if ax.get_title()]
        assert sorted(static_titles) == sorted(titles), name


def test_tree_panels_are_titled(drawn):
    _, interactive, static = drawn["tree"]
    titles = ["end models (d_B)", "trajectories (d_traj)", "WordNet (mean path distance)"]
    assert [ax.get_title() for ax in static.axes] == titles
    assert [a.text for a in interactive.layout.annotations] == titles


def test_inpca_legend_by_task_and_runs_on_hover(drawn):
    spec, interactive, static = drawn["low_dimension"]
    runs = {s.hover[0].split("\n")[0] for s in spec.panels[0].series}
    assert len(runs) == len(spec.panels[0].series) > 8          # one series per run, ...
    legend = _plotly_legend(interactive)                         # ... one legend entry per task
    assert legend == _static_legend(static) == ["all", "upper_body", "footwear", "trouser_bag"]
    assert all(text.startswith("run ") for t in interactive.data for text in t.text)
    # The menu recolours by method: the legend becomes one entry per method.
    menu = interactive.layout.updatemenus[0]
    by_method, legend_title, traces = menu.buttons[1].args
    assert menu.buttons[1].label == "colour by method"
    assert legend_title == {"legend.title.text": "method"}
    assert list(traces) == list(range(len(interactive.data)))
    shown = [n for n, s in zip(by_method["name"], by_method["showlegend"], strict=True) if s]
    assert shown == ["supervised", "protonet", "simclr", "finetune"]
    assert len(by_method["line.color"]) == len(interactive.data)
    # Few, short ticks on the 3-D axes, so that their labels do not overlap.
    assert interactive.layout.scene.xaxis.nticks <= 6


def test_episodic_band_in_both_drawings(drawn):
    from matplotlib.patches import Rectangle

    from taskspace.study.analyses.episodic import MIDDLE

    _, interactive, static = drawn["episodic_vs_supervised"]
    shapes = [(s.x0, s.x1) for s in interactive.layout.shapes]
    assert shapes == [MIDDLE]
    ax = static.axes[0]
    bands = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bands) == 1
    x0 = bands[0].get_x()
    assert (x0, x0 + bands[0].get_width()) == pytest.approx(MIDDLE)


def test_progress_small_multiples_and_unclipped_heatmap_labels(made, drawn):
    _, results, _, _ = made
    spec, interactive, static = drawn["progress_on_other_tasks"]
    tasks = list(dict.fromkeys(results[1].table["train_task"]))
    assert _plotly_legend(interactive) == tasks
    heatmap = next(t for t in interactive.data if t.type == "heatmap")
    assert list(heatmap.y) == tasks and interactive.layout.yaxis.autorange == "reversed"
    curves = [p for p in spec.panels if p.series]
    assert [p.title for p in curves] == [f"trained on {a}" for a in tasks]
    assert all(len(p.series) == len(tasks) for p in curves)
    assert _static_legend(static) == tasks                       # one entry per task B, not A×B
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


def test_small_multiple_cells_fill_the_grid_around_the_heatmap():
    from taskspace.study.analyses.progress_other_tasks import small_multiple_cells

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
