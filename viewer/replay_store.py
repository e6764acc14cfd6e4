"""The replay's stored index: checkpoints built once per (run, filters), and Replays over them.

viewer/replay.py does the folding; this service stores its checkpoints (ReplayIndex and
ReplayCheckpoint) and feeds it decisions through the selectors, so that a jump reads one checkpoint
and at most `every` decisions. The page, the frames JSON and the API all read through here; the
reducer is the run's kind's (its profile's replay spec).

Who builds an index: the request that first asks for it when the run has at most
REPLAYWEB_REPLAY_SYNC_MAX decisions; else a worker (the `replay` queue: build_replay_index), while
the page shows the progress. A user has at most REPLAYWEB_REPLAY_BUILDS_PER_USER (2) indexes queued
or building at a time; a further one waits (WAITING, not stored) and is queued by a later visit,
the page's own poll, once a build ends. The import job builds a new run's unfiltered index itself
(build_now, from viewer/warm.py). A build that stops touching its index (its worker died) is
started again after STALE_BUILD.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import pickle
import time
from collections.abc import Callable, Iterator

import orjson
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django_tasks import task

from . import kinds
from . import replay as R
from .db import best_effort, lock_wait
from .models import ReplayCheckpoint, ReplayIndex, Run
from .filters import NOTE_FILTERS
from .selectors import decision_list

log = logging.getLogger(__name__)

# What the reducers and the decision list read: no ts (t_ms serves), no raw, no LLM text.
LOAD_FIELDS = ("seq", "t_ms", "action", "reason", "rpm", "kpa", "cylinder", "rpm_index", "kpa_index", "round",
               "agent", "metric")
STALE_BUILD = dt.timedelta(minutes=2)  # a "building" index not touched for this long is rebuilt
FLUSH_EVERY = 100  # checkpoints written per transaction while building
TOUCH_SECONDS = 20  # ...or fewer, so that a slow build touches its index well within STALE_BUILD
MAX_INDEXES_PER_RUN = 20  # filter sets whose checkpoints a run keeps
# An index's row is a reader's write: it waits this long for an import's slice to commit (SQLite),
# then the page says it is waiting and its next poll tries again.
ROW_WAIT_MS = 3000
WAITING = "waiting"  # the status of an index not stored yet: no slot free, or the database busy
BUSY = "the server is busy for a moment"


def spec_of(run: Run) -> R.ReplaySpec:
    """The replay spec of the run's kind (the generic one for a kind without its own)."""
    return kinds.profile(run).replay or R.GENERIC


def paged_rows(run: Run, filters: dict, page: int = 5000) -> Iterator[dict]:
    """as_dicts of the filtered decisions, read a keyset page at a time, each page read whole. A build
    writes checkpoints as it reads: on SQLite, a write from a connection whose read (a long cursor)
    began before another process's commit is refused at once ("database is locked", the WAL snapshot
    being stale), so no read may stay open across a write."""
    after = None
    while True:
        rows = list(as_dicts(decision_list(run=run, after=after, limit=page, **filters)))
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1]["seq"]


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


def _noted(run: Run, filters: dict) -> dict:
    """Filters by notes (label=, noted=) select other decisions once a note changes: the notes' version
    is part of such an index's key, so a replay never steps through a selection that is gone."""
    if not any(name in filters for name in NOTE_FILTERS):
        return filters
    from .notes import version

    return {**filters, "notes_version": version(run)}


def builds_per_user() -> int:
    return getattr(settings, "REPLAYWEB_REPLAY_BUILDS_PER_USER", 2)


def get_index(run: Run, filters: dict) -> ReplayIndex:
    """The run's replay index for these filters: ready; being built (by this call when the run is
    small, else queued for a worker); or, unsaved, WAITING for one of the owner's slots (with
    `waiting` saying why) until a later call finds one free."""
    every = getattr(settings, "REPLAYWEB_REPLAY_EVERY", R.CHECKPOINT_EVERY)
    key = filter_key(_noted(run, filters), every)
    index = ReplayIndex.objects.filter(run=run, key=key).first()
    if index is not None and not _abandoned(index):
        return index
    queued = run.decision_count > getattr(settings, "REPLAYWEB_REPLAY_SYNC_MAX", 200_000)
    try:
        with lock_wait(ROW_WAIT_MS), transaction.atomic():
            if queued and (busy := building(run.owner_id)) >= builds_per_user():
                are = "is" if busy == 1 else "are"
                return _waiting(run, key, every, f"{busy} of your replays {are} being prepared; this one "
                                "starts when one of them is done")
            index = _create(run, key, every, replacing=index)
    except IntegrityError:  # another request started it a moment ago
        return ReplayIndex.objects.filter(run=run, key=key).first() or _waiting(run, key, every, BUSY)
    except DatabaseError:  # SQLite's write lock, held by an import's slice beyond ROW_WAIT_MS
        log.info("replay index of run %s not started: the database is busy", run.pk, exc_info=True)
        return _waiting(run, key, every, BUSY)
    if not queued:
        build(index, run, filters)
        return index
    try:
        with lock_wait(ROW_WAIT_MS):
            build_replay_index.enqueue(index.pk, pack(filters))
    except Exception:  # the queue refused it (Redis away, the database busy): a later visit tries again
        log.warning("replay index %s of run %s not queued", index.pk, run.pk, exc_info=True)
        best_effort(lambda: ReplayIndex.objects.filter(pk=index.pk).delete(),
                    f"unqueued replay index {index.pk}")
        return _waiting(run, key, every, BUSY)
    return ReplayIndex.objects.filter(pk=index.pk).first() or index  # a test's backend built it already


def building(owner_id: int) -> int:
    """How many replay indexes of the user's runs are queued or being built (not abandoned)."""
    return ReplayIndex.objects.filter(run__owner_id=owner_id, status=ReplayIndex.Status.BUILDING,
                                      updated__gte=timezone.now() - STALE_BUILD).count()


def _abandoned(index: ReplayIndex) -> bool:
    """Failed, or building but untouched for STALE_BUILD (its worker died, or its request did)."""
    return index.status == ReplayIndex.Status.FAILED or (
        index.status == ReplayIndex.Status.BUILDING and timezone.now() - index.updated >= STALE_BUILD)


def _waiting(run: Run, key: str, every: int, why: str) -> ReplayIndex:
    index = ReplayIndex(run=run, key=key, every=every, status=WAITING)
    index.waiting = why
    return index


def _create(run: Run, key: str, every: int, replacing: ReplayIndex | None) -> ReplayIndex:
    """A new BUILDING index (an abandoned one it replaces is deleted); the run keeps its newest few."""
    if replacing is not None:
        ReplayIndex.objects.filter(pk=replacing.pk).delete()
    index = ReplayIndex.objects.create(run=run, key=key, every=every)
    older = ReplayIndex.objects.filter(run=run).order_by("-updated", "-pk").values_list("pk", flat=True)
    ReplayIndex.objects.filter(pk__in=list(older[MAX_INDEXES_PER_RUN:])).delete()
    return index


def build_now(run: Run, filters: dict, heartbeat: Callable[[], None] | None = None) -> ReplayIndex:
    """The index built here and now whatever the run's size, unless ready already: the import job's
    warm-up (viewer/warm.py). `heartbeat()` is called as the build goes; what it raises propagates."""
    every = getattr(settings, "REPLAYWEB_REPLAY_EVERY", R.CHECKPOINT_EVERY)
    key = filter_key(_noted(run, filters), every)
    index = ReplayIndex.objects.filter(run=run, key=key).first()
    if index is not None and index.status == ReplayIndex.Status.READY:
        return index
    with transaction.atomic():
        index = _create(run, key, every, replacing=index)
    build(index, run, filters, heartbeat=heartbeat)
    return index


def pack(filters: dict) -> str:
    """Filters as a task argument (JSON text): they hold tuples, datetimes and value conditions."""
    return base64.b64encode(pickle.dumps(filters, protocol=pickle.HIGHEST_PROTOCOL)).decode()


def unpack(text: str) -> dict:
    return pickle.loads(base64.b64decode(text))  # only get_index writes them, into our own queue


@task(queue_name="replay")
def build_replay_index(index_id: int, filters: str) -> str:
    """The task a worker runs for a queued index; returns the index's status at the end."""
    return build_queued(index_id, unpack(filters))


def build_queued(index_id: int, filters: dict) -> str:
    """Build the index if it is still wanted: one found abandoned has been replaced by a new one
    (a new id, with its own task), and a deleted run takes its indexes with it."""
    if not ReplayIndex.objects.filter(pk=index_id, status=ReplayIndex.Status.BUILDING).update(
            updated=timezone.now()):
        return "gone"
    index = ReplayIndex.objects.select_related("run").get(pk=index_id)
    ReplayCheckpoint.objects.filter(index=index).delete()  # a task delivered again starts clean
    build(index, index.run, filters)
    return index.status


def build(index: ReplayIndex, run: Run, filters: dict, heartbeat: Callable[[], None] | None = None) -> None:
    """One pass over the filtered decisions: checkpoints, markers and length, stored."""
    pending: list[ReplayCheckpoint] = []
    last_touch = [time.monotonic()]
    stopped: list[BaseException] = []

    def flush():
        if pending:
            ReplayCheckpoint.objects.bulk_create(pending)
            index.built_steps = pending[-1].step
        ReplayIndex.objects.filter(pk=index.pk).update(built_steps=index.built_steps, updated=timezone.now())
        pending.clear()
        last_touch[0] = time.monotonic()
        if heartbeat is not None:
            try:
                heartbeat()
            except BaseException as exc:
                stopped.append(exc)
                raise

    def keep(cp: R.Checkpoint):
        pending.append(ReplayCheckpoint(index=index, step=cp.step, seq=cp.seq, t_ms=cp.t_ms, state=cp.state))
        if len(pending) >= FLUSH_EVERY or time.monotonic() - last_touch[0] > TOUCH_SECONDS:
            flush()

    try:
        rows = paged_rows(run, filters)
        result = R.build_index(R.reducer_for(spec_of(run)), rows, every=index.every, on_checkpoint=keep)
        if pending:
            ReplayCheckpoint.objects.bulk_create(pending)
        index.status = ReplayIndex.Status.READY
        index.total, index.built_steps = result.total, result.total
        index.t_first, index.t_last, index.markers = result.t_first, result.t_last, result.markers
        # update(), not save(): an index deleted meanwhile (found abandoned) must not come back
        ReplayIndex.objects.filter(pk=index.pk).update(
            status=index.status, total=index.total, built_steps=index.built_steps, t_first=index.t_first,
            t_last=index.t_last, markers=index.markers, updated=timezone.now())
    except Exception as exc:  # recorded on the index and shown; the next visit tries again
        if stopped:
            raise
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
