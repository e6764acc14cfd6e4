"""A run's LLM use and replay readiness (/runs/<id>/llm/, the run page's panel loads it as a fragment)
and its replay kit (/runs/<id>/replay-kit.json). Issue 16.2 and 16.6.

Only for a kind whose profile has an `llm` piece (a session); any other run is a 404 here.
"""
from __future__ import annotations

import json

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from .. import htmx, kinds, replay_kit, tokens
from ..htmx import vary_on_fragment
from ..selectors import get_run_or_404

PARTS = {"llm-panel": "viewer/llm.html#llm-panel"}


def _llm_spec(run):
    spec = kinds.profile(run).llm
    if spec is None:
        raise Http404("This run's kind logs no LLM calls")
    return spec


@require_GET
@vary_on_fragment
def llm_panel(request, run_id):
    run = get_run_or_404(request.user, run_id)
    spec = _llm_spec(run)
    context = {
        "run": run,
        "llm": tokens.panel(run=run, spec=spec, agents=run.agents),
        "ready": replay_kit.readiness(run=run, spec=spec, agents=run.agents),
    }
    context["ready_line"] = replay_kit.summary_line(context["ready"])
    return render(request, PARTS.get(htmx.fragment(request, PARTS), "viewer/llm.html"), context)


@require_GET
def replay_kit_json(request, run_id):
    run = get_run_or_404(request.user, run_id)
    kit = replay_kit.kit(run=run, spec=_llm_spec(run))
    # A download: the responses exactly as logged, for a cached-response client.
    response = HttpResponse(json.dumps(kit, ensure_ascii=False, indent=1), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, f"run-{run.pk}-replay-kit.json")
    return response
