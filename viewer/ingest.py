"""run_ingest(): the one way a log file becomes a Run. Upload page, API and import_logs call it.

Per file: size limit, sha256 (a file the owner already has is a duplicate, not a second run),
content detection, streaming read, batched inserts, a slice of decisions per transaction; the
run stays hidden (IMPORTING) until its last slice, and a file that fails anywhere is deleted
again, so it leaves nothing behind. Uploads reach this through a job (viewer/jobs.py).

A log still being written is followed instead (viewer/follow.py, import_logs --follow): its run is
LIVE, shown and growing about every second, until the log ends or goes quiet.
"""
from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction

from . import folders, kinds, outputs, pipeline
from .models import Decision, Run
from .readers import manifest as manifest_mod
from .readers.base import Limits, ReadError, RunInfo, storable
from .readers.detect import GZIP_MAGIC
from .readers.streams import open_decompressed

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
            # LF -> CRLF, leaving existing CRLF alone (a CR may end the previous chunk). Two
            # bytes.replace passes, not a look-behind regex: 8x faster (issue 19).
            lf = chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
            converted = lf.replace(b"\n", b"\r\n")
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
        reading = None  # the second process reading a big file (viewer/pipeline.py)
        try:
            stream = open_decompressed(f, name, settings.REPLAYWEB_MAX_DECOMPRESSED_BYTES)
            options = {"limits": limits(), "keep_user_ids": keep_user_ids}
            parsed = rows = None
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
                        if pipeline.usable(size):  # a big file: read in a second process while this one writes
                            reading = pipeline.ParsedRows(reader, stream, info, writer, lines=last_line, **options)
                            parsed = iter(reading)
                        else:
                            parsed = pipeline.rows_here(reader, stream, info, writer, lines=last_line, **options)
                    with writer:
                        done = True
                        slice_end = writer.count + per_slice
                        while rows or (rows := next(parsed, None)):  # a batch may straddle two slices
                            room = slice_end - writer.count
                            writer.add_rows(rows[:room])
                            rows = rows[room:]
                            if writer.count == slice_end:
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
            if writer.count >= VACUUM_AFTER:
                vacuum_decisions()
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
            if reading is not None:
                reading.close()  # stopped if it still runs (a cancelled job, a database error)
    finally:
        if source.path is not None:
            f.close()
    return IngestResult(name, "imported", f"{name}: {run.decision_count:,} decisions", run=run,
                        count=run.decision_count, warnings=list(run.warnings))


VACUUM_AFTER = 20_000  # decisions: an import this big leaves the planner's statistics out of date


def vacuum_decisions() -> None:
    """On PostgreSQL, VACUUM (ANALYZE) the decisions table after a bulk load, as its manual advises:
    without statistics the planner sorts a whole filtered run for its first page, and without the
    visibility map a count cannot be an index-only scan (issue 19: a filter on action 400 ms -> 30 ms
    at 1M). It costs 1.1 s after 1M new rows (6% of the import), 3.7 s when it also clears a deleted
    1M run (autovacuum's work, done now). Outside a transaction only (VACUUM cannot run in one: a
    test's, or a caller's atomic block)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(Decision._meta.db_table)}")


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
    run.duration_ms = writer.duration_ms(info.ends_at)
    display_name = kinds.profile(run.kind).display_name
    run.name = file_name if display_name is None else display_name(file_name, info, keep_user_ids)
    run.source_name = run.name


from .writer import COLUMNS, DecisionWriter, _dumps  # noqa: E402,F401  (tests patch ingest.DecisionWriter)
