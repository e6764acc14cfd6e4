"""The tuner's pages (issue 17): one cell's story (/runs/<id>/cells/story/, also the card the cells
drilldown loads), the result tables (/runs/<id>/tables/) and N runs compared (/compare/). What each
shows comes from the run's kind (`kinds.profile(run).tuning`); a kind without it has none of them."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .. import cell_story, compare, htmx, kinds
from ..selectors import get_run_or_404, visible_runs

STORY_PARTS = {"cell-story": "viewer/cell_story.html#cell-story"}


def _tuning(run):
    spec = kinds.profile(run).tuning
    if spec is None:
        raise Http404(f"A {kinds.profile(run).label} has no cell story or result tables")
    return spec


@require_GET
@htmx.vary_on_fragment
def story(request, run_id):
    run = get_run_or_404(request.user, run_id)
    spec = _tuning(run)
    form = cell_story.StoryForm(request.GET, spec=spec)
    part = htmx.fragment(request, STORY_PARTS)
    if not form.is_valid():
        if part:
            return htmx.bad_request(form.error_text())
        return render(request, "viewer/cell_story.html", {"run": run, "form": form}, status=400)
    story = cell_story.cell_story(spec=spec, run=run, form=form)
    shown, left = cell_story.compact(story["decisions"])
    context = {"run": run, "form": form, "story": story, "shown": shown, "left": left, "story_line": spec.story_line}
    return render(request, STORY_PARTS.get(part, "viewer/cell_story.html"), context)


@require_GET
def tables(request, run_id):
    run = get_run_or_404(request.user, run_id)
    report = _tuning(run).tables(run)
    return render(request, "viewer/tables.html", {"run": run, "report": report})


@require_GET
def compare_page(request):
    form = compare.CompareForm(request.GET)
    context = {
        "form": form,
        "choose": [r for r in visible_runs(request.user)[:500] if kinds.profile(r).tuning],
    }
    if not form.is_valid():
        return render(request, "viewer/compare.html", context, status=400 if request.GET else 200)
    try:
        runs, specs = compare.compared_runs(request.user, form.cleaned_data[compare.RUN])
    except ValueError as exc:
        form.add_error(compare.RUN, str(exc))
        return render(request, "viewer/compare.html", context, status=400)
    p = form.cleaned_data
    cell = (p["rpm"], p["kpa"]) if p["rpm"] is not None and p["kpa"] is not None else None
    report = compare.compare(runs=runs, specs=specs, cell=cell)
    cell = (report["cell"]["rpm"], report["cell"]["kpa"]) if report["cell"] else None
    multiples = compare.small_multiples(
        report["grids"], titles=[r.name for r in runs], value_title=specs[0].value_title, cell=cell
    )
    for i, m in enumerate(multiples):
        if m is not None:
            m["id"] = f"multiple-figure-{i}"
    context.update(
        actions=list(dict.fromkeys(a for o in report["outcomes"].values() for a in o["by_action"])),
        report=report,
        runs=runs,
        multiples=list(zip(runs, multiples)),
        cell_values=list(zip(runs, report["cell"]["values"])) if report["cell"] else [],
        names={r.pk: r.name for r in runs},
    )
    return render(request, "viewer/compare.html", context)


