"""Real worker processes (manage.py worker) importing queued jobs, on the embedded database backend
(SQLite, or PostgreSQL when DATABASE_URL says so) and on Redis through RQ: jobs complete, progress
moves while they run, two workers never import the same job, and a worker killed mid-import leaves
no half run (its job is failed when the next worker notices)."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import manage, own_database, start, stop

pytestmark = pytest.mark.slow

GEN_LOGS = Path(os.environ.get("REPLAYWEB_SAMPLES", Path(__file__).resolve().parents[2] / "shared" / "samples")).parent / "tools" / "gen_logs.py"
REDIS_URL = os.environ.get("REPLAYWEB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_ready() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except Exception:
        return False


@pytest.fixture(params=["database", "redis"])
def queue_env(request, tmp_path):
    """(environment for manage.py and workers, database vendor), with the admin user made."""
    if request.param == "redis" and not redis_ready():
        if os.environ.get("REPLAYWEB_REQUIRE_REDIS"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    with own_database(tmp_path, prefix="replayweb_jobs") as (env, vendor):
        (tmp_path / "var").mkdir()
        env.update(REPLAYWEB_TASKS=request.param, REPLAYWEB_IMPORT_SLICE="2000")
        if request.param == "redis":
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()
            env["REPLAYWEB_REDIS_URL"] = REDIS_URL
        else:
            env.pop("REPLAYWEB_REDIS_URL", None)
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "ensure_admin")
        env["_vendor"] = vendor
        yield env
        if request.param == "redis":
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()


def query(env, sql: str) -> list[tuple]:
    """Read the workers' database directly (no Django in this process for it)."""
    if env["_vendor"] == "sqlite":
        with sqlite3.connect(Path(env["REPLAYWEB_VAR_DIR"]) / "replayweb.sqlite3", timeout=30) as conn:
            return conn.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        return conn.execute(sql).fetchall()


def jobs_now(env) -> list[dict]:
    rows = query(env, "SELECT id, status, stage, bytes_read, total_bytes, decisions, run_ids, worker, message "
                      "FROM viewer_importjob ORDER BY id")
    keys = ("id", "status", "stage", "bytes_read", "total_bytes", "decisions", "run_ids", "worker", "message")
    out = []
    for row in rows:
        job = dict(zip(keys, row))
        job["run_ids"] = job["run_ids"] if isinstance(job["run_ids"], list) else json.loads(job["run_ids"])
        out.append(job)
    return out


def make_logs(tmp_path, count, decisions, seed=1) -> list[Path]:
    paths = []
    for i in range(count):
        path = tmp_path / f"session_{seed}_{i}.jsonl"
        subprocess.run([sys.executable, str(GEN_LOGS), "session", str(decisions), str(path), "--seed", str(seed * 100 + i)],
                       check=True)
        paths.append(path)
    return paths


def queue(env, paths) -> None:
    out = manage(env, "import_logs", "--detach", *map(str, paths))
    assert out.count("queued") == len(paths), out


def wait_for(env, done, timeout=300, every=0.05, explain=lambda: "") -> list[list[dict]]:
    """Poll the jobs until done(jobs); returns every snapshot seen."""
    seen, deadline = [], time.monotonic() + timeout
    while True:
        jobs = jobs_now(env)
        seen.append(jobs)
        if done(jobs):
            return seen
        assert time.monotonic() < deadline, f"{jobs}\n{explain()}"
        time.sleep(every)


def test_two_workers_import_every_job_once_and_progress_moves(queue_env, tmp_path):
    paths = make_logs(tmp_path, 3, 30_000)
    queue(queue_env, paths)
    assert {j["status"] for j in jobs_now(queue_env)} == {"queued"}
    assert query(queue_env, "SELECT COUNT(*) FROM viewer_run") == [(0,)]  # nothing imports without a worker
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [start(queue_env, "worker", log=open(log, "w")) for log in logs]
    try:
        seen = wait_for(queue_env, lambda jobs: all(j["status"] not in ("queued", "running") for j in jobs),
                        explain=lambda: "\n".join(log.read_text()[-2000:] for log in logs))
    finally:
        for w in workers:
            stop(w)
    final = seen[-1]
    assert [j["status"] for j in final] == ["done"] * 3, final
    assert all(len(j["run_ids"]) == 1 and j["decisions"] == 30_000 for j in final)
    runs = query(queue_env, "SELECT id, decision_count, status FROM viewer_run ORDER BY id")
    assert sorted(r[0] for r in runs) == sorted(j["run_ids"][0] for j in final)
    assert all(r[1] == 30_000 and r[2] == "ready" for r in runs)
    assert query(queue_env, "SELECT COUNT(*) FROM viewer_decision") == [(90_000,)]
    midway = [j for jobs in seen for j in jobs if j["status"] == "running" and 0 < j["bytes_read"] < j["total_bytes"]]
    assert midway, "no snapshot saw a job part-way"
    assert len({(j["id"], j["decisions"]) for j in midway}) > 1  # the bar moves


def test_a_worker_killed_mid_import_leaves_no_half_run(queue_env, tmp_path):
    queue(queue_env, make_logs(tmp_path, 1, 120_000, seed=7))
    worker = start(queue_env, "worker")
    try:
        wait_for(queue_env, lambda jobs: jobs[0]["status"] == "running" and jobs[0]["decisions"] >= 4000)
    finally:
        stop(worker, sig=signal.SIGKILL)
    assert query(queue_env, "SELECT status FROM viewer_run") == [("importing",)]  # hidden, not yet removed
    queue_env["REPLAYWEB_JOB_STALE_SECONDS"] = "2"
    time.sleep(3)
    second = start(queue_env, "worker", log=open(tmp_path / "second.log", "w"))  # it reaps quiet jobs first
    try:
        final = wait_for(queue_env, lambda jobs: jobs[0]["status"] == "failed", timeout=60)[-1]
        time.sleep(1)  # let it take (and find nothing in) the queue: the next worker must not import it either
    finally:
        stop(second)
    assert "stopped during the import" in final[0]["message"]
    assert query(queue_env, "SELECT COUNT(*) FROM viewer_run") == [(0,)]
    assert query(queue_env, "SELECT COUNT(*) FROM viewer_decision") == [(0,)]
