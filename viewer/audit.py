"""The audit trail a reviewer signs off (issue 20.5): the run's filtered decisions as one
self-contained HTML document (templates/viewer/audit.html), which viewer/pdf.py also prints to PDF.

What it holds: the run's identity and sha256; the manifest check of the log and of every output
file (name, size, sha256, result); the run's settings; the filter used and the counts; the notes
on the run, on cells and, beside each decision, on that decision; each decision on two lines (its
columns, then its values and notes across the page), so a reason is never squeezed into a narrow
column. A value string over LONG_TEXT characters (an LLM call's prompt or response) is shown as its
first lines and its length, and values over VALUES_CHARS as their start, each with a pointer to
the whole text in the JSON export (the decision's seq).

Streamed a batch of decisions at a time (head, rows per batch, foot) like every export; the notes
of a batch are one query (notes.by_seq). The kind's words (time zone, what an action is called)
come in as arguments: this module does not know kinds.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

from django.db.models import Count, QuerySet
from django.template.loader import get_template

from . import dynoai_text, notes
from . import filters as F
from .exports import _rows, iso
from .models import Run
from .selectors import action_counts
from .text import clock

FIELDS = ("seq", "ts", "t_ms", "action", "reason", "cell", "round", "agent", "values")
LONG_TEXT = 600  # a longer value string is shown collapsed
HEAD_LINES, HEAD_CHARS = 4, 400  # what a collapsed text shows: its first lines, within this many characters
VALUES_CHARS = 3000  # longer values (once their long texts are collapsed) show their start


def chunks(
    run: Run,
    qs: QuerySet,
    form: F.DecisionFilterForm,
    *,
    now: dt.datetime,
    time_zone: str = "UTC",
    action_word: str = "Action",
    agent_word: str = "Agent",
    settings_word: str = "Settings",
) -> Iterator[str]:
    """The audit trail as HTML chunks: the head (run, checks, settings, filter, counts, notes on the
    run and its cells), the decisions a batch at a time, the foot. `time_zone`: what the log's times
    are (the time column's header); the `*_word`s: what the kind calls those things."""
    head = get_template("viewer/audit.html#head")
    rows = get_template("viewer/audit.html#rows")
    foot = get_template("viewer/audit.html#foot")
    # A sliced queryset (after/limit) cannot be grouped directly: the rows it selects, by pk.
    counted = qs.model.objects.filter(pk__in=qs.values("pk")) if qs.query.is_sliced else qs
    present = counted.aggregate(cell=Count("cell"), round=Count("round"), agent=Count("agent"))
    on_run = [_note(n) for n in notes.of_run(run).filter(seq__isnull=True)]
    context = {
        "run": run,
        "filters": form.describe(),
        "query": form.data.urlencode() if hasattr(form.data, "urlencode") else "",
        "count": qs.count(),
        "counts": dynoai_text.sort_action_counts(action_counts(counted)),
        "made": now,
        "manifest": run.manifest or {},
        # The manifest check's message is shown with the check; other import warnings follow it.
        "warnings": [w for w in run.warnings or [] if w != (run.manifest or {}).get("message")],
        "outputs": list(run.output_files()),
        "settings": settings_list(run.settings),
        "settings_word": settings_word,
        "run_notes": [n for n in on_run if not n["cell"]],
        "cell_notes": [n for n in on_run if n["cell"]],
        "decision_notes": notes.of_run(run).filter(seq__in=counted.values("seq")).count(),
        "time_zone": time_zone,
        "action_word": action_word,
        "agent_word": agent_word,
        # Columns no decision of this export fills are left out (a session has no cells, DynoAI no rounds).
        "show": {name: bool(n) for name, n in present.items()},
    }
    context["width"] = 5 + sum(context["show"].values())  # the columns, for the values line's colspan
    yield head.render(context)
    # Where a collapsed text is whole: the run's JSON exports, by seq (a path: the file may be read offline).
    json_path = f"/runs/{run.pk}/export.json or export.jsonl"
    for batch in _rows(qs, *FIELDS):
        noted = notes.by_seq(run, [row[0] for row in batch])
        decisions = [_row(row, noted.get(row[0], ())) for row in batch]
        yield rows.render({"decisions": decisions, "json_path": json_path, "show": context["show"],
                           "width": context["width"]})
    yield foot.render(context)


def _row(row: tuple, found) -> dict:
    # Strings only: the template then escapes each value without localizing numbers (a third faster).
    seq, ts, t_ms, action, reason, cell, rnd, agent, values = row
    return {
        "seq": str(seq),
        "ts": _time(ts),
        "elapsed": clock(t_ms),  # +1:02.5 since the run's first decision (the csv and json keep ms)
        "action": action,
        "reason": reason,
        "cell": dynoai_text.format_cell(cell),
        "round": "" if rnd is None else str(rnd),
        "agent": agent or "",
        "notes": [_note(n) for n in found],
        **collapsed_values(values),
    }


def settings_list(settings) -> list[tuple[str, str]]:
    """[(name, value)]: a string as it is, anything else as compact JSON (a session's nested config
    reads a key a line instead of pages of indented JSON), a value over LONG_TEXT characters as its start
    and its length (a session's whole config is its first decision's values, in the JSON export)."""
    out = []
    for key, value in (settings if isinstance(settings, dict) else {}).items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        if len(text) > LONG_TEXT:
            text = f"{text[:HEAD_CHARS]}… ({len(text):,} characters)"
        out.append((str(key), text))
    return out


def _time(ts: dt.datetime | None) -> str:
    """`2025-12-15 17:28:01.803`: the stored time as the log wrote it; the column's header says its zone
    (a session log's local time is stored as written, so a `Z` would claim what the log does not)."""
    return iso(ts).removesuffix("Z").replace("T", " ")


def _note(note) -> dict:
    return {
        "author": note.author.get_username() if note.author else "(a deleted user)",
        "created": note.created,
        "edited": note.updated if (note.updated - note.created).total_seconds() >= 1 else None,
        "labels": list(note.labels or []),
        "html": notes.html(note),
        "cell": note.cell,
    }


def collapsed_values(values) -> dict:
    """{"values": the values as JSON, each string over LONG_TEXT replaced by a note; "long": those
    texts as {path, chars, lines, head}; "values_chars": the length of the values JSON where it is
    over VALUES_CHARS and only its start is shown (else "")}."""
    if not values:
        return {"values": "", "long": [], "values_chars": ""}
    long: list[dict] = []
    shown = json.dumps(_collapse(values, "", long), ensure_ascii=False)
    chars = ""
    if len(shown) > VALUES_CHARS:
        chars = f"{len(json.dumps(values, ensure_ascii=False)):,}"
        shown = shown[:VALUES_CHARS] + "…"
    return {"values": shown, "long": long, "values_chars": chars}


def _collapse(value, path: str, long: list[dict], depth: int = 0):
    if isinstance(value, str) and len(value) > LONG_TEXT:
        long.append(_long_text(path or "values", value))
        return f"⟨{len(value):,} characters: {path or 'values'}, below⟩"
    if depth > 64:
        return value
    if isinstance(value, dict):
        return {k: _collapse(v, f"{path}.{k}" if path else str(k), long, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_collapse(v, f"{path}[{n}]", long, depth + 1) for n, v in enumerate(value)]
    return value


def _long_text(path: str, text: str) -> dict:
    lines = text.splitlines()
    head = "\n".join(lines[:HEAD_LINES])
    if len(head) > HEAD_CHARS:
        head = head[: HEAD_CHARS - 1] + "…"
    elif len(lines) > HEAD_LINES:
        head += "\n…"
    return {"path": path, "chars": f"{len(text):,}", "lines": f"{len(lines):,}", "head": head}


def words_of(words) -> dict:
    """The audit's keyword arguments from a kind's Words (None: the defaults)."""
    if words is None:
        return {}
    return {"time_zone": words.time_zone, "action_word": words.action, "agent_word": words.agent,
            "settings_word": words.settings}
