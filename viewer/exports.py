"""The filtered decisions of a run as csv, txt, html, json or jsonl: generators of text chunks.

Every writer reads through selectors.decision_list with the filters DecisionFilterForm parsed,
over `.values_list(...).iterator(chunk_size=2000)`, and yields one chunk per batch of rows, so
a run of any size streams in flat memory (PERF.md: batches stream ~235k CSV rows/s on SQLite).
The page view (views/exports.py) and `manage.py export_run` both call `export_chunks`.

- csv: RFC 4180 (the csv module). Spreadsheet formulas are neutralized as OWASP's CSV-injection
  guidance says: a text cell starting with = + - @ tab or CR gets a leading single quote. The
  choice for numbers: cells of the numeric columns (seq, elapsed_ms, rpm, kpa, rpm_index,
  kpa_index, round) are written from typed database numbers, so `-3.2` stays a number a
  spreadsheet can sum, and it cannot be a formula. Every text cell, even one that looks like a
  number, is neutralized.
- txt: DynoAI's replay_viewer.py `--export` text (viewer.dynoai_text), built from Decision.raw
  so 10.0 and 10 print differently, as in the original.
- html: the audit trail a reviewer signs off (viewer/audit.py, templates/viewer/audit.html), which
  viewer/pdf.py prints to PDF.
- json: a session_replay.json-shaped document. For a DynoAI run each decision is its raw text as
  written, so an unfiltered export is the imported file byte for byte (LF line endings). Other
  kinds are written in the DynoAI decision shape (timestamp, action, reason, values, cell).
- jsonl: session and study runs give their original lines byte for byte; a DynoAI run gives one
  compact JSON decision per line.
- otlp: OpenTelemetry's OTLP/JSON Lines, one trace per run (viewer/otlp.py).

Notes (issue 20.2, viewer/notes.py): the csv has `notes` ("author: text", joined by " | ") and `labels`
(joined by ",") columns. json and jsonl add a decision's notes (notes.as_dict each) only where it has
some, as a `notes` key spliced in before the record's closing brace, so every other byte stays as
written and an export of a run without notes is still the imported file byte for byte; json's header
gains `run_notes` (the notes on the run and its cells) likewise only when there are some.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Iterator
from itertools import islice, repeat

from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from . import dynoai_text, notes
from . import filters as F
from .models import Run
from .selectors import action_counts, decision_list, filtered_decisions, row_batches

FORMATS = ("csv", "txt", "html", "json", "jsonl", "otlp")
EXTENSIONS = {"otlp": "otlp.jsonl"}  # a format whose file name ends otherwise: /runs/<id>/export.otlp.jsonl
CONTENT_TYPES = {
    "otlp": "application/x-ndjson; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
CHUNK = 2000
CSV_HEADER = (
    "seq", "timestamp", "elapsed_ms", "action", "reason", "rpm", "kpa", "cylinder", "rpm_index",
    "kpa_index", "round", "agent", "values", "notes", "labels",
)
CSV_FIELDS = (
    "seq", "ts_text", "t_ms", "action", "reason", "rpm", "kpa", "cylinder", "rpm_index", "kpa_index", "round",
    "agent", "values_text",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_CHARS = frozenset(FORMULA_START)


def export_chunks(
    run: Run,
    fmt: str,
    form: F.DecisionFilterForm,
    *,
    raw_is_decision: bool = False,
    now: dt.datetime | None = None,
    llm=None,
    otlp_record=None,
    words=None,
) -> Iterator[str]:
    """The export of `run` in `fmt` for a valid form, as text chunks. `raw_is_decision`: the kind
    keeps each decision's own JSON text as its raw record (DynoAI), given back as written. `llm`
    (the kind's LlmSpec) and `otlp_record` (raw -> its span, a trace's) are the OTLP export's; `words`
    (the kind's Words: its time zone, what it calls an action) the audit trail's."""
    qs = decision_list(run=run, **form.filters(), **form.paging())
    if fmt == "csv":
        return csv_chunks(qs, notes.by_seq(run))
    if fmt == "txt":
        return txt_chunks(run, qs, raw_is_decision)
    if fmt == "html":
        from . import audit

        return audit.chunks(run, qs, form, now=now or timezone.now(), **audit.words_of(words))
    if fmt == "json":
        return json_chunks(run, qs, raw_is_decision, notes.by_seq(run))
    if fmt == "jsonl":
        return jsonl_chunks(qs, raw_is_decision, notes.by_seq(run))
    if fmt == "otlp":
        from . import otlp

        return otlp.chunks(run, qs, llm=llm, record=otlp_record, noted=notes.by_seq(run))
    raise ValueError(f"unknown export format {fmt!r}")


def export_filename(run: Run, fmt: str, form: F.DecisionFilterForm, *, replay_file=None) -> str:
    """`<run name>_decisions.<fmt>`, reduced to safe characters; a round-limited jsonl under the
    kind's replay file name (`replay_file(run)`: a session's `session_<id>_replay.jsonl`)."""
    replay = replay_file(run) if replay_file and form.cleaned_data.get(F.ROUND_MAX) is not None else None
    if fmt == "jsonl" and replay:
        return _safe(replay)
    return f"{_safe(_stem(run.name)) or f'run_{run.pk}'}_decisions.{EXTENSIONS.get(fmt, fmt)}"


def _stem(name: str) -> str:
    return re.sub(r"(\.study\.log|\.jsonl|\.json|\.log)?(\.gz)?$", "", name, flags=re.I)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:120]


def _batches(rows: Iterable, size: int = CHUNK) -> Iterator[list]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def _rows(qs: QuerySet, *fields: str) -> Iterator[list[tuple]]:
    return _batches(qs.values_list(*fields).iterator(chunk_size=CHUNK))


def iso(ts: dt.datetime | None) -> str:
    """UTC with a `Z`: milliseconds, or microseconds where the source had them."""
    if ts is None:
        return ""
    spec = "milliseconds" if ts.microsecond % 1000 == 0 else "microseconds"
    return ts.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def db_instant(text: str | None) -> str:
    """iso() of a UTC timestamp as the database gives it as text: SQLite `2025-12-15 17:28:01.803000`,
    PostgreSQL `2025-12-15 17:28:01.803+00`. Parsing a datetime per row is a third of a CSV export's time."""
    if not text:
        return ""
    if len(text) == 26 and text[19] == "." and text[23] not in "+-":  # SQLite: `YYYY-MM-DD HH:MM:SS.ffffff`
        return f"{text[:10]}T{text[11:23] if text.endswith('000') else text[11:]}Z"
    date, _, clock = text.replace("T", " ", 1).partition(" ")
    clock = clock.split("+", 1)[0].removesuffix("Z")
    whole, _, frac = clock.partition(".")
    frac = (frac + "000000")[:6]
    return f"{date}T{whole}.{frac[:3] if frac.endswith('000') else frac}Z"


def _number(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 3))
    return str(value)


def neutralize(text: str) -> str:
    """OWASP CSV injection: a cell that a spreadsheet would read as a formula gets a leading quote."""
    return "'" + text if text and text[0] in _FORMULA_CHARS else text


def _ms(value: float | None):
    return None if value is None else round(value, 3)


def compact_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- csv ----------------------------------------------------------------------------------------


def csv_chunks(qs: QuerySet, noted: dict[int, list] | None = None) -> Iterator[str]:
    """`noted`: {seq: its notes} (notes.by_seq) for the notes and labels columns.

    Column by column over each fetched batch (issue 19): the cursor's rows are split into columns,
    each column is transformed by one comprehension rather than a call per cell, and
    csv.writer.writerows writes the batch. What is left is the floor the bench's baseline has too:
    fetchmany and writerows are about three quarters of the CPU time (docs/BENCH.md)."""
    # The few noted decisions' two cells, neutralized once; every other row gets two empty cells.
    extra = {seq: tuple(map(neutralize, notes.csv_cells(found))) for seq, found in (noted or {}).items()}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(CSV_HEADER)
    yield buf.getvalue()
    # Time and values as the database holds them, as text: no datetime or JSON decoding per row.
    qs = qs.annotate(ts_text=Cast("ts", TextField()), values_text=Cast("values", TextField()))
    for batch in row_batches(qs, CSV_FIELDS, CHUNK):
        buf.seek(0)
        buf.truncate()
        seq, ts, t_ms, action, reason, rpm, kpa, cyl, rpm_i, kpa_i, rnd, agent, values = zip(*batch)
        instants = {t: db_instant(t) for t in set(ts)}
        if extra:
            cells = [extra.get(s, ("", "")) for s in seq]
            note_col, label_col = [c[0] for c in cells], [c[1] for c in cells]
        else:
            note_col, label_col = repeat("", len(seq)), repeat("", len(seq))
        # Numbers go out as numbers (None as an empty cell); every text cell is neutralized.
        writer.writerows(zip(
            seq, map(instants.__getitem__, ts), [None if v is None else round(v, 3) for v in t_ms],
            _neutralized(action), _neutralized(reason), rpm, kpa, _neutralized(cyl), rpm_i, kpa_i, rnd,
            _neutralized(agent), _neutralized(values), note_col, label_col,
        ))
        yield buf.getvalue()


def _neutralized(column: tuple) -> list:
    """neutralize() over a column, None kept (the writer gives it as an empty cell)."""
    return [text if not text or text[0] not in _FORMULA_CHARS else "'" + text for text in column]


# -- txt (DynoAI's replay viewer) --------------------------------------------------------------


def txt_chunks(run: Run, qs: QuerySet, raw_is_decision: bool = False) -> Iterator[str]:
    """The viewer's --export text: the summary over the whole run, then the matching decisions."""
    summary = _dynoai_summary(run, raw_is_decision)
    decisions = (_viewer_dict(row, raw_is_decision) for batch in _rows(qs, *_VIEWER_FIELDS) for row in batch)
    return dynoai_text.coalesce(dynoai_text.timeline_chunks(summary, decisions))


_VIEWER_FIELDS = ("raw", "ts", "action", "reason", "values", "cell")


def _viewer_dict(row: tuple, raw_is_decision: bool) -> dict:
    raw, ts, action, reason, values, cell = row
    if raw_is_decision:
        return json.loads(raw)  # keeps 10.0 a float and 10 an int, as the viewer sees them
    d = {"timestamp": iso(ts), "action": action, "reason": reason}
    if values:
        d["values"] = values
    if cell:
        d["cell"] = cell
    return d


def _dynoai_summary(run: Run, raw_is_decision: bool) -> str:
    every = filtered_decisions(run=run)
    ends = [every[:1], every.reverse()[:1]]
    rows = [row for qs in ends for row in qs.values_list(*_VIEWER_FIELDS)]
    stamps = [_viewer_dict(row, raw_is_decision).get("timestamp", "") for row in rows]
    return dynoai_text.summary_block(
        run_id=run.run_id or run.session_id or dynoai_text.NOT_AVAILABLE,
        generated_at=run.generated_at or dynoai_text.NOT_AVAILABLE,
        total=run.decision_count,
        duration_ms=dynoai_text.duration_ms(*stamps) if len(stamps) == 2 else None,
        counts=dynoai_text.sort_action_counts(action_counts(every)),
    )


# -- json and jsonl -----------------------------------------------------------------------------


def json_chunks(run: Run, qs: QuerySet, raw_is_decision: bool = False,
                noted: dict[int, list] | None = None) -> Iterator[str]:
    """A session_replay.json (json.dump indent=2 layout), the decisions streamed in between."""
    noted = noted or {}
    on_run = [notes.as_dict(n) for n in notes.of_run(run).filter(seq__isnull=True)]

    def field(key, value):
        return f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},\n"

    total = qs.count()
    yield (
        "{\n"
        + field("schema_version", run.schema_version or "1.0")
        + field("run_id", run.run_id or run.session_id or run.name)
        + field("generated_at", run.generated_at or iso(run.created))
        + field("total_decisions", total)
        + (field("run_notes", on_run) if on_run else "")
        + '  "decisions": ['
    )
    first = True
    for batch in _rows(qs, "seq", *_VIEWER_FIELDS):
        parts = []
        for seq, *row in batch:
            text = row[0] if raw_is_decision else _indented(_viewer_dict(row, raw_is_decision))
            if seq in noted:
                text = with_notes(text, noted[seq])
            parts.append(("\n    " if first else ",\n    ") + text)
            first = False
        yield "".join(parts)
    yield "]\n}" if first else "\n  ]\n}"


def _indented(decision: dict) -> str:
    return json.dumps(decision, indent=2, ensure_ascii=False).replace("\n", "\n    ")


def jsonl_chunks(qs: QuerySet, raw_is_decision: bool = False, noted: dict[int, list] | None = None) -> Iterator[str]:
    """The raw lines as read; a kind whose raw is a decision's indented JSON: one compact decision a line."""
    noted = noted or {}
    for batch in _rows(qs, "seq", "raw"):
        lines = (compact_json(json.loads(raw)) if raw_is_decision else raw for _, raw in batch)
        yield "".join((with_notes(line, noted[seq]) if seq in noted else line) + "\n"
                      for (seq, _), line in zip(batch, lines))


def with_notes(text: str, found: list) -> str:
    """A JSON object's text with `"notes": [...]` added before its closing brace, every other byte as
    it was; a record that is not a JSON object is left alone (its notes are in the csv and the API)."""
    body = text.rstrip()
    if not (body.lstrip().startswith("{") and body.endswith("}")):
        return text
    head = body[:-1].rstrip()
    comma = "" if head == "{" else ","
    return f"{head}{comma} \"notes\": {compact_json([notes.as_dict(n) for n in found])}}}" + text[len(body):]
