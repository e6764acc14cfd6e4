"""N runs side by side (issue 17.4): GET /api/compare?run=A&run=B... (2 to 12), the report the
/compare/ page renders (viewer/compare.py)."""

from __future__ import annotations

from typing import Any

from ninja import Field, Query, Schema
from ninja.errors import HttpError

from .. import compare
from .base import ERRORS, router


class CompareQuery(Schema):
    run: list[str] = Field([], description="repeatable: 2 to 12 run ids")
    rpm: str | None = Field(
        None, description="the cell read across the runs (with kpa); default: the most varied"
    )
    kpa: str | None = None


class SettingsOut(Schema):
    differ: dict[str, list[Any]] = Field(
        description="name -> [value per run, in `runs` order; null: not recorded]"
    )
    same: dict[str, Any]
    not_recorded: list[int] = Field(
        description="runs that record no settings (imported without their manifest)"
    )


class CompareOut(Schema):
    runs: list[int]
    settings: SettingsOut
    outcomes: dict[str, dict[str, Any]] = Field(
        description="run id -> {by_action, cells_clamped, cells_gradient_limited, anomalies, confidence}"
    )
    grids: list[dict[str, Any] | None] = Field(
        description="per run: its correction grid {rows, cols, values, source}, or null"
    )
    cell: dict[str, Any] | None = Field(description="{rpm, kpa, values: [value per run]}")


@router.get(
    "/compare", response={200: CompareOut, **ERRORS}, summary="2 to 12 runs compared: settings, outcomes"
)
def compare_runs(request, query: Query[CompareQuery]):
    form = compare.CompareForm(request.GET)
    if not form.is_valid():
        raise HttpError(400, form.error_text())
    try:
        runs, specs = compare.compared_runs(request.auth, form.cleaned_data[compare.RUN])
    except ValueError as exc:
        raise HttpError(400, f"run: {exc}") from None
    p = form.cleaned_data
    cell = (p["rpm"], p["kpa"]) if p["rpm"] is not None and p["kpa"] is not None else None
    report = compare.compare(runs=runs, specs=specs, cell=cell)
    report["outcomes"] = {str(k): v for k, v in report["outcomes"].items()}
    report.pop("pairs")
    return report
