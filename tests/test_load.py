"""Load: 20 concurrent clients uploading and reading against a real multi-process server.

gunicorn (4 workers) on 127.0.0.1 with production-like settings and a database of its own: a fresh
SQLite file (WAL) in a temporary REPLAYWEB_VAR_DIR, or, when DATABASE_URL is PostgreSQL, a fresh
database on that server. Half the clients are browser sessions (login form, /upload/ with the CSRF
token, pages, fragments, CSV export), half use API tokens (POST /api/runs, summary, decisions,
replay). Each also re-uploads a file (a duplicate, never a second run) and asks for another user's
run (a 404). Afterwards every upload must be there with its exact decision count, and nothing else.

REPLAYWEB_LOAD_SECONDS sets how long the clients run (default 20; the issue's figure is 60).

The second test (issue 14.6) imports a big file on SQLite (REPLAYWEB_LOAD_IMPORT_DECISIONS, default
1,000,000) with `import_logs` while ten users browse, make API tokens, use them for the first time and
open replays with new filters: the worker holds SQLite's write lock for a slice at a time (50,000
decisions), and nothing may fail. Uploads in both tests go through jobs imported by two real workers.
"""

import hashlib
import json
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from processes import BIN, ROOT, free_port, manage, own_database, start, stop

requests = pytest.importorskip("requests")

pytestmark = pytest.mark.slow

CLIENTS = 20
USERS = 5
WORKERS = 4
JOB_WORKERS = 2
SECONDS = float(os.environ.get("REPLAYWEB_LOAD_SECONDS", "20"))
PASSWORD = "load-pass-123"


@pytest.fixture
def database_env(tmp_path):
    with own_database(tmp_path, prefix="replayweb_load") as found:
        yield found


SETUP_USERS = """
import json
from django.contrib.auth.models import User
from viewer.models import ApiToken
out = {}
for i in range(%d):
    user = User.objects.create_user(f"load{i}", password=%r)
    out[user.username] = ApiToken.issue(user, name="load")[1]
print(json.dumps(out))
""" % (USERS, PASSWORD)


@pytest.fixture
def server(database_env, tmp_path):
    env, vendor = database_env
    (tmp_path / "var").mkdir()
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        REPLAYWEB_SSL_REDIRECT="0",
        REPLAYWEB_SECURE_COOKIES="0",
        REPLAYWEB_HSTS_SECONDS="0",
    )
    env["REPLAYWEB_TASKS"] = "database"  # uploads go through jobs, imported by real worker processes
    manage(env, "migrate", "--noinput", "-v", "0")
    tokens = json.loads(manage(env, "shell", "-c", SETUP_USERS).strip().splitlines()[-1])
    worker_log = open(tmp_path / "workers.log", "w+")
    job_workers = [start(env, "worker", log=worker_log) for _ in range(JOB_WORKERS)]
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "w+")
    # As the README starts it: gunicorn.conf.py, here with WORKERS workers and no access log.
    env.update(REPLAYWEB_BIND=f"127.0.0.1:{port}", REPLAYWEB_WORKERS=str(WORKERS), REPLAYWEB_ACCESS_LOG="/dev/null")
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--graceful-timeout", "5"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/login/", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield {"base": base, "tokens": tokens, "log": log, "vendor": vendor, "env": env, "worker_log": worker_log}
    finally:
        for w in job_workers:
            stop(w)
        worker_log.close()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# -- log files of known size -----------------------------------------------------------------------


def make_log(rng: random.Random, tag: str) -> tuple[str, bytes, int]:
    """(file name, bytes, decision count): unique content, so every file is a new run."""
    kind = rng.choice(["dynoai", "session", "study"])
    n = rng.randint(1, 150)
    if kind == "dynoai":
        decisions = [
            {
                "timestamp": f"2025-12-15T17:28:{i // 1000:02d}.{i % 1000:03d}Z",
                "action": rng.choice(["AFR_CORRECTION", "GRADIENT_LIMITING", "CLAMPING_APPLIED"]),
                "reason": f"{tag} decision {i}",
                "values": {"afr_error_pct": rng.uniform(-9, 9)},
                "cell": {"rpm": rng.choice([1500, 2000, 2500]), "kpa": rng.choice([35, 65, 95])},
            }
            for i in range(n)
        ]
        data = json.dumps({"run_id": tag, "total_decisions": n, "decisions": decisions}, indent=1)
        return f"{tag}_session_replay.json", data.encode(), n
    if kind == "session":
        lines = [json.dumps({"event_type": "session_start", "ts": "2025-10-31T15:32:23", "session": tag})]
        lines += [
            json.dumps(
                {
                    "event_type": rng.choice(["round_start", "action_declared", "llm_call"]),
                    "ts": f"2025-10-31T15:{33 + i // 60:02d}:{i % 60:02d}",
                    "round": 1 + i // 20,
                    "agent_id": f"agent{i % 3}",
                    "narration": f"{tag} event {i}",
                }
            )
            for i in range(n - 1)
        ]
        return f"{tag}.jsonl", ("\n".join(lines) + "\n").encode(), n
    lines = [
        json.dumps(
            {
                "client": {
                    "event": "keystroke",
                    "auth": {"safe_user_id": "gc-1", "user_id": "gc-1"},
                    "note": f"{tag} {i}",
                    "source": "org.mitros.writing_analytics",
                },
                "server": {"time": 1709662961.0 + i},
            },
            sort_keys=True,
        )
        + f"\t2024-03-05T18:22:{i % 60:02d}.{i:06d}"
        for i in range(n)
    ]
    return (
        f"2024-03-05T18-22-30.004512-{rng.randint(1, 10**9):010d}-gc-1-2.study.log",
        ("\n".join(lines) + "\n").encode(),
        n,
    )


# -- clients ---------------------------------------------------------------------------------------


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.expected: dict[str, dict[str, int]] = defaultdict(dict)  # user -> sha256 -> count
        self.runs: dict[str, list[int]] = defaultdict(list)  # user -> run ids
        self.latency: dict[str, list[float]] = defaultdict(list)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def timed(self, what: str, started: float) -> None:
        with self.lock:
            self.latency[what].append(time.monotonic() - started)


class LoadClient(threading.Thread):
    def __init__(self, index: int, server: dict, tally: Tally, stop_at: float):
        super().__init__(daemon=True)
        self.index, self.server, self.tally, self.stop_at = index, server, tally, stop_at
        self.user = f"load{index % USERS}"
        self.browser = index % 2 == 0
        self.http = requests.Session()
        self.rng = random.Random(index)
        self.base = server["base"]

    def call(self, what: str, method: str, path: str, expect: tuple[int, ...], **kwargs):
        started = time.monotonic()
        try:
            response = self.http.request(
                method, self.base + path, timeout=120, allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            self.tally.error(f"client {self.index}: {method} {path}: {exc}")
            return None
        self.tally.timed(what, started)
        if response.status_code not in expect:
            self.tally.error(
                f"client {self.index}: {method} {path}: HTTP {response.status_code}: {response.text[:200]}"
            )
            return None
        return response

    def run(self):
        try:
            if self.browser:
                self.log_in()
            else:
                self.http.headers["Authorization"] = "Bearer " + self.server["tokens"][self.user]
            n = 0
            while time.monotonic() < self.stop_at:
                name, data, count = make_log(self.rng, f"c{self.index}n{n}")
                run_id = self.upload(name, data, count, duplicate=False)
                if run_id:
                    self.read(run_id, count)
                if n == 1:
                    self.upload(name, data, count, duplicate=True)
                    self.foreign()
                n += 1
        except Exception as exc:  # a bug in the client is an error too, not a silent thread death
            self.tally.error(f"client {self.index}: {exc!r}")

    def log_in(self):
        page = self.call("login", "GET", "/login/", (200,))
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        self.call(
            "login",
            "POST",
            "/login/",
            (302,),
            data={"csrfmiddlewaretoken": token, "username": self.user, "password": PASSWORD},
        )
        self.csrf = self.http.cookies["csrftoken"]

    def upload(self, name: str, data: bytes, count: int, *, duplicate: bool) -> int | None:
        """Upload through the page or the API (202: queued), then follow the job to its result."""
        files = [("files" if self.browser else "file", (name, data, "application/octet-stream"))]
        if self.browser:
            response = self.call("upload", "POST", "/upload/", (202,), files=files,
                                 headers={"X-CSRFToken": self.csrf, "HX-Request": "true"})
            if response is None:
                return None
            found = re.search(r'data-job="(\d+)"', response.text)
            if found is None:
                self.tally.error(f"client {self.index}: upload {name}: no job: {response.text[:300]}")
                return None
            job_id = int(found[1])
        else:
            response = self.call("upload", "POST", "/api/runs", (202,), files=files)
            if response is None:
                return None
            [job] = response.json()["jobs"]
            job_id = job["id"]
        job = self.follow(job_id)
        if job is None:
            return None
        [result] = job["results"] or [{"status": job["status"], "message": job["message"]}]
        if result["status"] != ("duplicate" if duplicate else "imported") or result.get("count") != count:
            self.tally.error(f"client {self.index}: upload {name}: {result}")
            return None
        run_id = result["run_id"]
        if not duplicate:
            with self.tally.lock:
                self.tally.expected[self.user][hashlib.sha256(data).hexdigest()] = count
                self.tally.runs[self.user].append(run_id)
        return run_id

    def follow(self, job_id: int) -> dict | None:
        """GET /api/jobs/{id} until the job has ended (as the runs list polls it)."""
        started = time.monotonic()
        while True:
            response = self.call("job", "GET", f"/api/jobs/{job_id}", (200,))
            if response is None:
                return None
            job = response.json()
            if job["status"] not in ("queued", "running"):
                self.tally.timed("job-done", started)
                return job
            if time.monotonic() - started > 300:
                self.tally.error(f"client {self.index}: job {job_id} still {job['status']} after 300 s")
                return None
            time.sleep(0.2)

    def read(self, run_id: int, count: int):
        if self.browser:
            self.call("page", "GET", "/", (200,))
            self.call("page", "GET", f"/runs/{run_id}/", (200,))
            self.call(
                "fragment",
                "GET",
                f"/runs/{run_id}/?q=decision",
                (200,),
                headers={"HX-Request": "true", "HX-Target": "run-view"},
            )
            self.call("page", "GET", f"/runs/{run_id}/decisions/0/", (200,))
            csv = self.call("export", "GET", f"/runs/{run_id}/export.csv", (200,))
            if csv is not None and csv.text.count("\n") != count + 1:
                self.tally.error(
                    f"client {self.index}: run {run_id}: CSV has {csv.text.count(chr(10)) - 1} rows, "
                    f"not {count}"
                )
            self.call("page", "GET", f"/runs/{run_id}/replay/?step=1", (200,))
        else:
            summary = self.call("api", "GET", f"/api/runs/{run_id}/summary", (200,))
            if summary is not None and summary.json()["matching"] != count:
                self.tally.error(f"client {self.index}: run {run_id}: summary {summary.json()}, not {count}")
            items = self.call("api", "GET", f"/api/runs/{run_id}/decisions?limit=500", (200,))
            if items is not None and len(items.json()["items"]) != count:
                self.tally.error(
                    f"client {self.index}: run {run_id}: {len(items.json()['items'])} items, not {count}"
                )
            self.call("api", "GET", f"/api/runs/{run_id}/replay?step=1", (200,))

    def foreign(self):
        """Another user's run, if one exists yet: a 404 while everybody writes."""
        with self.tally.lock:
            others = [r for u, runs in self.tally.runs.items() if u != self.user for r in runs]
        if others:
            path = f"/runs/{others[0]}/" if self.browser else f"/api/runs/{others[0]}"
            self.call("foreign", "GET", path, (404,))


def all_runs(base: str, token: str) -> dict[str, int]:
    """sha256 -> decision_count of every run the token's user has, through the API's pages."""
    found, after = {}, None
    while True:
        params = {"limit": 100, **({"after": after} if after else {})}
        page = requests.get(
            base + "/api/runs", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ).json()
        for run in page["items"]:
            assert run["sha256"] not in found, f"two runs of one file: {run}"
            found[run["sha256"]] = run["decision_count"]
        after = page["next"]
        if after is None:
            return found


def test_twenty_clients_upload_and_read_at_once_without_an_error(server):
    tally = Tally()
    stop_at = time.monotonic() + SECONDS
    clients = [LoadClient(i, server, tally, stop_at) for i in range(CLIENTS)]
    started = time.monotonic()
    for c in clients:
        c.start()
    for c in clients:
        c.join(timeout=SECONDS + 300)
    elapsed = time.monotonic() - started
    assert not any(c.is_alive() for c in clients), "a client hung"

    uploads = sum(len(v) for v in tally.expected.values())
    requests_made = sum(len(v) for v in tally.latency.values())
    lines = [
        f"load on {server['vendor']}: {CLIENTS} clients, {WORKERS} workers, {elapsed:.1f} s, "
        f"{requests_made} requests ({requests_made / elapsed:.1f}/s), {uploads} uploads, "
        f"{len(tally.errors)} errors"
    ]
    for what, times in sorted(tally.latency.items()):
        times = sorted(times)
        lines.append(
            f"  {what:9} n={len(times):5}  median {statistics.median(times) * 1000:7.1f} ms  "
            f"p95 {times[int(len(times) * 0.95)] * 1000:7.1f} ms  max {times[-1] * 1000:7.1f} ms"
        )
    print("\n".join(lines))

    assert not tally.errors, "\n".join(tally.errors[:30])
    assert uploads >= CLIENTS, "too few uploads to mean anything"
    for user, token in server["tokens"].items():
        assert all_runs(server["base"], token) == tally.expected[user], (
            f"{user}'s runs differ from the uploads"
        )
    for name in ("log", "worker_log"):
        server[name].flush()
        server[name].seek(0)
        log = server[name].read()
        assert "Traceback" not in log and "Internal Server Error" not in log, log[-3000:]


# -- issue 14.6: readers and small writers beside a long SQLite import ------------------------------

IMPORT_DECISIONS = int(os.environ.get("REPLAYWEB_LOAD_IMPORT_DECISIONS", "1000000"))
IMPORT_USERS = 10


def write_big_session_log(path: Path, n: int) -> None:
    with open(path, "w") as f:
        f.write('{"event_type": "session_start", "ts": "2025-10-31T15:32:23", "session": "big"}\n')
        for i in range(n - 1):
            f.write('{"event_type": "action_declared", "ts": "2025-10-31T15:%02d:%02d.%06d", "round": %d, '
                    '"agent_id": "agent%d", "narration": "event %d"}\n'
                    % (33 + (i // 60_000_000) % 26, (i // 1_000_000) % 60, i % 1_000_000, 1 + i // 1000, i % 7, i))


def sqlite_write_locked(path: Path) -> bool:
    import sqlite3

    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


class BesideImport(LoadClient):
    """A browser user while the import runs: pages, a fragment, a decision, a CSV, a new API token
    (made through /tokens/ and used at once: its first use records last_used), a replay with a new filter."""

    def __init__(self, index, server, tally, importing, run_id):
        super().__init__(index, server, tally, stop_at=0)
        self.user = f"load{index % USERS}"
        self.browser = True
        self.importing, self.run_id = importing, run_id
        self.cycles = 0

    def run(self):
        try:
            self.log_in()
            while True:
                self.cycle()
                self.cycles += 1
                if not self.importing():
                    return
        except Exception as exc:
            self.tally.error(f"client {self.index}: {exc!r}")

    def cycle(self):
        r = self.run_id[self.user]
        self.call("page", "GET", "/", (200,))
        self.call("page", "GET", f"/runs/{r}/", (200,))
        self.call("fragment", "GET", f"/runs/{r}/?q=event", (200,), headers={"HX-Request": "true", "HX-Target": "run-view"})
        self.call("export", "GET", f"/runs/{r}/export.csv", (200,))
        page = self.call("tokens", "GET", "/tokens/", (200,))
        if page is not None:
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
            made = self.call("token-create", "POST", "/tokens/", (303,),  # post/redirect/get
                             data={"csrfmiddlewaretoken": csrf, "name": f"c{self.index}-{self.cycles}"})
            if made is not None:
                made = self.call("tokens", "GET", "/tokens/", (200,))  # shows the new token, once
            token = re.search(r'<code class="token">(rw_[^<]+)</code>', made.text) if made is not None else None
            if made is not None and token is None:
                self.tally.error(f"client {self.index}: no new token on the page")
            if token:
                api = requests.Session()
                api.headers["Authorization"] = "Bearer " + token[1]
                started = time.monotonic()
                response = api.get(self.base + "/api/runs", timeout=300)
                self.tally.timed("token-first-use", started)
                if response.status_code != 200:
                    self.tally.error(f"client {self.index}: first use of a token: HTTP {response.status_code}")
        self.call("replay", "GET", f"/runs/{r}/replay/?step=1&q=event+{self.index}{self.cycles}", (200,))


@pytest.mark.skipif(os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="SQLite's write lock")
def test_ten_users_browse_make_tokens_and_open_replays_while_a_big_import_runs(server, tmp_path):
    big = tmp_path / "big_session.jsonl"
    write_big_session_log(big, IMPORT_DECISIONS)
    run_id = {}
    for i in range(USERS):  # a small run each, to browse
        user = f"load{i}"
        name, data, count = make_log(random.Random(i), f"small{i}")
        response = requests.post(server["base"] + "/api/runs", files=[("file", (name, data))],
                                 headers={"Authorization": "Bearer " + server["tokens"][user]}, timeout=60)
        client = LoadClient(0, server, Tally(), 0)
        client.http.headers["Authorization"] = "Bearer " + server["tokens"][user]
        run_id[user] = client.follow(response.json()["jobs"][0]["id"])["run_id"]
    db = Path(server["env"]["REPLAYWEB_VAR_DIR"]) / "replayweb.sqlite3"
    started = time.monotonic()
    # import_logs queues the file and follows its job; a worker imports it, a slice per transaction.
    importer = subprocess.Popen([sys.executable, "manage.py", "import_logs", str(big), "--user", "load0"],
                                cwd=ROOT, env=server["env"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while not sqlite_write_locked(db):  # the worker is writing a slice
        assert importer.poll() is None, importer.stdout.read()
        time.sleep(0.05)
    locked_at = time.monotonic()
    tally = Tally()
    users = [BesideImport(i, server, tally, lambda: importer.poll() is None, run_id) for i in range(IMPORT_USERS)]
    for u in users:
        u.start()
    output, _ = importer.communicate(timeout=3600)
    import_done = time.monotonic()
    for u in users:
        u.join(timeout=600)
    assert importer.returncode == 0, output
    requests_made = sum(len(v) for v in tally.latency.values())
    # How long the import kept writers waiting shows in token-create's longest wait.
    assert "imported" in output, output
    lines = [f"beside a {IMPORT_DECISIONS:,}-decision import ({import_done - started:.0f} s, "
             f"{import_done - locked_at:.0f} s of it writing): {IMPORT_USERS} users, {requests_made} requests, "
             f"{sum(u.cycles for u in users)} cycles, {len(tally.errors)} errors"]
    for what, times in sorted(tally.latency.items()):
        times = sorted(times)
        lines.append(f"  {what:15} n={len(times):4}  median {statistics.median(times) * 1000:8.1f} ms  "
                     f"max {times[-1] * 1000:8.1f} ms")
    print("\n".join(lines))
    assert not tally.errors, "\n".join(tally.errors[:30])  # replays too: their indexes are built by the workers
    for name in ("log", "worker_log"):
        server[name].flush()
        server[name].seek(0)
        log = server[name].read()
        assert "Traceback" not in log and "Internal Server Error" not in log, log[-3000:]
