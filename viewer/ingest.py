"""run_ingest(): the one way a log file becomes a Run. Upload page, API and import_logs call it.

Per file: size limit, sha256 (a file the owner already has is a duplicate, not a second run),
content detection, streaming read, batched inserts, a slice of decisions per transaction; the
run stays hidden (IMPORTING) until its last slice, and a file that fails anywhere is deleted
again, so it leaves nothing behind. Uploads reach this through a job (viewer/jobs.py).

A log still being written is followed instead (follow_file, import_logs --follow): its run is
LIVE, shown and growing about every second, until the log ends or goes quiet.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import io
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction

from . import folders, kinds, outputs
from .models import Decision as StoredDecision
from .models import ReplayIndex, Run
from .readers import manifest as manifest_mod
from .readers.base import Decision, Limits, ReadError, RunInfo, storable
from .readers.detect import GZIP_MAGIC
from .readers.streams import FollowStream, open_decompressed

logger = logging.getLogger(__name__)

HEAD_BYTES = 256 * 1024
HASH_CHUNK = 1 << 20


@dataclass
class Source:
    """One file to import: a path on disk, or an open binary file (an upload)."""

    name: str
    path: Path | None = None
    fileobj: BinaryIO | None = None
    group: str = ""  # files of one group (an upload, a folder) share a manifest.json

    def open(self) -> BinaryIO:
        return open(self.path, "rb") if self.path is not None else self.fileobj

    def size(self) -> int:
        if self.path is not None:
            return self.path.stat().st_size
        f = self.fileobj
        if getattr(f, "oversized", False):  # middleware.OversizedUpload: not kept past the limit
            return f.size
        here = f.tell()
        f.seek(0, 2)
        size = f.tell()
        f.seek(here)
        return size


@dataclass
class IngestResult:
    name: str
    status: str  # "imported", "duplicate", "error", "skipped", "manifest"
    message: str = ""
    run: Run | None = None
    count: int = 0
    warnings: list[str] = field(default_factory=list)
    outputs: list = field(default_factory=list, repr=False)  # the RunOutput rows an output file became

    @property
    def failed(self) -> bool:
        return self.status == "error"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "run_id": self.run.pk if self.run else None,
            "count": self.count,
            "warnings": self.warnings,
        }


def limits() -> Limits:
    return Limits(
        max_line_bytes=settings.REPLAYWEB_MAX_LINE_BYTES,
        max_decompressed_bytes=settings.REPLAYWEB_MAX_DECOMPRESSED_BYTES,
    )


def run_ingest(
    *,
    owner,
    sources: Iterable[Source],
    keep_user_ids: bool = False,
    skip_unrecognised: bool = False,
    progress: ProgressCallback | None = None,
    prepare: Prepare | None = None,
) -> list[IngestResult]:
    """Import every source; returns one result per source, in order. A file that fails says so on
    its own line and the others import.

    Files of one group (a folder, an upload) may be a DynoAI output folder or several: each replay
    meets the manifest that names it (folders.pair), a failed run's manifest becomes a run, and the
    other files are kept with the run whose manifest lists them (outputs). `skip_unrecognised` is
    for folder walks: a file that is no log and belongs to no run is skipped instead of failed.
    """
    sources = [_storable_name(src) for src in sources]
    sniffed: dict[int, str | None] = {}
    heads: dict[int, bytes] = {}
    found: list[folders.Found] = []
    results: dict[int, IngestResult] = {}
    for i, src in enumerate(sources):
        if src.size() > settings.REPLAYWEB_MAX_UPLOAD_BYTES:
            results[i] = too_big(src.name, src.size())
            continue
        try:
            sniffed[i], heads[i] = _sniff(src)
            if sniffed[i] == "manifest":
                data = _read(src, manifest_mod.MAX_MANIFEST_BYTES + 1)
                m = manifest_mod.parse(data, manifest_mod.basename(src.name))
                found.append(folders.Found(i, src.name, src.group, m, outputs.file_facts(data)))
        except ReadError as exc:
            results[i] = IngestResult(src.name, "error", exc.describe(src.name))
        except Exception as exc:  # a bug in a reader or the detector must not sink the other files
            results[i] = IngestResult(src.name, "error", _unexpected(src.name, exc))
    # A folder or upload with a manifest (even one that failed to parse) is an output folder: its
    # files that are no log are outputs, not refused logs.
    manifest_groups = {src.group for i, src in enumerate(sources) if sniffed.get(i) == "manifest"}
    logs, extras = [], []
    for i, src in enumerate(sources):
        if i in results or sniffed[i] == "manifest":
            continue
        what = sniffed[i]
        beside = skip_unrecognised or src.group in manifest_groups
        is_log = what is not None and (not beside or _is_log(src, kinds.profile(what)))
        (logs if is_log else extras).append(i)
    originals = folders.dedupe(found)
    replays = []
    for i in logs:
        if kinds.profile(sniffed[i]).uses_manifest:
            f = sources[i].open()
            try:
                facts = _hash(f, want_crlf=True)
            finally:
                if sources[i].path is not None:
                    f.close()
            run_id = manifest_mod.run_id_in(heads[i])
            replays.append(folders.Replay(i, sources[i].name, sources[i].group, facts, run_id))
    folders.pair(replays, originals)
    by_index = {r.index: r for r in replays}
    group_runs: dict[str, list] = {}
    for i in logs:
        src, replay = sources[i], by_index.get(i)
        paired = replay.paired if replay else None
        try:
            results[i] = ingest_file(
                owner=owner, source=src, kind=sniffed[i], manifest=paired.m if paired else None,
                keep_user_ids=keep_user_ids, progress=progress, facts=replay.facts if replay else None,
                manifest_facts=paired.facts if paired else None, prepare=prepare,
            )
        except Exception as exc:  # ingest_file rolled its transaction back: this file stored nothing
            results[i] = IngestResult(src.name, "error", _unexpected(src.name, exc))
        run = results[i].run
        if run is not None and paired is not None:
            paired.run = run
            if results[i].status == "duplicate":
                try:
                    results[i].message += "; its manifest " + folders.attach(run, paired)
                except Exception as exc:  # attaching stores whole or not at all: the line says why
                    results[i].message += "; its manifest was not attached: " + _unexpected(paired.m.name, exc)
        if run is not None and replay is not None:
            group_runs.setdefault(src.group, []).append((run, paired.m if paired else None))
    for f in found:
        results[f.index] = _safely(f.name, folders.manifest_result, owner, f, group_runs)
    for i in extras:
        src = sources[i]
        if not group_runs.get(src.group):
            results[i] = _not_a_log(src.name, skip_unrecognised)
            continue
        results[i] = _safely(src.name, folders.extra_result, src, _read, group_runs[src.group])
    for run in {run.pk: run for runs in group_runs.values() for run, _ in runs}.values():
        outputs.sync(run)
    for i in extras:
        folders.say_verdict(results[i])
    return [results[i] for i in range(len(sources))]


def _safely(name: str, func, *args) -> IngestResult:
    try:
        return IngestResult(**func(*args))
    except Exception as exc:  # each step stores whole or not at all: this file's line says what failed
        return IngestResult(name, "error", _unexpected(name, exc))


def _not_a_log(name: str, skip_unrecognised: bool) -> IngestResult:
    if skip_unrecognised:
        return IngestResult(name, "skipped", "not a replay log")
    return IngestResult(name, "error", f"{name}: not a recognised log (expected a DynoAI session_replay.json, "
                        "a multi-agent session_<id>.jsonl or a Learning Observer *.study.log[.gz])")


def _read(src: Source, limit: int) -> bytes:
    f = src.open()
    try:
        f.seek(0)
        return f.read(limit)
    finally:
        if src.path is not None:
            f.close()
        else:
            f.seek(0)


def rename(run: Run, name: str) -> Run:
    """The owner's own name for a run (the page, the API): one line, its file name kept in source_name."""
    name = storable(" ".join(name.split()))[:500]
    if not name:
        raise ValueError("a run's name cannot be blank")
    run.name = name
    run.save(update_fields=["name"])
    return run


def _unexpected(name: str, exc: BaseException, last_line: int = 0) -> str:
    """The refusal for an error no reader turned into a ReadError: what it was, and where, if known.

    Each file is imported in its own transaction, so the files before this one stay imported and
    this one leaves nothing behind; the upload answers one line per file, never a 500.
    """
    if isinstance(exc, DatabaseError):
        problem = f"database error ({exc.__class__.__name__}: {str(exc)[:200]})"
    elif isinstance(exc, RecursionError):
        problem = "values nested too deeply"
    elif isinstance(exc, OverflowError):
        problem = "a time or number is out of range"
    elif isinstance(exc, ValueError) and "digits" in str(exc):
        problem = "a number has more than 4,300 digits (Python reads no longer integers)"
    else:
        problem = f"cannot be read ({exc.__class__.__name__}: {str(exc)[:200]})"
        logger.error("import of %r failed unexpectedly", name, exc_info=exc)
    where = f" (after line {last_line:,})" if last_line else ""
    return f"{name}: {problem}{where}; nothing was stored from this file"


def looks_like_manifest(name: str, head: bytes) -> bool:
    """Whether a file is a DynoAI manifest (its folder's files then import together), from its first bytes."""
    try:
        return kinds.sniff(head, name) == "manifest"
    except Exception:  # a head no detector understands is no manifest; its import says what is wrong
        return False


def too_big(name: str, size: int) -> IngestResult:
    return IngestResult(
        name,
        "error",
        f"{name}: the file is {size:,} bytes, over the {settings.REPLAYWEB_MAX_UPLOAD_BYTES:,}-byte "
        "limit (REPLAYWEB_MAX_UPLOAD_BYTES)",
    )


def _storable_name(src: Source) -> Source:
    src.name = storable_name(src.name)
    return src


def storable_name(name: str) -> str:
    """A name any database can store: os.fsdecode gives undecodable bytes as surrogate escapes
    (shown as U+FFFD here), and PostgreSQL text cannot hold NUL."""
    return storable(name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def _sniff(src: Source) -> tuple[str | None, bytes]:
    """(the kind, or "manifest", or None; the file's first bytes, decompressed)."""
    f = src.open()
    try:
        stream = open_decompressed(f, src.name, settings.REPLAYWEB_MAX_DECOMPRESSED_BYTES)
        head = stream.read(HEAD_BYTES)
    finally:
        if src.path is not None:
            f.close()
        else:
            src.fileobj.seek(0)
    return kinds.sniff(head, src.name), head


def _is_log(src: Source, profile: kinds.Profile) -> bool:
    """In a folder walk, whether a file of the kind is a log rather than a report beside one."""
    if profile.is_log is None:
        return True
    f = src.open()
    try:
        f.seek(0)
        head = f.read(HEAD_BYTES).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    finally:
        if src.path is not None:
            f.close()
        else:
            src.fileobj.seek(0)
    return profile.is_log(src.name, head)


def _hash(f: BinaryIO, want_crlf: bool) -> manifest_mod.FileFacts:
    sha, crlf, size, newlines, prev_cr = hashlib.sha256(), hashlib.sha256(), 0, 0, False
    f.seek(0)
    while chunk := f.read(HASH_CHUNK):
        sha.update(chunk)
        size += len(chunk)
        newlines += chunk.count(b"\n")
        if want_crlf:
            # LF -> CRLF, leaving existing CRLF alone (a CR may end the previous chunk).
            converted = re.sub(rb"(?<!\r)\n", b"\r\n", chunk)
            if prev_cr and chunk.startswith(b"\n"):
                converted = converted[1:]
            crlf.update(converted)
            prev_cr = chunk.endswith(b"\r")
    f.seek(0)
    return manifest_mod.FileFacts(size, sha.hexdigest(), newlines, crlf.hexdigest())


def _check_decompressed(f: BinaryIO, name: str) -> None:
    """For gzip, inflate once without parsing: a bomb or a truncated stream is refused in
    seconds, before millions of lines are parsed and inserted only to be rolled back."""
    f.seek(0)
    if f.read(2) != GZIP_MAGIC:
        f.seek(0)
        return
    stream = open_decompressed(f, name, settings.REPLAYWEB_MAX_DECOMPRESSED_BYTES)
    while stream.read(HASH_CHUNK):
        pass
    f.seek(0)


def ingest_file(
    *,
    owner,
    source: Source,
    kind: str,
    manifest: manifest_mod.Manifest | None = None,
    keep_user_ids: bool = False,
    progress: ProgressCallback | None = None,
    facts: manifest_mod.FileFacts | None = None,
    manifest_facts: manifest_mod.FileFacts | None = None,
    prepare: Prepare | None = None,
) -> IngestResult:
    """One log file as one run. A kind that uses a manifest keeps the file itself among the run's
    outputs too (served back unchanged, verified against the manifest).

    The decisions are stored a slice at a time (REPLAYWEB_IMPORT_SLICE per transaction), so that
    readers and other writers get their turn between slices even on SQLite, and `progress` (called
    inside each slice's transaction) can record how far it has got. Until the last slice and
    `prepare` (the job's aggregates) are done the run is IMPORTING, which no page lists; a file that
    fails anywhere, or a `progress` that raises Stop (a cancelled job), deletes it again."""
    name = source.name
    size = source.size()
    if size > settings.REPLAYWEB_MAX_UPLOAD_BYTES:
        return too_big(name, size)
    f = source.open()
    run = None
    say = _Reporter(progress, name, size)
    try:
        uses_manifest = kinds.profile(kind).uses_manifest
        say("checking", 0)
        facts = facts or _hash(f, want_crlf=uses_manifest)
        existing = _existing(owner, facts.sha256)
        if existing:
            return _duplicate(name, existing)
        try:
            _check_decompressed(f, name)
        except ReadError as exc:
            return IngestResult(name, "error", exc.describe(name))
        reader = importlib.import_module(kinds.profile(kind).reader)
        info = RunInfo(kind=kind)
        last_line = [0]
        try:
            stream = open_decompressed(f, name, settings.REPLAYWEB_MAX_DECOMPRESSED_BYTES)
            decisions = iter(reader.read(stream, info, limits=limits(), keep_user_ids=keep_user_ids))
            writer = None
            per_slice = max(1, settings.REPLAYWEB_IMPORT_SLICE)
            done = False
            while not done:
                with transaction.atomic():
                    if run is None:  # with the first slice: a run is never stored without its job's record of it
                        run = Run.objects.create(
                            owner=owner, name=name[:500], kind=kind, source_name=name[:500], size=size,
                            sha256=facts.sha256, keep_user_ids=keep_user_ids, status=Run.Status.IMPORTING,
                        )
                        say.run_id = run.pk
                        writer = DecisionWriter(run.pk)
                    with writer:
                        done = True
                        for d in decisions:
                            writer.add(d)
                            last_line[0] = d.line or last_line[0]
                            if writer.count % per_slice == 0:
                                done = False
                                break
                        writer.close()
                    say("parsing", f.tell(), writer.count)  # written with the slice, or not at all
            with transaction.atomic():
                _finish(run, info, writer, manifest, facts, keep_user_ids, manifest_facts)
                if uses_manifest and size <= outputs.MAX_OUTPUT_BYTES:
                    f.seek(0)
                    replay = manifest_mod.basename(manifest.replay_path if manifest and manifest.replay_path else name)
                    outputs.keep(run, replay, f.read(), facts=facts)
                    outputs.sync(run)
                say("parsing", size, writer.count)
            if prepare is not None:
                prepare(run, say)
            Run.objects.filter(pk=run.pk).update(status=Run.Status.READY)
            run.status = Run.Status.READY
        except Stop:
            _discard(run)
            raise
        except ReadError as exc:
            _discard(run)
            if exc.line is None and last_line[0]:
                return IngestResult(name, "error", f"{exc.describe(name)} (after line {last_line[0]:,})")
            return IngestResult(name, "error", exc.describe(name))
        except IntegrityError:
            _discard(run)
            existing = _existing(owner, facts.sha256)
            if existing:
                return _duplicate(name, existing)
            return IngestResult(name, "error", f"{name}: the database refused the data; nothing was stored")
        except DatabaseError as exc:
            _discard(run)
            return IngestResult(name, "error", f"{name}: database error, nothing was stored ({exc.__class__.__name__}: {str(exc)[:200]})")
        except Exception as exc:  # ValueError, OverflowError, RecursionError, TypeError from a reader
            _discard(run)
            return IngestResult(name, "error", _unexpected(name, exc, last_line[0]))
        except BaseException:  # KeyboardInterrupt, SystemExit (a worker told to stop): no half run
            _discard(run)
            raise
    finally:
        if source.path is not None:
            f.close()
    return IngestResult(name, "imported", f"{name}: {run.decision_count:,} decisions", run=run,
                        count=run.decision_count, warnings=list(run.warnings))


class Stop(BaseException):
    """Raised by a progress callback to abandon the import (a cancelled job): the run is deleted.
    A BaseException, so that no `except Exception` on the way turns it into one file's error line."""


@dataclass
class Progress:
    """How far one file's import has got, as a progress callback receives it."""

    name: str
    stage: str  # checking, parsing, indexing, aggregating
    bytes_read: int
    total_bytes: int
    decisions: int
    run_id: int | None


ProgressCallback = Callable[[Progress], None]
Prepare = Callable[[Run, Callable[..., None]], None]  # prepare(run, say): say(stage, bytes_read, decisions)


class _Reporter:
    """say(stage, bytes_read, decisions): one file's progress, to the caller's callback if any."""

    def __init__(self, callback: ProgressCallback | None, name: str, size: int):
        self.callback, self.name, self.size = callback, name, size
        self.run_id = None
        self.bytes_read = self.decisions = 0

    def __call__(self, stage: str, bytes_read: int | None = None, decisions: int | None = None) -> None:
        self.bytes_read = self.bytes_read if bytes_read is None else min(bytes_read, self.size)
        self.decisions = self.decisions if decisions is None else decisions
        if self.callback is not None:
            self.callback(Progress(self.name, stage, self.bytes_read, self.size, self.decisions, self.run_id))


def _existing(owner, sha256: str) -> Run | None:
    return Run.objects.filter(owner=owner, sha256=sha256).first()


def _duplicate(name: str, existing: Run) -> IngestResult:
    if existing.status == Run.Status.IMPORTING:
        return IngestResult(name, "duplicate", f"{name}: the same file is being imported already", run=existing)
    return IngestResult(name, "duplicate", f"{name}: already imported as “{existing.name}”", run=existing,
                        count=existing.decision_count)


def _discard(run: Run | None) -> None:
    """Delete a run whose import did not finish, with the slices stored so far."""
    if run is not None and run.pk is not None:
        Run.objects.filter(pk=run.pk).delete()


def _finish(run, info: RunInfo, writer: DecisionWriter, manifest, facts, keep_user_ids, manifest_facts) -> None:
    _describe(run, info, writer, run.name, keep_user_ids)
    warnings = list(info.warnings)
    if info.declared_total is not None and info.declared_total != writer.count:
        warnings.append(f"The file declares {info.declared_total:,} decisions; {writer.count:,} were read.")
    if manifest is not None:
        result = folders.manifest_check(manifest, facts, manifest_facts or facts)
        run.manifest = result
        if manifest.args:
            run.settings = manifest.args
        if not result["ok"]:
            warnings.append(result["message"])
    run.name = folders.run_name(run, info) or run.source_name  # the file name stays in source_name
    run.warnings = warnings
    run.save()


def _describe(run, info: RunInfo, writer, file_name: str, keep_user_ids: bool) -> None:
    """The run's header fields, counts and display name (its source_name too), from what has been read."""
    for attr in ("run_id", "schema_version", "generated_at", "session_id", "version", "git_commit", "source", "user_label"):
        setattr(run, attr, (getattr(info, attr) or "")[: Run._meta.get_field(attr).max_length])
    run.random_seed = info.random_seed if isinstance(info.random_seed, int) and abs(info.random_seed) < 2**63 else None
    run.settings = info.settings
    run.agents = dict(info.agents)  # agent id -> display name, from the session reader
    run.declared_total = info.declared_total
    run.decision_count = writer.count
    run.first_ts, run.last_ts = writer.first_ts, writer.last_ts
    run.duration_ms = writer.duration_ms()
    display_name = kinds.profile(run.kind).display_name
    run.name = file_name if display_name is None else display_name(file_name, info, keep_user_ids)
    run.source_name = run.name


# --- following a log while it is written (import_logs --follow) -----------------------------------

LIVE_STORE_SECONDS = 1.0  # a followed run stores what has arrived about this often


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
        if kind is None or kind == "manifest":
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
        # A replay opened while it was live holds the decisions of then: it is built again, whole.
        ReplayIndex.objects.filter(run=run).delete()


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

    def duration_ms(self) -> float | None:
        if self.first_ts is None:
            return None
        return (self.last_ts - self.first_ts).total_seconds() * 1000.0


COLUMNS = (
    "run_id", "seq", "line", "ts", "t_ms", "action", "reason", "values", "cell", "rpm", "kpa", "cylinder",
    "rpm_index", "kpa_index", "round", "agent", "metric", "text", "raw",
)


class DecisionWriter:
    """Batched raw inserts inside the caller's transaction: `executemany` on SQLite, COPY on
    PostgreSQL. Both are several times faster than bulk_create, which builds a model instance
    per row (PERF.md); `make bench` measures this writer against a plain script.

    On PostgreSQL one COPY stays open for the whole file, so the server stores rows while the
    reader parses the next ones (a COPY per batch made each wait for the other). The connection
    takes no other query until `close()`; used as a context manager, the writer ends the COPY on
    the way out, aborting it on an error so that the transaction can roll back.
    """

    def __init__(self, run_pk: int):
        self.run_pk = run_pk
        self.batch: list[tuple] = []
        self.count = 0
        self.first_ts = None
        self.last_ts = None
        self.batch_size = settings.REPLAYWEB_INSERT_BATCH
        self.vendor = connection.vendor
        self.adapt_ts = connection.ops.adapt_datetimefield_value
        # Django's adapter for SQLite is make_naive + str(); readers give aware UTC datetimes, so
        # dropping the zone is the same text for a tenth of the cost.
        self.utc_text = self.vendor == "sqlite" and connection.timezone_name == "UTC"
        # Readers hand the same datetime object to consecutive decisions with the same stamp.
        self._ts_obj = None
        self._ts_value = self._t_ms = None
        table = connection.ops.quote_name("viewer_decision")
        cols = ", ".join(connection.ops.quote_name(c) for c in COLUMNS)
        self.copy_sql = f"COPY {table} ({cols}) FROM STDIN" if self.vendor == "postgresql" else None
        json_cast = "%s::jsonb" if self.vendor == "postgresql" else "%s"
        marks = ", ".join(json_cast if c in ("values", "cell") else "%s" for c in COLUMNS)
        self.sql = f"INSERT INTO {table} ({cols}) VALUES ({marks})"
        self._copy = None  # (Django cursor, psycopg Copy manager, Copy) while a COPY is open

    def __enter__(self) -> DecisionWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._end_copy(exc_type, exc, tb)

    def add(self, d: Decision) -> None:
        ts = d.ts
        if ts is None:
            ts_value = t_ms = None
        else:
            if ts is not self._ts_obj:
                if self.first_ts is None:
                    self.first_ts = ts
                self._ts_obj = ts
                if self.utc_text and ts.tzinfo is _UTC:
                    self._ts_value = str(ts.replace(tzinfo=None))
                else:
                    self._ts_value = self.adapt_ts(ts)
                self._t_ms = (ts - self.first_ts).total_seconds() * 1000.0
            self.last_ts = ts
            ts_value, t_ms = self._ts_value, self._t_ms
        values, cell = d.values, d.cell
        try:
            values = _orjson_dumps(values).decode()
            cell = None if cell is None else _orjson_dumps(cell).decode()
        except (TypeError, ValueError):  # deeper than orjson's 255 levels, or ints over 64 bits
            values = _dumps(d.values)
            cell = None if d.cell is None else _dumps(d.cell)
        self.batch.append((
            self.run_pk, d.seq, d.line, ts_value, t_ms, d.action, d.reason, values, cell, d.rpm, d.kpa,
            d.cylinder, d.rpm_index, d.kpa_index, d.round, d.agent, d.metric, d.text, d.raw,
        ))
        self.count += 1
        if len(self.batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        if self.copy_sql:
            with connection.wrap_database_errors:
                if self._copy is None:
                    # COPY through the psycopg cursor under Django's: same connection, same transaction.
                    cursor = connection.cursor()
                    manager = cursor.cursor.copy(self.copy_sql)
                    self._copy = (cursor, manager, manager.__enter__())
                write_row = self._copy[2].write_row
                for row in self.batch:
                    write_row(row)
        else:
            with connection.cursor() as cursor:
                cursor.executemany(self.sql, self.batch)
        self.batch = []

    def close(self) -> None:
        """Write what is left and end the COPY: the connection takes other queries again."""
        self.flush()
        self._end_copy(None, None, None)

    def _end_copy(self, exc_type, exc, tb) -> None:
        if self._copy is None:
            return
        cursor, manager, _ = self._copy
        self._copy = None
        try:
            with connection.wrap_database_errors:
                manager.__exit__(exc_type, exc, tb)  # with an exception: psycopg aborts the COPY
        except Exception:
            if exc_type is None:
                raise
            # Already failing: the first error is the one to report; the rollback follows.
        finally:
            cursor.close()

    def duration_ms(self) -> float | None:
        if self.first_ts is None:
            return None
        return (self.last_ts - self.first_ts).total_seconds() * 1000.0


_UTC = _dt.timezone.utc


try:
    import orjson

    _orjson_dumps = orjson.dumps

    def _dumps(value) -> str:
        try:
            return orjson.dumps(value).decode()
        except (TypeError, orjson.JSONEncodeError):  # deeper than orjson's 255 levels
            import json

            return json.dumps(value, ensure_ascii=False)
except ImportError:  # pragma: no cover
    import json

    def _dumps(value) -> str:
        return json.dumps(value, ensure_ascii=False)

    def _orjson_dumps(value) -> bytes:
        return _dumps(value).encode()
