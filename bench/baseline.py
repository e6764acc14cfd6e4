"""The import baseline: what a plain script does with the same file on the same machine.

A streaming parse (ijson's C backend for the one-document DynoAI file, orjson per line for
JSONL and study logs), a handful of dict lookups per record, and `sqlite3.executemany` in
batches into a table with the same columns and the same five indexes as viewer_decision, in
one transaction, with the app's own journal settings (WAL, synchronous=NORMAL). On PostgreSQL
the same rows go through psycopg's COPY into an equally indexed table.

No Django here: this is the machine's limit that our figure is quoted against.
"""
from __future__ import annotations

import gzip
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson

BATCH = 5000
COLUMNS = (
    "run_id", "seq", "line", "ts", "t_ms", "action", "reason", "values", "cell", "rpm", "kpa", "cylinder",
    "rpm_index", "kpa_index", "round", "agent", "metric", "text", "raw",
)
INDEXES = (
    "CREATE UNIQUE INDEX {t}_run_seq ON {t} (run_id, seq)",
    "CREATE INDEX {t}_run_action ON {t} (run_id, action)",
    "CREATE INDEX {t}_run_ts ON {t} (run_id, ts)",
    "CREATE INDEX {t}_run_cell ON {t} (run_id, rpm, kpa)",
    "CREATE INDEX {t}_run_round_agent ON {t} (run_id, round, agent)",
)
AGENT_KEYS = ("agent_id", "player_id", "character_id", "enemy_id", "agent")
METRIC_KEYS = ("afr_error_pct", "result", "score", "clamped_count")


def _dyno_rows(path: Path) -> Iterator[tuple]:
    import ijson

    with open(path, "rb") as f:
        for seq, d in enumerate(ijson.items(f, "decisions.item", use_float=True)):
            values = d.get("values") or {}
            cell = d.get("cell")
            metric = None
            for key in METRIC_KEYS:
                if key in values:
                    metric = values[key]
                    break
            c = cell or {}
            yield (
                1, seq, None, d.get("timestamp"), None, d["action"], d.get("reason", ""),
                orjson.dumps(values).decode(), None if cell is None else orjson.dumps(cell).decode(),
                c.get("rpm"), c.get("kpa"), c.get("cylinder"), c.get("rpm_index"), c.get("kpa_index"),
                None, None, metric, "", orjson.dumps(d).decode(),
            )


def _session_rows(path: Path) -> Iterator[tuple]:
    with open(path, "rb") as f:
        for seq, line in enumerate(f):
            text = line.rstrip(b"\n").decode()
            e = orjson.loads(text)
            agent = None
            for key in AGENT_KEYS:
                if key in e:
                    agent = e[key]
                    break
            # Like ours, an LLM call's prompt and response go to `text` too, for search.
            llm = ""
            if "response" in e:
                prompt = e.get("prompt")
                if isinstance(prompt, list):
                    prompt = "\n".join(m.get("content", "") for m in prompt if isinstance(m, dict))
                llm = f"{prompt}\n{e['response']}"
            yield (
                1, seq, seq + 1, e.get("ts"), None, e["event_type"], "", orjson.dumps(e).decode(), None,
                None, None, None, None, None, e.get("round"), agent, None, llm, text,
            )


def _study_rows(path: Path) -> Iterator[tuple]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        for seq, line in enumerate(f):
            text = line.rstrip(b"\n").decode()
            body, _, when = text.rpartition("\t")
            e = orjson.loads(body)
            client = e.get("client") or {}
            yield (
                1, seq, seq + 1, when, None, client.get("event", ""), "", orjson.dumps(client).decode(), None,
                None, None, None, None, None, None, (client.get("auth") or {}).get("user_id"), None, "", text,
            )


ROWS = {"dynoai": _dyno_rows, "session": _session_rows, "study": _study_rows}


def sqlite_import(kind: str, path: Path, db_path: Path) -> int:
    """Parse `path` and insert its rows into a fresh indexed table in `db_path`; returns the count."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    con = sqlite3.connect(db_path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute(
            "CREATE TABLE decision (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, seq INTEGER NOT NULL, "
            "line INTEGER, ts TEXT, t_ms REAL, action TEXT NOT NULL, reason TEXT NOT NULL, "
            '"values" TEXT NOT NULL, cell TEXT, rpm INTEGER, kpa INTEGER, cylinder TEXT, rpm_index INTEGER, '
            'kpa_index INTEGER, "round" INTEGER, agent TEXT, metric REAL, text TEXT NOT NULL, raw TEXT NOT NULL)'
        )
        for ddl in INDEXES:
            con.execute(ddl.format(t="decision"))
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        sql = f"INSERT INTO decision ({cols}) VALUES ({', '.join('?' * len(COLUMNS))})"
        count = 0
        con.execute("BEGIN IMMEDIATE")
        batch = []
        for row in ROWS[kind](path):
            batch.append(row)
            if len(batch) >= BATCH:
                con.executemany(sql, batch)
                count += len(batch)
                batch = []
        con.executemany(sql, batch)
        count += len(batch)
        con.execute("COMMIT")
        return count
    finally:
        con.close()


def postgres_import(kind: str, path: Path, conninfo: str) -> int:
    """The same rows through COPY into a fresh indexed table; dropped again afterwards."""
    import psycopg

    table = "bench_baseline_decision"
    with psycopg.connect(conninfo) as con:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(
            f"CREATE TABLE {table} (id bigserial PRIMARY KEY, run_id bigint NOT NULL, seq integer NOT NULL, "
            "line integer, ts timestamptz, t_ms double precision, action varchar(500) NOT NULL, "
            'reason text NOT NULL, "values" jsonb NOT NULL, cell jsonb, rpm integer, kpa integer, '
            'cylinder varchar(500), rpm_index integer, kpa_index integer, "round" integer, agent varchar(500), '
            "metric double precision, text text NOT NULL, raw text NOT NULL)"
        )
        for ddl in INDEXES:
            con.execute(ddl.format(t=table))
        con.commit()
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        count = 0
        try:
            with con.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in ROWS[kind](path):
                    copy.write_row(row)
                    count += 1
            con.commit()
        finally:
            con.execute(f"DROP TABLE IF EXISTS {table}")
            con.commit()
        return count
