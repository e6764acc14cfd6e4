"""Every URL of the site, asked by everyone who may ask it (issue 20.3): the run's owner, a user it is
shared with read-only, one it is shared with to annotate, a stranger, someone not logged in, and
someone without an account holding a public link (to the run page, or to the audit trail alone).

The URLs come from the URLconf (viewer/urls.py, the API router, the auth pages): a URL added without
a line in MATRIX fails `test_every_url_of_the_site_is_in_the_matrix`. Each line says how to ask it
and which rule its answers follow; a rule gives every actor's answer:

- face: a read-only face of one run (pages, htmx fragments, exports, downloads). Whoever the run is
  shared with reads it as the owner does; a stranger gets a 404 (as for a run that does not exist);
  anyone not logged in goes to the login page, unless they hold a live link that opens that face.
- others: a page of several runs (diff, compare): as a face, but no public link opens it.
- owner: what only the owner does (rename, delete, share, links): a 404 to everyone else logged in.
- viewer_post: what anyone who may see the run does for themselves (save a view).
- api_*: the same rules through the token API, where not logged in is a 401 and a link opens nothing.
- site: the site's own pages (runs list, upload, tokens, jobs): any user, never a link holder.
"""
from __future__ import annotations

import json

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from viewer import exports, jobs, notes, saved_views, shares
from viewer.models import ApiToken
from viewer.views.diff import EXPORT_FORMATS as DIFF_FORMATS
from viewer.views.exports import PDF

from helpers import url_names

pytestmark = pytest.mark.django_db

ACTORS = ("owner", "reader", "annotator", "stranger", "anonymous", "link_run", "link_audit")
LOGGED_IN = ("owner", "reader", "annotator", "stranger")
LINKS = ("link_run", "link_audit")
LOGIN = "to login"  # a 302 to /login/?next=...
HX = {"HX-Request": "true"}


def rule(owner, *, reader=None, annotator=None, stranger=404, anonymous=LOGIN, link_run=None, link_audit=None):
    """Each actor's answer; a shared user's defaults to the owner's, a link holder's to anonymous's."""
    reader = owner if reader is None else reader
    return {"owner": owner, "reader": reader, "annotator": reader if annotator is None else annotator,
            "stranger": stranger, "anonymous": anonymous,
            "link_run": anonymous if link_run is None else link_run,
            "link_audit": anonymous if link_audit is None else link_audit}


def face(ok=200):
    return rule(ok, link_run=ok)


def audit_face(ok=200):
    return rule(ok, link_run=ok, link_audit=ok)


def others(ok=200):
    return rule(ok)


def owner_only(ok):
    return rule(ok, reader=404)


def viewer_post(ok=303):
    return rule(ok)


def api_read(ok=200):
    return rule(ok, anonymous=401)


def api_owner(ok):
    return rule(ok, reader=404, anonymous=401)


def site(ok=200, *, others_get=None):
    """A page of the site, not of a run: `others_get` for a logged-in user other than the owner."""
    other = ok if others_get is None else others_get
    return rule(ok, reader=other, stranger=other)


def api_site(ok=200, *, others_get=None):
    other = ok if others_get is None else others_get
    return rule(ok, reader=other, stranger=other, anonymous=401)


def public(ok=200):
    return rule(ok, stranger=ok, anonymous=ok)


@dataclass
class Ask:
    method: str
    url: str  # str.format()ted with the world: {d} {d2} {s} {st} {v1} {v2} {view} {spare_link} {note} ...
    expect: dict
    headers: dict = field(default_factory=dict)
    data: dict | None = None  # a form body
    json: dict | None = None  # a JSON body


def run_faces():
    """Every read-only face of the runs: each URL once, its htmx parts, every export format."""
    page_parts = ("run-view", "load-more", "facets", "stats", "chart")
    return {
        "run": [Ask("GET", f"/runs/{{{r}}}/", face()) for r in ("d", "s", "st")]
        + [Ask("GET", "/runs/{s}/?action=attack", face(), {**HX, "HX-Target": part}) for part in page_parts],
        "decision": [Ask("GET", "/runs/{s}/decisions/1/", face(), h) for h in ({}, HX)]
        + [Ask("GET", "/runs/{d}/decisions/0/?format=json", face())],
        "run-export": [Ask("GET", f"/runs/{{s}}/export.{fmt}", audit_face() if fmt == "html" else face())
                       for fmt in exports.FORMATS]
        + [Ask("GET", f"/runs/{{s}}/export.{PDF}?round=1", audit_face())],  # the audit trail printed
        "run-export-otlp": [Ask("GET", "/runs/{s}/export.otlp.jsonl", face())],
        "run-output": [Ask("GET", "/runs/{d}/outputs/session_replay.json", face())],
        "run-cells": [Ask("GET", "/runs/{d}/cells/", face(), h) for h in ({}, {**HX, "HX-Target": "cells-panel"})],
        "run-cell-story": [Ask("GET", "/runs/{d}/cells/story/?rpm=3500&kpa=65", face(), h)
                           for h in ({}, {**HX, "HX-Target": "cell-story"})],
        "run-tables": [Ask("GET", "/runs/{d}/tables/", face())],
        "run-replay": [Ask("GET", f"/runs/{{{r}}}/replay/?step=5", face(), h) for r in ("d", "s") for h in ({}, HX)],
        "run-replay-frames": [Ask("GET", "/runs/{s}/replay/frames/?start=0&count=20", face())],
        "run-replay-document": [Ask("GET", "/runs/{st}/replay/document.txt?step=20&doc=1AbCdEfGh", face())],
        "run-replay-writing": [Ask("GET", "/runs/{st}/replay/writing.csv?step=5", face())],
        "run-llm": [Ask("GET", "/runs/{s}/llm/", face(), h) for h in ({}, {**HX, "HX-Target": "llm-panel"})],
        "run-state": [Ask("GET", "/runs/{s}/state/", face())],
        "run-notes": [Ask("GET", "/runs/{s}/notes/?seq=2", face())],
        "run-replay-kit": [Ask("GET", "/runs/{s}/replay-kit.json", face())],
        "run-trace": [Ask("GET", "/runs/{s}/trace/?node=1", face(), h) for h in ({}, {**HX, "HX-Target": "trace-panel"})],
    }


def matrix() -> dict[str, list[Ask]]:
    """Each URL name of the site: how to ask it, and the rule its answers follow. Requests that change
    something come after the reads of the same run, and deletes ask a run of their own."""
    return {
        **run_faces(),
        # Several runs at once: never through a public link.
        "diff": [Ask("GET", "/diff/?a={s}&b={s2}", others()),
                 Ask("GET", "/diff/?a={s}&b={s2}&rows=all", others(), {**HX, "HX-Target": "diff-body"})],
        "diff-export": [Ask("GET", f"/diff/export.{fmt}?a={{s}}&b={{s2}}", others()) for fmt in DIFF_FORMATS],
        "compare": [Ask("GET", "/compare/?run={d}&run={d2}", others())],
        # The token API: shared users read; only the owner changes the run or its shares.
        "get_run": [Ask("GET", "/api/runs/{s}", api_read())],
        "run_summary": [Ask("GET", "/api/runs/{s}/summary", api_read())],
        "list_decisions": [Ask("GET", "/api/runs/{s}/decisions?limit=5", api_read())],
        "run_tokens": [Ask("GET", "/api/runs/{s}/tokens", api_read())],
        "run_cells": [Ask("GET", "/api/runs/{d}/cells", api_read())],
        "cell_story": [Ask("GET", "/api/runs/{d}/cells/story?rpm=3500&kpa=65", api_read())],
        "run_replay": [Ask("GET", "/api/runs/{s}/replay?step=5", api_read())],
        "list_outputs": [Ask("GET", "/api/runs/{d}/outputs", api_read())],
        "diff_runs": [Ask("GET", "/api/diff?a={s}&b={s2}", api_read())],
        "compare_runs": [Ask("GET", "/api/compare?run={d}&run={d2}", api_read())],
        "list_notes": [Ask("GET", "/api/runs/{s}/notes", api_read())],
        "add_note": [Ask("POST", "/api/runs/{s}/notes", api_read(201) | {"reader": 403},
                         json={"seq": 1, "text": "checked"})],
        # The owner's note: only its author (or the run's owner) edits or deletes it.
        "edit_note": [Ask("PATCH", "/api/notes/{note}", api_owner(200), json={"text": "rechecked"})],
        "delete_note": [Ask("DELETE", "/api/notes/{note}", api_owner(204))],
        "list_shares": [Ask("GET", "/api/runs/{s}/shares", api_owner(200))],
        "add_share": [Ask("POST", "/api/runs/{s}/shares", api_owner(201), json={"user": "carol", "can_annotate": True})],
        "remove_share": [Ask("DELETE", "/api/runs/{s}/shares/carol", api_owner(204))],
        "remove_group_share": [Ask("DELETE", "/api/runs/{s}/shares/groups/crew", api_owner(204))],
        "rename_run": [Ask("PATCH", "/api/runs/{s}", api_owner(200), json={"name": "renamed by the API"})],
        "delete_run": [Ask("DELETE", "/api/runs/{v2}", api_owner(204))],
        # Pages that change a run. Notes: the owner and an annotator add; a note's author (or the
        # run's owner) edits or deletes it (a reader is told 403: they see the run).
        "run-notes": [*run_faces()["run-notes"],
                      Ask("POST", "/runs/{s}/notes/", rule(302, reader=403, annotator=302), data={"seq": "1", "text": "ok"})],
        "note-edit": [Ask("POST", "/notes/{note2}/edit/", owner_only(302), data={"text": "rechecked"})],
        "note-delete": [Ask("POST", "/notes/{note2}/delete/", owner_only(302))],
        "run-view-save": [Ask("POST", "/runs/{s}/views/", viewer_post(), data={"name": "attacks", "url": "/runs/{s}/?action=attack"})],
        "run-view-delete": [Ask("POST", "/runs/{s}/views/{view}/delete/", owner_only(303))],
        "run-share": [Ask("GET", "/runs/{s}/share/", owner_only(200)),
                      Ask("POST", "/runs/{s}/share/", owner_only(303), data={"user": "carol"})],
        "run-unshare": [Ask("POST", "/runs/{d}/share/remove/", owner_only(303), data={"user": "carol"})],
        "run-link-create": [Ask("POST", "/runs/{s}/share/links/", owner_only(303), data={"scope": "run", "days": "2"})],
        "run-link-revoke": [Ask("POST", "/runs/{s}/share/links/{spare_link}/revoke/", owner_only(303))],
        "run-rename": [Ask("POST", "/runs/{s}/rename/", owner_only(302), data={"name": "renamed"})],
        "run-delete": [Ask("POST", "/runs/{v1}/delete/", owner_only(302))],
        # The site's own pages: any user, never someone holding a link.
        "runs": [Ask("GET", "/", site())],
        "runs-bulk": [Ask("GET", "/runs/bulk/?run={s}&do=tag", site(200, others_get=404))],  # own runs only: others 404, as one run
        "upload": [Ask("GET", "/upload/", site(303))],  # to the runs list, where the form is
        "jobs": [Ask("GET", "/jobs/", site(302))],  # to the runs list, where imports show
        "job-cancel": [Ask("POST", "/jobs/{job}/cancel/", site(302, others_get=404))],
        "tokens": [Ask("GET", "/tokens/", site())],
        "token-revoke": [Ask("POST", "/tokens/{token}/revoke/", site(302, others_get=404))],
        "list_runs": [Ask("GET", "/api/runs", api_site())],
        "upload_runs": [Ask("POST", "/api/runs", api_site(400))],
        "get_job": [Ask("GET", "/api/jobs/{job}", api_site(200, others_get=404))],
        "cancel_job": [Ask("DELETE", "/api/jobs/{job}", api_site(200, others_get=404))],
        "logout-everywhere": [Ask("POST", "/logout/everywhere/", site(LOGIN))],
        "logout": [Ask("POST", "/logout/", site(LOGIN))],
        # Open to everyone: the login page, the API's schema, a public link (a forged one here).
        "login": [Ask("GET", "/login/", public())],
        "favicon.ico": [Ask("GET", "/favicon.ico", public(301))],
        "api-root": [Ask("GET", "/api/", public(404))],
        "openapi-json": [Ask("GET", "/api/openapi.json", public())],
        "openapi-view": [Ask("GET", "/api/docs", public())],
        "share-link": [Ask("GET", "/s/{spare_token}x/", public(404))],
    }


def test_every_url_of_the_site_is_in_the_matrix():
    names = url_names()
    missing, stale = names - set(matrix()), set(matrix()) - names
    assert not missing, f"say how each actor is answered: add these URL names to MATRIX: {sorted(missing)}"
    assert not stale, f"these MATRIX lines name no URL: {sorted(stale)}"


def test_every_face_a_public_link_opens_is_asked_in_the_matrix():
    from viewer.access import RUN_FACES

    assert RUN_FACES <= set(run_faces()), RUN_FACES - set(run_faces())


# -- the world ---------------------------------------------------------------------------------------


@pytest.fixture
def world(user, other_user, django_user_model, import_sample, samples_dir):
    """alice's runs (DynoAI d and d2, sessions s and s2, a study st, two to delete), shared with rita
    (read-only) and anna (to annotate), carol and the group crew on the side; a note, a saved view, a
    spare link, a token and a queued job of alice's; mallory is the stranger."""
    reader = django_user_model.objects.create_user("rita", password="rita-pass-12345")
    annotator = django_user_model.objects.create_user("anna", password="anna-pass-12345")
    django_user_model.objects.create_user("carol", password="carol-pass-12345")
    Group.objects.create(name="crew")
    runs = {
        "d": import_sample("dynoai/real_sample/session_replay.json"),
        "d2": import_sample("dynoai/runs/large200k_s2_c7/session_replay.json"),
        "s": import_sample("session/combat_session_sample.jsonl"),
        "s2": import_sample("session/session_debt_auction_ambush.jsonl"),
        "st": import_sample("study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"),
        "v1": import_sample("session/session_debt_auction_ambush_replay.jsonl"),
        "v2": import_sample("hostile/xss_session.jsonl"),
    }
    for run in runs.values():
        shares.share(run, by=user, username="rita")
        shares.share(run, by=user, username="anna", can_annotate=True)
    for key in ("d", "s"):
        shares.share(runs[key], by=user, username="carol")
    shares.share(runs["s"], by=user, group="crew")
    links = {scope: [shares.create_link(runs[k], by=user, scope=scope) for k in ("d", "s", "st")]
             for scope in ("run", "audit")}
    spare = shares.create_link(runs["s"], by=user)
    upload = jobs.Upload(name="queued.jsonl", path=samples_dir / "session/combat_session_sample.jsonl")
    values = {key: run.pk for key, run in runs.items()} | {
        "note": notes.add(runs["s"], user, seq=2, text="owner's note").pk,
        "note2": notes.add(runs["s"], user, seq=3, text="owner's other note").pk,
        "view": saved_views.save(owner=user, run=runs["s"], name="owner's", url=f"/runs/{runs['s'].pk}/?q=x").pk,
        "spare_link": spare.pk,
        "spare_token": shares.token(spare),
        "token": ApiToken.issue(user, name="mine")[0].pk,
        "job": jobs.submit(user, [upload], enqueue=False)[0][0].pk,
    }
    users = {"owner": user, "reader": reader, "annotator": annotator, "stranger": other_user}
    return SimpleNamespace(values=values, users=users, links=links)


def client_of(world, actor: str) -> Client:
    """A fresh browser for `actor` (a request that logs out spoils no other)."""
    client = Client()
    if actor in world.users:
        client.force_login(world.users[actor])
    elif actor in LINKS:
        for link in world.links[actor.removeprefix("link_")]:
            assert client.get(shares.link_path(link)).status_code == 302
    return client


def ask(client: Client, a: Ask, values: dict):
    url = a.url.format(**values)
    data = {k: v.format(**values) for k, v in (a.data or {}).items()}
    if a.json is not None:
        return client.generic(a.method, url, json.dumps(a.json), content_type="application/json",
                              headers=a.headers)
    if a.method == "POST":
        return client.post(url, data, headers=a.headers)
    return client.generic(a.method, url, headers=a.headers)


def answer(response):
    if response.status_code == 302 and response["Location"].startswith("/login/"):
        return LOGIN
    return response.status_code


@pytest.mark.parametrize("actor", ACTORS)
def test_every_url_answers_each_actor_as_its_rule_says(world, actor):
    client = client_of(world, actor)
    problems, asked = [], 0
    for name, asks in matrix().items():
        for a in asks:
            if a.method != "GET" or name in ("logout", "logout-everywhere"):
                client = client_of(world, actor)  # a change or a logout: a browser of its own
            got = answer(ask(client, a, world.values))
            asked += 1
            if got != a.expect[actor]:
                problems.append(f"{name}: {a.method} {a.url.format(**world.values)} {a.headers or ''}"
                                f" -> {got}, expected {a.expect[actor]}")
    assert not problems, f"{actor}:\n" + "\n".join(problems)
    assert asked > 80
