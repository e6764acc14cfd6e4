"""`/diff/`: two runs compared, its htmx fragments and its exports (`/diff/export.<fmt>`).

The views parse the parameters, look up both runs (and their kind profiles) and render the one
report `diff_report.diff_report` returns.
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from .. import filters as F
from .. import htmx, kinds
from ..diff_report import DiffTooBig, csv_chunks, diff_report
from ..filters import DecisionFilterForm
from ..forms import HEAT, MAX_RUN_ID, ROWS, ROWS_DIFF, RUN, START, VOLATILE, A, B, DiffForm
from ..querystring import query_string
from ..selectors import get_run_or_404, visible_runs

EXPORT_FORMATS = ("csv", "html")
PARTS = {"diff-body": "viewer/diff.html#diff-body", "diff-more": "viewer/diff.html#rows-page"}
TEMPLATE = "viewer/diff.html"


@require_GET
@htmx.vary_on_fragment
def diff_page(request):
    if RUN in request.GET and A not in request.GET:
        return _from_run_list(request)
    params = DiffForm(request.GET)
    if not params.is_valid():
        return _refused(request, params, {"params": params, "choose": _choices(request.user)}, status=400)
    p = params.cleaned_data
    if p[A] is None:
        return render(request, TEMPLATE, {"params": params, "choose": _choices(request.user)})
    run_a = get_run_or_404(request.user, p[A])
    if p[B] is None:
        return render(request, TEMPLATE, {"params": params, "a": run_a, "pick": _others(request.user, run_a)})
    run_b = get_run_or_404(request.user, p[B])
    pa, pb = kinds.profile(run_a), kinds.profile(run_b)
    form = DecisionFilterForm(request.GET)
    context = {"params": params, "form": form, "a": run_a, "b": run_b, **_form_values(request, pa, pb)}
    if not form.is_valid():
        return _refused(request, form, context)
    try:
        report = diff_report(run_a, pa, run_b, pb, filters=form.filters(), include_volatile=p[VOLATILE],
                             heat=p[HEAT] or None)
    except DiffTooBig as exc:
        if htmx.wants_fragment(request):
            return htmx.bad_request(str(exc), status=413)
        return render(request, TEMPLATE, context | {"too_big": str(exc)}, status=413)
    context.update(_context(report, p))
    return render(request, PARTS.get(htmx.fragment(request, PARTS), TEMPLATE), context)


def _refused(request, form, context, status=200):
    """A bad parameter: a 400 naming it for a fragment, the page with the form's errors otherwise."""
    if htmx.wants_fragment(request):
        return htmx.bad_request(form.error_text())
    return render(request, TEMPLATE, context, status=status)


def _form_values(request, pa, pb) -> dict:
    """The filter inputs the form shows (the kinds' own and the common ones); the other filters
    ride along hidden."""
    get = request.GET
    own = {name: (name, label, type_) for p in (pa, pb) if p.diff for name, label, type_ in p.diff.filters}
    shown = {F.ACTION, F.Q, F.VALUE, *own}
    return {
        "action_values": get.getlist(F.ACTION) + [""],
        "v_values": get.getlist(F.VALUE) + [""],
        "kind_inputs": [
            {"name": name, "label": label, "type": type_, "value": get.get(name, "")}
            for name, label, type_ in own.values()
        ],
        "hidden_filters": [(k, v) for k in F.FILTER_PARAMS if k not in shown for v in get.getlist(k)],
    }


def _from_run_list(request):
    """The runs list's "Compare the two ticked runs" form sends run=X&run=Y."""
    ids = request.GET.getlist(RUN)
    valid = all(i.isdigit() and 0 < int(i) <= MAX_RUN_ID for i in ids)
    if valid and len(set(ids)) > 2:
        # More than two ticked: pick two of them (the dropdowns start on the ticked runs), or see them all
        # side by side on the compare page.
        ticked = sorted({int(i) for i in ids})
        choose = _choices(request.user)
        choose.sort(key=lambda r: (r.pk not in ticked, r.pk if r.pk in ticked else 0))
        compare = "/compare/?" + urlencode([(RUN, pk) for pk in ticked[:12]])
        message = f"You ticked {len(ticked)} runs; a diff compares two: pick them below, or compare them side by side."
        return render(request, TEMPLATE, {"choose": choose, "message": message, "compare_url": compare})
    if not valid or not 1 <= len(ids) <= 2:
        numbers = all(i.isdigit() for i in ids)
        message = "Tick two runs to compare." if numbers else "A run id is not a number."
        return render(request, TEMPLATE, {"choose": _choices(request.user), "message": message}, status=400)
    ids = sorted(ids, key=int)  # the older run (imported first) is A
    return HttpResponseRedirect(reverse("diff") + query_string(set={A: ids[0], B: ids[1:]}))


def _choices(user):
    return list(visible_runs(user).only("pk", "name", "kind", "decision_count", "created")[:500])


def _others(user, run):
    """The user's other runs, those of run's kind first (newest first within)."""
    mine = kinds.profile(run)
    others = list(visible_runs(user).exclude(pk=run.pk).only(
        "pk", "name", "kind", "decision_count", "run_id", "created")[:500])
    for other in others:
        other.same_kind = kinds.profile(other) is mine
    return sorted(others, key=lambda r: not r.same_kind)


def _context(report, p: dict) -> dict:
    only = p[ROWS] == ROWS_DIFF
    divergence = report.divergence
    return {
        "report": report,
        "result": report.result,
        "counts": report.counts,
        "only": only,
        **report.page(only=only, start=p[START]),
        "settings_changed": report.settings_changed,
        "settings_same": report.settings_same,
        "heat": report.heat,
        "heatmap": report.heatmap,
        "divergence": divergence,
        "divergence_sides": [
            ("A", report.a, divergence["context_a"]), ("B", report.b, divergence["context_b"])
        ] if divergence else [],
    }


# --- exports -----------------------------------------------------------------------------------


@require_GET
def diff_export(request, fmt):
    if fmt not in EXPORT_FORMATS:
        raise Http404("No such export")
    params = DiffForm(request.GET)
    form = DecisionFilterForm(request.GET)
    if not params.is_valid():
        return htmx.bad_request(params.error_text())
    p = params.cleaned_data
    missing = [name for name in (A, B) if p[name] is None]
    if missing:
        return htmx.bad_request("; ".join(f"{m}: a run id is required" for m in missing))
    run_a, run_b = get_run_or_404(request.user, p[A]), get_run_or_404(request.user, p[B])
    if not form.is_valid():
        return htmx.bad_request(form.error_text())
    try:
        report = diff_report(run_a, kinds.profile(run_a), run_b, kinds.profile(run_b),
                             filters=form.filters(), include_volatile=p[VOLATILE])
    except DiffTooBig as exc:
        return htmx.bad_request(str(exc), status=413)
    only = p[ROWS] == ROWS_DIFF
    name = f"diff-{run_a.pk}-{run_b.pk}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(
            csv_chunks(report, only=only), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = content_disposition_header(True, name)
    else:
        context = {
            "report": report,
            "only": only,
            "rows": report.row_views(report.rows(only=only)),
            "now": timezone.now().astimezone(dt.UTC),
        }
        response = HttpResponse(render_to_string("viewer/diff_export.html", context),
                                content_type="text/html; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(False, name)
        # Self-contained: nothing to load, nothing to run.
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    response["Cache-Control"] = "private, no-store"
    return response
