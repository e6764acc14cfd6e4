"""The cells endpoints."""
from __future__ import annotations

from typing import Any

from ninja import Field, Query, Schema
from ninja.errors import HttpError

from .. import cell_story as story_mod
from .. import cells as cells_mod
from .. import cells_time, kinds
from ..forms import CellOptionsForm
from .base import ERRORS, FilterQuery, _filter_form, _run, router


class CellsQuery(FilterQuery):
    metric: str | None = Field(None, description="a metric key from `metrics` (default: the first)")
    cyl: str | None = Field(None, description="DynoAI: f, r or both (default)")


class CellLinkOut(Schema):
    label: str
    params: dict[str, Any] | None = Field(
        None, description="filter parameters selecting the cell's decisions: add them to the current filters"
    )
    seq: int | None = Field(None, description="a decision of the cell that no filter selects (clamping)")


class CellOut(Schema):
    row: int = Field(description="index into y")
    col: int = Field(description="index into x")
    y: Any = Field(description="RPM bin, round or event type")
    x: Any = Field(description="kPa bin, agent or bucket label")
    value: float | None
    count: int = Field(description="decisions behind the value")
    text: str
    details: list[str]
    decisions: int = Field(description="decisions in the cell")
    index: list[int] | None = Field(None, description="DynoAI: [rpm_index, kpa_index] of the standard grid")
    links: list[CellLinkOut]
    key: dict[str, Any] = Field(description="the cell's drilldown parameters on the cells page")


class CellMetricOut(Schema):
    key: str
    label: str


class CellGridOut(Schema):
    run: int
    kind: str
    metric: str
    metric_label: str
    cylinder: str | None
    x_title: str
    y_title: str
    x: list[str]
    y: list[str]
    x_values: list[Any]
    y_values: list[Any]
    z: list[list[float | None]] = Field(description="rows follow y; null where a cell has no data")
    cells: list[CellOut]
    notes: list[str]
    metrics: list[CellMetricOut]


@router.get(
    "/runs/{run_id}/cells",
    response={200: CellGridOut, **ERRORS},
    summary="The cell heatmap: RPM x kPa (DynoAI), round x agent (sessions), time x event (study)",
    description="The filters of the run page apply. `metric` picks the value (see `metrics`); `cyl` the "
    "DynoAI cylinder. Index-based DynoAI actions are placed on the standard bins (RPM 1500-6500 step 500, "
    "kPa 35/50/65/80/95).",
)
def run_cells(request, run_id: int, filters: Query[CellsQuery]):
    run = _run(request, run_id)
    form = _filter_form(request, allow_paging=False)
    spec = kinds.profile(run).cells or cells_time.SPEC
    options = CellOptionsForm(request.GET, spec=spec, metrics=cells_mod.available_metrics(spec=spec, run=run))
    if not options.is_valid():
        raise HttpError(400, options.error_text())
    opts = options.cleaned_data
    grid = cells_mod.remembered_grid(
        spec=spec, run=run, filters=form.filters(), metric=opts["metric"], cylinder=opts["cyl"],
        metrics=options.metrics,
    )
    return {"run": run.pk, **grid}


# -- replay (issue 5: the state as of a step, from the same functions as /runs/<id>/replay/) -------


# -- the cell story (issue 17.2) -------------------------------------------------------------------


class StoryQuery(Schema):
    rpm: str | None = Field(None, description="the cell's RPM bin (with kpa)")
    kpa: str | None = Field(None, description="the cell's kPa bin (with rpm)")
    rpm_index: str | None = Field(None, description="or the cell's grid indices (with kpa_index)")
    kpa_index: str | None = None
    cylinder: str | None = Field(None, description="f, r or both (default); AFR samples of that cylinder")


class StoryOut(Schema):
    cell: dict[str, Any]
    decisions: list[dict[str, Any]] = Field(
        description="in file order: {seq, action, stage, t_ms, cylinder, ...} with the values the action "
        "logs for the cell (AFR sample, gradient limiting, clamping with its limit, anomaly)"
    )
    final: dict[str, Any] | None = Field(
        description="{value, source, seq}: the VE correction grid's value, else the last decision's"
    )


@router.get(
    "/runs/{run_id}/cells/story",
    response={200: StoryOut, **ERRORS},
    summary="Everything that happened to one cell, in file order, and its final correction",
)
def cell_story(request, run_id: int, query: Query[StoryQuery]):
    run = _run(request, run_id)
    spec = kinds.profile(run).tuning
    if spec is None:
        raise HttpError(404, "This run's kind has no cell story")
    form = story_mod.StoryForm(request.GET, spec=spec)
    if not form.is_valid():
        raise HttpError(400, form.error_text())
    return story_mod.cell_story(spec=spec, run=run, form=form)
