"""Two runs compared, as one report (STYLE.md 14): the page, its fragments, the CSV and HTML
exports and the API all render what `diff_report` returns.

A service: no request. It reads both runs' decisions through the selectors (the same filters on
each side), aligns them with `viewer/diff.py`, and gathers what every face shows: the rows, the
first divergence, the settings, decisions per action, durations and the per-cell heatmap. What
differs by log kind comes in the two profiles' `diff` specs, which the caller looks up.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from typing import Any

from django.conf import settings
from django.db.models import TextField
from django.db.models.functions import Cast

from . import text
from .diff import (
    BY_ACTION,
    CHANGED,
    GENERIC,
    ONLY_A,
    ONLY_B,
    DiffResult,
    DiffSpec,
    Divergence,
    Row,
    Rows,
    Side,
    diff_sides,
    fields,
    gc_paused,
    side_from_rows,
    text_fields,
)
from .diff_text import is_text_path, text_diff
from .diff_summary import HEAT_COUNT, HEAT_FINAL, CountRow, action_counts, cell_heatmap, cells_of
from .diff_values import MISSING, Change, SettingRow, delta, is_number, settings_diff, value_text
from .exports import neutralize
from .filters import describe_filters
from .models import Run
from .selectors import filtered_decisions, row_batches

BYTES_PER_DECISION = 110  # what a diff holds per decision of either side (docs/BENCH.md, diff)
# Up to this many decisions (both sides) a diff keeps their texts as it reads them: quicker than
# reading the compared and shown ones again (two 100k runs: 0.8 s of CPU against 1.08 s), for
# about 180 bytes a decision more (two 100k runs: 141 MB peak RSS against 105 MB).
HOLD_TEXTS = 250_000
PAGE = 200  # rows a page shows; "show more" fetches the next ones
VALUE_CHARS = 160  # longest value shown in a table cell (the decision page shows it all)


class DiffTooBig(ValueError):
    """The two sides hold more decisions than one request may align in memory (issue 14.7)."""


def check_size(a: Run, b: Run, filters: dict) -> int:
    """How many decisions the diff would hold (both sides, after the filters); DiffTooBig over
    REPLAYWEB_DIFF_MAX_DECISIONS. The alignment holds both sides as compact columns, about
    `BYTES_PER_DECISION` (measured: two 1M-decision DynoAI runs peak at 294 MB, the process included),
    so a request is bounded up front."""
    limit = settings.REPLAYWEB_DIFF_MAX_DECISIONS
    total = a.decision_count + b.decision_count
    if total > limit and filters:  # the filters may narrow it enough: count what they keep
        total = sum(filtered_decisions(run=run, **filters).count() for run in (a, b))
    if total > limit:
        raise DiffTooBig(
            f"these two runs hold {total:,} decisions together{' after the filters' if filters else ''}; a diff "
            f"aligns both in memory, and this server allows {limit:,} (REPLAYWEB_DIFF_MAX_DECISIONS, about "
            f"{limit * BYTES_PER_DECISION // 1024**2:,} MB). Narrow both sides with filters (an action, a round, "
            "a time window), or compare DynoAI runs' tables on the compare page."
        )
    return total


def diff_report(
    a: Run, pa, b: Run, pb, *, filters: dict, include_volatile: bool = False, heat: str | None = None
) -> DiffReport:
    """Runs A and B (with their kind profiles `pa`, `pb`) compared, after `filters` on both sides.

    Runs of one kind align by their kind's key; runs of different kinds by action alone.
    `heat`: the heatmap's metric (final correction by default, or counts where there is none).
    Raises DiffTooBig before reading anything when the two sides are over the memory bound.
    """
    total = check_size(a, b, filters)
    hold = total <= HOLD_TEXTS
    spec_a, spec_b = pa.diff or GENERIC, pb.diff or GENERIC
    same_kind = pa is pb
    key = None if same_kind else BY_ACTION
    with gc_paused():
        sides = [_side(run, spec, filters, include_volatile, key, hold) for run, spec in ((a, spec_a), (b, spec_b))]
        result = diff_sides(*sides)
    return DiffReport(
        a=a, b=b, result=result, filters=filters, include_volatile=include_volatile, heat_asked=heat,
        same_kind=same_kind, kinds=(pa.label, pb.label),
        align=pa.words.align if same_kind else "action",
        action_word=pa.words.action if same_kind else "Action",
        # Runs of different kinds record different settings: nothing to line up.
        settings=settings_diff(spec_a.settings(a), spec_b.settings(b)) if same_kind else [],
        settings_source=spec_a.settings_source if same_kind else "not compared",
        settings_missing=spec_a.settings_missing,
    )


def _side(run: Run, spec: DiffSpec, filters: dict, include_volatile: bool, key, hold: bool = False) -> Side:
    """Run's decisions (after the filters) as a compact Side; their texts are read again, a block
    of seqs at a time, only for the decisions whose values are compared or shown. `hold`: keep
    the texts instead (a small pair: no second read)."""
    rows = chain.from_iterable(row_batches(_decisions(run, filters), fields(spec, include_volatile), 5000))

    def load(first: int, last: int, seqs: list[int] | None, actions: list[str] | None):
        qs = _decisions(run, filters).filter(seq__gte=first, seq__lte=last)
        if seqs is not None:
            qs = qs.filter(seq__in=seqs)
        if actions is not None:
            qs = qs.filter(action__in=actions)
        return chain.from_iterable(row_batches(qs, text_fields(spec, include_volatile), 5000))

    return side_from_rows(spec, rows, include_volatile=include_volatile, key=key, run=run,
                          load=None if hold else load)


def _decisions(run: Run, filters: dict):
    # One run per query: ordering by seq alone is total (and skips the join that "run" adds).
    return filtered_decisions(run=run, **filters).order_by("seq").annotate(
        values_text=Cast("values", TextField()),
        cell_text=Cast("cell", TextField()),
        ts_text=Cast("ts", TextField()),
    )


@dataclass
class DiffReport:
    a: Run
    b: Run
    result: DiffResult
    filters: dict
    include_volatile: bool
    heat_asked: str | None
    same_kind: bool
    kinds: tuple[str, str]  # the runs' kind labels
    align: str  # how the decisions were aligned, as a phrase
    action_word: str  # what the kind calls the action column (Action, Event)
    settings: list[SettingRow] = field(default_factory=list)
    settings_source: str = ""
    settings_missing: str = ""  # what to do when neither run records its settings
    _differences: Rows | None = field(default=None, repr=False)

    @property
    def counts(self) -> dict[str, int]:
        return self.result.counts

    @property
    def identical(self) -> bool:
        return self.result.identical

    @property
    def filters_text(self) -> str:
        if self.filters:
            return f"Filters on both runs: {describe_filters(self.filters)}"
        return "No filters: every decision is compared."

    @property
    def settings_changed(self) -> list[SettingRow]:
        return [s for s in self.settings if s.changed]

    @property
    def settings_same(self) -> list[SettingRow]:
        return [s for s in self.settings if not s.changed]

    # --- summary ---

    @cached_property
    def summary(self) -> dict:
        sa, sb = self.result.a, self.result.b
        da, db = sa.duration_ms(), sb.duration_ms()
        dd = delta(da, db) if da is not None and db is not None else None
        return {
            "actions": action_counts(sa, sb),
            "total": CountRow("Decisions compared", len(sa), len(sb)),
            "duration_a": text.duration(da),
            "duration_b": text.duration(db),
            "duration_delta": text.duration(dd, signed=True) if dd else "",
        }

    # --- the per-cell heatmap ---

    @property
    def grid(self):
        """The kind's grid (a `CellDelta`) when both runs sit on one; else None."""
        return cells_of(self.result)

    @cached_property
    def _heat(self) -> tuple[str, dict | None]:
        metric = self.heat_asked or HEAT_FINAL
        figure = cell_heatmap(self.result, metric)
        if figure is None and not self.heat_asked:  # no final values: the counts, if any
            metric, figure = HEAT_COUNT, cell_heatmap(self.result, HEAT_COUNT)
        return metric, figure

    @property
    def heat(self) -> str:
        return self._heat[0]

    @property
    def heatmap(self) -> dict | None:
        return self._heat[1]

    # --- rows ---

    def rows(self, *, only: bool) -> Rows:
        """Every aligned row, or `only` the differences (each made when read)."""
        if only:
            if self._differences is None:
                self._differences = self.result.rows.differences()
            return self._differences
        return self.result.rows

    @property
    def texts(self) -> tuple[str, ...]:
        """The long texts compared word by word: the kind's (none for runs of different kinds)."""
        return self.result.a.spec.texts if self.same_kind else ()

    def page(self, *, only: bool, start: int = 0, size: int = PAGE) -> dict:
        """One page of row views (with each shown decision's reason and its long texts compared
        word by word), and where the others are."""
        rows = self.rows(only=only)
        start = min(start, max(len(rows) - 1, 0))
        shown = rows[start : start + size]
        return {
            "rows_page": self.row_views(shown, reasons=True, texts=True),
            "start": start,
            "shown_to": start + len(shown),
            "total_rows": len(rows),
            "next_start": start + size if start + size < len(rows) else None,
            "prev_start": max(start - size, 0) if start else None,
        }

    def row_views(self, rows: list[Row], *, reasons: bool = False, texts: bool = False) -> list[dict]:
        """Rows as plain data. `reasons`: look up the reasons the diff did not read; `texts`: compare
        the kind's long texts word by word (both a page's worth, for the pages)."""
        read(self.result, rows)
        found = self._reasons([(r.a, r.b) for r in rows if r.status != CHANGED]) if reasons else {}
        paths = self.texts if texts else ()
        views = [row_view(self.result, r, found, texts=paths) for r in rows]
        if reasons:  # a page's rows: each side's notes beside its decision (issue 20.2)
            mark_notes(views, self.a, self.b)
        return views

    def _reasons(self, pairs: list[tuple[int | None, int | None]]) -> dict[tuple[str, int], str]:
        """{(side, index): reason} of these decisions (A's where there is one), for sides that do not
        hold their reasons."""
        out = {}
        for name, run, side, pick in (("a", self.a, self.result.a, 0), ("b", self.b, self.result.b, 1)):
            wanted = [p[pick] for p in pairs if p[pick] is not None and (pick == 0 or p[0] is None)]
            if side.column("reason") is not None or not wanted:
                continue
            seqs = {side.seq[i]: i for i in wanted}
            qs = filtered_decisions(run=run, **self.filters).filter(seq__in=list(seqs)).order_by("seq")
            for seq, reason in qs.values_list("seq", "reason"):
                out[(name, seqs[seq])] = reason
        return out

    # --- the first divergence ---

    @cached_property
    def divergence(self) -> dict | None:
        d = self.result.divergence
        if d is None:
            return None
        sa, sb = self.result.a, self.result.b
        reasons = self._reasons([(i, None) for i in d.context_a] + [(None, j) for j in d.context_b])

        def context(name, side, indices, status):
            return [{
                "here": i == d.position,
                "seq": side.seq[i],
                "action": side.action[i],
                "where": side.where(i),
                "status": status(i),
                "reason": value_text(_reason(side, name, i, reasons), VALUE_CHARS),
            } for i in indices]

        row = d.row_a if d.row_a is not None else d.row_b
        side, i = (sa, d.a) if d.a is not None else (sb, d.b)
        return {
            "position": d.position,
            # where it is, as people say it: "round 3 · Ash Vex · llm_call"
            "place": " · ".join(part for part in (side.where(i), side.action[i]) if part),
            "ordinal": ordinal(d.position + 1),
            "seq_a": sa.seq[d.a] if d.a is not None else None,
            "seq_b": sb.seq[d.b] if d.b is not None else None,
            "what": divergence_text(self.result, d),
            "changes": [change_view(c) for c in row.changes] if row and row.a == d.a and row.b == d.b else [],
            "context_a": context("a", sa, d.context_a, self.result.status_a),
            "context_b": context("b", sb, d.context_b, self.result.status_b),
        }


def read(result: DiffResult, rows: list[Row]) -> None:
    """Read the texts of these rows' decisions at once (a side read from the database holds few)."""
    result.a.read(r.a for r in rows if r.a is not None)
    result.b.read(r.b for r in rows if r.b is not None)


def _reason(side: Side, name: str, i: int, found: dict) -> str:
    held = side.column("reason")
    return held[i] if held is not None else found.get((name, i), "")


def mark_notes(views: list[dict], a: Run, b: Run) -> None:
    """`note_a`/`note_b`: notes.summary of the notes on each side's decision of a row, or None."""
    from . import notes

    for key, run in (("a", a), ("b", b)):
        noted = notes.by_seq(run, [v[f"seq_{key}"] for v in views if v[f"seq_{key}"] is not None])
        for v in views:
            found = noted.get(v[f"seq_{key}"])
            v[f"note_{key}"] = notes.summary(found) if found else None


def row_view(result: DiffResult, row: Row, reasons: dict | None = None, texts: tuple[str, ...] = ()) -> dict:
    """One row as every face shows it. `reason`: the decision's (A's on a pair); `values`: the
    values of a decision found on one side only; `texts`: the paths whose changed texts are compared
    word by word (a change's `text`)."""
    sa, sb = result.a, result.b
    name, side, i = ("a", sa, row.a) if row.a is not None else ("b", sb, row.b)
    changes = [change_view(c, texts) for c in row.changes]
    return {
        "status": row.status,
        "seq_a": sa.seq[row.a] if row.a is not None else None,
        "seq_b": sb.seq[row.b] if row.b is not None else None,
        "line_a": row.a + 1 if row.a is not None else None,
        "action": side.action[i],
        "where": side.where(i),
        "reason": _reason(side, name, i, reasons or {}),
        "values": side.values_text[i] if row.status in (ONLY_A, ONLY_B) else "",
        "changes": changes,
        "texts": [c for c in changes if c["text"] is not None],  # shown side by side under the row
    }


def change_view(c: Change, texts: tuple[str, ...] = ()) -> dict:
    """A changed path: its values as text for a table cell, and as they are (None where absent);
    `text`: the two texts marked word by word, where the path is one of `texts` (else None)."""
    long = isinstance(c.old, str) and isinstance(c.new, str) and is_text_path(c.path, texts)
    return {
        "text": text_diff(c.old, c.new) if long else None,
        "path": c.path,
        "old": value_text(c.old, VALUE_CHARS),
        "new": value_text(c.new, VALUE_CHARS),
        "delta": c.delta,
        "delta_text": f"{c.delta:+g}" if c.delta is not None else "",
        "a": None if c.old is MISSING else c.old,
        "b": None if c.new is MISSING else c.new,
        "absent": "a" if c.old is MISSING else "b" if c.new is MISSING else None,
    }


def divergence_text(result: DiffResult, d: Divergence) -> str:
    if d.a is None:
        return f"A ends after {d.position} decisions; B goes on."
    if d.b is None:
        return f"B ends after {d.position} decisions; A goes on."
    ra, rb = d.row_a, d.row_b
    if ra.status == CHANGED and ra.b == d.b:
        paths = ", ".join(c.path for c in ra.changes[:8]) + (", …" if len(ra.changes) > 8 else "")
        return f"the same {result.a.action[d.a]} on both sides, with different values: {paths}."
    if ra.status == ONLY_A:
        return f"A's {result.a.action[d.a]} is not in B."
    if rb.status == ONLY_B:
        return f"B's {result.b.action[d.b]} is not in A."
    return f"the order differs: A's {result.a.action[d.a]} matches B #{result.b.seq[ra.b]}."


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# --- the CSV export ------------------------------------------------------------------------------


CSV_BATCH = 2000  # rows whose texts are read at once
CSV_HEADER = ("status", "a_seq", "b_seq", "action", "where", "path", "a_value", "b_value", "delta", "reason")


def csv_cell(value: Any) -> str | int | float:
    """A value for a CSV cell: numbers as numbers, text with a leading quote where a spreadsheet
    would read a formula (OWASP: = + - @ tab CR)."""
    if value is None or value is MISSING:
        return ""
    if is_number(value):
        return value
    return neutralize(value_text(value))


def csv_chunks(report: DiffReport, *, only: bool = True) -> Iterator[str]:
    """The rows as CSV, one line per changed path (one for a row without changes); streamed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    rows = report.rows(only=only)
    for n, row in enumerate(rows):
        if n % CSV_BATCH == 0:
            read(report.result, rows[n : n + CSV_BATCH])
        r = row_view(report.result, row)
        head = (r["status"], _blank(r["seq_a"]), _blank(r["seq_b"]),
                csv_cell(r["action"]), csv_cell(r["where"]))
        reason = csv_cell(r["reason"])
        for c in r["changes"]:
            writer.writerow(head + (csv_cell(c["path"]), csv_cell(c["a"]), csv_cell(c["b"]),
                                    _blank(c["delta"]), reason))
        if not r["changes"]:
            a_value = r["values"] if r["status"] == ONLY_A else ""
            b_value = r["values"] if r["status"] == ONLY_B else ""
            writer.writerow(head + ("", csv_cell(a_value), csv_cell(b_value), "", reason))
        if n % 500 == 0 or buffer.tell() > 1 << 16:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _blank(value):
    return "" if value is None else value
