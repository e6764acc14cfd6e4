"""DecisionWriter: a run's decisions into the database, in batches (ingest and follow use it)."""
from __future__ import annotations

import datetime as _dt

from django.conf import settings
from django.db import connection

from .readers.base import Decision


COLUMNS = (
    "run_id", "seq", "line", "ts", "t_ms", "action", "reason", "values", "cell", "rpm", "kpa", "cylinder",
    "rpm_index", "kpa_index", "round", "agent", "metric", "text", "raw",
)


class DecisionWriter:
    """Batched raw inserts inside the caller's transaction: `executemany` on SQLite, COPY on
    PostgreSQL. Both are several times faster than bulk_create, which builds a model instance
    per row (PERF.md); `make bench` measures this writer against a plain script.

    On PostgreSQL one COPY stays open for the whole file, so the server stores rows while the
    reader parses the next ones (a COPY per batch made each wait for the other). The connection
    takes no other query until `close()`; used as a context manager, the writer ends the COPY on
    the way out, aborting it on an error so that the transaction can roll back.
    """

    def __init__(self, run_pk: int):
        self.run_pk = run_pk
        self.batch: list[tuple] = []
        self.count = 0
        self.first_ts = None
        self.last_ts = None
        self.batch_size = settings.REPLAYWEB_INSERT_BATCH
        self.vendor = connection.vendor
        self.adapt_ts = connection.ops.adapt_datetimefield_value
        # Django's adapter for SQLite is make_naive + str(); readers give aware UTC datetimes, so
        # dropping the zone is the same text for a tenth of the cost.
        self.utc_text = self.vendor == "sqlite" and connection.timezone_name == "UTC"
        # Readers hand the same datetime object to consecutive decisions with the same stamp.
        self._ts_obj = None
        self._ts_value = self._t_ms = None
        table = connection.ops.quote_name("viewer_decision")
        cols = ", ".join(connection.ops.quote_name(c) for c in COLUMNS)
        self.copy_sql = f"COPY {table} ({cols}) FROM STDIN" if self.vendor == "postgresql" else None
        json_cast = "%s::jsonb" if self.vendor == "postgresql" else "%s"
        marks = ", ".join(json_cast if c in ("values", "cell") else "%s" for c in COLUMNS)
        self.sql = f"INSERT INTO {table} ({cols}) VALUES ({marks})"
        self._copy = None  # (Django cursor, psycopg Copy manager, Copy) while a COPY is open

    def __enter__(self) -> DecisionWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._end_copy(exc_type, exc, tb)

    def add(self, d: Decision) -> None:
        self.batch.append(self.row_of(d))
        self.count += 1
        if len(self.batch) >= self.batch_size:
            self.flush()

    def add_rows(self, rows: list) -> None:
        """Rows made by `row_of`, or on PostgreSQL their COPY lines (`copy_line`: the import's reading
        process makes them, viewer/pipeline.py)."""
        self.batch.extend(rows)
        self.count += len(rows)
        if len(self.batch) >= self.batch_size:
            self.flush()

    def row_of(self, d: Decision) -> tuple:
        """The row inserted for `d` (its time as the database's text, its elapsed ms from the first
        decision's time, values and cell as JSON text); notes the first and last times."""
        ts = d.ts
        if ts is None:
            ts_value = t_ms = None
        else:
            if ts is not self._ts_obj:
                if self.first_ts is None:
                    self.first_ts = ts
                self._ts_obj = ts
                if self.utc_text and ts.tzinfo is _UTC:
                    self._ts_value = str(ts.replace(tzinfo=None))
                else:
                    self._ts_value = self.adapt_ts(ts)
                self._t_ms = (ts - self.first_ts).total_seconds() * 1000.0
            self.last_ts = ts
            ts_value, t_ms = self._ts_value, self._t_ms
        values, cell = d.values, d.cell
        try:
            values = _orjson_dumps(values).decode()
            cell = None if cell is None else _orjson_dumps(cell).decode()
        except (TypeError, ValueError):  # deeper than orjson's 255 levels, or ints over 64 bits
            values = _dumps(d.values)
            cell = None if d.cell is None else _dumps(d.cell)
        return (
            self.run_pk, d.seq, d.line, ts_value, t_ms, d.action, d.reason, values, cell, d.rpm, d.kpa,
            d.cylinder, d.rpm_index, d.kpa_index, d.round, d.agent, d.metric, d.text, d.raw,
        )

    def flush(self) -> None:
        if not self.batch:
            return
        if self.copy_sql:
            with connection.wrap_database_errors:
                if self._copy is None:
                    # COPY through the psycopg cursor under Django's: same connection, same transaction.
                    cursor = connection.cursor()
                    manager = cursor.cursor.copy(self.copy_sql)
                    self._copy = (cursor, manager, manager.__enter__())
                copy = self._copy[2]
                if isinstance(self.batch[0], bytes):  # lines made by the reading process
                    copy.write(b"".join(self.batch))
                else:
                    write_row = copy.write_row
                    for row in self.batch:
                        write_row(row)
        else:
            with connection.cursor() as cursor:
                cursor.executemany(self.sql, self.batch)
        self.batch = []

    def close(self) -> None:
        """Write what is left and end the COPY: the connection takes other queries again."""
        self.flush()
        self._end_copy(None, None, None)

    def _end_copy(self, exc_type, exc, tb) -> None:
        if self._copy is None:
            return
        cursor, manager, _ = self._copy
        self._copy = None
        try:
            with connection.wrap_database_errors:
                manager.__exit__(exc_type, exc, tb)  # with an exception: psycopg aborts the COPY
        except Exception:
            if exc_type is None:
                raise
            # Already failing: the first error is the one to report; the rollback follows.
        finally:
            cursor.close()

    def duration_ms(self, ends_at=None) -> float | None:
        return duration_ms(self.first_ts, self.last_ts, ends_at)


def copy_line(row: tuple) -> bytes:
    """A row as a line of PostgreSQL's COPY text format (tab-separated, `\\N` for NULL, backslash,
    tab and line breaks escaped in text; floats as Python writes them, `inf` and `nan` included, which
    PostgreSQL reads; an aware datetime in ISO 8601)."""
    return ("\t".join([_copy_value(v) for v in row]) + "\n").encode()


def _copy_value(v) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, str):
        if "\\" in v or "\t" in v or "\n" in v or "\r" in v:
            return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return v
    if isinstance(v, _dt.datetime):
        return v.isoformat()
    return repr(v) if isinstance(v, float) else str(v)


def duration_ms(first_ts, last_ts, ends_at=None) -> float | None:
    """A run's duration: from its first decision's time to its last's, or to `ends_at` (the log's own end,
    a trace's last span's end) when that is later."""
    if first_ts is None:
        return None
    last = ends_at if ends_at is not None and ends_at > last_ts else last_ts
    return (last - first_ts).total_seconds() * 1000.0


_UTC = _dt.timezone.utc


try:
    import orjson

    _orjson_dumps = orjson.dumps

    def _dumps(value) -> str:
        try:
            return orjson.dumps(value).decode()
        except (TypeError, orjson.JSONEncodeError):  # deeper than orjson's 255 levels
            import json

            return json.dumps(value, ensure_ascii=False)
except ImportError:  # pragma: no cover
    import json

    def _dumps(value) -> str:
        return json.dumps(value, ensure_ascii=False)

    def _orjson_dumps(value) -> bytes:
        return _dumps(value).encode()
