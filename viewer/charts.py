"""The run page's timeline chart: pure functions from selector output to a plotly figure dict.

x is ms since the run's first timestamp, one lane (y category) per action, a colour per action.
Up to POINTS_MAX decisions are drawn one by one; beyond that the server sends counts per time bin
per action (selectors.time_bins), so the payload stays small whatever the run's size.

Plotly renders hover text, trace names and tick labels as HTML, so every string from a log is
HTML-escaped here, on the server.
"""
from __future__ import annotations

import math

from .display import Colours, colour, iso_ms
from .text import duration
from .text import plot_text as esc

POINTS_MAX = 3000
BINS = 200
LANE_HEIGHT = 26
Window = tuple[float | None, float | None]  # t_from, t_to


def points_figure(points, *, colours: Colours | None = None, window: Window = (None, None)) -> dict:
    """One marker per decision. `points`: (seq, t_ms, ts, action, reason) as selectors.chart_points gives."""
    lanes: dict[str, dict] = {}
    undated = 0
    for seq, t_ms, ts, action, reason in points:
        if t_ms is None:
            undated += 1
            continue
        lane = lanes.get(action)
        if lane is None:
            lane = lanes[action] = _trace(action, colours)
        lane["x"].append(round(t_ms, 3))
        lane["y"].append(esc(action))
        lane["customdata"].append(seq)
        lane["text"].append(
            f"#{seq} · +{esc(duration(t_ms))}<br>{esc(iso_ms(ts))}<br>"
            f"<b>{esc(action)}</b><br>{esc(_short(reason))}"
        )
    return _figure(list(lanes.values()), window=window, mode="points", undated=undated)


def bins_figure(bins, *, start: float, width: float, total: int, undated: int = 0,
                colours: Colours | None = None, window: Window = (None, None)) -> dict:
    """Counts per time bin per action. `bins`: (action, bin index, count) as selectors.time_bins gives."""
    lanes: dict[str, dict] = {}
    peak = max((n for _, _, n in bins), default=1)
    for action, b, n in bins:
        lane = lanes.get(action)
        if lane is None:
            lane = lanes[action] = _trace(action, colours)
            lane["marker"]["size"] = []
        low = start + b * width
        lane["x"].append(round(low + width / 2, 3))
        lane["y"].append(esc(action))
        lane["customdata"].append(None)
        lane["marker"]["size"].append(round(4 + 14 * math.sqrt(n / peak), 1))
        lane["text"].append(
            f"<b>{esc(action)}</b><br>{n:,} decision{'s' if n != 1 else ''}<br>"
            f"+{esc(duration(low))} to +{esc(duration(low + width))}"
        )
    figure = _figure(list(lanes.values()), window=window, mode="bins", undated=undated)
    figure["meta"].update(bin_ms=width, total=total)
    return figure


def bin_width(low: float, high: float, bins: int = BINS) -> float:
    """A bin width that puts [low, high] into at most `bins` bins (never 0)."""
    return max((high - low) / bins, 1e-3) * (1 + 1e-9)


def _trace(action: str, colours: Colours | None) -> dict:
    return {
        "type": "scatter",
        "mode": "markers",
        "name": esc(action),
        "x": [],
        "y": [],
        "text": [],
        "customdata": [],
        "hovertemplate": "%{text}<extra></extra>",
        "marker": {
            "color": colour(action, colours), "size": 9, "symbol": "line-ns-open", "line": {"width": 2},
        },
    }


def _figure(traces: list[dict], *, window, mode: str, undated: int) -> dict:
    lanes = [t["name"] for t in traces]
    if mode == "bins":
        for t in traces:
            t["marker"].update(symbol="circle", opacity=0.75, line={"width": 0})
    xaxis = {"title": {"text": "ms since the run's first decision"}, "zeroline": False,
             "exponentformat": "none", "separatethousands": True}
    low, high = window
    if low is not None and high is not None:
        xaxis["range"] = [low, high]
    elif low is not None or high is not None:
        xs = [x for t in traces for x in t["x"]]
        if xs:
            xaxis["range"] = [low if low is not None else min(xs), high if high is not None else max(xs)]
    return {
        "data": traces,
        "layout": {
            "height": max(160, 70 + LANE_HEIGHT * len(lanes)),
            "margin": {"l": 190, "r": 16, "t": 8, "b": 42},
            "xaxis": xaxis,
            "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": list(reversed(lanes)),
                      "fixedrange": True, "automargin": True},
            "showlegend": False,
            "hovermode": "closest",
            "dragmode": "zoom",
            "plot_bgcolor": "#fff",
            "paper_bgcolor": "#fff",
        },
        "config": {"displaylogo": False, "responsive": True, "doubleClick": "autosize", "showTips": False,
                   "modeBarButtonsToRemove": ["lasso2d", "select2d", "toImage"]},
        "meta": {"mode": mode, "undated": undated, "lanes": len(lanes)},
    }


def _short(text: str, limit: int = 100) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
