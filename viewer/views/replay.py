"""`/runs/<id>/replay/?step=N`: step through a run with the state as of each step.

viewer/replay.py does the folding; this module stores its checkpoints (ReplayIndex and
ReplayCheckpoint, built once per run and filters) and feeds it decisions through the selectors,
so that a jump reads one checkpoint and at most `every` decisions. A run bigger than
REPLAYWEB_REPLAY_SYNC_MAX decisions gets its index built by a background thread while the page
shows the progress.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from urllib.parse import urlencode

import orjson
from django import forms
from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.text import slugify
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from .. import replay as R
from ..filters import FILTER_PARAMS, DecisionFilterForm, describe_filters, filter_querystring
from ..models import ReplayCheckpoint, ReplayIndex, Run
from ..selectors import decision_list, filtered_decisions, get_run_or_404

log = logging.getLogger(__name__)

# What the reducers and the decision list read: no ts (t_ms serves), no raw, no LLM text.
LOAD_FIELDS = ("seq", "t_ms", "action", "reason", "rpm", "kpa", "cylinder", "rpm_index", "kpa_index", "round",
               "agent", "metric")
ROWS_BEFORE, ROWS_AFTER = 10, 15  # the decision list around the current step
SPEEDS = (0.5, 1, 2, 4, 8, 16)
MAX_FRAMES = 200
MAX_FRAME_SPAN = 20_000  # decisions one frames request may fold (count x stride)
STALE_BUILD = dt.timedelta(minutes=2)  # a "building" index not touched for this long is rebuilt
FLUSH_EVERY = 100  # checkpoints written per transaction while building
MAX_INDEXES_PER_RUN = 20  # filter sets whose checkpoints a run keeps


def parse_time(text: str) -> float:
    """A time since the run's start, in ms: "1:02.5" (m:ss), "1:00:00", "12s", "800ms" or plain ms."""
    text = text.strip().lower()
    try:
        if ":" in text:
            seconds = 0.0
            for part in text.split(":"):
                seconds = seconds * 60 + float(part)
            value = seconds * 1000
        elif text.endswith("ms"):
            value = float(text[:-2])
        elif text.endswith("s"):
            value = float(text[:-1]) * 1000
        else:
            value = float(text)
    except ValueError:
        raise forms.ValidationError(
            "%(t)r is not a time such as 1:02.5, 12s or 800ms", params={"t": text[:40]}) from None
    if value != value or abs(value) == float("inf"):
        raise forms.ValidationError("not a finite time")
    return value


class StepForm(forms.Form):
    step = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    t = forms.CharField(required=False, max_length=40, label="Time since the start")

    def clean_t(self):
        text = self.cleaned_data["t"]
        return parse_time(text) if text.strip() else None


class FramesForm(StepForm):
    """`start` (a step), or `t` (a time: the frames then start `back` steps before the step at t)."""

    start = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    back = forms.IntegerField(required=False, min_value=0, max_value=MAX_FRAMES)
    count = forms.IntegerField(required=False, min_value=1, max_value=MAX_FRAMES)
    stride = forms.IntegerField(required=False, min_value=1, max_value=MAX_FRAME_SPAN)


def as_dicts(qs: QuerySet) -> Iterator[dict]:
    """The selector's decisions as plain dicts for viewer.replay. `values` is read as JSON text and
    parsed with orjson: twice as fast as the JSONField's own decoding, which a 1M pass feels."""
    rows = qs.annotate(values_json=Cast("values", TextField())).values_list(*LOAD_FIELDS, "values_json")
    for row in rows.iterator(chunk_size=5000):
        d = dict(zip(LOAD_FIELDS, row))
        d["values"] = _loads(row[-1])
        yield d


def _loads(text: str | None):
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN or Infinity written by a lenient JSON encoder
        return json.loads(text)


# --- the index: built once per (run, filters), stored --------------------------------------


def filter_key(filters: dict, every: int) -> str:
    canonical = {name: [str(v) for v in value] if isinstance(value, tuple) else
                 value.isoformat() if isinstance(value, dt.datetime) else value
                 for name, value in sorted(filters.items())}
    text = json.dumps([R.REDUCER_VERSION, every, canonical], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def get_index(run: Run, filters: dict) -> ReplayIndex:
    """The run's replay index for these filters: ready, or being built (by this call when the run
    is small, else by a background thread)."""
    every = getattr(settings, "REPLAYWEB_REPLAY_EVERY", R.CHECKPOINT_EVERY)
    key = filter_key(filters, every)
    index = ReplayIndex.objects.filter(run=run, key=key).first()
    if index is not None and (index.status == ReplayIndex.Status.READY or (
            index.status == ReplayIndex.Status.BUILDING and timezone.now() - index.updated < STALE_BUILD)):
        return index
    if index is not None:
        index.delete()  # failed or abandoned: start again
    try:
        with transaction.atomic():
            index = ReplayIndex.objects.create(run=run, key=key, every=every)
    except IntegrityError:  # another request started it a moment ago
        return ReplayIndex.objects.get(run=run, key=key)
    # Each filter set keeps its own checkpoints: keep the newest few per run.
    older = ReplayIndex.objects.filter(run=run).order_by("-updated", "-pk").values_list("pk", flat=True)
    ReplayIndex.objects.filter(pk__in=list(older[MAX_INDEXES_PER_RUN:])).delete()
    sync_max = getattr(settings, "REPLAYWEB_REPLAY_SYNC_MAX", 200_000)
    if run.decision_count <= sync_max:
        build(index, run, filters)
    else:
        threading.Thread(target=_build_in_thread, args=(index.pk, run.pk, filters), daemon=True).start()
    return index


def _build_in_thread(index_id: int, run_id: int, filters: dict) -> None:
    close_old_connections()
    try:
        build(ReplayIndex.objects.get(pk=index_id), Run.objects.get(pk=run_id), filters)
    finally:
        close_old_connections()


def build(index: ReplayIndex, run: Run, filters: dict) -> None:
    """One pass over the filtered decisions: checkpoints, markers and length, stored."""
    pending: list[ReplayCheckpoint] = []

    def flush():
        ReplayCheckpoint.objects.bulk_create(pending)
        ReplayIndex.objects.filter(pk=index.pk).update(built_steps=pending[-1].step, updated=timezone.now())
        pending.clear()

    def keep(cp: R.Checkpoint):
        pending.append(ReplayCheckpoint(index=index, step=cp.step, seq=cp.seq, t_ms=cp.t_ms, state=cp.state))
        if len(pending) >= FLUSH_EVERY:
            flush()

    try:
        rows = as_dicts(filtered_decisions(run=run, **filters))
        result = R.build_index(run.kind, rows, every=index.every, on_checkpoint=keep)
        if pending:
            flush()
        index.status = ReplayIndex.Status.READY
        index.total, index.built_steps = result.total, result.total
        index.t_first, index.t_last, index.markers = result.t_first, result.t_last, result.markers
        index.save()
    except Exception as exc:  # recorded on the index and shown; the next visit tries again
        log.exception("replay index %s of run %s failed", index.pk, run.pk)
        index.status, index.error = ReplayIndex.Status.FAILED, str(exc)[:500]
        ReplayIndex.objects.filter(pk=index.pk).update(status=index.status, error=index.error)


def _checkpoint(row: ReplayCheckpoint | None) -> R.Checkpoint:
    return R.Checkpoint(row.step, row.seq, row.t_ms, row.state)


def stored_replay(run: Run, filters: dict, index: ReplayIndex) -> R.Replay:
    """A Replay over the stored checkpoints, loading decisions through decision_list."""
    checkpoints = ReplayCheckpoint.objects.filter(index=index)

    def load(after, limit):
        return as_dicts(decision_list(run=run, after=after, limit=limit, **filters))

    def before(step):
        return _checkpoint(checkpoints.get(step=step // index.every * index.every))

    def by_time(t_ms):
        row = checkpoints.filter(t_ms__lte=t_ms).order_by("-step").first()
        return _checkpoint(row or checkpoints.get(step=0))

    return R.Replay(kind=run.kind, total=index.total, every=index.every, load=load,
                    checkpoint_before=before, checkpoint_by_time=by_time)


def replay_state(run: Run, filters: dict, step: int | None = None, t: float | None = None) -> dict | None:
    """The state at a step (or at a time) as plain data, for the API; None while the index builds."""
    index = get_index(run, filters)
    if index.status != ReplayIndex.Status.READY:
        return None
    player = stored_replay(run, filters, index)
    if t is not None:
        step = player.step_at_time(t)
    frame = player.frame(player.clamp(step or 0))
    return {"step": frame.step, "total": player.total, "decision": frame.decision, "state": frame.state}


# --- views ---------------------------------------------------------------------------------


def _href(base: str, pairs: list[tuple[str, str]], step: int) -> str:
    return base + "?" + urlencode([*pairs, ("step", step)])


def _decision_row(run: Run, step: int, d: dict, base: str, pairs: list) -> dict:
    return {"step": step, **d, "href": _href(base, pairs, step), "t_text": format_t(d.get("t_ms")),
            "marker": R.reducer_for(run.kind).marker(d)}


def format_t(t_ms: float | None) -> str:
    """+22.0 ms, +1.50 s, +1:02.5, +1:02:03 (as the player's clock shows it)."""
    if t_ms is None:
        return ""
    sign = "-" if t_ms < 0 else "+"
    t = abs(t_ms)
    if t < 1000:
        return f"{sign}{t:.1f} ms"
    s = t / 1000
    if s < 60:
        return f"{sign}{s:.2f} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{sign}{int(m)}:{s:04.1f}"
    h, m = divmod(int(m), 60)
    return f"{sign}{h}:{m:02d}:{int(s):02d}"


def _filter_pairs(request) -> list[tuple[str, str]]:
    """The request's filter parameters as given, to keep them in every link."""
    return [(name, value) for name in FILTER_PARAMS for value in request.GET.getlist(name) if value != ""]


def _state_context(run: Run, frame: R.Frame) -> dict:
    state = frame.state
    ctx = {"run": run, "state": state, "counts": R.counts_sorted(state.get("counts", {}))}
    if run.kind == "dynoai":
        ctx["cells_touched"] = len(state.get("cells", {}))
        ctx["anomaly_cells"] = sum(1 for c in state.get("cells", {}).values() if c.get("anomaly"))
    elif run.kind == "session":
        ctx["clocks"] = [{"name": name, **c, "pct": _pct(c.get("cur"), c.get("max"))}
                         for name, c in state.get("clocks", {}).items()]
        ctx["characters"] = [{"id": k, **c, "pct": _pct(c.get("health"), c.get("max_health"))}
                             for k, c in state.get("characters", {}).items()]
        ctx["enemies"] = [{"id": k, **e, "pct": _pct(e.get("health"), e.get("max_health"))}
                          for k, e in state.get("enemies", {}).items()]
        agents = state.get("agents", {})
        ctx["agents"] = [{"id": k, **a, "tokens": a["input"] + a["output"]} for k, a in agents.items()]
        ctx["llm_total"] = {f: sum(a[f] for a in agents.values()) for f in ("calls", "input", "output")}
    elif run.kind == "study":
        ctx["active_s"] = state.get("active_ms", 0) / 1000
        ctx["documents"] = list(state.get("documents", {}).items())
    return ctx


def _pct(value, top) -> float | None:
    try:
        return max(0.0, min(100.0, 100.0 * float(value) / float(top))) if top else None
    except (TypeError, ValueError):
        return None


def _frame_json(run: Run, frame: R.Frame, base: str, pairs: list) -> dict:
    d = frame.decision
    row = {"run": run, "row": _decision_row(run, frame.step, d, base, pairs)} if d else None
    out = {
        "step": frame.step,
        "seq": d["seq"] if d else None,
        "t_ms": d.get("t_ms") if d else None,
        "round": frame.state.get("round"),
        "state": render_to_string("viewer/replay.html#state", _state_context(run, frame)),
        "t_text": format_t(d.get("t_ms")) if d else "",
        "href": _href(base, pairs, frame.step),
        "row": render_to_string("viewer/replay.html#row", row) if row else "",
    }
    if run.kind == "dynoai":
        out["grid"] = R.dyno_grid(frame.state)
    return out


@require_GET
@vary_on_headers("HX-Request")
def replay(request, run_id):
    run = get_run_or_404(request.user, run_id)
    form = DecisionFilterForm(request.GET)
    step_form = StepForm(request.GET)
    partial = request.htmx and not request.htmx.history_restore_request
    if not (form.is_valid() and step_form.is_valid()):
        if partial:
            text = "; ".join(filter(None, [form.error_text() if form.errors else "",
                                           _errors(step_form)]))
            return HttpResponseBadRequest(text, content_type="text/plain; charset=utf-8")
        ctx = _page_context(request, run, form, step_form, None)
        return render(request, "viewer/replay.html", ctx, status=400)
    filters = form.filters()
    index = get_index(run, filters)
    ctx = _page_context(request, run, form, step_form, index)
    if index.status == ReplayIndex.Status.READY:
        ctx.update(_player_context(request, run, filters, index, step_form.cleaned_data))
    template = "viewer/replay.html#replay-main" if partial else "viewer/replay.html"
    return render(request, template, ctx)


def _errors(form: forms.Form) -> str:
    return "; ".join(f"{name}: {e}" for name, errs in form.errors.items() for e in errs)


def _page_context(request, run, form, step_form, index) -> dict:
    filters = form.filters() if form.is_bound and not form.errors else {}
    kept = _filter_pairs(request)
    return {
        "run": run, "form": form, "step_form": step_form, "index": index,
        "filter_qs": filter_querystring(request.GET),
        "filters_text": describe_filters(filters), "kept_filters": kept,
        "has_filters": bool(filters), "step_errors": _errors(step_form) if step_form.errors else "",
        "export_url": reverse("run-export", args=[run.pk, "jsonl"]),
        "progress": _progress(run, index),
        "decision_count": f"{run.decision_count:,}",
    }


def _progress(run: Run, index: ReplayIndex | None) -> int:
    """How far through the run's file a build has come, in percent."""
    if index is None or index.status != ReplayIndex.Status.BUILDING:
        return 0
    newest = ReplayCheckpoint.objects.filter(index=index).order_by("-step")
    last = newest.values_list("seq", flat=True).first()
    return min(99, round(100 * ((last or 0) + 1) / max(1, run.decision_count)))


def _player_context(request, run: Run, filters: dict, index: ReplayIndex, data: dict) -> dict:
    player = stored_replay(run, filters, index)
    step = data.get("step")
    if data.get("t") is not None:
        step = player.step_at_time(data["t"])
    step = player.clamp(step or 0)
    frame, window = player.window(step, ROWS_BEFORE, ROWS_AFTER)
    base, pairs = reverse("run-replay", args=[run.pk]), _filter_pairs(request)
    current_t = frame.decision.get("t_ms") if frame.decision else None
    ctx = {
        "step": step, "total": player.total, "frame": frame, "speeds": SPEEDS,
        "rows": [_decision_row(run, s, d, base, pairs) for s, d in window],
        "prev_step": max(0, step - 1), "next_step": min(player.total, step + 1),
        "first_href": _href(base, pairs, 0), "prev_href": _href(base, pairs, max(0, step - 1)),
        "next_href": _href(base, pairs, min(player.total, step + 1)),
        "last_href": _href(base, pairs, player.total),
        "current_t": current_t, "current_t_text": format_t(current_t),
        "t_first": index.t_first,
        "span_text": format_t(index.t_last).lstrip("+"),
        "markers_html": _markers_html(index.markers, player.total, base, pairs),
        "marker_categories": sorted({c for _, c, _ in index.markers}),
        "player_data": {
            "kind": run.kind, "step": step, "total": player.total, "every": index.every,
            "t_first": index.t_first, "t_last": index.t_last, "page_url": base,
            "frames_url": reverse("run-replay-frames", args=[run.pk]), "filters": pairs,
        },
        **_state_context(run, frame),
    }
    if run.kind == "dynoai":
        ctx["grid"] = R.dyno_grid(frame.state)
        ctx["layers"] = list(R.LAYERS.items())
    return ctx


def _markers_html(markers: list, total: int, base: str, pairs: list) -> str:
    """The scrubber's marker links (hundreds on a big run: built here, not in a template loop)."""
    link = '<a class="marker m-{}" href="{}" data-step="{}" style="left: {}%" title="{}"></a>'
    return format_html_join("", link, (
        (slugify(category), _href(base, pairs, step), step, f"{100 * step / max(1, total):.3f}",
         f"{category} at step {step}" + (f" (+{count - 1} more nearby)" if count > 1 else ""))
        for step, category, count in markers))


@require_GET
@gzip_page  # frames are repetitive JSON with no secret in them: gzip shrinks them ~10x
def frames(request, run_id):
    """JSON: the states at start, start+stride, ... with each step's list row, for the player."""
    run = get_run_or_404(request.user, run_id)
    form = DecisionFilterForm(request.GET)
    frames_form = FramesForm(request.GET)
    if not (form.is_valid() and frames_form.is_valid()):
        text = "; ".join(filter(None, [form.error_text() if form.errors else "", _errors(frames_form)]))
        return JsonResponse({"detail": text}, status=400)
    filters = form.filters()
    index = get_index(run, filters)
    if index.status != ReplayIndex.Status.READY:
        return JsonResponse({"status": index.status, "built_steps": index.built_steps}, status=202)
    data = frames_form.cleaned_data
    count = data["count"] or 50
    stride = data["stride"] or 1
    count = max(1, min(count, MAX_FRAME_SPAN // stride))
    player = stored_replay(run, filters, index)
    at = player.clamp(data["start"] or 0)
    if data["t"] is not None:
        at = player.step_at_time(data["t"])
    start = max(0, at - (data["back"] or 0))
    base, pairs = reverse("run-replay", args=[run.pk]), _filter_pairs(request)
    out = [_frame_json(run, f, base, pairs) for f in player.frames(start, count, stride)]
    response = JsonResponse({"total": player.total, "at": at, "frames": out})
    response["Cache-Control"] = "private, no-store"
    return response
