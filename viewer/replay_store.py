"""The replay's stored index: checkpoints built once per (run, filters), and Replays over them.

viewer/replay.py does the folding; this service stores its checkpoints (ReplayIndex and
ReplayCheckpoint) and feeds it decisions through the selectors, so that a jump reads one checkpoint
and at most `every` decisions. A run bigger than REPLAYWEB_REPLAY_SYNC_MAX decisions gets its index
built by a background thread while the page shows the progress. The page, the frames JSON and the
API all read through here; the reducer is the run's kind's (its profile's replay spec).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
from collections.abc import Iterator

import orjson
from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from . import kinds
from . import replay as R
from .models import ReplayCheckpoint, ReplayIndex, Run
from .selectors import decision_list, filtered_decisions

log = logging.getLogger(__name__)

# What the reducers and the decision list read: no ts (t_ms serves), no raw, no LLM text.
LOAD_FIELDS = ("seq", "t_ms", "action", "reason", "rpm", "kpa", "cylinder", "rpm_index", "kpa_index", "round",
               "agent", "metric")
STALE_BUILD = dt.timedelta(minutes=2)  # a "building" index not touched for this long is rebuilt
FLUSH_EVERY = 100  # checkpoints written per transaction while building
MAX_INDEXES_PER_RUN = 20  # filter sets whose checkpoints a run keeps


def spec_of(run: Run) -> R.ReplaySpec:
    """The replay spec of the run's kind (the generic one for a kind without its own)."""
    return kinds.profile(run).replay or R.GENERIC


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
        result = R.build_index(R.reducer_for(spec_of(run)), rows, every=index.every, on_checkpoint=keep)
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


def progress(run: Run, index: ReplayIndex | None) -> int:
    """How far through the run's file a build has come, in percent."""
    if index is None or index.status != ReplayIndex.Status.BUILDING:
        return 0
    newest = ReplayCheckpoint.objects.filter(index=index).order_by("-step")
    last = newest.values_list("seq", flat=True).first()
    return min(99, round(100 * ((last or 0) + 1) / max(1, run.decision_count)))


def _checkpoint(row: ReplayCheckpoint) -> R.Checkpoint:
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

    return R.Replay(reducer=R.reducer_for(spec_of(run)), total=index.total, every=index.every, load=load,
                    checkpoint_before=before, checkpoint_by_time=by_time)


def step_of(player: R.Replay, step: int | None, t: float | None) -> int:
    """The step a request names: by time when `t` is given, else `step` (0 when neither), clamped."""
    return player.step_at_time(t) if t is not None else player.clamp(step or 0)


def replay_state(run: Run, filters: dict, step: int | None = None, t: float | None = None) -> dict | None:
    """The state at a step (or at a time) as plain data, for the API; None while the index builds."""
    index = get_index(run, filters)
    if index.status != ReplayIndex.Status.READY:
        return None
    player = stored_replay(run, filters, index)
    frame = player.frame(step_of(player, step, t))
    return {"step": frame.step, "total": player.total, "decision": frame.decision, "state": frame.state}
