"""`/runs/<id>/export.<fmt>`: the run's filtered decisions as a streamed download, or the audit
trail printed to PDF (`export.pdf`, viewer/pdf.py: rendered whole, so bounded)."""
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from .. import exports, htmx, kinds
from ..filters import DecisionFilterForm
from ..selectors import get_run_or_404

MAX_ID = 2**63 - 1
PDF = "pdf"  # the same URL name (run-export): a public audit link opens it as it opens export.html


@require_GET
def run_export(request, run_id, fmt):
    if fmt not in (*exports.FORMATS, PDF) or run_id > MAX_ID:
        raise Http404("No such export")
    run = get_run_or_404(request.user, run_id)
    form = DecisionFilterForm(request.GET)
    if not form.is_valid():
        return htmx.bad_request(form.error_text())
    kind = kinds.profile(run)
    if fmt == PDF:
        response = _pdf(run, form, kind)
    else:
        chunks = exports.export_chunks(run, fmt, form, raw_is_decision=kind.raw_is_decision, llm=kind.llm,
                                       otlp_record=kind.otlp_record, words=kind.words)
        response = StreamingHttpResponse(chunks, content_type=exports.CONTENT_TYPES[fmt])
    if response.status_code == 200:
        filename = exports.export_filename(run, fmt, form, replay_file=kind.replay_file)
        response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    return response


def _pdf(run, form, kind) -> HttpResponse:
    from .. import pdf  # loads WeasyPrint and Pango: only when a PDF is asked for

    try:
        data = pdf.audit_pdf(run, form, words=kind.words)
    except pdf.TooBig as exc:
        return htmx.bad_request(str(exc), status=413)
    return HttpResponse(data, content_type=pdf.CONTENT_TYPE)
