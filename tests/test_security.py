"""Security suite: hostile log strings stay inert everywhere, login and CSRF everywhere, ownership
(another user's run is a 404 on every URL that names it), security headers, and the import limits.

Every URL pattern of the project must appear in ROUTES below: a new route fails
test_every_url_pattern_is_covered_by_the_security_suite until it is added, so it is then
crawled, checked for login, CSRF and ownership like the others.
"""

import csv
import io
import json
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import pytest
from django.test import Client
from django.urls import Resolver404, resolve

from viewer import jobs
from viewer.ingest import Source, run_ingest
from viewer.models import ApiToken, Decision, Run
from viewer.text import BIDI
from helpers import strings_in, url_names

HOSTILE = (
    "hostile/xss_session_replay.json",
    "hostile/xss_session.jsonl",
    "hostile/deep_and_huge_session_replay.json",
)
REAL = (
    "dynoai/real_sample/session_replay.json",
    "session/combat_session_sample.jsonl",
    "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log",
)
# The hostile samples' attacks, as they would appear in a body had they not been escaped.
NEEDLES = (
    "<script>alert",
    "<img src=x",
    "<b>BOLD_ACTION",
    "<i>key",
    "<svg onload",
    "</textarea><svg",
    "<script>x",
    "<img src=q",
)
# Attacks sent in the query string (reflected into forms, links, error messages).
PAYLOADS = ('"><script>x</script>', "<img src=q onerror=alert(2)>", "'><svg onload=alert(3)>")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BIDI_CHARS = tuple(map(chr, BIDI))
EXPORT_FORMATS = ("csv", "html", "txt", "json", "jsonl")
HX = {"HX-Request": "true"}
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


# -- what every answer must satisfy --------------------------------------------------------------


class Inspector(HTMLParser):
    """Collects what makes HTML unsafe: inline scripts, event-handler attributes, script URLs..."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []
        self.blobs: dict[str, str] = {}
        self.links: list[tuple[str, str | None]] = []  # (url, HX-Target id or None)
        self._script: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>: an inline event handler")
            if name.startswith(("hx-on", "data-hx-on")):
                self.problems.append(f"<{tag} {name}>: hx-on needs eval")
            if (
                name in ("href", "src", "action", "formaction", "hx-get", "hx-post")
                and value
                and re.sub(r"\s", "", value)
                .lower()
                .startswith(("javascript:", "vbscript:", "data:text/html"))
            ):
                self.problems.append(f"<{tag} {name}={value[:60]!r}>: a script URL")
        if tag == "script":
            kind = (a.get("type") or "").lower()
            if a.get("src"):
                if not a["src"].startswith("/static/"):
                    self.problems.append(f"<script src={a['src']!r}>: not one of our static files")
            elif kind != "application/json":
                self.problems.append("an inline <script>")
            self._script = a
        if tag in ("iframe", "frame", "object", "embed", "applet", "base"):
            self.problems.append(f"<{tag}>")
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "refresh":
            self.problems.append("<meta http-equiv=refresh>")
        for name in ("href", "hx-get"):
            url = a.get(name)
            if url and url.startswith("/") and not url.startswith("//"):
                target = a.get("hx-target") or ""
                self.links.append((url, target[1:] if name == "hx-get" and target.startswith("#") else None))

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            if self._script.get("src") and data.strip():
                self.problems.append("a <script src> with inline content")
            elif self._script.get("id"):
                self.blobs[self._script["id"]] = data
        else:
            self.text.append(data)


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def csp_problems(policy: str) -> list[str]:
    directives = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    problems = []
    scripts = directives.get("script-src", directives.get("default-src"))
    if scripts is None:
        problems.append("CSP without script-src or default-src")
    elif set(scripts) - {"'self'", "'none'"}:
        problems.append(f"CSP script-src admits more than our own files: {scripts}")
    if directives.get("object-src", directives.get("default-src")) not in (["'none'"],):
        problems.append("CSP object-src is not 'none'")
    if "base-uri" not in directives and directives.get("default-src") != ["'none'"]:
        problems.append("CSP without base-uri")
    return problems


def figures(blobs: dict[str, str]) -> dict[str, dict]:
    """The plotly figures embedded in a page (json_script blobs with a `data` list of traces)."""
    found = {}
    for name, text in blobs.items():
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("data"), list):
            found[name] = value
    return found



def answer_problems(response, url: str) -> tuple[list[str], Inspector | None]:
    """What is wrong with one answer, and the parsed page (for its links) when it is HTML."""
    problems = []
    status = response.status_code
    if status >= 500:
        problems.append(f"HTTP {status}")
    if response.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if response.get("Referrer-Policy") != "same-origin":
        problems.append(f"Referrer-Policy is {response.get('Referrer-Policy')!r}")
    body = body_of(response)
    ctype = response.get("Content-Type", "").split(";")[0].strip()
    page = None
    if ctype == "text/html":
        text = body.decode()
        policy = response.get("Content-Security-Policy")
        problems += csp_problems(policy) if policy else ["no Content-Security-Policy"]
        if response.get("X-Frame-Options") != "DENY" and "frame-ancestors 'none'" not in (policy or ""):
            problems.append("framing is not denied")
        problems += [f"unescaped {n!r}" for n in NEEDLES if n in text]
        problems += [f"raw bidi control U+{ord(c):04X}" for c in BIDI_CHARS if c in text]
        page = Inspector()
        page.feed(text)
        page.close()
        problems += page.problems
        for name, blob in page.blobs.items():
            try:
                strings = list(strings_in(json.loads(blob)))
            except ValueError:
                continue
            problems += [f"JSON {name}: bidi control U+{ord(c):04X}" for c in BIDI_CHARS if any(c in t for t in strings)]
        for name, figure in figures(page.blobs).items():
            problems += [
                f"figure {name}: hover/label text holds markup {n!r}"
                for n in NEEDLES
                if any(n in s for s in strings_in(figure))
            ]
    elif ctype == "application/json":
        if body:
            value = json.loads(body)
            page_fed = not url.startswith("/api/") and "attachment" not in response.get("Content-Disposition", "")
            if page_fed:  # the replay player's frames: shown on a page, so inert too (the API is not)
                strings = list(strings_in(value))
                problems += [f"bidi control U+{ord(c):04X}" for c in BIDI_CHARS if any(c in t for t in strings)]
    elif ctype == "application/x-ndjson":
        for line in body.decode().splitlines():
            json.loads(
                line.rpartition("\t")[0] if line.endswith(tuple("0123456789")) and "\t" in line else line
            )
    elif ctype == "text/csv":
        for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))):
            for cell in row:
                if cell.startswith(FORMULA_START) and not _is_number(cell):
                    problems.append(f"CSV cell {cell[:40]!r} would be read as a formula")
    elif ctype == "application/pdf":  # the audit trail printed (viewer/pdf.py): a download, a real PDF
        if not body.startswith(b"%PDF-") or "attachment" not in response.get("Content-Disposition", ""):
            problems.append("a PDF that is not a PDF attachment")
    elif ctype != "text/plain" and status not in (204, 301, 302):
        problems.append(f"unexpected Content-Type {ctype!r}")
    return [f"{url}: {p}" for p in problems], page


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- the project's URLs ------------------------------------------------------------------------


@dataclass
class Req:
    method: str
    url: str
    headers: dict = field(default_factory=dict)
    data: dict | None = None
    names_run: bool = False  # the URL names a run: another user gets a 404
    public: bool = False  # no login needed


def routes(r) -> dict[str, list[Req]]:
    """Concrete requests for every named URL pattern.

    `r` holds runs (dyn, dyn2, sess, sess2, study) and a token."""
    d, d2, s, s2, st = r.dyn.pk, r.dyn2.pk, r.sess.pk, r.sess2.pk, r.study.pk
    run_pages = []
    for run in (d, s, st):
        run_pages += [
            Req("GET", f"/runs/{run}/", names_run=True),
            *[
                Req("GET", f"/runs/{run}/", {**HX, "HX-Target": t}, names_run=True)
                for t in ("run-view", "load-more", "facets", "stats", "chart")
            ],
            Req("GET", f"/runs/{run}/?after=3&limit=5", {**HX, "HX-Target": "load-more"}, names_run=True),
        ]
    return {
        "login": [Req("GET", "/login/", public=True)],
        "favicon.ico": [Req("GET", "/favicon.ico", public=True)],
        "logout": [Req("POST", "/logout/")],
        "logout-everywhere": [Req("POST", "/logout/everywhere/")],
        "openapi-json": [Req("GET", "/api/openapi.json", public=True)],
        "openapi-view": [Req("GET", "/api/docs", public=True)],
        "api-root": [Req("GET", "/api/", public=True)],
        "list_runs": [Req("GET", "/api/runs")],
        "upload_runs": [Req("POST", "/api/runs", data={"file": "upload"})],
        "get_run": [Req("GET", f"/api/runs/{run}", names_run=True) for run in (d, s, st)],
        "delete_run": [Req("DELETE", f"/api/runs/{d}", names_run=True)],
        "run_summary": [Req("GET", f"/api/runs/{run}/summary", names_run=True) for run in (d, s, st)],
        "run_tokens": [Req("GET", f"/api/runs/{run}/tokens", names_run=True) for run in (d, s, st)],
        "list_decisions": [
            Req("GET", f"/api/runs/{run}/decisions?limit=50", names_run=True) for run in (d, s, st)
        ],
        "run_cells": [Req("GET", f"/api/runs/{run}/cells", names_run=True) for run in (d, s)],
        "run_replay": [Req("GET", f"/api/runs/{run}/replay?step=5", names_run=True) for run in (d, s, st)],
        "diff_runs": [
            Req("GET", f"/api/diff?a={d}&b={d2}", names_run=True),
            Req("GET", f"/api/diff?a={s}&b={s2}", names_run=True),
        ],
        "runs": [Req("GET", "/")],
        "diff": [
            Req("GET", f"/diff/?a={d}&b={d2}", names_run=True),
            Req("GET", f"/diff/?a={s}&b={s2}", names_run=True),
            Req("GET", f"/diff/?a={d}&b={d2}&rows=all", HX, names_run=True),
        ],
        "diff-export": [
            Req("GET", f"/diff/export.{fmt}?a={a}&b={b}", names_run=True)
            for fmt in ("csv", "html")
            for a, b in ((d, d2), (s, s2))
        ],
        "upload": [Req("POST", "/upload/", data={"files": "upload"})],
        "run": run_pages,
        "decision": [
            Req("GET", f"/runs/{run}/decisions/{seq}/", h, names_run=True)
            for run in (d, s, st)
            for seq in (0, 1)
            for h in ({}, HX)
        ]
        + [Req("GET", f"/runs/{d}/decisions/0/?format=json", names_run=True)],
        "run-delete": [Req("POST", f"/runs/{d}/delete/", names_run=True)],
        "runs-bulk": [Req("GET", f"/runs/bulk/?do=delete&run={d}", names_run=True),
                      Req("POST", "/runs/bulk/", data={"do": "tag", "tag": "t", "run": str(d)}, names_run=True)],
        "run-rename": [Req("POST", f"/runs/{d}/rename/", data={"name": "renamed"}, names_run=True)],
        "run-output": [Req("GET", f"/runs/{run}/outputs/session_replay.json", names_run=True) for run in (d, d2)],
        "list_outputs": [Req("GET", f"/api/runs/{run}/outputs", names_run=True) for run in (d, s, st)],
        "rename_run": [Req("PATCH", f"/api/runs/{d}", names_run=True)],
        "run-export": [
            Req("GET", f"/runs/{run}/export.{fmt}", names_run=True)
            for run in (d, s, st)
            for fmt in EXPORT_FORMATS
        ],
        "run-export-otlp": [Req("GET", f"/runs/{run}/export.otlp.jsonl", names_run=True) for run in (d, s, st)],
        "run-cells": [
            Req("GET", f"/runs/{run}/cells/", h, names_run=True)
            for run in (d, s)
            for h in ({}, {**HX, "HX-Target": "cells-panel"})
        ],
        "run-replay": [
            Req("GET", f"/runs/{run}/replay/?step=5", h, names_run=True)
            for run in (d, s, st)
            for h in ({}, HX)
        ],
        "run-replay-frames": [
            Req("GET", f"/runs/{run}/replay/frames/?start=0&count=20", names_run=True) for run in (d, s, st)
        ],
        "run-replay-document": [Req("GET", f"/runs/{st}/replay/document.txt?step=5&doc=doc1", names_run=True)],
        "run-replay-writing": [Req("GET", f"/runs/{run}/replay/writing.csv?step=5", names_run=True) for run in (st, d)],
        "run-cell-story": [Req("GET", f"/runs/{d}/cells/story/?rpm=3500&kpa=65", h, names_run=True)
                           for h in ({}, {**HX, "HX-Target": "cell-story"})],
        "cell_story": [Req("GET", f"/api/runs/{run}/cells/story?rpm=3500&kpa=65", names_run=True) for run in (d, d2)],
        "run-tables": [Req("GET", f"/runs/{run}/tables/", names_run=True) for run in (d, d2)],
        "compare": [Req("GET", f"/compare/?run={d}&run={d2}", names_run=True)],
        "compare_runs": [Req("GET", f"/api/compare?run={d}&run={d2}", names_run=True)],
        "run-llm": [Req("GET", f"/runs/{run}/llm/", h, names_run=True)
                    for run in (s, s2) for h in ({}, {**HX, "HX-Target": "llm-panel"})],
        "run-replay-kit": [Req("GET", f"/runs/{run}/replay-kit.json", names_run=True) for run in (s, s2)],
        "run-state": [Req("GET", f"/runs/{run}/state/", names_run=True) for run in (s, s2)],
        "run-trace": [Req("GET", f"/runs/{run}/trace/{q}", h, names_run=True)
                      for run in (s, s2) for q in ("", "?node=1", "?node=x")
                      for h in ({}, {**HX, "HX-Target": "trace-panel"})],
        "tokens": [Req("GET", "/tokens/"), Req("POST", "/tokens/", data={"name": "t"})],
        "token-revoke": [Req("POST", f"/tokens/{r.token.pk}/revoke/")],
        "jobs": [Req("GET", "/jobs/"), Req("GET", "/jobs/?since=2026-01-01T00:00:00", HX)],
        "job-cancel": [Req("POST", f"/jobs/{r.job.pk}/cancel/", names_run=True)],
        "get_job": [Req("GET", f"/api/jobs/{r.job.pk}", names_run=True)],
        "cancel_job": [Req("DELETE", f"/api/jobs/{r.job.pk}", names_run=True)],
        "run-share": [Req("GET", f"/runs/{d}/share/", names_run=True),
                      Req("POST", f"/runs/{d}/share/", data={"user": "mallory"}, names_run=True)],
        "run-unshare": [Req("POST", f"/runs/{d}/share/remove/", data={"user": "mallory"}, names_run=True)],
        "run-link-create": [Req("POST", f"/runs/{d}/share/links/", data={"scope": "run", "days": "1"}, names_run=True)],
        "run-link-revoke": [Req("POST", f"/runs/{d}/share/links/1/revoke/", names_run=True)],
        "run-view-save": [Req("POST", f"/runs/{d}/views/", data={"name": "v", "url": f"/runs/{d}/"}, names_run=True)],
        "run-view-delete": [Req("POST", f"/runs/{d}/views/1/delete/", names_run=True)],
        "share-link": [Req("GET", "/s/1:forged/", public=True)],
        "list_shares": [Req("GET", f"/api/runs/{d}/shares", names_run=True)],
        # A form body is not JSON: a 400 for any run, before the run is read (test_access_matrix sends JSON).
        "add_share": [Req("POST", f"/api/runs/{d}/shares")],
        "remove_share": [Req("DELETE", f"/api/runs/{d}/shares/mallory", names_run=True)],
        "remove_group_share": [Req("DELETE", f"/api/runs/{d}/shares/groups/tuners", names_run=True)],
        "run-notes": [Req("GET", f"/runs/{d}/notes/?seq=1", names_run=True),
                      Req("POST", f"/runs/{d}/notes/", data={"seq": "1", "text": "noted"}, names_run=True)],
        # No note exists here: a 404 for everyone, still behind login and CSRF (test_api_notes tests who may).
        "note-edit": [Req("POST", "/notes/1/edit/", data={"text": "edited"})],
        "note-delete": [Req("POST", "/notes/1/delete/")],
        "list_notes": [Req("GET", f"/api/runs/{run}/notes", names_run=True) for run in (d, s, st)],
        "add_note": [Req("POST", f"/api/runs/{d}/notes")],  # a form body is not JSON: a 400 before the run is read
        "edit_note": [Req("PATCH", "/api/notes/1")],
        "delete_note": [Req("DELETE", "/api/notes/1")],
    }


def send(client, req: Req, **extra):
    headers = {**req.headers, **extra.pop("headers", {})}
    if req.method == "GET":
        return client.get(req.url, headers=headers, **extra)
    if req.method == "POST":
        return client.post(req.url, _post_data(req), headers=headers, **extra)
    return client.generic(req.method, req.url, headers=headers, **extra)


def _post_data(req: Req) -> dict:
    data = dict(req.data or {})
    for key, value in data.items():
        if value == "upload":  # a real (small) log, so an accepted request would import it
            data[key] = io.BytesIO(b'{"decisions": [{"action": "CSRF_PROBE"}]}')
            data[key].name = "probe_session_replay.json"
    return data


def import_all(owner, samples_dir, relpaths) -> list:
    sources = [Source(name=p.rsplit("/", 1)[-1], path=samples_dir / p) for p in relpaths]
    return run_ingest(owner=owner, sources=sources)


@pytest.fixture
def runs(user, samples_dir, import_sample):
    """One run of each kind for `user`, a second of the dynoai and session kinds (for diffs), a token."""
    return SimpleNamespace(
        dyn=import_sample(REAL[0]),
        dyn2=import_sample("dynoai/runs/large200k_s2_c7/session_replay.json"),
        sess=import_sample(REAL[1]),
        sess2=import_sample("session/session_debt_auction_ambush.jsonl"),
        study=import_sample(REAL[2]),
        token=ApiToken.issue(user, name="mine")[0],
        job=jobs.submit(user, [jobs.Upload(name="queued.jsonl", path=samples_dir / REAL[1])], enqueue=False)[0][0],
    )


@pytest.fixture
def hostile(user, samples_dir, import_sample):
    """The hostile samples (the 5,000-deep one imported or refused: both are fine), and partners for diffs."""
    results = {r.name: r for r in import_all(user, samples_dir, HOSTILE)}
    deep = results["deep_and_huge_session_replay.json"]
    assert deep.status == "imported" or "nested" in deep.message, deep.message
    by_name = {name: r.run for name, r in results.items() if r.run}
    return SimpleNamespace(
        dyn=by_name["xss_session_replay.json"],
        sess=by_name["xss_session.jsonl"],
        deep=by_name.get("deep_and_huge_session_replay.json"),
        real_dyn=import_sample(REAL[0]),
        real_sess=import_sample(REAL[1]),
    )


# -- coverage --------------------------------------------------------------------------------------


def test_every_url_pattern_is_covered_by_the_security_suite():
    fake = SimpleNamespace(
        **{
            k: SimpleNamespace(pk=i)
            for i, k in enumerate(("dyn", "dyn2", "sess", "sess2", "study", "token", "job"), start=1)
        }
    )
    covered = routes(fake)
    missing = url_names() - set(covered)
    assert not missing, f"add these URL names to ROUTES in tests/test_security.py: {sorted(missing)}"
    for name, reqs in covered.items():
        for req in reqs:
            path = urlsplit(req.url).path
            match = resolve(path)
            assert (match.url_name or match.route) in (name, *_SAME_PATH.get(name, ())), (name, req.url)


# GET and DELETE /api/runs/{id} share one path (so do GET and POST /api/runs): resolve() names the first.
_SAME_PATH = {"delete_run": ("get_run",), "rename_run": ("get_run",), "upload_runs": ("list_runs",),
              "cancel_job": ("get_job",), "add_share": ("list_shares",), "list_shares": ("add_share",),
              "add_note": ("list_notes",), "list_notes": ("add_note",), "edit_note": ("delete_note",),
              "delete_note": ("edit_note",)}


# -- hostile strings are inert ---------------------------------------------------------------------


def crawl(client, seeds: list[Req], *, own_runs: set[int], limit: int = 700, per_route: int = 30):
    """GET the seeds, then every same-site link and hx-get found on the HTML answers (for the given
    runs only), at most `per_route` per URL name and fragment target. Returns (problems, count by route)."""
    queue = deque((req.url, req.headers.get("HX-Target"), bool(req.headers)) for req in seeds)
    seen, per, problems = set(), Counter(), []
    while queue and len(seen) < limit:
        url, target, htmx = queue.popleft()
        if (url, target, htmx) in seen:
            continue
        path = urlsplit(url).path
        if path.startswith("/static/"):
            continue
        try:
            match = resolve(path)
        except Resolver404:
            problems.append(f"{url}: a link to nowhere")
            continue
        if match.url_name in ("logout", "login"):
            continue
        run_id = match.kwargs.get("run_id")
        if run_id is not None and int(run_id) not in own_runs:
            continue
        key = (match.url_name, target, htmx)
        if per[key] >= per_route:
            continue
        per[key] += 1
        seen.add((url, target, htmx))
        headers = {**HX, **({"HX-Target": target} if target else {})} if htmx else {}
        response = client.get(url, headers=headers)
        found, page = answer_problems(response, url + (f" [HX-Target {target}]" if htmx else ""))
        problems += found
        if page is not None and response.status_code == 200:
            for link, hx_target in page.links:
                queue.append((link, None, False))
                if hx_target:
                    queue.append((link, hx_target, True))
    return problems, per


@pytest.mark.django_db
def test_every_page_fragment_export_and_api_answer_shows_hostile_strings_as_inert_text(client_in, hostile, user,
                                                                                         samples_dir):
    h = hostile
    own = {r.pk for r in (h.dyn, h.sess, h.deep, h.real_dyn, h.real_sess) if r}
    job = jobs.submit(user, [jobs.Upload(name='"><img src=x onerror=alert(1)>\u202etxt.jsonl', path=samples_dir / REAL[1])],
                      enqueue=False)[0][0]  # a job's name is on the runs list and in the API
    fake = SimpleNamespace(
        dyn=h.dyn, dyn2=h.real_dyn, sess=h.sess, sess2=h.real_sess, study=h.sess, token=SimpleNamespace(pk=0), job=job
    )
    seeds = [req for reqs in routes(fake).values() for req in reqs if req.method == "GET"]
    seeds += [Req("GET", f"/runs/{h.dyn.pk}/decisions/{seq}/") for seq in range(11)]
    seeds += [Req("GET", f"/runs/{h.sess.pk}/decisions/{seq}/", HX) for seq in range(11)]
    seeds += [
        Req("GET", f"/diff/?a={h.real_dyn.pk}&b={h.dyn.pk}&rows=all"),
        Req("GET", f"/diff/export.csv?a={h.real_sess.pk}&b={h.sess.pk}&rows=all"),
        Req("GET", f"/api/runs/{h.sess.pk}/decisions?limit=100"),
        Req("GET", "/api/runs"),
    ]
    if h.deep:
        seeds += [
            Req("GET", f"/runs/{h.deep.pk}/"),
            Req("GET", f"/runs/{h.deep.pk}/decisions/0/"),
            Req("GET", f"/runs/{h.deep.pk}/decisions/1/"),
            Req("GET", f"/runs/{h.deep.pk}/export.csv"),
            Req("GET", f"/api/runs/{h.deep.pk}/decisions"),
        ]
    problems, per = crawl(client_in, seeds, own_runs=own)
    assert not problems, "\n".join(problems[:40])
    crawled = {name for name, _, _ in per}
    assert crawled >= {
        "runs",
        "run",
        "decision",
        "run-export",
        "run-cells",
        "run-replay",
        "run-replay-frames",
        "diff",
        "diff-export",
        "get_run",
        "list_decisions",
        "run_summary",
        "run_cells",
        "run_replay",
        "diff_runs",
    }, crawled


@pytest.mark.django_db
@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_query_parameters_come_back_as_text(client_in, hostile, payload):
    """Filter values are echoed in forms, links and error messages: as text, whether valid or not."""
    from viewer.filters import FILTER_PARAMS

    h = hostile
    query = urlencode([(name, payload) for name in FILTER_PARAMS] + [("a", payload), ("step", payload)])
    one_by_one = [urlencode({name: payload}) for name in FILTER_PARAMS]
    urls = []
    for qs in (query, *one_by_one):
        urls += [
            f"/runs/{h.dyn.pk}/?{qs}",
            f"/runs/{h.sess.pk}/cells/?{qs}",
            f"/runs/{h.sess.pk}/replay/?{qs}",
            f"/runs/{h.dyn.pk}/export.csv?{qs}",
            f"/api/runs/{h.dyn.pk}/decisions?{qs}",
            f"/diff/?a={h.dyn.pk}&b={h.real_dyn.pk}&{qs}",
        ]
    problems = []
    for url in urls:
        for headers in ({}, {**HX, "HX-Target": "run-view"}):
            response = client_in.get(url, headers=headers)
            problems += answer_problems(response, url)[0]
            assert response.status_code in (200, 400), (url, response.status_code)
    assert not problems, "\n".join(problems[:40])


@pytest.mark.django_db
def test_template_syntax_in_a_log_is_shown_not_evaluated(client_in, hostile):
    shown = []
    for seq in (8, 9):
        page = Inspector()
        page.feed(client_in.get(f"/runs/{hostile.dyn.pk}/decisions/{seq}/").content.decode())
        shown.append("".join(page.text))
    assert "{{ 7*7 }}" in shown[0]
    assert "{% now 'Y' %}" in shown[1]


@pytest.mark.django_db
def test_chart_hover_text_holds_the_hostile_strings_escaped(client_in, hostile):
    """Plotly renders hover text as HTML: the server escapes it, so the attack reads as text."""
    checked = 0
    for url in (f"/runs/{hostile.dyn.pk}/", f"/runs/{hostile.sess.pk}/", f"/runs/{hostile.dyn.pk}/cells/"):
        page = Inspector()
        page.feed(client_in.get(url).content.decode())
        for figure in figures(page.blobs).values():
            text = " ".join(strings_in(figure))
            assert not any(n in text for n in NEEDLES), url
            if "&lt;script&gt;" in text or "&lt;img" in text or "&lt;b&gt;BOLD_ACTION" in text:
                checked += 1
    assert checked >= 2, "the hostile strings never reached a chart: the check proved nothing"


@pytest.mark.django_db
def test_no_csv_export_cell_starts_a_formula(client_in, hostile):
    h = hostile
    for url in (
        f"/runs/{h.dyn.pk}/export.csv",
        f"/runs/{h.sess.pk}/export.csv",
        f"/diff/export.csv?a={h.real_dyn.pk}&b={h.dyn.pk}&rows=all",
        f"/diff/export.csv?a={h.real_sess.pk}&b={h.sess.pk}&rows=all",
    ):
        text = body_of(client_in.get(url)).decode("utf-8-sig")
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        bad = [c for c in cells if c.startswith(FORMULA_START) and not _is_number(c)]
        assert not bad, (url, bad[:5])
        assert any(c.startswith(("'=", "'+", "'@")) for c in cells), f"{url}: no neutralized formula to see"


@pytest.mark.django_db
def test_the_api_and_json_exports_give_hostile_strings_back_exactly_as_json(client_in, hostile, samples_dir):
    """Inert because they are JSON (and nosniff), and exact: nothing is stripped."""
    written = json.loads((samples_dir / HOSTILE[0]).read_text())["decisions"]
    response = client_in.get(f"/api/runs/{hostile.dyn.pk}/decisions?limit=100")
    assert (
        response["Content-Type"].startswith("application/json")
        and response["X-Content-Type-Options"] == "nosniff"
    )
    items = response.json()["items"]
    assert [i["reason"] for i in items] == [d["reason"] for d in written]
    exported = json.loads(body_of(client_in.get(f"/runs/{hostile.dyn.pk}/export.json")))
    assert json.dumps(exported).count("<script>alert") >= 2


# -- login, CSRF, ownership --------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_url_needs_a_login_except_the_login_page_and_the_api_docs(runs, samples_dir):
    anonymous = Client()
    problems = []
    for name, reqs in routes(runs).items():
        for req in reqs:
            response = send(anonymous, req)
            where = f"{name}: {req.method} {req.url}"
            if req.public:
                if response.status_code not in (200, 301, 302, 404):
                    problems.append(f"{where}: {response.status_code}")
            elif req.url.startswith("/api/"):
                if response.status_code != 401:
                    problems.append(f"{where}: {response.status_code}, not 401")
            elif response.status_code != 302 or not response["Location"].startswith("/login/"):
                problems.append(
                    f"{where}: {response.status_code} {response.get('Location')}, not a redirect to /login/"
                )
    assert not problems, "\n".join(problems)
    assert Run.objects.count() == 5 and not Decision.objects.filter(action="CSRF_PROBE").exists()


@pytest.mark.django_db
def test_the_api_docs_show_no_data(runs):
    """Public by design (replayweb/api.py): the schema, never a run."""
    for url in ("/api/docs", "/api/openapi.json"):
        text = Client().get(url).content.decode()
        assert runs.dyn.run_id not in text and runs.dyn.name not in text


@pytest.mark.django_db
def test_every_state_changing_request_without_a_csrf_token_is_refused(runs, user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    before = (Run.objects.count(), ApiToken.objects.count(), Decision.objects.count())
    problems = []
    for name, reqs in routes(runs).items():
        for req in reqs:
            for method in UNSAFE:
                response = send(client, Req(method, req.url, req.headers, req.data))
                if response.status_code not in (403, 405):
                    problems.append(f"{name}: {method} {req.url}: {response.status_code}")
    # Login CSRF too: a forged login form is refused.
    if (
        Client(enforce_csrf_checks=True).post("/login/", {"username": "alice", "password": "x"}).status_code
        != 403
    ):
        problems.append("POST /login/ without a token was not refused")
    assert not problems, "\n".join(problems)
    assert (Run.objects.count(), ApiToken.objects.count(), Decision.objects.count()) == before
    assert client.get("/").status_code == 200  # the refused logout did not log out


@pytest.mark.django_db
def test_with_the_csrf_token_the_same_requests_work(runs, user, samples_dir):
    """The refusals above are CSRF's, not something else's."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/")
    token = client.cookies["csrftoken"].value
    with open(samples_dir / "hostile/xss_session.jsonl", "rb") as f:
        assert client.post("/upload/", {"files": f}, headers={"X-CSRFToken": token}).status_code == 202
    assert client.delete(f"/api/runs/{runs.dyn.pk}", headers={"X-CSRFToken": token}).status_code == 204
    assert client.post(f"/runs/{runs.sess.pk}/delete/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert not Run.objects.filter(pk__in=[runs.dyn.pk, runs.sess.pk]).exists()


@pytest.mark.django_db
def test_a_bearer_token_needs_no_csrf_token_and_is_not_a_browser_session(runs, user):
    _, token = ApiToken.issue(user)
    client = Client(enforce_csrf_checks=True)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.delete(f"/api/runs/{runs.dyn.pk}", headers=auth).status_code == 204
    assert client.get("/", headers=auth).status_code == 302  # the token opens the API only
    assert (
        client.get(f"/api/runs/{runs.sess.pk}", headers={"Authorization": f"Bearer {token}x"}).status_code
        == 401
    )


@pytest.mark.django_db
def test_another_user_gets_a_404_on_every_url_that_names_a_run(runs, other_user, samples_dir, import_sample):
    theirs = SimpleNamespace(
        dyn=import_sample(REAL[0], owner=other_user), sess=import_sample(REAL[1], owner=other_user)
    )
    client = Client()
    client.force_login(other_user)
    problems, named = [], set()
    reqs = [(name, req) for name, rs in routes(runs).items() for req in rs if req.names_run]
    # A diff where only one side is foreign.
    for a, b in (
        (runs.dyn.pk, theirs.dyn.pk),
        (theirs.dyn.pk, runs.dyn.pk),
        (runs.sess.pk, theirs.sess.pk),
        (theirs.sess.pk, runs.sess.pk),
    ):
        reqs += [
            ("diff", Req("GET", f"/diff/?a={a}&b={b}")),
            ("diff", Req("GET", f"/diff/?run={a}&run={b}")),
            ("diff-export", Req("GET", f"/diff/export.csv?a={a}&b={b}")),
            ("diff-export", Req("GET", f"/diff/export.html?a={a}&b={b}")),
            ("diff_runs", Req("GET", f"/api/diff?a={a}&b={b}")),
        ]
    for name, req in reqs:
        response = send(client, req, follow=True)
        named.add(name)
        if response.status_code != 404:
            problems.append(f"{name}: {req.method} {req.url} {req.headers or ''}: {response.status_code}")
        elif runs.dyn.run_id in body_of(response).decode(errors="replace"):
            problems.append(f"{name}: {req.url}: the 404 shows the run")
    response = client.post(f"/tokens/{runs.token.pk}/revoke/")
    if response.status_code != 404:
        problems.append(f"token-revoke of another user's token: {response.status_code}")
    assert not problems, "\n".join(problems)
    assert named >= {n for n, rs in routes(runs).items() if any(r.names_run for r in rs)}
    assert (
        Run.objects.filter(owner=runs.dyn.owner).count() == 5
        and ApiToken.objects.filter(pk=runs.token.pk).exists()
    )
    # The same answers as for a run that does not exist: no oracle for guessing ids.
    missing = max(Run.objects.values_list("pk", flat=True)) + 1000
    assert (
        client.get(f"/runs/{missing}/").status_code == client.get(f"/runs/{runs.dyn.pk}/").status_code == 404
    )
    assert client.get(f"/api/runs/{missing}").json() == client.get(f"/api/runs/{runs.dyn.pk}").json()


@pytest.mark.django_db
def test_the_runs_list_and_the_api_list_show_only_ones_own_runs(runs, other_user, client):
    client.force_login(other_user)
    assert runs.dyn.run_id not in client.get("/").content.decode()
    assert client.get("/api/runs").json()["items"] == []


# -- headers ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_page_sends_the_security_headers_and_a_csp_for_our_own_scripts_only(client_in, runs):
    problems = []
    for reqs in routes(runs).values():
        for req in reqs:
            if req.method != "GET":
                continue
            response = send(client_in, req)
            problems += answer_problems(response, req.url)[0]
            if response.get("Content-Type", "").startswith("text/html"):
                policy = response["Content-Security-Policy"]
                if "frame-ancestors 'none'" not in policy and "default-src 'none'" not in policy:
                    problems.append(f"{req.url}: CSP does not deny framing")
                if response.get("X-Frame-Options") != "DENY":
                    problems.append(f"{req.url}: X-Frame-Options is {response.get('X-Frame-Options')!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_the_login_page_has_the_same_headers(client):
    response = client.get("/login/")
    assert answer_problems(response, "/login/")[0] == []
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_the_csp_check_is_not_vacuous():
    assert csp_problems(
        "default-src 'self'; script-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'"
    )
    page = Inspector()
    page.feed(
        '<p onclick="x()">a</p><script>alert(1)</script><a href="javascript:x">y</a>'
        '<script type="application/json" id="d">{}</script><script src="https://cdn.example/x.js"></script>'
    )
    assert len(page.problems) == 4, page.problems


# -- limits ------------------------------------------------------------------------------------------


def upload(client, *files, api=False):
    handles = []
    for name, data in files:
        f = io.BytesIO(data)
        f.name = name
        handles.append(f)
    if api:
        return client.post("/api/runs", {"file": handles})
    return client.post("/upload/", {"files": handles}, headers=HX)


def result_text(response, api=False, client=None) -> str:
    """What the upload said about each file: its refusal, or its job's result lines (jobs run on the
    spot in the suite, so they are done when the upload answers)."""
    if api:
        lines = [r["message"] for r in response.json()["results"]]
        for job in response.json().get("jobs", []):
            found = client.get(f"/api/jobs/{job['id']}").json()
            lines += [r["message"] for r in found["results"]] or [found["message"]]
        return " ".join(lines)
    page = Inspector()
    page.feed(response.content.decode())
    return " ".join("".join(page.text).split())


@pytest.mark.django_db
@pytest.mark.parametrize("api", [False, True], ids=["page", "api"])
def test_an_upload_over_the_size_limit_is_refused_naming_the_file_and_the_limit(
    client_in, samples_dir, settings, api
):
    settings.REPLAYWEB_MAX_UPLOAD_BYTES = 1000
    data = (samples_dir / HOSTILE[1]).read_bytes()
    response = upload(client_in, ("big_session.jsonl", data), api=api)
    assert response.status_code == 400
    text = result_text(response, api)
    assert "big_session.jsonl" in text and "1,000" in text and "REPLAYWEB_MAX_UPLOAD_BYTES" in text
    assert not Run.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("api", [False, True], ids=["page", "api"])
def test_a_gzip_bomb_stops_at_the_decompressed_size_limit_with_a_message(
    client_in, samples_dir, settings, api
):
    settings.REPLAYWEB_MAX_DECOMPRESSED_BYTES = 4 * 1024**2
    bomb = samples_dir / "bad/bomb_2GiB.study.log.gz"
    response = upload(client_in, (bomb.name, bomb.read_bytes()), api=api)
    assert response.status_code == 202  # queued; its job fails
    text = result_text(response, api, client_in)
    assert bomb.name in text and "4,194,304" in text and "REPLAYWEB_MAX_DECOMPRESSED_BYTES" in text
    assert not Run.objects.exists()


LONG_LINES = {
    "session": (
        "long_session.jsonl",
        lambda n: (
            b'{"event_type": "session_start", "ts": "2025-10-31T15:32:23"}\n'
            b'{"event_type": "narration", "ts": "2025-10-31T15:32:24", "narration": "' + b"x" * n + b'"}\n'
        ),
        2,
    ),
    "study": (
        "x-0000000001-gc-1-2.study.log",
        lambda n: b'{"client": {"event": "a", "pad": "' + b"x" * n + b'"}}\t2024-03-05T18:22:41.123456\n',
        1,
    ),
    "dynoai": (
        "long_session_replay.json",
        lambda n: b'{"decisions": [\n{"action": "A"},\n{"action": "B", "reason": "' + b"x" * n + b'"}]}',
        3,
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", LONG_LINES)
@pytest.mark.parametrize("api", [False, True], ids=["page", "api"])
def test_a_line_over_the_length_limit_is_refused_naming_the_file_the_line_and_the_limit(
    client_in, settings, kind, api
):
    settings.REPLAYWEB_MAX_LINE_BYTES = 2000
    name, make, line = LONG_LINES[kind]
    assert upload(client_in, (name, make(100)), api=api).status_code == 202  # under the limit: fine
    response = upload(client_in, ("2" + name, make(5000)), api=api)
    assert response.status_code == 202  # queued; its job fails
    text = result_text(response, api, client_in)
    assert (
        "2" + name in text
        and f"line {line}" in text
        and "2,000" in text
        and "REPLAYWEB_MAX_LINE_BYTES" in text
    )
    assert Run.objects.count() == 1


@pytest.mark.django_db
def test_too_many_files_in_one_api_upload_is_a_400_naming_the_limit(client_in, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    files = [(f"f{i}_session_replay.json", b'{"decisions": []}') for i in range(5)]
    response = upload(client_in, *files, api=True)
    assert response.status_code == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FILES" in response.json()["detail"]
    assert not Run.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("setting", ["REPLAYWEB_MAX_FILES_PER_UPLOAD", "DATA_UPLOAD_MAX_NUMBER_FILES"])
def test_too_many_files_in_one_page_upload_is_a_400_naming_the_limit(client_in, settings, setting):
    setattr(settings, setting, 3)
    files = [(f"f{i}_session_replay.json", b'{"decisions": []}') for i in range(5)]
    response = upload(client_in, *files)
    assert response.status_code == 400
    assert not Run.objects.exists()
    assert "3" in result_text(response) and "upload-results" in response.content.decode()


@pytest.mark.django_db
def test_hostile_upload_file_names_are_stored_as_plain_names(client_in, samples_dir):
    data = (samples_dir / REAL[0]).read_bytes()
    response = upload(client_in, ("../../<img src=x onerror=alert(1)>_session_replay.json", data))
    assert response.status_code == 202
    assert answer_problems(response, "/upload/")[0] == []
    run = Run.objects.get()
    assert "/" not in run.name and ".." not in run.name
    page = client_in.get("/")
    assert answer_problems(page, "/")[0] == []


# -- issue 14.2: filter values that answered 500 are 400s naming the parameter ---------------------

BAD_FILTERS = [
    ("t_from=2.6e14", "t_from"),
    ("t_to=-9e14", "t_to"),
    ("t_from=-1e300", "t_from"),
    ("action=%00", "action"),
    ("action=a%00b", "action"),
    ("v=afr_error_pct%3Da%00", "v"),
    ("v=afr_error_pct%3E%3E1", "v"),  # issue 13.11: `>>1` compared with the string ">1"
    ("v=type%3E%3DSpatial", "v"),
    ("since=0001-01-01T00:00:00%2B05:00", "since"),
    ("until=9999-12-31T23:59:59-05:00", "until"),
    ("q=%00", "q"),
]


def filter_urls(r) -> list[tuple[str, dict, bool]]:
    """(url, headers, is a full page) for every face that takes the filters."""
    d, d2, s = r.dyn.pk, r.dyn2.pk, r.sess.pk
    return [
        (f"/runs/{d}/", {}, True),
        (f"/runs/{d}/", {**HX, "HX-Target": "run-view"}, False),
        *[(f"/runs/{d}/export.{fmt}", {}, False) for fmt in EXPORT_FORMATS],
        (f"/runs/{s}/cells/", {**HX, "HX-Target": "cells-panel"}, False),
        (f"/runs/{d}/cells/", {}, True),
        (f"/runs/{s}/replay/?step=2", {}, True),
        (f"/runs/{s}/replay/frames/?start=0&count=5", {}, False),
        (f"/diff/?a={d}&b={d2}", {}, True),
        (f"/diff/export.csv?a={d}&b={d2}", {}, False),
        (f"/api/runs/{d}/decisions", {}, False),
        (f"/api/runs/{d}/summary", {}, False),
        (f"/api/runs/{s}/cells", {}, False),
        (f"/api/runs/{s}/replay?step=2", {}, False),
        (f"/api/diff?a={d}&b={d2}", {}, False),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("qs, name", BAD_FILTERS, ids=[q for q, _ in BAD_FILTERS])
def test_filter_values_out_of_range_or_holding_nul_are_400s_naming_the_parameter(client_in, runs, qs, name):
    problems = []
    for url, headers, full_page in filter_urls(runs):
        full = url + ("&" if "?" in url else "?") + qs
        response = client_in.get(full, headers=headers)
        body = body_of(response).decode(errors="replace")
        if full_page:  # a page shows the error on its form (200 or 400), never a 500
            if response.status_code >= 500 or name not in body:
                problems.append(f"{full}: {response.status_code}")
        elif response.status_code != 400 or name not in body:
            problems.append(f"{full}: {response.status_code} {body[:120]!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
@pytest.mark.parametrize("qs, name", [("after=x", "after"), ("limit=ten", "limit"), ("limit=0", "limit"), ("after=-9", "after")])
@pytest.mark.parametrize("endpoint", ["summary", "cells", "replay?step=1"])
def test_garbage_paging_on_the_summary_cells_and_replay_api_is_a_400(client_in, runs, endpoint, qs, name):
    sep = "&" if "?" in endpoint else "?"
    response = client_in.get(f"/api/runs/{runs.sess.pk}/{endpoint}{sep}{qs}")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{name}: ")


# -- issue 14.3: bodies refused before they are read ------------------------------------------------


def multipart(size: int, name: str = "big_session_replay.json") -> tuple[bytes, str]:
    boundary = "----replayweb-test"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\n{'a' * 32}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: application/json\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + b"x" * size + tail, f"multipart/form-data; boundary={boundary}"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/upload/", "/login/", "/runs/1/delete/", "/api/runs"])
def test_an_anonymous_multipart_body_is_refused_before_anything_reads_it(path):
    client = Client(enforce_csrf_checks=True)  # CsrfViewMiddleware then reads a form body for its token
    client.cookies["csrftoken"] = "a" * 32  # a self-made CSRF cookie, with the same token in the body
    body, ctype = multipart(3 * 1024**2)  # over FILE_UPLOAD_MAX_MEMORY_SIZE: it would be spooled to disk
    response = client.generic("POST", path, body, content_type=ctype)
    assert response.status_code in (302, 401), response.status_code
    if response.status_code == 302:
        assert response["Location"].startswith("/login/")
    assert not response.wsgi_request._read_started  # not a byte of the body was read
    assert not Run.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/upload/", "/api/runs"])
def test_a_body_over_the_request_limit_is_a_413_before_it_is_read(client_in, settings, path):
    settings.REPLAYWEB_MAX_REQUEST_BYTES = 1024**2
    body, ctype = multipart(2 * 1024**2)
    response = client_in.generic("POST", path, body, content_type=ctype)
    assert response.status_code == 413
    assert "REPLAYWEB_MAX_REQUEST_BYTES" in response.content.decode()
    assert not response.wsgi_request._read_started


@pytest.mark.django_db
@pytest.mark.parametrize("api", [False, True], ids=["page", "api"])
def test_an_upload_stops_being_written_to_disk_at_the_file_limit(client_in, samples_dir, settings, monkeypatch, api):
    from django.core.files.uploadedfile import TemporaryUploadedFile

    written = Counter()
    original = TemporaryUploadedFile.__init__

    def counting_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raw_write = self.file.write

        def write(data):
            written[self.name] += len(data)
            return raw_write(data)

        self.file.write = write

    monkeypatch.setattr(TemporaryUploadedFile, "__init__", counting_init)
    monkeypatch.setattr(TemporaryUploadedFile, "write", property(lambda self: self.file.write))
    settings.REPLAYWEB_MAX_UPLOAD_BYTES = 256 * 1024
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    good = (samples_dir / REAL[1]).read_bytes()
    big = b'{"decisions": [' + b'{"action": "A"},' * 400_000 + b'{"action": "A"}]}'  # 6.8 MB
    response = upload(client_in, ("big_session_replay.json", big), ("combat_session_sample.jsonl", good), api=api)
    assert response.status_code == 202  # the other file is queued (and, in the suite, imported on the spot)
    text = result_text(response, api, client_in)
    assert f"big_session_replay.json: the file is {len(big):,} bytes" in text and "REPLAYWEB_MAX_UPLOAD_BYTES" in text
    assert Run.objects.count() == 1  # the other file of the upload is imported
    assert written["big_session_replay.json"] <= settings.REPLAYWEB_MAX_UPLOAD_BYTES


# -- issue 14.4: logout ends the session on the server; wrong passwords are throttled ---------------


def form_login(client, username, password):
    client.get("/login/")
    return client.post("/login/", {"username": username, "password": password})


@pytest.fixture
def axes_reset():
    from django.core.cache import caches

    caches["axes"].clear()
    yield
    caches["axes"].clear()


@pytest.mark.django_db
def test_a_copied_session_cookie_is_dead_after_logout(user, axes_reset):
    browser = Client()
    assert form_login(browser, "alice", "alice-pass-123").status_code == 302
    stolen = browser.cookies["sessionid"].value
    assert browser.get("/").status_code == 200
    assert browser.post("/logout/").status_code == 302
    thief = Client()
    thief.cookies["sessionid"] = stolen
    response = thief.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_log_out_everywhere_ends_every_session_of_the_user_and_no_other(user, other_user, axes_reset):
    laptop, phone, someone_else = Client(), Client(), Client()
    for client, name, password in ((laptop, "alice", "alice-pass-123"), (phone, "alice", "alice-pass-123"),
                                   (someone_else, "mallory", "mallory-pass-123")):
        assert form_login(client, name, password).status_code == 302
    assert phone.get("/").status_code == 200
    response = laptop.post("/logout/everywhere/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert laptop.get("/").status_code == 302
    assert phone.get("/").status_code == 302
    assert someone_else.get("/").status_code == 200
    page = someone_else.get("/").content.decode()
    assert 'action="/logout/everywhere/"' in page


@pytest.mark.django_db
def test_repeated_wrong_passwords_lock_the_login_for_a_while(user, settings, axes_reset):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(3):
        response = form_login(client, "alice", "wrong")
        assert response.status_code in (200, 429)
    response = form_login(client, "alice", "alice-pass-123")  # the right password, too late
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert Client().get("/").status_code == 302


@pytest.mark.django_db
def test_logging_in_writes_nothing_that_waits_for_an_import(user, axes_reset, monkeypatch):
    """The session is a file and last_login is best-effort: a login works while the database refuses
    writes, as SQLite does while an import holds its write lock."""
    from django.contrib.auth.models import User
    from django.db import OperationalError

    save = User.save

    def locked_save(self, *args, **kwargs):
        if kwargs.get("update_fields") == ["last_login"]:
            raise OperationalError("database is locked")
        return save(self, *args, **kwargs)

    monkeypatch.setattr(User, "save", locked_save)
    client = Client()
    assert form_login(client, "alice", "alice-pass-123").status_code == 302
    assert client.get("/").status_code == 200


# -- issue 14.6: bookkeeping beside a long import ---------------------------------------------------


def _locked(*args, **kwargs):
    from django.db import OperationalError

    raise OperationalError("database is locked")


@pytest.mark.django_db
def test_the_first_use_of_a_token_answers_while_an_import_holds_the_write_lock(user, monkeypatch):
    """The last_used bookkeeping is skipped, not failed (the real lock: test_load.py)."""
    from django.db.models.query import QuerySet

    _, token = ApiToken.issue(user, name="script")
    update = QuerySet.update
    monkeypatch.setattr(QuerySet, "update", lambda qs, **kw: _locked() if qs.model is ApiToken else update(qs, **kw))
    response = Client().get("/api/runs", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert ApiToken.objects.get(name="script").last_used is None


@pytest.mark.django_db
def test_making_a_token_while_the_database_stays_locked_says_it_is_busy(client_in, monkeypatch):
    monkeypatch.setattr(ApiToken, "issue", classmethod(_locked))
    response = client_in.post("/tokens/", {"name": "t"})
    assert response.status_code == 503 and response["Retry-After"]
    assert "busy with a long import" in response.content.decode()


# -- issue 14.5: private answers ------------------------------------------------------------------------


@pytest.mark.django_db
def test_run_pages_and_api_answers_are_private_and_api_answers_vary_on_authorization(client_in, runs):
    for url in (f"/runs/{runs.dyn.pk}/", f"/runs/{runs.dyn.pk}/export.csv", "/", f"/api/runs/{runs.dyn.pk}",
                f"/api/runs/{runs.dyn.pk}/decisions"):
        response = client_in.get(url)
        assert "private" in response.get("Cache-Control", ""), url
        if url.startswith("/api/"):
            assert "Authorization" in response.get("Vary", ""), url


# -- issue 14.8: bidi controls are shown, not obeyed, on every HTML face; the API keeps them ---------


@pytest.mark.django_db
def test_bidi_controls_are_inert_on_pages_and_html_exports_and_kept_by_the_api(client_in, user):
    line = ('{"event_type": "x", "ts": "2025-01-01T00:00:01", "agent_id": "a\\u202egnp.exe", '
            '"reason": "r\\u2066iso\\u2069", "values_note": "\\u200fx"}\n')
    text = '{"event_type": "session_start", "ts": "2025-01-01T00:00:00", "session": "s", "config": {}}\n' + line
    [result] = run_ingest(owner=user, sources=[Source(name="bidi_session.jsonl", fileobj=io.BytesIO(text.encode()))])
    run = result.run
    for url in (f"/runs/{run.pk}/", f"/runs/{run.pk}/decisions/1/", f"/runs/{run.pk}/export.html",
                f"/runs/{run.pk}/replay/?step=2", f"/runs/{run.pk}/cells/"):
        response = client_in.get(url)
        assert response.status_code == 200, url
        problems, _ = answer_problems(response, url)
        assert not problems, problems
    for url in (f"/runs/{run.pk}/replay/frames/?start=0&count=5", f"/runs/{run.pk}/decisions/1/?format=json"):
        response = client_in.get(url)
        assert response.status_code in (200, 202), url
        problems, _ = answer_problems(response, url)
        assert not problems, problems
    download = client_in.get(f"/runs/{run.pk}/decisions/1/?format=json").content.decode()
    assert "\\u202e" in download  # a download is the decision as written
    page = client_in.get(f"/runs/{run.pk}/decisions/1/").content.decode()
    assert "a&lt;U+202E&gt;gnp.exe" in page
    api = client_in.get(f"/api/runs/{run.pk}/decisions").json()
    assert any(item["agent"] == "a\u202egnp.exe" for item in api["items"])


def test_inert_html_leaves_escaped_backslashes_alone_and_fixes_json_escapes():
    from viewer.middleware import inert_html

    html = ('<p>\u202e</p><script type="application/json">{"a": "\\u202e", "b": "\\\\u202e", "c": "\u2066", '
            '"d": "\\u003cb\\u003ex\\u202e\\u003c/b\\u003e"}</script><title>\u200f</title>').encode()
    out = inert_html(html).decode()
    assert out.startswith("<p>&lt;U+202E&gt;</p>")
    blob = json.loads(re.search(r"<script[^>]*>(.*?)</script>", out).group(1))
    # text gets the plain notation, a string of HTML the escaped one; an escaped backslash is text
    assert blob == {"a": "<U+202E>", "b": "\\u202e", "c": "<U+2066>", "d": "<b>x&lt;U+202E&gt;</b>"}
    assert "<b>" not in re.search(r"<script[^>]*>(.*?)</script>", out).group(1)  # still script-safe
    assert out.endswith("<title>&lt;U+200F&gt;</title>")
