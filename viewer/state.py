"""A run's state over time (/runs/<id>/state/): quantities over rounds, one plotly figure each.

The kind gives a StateSpec (its profile's `state`): the actions that move the state and a one-pass
`series(rows, agents) -> StateSeries`. state_figures reads the run's decisions through the selector,
in file order, and draws every line point by point; a point's customdata is its decision's seq.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .display import palette
from .selectors import filtered_decisions
from .text import plot_text as esc


@dataclass
class Line:
    name: str
    points: list[tuple[int, Any, float | None, str]] = field(default_factory=list)  # (seq, round, y, note)
    ended: bool = False


@dataclass
class Quantity:
    key: str
    title: str
    unit: str = ""
    lines: dict[str, Line] = field(default_factory=dict)

    def add(self, name: str, seq: int, round_, y, note: str = "", *, end: bool = False) -> None:
        line = self.lines.setdefault(name, Line(name))
        line.points.append((seq, round_, y, note))
        line.ended = end

    def last(self, name: str):
        line = self.lines.get(name)
        return next((p[2] for p in reversed(line.points) if p[2] is not None), None) if line else None


@dataclass
class StateSeries:
    quantities: list[Quantity]
    rounds: list[tuple[int, Any]] = field(default_factory=list)  # (seq of round_start, round)


@dataclass(frozen=True)
class StateSpec:
    actions: tuple[str, ...]
    series: Callable[..., StateSeries]


def state_series(run, spec: StateSpec) -> StateSeries:
    rows = (filtered_decisions(run=run).filter(action__in=spec.actions)
            .values("seq", "action", "round", "agent", "values").iterator(chunk_size=2000))
    return spec.series(rows, run.agents or {})


def figures(series: StateSeries) -> list[dict]:
    """One figure per quantity that has points: x = decision order, ticks at each round's start."""
    ticks = {"tickvals": [seq for seq, _ in series.rounds], "ticktext": [f"R{r}" for _, r in series.rounds]}
    # One x range for every plot (the whole run's), so a round's tick is at one place down the page.
    seqs = [seq for seq, _ in series.rounds] + [p[0] for q in series.quantities for line in q.lines.values()
                                                 for p in line.points]
    if seqs:
        ticks["range"] = [min(seqs) - 2, max(seqs) + 2]
    out = []
    for q in series.quantities:
        if not q.lines:
            continue
        colours = palette(list(q.lines))
        traces = [{
            "type": "scatter", "mode": "lines+markers", "name": esc(line.name),
            "line": {"shape": "hv", "color": colours[line.name]}, "marker": {"size": 7},
            "x": [p[0] for p in line.points], "y": [p[2] for p in line.points],
            "customdata": [p[0] for p in line.points],
            "text": [esc(f"#{p[0]} · round {p[1]} · {p[3]}") for p in line.points],
            "hovertemplate": "%{y}<br>%{text}<extra>%{fullData.name}</extra>",
        } for line in q.lines.values()]
        out.append({"key": q.key, "title": q.title, "figure": {
            "data": traces,
            "layout": {
                "height": 240, "margin": {"l": 50, "r": 10, "t": 10, "b": 40}, "hovermode": "closest",
                "xaxis": {**ticks, "title": {"text": "round (each tick: its round_start)"}, "showgrid": True,
                          "zeroline": False},
                "yaxis": {"title": {"text": esc(q.unit or q.title)}, "zeroline": False},
                "legend": {"orientation": "h", "y": 1.15}, "paper_bgcolor": "rgba(0,0,0,0)",
                "plot_bgcolor": "rgba(0,0,0,0)",
            },
            "config": {"displaylogo": False, "responsive": True},
        }})
    return out
