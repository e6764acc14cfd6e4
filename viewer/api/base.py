"""The JSON API (SPEC.md, "API"): a ninja Router over the same selectors and filter form as the pages.

Auth is the browser session (CSRF enforced on state-changing requests) or
`Authorization: Bearer <token>` (viewer.models.ApiToken). Errors are {"detail": message}.
Filters are parsed by DecisionFilterForm from request.GET: the query schemas only document the
parameter names for OpenAPI; they are not a second grammar.

This module holds the router, auth and what every endpoint shares; each face's endpoints live in
a module of their own beside it (runs, cells, replay, diff), registered on import.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from django.utils import timezone
from ninja import Field, Router, Schema
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from .. import filters as F
from ..db import best_effort
from ..filters import DecisionFilterForm
from ..models import ApiToken, Run, hash_token
from ..selectors import get_run_or_404


class BearerToken(HttpBearer):
    """`Authorization: Bearer <token>`: the token's sha256 is looked up; the token itself is never stored."""

    def authenticate(self, request, token):
        if not token or len(token) > 200:
            return None
        found = ApiToken.objects.select_related("user").filter(token_hash=hash_token(token)).first()
        if found is None or not found.user.is_active:
            return None
        now = timezone.now()
        # Record use at most once a minute, so a busy script does not write on every request; and
        # best-effort, so a request during an import is not failed by bookkeeping (issue 14.6).
        if found.last_used is None or now - found.last_used > dt.timedelta(minutes=1):
            best_effort(lambda: ApiToken.objects.filter(pk=found.pk).update(last_used=now), "token last_used")
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
    model: str | None = Field(None, description="exact: the model of an LLM call (values.model)")
    agent_type: str | None = Field(None, description="exact: values.agent_type (dm, player, enemy)")
    temperature: str | None = Field(None, description="a number: values.temperature equals it")
    temperature_min: str | None = Field(None, description="a number: values.temperature at least it")
    temperature_max: str | None = Field(None, description="a number: values.temperature at most it")
    correlation_id: str | None = Field(None, description="exact: values.correlation_id (a v1.2 round)")
    label: list[str] = Field([], description="repeatable; decisions with a note carrying any of these labels")
    noted: str | None = Field(None, description="1: only the decisions with a note")


class DecisionQuery(FilterQuery):
    after: str | None = Field(None, description="a seq: decisions after it (keyset cursor)")
    limit: str | None = Field(
        None, description=f"at most this many (default {DEFAULT_LIMIT}, at most {MAX_API_LIMIT})"
    )


# The schemas document the form's own parameter names, no more and no fewer.
_DOCUMENTED = set(DecisionQuery.model_fields)
assert _DOCUMENTED == set(F.ALL_PARAMS), _DOCUMENTED ^ set(F.ALL_PARAMS)

def _run(request, run_id: int) -> Run:
    if not 0 <= run_id <= MAX_ID:
        raise Http404("No such run")
    return get_run_or_404(request.auth, run_id)


def _filter_form(request, *, allow_paging: bool) -> DecisionFilterForm:
    """The form over the whole querystring: `after` and `limit` that do not parse are a 400 even
    where the answer does not page (`allow_paging=False`: callers then take only `form.filters()`)."""
    form = DecisionFilterForm(request.GET)
    if not form.is_valid():
        raise HttpError(400, form.error_text())
    return form

