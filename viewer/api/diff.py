"""The diff endpoints."""
from __future__ import annotations

from typing import Any, Literal

from ninja import Field, Query, Schema
from ninja.errors import HttpError

from .. import kinds
from ..diff_report import DiffReport, DiffTooBig, change_view, diff_report
from ..diff_values import Change
from ..filters import DecisionFilterForm, describe_filters
from .base import DEFAULT_LIMIT, ERRORS, MAX_API_LIMIT, MAX_ID, ErrorOut, FilterQuery, _run, router


class DiffQuery(FilterQuery):
    a: int = Field(..., ge=1, le=MAX_ID, description="run A")
    b: int = Field(..., ge=1, le=MAX_ID, description="run B")
    rows: Literal["diff", "all"] = Field("diff", description="diff: only the differences; all: every aligned row")
    volatile: bool = Field(False, description="also compare timestamps, session/run ids, event ids and elapsed times")
    start: int = Field(0, ge=0, le=10**9, description="the first row to return (see `next`)")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_API_LIMIT)


class DiffChangeOut(Schema):
    path: str = Field(description="dotted path into the values (`roll.d20`), or reason / ts")
    a: Any
    b: Any
    delta: float | None = Field(description="b - a where both are numbers")
    absent: str | None = Field(description="a or b: the side that lacks the path")


class DiffRowOut(Schema):
    status: str = Field(description="same, changed, only_a or only_b")
    a_seq: int | None
    b_seq: int | None
    action: str
    where: str = Field(description="the cell (DynoAI) or round and agent (sessions)")
    changes: list[DiffChangeOut]


class DiffDivergenceOut(Schema):
    position: int = Field(description="0-based position in file order (after the filters) where the runs first differ")
    a_seq: int | None
    b_seq: int | None
    description: str
    changes: list[DiffChangeOut]


class DiffRunOut(Schema):
    id: int
    name: str
    kind: str
    decisions: int = Field(description="decisions compared (after the filters)")
    duration_ms: float | None


class DiffActionOut(Schema):
    action: str
    a: int
    b: int
    delta: int


class DiffOut(Schema):
    a: DiffRunOut
    b: DiffRunOut
    filters: str
    identical: bool
    counts: dict[str, int] = Field(description="rows by status")
    first_divergence: DiffDivergenceOut | None
    actions: list[DiffActionOut]
    settings: list[DiffChangeOut] = Field(description="the settings that differ")
    rows: list[DiffRowOut]
    total_rows: int
    next: int | None = Field(description="pass as `start` for the next page; null on the last page")


@router.get(
    "/diff",
    response={200: DiffOut, 413: ErrorOut, **ERRORS},
    summary="Two runs compared: aligned decisions, what changed, the first divergence",
    description="The filters of the run page apply to both runs. Decisions are aligned by content (DynoAI: "
    "action and cell; sessions: round, event type and agent; study logs: event type), not by time.",
)
def diff_runs(request, query: Query[DiffQuery]):
    a, b = _run(request, query.a), _run(request, query.b)
    data = request.GET.copy()
    for name in ("a", "b", "rows", "volatile", "start", "limit"):
        data.pop(name, None)
    form = DecisionFilterForm(data)
    if not form.is_valid():
        raise HttpError(400, form.error_text())
    try:
        report = diff_report(a, kinds.profile(a), b, kinds.profile(b), filters=form.filters(),
                             include_volatile=query.volatile)
    except DiffTooBig as exc:
        raise HttpError(413, str(exc)) from None
    return _payload(report, only=query.rows == "diff", start=query.start, limit=query.limit)


def _payload(report: DiffReport, *, only: bool, start: int, limit: int) -> dict:
    """The report as DiffOut: counts, first divergence, settings, a page of rows."""
    rows = report.rows(only=only)
    d = report.divergence
    result = report.result

    def run_out(run, side):
        return {"id": run.pk, "name": run.name, "kind": run.kind, "decisions": len(side),
                "duration_ms": side.duration_ms()}

    def row_out(r):
        return {"status": r["status"], "a_seq": r["seq_a"], "b_seq": r["seq_b"], "action": r["action"],
                "where": r["where"], "changes": r["changes"]}

    return {
        "a": run_out(report.a, result.a),
        "b": run_out(report.b, result.b),
        "filters": describe_filters(report.filters),
        "identical": report.identical,
        "counts": report.counts,
        "first_divergence": None if d is None else {
            "position": d["position"], "a_seq": d["seq_a"], "b_seq": d["seq_b"], "description": d["what"],
            "changes": d["changes"],
        },
        "actions": [
            {"action": c.label, "a": c.a, "b": c.b, "delta": c.delta} for c in report.summary["actions"]
        ],
        "settings": [change_view(Change(s.path, s.a, s.b, s.delta)) for s in report.settings_changed],
        "rows": [row_out(r) for r in report.row_views(rows[start : start + limit])],
        "total_rows": len(rows),
        "next": start + limit if start + limit < len(rows) else None,
    }
