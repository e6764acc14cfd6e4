"""A run as a trace (/runs/<id>/trace/, issue 16.1): the tree (a session's rounds, turns and calls; a
trace's spans under their parents), the selected node (`?node=<seq>`) in a side panel, the calls on
one lane per agent. The side panel alone is the `trace-panel` fragment.

Only for a kind whose profile has a `trace` piece (a session, a trace); any other run is a 404 here.
"""
from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .. import htmx, kinds, trace
from ..htmx import vary_on_fragment
from ..selectors import get_run_or_404

PARTS = {"trace-panel": "viewer/trace.html#trace-panel"}
NODE = "node"


def _node(value: str | None) -> int | None:
    """?node=<seq>; anything but a whole number selects nothing (the page says so)."""
    try:
        return int(value) if value not in (None, "") and len(value) < 12 else None
    except ValueError:
        return None


@require_GET
@vary_on_fragment
def trace_page(request, run_id):
    run = get_run_or_404(request.user, run_id)
    spec = kinds.profile(run).trace
    if spec is None:
        raise Http404("This run's kind has no trace")
    names = {k: v for k, v in (run.agents or {}).items() if isinstance(v, str)}
    built = trace.build(run=run, spec=spec, names=names)
    asked = request.GET.get(NODE, "")
    selected = built.select(_node(asked))
    context = {
        "run": run,
        "spec": spec,
        "trace": built,
        "selected": selected,
        "turn": selected.parent if selected is not None and selected.parent is not None
        and selected.parent.role == "turn" else None,
        "asked": asked if asked and selected is None else "",
        "names": names,
        "figure": trace.lanes_figure(built, names=names, link=f"/runs/{run.pk}/trace/?{NODE}="),
    }
    return render(request, PARTS.get(htmx.fragment(request, PARTS), "viewer/trace.html"), context)
