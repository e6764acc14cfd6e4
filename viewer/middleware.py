"""HTTP plumbing around every view: security and cache headers, request-body limits, inert bidi text.

- SecurityHeadersMiddleware: the CSP, and `Cache-Control: private` on every answer (they are one
  user's runs); API answers also vary on `Authorization` (a token is a different user).
- RequestBodyLimitMiddleware and LimitedUploadHandler: a body is refused before anything reads it
  when it is bigger than REPLAYWEB_MAX_REQUEST_BYTES or when an anonymous client sends files; an
  uploaded file stops being written to disk at REPLAYWEB_MAX_UPLOAD_BYTES.
- LinkOrLoginRequiredMiddleware: Django's LoginRequiredMiddleware, with one way in without an
  account: a live public link held in the session opens its run's read-only faces (GET), no more.
- InertBidiMiddleware: right-to-left overrides and bidi isolates from logs are shown as their code
  points (`<U+202E>`) in every HTML page, fragment and HTML export, in the JSON they embed and in
  the JSON they fetch; never in the API.
"""
from __future__ import annotations

import gzip
import io
import json
import re

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.html import escape

from .text import BIDI, inert

API_PREFIX = "/api/"
# What a client that is not logged in may send: a login form is well under a kilobyte.
ANONYMOUS_BODY_BYTES = 64 * 1024

# Only our own static scripts run: no inline script, no eval. Plotly needs inline styles.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.csp = getattr(settings, "REPLAYWEB_CSP", CSP)

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.csp)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        # Pages and API answers show one user's runs: no shared cache may keep them.
        patch_cache_control(response, private=True)
        if request.path.startswith(API_PREFIX):
            patch_vary_headers(response, ("Authorization",))
        return response


# -- public links -----------------------------------------------------------------------------------


class LinkOrLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Every view needs a login (unless marked login_not_required), except for someone holding a
    public link: `/s/<token>/` puts the link's id in their session (viewer/views/share.py), and a GET
    of a face of that run the link opens (access.link_opens) is let through as access.LinkVisitor,
    whom `visible_runs` shows that run alone. The link's row is read again on every request, so a
    revoke or an expiry closes it at once: that run's faces then say the link is gone (410).
    Anything else (another run, the runs list, the API, any POST) is as for anyone not logged in."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.user.is_authenticated or not getattr(view_func, "login_required", True):
            return None
        from . import access, shares
        from .models import ShareLink

        held = request.session.get(shares.GRANTS) or []
        run_id = view_kwargs.get("run_id")
        if not held or not isinstance(run_id, int):
            return super().process_view(request, view_func, view_args, view_kwargs)
        links = list(ShareLink.objects.filter(pk__in=held, run_id=run_id))
        live = [link for link in links if shares.link_state(link) == shares.ACTIVE]
        url_name = request.resolver_match.url_name if request.resolver_match else None
        for link in live:
            if access.link_opens(link, request.method, url_name, view_kwargs):
                request.user = access.LinkVisitor(link)
                return None
        if links and not live:  # every link this visitor had to the run is now closed
            request.session[shares.GRANTS] = [pk for pk in held if pk not in {link.pk for link in links}]
            from .views.share import gone_page

            return gone_page(request, links[0])
        return super().process_view(request, view_func, view_args, view_kwargs)


# -- request bodies -------------------------------------------------------------------------------


class RequestBodyLimitMiddleware:
    """Refuses a body before anything reads it (it sits before CsrfViewMiddleware, which reads a
    form body to find its token): one bigger than REPLAYWEB_MAX_REQUEST_BYTES (a 413), and more than
    a login form's worth from a client that is not logged in (to the login page for pages, a 401
    for the API; an API client with an `Authorization` header is let through: ninja checks its
    token before it reads the body)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.refusal(request) or self.get_response(request)

    def refusal(self, request) -> HttpResponse | None:
        if request.method not in ("POST", "PUT", "PATCH"):
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.REPLAYWEB_MAX_REQUEST_BYTES
        api = request.path.startswith(API_PREFIX)
        if length > limit:
            message = (f"The request is {length:,} bytes, over the {limit:,}-byte limit "
                       "(REPLAYWEB_MAX_REQUEST_BYTES): nothing was read. "
                       "Send fewer or smaller files at a time.")
            return _refuse(message, 413, api)
        if length <= ANONYMOUS_BODY_BYTES or request.user.is_authenticated:
            return None
        if api:
            if "HTTP_AUTHORIZATION" in request.META:
                return None  # the token is checked before ninja reads the body
            return _refuse("Log in or send Authorization: Bearer <token> to upload.", 401, api)
        return redirect_to_login(request.get_full_path())


def _refuse(message: str, status: int, api: bool) -> HttpResponse:
    if api:
        body = json.dumps({"detail": message})
        response = HttpResponse(body, status=status, content_type="application/json")
    else:
        response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["Connection"] = "close"  # the unread body is not worth keeping the connection for
    return response


class OversizedUpload(UploadedFile):
    """Stands in for a file that went over REPLAYWEB_MAX_UPLOAD_BYTES: its name and how big it was,
    none of its content. Ingest refuses it with a result line naming the file and the limit."""

    oversized = True

    def __init__(self, name, content_type, size, charset):
        super().__init__(io.BytesIO(), name, content_type, size, charset)


class LimitedUploadHandler(FileUploadHandler):
    """First of FILE_UPLOAD_HANDLERS: passes each file's chunks on to the memory or temporary-file
    handler until the file reaches REPLAYWEB_MAX_UPLOAD_BYTES, then closes (deletes) what they hold
    and drops the rest as it streams by; the other files of the request are unaffected."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.oversized = False

    def receive_data_chunk(self, raw_data, start):
        if self.oversized:
            return None
        if start + len(raw_data) <= settings.REPLAYWEB_MAX_UPLOAD_BYTES:
            return raw_data
        self.oversized = True
        for handler in getattr(self.request, "upload_handlers", ()):
            if handler is not self and hasattr(handler, "file"):
                handler.file.close()  # a TemporaryUploadedFile deletes itself on close
        return None

    def file_complete(self, file_size):
        if not self.oversized:
            return None  # the next handler's file
        return OversizedUpload(self.file_name, self.content_type, file_size, self.charset)


# -- bidi controls ----------------------------------------------------------------------------------


# As UTF-8 bytes, raw anywhere in the page -> `&lt;U+202E&gt;` (text and attributes; entities are
# decoded there). In JSON (our <script type=application/json> blocks and the JSON pages fetch), a
# control, raw or escaped, becomes `<U+202E>` in a string of text and `&lt;U+202E&gt;` in a string
# that holds HTML (a replay state, a chart label plotly renders as HTML).
_HTML = {ch.encode(): escape(inert(ch)).encode() for ch in map(chr, BIDI)}
_RAW = re.compile(b"|".join(re.escape(k) for k in _HTML))
_ESCAPED = re.compile(rb"\\u(" + b"|".join(f"{c:04x}".encode() for c in BIDI) + rb")", re.IGNORECASE)
_CONTROL = re.compile("[" + "".join(map(chr, BIDI)) + "]")
_SCRIPT = re.compile(rb"(<script\b[^>]*>)(.*?)(</script\s*>)", re.IGNORECASE | re.DOTALL)
_FIRST_BYTES = tuple({k[:1] for k in _HTML})  # a quick test before any regex work
# As json_script writes them: no "</script>" or "<!--" can appear inside a script element.
_SCRIPT_SAFE = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def _script(match: re.Match) -> bytes:
    return match.group(1) + inert_json(match.group(2)) + match.group(3)


def inert_json(content: bytes) -> bytes:
    """A JSON document with every bidi control, raw or escaped, shown as its code point (text.inert),
    in a string of HTML as an escaped one. Unchanged (the same bytes) when it holds none."""
    if not (_ESCAPED.search(content) or (any(b in content for b in _FIRST_BYTES) and _RAW.search(content))):
        return content
    try:
        value = json.loads(content)
    except ValueError:  # not JSON after all: the controls go, in the plain notation
        return _CONTROL.sub(lambda m: inert(m.group()), content.decode("utf-8", "replace")).encode()
    changed = [False]
    value = _inert_strings(value, changed)
    return json.dumps(value).translate(_SCRIPT_SAFE).encode() if changed[0] else content


def _inert_strings(value, changed: list):
    if isinstance(value, str):
        if not _CONTROL.search(value):
            return value
        changed[0] = True
        if "<" in value and ">" in value:  # HTML (a rendered state, a plotly label): as on a page
            return _CONTROL.sub(lambda m: escape(inert(m.group())), value)
        return inert(value)
    if isinstance(value, dict):
        return {_inert_strings(k, changed): _inert_strings(v, changed) for k, v in value.items()}
    if isinstance(value, list):
        return [_inert_strings(v, changed) for v in value]
    return value


def inert_html(content: bytes) -> bytes:
    """An HTML document (or fragment) with every bidi control shown as its code point."""
    if b"<script" in content or b"<SCRIPT" in content:
        content = _SCRIPT.sub(_script, content)
    if any(b in content for b in _FIRST_BYTES):
        content = _RAW.sub(lambda m: _HTML[m.group()], content)
    return content


class InertBidiMiddleware:
    """One escaping for every face a person reads (text.inert, issue 14.8): a right-to-left override
    in a log string would reverse the text around it. That is every HTML page, fragment and export,
    and the JSON our pages fetch (the replay player's frames). The API and downloads (an attachment:
    a decision's JSON as written) give the data back exactly."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        ctype = response.get("Content-Type", "")
        if ctype.startswith("text/html"):
            if not response.streaming:
                _replace(response, _decoded(response, inert_html))
            elif not getattr(response, "is_async", False):  # (an async iterator would need its own wrapper)
                # Each chunk is whole characters (an encoded string) and our streamed HTML (the audit
                # export) has no script, so chunks are treated one by one.
                response.streaming_content = map(inert_html, response.streaming_content)
        elif ctype.startswith("application/json") and _feeds_a_page(request, response):
            _replace(response, _decoded(response, inert_json))
        return response


def _decoded(response, make_inert) -> bytes:
    """`make_inert` applied to the body as the browser will read it: a gzipped body (the replay's
    frames) is decompressed, made inert and compressed again, never edited as compressed bytes
    (where a bidi control's bytes can appear by chance and the edit breaks the stream)."""
    encoding = response.get("Content-Encoding", "")
    if not encoding:
        return make_inert(response.content)
    if encoding != "gzip":
        return response.content  # an encoding we do not read is left as it is
    plain = gzip.decompress(response.content)
    inert = make_inert(plain)
    return response.content if inert == plain else gzip.compress(inert)


def _feeds_a_page(request, response) -> bool:
    """JSON a page of ours fetches and shows, rather than the API's data or a download."""
    return not (
        request.path.startswith(API_PREFIX)
        or response.streaming
        or response.get("Content-Disposition", "").startswith("attachment")
    )


def _replace(response, content: bytes) -> None:
    if content != response.content:
        response.content = content
        if response.has_header("Content-Length"):
            response["Content-Length"] = str(len(content))
