"""The run page (/runs/<id>/), its htmx fragments, and one decision (/runs/<id>/decisions/<seq>/).

One URL serves the page and its fragments: an htmx request names the part it wants by its
target's id (HX-Target), and gets that partial of viewer/run.html. The parts:
  run-view   everything the filters change (form, facets, summary, chart, table)
  load-more  the next rows of the table (keyset: after=<last seq>)
  facets, stats, chart   filled in after the page on runs too big to count while it renders
  matchline  how many decisions match: on those runs, filled in after the page when filters are set
             (a text filter counts by scanning the run, seconds at 1M; the first rows come at once)
  live-badge  a live run's badge (import_logs --follow): while the run is live, it, the chart and the
              table's last row poll every 2 s (the last row loads the decisions after the last shown);
              each answers without its poll once the run has ended, so polling stops
"""

from django.db.models.functions import Substr
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .. import display, htmx, kinds, notes, overview
from ..htmx import vary_on_fragment
from ..charts import AXES, SEQ, TIME
from ..facets import link_facets
from ..memo import BIG_RUN
from ..models import Run
from ..filters import DecisionFilterForm, filter_querystring
from ..selectors import (
    decision_list, first_rows, get_decision_or_404, get_run_or_404, neighbours, previous_t_ms,
)
from ..summary import action_rows, gaps, run_summary
from .notes import block as notes_block

PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Up to this many decisions, facets, summary and chart are computed with the page; above, each
# loads after it (and is computed once: viewer/overview.py).
INLINE_LIMIT = BIG_RUN  # runs this small get facets, summary and chart in the page itself
# The form's inputs: those of the run's kind first (its profile's filter_fields), the rest under
# "More filters" (shown there only when set, so a URL's filter is never dropped by the form).
MORE_FIELDS = ("since", "until")
OTHER_FIELDS = (
    "rpm", "kpa", "cylinder", "rpm_min", "rpm_max", "kpa_min", "kpa_max", "rpm_index", "kpa_index",
    "round", "agent", "round_min", "round_max", "model", "agent_type", "temperature", "temperature_min",
    "temperature_max", "correlation_id",
)
LABELS = {
    "rpm": "RPM", "kpa": "kPa", "cylinder": "Cylinder", "rpm_index": "RPM index", "kpa_index": "kPa index",
    "rpm_min": "RPM from", "rpm_max": "RPM to", "kpa_min": "kPa from", "kpa_max": "kPa to", "round": "Round",
    "agent": "Agent", "round_min": "Round from", "round_max": "Round to", "since": "Since (ISO time)",
    "until": "Until (ISO time)", "model": "Model", "agent_type": "Agent type", "temperature": "Temperature",
    "temperature_min": "Temperature from", "temperature_max": "Temperature to", "correlation_id": "Correlation id",
}
AXIS = "axis"  # the chart's x axis: "seq" (decision order) or "time"; not a filter, the table ignores it
PARTS = {
    "run-view": "viewer/run.html#run-view",
    "load-more": "viewer/run.html#rows",
    "facets": "viewer/run.html#facets",
    "stats": "viewer/run.html#stats",
    "chart": "viewer/run.html#chart",
    "matchline": "viewer/run.html#matchline",
    "live-badge": "viewer/run.html#live-badge",
}
OWN_PARTS = ("load-more", "facets", "stats", "chart", "matchline", "live-badge")  # a request for one computes only it


@require_GET
@vary_on_fragment
def run_page(request, run_id):
    run = get_run_or_404(request.user, run_id)
    kind = kinds.profile(run)
    form = DecisionFilterForm(request.GET)
    part = htmx.fragment(request, PARTS)
    if not form.is_valid() and part not in (None, "run-view"):
        return htmx.bad_request(form.error_text())
    if request.GET.get(AXIS, "") not in ("", *AXES):
        return htmx.bad_request(f"{AXIS}: use {' or '.join(AXES)}")
    context = {
        "run": run,
        "form": form,
        "kind": kind,
        "words": kind.words,
        "columns": kind.columns,
        "part": part,
        "filter_qs": filter_querystring(request.GET),
        "inline": run.decision_count <= INLINE_LIMIT,
        "live": run.status == Run.Status.LIVE,
    }
    if part in (None, "run-view"):
        context.update(_form_fields(form, kind))
        context.update(run_notes=notes_block(request, run), run_labels=notes.run_labels(run))
    if part is None:
        context["summary"] = run_summary(run, facts=kind.summary_facts(run) if kind.summary_facts else [])
    if form.is_valid():
        context.update(_parts(request, run, kind, form, part, context["inline"]))
    status = 200 if form.is_valid() else 400
    return render(request, PARTS.get(part, "viewer/run.html"), context, status=status)


@require_GET
@vary_on_fragment
def decision_detail(request, run_id, seq):
    run = get_run_or_404(request.user, run_id)
    kind = kinds.profile(run)
    decision = get_decision_or_404(run=run, seq=seq)
    fmt = request.GET.get("format", "html")
    if fmt not in ("html", "json"):
        return htmx.bad_request("format: use json (a download) or html")
    if fmt == "json":
        return _download(run, kind, decision)
    form = DecisionFilterForm(request.GET)
    if not form.is_valid():
        return htmx.bad_request(form.error_text())
    previous, following = neighbours(run=run, seq=seq, **form.filters())
    panel = htmx.wants_fragment(request)
    detail = display.decision_detail(
        decision, overview.colours(run), record_json=kind.record_json, written_values=kind.written_values,
        raw_suffix=kind.raw_suffix, columns=kind.columns, agents=run.agents,
    )
    context = detail | {
        "run": run,
        "kind": kind,
        "previous": previous,
        "following": following,
        "panel": panel,
        "filter_qs": filter_querystring(request.GET),
        "chain": kind.chain(run, decision) if kind.chain else None,
        "notes_block": notes_block(request, run, seq=seq),
    }
    return render(request, "viewer/decision.html#panel" if panel else "viewer/decision.html", context)


def _form_fields(form, kind) -> dict:
    own = kind.filter_fields
    others = [n for n in OTHER_FIELDS if n not in own]
    more = [*MORE_FIELDS, *(n for n in others if form[n].value() not in (None, ""))]
    label = {**LABELS, "agent": kind.words.agent}
    return {
        "main_fields": [(form[n], label[n]) for n in own],
        "more_fields": [(form[n], label[n]) for n in more],
        "more_open": any(form[n].value() not in (None, "") or form[n].errors for n in more),
    }


def _parts(request, run, kind, form, part, inline) -> dict:
    filters = form.filters()
    colours = overview.colours(run)
    wanted = {part} if part in OWN_PARTS else {"table"}
    if part in (None, "run-view") and inline:
        wanted |= {"facets", "stats", "chart"}
    context = {}
    if wanted & {"table", "load-more"}:
        context.update(_table(run, kind, form, filters, colours))
    if "matchline" in wanted or ("table" in wanted and (inline or not filters)):
        context["matching"] = overview.matching(run, filters)
    elif "table" in wanted:
        context["matching"] = None  # the matchline loads after the page
    if "facets" in wanted:
        facets = overview.facets(run, kind, filters)
        context["facets"] = link_facets(facets, request.GET, colours, agents=run.agents)
    if "stats" in wanted:
        stats, largest = overview.stats(run, filters)
        context.update(action_rows=action_rows(stats, colours), gaps=gaps(largest))
    if "chart" in wanted:
        chart = _chart_axis(request.GET.get(AXIS, ""), kind.timeline, filters)
        context.update(chart)
        context["figure"] = overview.figure(run, kind, filters, chart["chart_axis"])
    return context


def _table(run, kind, form, filters, colours) -> dict:
    paging = form.paging()
    size = min(paging.get("limit", PAGE_SIZE), MAX_PAGE_SIZE)
    after = paging.get("after")
    qs = decision_list(run=run, after=after, **filters).defer("raw", "text", "reason").annotate(
        short_reason=Substr("reason", 1, 300))
    page = first_rows(qs, run=run, n=size + 1, filters=filters, after=after)
    shown = page[:size]
    noted = notes.by_seq(run, [d.seq for d in shown])
    before = previous_t_ms(run=run, seq=shown[0].seq, **filters) if shown and after is not None else None
    rows = display.table_rows(shown, before, colours, kind.columns, run.agents)
    for row in rows:
        row.note = notes.summary(noted[row.seq]) if row.seq in noted else None
    return {
        "rows": rows,
        "more": len(page) > size,
        "last_seq": shown[-1].seq if shown else after,
        "after": after,
    }


def _chart_axis(asked: str, lanes, filters) -> dict:
    """The chart's axis and the links that switch it. Without `axis=`, a kind with pipeline lanes is
    read on its own axis (DynoAI: seq), except that a time window (t_from/t_to) is read on the time
    axis; other kinds on time. Links keep every other parameter; `axis=` is left out where it says
    the default."""
    home = lanes.axis if lanes else TIME  # the axis of the run's unfiltered page
    default = overview.default_axis(lanes, filters)
    axis = asked or default
    links = [
        {"axis": a, "label": label, "current": a == axis, "param": None if a == default else a}
        for a, label in ((SEQ, "Pipeline order"), (TIME, "Time"))
    ] if lanes else []
    return {"chart_axis": axis, "axis_links": links,
            "reset_axis": None if asked in ("", home) else asked}


def _download(run, kind, decision) -> HttpResponse:
    text = kind.record_json(decision.raw) if kind.record_json else decision.raw
    response = HttpResponse(text, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-decision-{decision.seq}.json"'
    return response
