"""A run's game state over time (/runs/<id>/state/): one plot per quantity, each point a link to its
decision. Only for a kind whose profile has a `state` spec (a session); any other run is a 404 here."""
from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .. import kinds, state
from ..filters import filter_querystring
from ..selectors import get_run_or_404


@require_GET
def state_page(request, run_id):
    run = get_run_or_404(request.user, run_id)
    spec = kinds.profile(run).state
    if spec is None:
        raise Http404("This run's kind has no state over time")
    series = state.state_series(run, spec)
    plots = state.figures(series)
    context = {
        "run": run,
        "plots": plots,
        "figures": {p["key"]: p["figure"] for p in plots},
        "rounds": len(series.rounds),
        "filter_qs": filter_querystring(request.GET),
    }
    return render(request, "viewer/state.html", context)
