"""`/diff/`: two runs compared, its htmx fragments and its exports (`/diff/export.<fmt>`)."""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator

from django import forms
from django.db.models import TextField
from django.db.models.functions import Cast
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, urlencode
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from .. import diff
from .. import filters as F
from ..filters import DecisionFilterForm
from ..models import Run
from ..selectors import filtered_decisions, get_run_or_404, visible_runs

A, B, RUN, ROWS, VOLATILE, HEAT, START = "a", "b", "run", "rows", "volatile", "heat", "start"
ROWS_DIFF, ROWS_ALL = "diff", "all"
PAGE = 200
EXPORT_FORMATS = ("csv", "html")
MAX_ID = 2**63 - 1
VALUE_CHARS = 160  # longest value shown in a table cell (the decision page shows it all)


class DiffForm(forms.Form):
    """The diff's own parameters; the decision filters are DecisionFilterForm's."""

    a = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    b = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    rows = forms.ChoiceField(
        required=False, choices=[(ROWS_DIFF, "Only differences"), (ROWS_ALL, "All decisions")]
    )
    volatile = forms.BooleanField(required=False, label="Also compare timestamps and ids")
    heat = forms.ChoiceField(
        required=False, choices=[(diff.HEAT_FINAL, "Final correction"), (diff.HEAT_COUNT, "Decision count")]
    )
    start = forms.IntegerField(required=False, min_value=0, max_value=10**9)

    def clean(self):
        data = super().clean()
        data["rows"] = data.get("rows") or ROWS_DIFF
        data["start"] = data.get("start") or 0
        return data


def load_diff(a: Run, b: Run, *, filters: dict, include_volatile: bool = False) -> diff.DiffResult:
    """Both runs' decisions (the same filters on each side) through the selectors, diffed."""
    align = a.kind if a.kind == b.kind else "study"
    with diff.gc_paused():
        sides = [_side(run, filters, include_volatile, align) for run in (a, b)]
        return diff.diff_sides(*sides)


def _side(run: Run, filters: dict, include_volatile: bool, align: str) -> diff.Side:
    # One run per query: ordering by seq alone is total (and skips the join that "run" adds).
    qs = filtered_decisions(run=run, **filters).order_by("seq").annotate(
        values_text=Cast("values", TextField()),
        cell_text=Cast("cell", TextField()),
        ts_text=Cast("ts", TextField()),
    )
    columns = diff.fields(run.kind, include_volatile)
    return diff.side_from_rows(
        run.kind,
        qs.values_list(*columns).iterator(chunk_size=5000),
        include_volatile=include_volatile,
        align=align,
    )


# --- the page ----------------------------------------------------------------------------------


@require_GET
@vary_on_headers("HX-Request")
def diff_page(request):
    if RUN in request.GET and A not in request.GET:
        return _from_run_list(request)
    params = DiffForm(request.GET)
    fragment = bool(request.htmx) and not request.htmx.history_restore_request
    if not params.is_valid():
        if fragment:
            return _bad_request(params)
        context = {"params": params, "choose": _choices(request.user)}
        return render(request, "viewer/diff.html", context, status=400)
    p = params.cleaned_data
    if p[A] is None:
        return render(request, "viewer/diff.html", {"params": params, "choose": _choices(request.user)})
    run_a = get_run_or_404(request.user, p[A])
    if p[B] is None:
        others = visible_runs(request.user).exclude(pk=run_a.pk)
        context = {"params": params, "a": run_a, "pick": _by_kind(others, run_a.kind)}
        return render(request, "viewer/diff.html", context)
    run_b = get_run_or_404(request.user, p[B])
    form = DecisionFilterForm(request.GET)
    context = {"params": params, "form": form, "a": run_a, "b": run_b, **_form_values(request)}
    if not form.is_valid():
        if fragment:
            return _bad_request(form)
        return render(request, "viewer/diff.html", context)
    result = load_diff(run_a, run_b, filters=form.filters(), include_volatile=p[VOLATILE])
    context.update(_context(request, result, run_a, run_b, p, form))
    if fragment:
        part = "rows-page" if p[START] and request.htmx.target == "diff-more" else "diff-body"
        return render(request, f"viewer/diff.html#{part}", context)
    return render(request, "viewer/diff.html", context)


SHOWN_FILTERS = {F.ACTION, F.Q, F.RPM, F.KPA, F.ROUND, F.AGENT, F.VALUE}


def _form_values(request) -> dict:
    """The filter inputs as the form shows them; filters it has no input for ride along hidden."""
    get = request.GET
    return {
        "action_values": get.getlist(F.ACTION) + [""],
        "v_values": get.getlist(F.VALUE) + [""],
        "hidden_filters": [(k, v) for k in F.FILTER_PARAMS if k not in SHOWN_FILTERS for v in get.getlist(k)],
    }


def _from_run_list(request):
    """The runs list's "Compare the two ticked runs" form sends run=X&run=Y."""
    ids = request.GET.getlist(RUN)
    if not all(i.isdigit() and 0 < int(i) <= MAX_ID for i in ids) or not 1 <= len(ids) <= 2:
        numbers = all(i.isdigit() for i in ids)
        message = "Tick two runs to compare." if numbers else "A run id is not a number."
        return render(
            request, "viewer/diff.html", {"choose": _choices(request.user), "message": message}, status=400
        )
    ids = sorted(ids, key=int)  # the older run (imported first) is A
    query = {A: ids[0]} if len(ids) == 1 else {A: ids[0], B: ids[1]}
    return HttpResponseRedirect(reverse("diff") + "?" + urlencode(query))


def _choices(user):
    return list(visible_runs(user).only("pk", "name", "kind", "decision_count", "created")[:500])


def _by_kind(runs, kind):
    runs = list(runs.only("pk", "name", "kind", "decision_count", "run_id", "created")[:500])
    return sorted(runs, key=lambda r: r.kind != kind)  # same kind first, newest first within


def _bad_request(form) -> HttpResponse:
    return HttpResponseBadRequest(form.error_text() if hasattr(form, "error_text") else _errors(form),
                                  content_type="text/plain; charset=utf-8")


def _errors(form) -> str:
    return "; ".join(f"{name}: {e}" for name, errs in form.errors.items() for e in errs)


def _context(request, result: diff.DiffResult, a: Run, b: Run, p: dict, form: DecisionFilterForm) -> dict:
    only = p[ROWS] == ROWS_DIFF
    if only:
        order = [k for k, r in enumerate(result.rows) if r.status != diff.SAME]
    else:
        order = range(len(result.rows))
    start = min(p[START], max(len(order) - 1, 0))
    page = [result.rows[k] for k in order[start : start + PAGE]]
    settings = diff.settings_diff(diff.run_settings(a), diff.run_settings(b))
    heat = p[HEAT] or diff.HEAT_FINAL
    figure = diff.cell_heatmap(result, heat)
    divergence = _divergence_view(result, a, b, form)
    if figure is None and heat == diff.HEAT_FINAL and not p[HEAT]:
        heat, figure = diff.HEAT_COUNT, diff.cell_heatmap(result, diff.HEAT_COUNT)
    return {
        "result": result,
        "counts": result.counts,
        "only": only,
        "rows_page": _row_views(result, page, a, b, form),
        "start": start,
        "shown_to": start + len(page),
        "total_rows": len(order),
        "next_start": start + PAGE if start + PAGE < len(order) else None,
        "prev_start": max(start - PAGE, 0) if start else None,
        "summary": _summary(result, a, b),
        "settings_changed": [s for s in settings if s.changed],
        "settings_same": [s for s in settings if not s.changed],
        "settings_kind": _settings_kind(a, b),
        "heat": heat,
        "heatmap": figure,
        "divergence": divergence,
        "divergence_sides": (
            [("A", a, divergence["context_a"]), ("B", b, divergence["context_b"])] if divergence else []
        ),
        "filters_text": _filters_text(form),
        "export_query": _export_query(request),
        "same_kind": a.kind == b.kind,
    }


def _filters_text(form: DecisionFilterForm) -> str:
    if form.filters():
        return f"Filters on both runs: {form.describe()}"
    return "No filters: every decision is compared."


def _export_query(request) -> str:
    query = request.GET.copy()
    query.pop(START, None)
    return query.urlencode()


def _settings_kind(a: Run, b: Run) -> str:
    if a.kind == b.kind == "dynoai":
        return "manifest config.args"
    if a.kind == b.kind == "session":
        return "session_start: random_seed, version, git_commit, config"
    return "source and version"


def _summary(result: diff.DiffResult, a: Run, b: Run) -> dict:
    da, db = result.a.duration_ms(), result.b.duration_ms()
    dd = diff.delta(da, db) if da is not None and db is not None else None
    return {
        "actions": diff.action_counts(result.a, result.b),
        "total": diff.CountRow("Decisions compared", len(result.a), len(result.b)),
        "duration_a": duration_text(da),
        "duration_b": duration_text(db),
        "duration_delta": duration_text(dd, signed=True) if dd else "",
    }


def duration_text(ms: float | None, signed: bool = False) -> str:
    """As DynoAI's viewer prints durations: `22.0ms` below a second, else `1.17s`."""
    if ms is None:
        return "–"
    sign = ("+" if ms > 0 else "−" if ms < 0 else "") if signed else ("−" if ms < 0 else "")
    ms = abs(ms)
    return f"{sign}{ms:.1f}ms" if ms < 1000 else f"{sign}{ms / 1000:.2f}s"


def _reasons(run: Run, form: DecisionFilterForm, seqs: list[int]) -> dict[int, str]:
    """The reasons of the decisions shown on this page (the diff itself does not need them)."""
    if not seqs:
        return {}
    qs = filtered_decisions(run=run, **form.filters()).filter(seq__in=seqs).order_by("seq")
    return dict(qs.values_list("seq", "reason"))


def _row_views(result: diff.DiffResult, rows: list[diff.Row], a: Run, b: Run, form) -> list[dict]:
    sa, sb = result.a, result.b
    reasons_a = _reasons(a, form, [sa.seq[r.a] for r in rows if r.a is not None])
    reasons_b = _reasons(b, form, [sb.seq[r.b] for r in rows if r.b is not None])
    return [_row_view(result, r, reasons_a, reasons_b) for r in rows]


def _row_view(result: diff.DiffResult, row: diff.Row, reasons_a=None, reasons_b=None) -> dict:
    sa, sb = result.a, result.b
    side, i = (sa, row.a) if row.a is not None else (sb, row.b)
    seq_a = sa.seq[row.a] if row.a is not None else None
    seq_b = sb.seq[row.b] if row.b is not None else None
    reason = ""
    if row.status == diff.ONLY_A:
        reason = (reasons_a or {}).get(seq_a, "")
    elif row.status == diff.ONLY_B:
        reason = (reasons_b or {}).get(seq_b, "")
    elif row.status == diff.SAME:
        reason = (reasons_a or {}).get(seq_a, "")
    return {
        "status": row.status,
        "seq_a": seq_a,
        "seq_b": seq_b,
        "line_a": row.a + 1 if row.a is not None else None,
        "action": side.action[i],
        "where": side.where(i),
        "reason": diff.value_text(reason, VALUE_CHARS) if reason else "",
        "changes": [_change_view(c) for c in row.changes],
    }


def _change_view(c: diff.Change) -> dict:
    return {
        "path": c.path,
        "old": diff.value_text(c.old, VALUE_CHARS),
        "new": diff.value_text(c.new, VALUE_CHARS),
        "delta": c.delta,
        "delta_text": f"{c.delta:+g}" if c.delta is not None else "",
    }


def _divergence_view(result: diff.DiffResult, a: Run, b: Run, form) -> dict | None:
    d = result.divergence
    if d is None:
        return None
    sa, sb = result.a, result.b
    reasons_a = _reasons(a, form, [sa.seq[i] for i in d.context_a])
    reasons_b = _reasons(b, form, [sb.seq[j] for j in d.context_b])

    def context(side, indices, status, reasons):
        return [{
            "here": i == d.position,
            "seq": side.seq[i],
            "action": side.action[i],
            "where": side.where(i),
            "status": status(i),
            "reason": diff.value_text(reasons.get(side.seq[i], ""), VALUE_CHARS),
        } for i in indices]

    row = d.row_a if d.row_a is not None else d.row_b
    return {
        "position": d.position,
        "ordinal": _ordinal(d.position + 1),
        "seq_a": sa.seq[d.a] if d.a is not None else None,
        "seq_b": sb.seq[d.b] if d.b is not None else None,
        "what": _divergence_text(result, d),
        "changes": [_change_view(c) for c in row.changes] if row and row.a == d.a and row.b == d.b else [],
        "context_a": context(sa, d.context_a, result.status_a, reasons_a),
        "context_b": context(sb, d.context_b, result.status_b, reasons_b),
    }


def _divergence_text(result: diff.DiffResult, d: diff.Divergence) -> str:
    if d.a is None:
        return f"A ends after {d.position} decisions; B goes on."
    if d.b is None:
        return f"B ends after {d.position} decisions; A goes on."
    ra, rb = d.row_a, d.row_b
    if ra.status == diff.CHANGED and ra.b == d.b:
        paths = ", ".join(c.path for c in ra.changes[:8]) + (", …" if len(ra.changes) > 8 else "")
        return f"the same {result.a.action[d.a]} on both sides, with different values: {paths}."
    if ra.status == diff.ONLY_A:
        return f"A's {result.a.action[d.a]} is not in B."
    if rb.status == diff.ONLY_B:
        return f"B's {result.b.action[d.b]} is not in A."
    return f"the order differs: A's {result.a.action[d.a]} matches B #{result.b.seq[ra.b]}."


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# --- exports -----------------------------------------------------------------------------------


CSV_HEADER = ("status", "a_seq", "b_seq", "action", "where", "path", "a_value", "b_value", "delta", "reason")


@require_GET
def diff_export(request, fmt):
    if fmt not in EXPORT_FORMATS:
        raise Http404("No such export")
    params = DiffForm(request.GET)
    form = DecisionFilterForm(request.GET)
    if not params.is_valid():
        return _bad_request(params)
    p = params.cleaned_data
    missing = [name for name in (A, B) if p[name] is None]
    if missing:
        return HttpResponseBadRequest("; ".join(f"{m}: a run id is required" for m in missing),
                                      content_type="text/plain; charset=utf-8")
    run_a, run_b = get_run_or_404(request.user, p[A]), get_run_or_404(request.user, p[B])
    if not form.is_valid():
        return _bad_request(form)
    result = load_diff(run_a, run_b, filters=form.filters(), include_volatile=p[VOLATILE])
    only = p[ROWS] == ROWS_DIFF
    name = f"diff-{run_a.pk}-{run_b.pk}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(
            csv_chunks(result, only=only), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = content_disposition_header(True, name)
    else:
        html = _export_html(result, run_a, run_b, p, form, only)
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(False, name)
        # Self-contained: nothing to load, nothing to run.
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    response["Cache-Control"] = "private, no-store"
    return response


def csv_cell(value) -> str | int | float:
    """A value for a CSV cell: numbers as numbers, text with a leading quote where a spreadsheet
    would read a formula (OWASP: = + - @ tab CR)."""
    if value is None or value is diff.MISSING:
        return ""
    if diff.is_number(value):
        return value
    text = diff.value_text(value)
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def csv_chunks(result: diff.DiffResult, *, only: bool = True) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    sa, sb = result.a, result.b
    for n, row in enumerate(result.rows):
        if only and row.status == diff.SAME:
            continue
        side, i = (sa, row.a) if row.a is not None else (sb, row.b)
        head = (
            row.status,
            sa.seq[row.a] if row.a is not None else "",
            sb.seq[row.b] if row.b is not None else "",
            csv_cell(side.action[i]),
            csv_cell(side.where(i)),
        )
        reason = side.reason[i] if side.reason is not None else ""
        if row.changes:
            for c in row.changes:
                writer.writerow(head + (csv_cell(c.path), csv_cell(c.old), csv_cell(c.new),
                                        "" if c.delta is None else c.delta, csv_cell(reason)))
        else:
            values = "" if row.status == diff.SAME else side.values_text[i]
            a_value = values if row.status == diff.ONLY_A else ""
            b_value = values if row.status == diff.ONLY_B else ""
            writer.writerow(head + ("", csv_cell(a_value), csv_cell(b_value), "", csv_cell(reason)))
        if n % 500 == 0 or buffer.tell() > 1 << 16:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _export_html(result: diff.DiffResult, a: Run, b: Run, p: dict, form, only: bool) -> str:
    rows = [r for r in result.rows if r.status != diff.SAME] if only else result.rows
    settings = diff.settings_diff(diff.run_settings(a), diff.run_settings(b))
    context = {
        "a": a,
        "b": b,
        "result": result,
        "counts": result.counts,
        "only": only,
        "volatile": p[VOLATILE],
        "rows": [_row_view(result, r) | {"reason": _export_reason(result, r)} for r in rows],
        "summary": _summary(result, a, b),
        "settings_changed": [s for s in settings if s.changed],
        "settings_same_count": sum(1 for s in settings if not s.changed),
        "settings_kind": _settings_kind(a, b),
        "divergence": _divergence_view(result, a, b, form),
        "filters_text": _filters_text(form),
        "now": timezone.now().astimezone(dt.timezone.utc),
    }
    return render_to_string("viewer/diff_export.html", context)


def _export_reason(result: diff.DiffResult, row: diff.Row) -> str:
    side, i = (result.a, row.a) if row.a is not None else (result.b, row.b)
    if side.reason is not None:
        return diff.value_text(side.reason[i], 500)
    if row.status in (diff.ONLY_A, diff.ONLY_B):
        return diff.value_text(side.values_text[i], 500)
    return ""


# --- the API's answer (viewer/api.py, GET /api/diff) --------------------------------------------


def api_payload(result: diff.DiffResult, a: Run, b: Run, form: DecisionFilterForm, *,
                only: bool, start: int, limit: int) -> dict:
    """The diff as plain JSON-ready data: counts, first divergence, settings, a page of rows."""
    rows = [r for r in result.rows if r.status != diff.SAME] if only else result.rows
    page = rows[start : start + limit]
    sa, sb = result.a, result.b
    d = result.divergence
    settings = diff.settings_diff(diff.run_settings(a), diff.run_settings(b))

    def run_out(run, side):
        return {"id": run.pk, "name": run.name, "kind": run.kind, "decisions": len(side),
                "duration_ms": side.duration_ms()}

    def row_out(r):
        side, i = (sa, r.a) if r.a is not None else (sb, r.b)
        return {
            "status": r.status,
            "a_seq": sa.seq[r.a] if r.a is not None else None,
            "b_seq": sb.seq[r.b] if r.b is not None else None,
            "action": side.action[i],
            "where": side.where(i),
            "changes": [_change_out(c) for c in r.changes],
        }

    divergence = None
    if d is not None:
        row = d.row_a if d.row_a is not None else d.row_b
        divergence = {
            "position": d.position,
            "a_seq": sa.seq[d.a] if d.a is not None else None,
            "b_seq": sb.seq[d.b] if d.b is not None else None,
            "description": _divergence_text(result, d),
            "changes": [_change_out(c) for c in row.changes] if row and row.a == d.a and row.b == d.b else [],
        }
    return {
        "a": run_out(a, sa),
        "b": run_out(b, sb),
        "filters": form.describe(),
        "identical": result.identical,
        "counts": result.counts,
        "first_divergence": divergence,
        "actions": [
            {"action": c.label, "a": c.a, "b": c.b, "delta": c.delta} for c in diff.action_counts(sa, sb)
        ],
        "settings": [_change_out(diff.Change(s.path, s.a, s.b, s.delta)) for s in settings if s.changed],
        "rows": [row_out(r) for r in page],
        "total_rows": len(rows),
        "next": start + limit if start + limit < len(rows) else None,
    }


def _change_out(c: diff.Change) -> dict:
    absent = "a" if c.old is diff.MISSING else "b" if c.new is diff.MISSING else None
    return {
        "path": c.path,
        "a": None if c.old is diff.MISSING else c.old,
        "b": None if c.new is diff.MISSING else c.new,
        "delta": c.delta,
        "absent": absent,
    }
