"""The replay endpoints."""
from __future__ import annotations

from typing import Any

from ninja import Field, Query, Schema, Status
from ninja.errors import HttpError

from .. import replay_store
from ..forms import StepForm
from .base import ERRORS, FilterQuery, _filter_form, _run, router


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
    where = StepForm(request.GET)
    if not where.is_valid():
        raise HttpError(400, where.error_text())
    at = where.cleaned_data
    found = replay_store.replay_state(run, form.filters(), at["step"], at["t"])
    if found is None:
        index = replay_store.get_index(run, form.filters())
        detail = f"the replay is being prepared ({index.status})"
        return Status(202, {"detail": detail, "built_steps": index.built_steps})
    return {"run": run.pk, **found}
