"""Runs: list, upload, one run, delete, its summary and its decisions."""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Max, Min
from ninja import Field, File, Form, Query, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from .. import filters as F
from .. import access, jobs
from ..ingest import rename
from ..forms import RunListForm
from ..selectors import CursorGone, action_counts, decision_list, filtered_decisions, first_rows, runs_page
from .base import DEFAULT_LIMIT, DecisionQuery, ERRORS, ErrorOut, FilterQuery, MAX_API_LIMIT, MAX_ID, router
from .base import _filter_form, _run


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
    manifest: dict[str, Any] | None = Field(description="DynoAI manifest check: status, sizes, sha256, ok, outputs")
    status: str = Field(description="ready, or failed: the tool's run failed and left no log (see `failure`)")
    failure: dict[str, Any] | None = Field(description="a failed run: {code, stage, message, input, manifest}")
    warnings: list[str]
    keep_user_ids: bool
    created: dt.datetime
    tags: list[str] = Field(description="the run's tags, by name")

    @staticmethod
    def resolve_tags(run) -> list[str]:
        return [t.name for t in run.tags.all()]


class RunDetailOut(RunOut):
    settings: dict[str, Any] = Field(description="the run's settings (DynoAI CLI args, session config)")


class RunListOut(Schema):
    items: list[RunOut]
    next: int | None = Field(description="pass as `after` for the next page; null on the last page")


class RunsQuery(Schema):
    """The runs list's parameters (the page's, same names). Documented here; parsed by RunListForm."""

    after: int | None = Field(None, ge=0, le=MAX_ID, description="a run id, the last of the previous page: "
                              "the runs after it in this sort (keyset)")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_API_LIMIT)
    q: str | None = Field(None, description="case-insensitive text in the name, run id, session id or file name")
    kind: str | None = Field(None, description="dynoai, session, study, … (a registered kind)")
    tag: str | None = Field(None, description="runs carrying this tag")
    owner: str | None = Field(None, description="a username: the runs you can see that they own")
    since: dt.date | None = Field(None, description="imported on or after this day (YYYY-MM-DD)")
    until: dt.date | None = Field(None, description="imported on or before this day (YYYY-MM-DD)")
    status: str | None = Field(None, description="ready, live or failed (the tool's run failed); importing "
                               "matches no run: imports in progress and failed imports are GET /api/jobs")
    sort: str | None = Field(None, description="-created (default, newest first), created, name, -name, "
                             "-decisions, decisions; ties in run id order")


class UploadResultOut(Schema):
    name: str
    status: str = Field(description="imported, duplicate, error, skipped, manifest, or output (a file kept "
                        "with a run: its message says which and how it compares with the manifest)")
    message: str
    run_id: int | None
    count: int
    warnings: list[str]


class RenameIn(Schema):
    # Checked in the endpoint, after the run: another user's run is a 404 whatever the body.
    name: str | None = Field(None, description="the run's new name (at most 500 characters); its file name "
                             "stays in source_name")


class QueuedJobOut(Schema):
    id: int
    name: str = Field(description="the file's name (or \"N files (first, …)\" for a DynoAI output folder)")
    status: str = Field(description="queued, running, done, failed or cancelled; follow GET /api/jobs/{id}")


class UploadOut(Schema):
    jobs: list[QueuedJobOut] = Field(description="one import job per log file (per output folder)")
    results: list[UploadResultOut] = Field(description="files refused before queueing (too big)")


class UploadFailedOut(Schema):
    detail: str
    results: list[UploadResultOut]



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




DECISION_FIELDS = tuple(DecisionOut.model_fields)


# -- endpoints ----------------------------------------------------------------------------------


@router.get("/runs", response={200: RunListOut, **ERRORS}, summary="Your runs, newest first",
            description="The runs list's search, filters and sorts (the page's parameters). Keyset paging: "
            "pass `next` as `after`.")
def list_runs(request, page: Query[RunsQuery]):
    form = RunListForm(request.GET)
    if not form.is_valid():
        raise HttpError(400, form.error_text())
    try:
        items, cursor = runs_page(request.auth, sort=form.sort_key(), after=form.cleaned_data["after"],
                                  limit=page.limit, **form.filters())
    except CursorGone as exc:
        raise HttpError(400, f"after: {exc}") from None
    return {"items": items, "next": cursor}


@router.post(
    "/runs",
    response={202: UploadOut, 400: UploadFailedOut, 401: ErrorOut, 403: ErrorOut},
    summary="Import log files (as background jobs)",
    description="Multipart `file`, repeatable. The files are stored and queued at once: 202 with one job per log "
    "file (a DynoAI output folder, with its manifest, is one job); follow each with GET /api/jobs/{id}. "
    "`results` lists the files refused before queueing; 400 if every file was.",
)
def upload_runs(request, file: File[list[UploadedFile]], keep_user_ids: Form[bool] = False):
    limit = settings.REPLAYWEB_MAX_FILES_PER_UPLOAD
    if len(file) > limit:
        return Status(400, {"detail": f"more than {limit:,} files in one upload (REPLAYWEB_MAX_FILES_PER_UPLOAD): "
                                      "nothing was imported", "results": []})
    uploads = [jobs.Upload(name=f.name or "upload", fileobj=f) for f in file]
    queued, refused = jobs.submit(request.auth, uploads, keep_user_ids=keep_user_ids, group="api")
    results = [r.as_dict() for r in refused]
    if not queued:
        return Status(400, {"detail": "no file was queued", "results": results})
    return Status(202, {"jobs": [{"id": j.pk, "name": j.name, "status": j.status} for j in queued], "results": results})


@router.get("/runs/{run_id}", response={200: RunDetailOut, **ERRORS}, summary="One run")
def get_run(request, run_id: int):
    return _run(request, run_id)


@router.patch("/runs/{run_id}", response={200: RunDetailOut, **ERRORS}, summary="Rename a run")
def rename_run(request, run_id: int, body: RenameIn = None):
    run = _run(request, run_id)
    if not access.is_owner(request.auth, run):  # only the owner names a run, whoever else may see it
        raise HttpError(404, "No such run")
    try:
        if body is None or body.name is None or len(body.name) > 500:
            raise ValueError("give the new name, at most 500 characters, as {\"name\": ...}")
        rename(run, body.name)
    except ValueError as exc:
        raise HttpError(400, f"name: {exc}") from None
    return run


@router.delete("/runs/{run_id}", response={204: None, **ERRORS}, summary="Delete a run and its decisions")
def delete_run(request, run_id: int):
    run = _run(request, run_id)
    if not access.is_owner(request.auth, run):  # a user the run is shared with cannot delete it
        raise HttpError(404, "No such run")
    run.delete()
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
    filters = form.filters()
    qs = decision_list(run=run, **filters, **paging).values(*DECISION_FIELDS)
    rows = first_rows(qs, run=run, n=limit + 1, filters=filters, after=paging.get("after"))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next": rows[-1]["seq"] if more else None}


# -- cells (issue 4: the heatmap's data, from the same function as /runs/<id>/cells/) -------------


