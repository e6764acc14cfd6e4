"""Cell heatmaps: a run's decisions aggregated over a grid (the engine; no kind knowledge here).

What a grid is differs by kind and comes in a `CellsSpec` that each kind builds in the cells
section of its `viewer/kinds/<kind>.py`: DynoAI's RPM x kPa grid with cylinders, a session's
round x agent, a study log's time bucket x event. `cell_grid` asks the spec for the metrics on
offer and its grid; `heatmap_figure` draws any grid with the one heatmap (viewer/heatmap.py). One
cell's drilldown is viewer/drilldown.py.

Pure functions over selector output: the cells page, its fragments and the API call them with the
spec, the run and the parsed filters, and every read goes through selectors.filtered_decisions.
Counts and means are GROUP BY queries over real columns (PERF.md: aggregating JSON values is 25x
slower on SQLite); JSON is read only for a value key the user picks and for a few records.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import filters as FP
from . import heatmap
from .memo import run_memo

METRIC, CYL = "metric", "cyl"
BOTH = "both"  # the cylinder choice when none is picked: every decision of the cell
MAX_AXIS = 400  # agents / event types shown; the rest are counted in a note


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    per_cylinder: bool = True  # the cylinder choice applies (False: logged on the combined grid)
    diverging: bool = False  # signed values: colours centred on zero
    digits: int = 2


@dataclass(frozen=True)
class Part:
    """Filter parameters selecting some of a cell's decisions (None: they contradict the filters),
    and how a link to them reads: f"{n} {noun}s {where}"."""

    params: dict | None
    noun: str
    where: str

    def label(self, n: int) -> str:
        return f"{n} {self.noun}{plural(n)} {self.where}"


@dataclass(frozen=True)
class CellsSpec:
    """What a kind's cells page is. Built in the `# -- cells ---` section of viewer/kinds/<kind>.py.

    build(grid, *, run, filters, metric, cylinder) fills `empty_grid(x_title, y_title)` with the
    run's filtered decisions for one Metric (see `finish_grid`) and returns it.
    parts(*, filters, key, cylinder) -> [Part]: the filter sets whose union is a cell's decisions.
    title(run, key, cylinder): the drilldown's heading. where(decision): its place, in the
    drilldown's table. inside(*, run, filters, key, cylinder) -> [(decision, entries)]: decisions
    that list the cell inside their values (DynoAI's clamping), entries as (i, j, before, after).
    """

    metrics: tuple[Metric, ...]
    build: Callable[..., dict]
    cell_keys: tuple[str, ...]  # the drilldown's parameters, as in each cell's "key"
    parts: Callable[..., list[Part]]
    title: Callable[[Any, dict, str], str]
    x_title: str
    y_title: str
    where: Callable[[Any], str] = lambda d: ""
    more_metrics: Callable[[Any], list[Metric]] | None = None  # run -> metrics found in its data
    inside: Callable[..., list] | None = None
    inside_label: str = "Decision"  # how the drilldown names such a decision: "<label> #<seq>"
    cylinders: dict[str, str] = field(default_factory=dict)  # the cylinder choice: value -> label
    by_time: bool = True  # drilldown charts over time; False: over seq (times not comparable)


def available_metrics(*, spec: CellsSpec, run) -> list[Metric]:
    """The metrics a run's heatmap can show: the kind's own and those found in the run's data."""
    return list(spec.metrics) + (spec.more_metrics(run) if spec.more_metrics else [])


def metric_by_key(metrics: list[Metric], key: str | None) -> Metric:
    for m in metrics:
        if m.key == key:
            return m
    return metrics[0]


def cell_grid(
    *,
    spec: CellsSpec,
    run,
    filters: dict,
    metric: str | None = None,
    cylinder: str = BOTH,
    metrics: list[Metric] | None = None,
) -> dict:
    """The heatmap of one metric over the run's filtered decisions, as plain JSON-able data.

    x/y hold the axis labels, z the values (rows follow y; None where a cell has no data), and
    `cells` one entry per cell with data: its value and count, a short text, detail lines, the
    filter parameters that select its decisions in the run view (`links`) and its drilldown key.
    """
    metrics = metrics if metrics is not None else available_metrics(spec=spec, run=run)
    m = metric_by_key(metrics, metric)
    cylinder = cylinder if cylinder in spec.cylinders else BOTH
    grid = empty_grid(spec.x_title, spec.y_title)
    grid = spec.build(grid, run=run, filters=filters, metric=m, cylinder=cylinder)
    grid.update(
        kind=run.kind,
        metric=m.key,
        metric_label=m.label,
        diverging=m.diverging,
        counts_from_zero=not m.diverging,
        metrics=[{"key": x.key, "label": x.label} for x in metrics],
    )
    return grid


def remembered_grid(
    *, spec: CellsSpec, run, filters: dict, metric: str, cylinder: str, metrics: list
) -> dict:
    """cell_grid, remembered for big runs (the page, its fragment and the API share it)."""
    params = {**filters, METRIC: metric, CYL: cylinder}
    return run_memo(run, "cells", params, lambda: cell_grid(
        spec=spec, run=run, filters=filters, metric=metric, cylinder=cylinder, metrics=metrics
    ))


def empty_grid(x_title: str, y_title: str) -> dict:
    return {
        "x_title": x_title,
        "y_title": y_title,
        "x": [],
        "y": [],
        "x_values": [],
        "y_values": [],
        "z": [],
        "cells": [],
        "notes": [],
        "cylinder": None,
    }


def finish_grid(grid: dict, cells: list[dict]) -> dict:
    """Fill z from the cells (None elsewhere: no data is blank, not zero)."""
    grid["z"] = [[None] * len(grid["x"]) for _ in grid["y"]]
    for c in cells:
        grid["z"][c["row"]][c["col"]] = c["value"]
    grid["cells"] = cells
    return grid


def heatmap_figure(grid: dict, selected: dict | None = None) -> dict:
    """The plotly figure for cell_grid's output; `selected` (a cell key) gets a frame."""
    ny, nx = len(grid["y"]), len(grid["x"])
    hover: list[list] = [[None] * nx for _ in range(ny)]
    text = [[""] * nx for _ in range(ny)]
    for c in grid["cells"]:
        head = f"{grid['y_title']} {grid['y'][c['row']]} · {grid['x_title']} {grid['x'][c['col']]}"
        if grid.get("cylinder") not in (None, BOTH):
            head += f" · cylinder {grid['cylinder']}"
        hover[c["row"]][c["col"]] = [head, f"{grid['metric_label']}: {c['text']}", *map(str, c["details"])]
        text[c["row"]][c["col"]] = c["text"]
    cell = next((c for c in grid["cells"] if selected and c["key"] == selected), None)
    return heatmap.figure(
        rows=grid["y"],
        columns=grid["x"],
        z=grid["z"],
        hover=hover,
        text=text,
        x_title=grid["x_title"],
        y_title=grid["y_title"],
        value_title=grid["metric_label"],
        diverging=grid["diverging"],
        from_zero=grid.get("counts_from_zero", True),
        selected=(cell["row"], cell["col"]) if cell else None,
    )


def narrow(filters: dict, **extra) -> dict | None:
    """filters AND extra exact-match cell parameters; None when they contradict (nothing can match).

    `action` replaces the filters' action list (a cell's event type already passes it); t_from/t_to
    intersect the filters' window.
    """
    out = dict(filters)
    for name, value in extra.items():
        if value is None:
            continue
        if name == FP.T_FROM:
            out[name] = max(value, filters[name]) if filters.get(name) is not None else value
        elif name == FP.T_TO:
            out[name] = min(value, filters[name]) if filters.get(name) is not None else value
        elif name == FP.ACTION:
            out[name] = tuple(value)
        elif filters.get(name) not in (None, "") and filters[name] != value:
            return None
        else:
            out[name] = value
    if out.get(FP.T_FROM) is not None and out.get(FP.T_TO) is not None and out[FP.T_FROM] > out[FP.T_TO]:
        return None
    return out


def link(part: Part, n: int, filters: dict) -> dict:
    """A cell link: its label and the parameters it adds to the current filters (the rest stays)."""
    return {"label": part.label(n), "params": {k: v for k, v in part.params.items() if filters.get(k) != v}}


# ---------------------------------------------------------------------------------------------
# Small helpers for the kinds' grid builders


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def fmt(v, digits: int) -> str:
    if v is None:
        return "–"
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.00"


def compact(v: float) -> str:
    if v >= 10_000:
        return f"{v / 1000:.0f}k"
    if v >= 1000:
        return f"{v / 1000:.1f}k"
    return f"{v:.0f}"


def ms_value(v: float):
    """A time in ms as a parameter value: whole numbers without a decimal point."""
    return int(v) if float(v).is_integer() else round(v, 3)


def plural(n: int) -> str:
    return "" if n == 1 else "s"


def short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def finite(v) -> float | None:
    return float(v) if is_number(v) and math.isfinite(v) else None
