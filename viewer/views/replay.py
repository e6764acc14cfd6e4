"""`/runs/<id>/replay/?step=N`: step through a run with the state as of each step; and the JSON
frames its player fetches. viewer/replay_store.py keeps the checkpoints and answers the states;
what a kind shows (its state partial, heatmap, rounds) is its profile's replay spec.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django import forms
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.http import content_disposition_header
from django.utils.text import get_valid_filename, slugify
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET

from .. import access, exports, htmx, kinds, notes
from .. import replay as R
from .. import replay_store as store
from ..filters import FILTER_PARAMS, DecisionFilterForm, describe_filters, filter_querystring
from ..forms import MAX_FRAME_SPAN, FramesForm, StepForm
from ..heatmap import DIVERGING, SEQUENTIAL
from ..htmx import vary_on_fragment
from ..models import ReplayIndex, Run
from ..querystring import pairs, query_string
from ..selectors import get_run_or_404
from ..text import clock, duration

ROWS_BEFORE, ROWS_AFTER = 10, 15  # the decision list around the current step
SPEEDS = (0.5, 1, 2, 4, 8, 16)
PARTS = {"replay-main": "viewer/replay.html#replay-main"}
SHOWN_FILTERS = ("action", "q")  # the replay form's own inputs; a kind's spec adds its own


@dataclass(frozen=True)
class Shown:
    """What one replay page shows, for its renderers: the run, its kind's spec and words, links."""

    run: Run
    spec: R.ReplaySpec
    words: object
    base: str  # the page's URL
    kept: list  # the request's filter parameters, kept in every link

    def href(self, step: int) -> str:
        return self.base + query_string(self.kept, set={"step": step})


def _shown(request, run: Run) -> Shown:
    profile = kinds.profile(run)
    return Shown(run, profile.replay or R.GENERIC, profile.words, reverse("run-replay", args=[run.pk]),
                 pairs(request.GET, keep=FILTER_PARAMS))


@require_GET
@vary_on_fragment
def replay(request, run_id):
    run = get_run_or_404(request.user, run_id)
    shown = _shown(request, run)
    form, step_form = DecisionFilterForm(request.GET), StepForm(request.GET)
    part = htmx.fragment(request, PARTS)
    valid = form.is_valid() & step_form.is_valid()  # both validated: the page lists every error
    if not valid and part:
        return htmx.bad_request(_error_text(form, step_form))
    index = store.get_index(run, form.filters()) if valid else None
    ctx = _page_context(request, shown, form, step_form, index)
    if index is not None and index.status == ReplayIndex.Status.READY:
        ctx.update(_player_context(shown, form.filters(), index, step_form.cleaned_data, request.user))
    return render(request, PARTS.get(part, "viewer/replay.html"), ctx, status=200 if valid else 400)


@require_GET
@gzip_page  # frames are repetitive JSON with no secret in them: gzip shrinks them ~10x
def frames(request, run_id):
    """JSON: the states at start, start+stride, ... with each step's list row, for the player."""
    run = get_run_or_404(request.user, run_id)
    form, frames_form = DecisionFilterForm(request.GET), FramesForm(request.GET)
    if not form.is_valid() & frames_form.is_valid():
        return JsonResponse({"detail": _error_text(form, frames_form)}, status=400)
    index = store.get_index(run, form.filters())
    if index.status != ReplayIndex.Status.READY:
        return JsonResponse({"status": index.status, "built_steps": index.built_steps}, status=202)
    data = frames_form.cleaned_data
    stride = data["stride"] or 1
    count = max(1, min(data["count"] or 50, MAX_FRAME_SPAN // stride))
    player = store.stored_replay(run, form.filters(), index)
    at = store.step_of(player, data["start"], data["t"])
    shown = _shown(request, run)
    start = max(0, at - (data["back"] or 0))
    found = list(player.frames(start, count, stride))
    noted = _noted(request.user, run, [f.decision["seq"] for f in found if f.decision])
    out = [_frame_json(shown, player.reducer, f, noted) for f in found]
    response = JsonResponse({"total": player.total, "at": at, "frames": out})
    response["Cache-Control"] = "private, no-store"
    return response


def _error_text(*forms) -> str:
    return "; ".join(form.error_text() for form in forms if form.errors)


def _page_context(request, shown: Shown, form, step_form, index: ReplayIndex | None) -> dict:
    filters = form.filters() if form.is_valid() else {}
    own = {*SHOWN_FILTERS, *shown.spec.filters}
    return {
        "run": shown.run, "spec": shown.spec, "words": shown.words, "form": form, "step_form": step_form,
        "index": index,
        "filter_qs": filter_querystring(request.GET),
        "filters_text": describe_filters(filters), "kept_filters": shown.kept,
        "hidden_filters": [(name, value) for name, value in shown.kept if name not in own],
        "filters_template": f"{shown.spec.template}#filters",
        "has_filters": bool(filters), "step_errors": step_form.error_text() if step_form.errors else "",
        "export_url": reverse("run-export", args=[shown.run.pk, "jsonl"]),
        "progress": store.progress(shown.run, index),
        "decision_count": f"{shown.run.decision_count:,}",
    }


def _player_context(shown: Shown, filters: dict, index: ReplayIndex, data: dict, user=None) -> dict:
    player = store.stored_replay(shown.run, filters, index)
    step = store.step_of(player, data.get("step"), data.get("t"))
    frame, window = player.window(step, ROWS_BEFORE, ROWS_AFTER)
    current_t = frame.decision.get("t_ms") if frame.decision else None
    noted = _noted(user, shown.run, [d["seq"] for _, d in window] + ([frame.decision["seq"]] if frame.decision else []))
    layers = shown.spec.layers
    ctx = {
        "step": step, "total": player.total, "frame": frame, "speeds": SPEEDS,
        "rows": [_decision_row(shown, player.reducer, s, d, noted) for s, d in window],
        "notes_place": _notes_place(shown, frame.decision, noted),
        "prev_step": max(0, step - 1), "next_step": min(player.total, step + 1),
        "first_href": shown.href(0), "prev_href": shown.href(max(0, step - 1)),
        "next_href": shown.href(min(player.total, step + 1)), "last_href": shown.href(player.total),
        "current_t": current_t, "current_t_text": clock(current_t),
        "round_text": _round_text(shown.spec, frame.state),
        "t_first": index.t_first,
        "span_text": duration(index.t_last),
        "markers_html": _markers_html(shown, index.markers, player.total),
        "marker_categories": _legend(shown.spec, index.markers),
        "layers": layers,
        "player_data": {
            "step": step, "total": player.total, "every": index.every,
            "t_first": index.t_first, "t_last": index.t_last, "page_url": shown.base,
            "frames_url": reverse("run-replay-frames", args=[shown.run.pk]), "filters": shown.kept,
            "signed": [key for key, _, signed in layers if signed],
            "scales": {"sequential": SEQUENTIAL, "diverging": DIVERGING},
        },
        **_state_context(shown, frame.state),
    }
    if shown.spec.grid is not None:
        ctx["grid"] = shown.spec.grid(frame.state)
    return ctx


def _state_context(shown: Shown, state: dict) -> dict:
    """What the state partial reads: the state, counts by action, and the kind's own context."""
    spec = shown.spec
    return {
        "run": shown.run, "spec": spec, "words": shown.words, "state": state,
        "state_template": f"{spec.template}#state",
        "kept_query": query_string(shown.kept)[1:],  # the filters, for the state's own links
        "counts": R.counts_sorted(state.get("counts", {})),
        **(spec.context(state) if spec.context else {}),
    }


def _decision_row(shown: Shown, reducer: R.Reducer, step: int, d: dict, noted: dict | None = None) -> dict:
    found = (noted or {}).get(d.get("seq"))
    return {"step": step, **d, "href": shown.href(step), "t_text": clock(d.get("t_ms")),
            "marker": reducer.marker(d), "note": notes.summary(found) if found else None}


def _noted(user, run: Run, seqs: list[int]) -> dict:
    """{seq: its notes} of the decisions shown, and (key "can_add") whether the user may annotate."""
    return {**notes.by_seq(run, seqs), "can_add": access.can_annotate(user, run)}


def _notes_place(shown: Shown, decision: dict | None, noted: dict) -> dict:
    """What viewer/notes.html#brief shows: the notes of the decision at the current step."""
    seq = decision["seq"] if decision else None
    found = noted.get(seq, []) if seq is not None else []
    return {"run": shown.run, "seq": seq, "can_add": noted.get("can_add"),
            "items": [{"note": n, "html": notes.html(n)} for n in found]}


def _round_text(spec: R.ReplaySpec, state: dict) -> str:
    return f"round {state['round']}" if spec.rounds and state.get("round") is not None else ""


def _frame_json(shown: Shown, reducer: R.Reducer, frame: R.Frame, noted: dict | None = None) -> dict:
    d = frame.decision
    noted = noted or {}
    row = {"run": shown.run, "spec": shown.spec, "row": _decision_row(shown, reducer, frame.step, d, noted)} if d else None
    out = {
        "step": frame.step,
        "seq": d["seq"] if d else None,
        "t_ms": d.get("t_ms") if d else None,
        "t_text": clock(d.get("t_ms")) if d else "",
        "round": frame.state.get("round"),
        "round_text": _round_text(shown.spec, frame.state),
        "state": render_to_string("viewer/replay.html#state", _state_context(shown, frame.state)),
        "href": shown.href(frame.step),
        "row": render_to_string("viewer/replay.html#row", row) if row else "",
        "notes": render_to_string("viewer/notes.html#brief", {"place": _notes_place(shown, d, noted)}),
    }
    if shown.spec.grid is not None:
        out["grid"] = shown.spec.grid(frame.state)
    return out


def _legend(spec: R.ReplaySpec, markers: list) -> list[str]:
    """The marker categories present, in the spec's order (any other after, sorted)."""
    present = {category for _, category, _ in markers}
    return [c for c in spec.markers if c in present] + sorted(present - set(spec.markers))


def _markers_html(shown: Shown, markers: list, total: int) -> str:
    """The scrubber's marker links (hundreds on a big run: built here, not in a template loop)."""
    link = '<a class="marker m-{}" href="{}" data-step="{}" style="left: {}%" title="{}"></a>'
    return format_html_join("", link, (
        (slugify(category), shown.href(step), step, f"{100 * step / max(1, total):.3f}",
         f"{category} at step {step}" + (f" (+{count - 1} more nearby)" if count > 1 else ""))
        for step, category, count in markers))


# -- exports of a replay's state: a document's text as of a step, the writing process as CSV ------
DOC = "doc"


class DocumentForm(StepForm):
    """`doc` (a document id of the state) as of `step` (or `t`)."""

    doc = forms.CharField(max_length=500)


def _export_state(request, run, where):
    """(state, step) as of the step `where` names, or an answer to give instead (400, 202)."""
    form = DecisionFilterForm(request.GET)
    if not form.is_valid() & where.is_valid():
        return None, htmx.bad_request(_error_text(form, where))
    data = where.cleaned_data
    found = store.replay_state(run, form.filters(), data["step"], data["t"])
    if found is None:
        return None, HttpResponse("The replay is being prepared; ask again in a moment.", status=202,
                                  content_type="text/plain; charset=utf-8")
    return found, None


def _download(response, filename: str):
    response["Content-Disposition"] = content_disposition_header(True, get_valid_filename(filename)[:150])
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def document_text(request, run_id):
    """`replay/document.txt?step=N&doc=<doc_id>`: a document's text as of step N (the run's filters apply)."""
    run = get_run_or_404(request.user, run_id)
    found, answer = _export_state(request, run, DocumentForm(request.GET))
    if answer:
        return answer
    doc = R.mapping(R.mapping(found["state"].get("documents")).get(request.GET[DOC]))
    if not isinstance(doc.get("text"), str):
        raise Http404("No such document as of this step")
    response = HttpResponse(doc["text"], content_type="text/plain; charset=utf-8")
    return _download(response, f"{request.GET[DOC]}_step{found['step']}.txt")


@require_GET
def writing_csv(request, run_id):
    """`replay/writing.csv`: the writing-process figures (per document and minute) as of `step`
    (default: the end), from the kind's replay context; 404 for a kind that has none."""
    run = get_run_or_404(request.user, run_id)
    spec = kinds.profile(run).replay or R.GENERIC
    where = StepForm(request.GET)
    if where.is_valid() and where.cleaned_data["step"] is None and where.cleaned_data["t"] is None:
        where.cleaned_data["step"] = 2**31 - 1  # the end
    found, answer = _export_state(request, run, where)
    if answer:
        return answer
    rows = (spec.context(found["state"]) if spec.context else {}).get("writing_csv")
    if rows is None:
        raise Http404("This kind of run has no writing process")
    response = StreamingHttpResponse(_csv_lines(rows()), content_type="text/csv; charset=utf-8")
    return _download(response, f"run_{run.pk}_writing_step{found['step']}.csv")


def _csv_lines(rows):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        writer.writerow([exports.neutralize(v) if isinstance(v, str) else v for v in row])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
