"""Imports as background jobs: the upload page, POST /api/runs and import_logs store the files and
enqueue a job; a worker process (manage.py worker) imports them, writing its progress on the job.

    submit(owner, files)      -> (jobs, refused)  files into storage, one job per log (or per folder)
    run_job.enqueue(job_id)                       the task a worker runs: process(job_id)
    cancel(job)                                   queued: never starts; running: stops at the next slice
    reap()                                        a running job whose worker went quiet is failed

The task code is the same on every backend (the database, Redis through RQ, or run where it is
enqueued in tests). A job ends done, failed or cancelled; only done leaves runs: the runs a job
created are deleted when it fails, is cancelled, or its worker dies.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone
from django_tasks import task

from . import ingest
from .follow import settle_abandoned
from .warm import warm
from .ingest import IngestResult, Source
from .models import ImportJob, Run

logger = logging.getLogger(__name__)

# How often a running import writes its progress at most (it also writes at every slice's end).
REPORT_SECONDS = 0.5
FINISHED_SHOWN = dt.timedelta(hours=1)  # how long the runs list keeps showing a finished job


@dataclass
class Upload:
    """One file to queue: an upload (a Django UploadedFile) or a file on disk."""

    name: str
    fileobj: object = None
    path: Path | None = None

    def size(self) -> int:
        return self.path.stat().st_size if self.path is not None else self.fileobj.size


def submit(owner, files: list[Upload], *, keep_user_ids: bool = False, skip_unrecognised: bool = False,
           group: str = "upload", enqueue: bool = True) -> tuple[list[ImportJob], list[IngestResult]]:
    """Store the files and queue their import. Returns (the jobs, the files refused before queueing).

    A file over REPLAYWEB_MAX_UPLOAD_BYTES is refused here, before anything is stored. The files of a
    DynoAI output folder (any of them a manifest) stay together in one job, so that the manifest
    meets its replay; any other file is a job of its own, with its own progress bar.
    """
    refused, kept = [], []
    for f in files:
        name = ingest.storable_name(f.name)
        size = f.size()
        if size > settings.REPLAYWEB_MAX_UPLOAD_BYTES:
            refused.append(ingest.too_big(name, size))
        else:
            kept.append((name, f, size))
    if not kept:
        return [], refused
    folder = any(ingest.looks_like_manifest(name, _head(f)) for name, f, _ in kept)
    batches = [kept] if folder else [[one] for one in kept]
    jobs = []
    for batch in batches:
        stored = [{"name": name, "key": _store(f, name), "size": size} for name, f, size in batch]
        title = stored[0]["name"] if len(stored) == 1 else f"{len(stored)} files ({stored[0]['name']}, …)"
        jobs.append(ImportJob.objects.create(
            owner=owner, name=title[:500], files=stored, total_bytes=sum(s["size"] for s in stored),
            options={"keep_user_ids": keep_user_ids, "skip_unrecognised": skip_unrecognised, "group": group},
        ))
    if enqueue:
        for job in jobs:
            start(job)
    return jobs, refused


def start(job: ImportJob) -> ImportJob:
    """Hand the job to the task backend (in tests, this runs it on the spot)."""
    result = run_job.enqueue(job.pk)
    ImportJob.objects.filter(pk=job.pk, task_id="").update(task_id=str(result.id)[:100])
    job.refresh_from_db()
    return job


def _head(f: Upload) -> bytes:
    if f.path is not None:
        with open(f.path, "rb") as fh:
            return fh.read(ingest.HEAD_BYTES)
    f.fileobj.seek(0)
    head = f.fileobj.read(ingest.HEAD_BYTES)
    f.fileobj.seek(0)
    return head


def _store(f: Upload, name: str) -> str:
    """The file, copied into storage where a worker (on this machine or another) can read it."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(name).name)[-100:] or "file"
    key = f"imports/{uuid.uuid4().hex}/{safe}"
    if f.path is not None:
        with open(f.path, "rb") as fh:
            return default_storage.save(key, fh)
    f.fileobj.seek(0)
    return default_storage.save(key, f.fileobj)


@task(queue_name="default")
def run_job(job_id: int) -> str:
    """The task a worker runs: import one job's files. Returns the job's final status."""
    return process(job_id)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def process(job_id: int) -> str:
    """Claim the job (a job is imported once, whatever the queue delivers twice), import its files
    with progress, compute each new run's first view (viewer/warm.py) and end the job."""
    reap()
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started=now, heartbeat=now, worker=worker_name(), stage="checking",
    )
    if not claimed:  # cancelled before it started, or another worker has it
        return ImportJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or "gone"
    job = ImportJob.objects.get(pk=job_id)
    report = _Reporter(job)
    try:
        sources = [Source(name=f["name"], path=_local_path(f["key"]), group=job.options.get("group", "upload"))
                   for f in job.files]
        results = ingest.run_ingest(
            owner=job.owner, sources=sources, keep_user_ids=job.options.get("keep_user_ids", False),
            skip_unrecognised=job.options.get("skip_unrecognised", False), progress=report, prepare=_prepare,
        )
    except ingest.Stop:
        _end(job, ImportJob.Status.CANCELLED, "cancelled; nothing was stored", [])
        return ImportJob.Status.CANCELLED
    except BaseException as exc:  # a bug, or the worker told to stop: the job says so, no half run stays
        _end(job, ImportJob.Status.FAILED, f"{job.name}: the import stopped ({exc.__class__.__name__}: "
             f"{str(exc)[:200]}); nothing was stored", [])
        if not isinstance(exc, Exception):
            raise
        logger.exception("import job %s failed", job_id)
        return ImportJob.Status.FAILED
    lines = [line_of(r) for r in results]
    kept = [r for r in results if r.run is not None and r.status == "imported"]
    if any(r.run is not None for r in results) or not all(r.failed for r in results):
        status, message = ImportJob.Status.DONE, "; ".join(r.message for r in results if r.message)
    else:
        status, message = ImportJob.Status.FAILED, "; ".join(r.message for r in results)
    _end(job, status, message, lines, run=kept[0].run if kept else next((r.run for r in results if r.run), None))
    return status


def _prepare(run: Run, say) -> None:
    """Before the run is shown: its first view computed once, for every process (viewer/warm.py)."""
    warm(run, lambda stage: say(stage))


def _local_path(key: str) -> Path:
    """Where the stored file is on this machine (FileSystemStorage; a shared folder for workers
    on other machines)."""
    return Path(default_storage.path(key))


def _end(job: ImportJob, status: str, message: str, lines: list[dict], run: Run | None = None) -> None:
    """Finish the job: a job that did not end done deletes the runs it created; the files go."""
    with transaction.atomic():  # the job ends and its runs go (if it failed) together, or neither
        created = ImportJob.objects.filter(pk=job.pk).values_list("run_ids", flat=True).first() or []
        if status != ImportJob.Status.DONE and created:
            Run.objects.filter(pk__in=created).delete()
            run = None
        ImportJob.objects.filter(pk=job.pk).update(
            status=status, message=message[:10_000], results=lines, run=run, stage="", finished=timezone.now(),
            heartbeat=timezone.now(),
        )
    discard_files(job)


class _Reporter:
    """The progress callback ingest calls: writes the job's progress (at most every REPORT_SECONDS,
    and at every slice, inside the slice's transaction) and stops the import if cancelled."""

    def __init__(self, job: ImportJob):
        self.job = job
        self.done_bytes = 0  # of the files before this one
        self.done_decisions = 0
        self.current = None
        self.last = 0.0
        self.run_ids: list[int] = []
        self.last_file = (None, 0, 0)

    def __call__(self, p: ingest.Progress) -> None:
        if p.name != self.current:
            if self.current is not None:
                self.done_bytes += self.last_file[1]
                self.done_decisions += self.last_file[2]
            self.current = p.name
        self.last_file = (p.name, p.total_bytes, p.decisions)
        fields = {"stage": p.stage, "current": p.name[:500], "heartbeat": timezone.now(),
                  "bytes_read": self.done_bytes + p.bytes_read, "decisions": self.done_decisions + p.decisions}
        if p.run_id is not None and p.run_id not in self.run_ids:
            self.run_ids.append(p.run_id)
            fields["run_ids"] = list(self.run_ids)
            self.last = 0.0  # the run must be on record before it holds any decision
        now = time.monotonic()
        if now - self.last < REPORT_SECONDS and p.stage == "parsing" and p.bytes_read < p.total_bytes:
            return
        self.last = now
        try:
            with transaction.atomic():
                ImportJob.objects.filter(pk=self.job.pk).update(**fields)
                cancelled = ImportJob.objects.filter(pk=self.job.pk, cancel_requested=True).exists()
        except DatabaseError:  # progress is bookkeeping: the import goes on
            logger.warning("job %s: progress not recorded", self.job.pk, exc_info=True)
            return
        if cancelled:
            raise ingest.Stop()


def discard_files(job: ImportJob) -> None:
    """The job's stored files, and their folder (one per upload), once the job has ended."""
    for f in job.files:
        try:
            default_storage.delete(f["key"])
            os.rmdir(Path(default_storage.path(f["key"])).parent)
        except (OSError, NotImplementedError):  # gone already, a folder not empty yet, or no local path
            pass


def cancel(job: ImportJob) -> ImportJob:
    """A queued job never starts; a running one stops at its next slice and deletes what it stored."""
    ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.CANCELLED, message="cancelled before it started", finished=timezone.now(),
    )
    ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    if job.status == ImportJob.Status.CANCELLED:
        discard_files(job)
    return job


def reap() -> int:
    """Fail the running jobs whose worker has gone quiet (killed, or its machine lost), deleting
    the runs they had started, and settle the followed runs whose follower has (follow.settle_abandoned).
    Called by workers before each job and by the pages that show jobs."""
    quiet = timezone.now() - dt.timedelta(seconds=settings.REPLAYWEB_JOB_STALE_SECONDS)
    count = 0
    for job in ImportJob.objects.filter(status=ImportJob.Status.RUNNING, heartbeat__lt=quiet):
        with transaction.atomic():  # the job is failed and its runs go together, or neither
            won = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING, heartbeat__lt=quiet).update(
                status=ImportJob.Status.FAILED, finished=timezone.now(), stage="",
                message=f"{job.name}: the worker ({job.worker}) stopped during the import and was not heard from "
                f"for {settings.REPLAYWEB_JOB_STALE_SECONDS} s; nothing was stored. Upload the file again.",
            )
            if won:
                Run.objects.filter(pk__in=job.run_ids or []).delete()
                count += 1
    return count + settle_abandoned()  # the other work a process can leave behind: a followed run


def visible_jobs(user):
    """The user's jobs the runs list shows: every unfinished one, and those finished in the last hour."""
    recent = timezone.now() - FINISHED_SHOWN
    unfinished = Q(status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING])
    return ImportJob.objects.filter(Q(owner=user) & (unfinished | Q(finished__gte=recent))).order_by("-created", "-id")


def line_of(r: IngestResult) -> dict:
    """One file's result as the upload page and the job show it."""
    run = r.run
    return r.as_dict() | {
        "run_name": run.name if run else "",
        "source_name": run.source_name if run else "",
        "run_failed": bool(run and run.status == Run.Status.FAILED),
    }


@dataclass
class Facts:
    """What the runs list and GET /api/jobs/{id} say about a job."""

    percent: int | None  # None: a stage with no measure of its own (the bar is indeterminate)
    rate: float | None  # bytes per second, while parsing
    eta_seconds: float | None  # while parsing: the file's rest at its rate so far
    doing: str  # the stage in words


STAGES = {
    "": "starting",
    "checking": "checking the file (size, sha256, duplicates)",
    "parsing": "reading and storing decisions",
    "aggregating": "computing the run's first view (summary, facets, chart, heatmaps)",
    "indexing": "building the replay index",
}


def facts(job: ImportJob) -> Facts:
    stage = job.stage if job.status == ImportJob.Status.RUNNING else ""
    doing = "waiting for a worker" if job.status == ImportJob.Status.QUEUED else STAGES.get(stage, stage)
    if job.status == ImportJob.Status.DONE:
        return Facts(100, None, None, "done")
    if stage in ("checking", "aggregating", "indexing"):  # no measure of their own: an indeterminate bar
        return Facts(None, None, None, doing)
    percent = min(99, job.bytes_read * 100 // max(job.total_bytes, 1))
    rate = eta = None
    if stage == "parsing" and job.started:
        elapsed = (timezone.now() - job.started).total_seconds()
        if elapsed > 0.5 and job.bytes_read:
            rate = job.bytes_read / elapsed
            eta = max(0.0, (job.total_bytes - job.bytes_read) / rate)
    return Facts(percent, rate, eta, doing)


def as_dict(job: ImportJob) -> dict:
    """GET /api/jobs/{id}."""
    f = facts(job)
    return {
        "id": job.pk, "name": job.name, "status": job.status, "stage": job.stage, "current": job.current,
        "bytes_read": job.bytes_read, "total_bytes": job.total_bytes, "decisions": job.decisions,
        "run_id": job.run_id, "message": job.message, "rate_bytes_per_second": f.rate, "eta_seconds": f.eta_seconds,
        "percent": f.percent,
        "results": [{k: r.get(k) for k in ("name", "status", "message", "run_id", "count", "warnings")}
                    for r in job.results],
        "created": job.created, "started": job.started, "finished": job.finished,
    }
