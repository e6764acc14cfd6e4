"""`/runs/<id>/export.<fmt>`: the run's filtered decisions as a streamed download."""
from django.http import Http404, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from .. import exports, htmx, kinds
from ..filters import DecisionFilterForm
from ..selectors import get_run_or_404

MAX_ID = 2**63 - 1


@require_GET
def run_export(request, run_id, fmt):
    if fmt not in exports.FORMATS or run_id > MAX_ID:
        raise Http404("No such export")
    run = get_run_or_404(request.user, run_id)
    form = DecisionFilterForm(request.GET)
    if not form.is_valid():
        return htmx.bad_request(form.error_text())
    kind = kinds.profile(run)
    chunks = exports.export_chunks(run, fmt, form, raw_is_decision=kind.raw_is_decision, llm=kind.llm,
                                   otlp_record=kind.otlp_record)
    response = StreamingHttpResponse(chunks, content_type=exports.CONTENT_TYPES[fmt])
    filename = exports.export_filename(run, fmt, form, replay_file=kind.replay_file)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    return response
