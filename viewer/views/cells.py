"""The cell heatmap page (/runs/<id>/cells/): the grid over the run's filtered decisions, and
one cell's drilldown, each also an htmx fragment of the same template. What the grid is comes
from the run's kind profile (`kinds.profile(run).cells`; events over time for a kind without)."""

from urllib.parse import urlencode

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from .. import cells, cells_time, drilldown, htmx, kinds
from ..filters import FILTER_PARAMS, DecisionFilterForm, filter_querystring
from ..forms import CellOptionsForm
from ..querystring import pairs, query_string
from ..selectors import get_run_or_404
from ..text import clock
from .notes import block as notes_block

PARTS = {"cells-panel": "viewer/cells.html#cells-panel", "cell-drilldown": "viewer/cells.html#drilldown"}


@require_GET
@htmx.vary_on_fragment
def run_cells(request, run_id):
    run = get_run_or_404(request.user, run_id)
    profile = kinds.profile(run)
    spec = profile.cells or cells_time.SPEC
    form = DecisionFilterForm(request.GET)
    options = CellOptionsForm(request.GET, spec=spec, metrics=cells.available_metrics(spec=spec, run=run))
    valid = form.is_valid() & options.is_valid()
    part = htmx.fragment(request, PARTS)
    if not valid and part:
        return htmx.bad_request("; ".join(t for t in (form.error_text(), options.error_text()) if t))
    context = {
        "run": run,
        "words": profile.words,
        "inside_label": spec.inside_label,
        "form": form,
        "options": options,
        "filter_qs": filter_querystring(request.GET),
        "filter_pairs": pairs(request.GET, keep=FILTER_PARAMS),
        "cylinders": list(spec.cylinders.items()),
        "cyl": request.GET.get(cells.CYL) or cells.BOTH,
    }
    if valid:
        opts = options.cleaned_data
        context["cylinder_label"] = spec.cylinders.get(opts["cyl"], "")
        key = options.cell_key()
        if part != "cell-drilldown":
            context.update(_grid_context(request, run, spec, form, options, key))
        if key:
            context["drill"] = _drill_context(request, run, spec, form.filters(), opts, key)
            # a cell's notes under its key as the page's URL names it (cell_rpm=2000&cell_kpa=50)
            context["drill"]["notes_place"] = notes_block(request, run, cell=urlencode(key))
    return render(request, PARTS.get(part, "viewer/cells.html"), context, status=200 if valid else 400)


def _grid_context(request, run, spec, form, options, key) -> dict:
    opts = options.cleaned_data
    grid = cells.remembered_grid(
        spec=spec, run=run, filters=form.filters(), metric=opts["metric"], cylinder=opts["cyl"],
        metrics=options.metrics,
    )
    table = [[None] * len(grid["x"]) for _ in grid["y"]]
    for c in grid["cells"]:
        c["href"] = request.path + query_string(request.GET, remove=_cell_params(), set=c["key"])
        table[c["row"]][c["col"]] = c
    return {
        "grid": grid,
        "figure": {"figure": cells.heatmap_figure(grid, selected=key)},
        "table": [{"label": label, "cells": row} for label, row in zip(grid["y"], table)],
        "metric": cells.metric_by_key(options.metrics, options.cleaned_data["metric"]),
        "filters_text": form.describe() if form.filters() else "",
        "clear_qs": query_string(request.GET, keep=(cells.METRIC, cells.CYL))[1:],
    }


def _drill_context(request, run, spec, filters, opts, key) -> dict:
    drill = drilldown.cell_drilldown(spec=spec, run=run, filters=filters, key=key, cylinder=opts["cyl"])
    run_url = reverse("run", args=[run.pk])
    for link in drill["links"]:
        link["href"] = run_url + query_string(request.GET, keep=FILTER_PARAMS, set=link["params"])
    figure = drill.pop("figure")
    drill.update(
        title=spec.title(run, key, opts["cyl"]),
        first_text=_when(drill["first_ts"], drill["first_t_ms"]),
        last_text=_when(drill["last_ts"], drill["last_t_ms"]),
        plot={"figure": figure} if figure else None,
        by_time=bool(figure and figure["x_is_time"]),
    )
    return drill


def _cell_params() -> list[str]:
    """Every kind's cell_* parameters: a link to a cell drops any other cell's."""
    return [name for name in CellOptionsForm.base_fields if name.startswith("cell_")]


def _when(ts, t_ms) -> str:
    if ts is None:
        return ""
    text = ts.strftime("%Y-%m-%d %H:%M:%S.") + f"{ts.microsecond // 1000:03d} UTC"
    return text + (f" ({clock(t_ms)})" if t_ms is not None else "")
