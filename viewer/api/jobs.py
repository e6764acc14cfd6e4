"""Import jobs: how far one has got, and cancelling it (viewer/jobs.py)."""
from __future__ import annotations

import datetime as dt

from ninja import Field, Schema
from ninja.errors import HttpError

from .. import jobs
from ..models import ImportJob
from .base import ERRORS, MAX_ID, router


class JobResultOut(Schema):
    name: str
    status: str = Field(description="imported, duplicate, error, skipped, manifest or output")
    message: str
    run_id: int | None
    count: int
    warnings: list[str]


class JobOut(Schema):
    id: int
    name: str
    status: str = Field(description="queued, running, done, failed or cancelled")
    stage: str = Field(description="while running: checking, parsing, indexing or aggregating")
    current: str = Field(description="the file being read")
    bytes_read: int
    total_bytes: int
    decisions: int = Field(description="decisions stored so far")
    run_id: int | None = Field(description="the run imported (the first, for a folder); set when done")
    message: str = Field(description="what happened: each file's line, or why the job failed")
    rate_bytes_per_second: float | None = Field(description="while parsing: bytes read per second so far")
    eta_seconds: float | None = Field(description="while parsing: time left to read the file at that rate")
    percent: int | None = Field(description="of the file read; null while computing the first view (indexing, aggregating)")
    results: list[JobResultOut] = Field(description="one line per file, when done")
    created: dt.datetime
    started: dt.datetime | None
    finished: dt.datetime | None


def _job(request, job_id: int) -> ImportJob:
    job = ImportJob.objects.filter(owner=request.auth, pk=job_id).first() if 0 < job_id <= MAX_ID else None
    if job is None:
        raise HttpError(404, "No such job")
    return job


@router.get("/jobs/{job_id}", response={200: JobOut, **ERRORS}, summary="One import job", tags=["jobs"])
def get_job(request, job_id: int):
    jobs.reap()
    return jobs.as_dict(_job(request, job_id))


@router.delete("/jobs/{job_id}", response={200: JobOut, **ERRORS}, summary="Cancel an import job", tags=["jobs"],
               description="A queued job never starts; a running one stops at its next slice and stores nothing.")
def cancel_job(request, job_id: int):
    return jobs.as_dict(jobs.cancel(_job(request, job_id)))
