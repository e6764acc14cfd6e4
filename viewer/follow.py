"""follow_file(): a log still being written (import_logs --follow), imported as it grows: its run is
LIVE (listed, growing on its page) until the log ends, then READY like any other import."""
from __future__ import annotations

import datetime as _dt
import importlib
import io
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q as Where

from . import folders, kinds
from .models import Decision as StoredDecision
from .db import best_effort
from .models import ReplayIndex, Run, RunAggregate
from .readers.base import Decision, ReadError, RunInfo
from .readers.detect import GZIP_MAGIC
from .readers.streams import FollowStream

from .ingest import (  # noqa: F401  (the import's own steps, shared)
    HEAD_BYTES, IngestResult, Progress, ProgressCallback, Source, Stop, _describe, _discard, _duplicate, _existing,
    _finish, _hash, _not_a_log, _unexpected, limits, storable_name,
)
from .writer import DecisionWriter, duration_ms

logger = logging.getLogger(__name__)

LIVE_STORE_SECONDS = 1.0  # a followed run stores what has arrived about this often
LIVE_BEAT_SECONDS = 10.0  # while the file is quiet, the follower says it is alive this often (Run.live_seen),
# and at least four times within REPLAYWEB_JOB_STALE_SECONDS, after which settle_abandoned gives up on it


def _beat_seconds() -> float:
    return min(LIVE_BEAT_SECONDS, settings.REPLAYWEB_JOB_STALE_SECONDS / 4)


def follow_file(
    *,
    owner,
    path: Path,
    quiet: float = 60.0,
    keep_user_ids: bool = False,
    progress: ProgressCallback | None = None,
    poll: float = 0.2,
    every: float = LIVE_STORE_SECONDS,
) -> IngestResult:
    """Import a log that is still being written, as it grows (import_logs --follow).

    The run is LIVE from its first decisions on: listed and shown like any run, its decisions and
    counts growing by a transaction about every `every` seconds (or REPLAYWEB_IMPORT_SLICE
    decisions), and nothing about it memoized. Following ends when an end action of the kind arrives
    (a session's session_end: what the file holds by then is read too), when the file has not grown
    for `quiet` seconds, or at REPLAYWEB_MAX_UPLOAD_BYTES; the run is then READY like any other.
    Stopped before its end (quiet, the size limit, Ctrl-C) it stays as far as it got, with a warning
    saying so: a live log is worth keeping. A line that cannot be read refuses the file as any
    import does, and the run is deleted. A line still being written is read once its newline has
    arrived; one left unfinished at the end is not read (a warning says so).
    `progress` gets a Progress (stage "following") after each transaction.
    """
    name = storable_name(path.name)
    with open(path, "rb", buffering=0) as f:
        stream = FollowStream(f, quiet=quiet, poll=poll, limit=settings.REPLAYWEB_MAX_UPLOAD_BYTES,
                              max_line=settings.REPLAYWEB_MAX_LINE_BYTES)
        try:
            head = stream.head(HEAD_BYTES)
        except KeyboardInterrupt:
            return IngestResult(name, "error", f"{name}: following was interrupted before a line arrived; "
                                "nothing was stored")
        if not head:
            return IngestResult(name, "error", f"{name}: no whole line arrived in {quiet:g} s; nothing was stored")
        if head.startswith(GZIP_MAGIC):
            return IngestResult(name, "error", f"{name}: a compressed file cannot be followed (only a plain "
                                "log that grows a line at a time)")
        kind = kinds.sniff(head, name)
        if kind not in dict(kinds.choices()):  # no log kind: nothing recognised, or a DynoAI manifest
            return _not_a_log(name, False)
        if not kinds.profile(kind).line_log:
            return IngestResult(name, "error", f"{name}: a {kinds.profile(kind).label} is written whole, not "
                                "a line at a time, so it cannot be followed: import it once it is written")
        with open(path, "rb") as whole:  # a log that is complete already may have been imported
            existing = _existing(owner, _hash(whole, want_crlf=False).sha256)
        if existing:
            return _duplicate(name, existing)
        return _Follow(owner, name, kind, keep_user_ids, stream, progress, every).run_it(quiet)


class _Follow:
    """One followed file: decisions read but not stored yet, and the LIVE run they go to."""

    def __init__(self, owner, name, kind, keep_user_ids, stream, progress, every):
        self.owner, self.name, self.kind, self.keep_user_ids = owner, name, kind, keep_user_ids
        self.stream, self.progress, self.every = stream, progress, every
        self.profile = kinds.profile(kind)
        self.info = RunInfo(kind=kind)
        self.run: Run | None = None
        self.writer: DecisionWriter | None = None
        self.pending: list[Decision] = []
        self.per_slice = max(1, settings.REPLAYWEB_IMPORT_SLICE)
        self.stored_at = time.monotonic()
        self.last_line = 0

    def run_it(self, quiet: float) -> IngestResult:
        name, end = self.name, self.profile.end_actions
        try:
            reader = importlib.import_module(self.profile.reader)
            stream = io.BufferedReader(self.stream, buffer_size=1 << 20)
            decisions = reader.read(stream, self.info, limits=limits(), keep_user_ids=self.keep_user_ids)
            self.stream.on_idle = self.store_if_due  # nothing waits in memory while the file is quiet
            for d in decisions:
                self.pending.append(d)
                self.last_line = d.line or self.last_line
                if d.action in end:
                    self.stream.finish()
                self.store_if_due()
            self.stream.on_idle = None
            self.store()
            notes = self._notes(quiet)
            with transaction.atomic():
                self._finish(self.writer, notes)
        except ReadError as exc:
            _discard(self.run)
            if exc.line is None and self.last_line:
                return IngestResult(name, "error", f"{exc.describe(name)} (after line {self.last_line:,})")
            return IngestResult(name, "error", exc.describe(name))
        except DatabaseError as exc:
            _discard(self.run)
            return IngestResult(name, "error", f"{name}: database error, nothing was stored "
                                f"({exc.__class__.__name__}: {str(exc)[:200]})")
        except Exception as exc:
            _discard(self.run)
            return IngestResult(name, "error", _unexpected(name, exc, self.last_line))
        except BaseException as exc:  # Ctrl-C (or SIGTERM, as the command turns it): keep what is stored
            if self.run is None:
                if isinstance(exc, KeyboardInterrupt):
                    return IngestResult(name, "error", f"{name}: following was interrupted before a decision "
                                        "was stored; nothing was stored")
                raise
            stopped = f"before {' or '.join(end)} " if end else ""
            with transaction.atomic():
                self._finish(_Stored.of(self.run), [
                    f"Following stopped {stopped}(interrupted): the run holds the decisions stored by then."])
            if not isinstance(exc, KeyboardInterrupt):
                raise
        run = self.run
        return IngestResult(name, "imported", f"{name}: {run.decision_count:,} decisions", run=run,
                            count=run.decision_count, warnings=list(run.warnings))

    def store_if_due(self) -> None:
        if self.pending and (len(self.pending) >= self.per_slice
                             or time.monotonic() - self.stored_at >= self.every):
            self.store()
        elif not self.pending and self.run is not None and time.monotonic() - self.stored_at >= _beat_seconds():
            # nothing new: still say the follower is alive, or the run is settled as abandoned (settle_abandoned);
            # best effort: a beat skipped while another process holds SQLite's lock is made at the next
            self.run.live_seen = _now()
            best_effort(lambda: Run.objects.filter(pk=self.run.pk).update(live_seen=self.run.live_seen),
                        "a followed run's sign of life")
            self.stored_at = time.monotonic()

    def store(self) -> None:
        """The decisions read so far, stored in one transaction with the run's counts (the run is
        made with the first of them, LIVE); pages see them from its commit."""
        if not self.pending and self.run is not None:
            return
        with transaction.atomic():
            if self.run is None:
                self.run = Run.objects.create(
                    owner=self.owner, name=self.name[:500], kind=self.kind, source_name=self.name[:500],
                    size=self.stream.delivered, sha256=f"live-{uuid.uuid4().hex}", keep_user_ids=self.keep_user_ids,
                    status=Run.Status.LIVE,
                )
                self.writer = DecisionWriter(self.run.pk)
            with self.writer:
                for d in self.pending:
                    self.writer.add(d)
                self.writer.close()
            _describe(self.run, self.info, self.writer, self.name[:500], self.keep_user_ids)
            self.run.name = folders.run_name(self.run, self.info) or self.run.source_name
            self.run.size = self.stream.delivered
            self.run.live_seen = _now()
            self.run.save()
        self.pending = []
        self.stored_at = time.monotonic()
        if self.progress is not None:
            delivered = self.stream.delivered
            self.progress(Progress(self.name, "following", delivered, delivered, self.writer.count, self.run.pk))

    def _notes(self, quiet: float) -> list[str]:
        """What the run should say about where following stopped."""
        notes = []
        end = self.profile.end_actions
        if self.stream.stopped == "quiet" and end:
            notes.append(f"Following stopped before {' or '.join(end)}: the file was quiet for {quiet:g} s.")
        elif self.stream.stopped == "limit":
            notes.append(f"Following stopped at {settings.REPLAYWEB_MAX_UPLOAD_BYTES:,} bytes "
                         "(REPLAYWEB_MAX_UPLOAD_BYTES): the rest of the file was not read.")
        if self.stream.withheld:
            notes.append(f"The last line was unfinished ({self.stream.withheld:,} bytes without a newline) "
                         "and was not read.")
        return notes

    def _finish(self, counts, notes: list[str]) -> None:
        """The run READY: named, counted and warned as any import finishes it; its sha256 is that of
        the bytes read (another run of the owner's with the same one keeps it instead)."""
        run = self.run
        sha = self.stream.sha256()
        same = Run.objects.filter(owner=self.owner, sha256=sha).exclude(pk=run.pk).first()
        if same is None:
            run.sha256 = sha
        else:
            notes = [*notes, f"The same file was imported as run {same.pk} (“{same.name}”) meanwhile."]
        self.info.warnings.extend(notes)
        run.name = self.name[:500]
        run.size = self.stream.delivered
        run.status = Run.Status.READY
        _finish(run, self.info, counts, None, None, self.keep_user_ids, None)
        # A replay opened while it was live holds the decisions of then: it is built again, whole; so are
        # aggregates remembered while it passed for ended (settle_abandoned, with its follower only slow).
        ReplayIndex.objects.filter(run=run).delete()
        RunAggregate.objects.filter(run=run).delete()


@dataclass
class _Stored:
    """A run's counts as stored (after an interrupted follow, whatever the writer had in hand)."""

    count: int
    first_ts: _dt.datetime | None
    last_ts: _dt.datetime | None

    @classmethod
    def of(cls, run: Run) -> _Stored:
        rows = StoredDecision.objects.filter(run=run)
        dated = rows.exclude(ts=None).order_by("seq").values_list("ts", flat=True)
        return cls(rows.count(), dated.first(), dated.last())

    def duration_ms(self, ends_at=None) -> float | None:
        return duration_ms(self.first_ts, self.last_ts, ends_at)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def settle_abandoned() -> int:
    """Make READY the LIVE runs whose follower has not been heard from for
    REPLAYWEB_JOB_STALE_SECONDS (killed, or its machine lost): such a run would otherwise say it is
    growing for ever. It keeps the decisions stored by then, with a warning saying so. Called where
    stalled jobs are reaped (jobs.reap: workers, the runs list, the jobs API)."""
    quiet = _now() - _dt.timedelta(seconds=settings.REPLAYWEB_JOB_STALE_SECONDS)
    stale = Run.objects.filter(Where(live_seen__lt=quiet) | Where(live_seen__isnull=True, created__lt=quiet),
                               status=Run.Status.LIVE)
    settled: list[int] = []
    for run in stale:
        seen = run.live_seen or run.created
        warning = (f"Following stopped without an end: the follower was last heard from at "
                   f"{seen:%Y-%m-%d %H:%M:%S} UTC (killed, or its machine lost); the run holds the "
                   f"{run.decision_count:,} decisions stored by then.")

        def settle(run=run, warning=warning):
            # still stale once the lock is ours: a follower that stamped meanwhile keeps its run
            if stale.filter(pk=run.pk).update(status=Run.Status.READY, warnings=[*(run.warnings or []), warning]):
                ReplayIndex.objects.filter(run=run).delete()  # built while it grew: built again, whole
                settled.append(run.pk)

        # a page's look must not wait for another process's write lock: skipped now, settled at a later look
        best_effort(settle, f"settling abandoned run {run.pk}")
    return len(settled)
