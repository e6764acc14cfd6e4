"""The one way a view picks between a page and one of its fragments (STYLE.md 5 and 15).

An htmx request names the part it wants by its target's id (HX-Target); a whole-page request
(no htmx, or a history restore) gets the page. Views using `fragment` are decorated with
`@vary_on_fragment`, so a cache never answers one part's request with another part or the page.
"""
from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.vary import vary_on_headers

vary_on_fragment = vary_on_headers("HX-Request", "HX-Target")


def wants_fragment(request) -> bool:
    """An htmx request that swaps part of a page (not a whole-page load or a history restore)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx and not htmx.history_restore_request)


def target(request) -> str | None:
    """The id of the element an htmx request will swap, or None for a whole-page request."""
    return request.htmx.target if wants_fragment(request) else None


def fragment(request, parts: dict[str, str]) -> str | None:
    """The name in `parts` (target id -> template#partial) that this request asks for, or None."""
    name = target(request)
    return name if name in parts else None


def bad_request(message: str, status: int = 400) -> HttpResponse:
    """A 400 (or the status given: 413 for work over a bound) for a fragment, an export or a download:
    plain text saying what to change. htmx shows it in the page's error line (static/js/app.js)."""
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
