"""Reads of the biggest DynoAI run (the diff is in bench/diffs.py): server time through the Django
test client (the whole middleware and template stack, no network), each beside the raw SQL
query that is the database's own floor for the same answer.

The pages are built by several people at once: a URL that answers 404, or fails, is reported
"not available" and the suite goes on.
"""
from __future__ import annotations

import random
import re
import time

from .environment import generate
from .report import Figure
from .worker import peak_rss_mb

PAGE_MS, FRAGMENT_MS, FACETS_MS, REPLAY_MS = 150, 50, 150, 500  # issue 19: every face ≤ 150 ms
CHART_KB = 1024
_JSON_SCRIPT = re.compile(rb'<script[^>]*type="application/json"[^>]*>(.*?)</script>', re.S)
COLS = 'seq, ts, t_ms, action, reason, "values", cell, rpm, kpa, cylinder, metric, raw'


def _client(username: str):
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(raise_request_exception=False)
    client.force_login(get_user_model().objects.get(username=username))
    return client


def _get(client, url: str, headers: dict | None = None):
    start = time.perf_counter()
    response = client.get(url, headers=headers or {})
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return (time.perf_counter() - start) * 1000, response.status_code, body


def _sql_ms(sql: str, params: list, n: int) -> list[float]:
    from django.db import connection

    times = []
    with connection.cursor() as cursor:
        for _ in range(n):
            start = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            times.append((time.perf_counter() - start) * 1000)
    return times


class Timer:
    def __init__(self, bench, client):
        self.bench = bench
        self.client = client
        self.figures: list[Figure] = []
        self.bodies: dict[str, bytes] = {}

    def measure(self, section, name, candidates, *, target, baseline=None, base_name="raw SQL", cold=False):
        """Time the first candidate that answers 200, after one warm-up request.

        A candidate is a URL, a function of the repeat number giving a URL, or (either, headers).
        `cold`: also report the warm-up request on its own (pages that cache what they compute).
        """
        n = self.bench.repeat
        if not isinstance(candidates, list):
            candidates = [candidates]
        last = ""
        for candidate in candidates:
            url, headers = candidate if isinstance(candidate, tuple) else (candidate, None)
            make = url if callable(url) else (lambda i, u=url: u)
            hwm = peak_rss_mb()
            try:
                first_ms, status, body = _get(self.client, make(-1), headers)
            except Exception as exc:  # a page still being built may not even import
                last = f"{make(-1)}: {exc.__class__.__name__}: {str(exc)[:120]}"
                continue
            if status != 200:
                last = f"{make(-1)} answered {status}"
                continue
            samples = []
            for i in range(n):
                ms, status, body = _get(self.client, make(i), headers)
                samples.append(ms)
            self.bodies[name] = body
            base = _sql_ms(*baseline, n) if baseline else []
            how = f"GET {make(0)}" + (f" ({', '.join(f'{k}: {v}' for k, v in headers.items())})" if headers else "")
            grew = peak_rss_mb() - hwm
            if grew >= 1:
                how += f"; the bench process's peak RSS grew by {grew:,.0f} MB"
            figure = Figure(section, name, "ms", samples, base_name if base else "", base,
                            target_kind="max" if target else "", target=target, note=how)
            self.figures.append(figure)
            if cold:
                self.figures.append(Figure(
                    section, f"{name}, first request", "ms", [first_ms], base_name if base else "", base[:1],
                    target_kind="max" if target else "", target=target,
                    note="the first request for it, before the run's stored aggregates hold it (it computes "
                         "and stores them)",
                ))
            return figure
        self.figures.append(Figure(section, name, "ms", available=False, target_kind="max" if target else "",
                                   target=target, note=f"not available: {last}"))
        return None


def _hx(target: str | None = None) -> dict:
    return {"HX-Request": "true", "HX-Target": target} if target else {"HX-Request": "true"}


def reads(bench) -> list[Figure]:
    found = bench.biggest("dynoai")
    if not found:
        return study_replay(bench)
    size, kept = found
    run_id = kept["run_id"]
    t = Timer(bench, _client(kept["user"]))
    rng = random.Random(1)
    steps = [rng.randrange(size) for _ in range(bench.repeat + 1)]
    deep = size * 9 // 10
    run = f"/runs/{run_id}/"
    where = f"FROM viewer_decision WHERE run_id = {int(run_id)}"
    first_100 = (f"SELECT {COLS} {where} ORDER BY seq LIMIT 100", [])
    bench.say(f"reads on the {size:,}-decision run x{bench.repeat}")
    label = f"{size:,}"

    # The faces a first visit opens: (name, URL, headers, target, the raw SQL beside it).
    by_action = (f"SELECT action, COUNT(*) {where} GROUP BY action", [])
    per_cell = (f"SELECT rpm, kpa, COUNT(*), AVG(metric) {where} AND rpm IS NOT NULL GROUP BY rpm, kpa", [])
    faces = [
        ("run page", run, None, PAGE_MS, first_100),
        ("table fragment, first page", run, _hx("load-more"), FRAGMENT_MS, first_100),
        ("facet counts", run, _hx("facets"), FACETS_MS, by_action),
        ("summary fragment", run, _hx("stats"), FACETS_MS,
         (f"SELECT action, COUNT(*), MIN(ts), MAX(ts) {where} GROUP BY action", [])),
        ("timeline chart fragment", run, _hx("chart"), FACETS_MS,
         (f"SELECT CAST(t_ms / 1000 AS INTEGER) AS b, action, COUNT(*) {where} GROUP BY b, action", [])),
        ("heatmap", f"{run}cells/", None, FACETS_MS, per_cell),
        ("replay at a random step", f"{run}replay/?step={steps[0]}", None, REPLAY_MS,
         (f"SELECT {COLS} {where} AND seq = %s", [steps[0]])),
    ]

    t.measure("reads", f"run page, {label}", run, target=PAGE_MS, baseline=first_100)
    t.measure("reads", f"table fragment, first page, {label}", [(run, _hx("load-more")), (run, _hx())],
              target=FRAGMENT_MS, baseline=first_100)
    t.measure("reads", f"table fragment, keyset page after {deep:,}",
              [(f"{run}?after={deep}", _hx("load-more")), (f"{run}?after={deep}", _hx())], target=FRAGMENT_MS,
              baseline=(f"SELECT {COLS} {where} AND seq > %s ORDER BY seq LIMIT 100", [deep]))
    t.measure("reads", f"filtered view fragment (action=gradient), {label}",
              (f"{run}?action=gradient", _hx("run-view")), target=PAGE_MS,
              baseline=(f"SELECT {COLS} {where} AND UPPER(action) LIKE '%%GRADIENT%%' ORDER BY seq LIMIT 100", []),
              cold=True)
    # The text filter (reason or an LLM call's text contains): the view's rows are the first matches in
    # seq order; how many match is a scan of the run, in the matchline part that loads after the page.
    contains = "(UPPER(reason) LIKE '%%GRADIENT%%' OR UPPER(text) LIKE '%%GRADIENT%%')"
    t.measure("reads", f"filtered view fragment (q=gradient), {label}",
              (f"{run}?q=gradient", _hx("run-view")), target=PAGE_MS,
              baseline=(f"SELECT {COLS} {where} AND {contains} ORDER BY seq LIMIT 100", []))
    t.measure("reads", f"match count (q=gradient), {label}", (f"{run}?q=gradient", _hx("matchline")),
              target=FACETS_MS, baseline=(f"SELECT COUNT(*) {where} AND {contains}", []), cold=True)
    t.measure("reads", f"facet counts, {label}", [(run, _hx("facets")), f"/api/runs/{run_id}/summary"],
              target=FACETS_MS, baseline=by_action, cold=True)
    t.measure("reads", f"summary fragment, {label}", (run, _hx("stats")), target=FACETS_MS,
              baseline=(f"SELECT action, COUNT(*), MIN(ts), MAX(ts) {where} GROUP BY action", []), cold=True)
    t.measure("reads", f"timeline chart fragment, {label}", (run, _hx("chart")), target=FACETS_MS,
              baseline=(f"SELECT CAST(t_ms / 1000 AS INTEGER) AS b, action, COUNT(*) {where} GROUP BY b, action", []),
              cold=True)
    t.measure("reads", f"heatmap, {label}", f"{run}cells/", target=FACETS_MS, baseline=per_cell, cold=True)
    t.figures += _replay_index(bench, t, run_id, f"{run}replay/?step={steps[-1]}", label)
    t.measure("reads", f"replay jump to a random step, {label}", lambda i: f"{run}replay/?step={steps[i]}",
              target=REPLAY_MS, baseline=(f"SELECT {COLS} {where} AND seq = %s", [steps[0]]))
    t.measure("reads", f"decision detail, {label}", lambda i: f"{run}decisions/{steps[i]}/", target=None,
              baseline=(f"SELECT {COLS} {where} AND seq = %s", [steps[0]]))
    figures = t.figures + first_views(bench, run_id, kept["user"], size, faces) + study_replay(bench)
    # The chart payload: the JSON the page, the chart fragment and the heatmap embed for plotly.
    for name, what in ((f"run page, {label}", "run page"), (f"timeline chart fragment, {label}", "timeline chart"),
                       (f"heatmap, {label}", "heatmap")):
        body = t.bodies.get(name)
        if body is None:
            figures.append(Figure("reads", f"chart payload, {what}", "KB", available=False, target_kind="max",
                                  target=CHART_KB, note="not available: the page is not there yet"))
            continue
        blobs = _JSON_SCRIPT.findall(body)
        kb = sum(len(b) for b in blobs) / 1024
        figures.append(Figure("reads", f"chart payload, {what}", "KB", [kb], target_kind="max", target=CHART_KB,
                              note=f"{len(blobs)} JSON script block(s) in the response of "
                                   f"{len(body) / 1024:,.0f} KB"))
    return figures


WARMUP_SIZE = 1000  # decisions of the run whose pages take a fresh process's first-use costs


def first_views(bench, run_id: int, user: str, size: int, faces: list) -> list[Figure]:
    """A run as its import job leaves it: its first view computed ahead (viewer/warm.py, timed here in
    a process of its own, beside the import's own time), then each face's first request in a fresh
    process (one per turn), beside the same raw SQL as the reads above. Each process first opens the
    same pages of a small run as another user, so the figures are this run's reads, not the
    process's imports and template compilation."""
    from viewer.models import ReplayIndex, RunAggregate

    label = f"{size:,}"
    RunAggregate.objects.filter(run_id=run_id).delete()  # what the reads above computed and stored
    ReplayIndex.objects.filter(run_id=run_id).delete()
    bench.say(f"warm-up of the {size:,}-decision run, then each face's first request x{bench.repeat}")
    warmed = bench.worker({"task": "warm", "run_id": run_id})
    imported = bench.import_seconds.get(("dynoai", size), [])
    figures = [Figure(
        "reads", f"warm-up after import (first view's aggregates and replay index), {label}", "s",
        [warmed["seconds"]], "the import itself" if imported else "", imported,
        note=f"in the import job's process, after the decisions are stored: "
             f"{warmed['aggregating_seconds']:,.1f} s of aggregates, the rest the replay index; "
             f"CPU {warmed['cpu']:,.1f} s",
    )]
    small_user = "bench-first-view-warmup"
    small_path = generate("dynoai", WARMUP_SIZE, bench.inputs, seed=2)
    small = bench.worker({"task": "ingest", "path": str(small_path), "kind": "dynoai", "user": small_user})
    specs = [(name, url, headers) for name, url, headers, _, _ in faces]
    before = [(name, url.replace(f"/runs/{run_id}/", f"/runs/{small['run_id']}/").split("?")[0], headers)
              for name, url, headers in specs]
    samples: dict[str, list[float]] = {name: [] for name, *_ in faces}
    statuses: dict[str, int] = {}
    for _ in range(bench.repeat):
        res = bench.worker({"task": "first_requests", "user": user, "faces": specs,
                            "before_user": small_user, "before": before})
        for name, ms in res["ms"].items():
            samples[name].append(ms)
        statuses.update(res["status"])
    for name, url, headers, target, baseline in faces:
        title = f"{name}, first request after warm-up, {label}"
        if statuses.get(name) != 200:
            figures.append(Figure("reads", title, "ms", available=False, target_kind="max", target=target,
                                  note=f"not available: {url} answered {statuses.get(name)}"))
            continue
        how = f"GET {url}" + (f" ({', '.join(f'{k}: {v}' for k, v in headers.items())})" if headers else "")
        base = _sql_ms(*baseline, bench.repeat)
        figures.append(Figure("reads", title, "ms", samples[name], "raw SQL", base, target_kind="max",
                              target=target, note=f"{how}; the first request for this run in a fresh process"))
    return figures


def _replay_index(bench, t: Timer, run_id: int, url: str, label: str, timeout: float = 900) -> list[Figure]:
    """The replay page builds an index of the run on first use (for big runs a task, which the
    bench runs where it is enqueued: in that request); jumps are timed once it is ready, and the
    build is reported on its own."""
    try:
        from viewer.models import ReplayIndex
    except ImportError:
        return []
    start = time.perf_counter()
    try:
        first_ms, status, _ = _get(t.client, url)
    except Exception as exc:
        return [Figure("reads", f"replay index build, {label}", "s", available=False,
                       note=f"not available: {exc.__class__.__name__}: {str(exc)[:120]}")]
    if status != 200:
        return []
    while ReplayIndex.objects.filter(run_id=run_id, status=ReplayIndex.Status.BUILDING).exists():
        if time.perf_counter() - start > timeout:
            break
        time.sleep(0.5)
    seconds = time.perf_counter() - start
    states = list(ReplayIndex.objects.filter(run_id=run_id).values_list("status", "error"))
    failed = [e for s, e in states if s != ReplayIndex.Status.READY]
    note = f"first request {first_ms:,.0f} ms, then until the index is ready"
    if failed:
        note += f"; NOT READY: {failed[0][:160] or 'still building'}"
    return [Figure("reads", f"replay index build (first visit), {label}", "s", [seconds], note=note)]


def study_replay(bench) -> list[Figure]:
    """The study reducer (each document's text rebuilt from its save commands) on the biggest study
    log: the index build, then a jump to a random step through the API, whose state carries every
    document's text as of that step."""
    found = bench.biggest("study")
    if not found:
        return []
    size, kept = found
    run_id, label = kept["run_id"], f"{size:,} study events"
    t = Timer(bench, _client(kept["user"]))
    rng = random.Random(2)
    steps = [rng.randrange(size) for _ in range(bench.repeat + 1)]
    t.figures += _replay_index(bench, t, run_id, f"/runs/{run_id}/replay/?step={steps[-1]}", label)
    t.measure("reads", f"study replay jump (document text as of a random step), {label}",
              lambda i: f"/api/runs/{run_id}/replay?step={steps[i]}", target=REPLAY_MS,
              baseline=(f"SELECT {COLS} FROM viewer_decision WHERE run_id = {int(run_id)} AND seq = %s", [steps[0]]))
    return t.figures
