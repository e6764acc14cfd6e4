"""Output folders and batches (issue 13): which manifest describes which replay, a manifest that
comes after its run, a failed toolkit run, and which run a file beside them belongs to.

Never by position: a replay meets its manifest by sha256 (as written, or with CRLF endings), then
by run_id, then by folder (one replay and one manifest left in it). ingest.run_ingest calls these;
each returns plain values and writes only through the models and outputs.keep/sync.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q

from . import kinds, outputs
from .models import Run, RunOutput
from .readers import manifest as manifest_mod
from .readers.base import storable
from .readers.manifest import FileFacts, basename

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Found:
    """A manifest of this import: where it came from and the run it turned out to describe."""

    index: int
    name: str
    group: str
    m: manifest_mod.Manifest
    facts: FileFacts
    copy_of: Found | None = None
    run: Run | None = None
    replay_name: str = ""  # the replay file paired with it


@dataclass
class Replay:
    index: int
    name: str
    group: str
    facts: FileFacts
    run_id: str = ""
    paired: Found | None = field(default=None, repr=False)


def dedupe(found: list[Found]) -> list[Found]:
    """The toolkit writes each manifest twice (`manifest.json`, `<run_id>.manifest.json`): in one
    folder, a second manifest with the same run_id is a copy of the first. -> the originals."""
    originals: list[Found] = []
    for f in found:
        first = next((o for o in originals if o.group == f.group and o.m.run_id and o.m.run_id == f.m.run_id), None)
        if first is None:
            originals.append(f)
        else:
            f.copy_of = first
    return originals


def pair(replays: list[Replay], found: list[Found]) -> None:
    """Set `replay.paired`: by sha256 (or its CRLF form), then run_id, then folder; never by order."""
    free = [f for f in found]

    def take(r: Replay, f: Found) -> None:
        r.paired, f.replay_name = f, r.name
        free.remove(f)

    for r in replays:
        f = next((f for f in free if f.group == r.group and f.m.replay_sha256
                  and f.m.replay_sha256 in (r.facts.sha256, r.facts.crlf_sha256)), None)
        if f:
            take(r, f)
    for r in replays:
        if r.paired is None and r.run_id:
            f = next((f for f in free if f.group == r.group and f.m.run_id == r.run_id), None)
            if f:
                take(r, f)
    for r in replays:
        if r.paired is not None:
            continue
        alone = [x for x in replays if x.group == r.group and x.paired is None]
        left = [f for f in free if f.group == r.group]
        if len(alone) == 1 and len(left) == 1 and not (r.run_id and left[0].m.run_id):
            take(r, left[0])


def manifest_check(m: manifest_mod.Manifest, facts: FileFacts, manifest_facts: FileFacts) -> dict:
    """What a run keeps of its manifest: the replay check, the outputs to verify files by, the input."""
    return manifest_mod.check(m, facts) | m.as_check() | {"manifest_sha256": manifest_facts.sha256}


def run_name(run: Run, info) -> str:
    """The name the run's kind gives it (Profile.run_name), or "" to keep the file name."""
    path = kinds.profile(run).run_name
    if not path:
        return ""
    module, _, func = path.rpartition(".")
    try:
        name = getattr(importlib.import_module(module), func)(run, info)
    except Exception:  # a naming bug must not sink an import: the file name stays
        logger.exception("run_name %s failed for run %s", path, run.pk)
        return ""
    return storable(str(name or "")).strip()[:500]


def earlier_run(owner, m: manifest_mod.Manifest) -> Run | None:
    """The owner's run this manifest describes: its replay's sha256 (or CRLF form) among the
    manifest's outputs, or the same run_id."""
    shas = {o.sha256 for o in m.outputs if o.sha256}
    q = Q(sha256__in=shas) | Q(outputs__crlf_sha256__in=shas) if shas else Q(pk__in=[])
    if m.run_id:
        q |= Q(run_id=m.run_id)
    runs = list(Run.objects.filter(owner=owner, kind=manifest_mod.KIND).filter(q).distinct().order_by("-id")[:20])
    return next((r for r in runs if r.status == Run.Status.READY), runs[0] if runs else None)


def attach(run: Run, f: Found) -> str:
    """A manifest that came after its run (or beside a replay already imported): check the run's
    replay against it, take its settings and outputs, re-verify the files kept. -> what happened."""
    m = f.m
    if isinstance(run.manifest, dict) and run.manifest.get("manifest_sha256") == f.facts.sha256:
        return f"already checks “{run.name}”"
    replay = RunOutput.objects.filter(run=run, sha256=run.sha256).exclude(size=None).first()
    facts = FileFacts(replay.size, replay.sha256, replay.newlines or 0, replay.crlf_sha256) if replay else \
        FileFacts(run.size, run.sha256, 0, "")
    automatic = run.name == (run_name(run, None) or run.source_name)
    with transaction.atomic():
        check = manifest_check(m, facts, f.facts)
        check["attached"] = True
        run.manifest = check
        if m.args:
            run.settings = m.args
        if automatic:
            run.name = run_name(run, None) or run.name
        warnings = [w for w in run.warnings or [] if "manifest" not in w.lower()]
        if not check["ok"]:
            warnings.append(check["message"])
        run.warnings = warnings
        run.save()
        name = basename(m.replay_path)
        if replay and name and replay.name != name and not RunOutput.objects.filter(run=run, name=name).exists():
            replay.name = name
            replay.save(update_fields=["name"])
        outputs.sync(run)
    return f"attached to “{run.name}”, imported before: " + ("its replay matches" if check["ok"] else check["message"])


def failed_run(owner, f: Found) -> tuple[str, str, Run]:
    """A manifest whose toolkit run failed: a run record with no decisions. -> (status, message, run)."""
    m = f.m
    existing = Run.objects.filter(owner=owner, sha256=f.facts.sha256).first()
    if existing is None and m.run_id:
        existing = Run.objects.filter(owner=owner, kind=manifest_mod.KIND, run_id=m.run_id,
                                      status=Run.Status.FAILED).first()
    if existing:
        return "duplicate", f"{f.name}: already imported as “{existing.name}”", existing
    failure = m.failure()
    what = f"stage {failure['stage'] or '?'}: {failure['message'] or 'no message'}"
    with transaction.atomic():
        run = Run(
            owner=owner, kind=manifest_mod.KIND, name=f.name[:500], source_name=f.name[:500], size=f.facts.size,
            sha256=f.facts.sha256, run_id=m.run_id[:500], settings=m.args, status=Run.Status.FAILED,
            failure=failure, decision_count=0,
            # Its outputs, to verify the files kept beside it by (no replay to check: no "ok").
            manifest=m.as_check() | {"manifest_sha256": f.facts.sha256},
        )
        run.name = run_name(run, None) or run.name
        run.save()
    return "imported", f"{f.name}: a failed toolkit run, kept as a run with no decisions (failed at {what})", run


def place(name: str, facts: FileFacts, group_runs: list[tuple[Run, manifest_mod.Manifest | None]]) -> list[Run] | str:
    """The runs a file beside them belongs to: the manifest that lists it with its sha256, else the
    one manifest that lists its name, else the group's only run. -> runs, or why there is none."""
    base = basename(name)
    listed = [(run, m.entry(base)) for run, m in group_runs if m is not None and m.entry(base)]
    exact = [run for run, e in listed if e.sha256 and e.sha256 in (facts.sha256, facts.crlf_sha256)]
    if exact:
        return exact
    if len(listed) == 1:
        return [listed[0][0]]
    if len(listed) > 1:
        return (f"{len(listed)} manifests here list a file of this name and none with this content: "
                "which run it belongs to is unknown")
    if len(group_runs) == 1:
        return [group_runs[0][0]]
    return f"no manifest here lists it and {len(group_runs)} runs came with it: which one it belongs to is unknown"


# -- result lines (ingest.run_ingest makes each dict an IngestResult) ------------------------------


def _line(name, status, message, run=None, warnings=(), rows=()) -> dict:
    return {"name": name, "status": status, "message": message, "run": run, "warnings": list(warnings),
            "outputs": list(rows)}


def manifest_result(owner, f: Found, group_runs: dict) -> dict:
    """A manifest's own line: the replay it describes, the run it was attached to, the failed run it
    became, or that it names no file here."""
    name = f.name
    if f.copy_of is not None:
        run = f.copy_of.run
        return _line(name, "manifest", f"{name}: a copy of {f.copy_of.name} (run_id {f.m.run_id})"
                     + (f", for “{run.name}”" if run else ""), run)
    if f.run is not None:
        check = f.run.manifest if isinstance(f.run.manifest, dict) else {}
        verdict = "its replay matches" if check.get("ok") else "see the run's warning"
        return _line(name, "manifest", f"{name}: describes {f.replay_name} (“{f.run.name}”): {verdict}", f.run)
    if f.m.failed:
        status, message, run = failed_run(owner, f)
    else:
        run = earlier_run(owner, f.m)
        if run is None:
            what = f.m.replay_path or "session replay"
            sha = f" (sha256 {f.m.replay_sha256[:12]}…)" if f.m.replay_sha256 else ""
            return _line(name, "skipped", f"{name}: names no uploaded file: its {what}{sha} is not among these "
                         "files and no run of yours has it; nothing was stored")
        status, message = "manifest", f"{name}: " + attach(run, f)
    f.run = run
    group_runs.setdefault(f.group, []).append((run, f.m))
    return _line(name, status, message, run, run.warnings if status == "imported" else ())


def extra_result(src, read, group_runs: list) -> dict:
    """A file beside the logs that is none: kept with the run it belongs to (an output), or not."""
    name = src.name
    size = src.size()
    if size == 0:
        return _line(name, "error", f"{name}: the file is empty; nothing was stored from it")
    if size > outputs.MAX_OUTPUT_BYTES:
        return _line(name, "error", f"{name}: {size:,} bytes, over the {outputs.MAX_OUTPUT_BYTES:,} bytes "
                     "an output file may have; not kept")
    data = read(src, outputs.MAX_OUTPUT_BYTES + 1)
    facts = outputs.file_facts(data)
    runs = place(name, facts, group_runs)
    if isinstance(runs, str):
        return _line(name, "skipped", f"{name}: {runs}; not kept")
    base, kept, notes = basename(name), [], []
    for run in runs:
        if RunOutput.objects.filter(run=run, name=base).exclude(size=None).exists():
            continue  # a file of this name is kept already (a `missing` row is replaced below)
        row, note = outputs.keep(run, base, data, facts=facts)
        kept.append(row)
        notes += [f"{name}: {note}"] if note else []
    if not kept:
        return _line(name, "skipped", f"{name}: “{runs[0].name}” already has a file named {base}; not kept again",
                     runs[0])
    return _line(name, "output", "", kept[0].run, notes, kept)


def say_verdict(result) -> None:
    """An output's line, once every run's files are verified: where it went and its status."""
    if not result.outputs:
        return
    said = []
    for row in RunOutput.objects.filter(pk__in=[r.pk for r in result.outputs]).select_related("run").defer("data"):
        said.append(f"kept with “{row.run.name}”: {row.status}" + (f" ({row.why})" if row.why else ""))
    result.message = f"{result.name}: " + "; ".join(said)
