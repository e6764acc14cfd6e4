"""A DynoAI output folder beside its replay: keep each file with its run, verify it against the
manifest, and parse the toolkit's grid CSVs (FORMATS.md 1.3). Plain functions; ingest calls them.

A run's manifest (`Run.manifest["outputs"]`) lists what the toolkit wrote; `sync(run)` gives each
kept file its status (matched, differs and why, unlisted) and adds a `missing` row for each listed
file no one uploaded. Every status comes from the stored facts, so a manifest that arrives after
its run re-verifies the files already kept.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import re

from django.db import transaction

from .models import Run, RunOutput
from .readers.manifest import FileFacts

MAX_OUTPUT_BYTES = 32 * 1024**2  # an output file kept in the database; the toolkit's are a few KB
MAX_GRID_CELLS = 10_000


class OutputError(ValueError):
    """A file that cannot be kept as an output or read as a grid; the message names no file."""


def file_facts(data: bytes) -> FileFacts:
    """Size, sha256, line count, and the sha256 of the bytes with every bare LF written as CRLF."""
    crlf = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    return FileFacts(len(data), hashlib.sha256(data).hexdigest(), data.count(b"\n"), hashlib.sha256(crlf).hexdigest())


def verdict(entry: dict | None, facts: FileFacts | None, manifest_name: str) -> tuple[str, str]:
    """(status, why) of one file against its manifest entry (None: the manifest does not list it)."""
    if facts is None:
        return RunOutput.Status.MISSING, f"{manifest_name} lists it; it was not uploaded with the run"
    if entry is None:
        return RunOutput.Status.UNLISTED, (
            f"{manifest_name} does not list it" if manifest_name else "no manifest came with this run")
    size, sha = entry.get("size"), entry.get("sha256") or ""
    size_ok = size is None or size == facts.size
    sha_ok = not sha or sha == facts.sha256
    if size_ok and sha_ok:
        return RunOutput.Status.MATCHED, "" if sha else f"{manifest_name} records no sha256; the size agrees"
    if sha and sha == facts.crlf_sha256 and (size is None or size == facts.size + facts.newlines):
        return RunOutput.Status.DIFFERS, (
            f"only its {facts.newlines:,} line endings differ: {manifest_name} describes it written with "
            "CRLF (Windows) endings, this copy has LF; the content is the same")
    parts = []
    if not size_ok:
        parts.append(f"{manifest_name} records {size:,} bytes, this file is {facts.size:,}")
    if not sha_ok:
        parts.append(f"sha256 {sha[:12]}… expected, {facts.sha256[:12]}… found")
    return RunOutput.Status.DIFFERS, "; ".join(parts) + ": edited, or written by another run"


def parse_grid(data: bytes) -> dict:
    """A toolkit grid CSV: header `RPM,35,50,...`, rows `<rpm>,<value>,...`, empty = no data,
    signed values written `'+1.68` (the CSV-injection guard). -> {"rpm", "kpa", "values"}."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise OutputError("not UTF-8 text") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows or rows[0][0].strip().upper() != "RPM":
        raise OutputError("not a grid: the header does not start with RPM")
    kpa = [_number(cell, 1, i + 2) for i, cell in enumerate(rows[0][1:])]
    if not kpa or None in kpa or len(kpa) * len(rows) > MAX_GRID_CELLS:
        raise OutputError("not a grid: the header needs kPa bins after RPM" if not kpa or None in kpa
                          else f"not a grid: more than {MAX_GRID_CELLS:,} cells")
    rpm, values = [], []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(kpa) + 1:
            raise OutputError(f"not a grid: line {n} has {len(row)} fields, the header {len(kpa) + 1}")
        bin_ = _number(row[0], n, 1)
        if bin_ is None:
            raise OutputError(f"not a grid: line {n} has no RPM")
        rpm.append(bin_)
        values.append([_number(cell, n, col + 2) for col, cell in enumerate(row[1:])])
    return {"rpm": rpm, "kpa": kpa, "values": values}


def _number(cell: str, line: int, col: int) -> float | int | None:
    text = cell.strip().lstrip("'")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise OutputError(f"not a grid: line {line}, field {col} is {cell[:20]!r}, not a number") from None
    if not math.isfinite(value):
        raise OutputError(f"not a grid: line {line}, field {col} is not a finite number")
    return int(value) if value.is_integer() and "." not in text else value


def keep(run: Run, name: str, data: bytes, *, facts: FileFacts | None = None) -> tuple[RunOutput, str]:
    """Store one file with the run, whole or not at all. -> (row, a note: why its grid was not read)."""
    if len(data) > MAX_OUTPUT_BYTES:
        raise OutputError(f"{len(data):,} bytes, over the {MAX_OUTPUT_BYTES:,} bytes an output file may have")
    facts = facts or file_facts(data)
    grid, note = None, ""
    if name.lower().endswith(".csv") and data.lstrip(b"\xef\xbb\xbf")[:3].upper() == b"RPM":
        try:
            grid = parse_grid(data)
        except OutputError as exc:
            note = f"kept as a file, not read as a grid ({exc})"
    with transaction.atomic():
        RunOutput.objects.filter(run=run, name=name[:500], size=None).delete()  # it was `missing` until now
        row = RunOutput.objects.create(
            run=run, name=name[:500], data=data, size=facts.size, sha256=facts.sha256, newlines=facts.newlines,
            crlf_sha256=facts.crlf_sha256, status=RunOutput.Status.UNLISTED, grid=grid, position=10**6,
        )
    return row, note


def sync(run: Run) -> None:
    """Give every kept file its status against the run's manifest; a listed file not kept is `missing`."""
    manifest = run.manifest if isinstance(run.manifest, dict) else {}
    entries = [e for e in manifest.get("outputs") or [] if isinstance(e, dict) and e.get("name")]
    manifest_name = str(manifest.get("manifest") or "")
    by_name = {e["name"]: (i, e) for i, e in enumerate(entries)}
    rows = {row.name: row for row in RunOutput.objects.filter(run=run).defer("data", "grid")}
    with transaction.atomic():
        for name, row in rows.items():
            if row.size is None and name not in by_name:
                row.delete()  # a `missing` row of a manifest no longer the run's
                continue
            position, entry = by_name.get(name, (len(entries), None))
            facts = None if row.size is None else FileFacts(row.size, row.sha256, row.newlines or 0, row.crlf_sha256)
            row.status, row.why = verdict(entry, facts, manifest_name)
            row.position = position
            row.schema = (entry or {}).get("schema") or row.schema
            row.expected_size = (entry or {}).get("size")
            row.expected_sha256 = (entry or {}).get("sha256") or ""
            row.save(update_fields=["status", "why", "position", "schema", "expected_size", "expected_sha256"])
        for name, (position, entry) in by_name.items():
            if name not in rows:
                status, why = verdict(entry, None, manifest_name)
                RunOutput.objects.create(
                    run=run, name=name, position=position, schema=entry.get("schema") or "", status=status, why=why,
                    expected_size=entry.get("size"), expected_sha256=entry.get("sha256") or "",
                )


def output_list(run: Run):
    """The run's output files in the manifest's order, without their bytes."""
    return RunOutput.objects.filter(run=run).defer("data").order_by("position", "name", "id")


def output_file(*, run: Run, name: str) -> RunOutput | None:
    """One kept file of the run, with its bytes (None: no such file, or listed but not uploaded)."""
    return RunOutput.objects.filter(run=run, name=name).exclude(data=None).first()


def counts(run: Run) -> dict[str, int]:
    result: dict[str, int] = {}
    for status in RunOutput.objects.filter(run=run).values_list("status", flat=True):
        result[status] = result.get(status, 0) + 1
    return result
