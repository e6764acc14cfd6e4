"""One cell's drilldown: its decisions in file order, counts by action, first and last time, and
its numeric values over time as small multiples.

The cell's decisions are the union of the spec's parts (a DynoAI cell has decisions logged by bins
and by grid indices) and of the decisions that list the cell inside their values (`spec.inside`).
Pure functions over selector output, like viewer/cells.py; no kind knowledge here.
"""
from __future__ import annotations

import math
import re
from collections import Counter

from django.db.models import Count, Max, Min

from . import display
from .cells import CellsSpec, is_number, link, narrow, short
from .selectors import filtered_decisions, run_actions
from .text import clock, plot_text

DRILL_ROWS = 200  # decisions listed in a drilldown
DRILL_POINTS = 2000  # decisions charted in a drilldown
MAX_CHARTS = 12


def cell_parts(*, spec: CellsSpec, filters: dict, key: dict, cylinder: str = "both") -> list:
    """The parts (filter sets) whose union is the cell's decisions, without those the filters exclude."""
    return [p for p in spec.parts(filters=filters, key=key, cylinder=cylinder) if p.params is not None]


def cell_drilldown(
    *, spec: CellsSpec, run, filters: dict, key: dict, cylinder: str = "both", colours=None
) -> dict:
    """One cell: its decisions in file order, counts by action, first/last time, numeric values over
    time. `colours`: the run's action colours (display.palette), computed when not given."""
    parts = cell_parts(spec=spec, filters=filters, key=key, cylinder=cylinder)
    querysets = [filtered_decisions(run=run, **p.params).defer("raw", "text") for p in parts]
    inside = spec.inside(run=run, filters=filters, key=key, cylinder=cylinder) if spec.inside else []

    by_action: Counter = Counter()
    part_sizes = []
    first = last = None
    for qs in querysets:
        size = 0
        for row in qs.values("action").annotate(n=Count("pk"), lo=Min("ts"), hi=Max("ts")).order_by():
            by_action[row["action"]] += row["n"]
            size += row["n"]
            first = _min(first, row["lo"])
            last = _max(last, row["hi"])
        part_sizes.append(size)
    if len(parts) == 2 and all(part_sizes):  # a decision in both parts is counted once
        a, b = parts[0].params, parts[1].params
        both = narrow(a, **{k: v for k, v in b.items() if a.get(k) != v})
        if both is not None:
            counts = filtered_decisions(run=run, **both).values("action").annotate(n=Count("pk"))
            for row in counts.order_by():
                by_action[row["action"]] -= row["n"]
    for d, _ in inside:
        by_action[d.action] += 1
        first, last = _min(first, d.ts), _max(last, d.ts)
    by_action = +by_action

    merged: dict[int, object] = {}
    for qs, size in zip(querysets, part_sizes):
        if size:
            for d in qs[:DRILL_POINTS]:
                merged.setdefault(d.seq, d)
    hits = {d.seq: entries for d, entries in inside}
    for d, _ in inside:
        merged.setdefault(d.seq, d)
    decisions = [merged[s] for s in sorted(merged)][:DRILL_POINTS]
    if colours is None:
        colours = display.palette(run_actions(run=run))

    return {
        "total": sum(by_action.values()),
        "by_action": by_action.most_common(),
        "first_ts": first,
        "last_ts": last,
        "first_t_ms": _t_ms(run, first),
        "last_t_ms": _t_ms(run, last),
        "rows": [
            {"d": d, "t": clock(d.t_ms), "where": spec.where(d), "values": _values_text(d.values), "inside": hits.get(d.seq, [])}
            for d in decisions[:DRILL_ROWS]
        ],
        "shown": min(len(decisions), DRILL_ROWS),
        "charted": len(decisions),
        "links": [link(p, n, filters) for p, n in zip(parts, part_sizes) if n],
        "inside": [{"seq": d.seq, "entries": entries} for d, entries in inside],
        "figure": values_figure(decisions, hits, by_time=spec.by_time, colours=colours),
    }


def _values_text(values, limit: int = 160) -> str:
    """`key=value` for the scalar values, shortened: a table cell, not the decision page."""
    if not isinstance(values, dict):
        return ""
    parts = []
    for k, v in values.items():
        if isinstance(v, (dict, list)):
            v = f"[{len(v)} items]" if isinstance(v, list) else "{…}"
        parts.append(f"{k}={v}")
    return short(" ".join(parts), limit)


def values_figure(
    decisions: list, hits: dict | None = None, *, by_time: bool = True, colours=None
) -> dict | None:
    """Small multiples: each numeric value of the decisions over time (ms since the run's first
    decision), or over seq where times are missing, all equal, or not comparable (`by_time` False:
    sessions mix time zones, file order is the truth). An action keeps its run-page colour
    (display.colour); one shared x axis. `hits`: seq -> the cell's entries inside that decision."""
    hits = hits or {}
    times = {d.t_ms for d in decisions}
    use_time = by_time and None not in times and len(times) > 1
    series: dict[str, dict[str, list]] = {}
    for d in decisions:
        if d.seq in hits:  # its top-level numbers describe the whole grid, not this cell
            points = []
            for _, _, before, after in hits[d.seq]:
                points += [("clamp original", before), ("clamp result", after)]
        else:
            points = list(_numbers(d.values))
        for k, v in points:
            if v is not None:
                x = d.t_ms if use_time else d.seq
                series.setdefault(k, {}).setdefault(d.action, []).append((x, v, d.seq))
    size = {k: sum(len(p) for p in by_action.values()) for k, by_action in series.items()}
    keys = sorted(series, key=lambda k: (-size[k], k.lower()))[:MAX_CHARTS]
    if not keys:
        return None
    keys.sort(key=str.lower)
    e = plot_text
    actions = list(dict.fromkeys(d.action for d in decisions))
    n = len(keys)
    columns = min(3, n)
    rows = math.ceil(n / columns)
    data = []
    layout = {
        "grid": {"rows": rows, "columns": columns, "pattern": "independent", "xgap": 0.12, "ygap": 0.35},
        "height": 60 + 170 * rows,
        "showlegend": len(actions) > 1,
        "legend": {
            "orientation": "h", "yref": "container", "y": 1, "yanchor": "top", "x": 0, "xanchor": "left"
        },
        "margin": {"l": 50, "r": 10, "t": 64 if len(actions) > 1 else 24, "b": 40},
        "font": {"size": 11},
        "annotations": [],
    }
    x_title = "ms since the run's first decision" if use_time else "seq"
    seqs = [d.seq for d in decisions]
    seq_ticks = {} if use_time else {"tick0": 0, "dtick": max(1, math.ceil((max(seqs) - min(seqs)) / 6))}
    in_legend = set()
    for i, k in enumerate(keys):
        suffix = "" if i == 0 else str(i + 1)
        for action, pts in series[k].items():
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": e(action),
                    "legendgroup": e(action),
                    "showlegend": action not in in_legend,
                    "x": [p[0] for p in pts],
                    "y": [p[1] for p in pts],
                    "xaxis": "x" + suffix,
                    "yaxis": "y" + suffix,
                    "customdata": [p[2] for p in pts],
                    "hovertemplate": (
                        f"{e(k)} = %{{y}}<br>#%{{customdata}} {e(action)}<br>{x_title}: %{{x}}<extra></extra>"
                    ),
                    "marker": {"size": 7, "color": display.colour(action, colours)},
                }
            )
            in_legend.add(action)
        layout["xaxis" + suffix] = {
            "title": {"text": x_title if i >= n - columns else ""}, "automargin": True, **seq_ticks
        }
        if i:
            layout["xaxis" + suffix]["matches"] = "x"
        layout["yaxis" + suffix] = {"automargin": True}
        layout["annotations"].append(
            {
                "text": f"<b>{e(short(k, 40))}</b>",
                "showarrow": False,
                "xref": f"x{suffix} domain",
                "yref": f"y{suffix} domain",
                "x": 0,
                "y": 1.0,
                "xanchor": "left",
                "yanchor": "bottom",
            }
        )
    return {"data": data, "layout": layout, "x_is_time": use_time}


# An epoch timestamp is a moment, not a quantity: plotted as a value it reads "1.70966366T". A key
# that names a time holding a number in the epoch range of seconds, ms or µs (years 2001 to 2100).
TIME_KEY = re.compile(r"(time|stamp|date|(^|[_.])ts$|_at$|^t$)", re.I)
EPOCHS = ((1e9, 4.2e9), (1e12, 4.2e12), (1e15, 4.2e15))


def is_epoch(key: str, value: float) -> bool:
    return bool(TIME_KEY.search(key)) and any(low <= abs(value) < high for low, high in EPOCHS)


def _numbers(values, prefix: str = "", depth: int = 0):
    """(dotted key, number) for the numbers in values, one level deep (roll.margin, tokens.input),
    without epoch timestamps."""
    if not isinstance(values, dict):
        return
    for k, v in values.items():
        name = f"{prefix}{k}"
        if is_number(v):
            if math.isfinite(v) and not is_epoch(str(k), v):
                yield name, v
        elif isinstance(v, dict) and depth < 1:
            yield from _numbers(v, name + ".", depth + 1)


def _min(a, b):
    return b if a is None else a if b is None else min(a, b)


def _max(a, b):
    return b if a is None else a if b is None else max(a, b)


def _t_ms(run, ts):
    if ts is None or run.first_ts is None:
        return None
    return (ts - run.first_ts).total_seconds() * 1000.0
