"""The one heatmap figure (STYLE.md 15): the cells page, the replay state grid and the diff delta
grid all draw their grids with `figure()`.

- Orientation: as the toolkit's own grid CSVs read. One row per RPM bin on y, one column per kPa
  bin on x; the first row at the top, so RPM ascends downwards and kPa ascends to the right
  (`figure` reverses the y axis; callers list rows and columns in ascending order).
- Axis names: `RPM` and `kPa` (the constants below); other grids (a session's round x agent, a
  study log's event x time) name their own axes.
- Colours: `SEQUENTIAL` for counts and magnitudes (from zero unless told otherwise), `DIVERGING`
  for signed values (centred on zero, symmetric: low blue, high red).
- Text: callers pass plain strings; every label, cell text, hover line and title goes through
  `text.plot_text` here (plotly renders text as HTML).

Pure: data in, a plotly figure dict (`{"data": [...], "layout": {...}}`) out.
"""
from __future__ import annotations

import html
from collections.abc import Sequence

from .text import plot_text

RPM, KPA = "RPM", "kPa"
SEQUENTIAL = [[0, "#deebf7"], [0.5, "#6baed6"], [1, "#08306b"]]
DIVERGING = [[0, "#2166ac"], [0.25, "#92c5de"], [0.5, "#f7f7f7"], [0.75, "#f4a582"], [1, "#b2182b"]]
TICK_CHARS = 28  # longer category labels are shortened on the axis (the hover keeps them whole)
SHORT_LABEL = 6  # labels up to this long get the narrow margins (RPM and kPa bins, rounds)

Cell = tuple[int, int]  # (row, col)


def figure(
    *,
    rows: Sequence,
    columns: Sequence,
    z: Sequence[Sequence[float | None]],
    hover: Sequence[Sequence[Sequence[str] | None]] | None = None,
    text: Sequence[Sequence[str]] | None = None,
    x_title: str = KPA,
    y_title: str = RPM,
    value_title: str = "",
    diverging: bool = False,
    from_zero: bool = True,
    selected: Cell | None = None,
    height: int | None = None,
) -> dict:
    """A heatmap of `z` (z[row][col], None where a cell has no data: blank, not zero).

    rows: the y labels, top first; columns: the x labels, left first (any values; shown as text).
    hover: per cell, its hover lines as plain strings (the first is shown bold), or None.
    text: per cell, the short text written in the cell ("" for none); plotly writes it on a blank
    cell (z None) too ("A only").
    value_title: the colour bar's title. diverging: signed values, colours centred on zero;
    otherwise sequential, starting at zero when `from_zero`. selected: (row, col) to frame.
    """
    y = [plot_text(v) for v in rows]
    x = [plot_text(v) for v in columns]
    trace = {
        "type": "heatmap",
        "x": x,
        "y": y,
        "z": [list(r) for r in z],
        "hoverongaps": False,
        "xgap": 2,
        "ygap": 2,
        "colorscale": DIVERGING if diverging else SEQUENTIAL,
        "colorbar": {"title": {"text": plot_text(value_title), "side": "right"}, "thickness": 14},
    }
    if text is not None:
        trace["text"] = [[plot_text(t) for t in r] for r in text]
        trace["texttemplate"] = "%{text}"
    if hover is not None:
        trace["customdata"] = [[_hover(lines) for lines in r] for r in hover]
        trace["hovertemplate"] = "%{customdata}<extra></extra>"
    values = [v for r in z for v in r if v is not None]
    if diverging and values:
        bound = max(abs(v) for v in values) or 1.0
        trace.update(zmin=-bound, zmax=bound, zmid=0)
    elif values and from_zero:
        trace.update(zmin=0, zmax=max(values) or 1)
    layout = {
        # The top margin holds plotly's toolbar, which would otherwise cover the top-right cell.
        "margin": {"l": _margin(y, 60, 120), "r": 20, "t": 32, "b": _margin(x, 50, 90)},
        "height": height or max(260, min(900, 92 + 34 * max(len(y), 1))),
        "xaxis": {"title": {"text": plot_text(x_title)}, "side": "bottom", **_axis(x)},
        "yaxis": {"title": {"text": plot_text(y_title)}, "autorange": "reversed", **_axis(y)},
        "plot_bgcolor": "#f3f4f6",
        "font": {"size": 12},
    }
    if selected is not None:
        layout["shapes"] = [frame(*selected)]
    return {"data": [trace], "layout": layout}


def frame(row: int, col: int) -> dict:
    """The outline drawn around a selected cell (static/js/cells.js draws the same on a click)."""
    return {
        "type": "rect",
        "xref": "x",
        "yref": "y",
        "line": {"color": "#111", "width": 3},
        "x0": col - 0.5,
        "x1": col + 0.5,
        "y0": row - 0.5,
        "y1": row + 0.5,
    }


def _hover(lines: Sequence[str] | None) -> str | None:
    if not lines:
        return None
    head, *rest = (plot_text(line) for line in lines)
    return "<br>".join([f"<b>{head}</b>", *rest])


def _axis(labels: list[str]) -> dict:
    """A category axis in the given order; long labels shortened on the axis only (shortening the
    categories themselves could merge two of them)."""
    axis = {"type": "category", "categoryorder": "array", "categoryarray": labels, "automargin": True}
    if any(len(html.unescape(v)) > TICK_CHARS for v in labels):
        short = [plot_text(_short(html.unescape(v), TICK_CHARS)) for v in labels]
        axis.update(tickmode="array", tickvals=labels, ticktext=short)
    return axis


def _margin(labels: list[str], narrow: int, wide: int) -> int:
    return narrow if all(len(html.unescape(v)) <= SHORT_LABEL for v in labels) else wide


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
