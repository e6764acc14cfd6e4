"""One measurement in a process of its own, so its peak RSS is its own.

    python -m bench.worker '{"task": "ingest", "path": "...", "kind": "dynoai", "user": "bench-1"}'

The database comes from the environment the suite sets (REPLAYWEB_VAR_DIR or DATABASE_URL).
Prints one JSON object on its last line: seconds (wall), cpu (user+sys seconds), maxrss_mb, and
what the task counted. Django is imported and set up before the clock starts, for every task,
so start-up costs are outside every figure and the memory figures are comparable.
"""
from __future__ import annotations

import csv
import json
import os
import resource
import sys
import time
from pathlib import Path


def _cpu() -> float:
    """CPU seconds of this process and of the children it has waited for (an import's reading
    process: viewer/pipeline.py), so that work moved to a second process is still counted."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mb() -> float:
    """This process's own peak RSS. Linux carries ru_maxrss over fork and exec (a worker would
    report the suite's peak, not its own), so VmHWM, which starts again with each exec, comes first."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "replayweb.settings")
    import django

    django.setup()


def ingest(spec: dict) -> dict:
    from django.contrib.auth import get_user_model

    from viewer.ingest import Source, run_ingest

    owner, _ = get_user_model().objects.get_or_create(username=spec["user"])
    path = Path(spec["path"])
    source = Source(name=path.name, path=path)
    start, cpu = time.perf_counter(), _cpu()
    (result,) = run_ingest(owner=owner, sources=[source])
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds, "cpu": _cpu() - cpu, "count": result.count, "status": result.status,
        "message": result.message, "run_id": result.run.pk if result.run else None,
    }


def baseline(spec: dict) -> dict:
    from . import baseline as base

    path = Path(spec["path"])
    start, cpu = time.perf_counter(), _cpu()
    if spec["target"] == "postgresql":
        count = base.postgres_import(spec["kind"], path, spec["conninfo"])
    else:
        count = base.sqlite_import(spec["kind"], path, Path(spec["db"]))
    return {"seconds": time.perf_counter() - start, "cpu": _cpu() - cpu, "count": count}


class _Sink:
    """A file that counts what is written to it and keeps nothing."""

    def __init__(self):
        self.bytes = 0

    def write(self, data):
        self.bytes += len(data)
        return len(data)


def export(spec: dict) -> dict:
    """GET /runs/<id>/export.csv through the test client, consuming the stream."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(raise_request_exception=False)
    client.force_login(get_user_model().objects.get(username=spec["user"]))
    url = f"/runs/{spec['run_id']}/export.csv"
    start, cpu = time.perf_counter(), _cpu()
    response = client.get(url)
    size = lines = 0
    chunks = response.streaming_content if response.streaming else [response.content]
    for chunk in chunks:
        size += len(chunk)
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds, "cpu": _cpu() - cpu, "status": response.status_code, "bytes": size,
        "rows": max(lines - 1, 0), "streaming": response.streaming,
    }


def export_baseline(spec: dict) -> dict:
    """The machine's limit for the same export: a raw cursor straight into csv.writer."""
    from django.db import connection, transaction

    cols = ["seq", "ts", "t_ms", "action", "reason", "values", "cell", "rpm", "kpa", "cylinder", "rpm_index",
            "kpa_index", "round", "agent", "metric"]
    quoted = ", ".join(connection.ops.quote_name(c) for c in cols)
    sink = _Sink()
    start, cpu = time.perf_counter(), _cpu()
    writer = csv.writer(sink)
    writer.writerow(cols)
    rows = 0
    sql = f"SELECT {quoted} FROM viewer_decision WHERE run_id = %s ORDER BY seq"
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A named (server-side) cursor: a plain one would hold the whole result in memory.
            connection.ensure_connection()
            cursor = connection.connection.cursor(name="bench_export")
        else:
            cursor = connection.cursor()
        with cursor:
            cursor.execute(sql, [spec["run_id"]])
            while batch := cursor.fetchmany(2000):
                writer.writerows(batch)
                rows += len(batch)
    return {"seconds": time.perf_counter() - start, "cpu": _cpu() - cpu, "rows": rows, "bytes": sink.bytes}


def warm(spec: dict) -> dict:
    """What the import job does once a run is stored (viewer/warm.py): its first view's aggregates and
    replay index; seconds in all, and how long until the replay index began."""
    from viewer.models import Run
    from viewer.warm import warm as warm_run

    run = Run.objects.get(pk=spec["run_id"])
    stages: dict[str, float] = {}
    start, cpu = time.perf_counter(), _cpu()
    warm_run(run, lambda stage: stages.setdefault(stage, time.perf_counter() - start))
    return {"seconds": time.perf_counter() - start, "cpu": _cpu() - cpu,
            "aggregating_seconds": stages.get("indexing", 0.0) - stages.get("aggregating", 0.0)}


def first_requests(spec: dict) -> dict:
    """One GET of each face, each the first for its run in this process: `before` (another run's
    same pages, as another user) first takes the process's own first-use costs (imports, templates)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    users = get_user_model().objects
    client = Client(raise_request_exception=False)
    if spec.get("before_user"):
        client.force_login(users.get(username=spec["before_user"]))
        for _, url, headers in spec["before"]:
            _consume(client.get(url, headers=headers or {}))
    client.force_login(users.get(username=spec["user"]))
    out = {"ms": {}, "status": {}}
    for name, url, headers in spec["faces"]:
        start = time.perf_counter()
        response = client.get(url, headers=headers or {})
        _consume(response)
        out["ms"][name] = (time.perf_counter() - start) * 1000
        out["status"][name] = response.status_code
    return out


def diff(spec: dict) -> dict:
    """GET /diff/?a=&b= through the test client (the page: counts, first divergence, first page of
    rows, heatmap), after the bare /diff/ page has loaded the process's imports and templates."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(raise_request_exception=False)
    client.force_login(get_user_model().objects.get(username=spec["user"]))
    _consume(client.get("/diff/"))  # imports and templates, outside the figure
    before = peak_rss_mb()
    start, cpu = time.perf_counter(), _cpu()
    response = client.get(f"/diff/?a={spec['a']}&b={spec['b']}")
    size = _consume(response)
    return {
        "seconds": time.perf_counter() - start, "cpu": _cpu() - cpu, "status": response.status_code,
        "bytes": size, "rss_before_mb": before,
    }


def diff_baseline(spec: dict) -> dict:
    """The database's floor for a diff: both runs' rows read in seq order by a raw cursor, kept nowhere."""
    from django.db import connection

    sql = ('SELECT run_id, seq, action, reason, "values", cell FROM viewer_decision '
           "WHERE run_id IN (%s, %s) ORDER BY run_id, seq")
    rows = 0
    start, cpu = time.perf_counter(), _cpu()
    with connection.cursor() as cursor:
        cursor.execute(sql, [spec["a"], spec["b"]])
        while batch := cursor.fetchmany(5000):
            rows += len(batch)
    return {"seconds": time.perf_counter() - start, "cpu": _cpu() - cpu, "rows": rows}


def _consume(response) -> int:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return len(body)


TASKS = {"ingest": ingest, "baseline": baseline, "export": export, "export_baseline": export_baseline,
         "warm": warm, "first_requests": first_requests, "diff": diff, "diff_baseline": diff_baseline}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    _setup()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # may carry over exec
    result = TASKS[spec["task"]](spec)
    result["maxrss_mb"] = peak_rss_mb()
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if child != children_before:  # a child ran (an import's reading process): both peaks, shared pages twice
        result["maxrss_mb"] += child / 1024
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
