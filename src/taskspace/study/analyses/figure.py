"""What a figure shows, without drawing it: the description that an analysis returns.

An analysis describes its figure as a grid of panels holding series (lines and markers, 2-D or
3-D), heatmaps, dendrograms and shaded bands, with titles, axis labels and legend groups.
`taskspace.report` draws the interactive plotly version and the static matplotlib version from the
same description, so the two cannot show different things. Plain data (NumPy arrays and strings):
no plotting library is imported here.

Legend rule, shared by both renderers (:func:`legend_entries`): the figure has one legend; every
series or band with a ``name`` belongs to a legend group (its ``group``, by default its name), and
each group appears once, with the style of its first member. Clicking a group in the interactive
legend hides all its members.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MODES = ("lines", "markers", "lines+markers")
DASHES = ("solid", "dot", "dash", "dashdot")
#: Marker shapes, told apart in print as well as on screen.
SYMBOLS = (
    "circle",
    "square",
    "diamond",
    "triangle-up",
    "x",
    "cross",
    "star",
    "circle-open",
    "square-open",
)


def _vector(values, name: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {out.shape}")
    return out


def _labels(values, name: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ValueError(f"{name} must be a sequence of strings, got the string {values!r}")
    return tuple(str(v) for v in values)


@dataclass(eq=False)
class Series:
    """A line and/or markers through points ``(x[i], y[i])``, or ``(x[i], y[i], z[i])`` in 3-D.

    Attributes
    ----------
    x, y : array of shape (n,)
    z : array of shape (n,) or None
        Given: the series lies in a 3-D panel.
    name : str or None
        Legend label; None keeps the series out of the legend.
    group : str or None
        Legend group (default: ``name``): one legend entry per group.
    color : str or None
        ``"#rrggbb"``; None leaves the choice to the renderer.
    mode : {"lines", "markers", "lines+markers"}
    dash : {"solid", "dot", "dash", "dashdot"}
    symbol : one of :data:`SYMBOLS`
        Shape of the markers.
    width, marker_size : float
        Line width and marker size, in points.
    hover : tuple of str, length n, or None
        Text shown on hovering over each point (lines separated by ``"\\n"``).
    ylow, yhigh : array of shape (n,) or None
        Both given: an interval bar from ``ylow[i]`` to ``yhigh[i]`` at each point (2-D only;
        NaN: no bar at that point).

    A series with no points (``x = y = []``) draws nothing and only carries a legend entry:
    the key of a colour or a marker that several series share.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray | None = None
    name: str | None = None
    group: str | None = None
    color: str | None = None
    mode: str = "lines"
    dash: str = "solid"
    width: float = 1.5
    marker_size: float = 4.0
    hover: tuple[str, ...] | None = None
    symbol: str = "circle"
    ylow: np.ndarray | None = None
    yhigh: np.ndarray | None = None

    def __post_init__(self):
        self.x, self.y = _vector(self.x, "x"), _vector(self.y, "y")
        sizes = {"x": self.x.size, "y": self.y.size}
        if (self.ylow is None) != (self.yhigh is None):
            raise ValueError(f"series {self.name!r}: give both ylow and yhigh, or neither")
        if self.ylow is not None:
            if self.z is not None:
                raise ValueError(f"series {self.name!r}: interval bars are 2-D only")
            self.ylow, self.yhigh = _vector(self.ylow, "ylow"), _vector(self.yhigh, "yhigh")
            sizes.update(ylow=self.ylow.size, yhigh=self.yhigh.size)
        if self.z is not None:
            self.z = _vector(self.z, "z")
            sizes["z"] = self.z.size
        if self.hover is not None:
            self.hover = _labels(self.hover, "hover")
            sizes["hover"] = len(self.hover)
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"series {self.name!r}: x, y, z and hover need one length each, got {sizes}"
            )
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.dash not in DASHES:
            raise ValueError(f"dash must be one of {', '.join(DASHES)}, got {self.dash!r}")
        if self.symbol not in SYMBOLS:
            raise ValueError(f"symbol must be one of {', '.join(SYMBOLS)}, got {self.symbol!r}")
        if self.group is None:
            self.group = self.name

    @property
    def lines(self) -> bool:
        return "lines" in self.mode

    @property
    def bars(self) -> bool:
        """True when the series has interval bars."""
        return self.ylow is not None

    @property
    def markers(self) -> bool:
        return "markers" in self.mode


@dataclass(eq=False)
class Heatmap:
    """A matrix of values ``z[i, j]`` on rows ``y[i]`` (first row on top) and columns ``x[j]``.

    Attributes
    ----------
    z : array of shape (R, C)
    x : tuple of str, length C
    y : tuple of str, length R
    zmin, zmax : float or None
        Ends of the colour scale (None: the data's).
    colorbar : str
        Title of the colour bar.
    text_format : str or None
        Format of the value written in each cell (e.g. ``".2f"``); None writes none.
    hover_names : (str, str, str)
        What x, y and z are called in the hover text.
    """

    z: np.ndarray
    x: tuple[str, ...]
    y: tuple[str, ...]
    zmin: float | None = None
    zmax: float | None = None
    colorbar: str = ""
    text_format: str | None = ".2f"
    hover_names: tuple[str, str, str] = ("x", "y", "value")

    def __post_init__(self):
        self.z = np.asarray(self.z, dtype=np.float64)
        self.x, self.y = _labels(self.x, "x"), _labels(self.y, "y")
        if self.z.shape != (len(self.y), len(self.x)):
            raise ValueError(
                f"z must have shape (len(y), len(x)) = ({len(self.y)}, "
                f"{len(self.x)}), got {self.z.shape}"
            )


@dataclass(eq=False)
class Dendrogram:
    """The links of a hierarchical clustering, as scipy's ``dendrogram(no_plot=True)`` gives them.

    Link ``k`` is the polyline through ``(icoord[k, i], dcoord[k, i])``, i = 0..3; leaf ``j``
    (label ``leaves[j]``) sits at x = ``5 + 10 j`` (scipy's convention), height 0.

    Attributes
    ----------
    icoord, dcoord : array of shape (K, 4)
    leaves : tuple of str, length K + 1
    color : str
    """

    icoord: np.ndarray
    dcoord: np.ndarray
    leaves: tuple[str, ...]
    color: str = "#444444"

    def __post_init__(self):
        self.icoord = np.asarray(self.icoord, dtype=np.float64).reshape(-1, 4)
        self.dcoord = np.asarray(self.dcoord, dtype=np.float64).reshape(-1, 4)
        self.leaves = _labels(self.leaves, "leaves")
        if self.icoord.shape != self.dcoord.shape:
            raise ValueError(
                f"icoord and dcoord must have one shape, got {self.icoord.shape} "
                f"and {self.dcoord.shape}"
            )

    @property
    def leaf_positions(self) -> np.ndarray:
        return 5.0 + 10.0 * np.arange(len(self.leaves))


@dataclass(eq=False)
class Band:
    """A shaded vertical band over ``lo <= x <= hi``, across the panel's whole height."""

    lo: float
    hi: float
    name: str | None = None
    color: str = "#999999"
    opacity: float = 0.25

    def __post_init__(self):
        if not self.lo <= self.hi:
            raise ValueError(f"band needs lo <= hi, got lo={self.lo}, hi={self.hi}")

    @property
    def group(self) -> str | None:
        return self.name


@dataclass(eq=False)
class Area:
    """A shaded interval around a curve: the region between ``ylow[i]`` and ``yhigh[i]`` over
    ``x[i]`` (a confidence band, say). Its ``name`` says in the legend what the band is.

    Attributes
    ----------
    x, ylow, yhigh : array of shape (n,)
    name : str or None
    group : str or None
        Legend group (default: ``name``); give a curve's group to hide the band with its curve.
    color : str
    opacity : float
    """

    x: np.ndarray
    ylow: np.ndarray
    yhigh: np.ndarray
    name: str | None = None
    group: str | None = None
    color: str = "#999999"
    opacity: float = 0.2

    def __post_init__(self):
        self.x = _vector(self.x, "x")
        self.ylow, self.yhigh = _vector(self.ylow, "ylow"), _vector(self.yhigh, "yhigh")
        if not self.x.size == self.ylow.size == self.yhigh.size:
            raise ValueError(
                f"area {self.name!r}: x, ylow and yhigh need one length each, "
                f"got {self.x.size}, {self.ylow.size} and {self.yhigh.size}"
            )
        if self.group is None:
            self.group = self.name


@dataclass(eq=False)
class Colouring:
    """An alternative colouring of a panel's series (the interactive figure offers a menu).

    ``colors[i]``, ``groups[i]`` and ``names[i]`` replace the colour, legend group and legend
    name of the panel's i-th series.
    """

    label: str
    colors: tuple[str, ...]
    groups: tuple[str, ...]
    names: tuple[str | None, ...]


Item = Series | Heatmap | Dendrogram | Band | Area


@dataclass(eq=False)
class Panel:
    """One subplot: its items, titles and place in the figure's grid.

    Attributes
    ----------
    items : list of Series, Heatmap, Dendrogram or Band
    title, xlabel, ylabel, zlabel : str
    row, col : int
        Top-left cell of the panel in the figure's grid (0-based).
    rowspan, colspan : int
    xticks : (values, labels) or None
        Ticks of the x axis at ``values`` with text ``labels``.
    yrange : (float, float) or None
        Ends of the y axis (None: the data's; on a log axis, the values themselves).
    xlog, ylog : bool
        Logarithmic x or y axis (2-D panels).
    colourings : tuple of Colouring
        Alternative colourings of the series; the first is the series' own.
    """

    items: list = field(default_factory=list)
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    zlabel: str = ""
    row: int = 0
    col: int = 0
    rowspan: int = 1
    colspan: int = 1
    xticks: tuple[tuple[float, ...], tuple[str, ...]] | None = None
    yrange: tuple[float, float] | None = None
    colourings: tuple[Colouring, ...] = ()
    xlog: bool = False
    ylog: bool = False

    def __post_init__(self):
        for item in self.items:
            if not isinstance(item, Item):
                raise ValueError(
                    f"panel {self.title!r}: items must be Series, Heatmap, "
                    f"Dendrogram, Band or Area, got {type(item).__name__}"
                )
        kinds = {s.z is None for s in self.series}
        if len(kinds) > 1:
            raise ValueError(f"panel {self.title!r} mixes 2-D and 3-D series")
        if self.is3d and len(self.items) != len(self.series):
            raise ValueError(f"panel {self.title!r}: a 3-D panel holds only series")
        for c in self.colourings:
            n = len(self.series)
            if not len(c.colors) == len(c.groups) == len(c.names) == n:
                raise ValueError(
                    f"colouring {c.label!r} needs {n} colours, groups and names (one per series)"
                )
        if self.xticks is not None:
            values, labels = self.xticks
            if len(values) != len(labels):
                raise ValueError(
                    f"panel {self.title!r}: xticks needs as many values as "
                    f"labels, got {len(values)} and {len(labels)}"
                )
        if self.yrange is not None and not self.yrange[0] < self.yrange[1]:
            raise ValueError(f"panel {self.title!r}: yrange needs low < high, got {self.yrange}")

    @property
    def series(self) -> list[Series]:
        return [i for i in self.items if isinstance(i, Series)]

    @property
    def is3d(self) -> bool:
        return any(s.z is not None for s in self.series)


@dataclass(eq=False)
class Figure:
    """A figure: panels on a ``rows`` × ``cols`` grid, a title and one legend.

    Attributes
    ----------
    panels : list of Panel
    title : str
        What the figure shows, on one line.
    rows, cols : int
    legend_title : str
    height : int
        Height of the interactive figure in pixels (the static one is sized by its grid).
    subtitle : str
        A second, smaller line under the title: how the numbers were made (a weighting, say),
        kept apart so that the title stays one line.
    """

    panels: list[Panel]
    title: str = ""
    rows: int = 1
    cols: int = 1
    legend_title: str = ""
    height: int = 450
    subtitle: str = ""

    def __post_init__(self):
        if not self.panels:
            raise ValueError("a figure needs at least one panel")
        taken = {}
        for p in self.panels:
            if (
                p.row < 0
                or p.col < 0
                or p.row + p.rowspan > self.rows
                or p.col + p.colspan > self.cols
            ):
                raise ValueError(
                    f"panel {p.title!r} at row {p.row}, col {p.col} (span "
                    f"{p.rowspan}×{p.colspan}) lies outside the {self.rows}×"
                    f"{self.cols} grid"
                )
            for r in range(p.row, p.row + p.rowspan):
                for c in range(p.col, p.col + p.colspan):
                    if (r, c) in taken:
                        raise ValueError(
                            f"panels {taken[r, c]!r} and {p.title!r} overlap at row {r}, col {c}"
                        )
                    taken[r, c] = p.title


#: Longest line of a legend's title, in characters: a longer title is broken, so that the
#: legend beside the panels stays about as narrow as its entries.
LEGEND_TITLE_CHARS = 36


def legend_title_lines(figure: Figure) -> list[str]:
    """The legend's title in lines of at most :data:`LEGEND_TITLE_CHARS` characters: a line per
    clause ("colour: task; line: method" → "colour: task;", "line: method") when the whole is
    longer, a clause still too long broken at words; ``[]`` without a title."""
    import textwrap

    title = " ".join(figure.legend_title.split())
    if len(title) <= LEGEND_TITLE_CHARS:
        return [title] if title else []
    clauses = [c.strip() + ";" for c in title.split(";")]
    clauses[-1] = clauses[-1][:-1]
    return [
        line
        for clause in clauses
        if clause
        for line in textwrap.wrap(clause, LEGEND_TITLE_CHARS, break_long_words=False)
    ]


def legend_entries(figure: Figure) -> list[Series | Band]:
    """The members that carry the legend: the first named series or band of each group, in
    order of the panels and their items."""
    seen, out = set(), []
    for panel in figure.panels:
        for item in panel.items:
            group = getattr(item, "group", None)
            if getattr(item, "name", None) is not None and group not in seen:
                seen.add(group)
                out.append(item)
    return out


__all__ = [
    "Area",
    "Band",
    "Colouring",
    "Dendrogram",
    "Figure",
    "Heatmap",
    "Panel",
    "Series",
    "legend_entries",
    "legend_title_lines",
]
