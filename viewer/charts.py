"""The run page's timeline chart: pure functions from selector output to a plotly figure dict.

x is ms since the run's first timestamp (axis TIME, ticks in readable durations) or the decision's
order in the file (axis SEQ); one lane (y category) per action, or per pipeline stage when the kind
gives its `Lanes`; a colour per action. Up to POINTS_MAX decisions are drawn one by one; beyond that
the server sends counts per bin (of time, or of seq) per action, so the payload stays small whatever
the run's size.

Plotly renders hover text, trace names and tick labels as HTML, so every string from a log is
HTML-escaped here, on the server.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass

from .display import Colours, colour, iso_ms
from .text import duration
from .text import plot_text as esc

POINTS_MAX = 3000
BINS = 200
LANE_HEIGHT = 26
LANE_CHARS = 24  # longer lane labels are shortened on the axis (the hover keeps them whole)
Window = tuple[float | None, float | None]  # t_from, t_to
TIME, SEQ = "time", "seq"
AXES = (TIME, SEQ)


@dataclass(frozen=True)
class Lanes:
    """A kind's timeline: lanes by pipeline stage, in order, and the axis it is read on by default.

    `stages`: (label, action prefixes); an action belongs to the first stage one of whose prefixes
    it starts with (case-insensitive), else to the `other` lane, drawn last."""

    stages: tuple[tuple[str, tuple[str, ...]], ...]
    axis: str = SEQ
    other: str = "Other"

    def stage_of(self, action: str) -> str:
        upper = (action or "").upper()
        for label, prefixes in self.stages:
            if any(upper.startswith(p.upper()) for p in prefixes):
                return label
        return self.other

    @property
    def order(self) -> list[str]:
        return [label for label, _ in self.stages] + [self.other]


def points_figure(points, *, colours: Colours | None = None, window: Window = (None, None),
                  axis: str = TIME, lanes: Lanes | None = None) -> dict:
    """One marker per decision. `points`: (seq, t_ms, ts, action, reason) as selectors.chart_points gives.
    On the SEQ axis every decision is drawn (a decision without a time too), at its seq."""
    traces: dict[str, dict] = {}
    undated = 0
    spans = []
    for seq, t_ms, ts, action, reason in points:
        if axis == TIME and t_ms is None:
            undated += 1
            continue
        trace = traces.get(action)
        if trace is None:
            trace = traces[action] = _trace(action, colours)
        trace["x"].append(round(t_ms, 3) if axis == TIME else seq)
        trace["y"].append(esc(lanes.stage_of(action) if lanes else action))
        trace["customdata"].append(seq)
        trace["text"].append(
            f"#{seq} · +{esc(duration(t_ms))}<br>{esc(iso_ms(ts))}<br>"
            f"<b>{esc(action)}</b><br>{esc(_short(reason))}"
        )
        if axis == SEQ and t_ms is not None:
            spans.append([seq, seq, round(t_ms, 3), round(t_ms, 3)])
    figure = _figure(list(traces.values()), window=window, mode="points", undated=undated, axis=axis,
                     lanes=lanes)
    if axis == SEQ:
        figure["meta"]["spans"] = spans
    return figure


def bins_figure(bins, *, start: float, width: float, total: int, undated: int = 0,
                colours: Colours | None = None, window: Window = (None, None), axis: str = TIME,
                lanes: Lanes | None = None, spans: list | None = None) -> dict:
    """Counts per bin per action. `bins`: (action, bin index, count) as selectors.time_bins gives (or
    the seq bins of the view, axis SEQ: bin k holds seqs start + k*width to start + (k+1)*width - 1).
    `spans` (SEQ): [first seq, last seq, first t_ms, last t_ms] per bin, for the zoom to set a window."""
    traces: dict[str, dict] = {}
    peak = max((n for _, _, n in bins), default=1)
    for action, b, n in bins:
        trace = traces.get(action)
        if trace is None:
            trace = traces[action] = _trace(action, colours)
            trace["marker"]["size"] = []
        low = start + b * width
        trace["y"].append(esc(lanes.stage_of(action) if lanes else action))
        trace["customdata"].append(None)
        trace["marker"]["size"].append(round(4 + 14 * math.sqrt(n / peak), 1))
        if axis == SEQ:
            trace["x"].append(round(low + (width - 1) / 2, 3))
            where = f"#{int(low)} to #{int(low + width - 1)}"
        else:
            trace["x"].append(round(low + width / 2, 3))
            where = f"+{esc(duration(low))} to +{esc(duration(low + width))}"
        trace["text"].append(f"<b>{esc(action)}</b><br>{n:,} decision{'s' if n != 1 else ''}<br>{where}")
    figure = _figure(list(traces.values()), window=window, mode="bins", undated=undated, axis=axis, lanes=lanes)
    figure["meta"].update(total=total, **({"bin_seq": int(width), "spans": spans or []} if axis == SEQ
                                          else {"bin_ms": width}))
    return figure


def seq_bin_width(low: int, high: int, bins: int | None = None) -> int:
    """A whole number of decisions per bin that puts seqs low..high into at most `bins` (BINS) bins."""
    return max(1, math.ceil((high - low + 1) / (bins or BINS)))


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


def _figure(traces: list[dict], *, window, mode: str, undated: int, axis: str = TIME,
            lanes: Lanes | None = None) -> dict:
    if lanes is None:
        names = [t["name"] for t in traces]
    else:
        present = {y for t in traces for y in t["y"]}
        names = [esc(label) for label in lanes.order if esc(label) in present]
    if mode == "bins":
        for t in traces:
            t["marker"].update(symbol="circle", opacity=0.75, line={"width": 0})
    if axis == SEQ:
        xaxis = {"title": {"text": "decision order (seq)"}, "zeroline": False,
                 "exponentformat": "none", "separatethousands": True}
    else:
        xaxis = {"title": {"text": "time since the first decision"}, "zeroline": False, "automargin": True}
        low, high = window
        if low is not None and high is not None:
            xaxis["range"] = [low, high]
        elif low is not None or high is not None:
            xs = [x for t in traces for x in t["x"]]
            if xs:
                xaxis["range"] = [low if low is not None else min(xs), high if high is not None else max(xs)]
        xs = xaxis.get("range") or [x for t in traces for x in t["x"]]
        if xs:
            xaxis.update(time_ticks(min(xs), max(xs)))
    return {
        "data": traces,
        "layout": {
            "height": max(160, 70 + LANE_HEIGHT * len(names)),
            # The lane labels take the left margin they need (automargin), at most LANE_CHARS each: a
            # fixed margin wide enough for the longest left a phone a third of its width for the plot.
            "margin": {"l": 8, "r": 16, "t": 8, "b": 42},
            "xaxis": xaxis,
            "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": list(reversed(names)),
                      "fixedrange": True, "automargin": True, **_lane_ticks(names)},
            "showlegend": False,
            "hovermode": "closest",
            "dragmode": "zoom",
            "plot_bgcolor": "#fff",
            "paper_bgcolor": "#fff",
        },
        "config": {"displaylogo": False, "responsive": True, "doubleClick": "autosize", "showTips": False,
                   "modeBarButtonsToRemove": ["lasso2d", "select2d", "toImage"]},
        "meta": {"mode": mode, "undated": undated, "lanes": len(names), "axis": axis},
    }


def _lane_ticks(names: list[str]) -> dict:
    """Lane labels (escaped) longer than LANE_CHARS shortened on the axis only."""
    if all(len(html.unescape(n)) <= LANE_CHARS for n in names):
        return {}
    short = [esc(_short(html.unescape(n), LANE_CHARS)) for n in names]
    return {"tickmode": "array", "tickvals": names, "ticktext": short}


# Tick steps a clock reads well (ms): 1-2-5 below a second, then 1, 2, 5, 10, 15, 30 s and min, hours, days.
_STEPS = [m * 10**e for e in range(-3, 3) for m in (1, 2, 5)] + [
    s * 1000 for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
] + [d * 86_400_000 for d in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)]


def time_ticks(low: float, high: float, most: int = 6) -> dict:
    """Ticks of the time axis in readable durations (text.duration): the smallest clock step (1-2-5 ms,
    then whole seconds, minutes, hours, days) giving at most `most` ticks over [low, high] ms."""
    span = max(high - low, 1e-3)
    step = next((s for s in _STEPS if span / s <= most), span / most)
    first = math.floor(low / step) * step
    values = []
    while len(values) <= most + 1 and first + len(values) * step <= high + step:
        values.append(round(first + len(values) * step, 6))
    return {"tickmode": "array", "tickvals": values, "ticktext": [esc(duration(v)) for v in values]}


def _short(text: str, limit: int = 100) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
