"""The cell heatmap page (/runs/<id>/cells/): the grid over the run's filtered decisions, and
one cell's drilldown, each also an htmx fragment of the same template."""

import datetime as dt
from urllib.parse import urlencode

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from .. import cells
from ..memo import run_memo
from ..filters import FILTER_PARAMS, DecisionFilterForm, filter_querystring
from ..selectors import get_run_or_404

DRILL_TARGET = "cell-drilldown"


@require_GET
@vary_on_headers("HX-Request", "HX-Target")
def run_cells(request, run_id):
    run = get_run_or_404(request.user, run_id)
    form = DecisionFilterForm(request.GET)
    options = cells.CellOptionsForm(request.GET, run=run)
    valid = form.is_valid() & options.is_valid()
    fragment = request.htmx and not request.htmx.history_restore_request
    drill_only = fragment and request.htmx.target == DRILL_TARGET
    context = {
        "run": run,
        "form": form,
        "options": options,
        "filter_qs": filter_querystring(request.GET),
        "filter_pairs": _query(request.GET, keep=FILTER_PARAMS),
        "cylinders": list(cells.CYLINDERS.items()),
        "cyl": request.GET.get(cells.CYL) or "both",
    }
    if valid:
        filters, opts = form.filters(), options.cleaned_data
        context["cylinder_label"] = cells.CYLINDERS[opts["cyl"]]
        key = options.cell_key()
        if not drill_only:
            context.update(_grid_context(request, run, form, options, key))
        if key:
            context["drill"] = _drill_context(request, run, filters, opts, key)
    elif fragment:
        context["error"] = "; ".join(t for t in (form.error_text(), options.error_text()) if t)
    template = "viewer/cells.html"
    if fragment:
        template += "#drilldown" if drill_only else "#cells-panel"
    return render(request, template, context, status=200 if valid else 400)


def _grid_context(request, run, form, options, key) -> dict:
    opts = options.cleaned_data
    params = {**form.filters(), "metric": opts["metric"], "cyl": opts["cyl"]}
    grid = run_memo(run, "cells", params, lambda: cells.cell_grid(
        run=run, filters=form.filters(), metric=opts["metric"], cylinder=opts["cyl"], metrics=options.metrics
    ))
    base = _query(request.GET, drop=cells.CELL_PARAMS[2:])
    table = [[None] * len(grid["x"]) for _ in grid["y"]]
    for c in grid["cells"]:
        c["href"] = request.path + "?" + _with(base, c["key"])
        table[c["row"]][c["col"]] = c
    return {
        "grid": grid,
        "figure": {"figure": cells.heatmap_figure(grid, selected=key)},
        "table": [{"label": label, "cells": row} for label, row in zip(grid["y"], table)],
        "metric": cells.metric_by_key(options.metrics, opts["metric"]),
        "filters_text": form.describe() if form.filters() else "",
        "clear_qs": urlencode(_query(request.GET, keep=(cells.METRIC, cells.CYL))),
    }


def _drill_context(request, run, filters, opts, key) -> dict:
    drill = cells.cell_drilldown(run=run, filters=filters, key=key, cylinder=opts["cyl"])
    run_query = _query(request.GET, keep=FILTER_PARAMS)
    for link in drill["links"]:
        link["href"] = reverse("run", args=[run.pk]) + "?" + _with(run_query, link["params"])
    figure = drill.pop("figure")
    drill.update(
        title=_title(run, key, opts["cyl"]),
        first_text=_when(drill["first_ts"], drill["first_t_ms"]),
        last_text=_when(drill["last_ts"], drill["last_t_ms"]),
        plot={"figure": figure} if figure else None,
        by_time=bool(figure and figure["x_is_time"]),
    )
    return drill


def _title(run, key: dict, cyl: str) -> str:
    if run.kind == "session":
        return f"Round {key['cell_round']} · agent {key['cell_agent']}"
    if run.kind == "study":
        if run.first_ts is None:
            return f"“{key['cell_action']}” events"
        start = run.first_ts + dt.timedelta(milliseconds=key["cell_t"])
        end = start + dt.timedelta(milliseconds=key["cell_w"])
        return f"“{key['cell_action']}” events, {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC"
    title = f"RPM {key['cell_rpm']} × KPA {key['cell_kpa']}"
    index = cells.index_of(key["cell_rpm"], key["cell_kpa"])
    if index is not None:
        title += f" (index [{index[0]}, {index[1]}])"
    if cyl != "both":
        title += f" · {cells.CYLINDERS[cyl]} cylinder"
    return title


def _when(ts, t_ms) -> str:
    if ts is None:
        return ""
    text = ts.strftime("%Y-%m-%d %H:%M:%S.") + f"{ts.microsecond // 1000:03d} UTC"
    return text + (f" (+{t_ms:,.1f} ms)" if t_ms is not None else "")


def _query(params, *, keep=None, drop=()) -> list[tuple[str, str]]:
    """The querystring's non-empty (name, value) pairs: only `keep` (all when None), without `drop`."""
    return [
        (name, value)
        for name in params
        if (keep is None or name in keep) and name not in drop
        for value in params.getlist(name)
        if value != ""
    ]


def _with(pairs: list[tuple[str, str]], params: dict) -> str:
    """pairs with each name in params replaced by its value(s), urlencoded."""
    out = [(n, v) for n, v in pairs if n not in params]
    for name, value in params.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            out.append((name, _text(v)))
    return urlencode(out)


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
