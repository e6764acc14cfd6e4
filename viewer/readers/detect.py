"""Which reader a file needs, decided by its content, with the name as a tie-breaker."""
from __future__ import annotations

import json

EMPTY_STUDY_SENTINEL = "[Empty log file -- no events captured]"
GZIP_MAGIC = b"\x1f\x8b"


def kind_of(head: bytes, name: str) -> str | None:
    """"dynoai", "session", "study", "manifest", or None when nothing fits.

    `head` is the start of the (decompressed) file, a few KB to a few MB.
    """
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    lower = name.lower()
    if text.startswith(EMPTY_STUDY_SENTINEL):
        return "study"
    first, newline, _ = text.partition("\n")
    obj = _json_object(first) if newline or len(head) < 65536 else None
    if obj is None and "\t" in first:
        obj = _json_object(first.rpartition("\t")[0])
        if obj is not None and "client" in obj:
            return "study"
    if obj is not None:
        if "event_type" in obj:
            return "session"
        if "client" in obj:
            return "study"
        if "decisions" in obj or "schema_version" in obj:
            return "dynoai"
        if str(obj.get("schema_id", "")).startswith("dynoai.manifest"):
            return "manifest"
    elif text.startswith("{"):
        window = text[:4096]
        if '"schema_id"' in window and "dynoai.manifest" in window:
            return "manifest"
        if '"decisions"' in window or '"schema_version"' in window or '"run_id"' in window:
            return "dynoai"
    # Nothing conclusive: let the name pick the reader, whose error will then be specific.
    if lower.endswith((".study.log", ".study.log.gz")):
        return "study"
    if lower.endswith(".jsonl"):
        return "session"
    if lower.endswith("manifest.json"):
        return "manifest"
    if lower.endswith(".json"):
        return "dynoai"
    return None


def _json_object(line: str) -> dict | None:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None
