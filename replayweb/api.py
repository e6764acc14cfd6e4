"""The JSON API: one NinjaAPI; the endpoints live in viewer/api.py as a Router."""
import json
import math

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from ninja import NinjaAPI
from ninja.errors import ValidationError
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from viewer.api import AUTH, router


def _finite(value):
    """NaN and infinities (Python log writers emit them) become null: strict JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class StrictJSONRenderer(JSONRenderer):
    def render(self, request, data, *, response_status):
        try:
            return json.dumps(data, cls=NinjaJSONEncoder, allow_nan=False)
        except ValueError:
            return json.dumps(_finite(data), cls=NinjaJSONEncoder, allow_nan=False)


class ReplayWebAPI(NinjaAPI):
    def _get_urls(self):
        # LoginRequiredMiddleware would redirect API clients to the login page: the API does its own auth
        # (a 401 in JSON) and the docs and schema are public.
        return [_exempt(pattern) for pattern in super()._get_urls()]


def _exempt(pattern):
    login_not_required(pattern.callback)
    return pattern


DESCRIPTION = """Runs and their decisions, filtered with the same parameters as the run page.

Authenticate with your browser session (this page sends its CSRF token) or with
`Authorization: Bearer <token>` (make one on /tokens/ or with `manage.py create_token USER`).
Errors are `{"detail": message}`: 400 names the bad parameter, 401 without credentials, 404 for a run
that is not yours. Lists page with a keyset cursor: pass `next` back as `after`."""

# auth here as well as on the router: it tells the docs page to send the CSRF token with "Try it out".
api = ReplayWebAPI(
    title="ReplayWeb API", version="1", description=DESCRIPTION, urls_namespace="api", auth=AUTH,
    renderer=StrictJSONRenderer(),
)


@api.exception_handler(ValidationError)
def bad_parameters(request, exc):
    """400 naming each bad parameter (ninja's default is a 422 with pydantic's error list)."""
    parts = []
    for error in exc.errors:
        where = [str(p) for p in error.get("loc", ())[1:]] or [str(error.get("loc", ("request",))[0])]
        parts.append(f"{'.'.join(where)}: {error.get('msg', 'invalid')}")
    return api.create_response(request, {"detail": "; ".join(parts) or "bad request"}, status=400)


@api.exception_handler(SuspiciousOperation)
def refused_request(request, exc):
    """Too many files or fields, or a body over Django's limits: a client error, in JSON."""
    status = 413 if isinstance(exc, RequestDataTooBig) else 400
    return api.create_response(request, {"detail": str(exc) or "request refused"}, status=status)


api.add_router("/", router)
