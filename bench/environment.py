"""A fresh database and generated inputs for one bench run.

The database is never the developer's: a SQLite file in the run's temporary folder, or, when
DATABASE_URL names PostgreSQL, a database `replayweb_bench` (BENCH_PG_NAME) created on that server
for the run and dropped after it. Inputs come from ../shared/tools/gen_logs.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
GEN_LOGS = Path(os.environ.get("BENCH_GEN_LOGS", ROOT.parent / "shared" / "tools" / "gen_logs.py"))
PG_NAME = os.environ.get("BENCH_PG_NAME", "replayweb_bench")  # another name for a second bench at once
# gen_logs.py kind and file name for each run kind
KINDS = {"dynoai": ("dyno", "session_replay.json"), "session": ("session", "session.jsonl"),
         "study": ("study", "bench.study.log.gz")}


@dataclass
class Database:
    vendor: str  # "sqlite" or "postgresql"
    env: dict[str, str] = field(default_factory=dict)  # for this process and every worker
    conninfo: str = ""  # PostgreSQL: the bench database, for the COPY baseline
    admin_conninfo: str = ""  # PostgreSQL: where CREATE/DROP DATABASE run

    def drop(self) -> None:
        if self.vendor == "postgresql":
            _pg_admin(self.admin_conninfo, f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")


def _pg_admin(conninfo: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as con:
        con.execute(sql)


def fresh_database(tmp: Path) -> Database:
    env = {
        # Production-like: no query log, no debug pages; cookies work over the test client's http.
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + os.urandom(16).hex(),  # production refuses to start without one
        "REPLAYWEB_SECURE_COOKIES": "0",
        "REPLAYWEB_SSL_REDIRECT": "0",
        "REPLAYWEB_LOG_LEVEL": "ERROR",
        "REPLAYWEB_VAR_DIR": str(tmp / "var"),
        "DJANGO_SETTINGS_MODULE": "replayweb.settings",
        # No worker runs beside the bench: a task (a big run's replay index) runs where it is
        # enqueued, so the request that asks for it is timed building it.
        "REPLAYWEB_TASKS": "immediate",
    }
    (tmp / "var").mkdir(parents=True, exist_ok=True)
    url = os.environ.get("DATABASE_URL", "")
    scheme = urlsplit(url).scheme
    if scheme.startswith("postgres") or scheme == "pgsql":
        parts = urlsplit(url)
        bench_url = urlunsplit((parts.scheme, parts.netloc, "/" + PG_NAME, parts.query, ""))
        admin_url = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
        db = Database("postgresql", env, conninfo=urlunsplit(("postgresql", parts.netloc, "/" + PG_NAME, "", "")),
                      admin_conninfo=admin_url)
        db.drop()
        _pg_admin(admin_url, f"CREATE DATABASE {PG_NAME}")
        env["DATABASE_URL"] = bench_url
        return db
    env["DATABASE_URL"] = f"sqlite:///{tmp / 'var' / 'bench.sqlite3'}"
    return Database("sqlite", env)


def generate(kind: str, size: int, folder: Path, *, seed: int = 1, variant: float = 0.0) -> Path:
    """gen_logs.py output for (kind, size), made once per bench run."""
    gen_kind, name = KINDS[kind]
    tag = f"{gen_kind}-{size}-s{seed}" + (f"-v{variant:g}" if variant else "")
    out = folder / tag / name
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(GEN_LOGS), gen_kind, str(size), str(out), "--seed", str(seed)]
        if variant:
            cmd += ["--variant", str(variant)]
        subprocess.run(cmd, check=True)
    return out
