"""The JSON API (SPEC.md, "API"): a ninja Router over the same selectors and filter form as the pages.

Auth is the browser session (CSRF enforced on state-changing requests) or
`Authorization: Bearer <token>` (viewer.models.ApiToken). Errors are {"detail": message}.
Filters are parsed by DecisionFilterForm from request.GET: the query schemas below only
document the parameter names for OpenAPI; they are not a second grammar.

Endpoints for cells, replay and diff are appended at the end of this file by their owners.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import Max, Min
from django.http import Http404
from django.utils import timezone
from ninja import Field, File, Form, Query, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from . import cells as cells_mod
from . import filters as F
from .filters import DecisionFilterForm
from .ingest import Source, run_ingest
from .memo import run_memo
from .models import ApiToken, Run, hash_token
from .selectors import action_counts, decision_list, filtered_decisions, get_run_or_404, visible_runs
from .views import diff as diff_views
from .views import replay as replay_views


class BearerToken(HttpBearer):
    """`Authorization: Bearer <token>`: the token's sha256 is looked up; the token itself is never stored."""

    def authenticate(self, request, token):
        if not token or len(token) > 200:
            return None
        found = ApiToken.objects.select_related("user").filter(token_hash=hash_token(token)).first()
        if found is None or not found.user.is_active:
            return None
        now = timezone.now()
        # Record use at most once a minute, so a busy script does not write on every request.
        if found.last_used is None or now - found.last_used > dt.timedelta(minutes=1):
            ApiToken.objects.filter(pk=found.pk).update(last_used=now)
        request.user = found.user
        return found.user


class SessionAuth(APIKeyCookie):
    """The browser session. Unlike ninja's own, an anonymous request is a 401 before any CSRF check."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request):
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request, key):
        user = getattr(request, "user", AnonymousUser())
        if not user.is_authenticated:
            return None
        if check_csrf(request):
            raise HttpError(403, "CSRF check failed: send the csrftoken cookie's value as X-CSRFToken")
        return user

    def __call__(self, request):
        return self.authenticate(request, None)


AUTH = [BearerToken(), SessionAuth()]
router = Router(auth=AUTH, tags=["runs"])


class ErrorOut(Schema):
    detail: Any


ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


DEFAULT_LIMIT = 100
MAX_API_LIMIT = 1000
MAX_ID = 2**63 - 1
INTEGER = "an integer"


# -- schemas ------------------------------------------------------------------------------------


class RunOut(Schema):
    id: int
    name: str
    kind: str = Field(description="dynoai, session or study")
    source_name: str
    size: int = Field(description="bytes")
    sha256: str
    run_id: str = Field(description="DynoAI run id")
    schema_version: str
    generated_at: str
    session_id: str
    random_seed: int | None
    version: str
    git_commit: str
    source: str
    user_label: str
    declared_total: int | None = Field(description="total_decisions as the file declares it")
    decision_count: int
    first_ts: dt.datetime | None
    last_ts: dt.datetime | None
    duration_ms: float | None
    manifest: dict[str, Any] | None = Field(description="DynoAI manifest check: status, sizes, sha256, ok")
    warnings: list[str]
    keep_user_ids: bool
    created: dt.datetime


class RunDetailOut(RunOut):
    settings: dict[str, Any] = Field(description="the run's settings (DynoAI CLI args, session config)")


class RunListOut(Schema):
    items: list[RunOut]
    next: int | None = Field(description="pass as `after` for the next page; null on the last page")


class RunsQuery(Schema):
    after: int | None = Field(None, ge=0, le=MAX_ID, description="a run id: the runs before it (keyset)")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_API_LIMIT)


class UploadResultOut(Schema):
    name: str
    status: str = Field(description="imported, duplicate, error, skipped or manifest")
    message: str
    run_id: int | None
    count: int
    warnings: list[str]


class UploadOut(Schema):
    results: list[UploadResultOut]


class UploadFailedOut(Schema):
    detail: str
    results: list[UploadResultOut]


class FilterQuery(Schema):
    """The filter parameters of SPEC.md. Documented here; parsed by DecisionFilterForm."""

    action: list[str] = Field([], description="repeatable; case-insensitive substring of the action, OR-ed")
    q: str | None = Field(None, description="case-insensitive text in the reason (and LLM prompt/response)")
    rpm: str | None = Field(None, description=INTEGER)
    kpa: str | None = Field(None, description=INTEGER)
    cylinder: str | None = None
    rpm_index: str | None = Field(None, description=INTEGER)
    kpa_index: str | None = Field(None, description=INTEGER)
    round: str | None = Field(None, description=INTEGER)
    agent: str | None = None
    rpm_min: str | None = Field(None, description=INTEGER)
    rpm_max: str | None = Field(None, description=INTEGER)
    kpa_min: str | None = Field(None, description=INTEGER)
    kpa_max: str | None = Field(None, description=INTEGER)
    round_min: str | None = Field(None, description=INTEGER)
    round_max: str | None = Field(None, description=INTEGER)
    t_from: str | None = Field(None, description="ms since the run's first decision (inclusive)")
    t_to: str | None = Field(None, description="ms since the run's first decision (inclusive)")
    since: str | None = Field(None, description="an ISO-8601 instant")
    until: str | None = Field(None, description="an ISO-8601 instant")
    v: list[str] = Field([], description="repeatable value condition KEY OP VALUE, OP one of < <= > >= = !=")


class DecisionQuery(FilterQuery):
    after: str | None = Field(None, description="a seq: decisions after it (keyset cursor)")
    limit: str | None = Field(
        None, description=f"at most this many (default {DEFAULT_LIMIT}, at most {MAX_API_LIMIT})"
    )


# The schemas document the form's own parameter names, no more and no fewer.
_DOCUMENTED = set(DecisionQuery.model_fields)
assert _DOCUMENTED == set(F.ALL_PARAMS), _DOCUMENTED ^ set(F.ALL_PARAMS)


class DecisionOut(Schema):
    seq: int = Field(description="0-based position in the file")
    line: int | None
    ts: dt.datetime | None
    t_ms: float | None = Field(description="ms since the run's first timestamp")
    action: str
    reason: str
    values: dict[str, Any]
    cell: dict[str, Any] | None
    rpm: int | None
    kpa: int | None
    cylinder: str | None
    rpm_index: int | None
    kpa_index: int | None
    round: int | None
    agent: str | None
    metric: float | None = Field(description="the decision's headline number")


class DecisionListOut(Schema):
    items: list[DecisionOut]
    next: int | None = Field(description="pass as `after` for the next page; null on the last page")


class ActionCountOut(Schema):
    action: str
    count: int


class SummaryOut(Schema):
    run: int
    filters: str = Field(description="the filters as a sentence")
    decision_count: int = Field(description="decisions in the run")
    matching: int = Field(description="decisions that pass the filters")
    first_ts: dt.datetime | None = Field(description="earliest matching timestamp")
    last_ts: dt.datetime | None = Field(description="latest matching timestamp")
    duration_ms: float | None = Field(description="the run's duration")
    actions: list[ActionCountOut] = Field(description="matching decisions by action, most frequent first")


# -- helpers ------------------------------------------------------------------------------------


def _run(request, run_id: int) -> Run:
    if not 0 <= run_id <= MAX_ID:
        raise Http404("No such run")
    return get_run_or_404(request.auth, run_id)


def _filter_form(request, *, allow_paging: bool) -> DecisionFilterForm:
    data = request.GET
    if not allow_paging:
        data = data.copy()
        for name in (F.AFTER, F.LIMIT):
            data.pop(name, None)
    form = DecisionFilterForm(data)
    if not form.is_valid():
        raise HttpError(400, form.error_text())
    return form


DECISION_FIELDS = tuple(DecisionOut.model_fields)


# -- endpoints ----------------------------------------------------------------------------------


@router.get("/runs", response={200: RunListOut, **ERRORS}, summary="Your runs, newest first")
def list_runs(request, page: Query[RunsQuery]):
    runs = visible_runs(request.auth).order_by("-id")
    if page.after is not None:
        runs = runs.filter(pk__lt=page.after)
    items = list(runs[: page.limit + 1])
    more = len(items) > page.limit
    items = items[: page.limit]
    return {"items": items, "next": items[-1].pk if more else None}


@router.post(
    "/runs",
    response={201: UploadOut, 200: UploadOut, 400: UploadFailedOut, 401: ErrorOut, 403: ErrorOut},
    summary="Import log files",
    description="Multipart `file`, repeatable. One result per file, as on the upload page: 201 if any file "
    "was imported, 200 if none was new, 400 if every file failed.",
)
def upload_runs(request, file: File[list[UploadedFile]], keep_user_ids: Form[bool] = False):
    limit = settings.REPLAYWEB_MAX_FILES_PER_UPLOAD
    if len(file) > limit:
        return Status(400, {"detail": f"more than {limit:,} files in one upload (REPLAYWEB_MAX_FILES_PER_UPLOAD): "
                                      "nothing was imported", "results": []})
    sources = [Source(name=f.name or "upload", fileobj=f, group="api") for f in file]
    results = run_ingest(owner=request.auth, sources=sources, keep_user_ids=keep_user_ids)
    results = [r.as_dict() for r in results]
    if all(r["status"] == "error" for r in results):
        return Status(400, {"detail": "no file was imported", "results": results})
    return Status(201 if any(r["status"] == "imported" for r in results) else 200, {"results": results})


@router.get("/runs/{run_id}", response={200: RunDetailOut, **ERRORS}, summary="One run")
def get_run(request, run_id: int):
    return _run(request, run_id)


@router.delete("/runs/{run_id}", response={204: None, **ERRORS}, summary="Delete a run and its decisions")
def delete_run(request, run_id: int):
    _run(request, run_id).delete()
    return Status(204, None)


@router.get("/runs/{run_id}/summary", response={200: SummaryOut, **ERRORS}, summary="Counts by action")
def run_summary(request, run_id: int, filters: Query[FilterQuery]):
    run = _run(request, run_id)
    form = _filter_form(request, allow_paging=False)
    qs = filtered_decisions(run=run, **form.filters())
    counts = action_counts(qs)
    span = qs.order_by().aggregate(first=Min("ts"), last=Max("ts"))
    return {
        "run": run.pk,
        "filters": form.describe(),
        "decision_count": run.decision_count,
        "matching": sum(n for _, n in counts),
        "first_ts": span["first"],
        "last_ts": span["last"],
        "duration_ms": run.duration_ms,
        "actions": [{"action": a, "count": n} for a, n in sorted(counts, key=lambda pair: -pair[1])],
    }


@router.get(
    "/runs/{run_id}/decisions",
    response={200: DecisionListOut, **ERRORS},
    summary="The run's decisions that pass the filters, in file order",
    description="The filters of the run page (same names, same meaning). Keyset paging: pass `next` as "
    f"`after`. `limit` defaults to {DEFAULT_LIMIT}, at most {MAX_API_LIMIT}.",
)
def list_decisions(request, run_id: int, filters: Query[DecisionQuery]):
    run = _run(request, run_id)
    form = _filter_form(request, allow_paging=True)
    paging = form.paging()
    limit = paging.pop(F.LIMIT, DEFAULT_LIMIT)
    if limit > MAX_API_LIMIT:
        raise HttpError(400, f"limit: at most {MAX_API_LIMIT}")
    rows = list(decision_list(run=run, **form.filters(), **paging, limit=limit + 1).values(*DECISION_FIELDS))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next": rows[-1]["seq"] if more else None}


# -- cells (issue 4: the heatmap's data, from the same function as /runs/<id>/cells/) -------------



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
    x: Any = Field(description="KPA bin, agent or bucket label")
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
    summary="The cell heatmap: RPM x KPA (DynoAI), round x agent (sessions), time x event (study)",
    description="The filters of the run page apply. `metric` picks the value (see `metrics`); `cyl` the "
    "DynoAI cylinder. Index-based DynoAI actions are placed on the standard bins (RPM 1500-6500 step 500, "
    "KPA 35/50/65/80/95).",
)
def run_cells(request, run_id: int, filters: Query[CellsQuery]):
    run = _run(request, run_id)
    form = _filter_form(request, allow_paging=False)
    options = cells_mod.CellOptionsForm(request.GET, run=run)
    if not options.is_valid():
        raise HttpError(400, options.error_text())
    opts = options.cleaned_data
    params = {**form.filters(), "metric": opts["metric"], "cyl": opts["cyl"]}
    grid = run_memo(run, "cells", params, lambda: cells_mod.cell_grid(
        run=run, filters=form.filters(), metric=opts["metric"], cylinder=opts["cyl"], metrics=options.metrics
    ))
    return {"run": run.pk, **grid}


# -- replay (issue 5: the state as of a step, from the same functions as /runs/<id>/replay/) -------



class ReplayQuery(FilterQuery):
    step: int | None = Field(
        None, ge=0, le=2**31 - 1, description="decisions folded (0: the empty state; default 0)")
    t: str | None = Field(
        None, description="instead of step: a time since the run's start (1:02.5, 12s, 800ms or plain ms); "
        "the step is the last one at or before it")


class ReplayOut(Schema):
    run: int
    step: int = Field(description="the first `step` decisions (after the filters) are folded into `state`")
    total: int = Field(description="decisions in the replay (after the filters)")
    decision: dict[str, Any] | None = Field(
        description="decision number `step` (the current one); null at step 0")
    state: dict[str, Any] = Field(description="the state as of the step; its shape depends on the run's kind")


class ReplayBuildingOut(Schema):
    detail: str
    built_steps: int


@router.get(
    "/runs/{run_id}/replay",
    response={200: ReplayOut, 202: ReplayBuildingOut, **ERRORS},
    summary="The replay state as of a step",
    description="The filters of the run page apply: the replay steps through the matching decisions only. "
    "A big run's first replay is prepared in the background (202 until ready; ask again).",
)
def run_replay(request, run_id: int, filters: Query[ReplayQuery]):
    run = _run(request, run_id)
    form = _filter_form(request, allow_paging=False)
    where = replay_views.StepForm(request.GET)
    if not where.is_valid():
        raise HttpError(400, "; ".join(f"{k}: {e}" for k, errs in where.errors.items() for e in errs))
    at = where.cleaned_data
    found = replay_views.replay_state(run, form.filters(), at["step"], at["t"])
    if found is None:
        index = replay_views.get_index(run, form.filters())
        detail = f"the replay is being prepared ({index.status})"
        return Status(202, {"detail": detail, "built_steps": index.built_steps})
    return {"run": run.pk, **found}


# -- diff (issue 6: two runs compared, from the same functions as /diff/) --------------------------




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
    response={200: DiffOut, **ERRORS},
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
    result = diff_views.load_diff(a, b, filters=form.filters(), include_volatile=query.volatile)
    return diff_views.api_payload(result, a, b, form, only=query.rows == "diff", start=query.start, limit=query.limit)
