"""The runs list with 500 runs (issue 20.1: "a list of 500 runs answers in ≤ 150 ms per page"):
server time through the Django test client, beside the raw SQL of the same page.

The runs are made through the ORM (their decisions do not matter to the list), a tenth of them tagged.
"""
from __future__ import annotations

import datetime as dt

from .reads import PAGE_MS, Timer, _client, _hx
from .report import Figure

RUNS = 500
KINDS = ("dynoai", "session", "study")


def make_runs(username: str, count: int = RUNS) -> int:
    """`count` runs owned by a new user `username`; returns the user's id."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from viewer.models import Run, RunTag

    user = get_user_model().objects.create_user(username)
    start = timezone.now() - dt.timedelta(days=count)
    runs = Run.objects.bulk_create([
        Run(owner=user, name=f"bench run {n:04d}", kind=KINDS[n % 3], source_name=f"run_{n:04d}.jsonl", size=1000 + n,
            sha256=f"{n:064x}", run_id=f"2026-01-01T00-00-00Z-{n:06x}", session_id=f"session-{n:05d}",
            decision_count=(n * 7919) % 100_000, duration_ms=n * 1000.0)
        for n in range(count)
    ])
    Run.objects.filter(owner=user).update(created=start)  # one instant: the id must break every tie
    for i, run in enumerate(Run.objects.filter(owner=user).order_by("pk")):
        Run.objects.filter(pk=run.pk).update(created=start + dt.timedelta(hours=i))
    RunTag.objects.bulk_create([RunTag(run=r, name="bench") for r in runs[::10]])
    return user.pk


def runs_list(bench) -> list[Figure]:
    from django.contrib.auth import get_user_model

    from viewer.selectors import runs_page

    username = "bench-runs-list"
    user = get_user_model().objects.get(pk=make_runs(username))
    user_id = user.pk
    t = Timer(bench, _client(username))
    bench.say(f"runs list, {RUNS} runs x{bench.repeat}")
    page = ("SELECT id, name, kind, source_name, decision_count, duration_ms, created, status FROM viewer_run "
            "WHERE owner_id = %s AND status <> 'importing' ORDER BY created DESC, id DESC LIMIT 51", [user_id])
    _, cursor = runs_page(user, limit=50)
    for _ in range(4):  # the fifth page
        _, cursor = runs_page(user, after=cursor, limit=50)
    faces = [
        ("first page", "/", None),
        ("fifth page (keyset)", f"/?after={cursor}", None),
        ("search, sorted by name", "/?q=run+01&sort=name", None),
        ("kind and tag filter", "/?kind=session&tag=bench&sort=-decisions", None),
        ("table fragment, next page", f"/?after={cursor}", _hx("run-table")),
    ]
    for name, url, headers in faces:
        t.measure("runs", f"runs list, {RUNS} runs, {name}", [(url, headers)] if headers else url,
                  target=PAGE_MS, baseline=page)
    return t.figures
