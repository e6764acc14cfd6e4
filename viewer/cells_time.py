"""The event x time grid: event types (rows, in order of first appearance) by time buckets
(columns, starting on round clock times, in UTC). It reads only a decision's action and time, so
any kind can have it: study logs build their CellsSpec from it, and `SPEC` is the cells page of a
kind whose profile has none.
"""
from __future__ import annotations

import datetime as dt
import math

from django.db.models import Count, F, Max, Min
from django.db.models.functions import Floor

from .cells import MAX_AXIS, CellsSpec, Metric, Part, finish_grid, ms_value, narrow, plural
from .selectors import filtered_decisions
from .text import duration

METRICS = (Metric("events", "Events (count)", digits=0),)
BUCKET_WIDTHS_MS = [
    s * 1000
    for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
]
MAX_BUCKETS = 48


def build(grid: dict, *, run, filters: dict, metric: Metric, cylinder: str) -> dict:
    qs = filtered_decisions(run=run, **filters)
    span = qs.aggregate(lo=Min("t_ms"), hi=Max("t_ms"), untimed=Count("pk") - Count("t_ms"))
    if span["untimed"]:
        n = span["untimed"]
        are = "is" if n == 1 else "are"
        grid["notes"].append(f"{n} event{plural(n)} without a time {are} not in the grid.")
    if span["lo"] is None or run.first_ts is None:
        grid["notes"].append("No event of this run (with these filters) has a time.")
        return grid
    width = bucket_width(span["hi"] - span["lo"])
    # Buckets start on round clock times (whole minutes, hours...), not at the first event.
    start_ms = run.first_ts.timestamp() * 1000.0
    offset = start_ms % width
    rows = (
        qs.values("action")
        .annotate(b=Floor((F("t_ms") + offset) / width), n=Count("pk"), first=Min("seq"))
        .order_by()
    )
    per: dict[tuple[str, int], int] = {}
    first_seen: dict[str, int] = {}
    for row in rows:
        if row["b"] is None:
            continue
        per[(row["action"], int(row["b"]))] = row["n"]
        first_seen[row["action"]] = min(first_seen.get(row["action"], row["first"]), row["first"])
    actions = sorted(first_seen, key=lambda a: (first_seen[a], a))[:MAX_AXIS]
    lo, hi = int((span["lo"] + offset) // width), int((span["hi"] + offset) // width)
    buckets = list(range(lo, hi + 1))
    grid["x_values"] = [ms_value(b * width - offset) for b in buckets]
    grid["x"] = [_bucket_label(run.first_ts, b * width - offset, width) for b in buckets]
    grid["y_values"] = actions
    grid["y"] = list(actions)
    grid["bucket_ms"] = width
    grid["notes"].append(f"Buckets of {duration(width)}; times are UTC.")
    rows_at = {a: i for i, a in enumerate(actions)}
    out = []
    for (action, b), n in sorted(per.items(), key=lambda kv: (rows_at.get(kv[0][0], 0), kv[0][1])):
        if action not in rows_at:
            continue
        t_from = ms_value(b * width - offset)
        params = {"action": [action], "t_from": t_from, "t_to": ms_value(t_from + width - 0.001)}
        out.append(
            {
                "row": rows_at[action],
                "col": b - lo,
                "y": action,
                "x": grid["x"][b - lo],
                "value": n,
                "count": n,
                "text": str(n),
                "decisions": n,
                "details": [f"{n} event{plural(n)}", f"{duration(width)} from {grid['x'][b - lo]}"],
                "links": [{"label": f"{n} “{action}” event{plural(n)} in this interval", "params": params}],
                "key": {"cell_action": action, "cell_t": t_from, "cell_w": width},
            }
        )
    return finish_grid(grid, out)


def bucket_width(span_ms: float) -> int:
    for width in BUCKET_WIDTHS_MS:
        if span_ms / width < MAX_BUCKETS:
            return width
    days = math.ceil(span_ms / MAX_BUCKETS / 86_400_000)
    return days * 86_400_000


def _bucket_label(first_ts: dt.datetime, t_ms: float, width: int) -> str:
    at = first_ts + dt.timedelta(milliseconds=t_ms)
    return at.strftime("%Y-%m-%d %H:%M" if width >= 3_600_000 else "%H:%M:%S")


def parts(*, filters: dict, key: dict, cylinder: str) -> list[Part]:
    t_from, width = key.get("cell_t"), key.get("cell_w")
    t_to = ms_value(t_from + width - 0.001) if t_from is not None and width else None
    params = narrow(filters, action=(key.get("cell_action"),), t_from=t_from, t_to=t_to)
    return [Part(params, "event", "of this type in this interval")]


def title(run, key: dict, cylinder: str) -> str:
    what = f"“{key['cell_action']}” events"
    if run.first_ts is None:
        return what
    try:
        start = run.first_ts + dt.timedelta(milliseconds=key["cell_t"])
        end = start + dt.timedelta(milliseconds=key["cell_w"])
    except OverflowError:  # a bucket beyond the calendar: nothing can be in it
        return what
    return f"{what}, {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC"


SPEC = CellsSpec(
    metrics=METRICS,
    build=build,
    cell_keys=("cell_action", "cell_t", "cell_w"),
    parts=parts,
    title=title,
    x_title="Time (UTC)",
    y_title="Event",
)
