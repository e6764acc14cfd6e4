"""DynoAI `manifest.json`: the settings of a run, its status, and the size/sha256 of each file it wrote."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .base import ReadError

MAX_MANIFEST_BYTES = 16 * 1024**2
KIND = "dynoai"  # the log kind a manifest describes: a failed run it records is a run of this kind
REPLAY_SCHEMA = "session_replay"
_RUN_ID = re.compile(rb'"run_id"\s*:\s*"((?:[^"\\]|\\.){1,500})"')


@dataclass
class Output:
    """One `outputs[]` entry: a file the toolkit wrote, by its bare file name."""

    name: str
    schema: str = ""
    size: int | None = None
    sha256: str = ""


@dataclass
class Manifest:
    name: str
    run_id: str = ""
    status: dict = field(default_factory=dict)
    args: dict = field(default_factory=dict)
    input: dict = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    replay_path: str = ""
    replay_size: int | None = None
    replay_sha256: str = ""

    @property
    def failed(self) -> bool:
        """The toolkit run failed before it wrote a session replay: the manifest is all there is."""
        code = self.status.get("code")
        return code == "error" or (code == "partial" and not self.replay_path and not self.replay_sha256)

    def failure(self) -> dict:
        return {
            "code": _text(self.status.get("code")),
            "stage": _text(self.status.get("last_stage")),
            "message": _text(self.status.get("message")),
            "input": self.input,
            "manifest": self.name,
        }

    def entry(self, name: str) -> Output | None:
        """The output entry for a file of this name (its bare name), if the manifest lists one."""
        base = basename(name)
        return next((o for o in self.outputs if o.name == base), None)

    def as_check(self) -> dict:
        """What a run keeps of its manifest besides the replay check: its outputs, to verify files by."""
        return {
            "run_id": self.run_id,
            "input": self.input,
            "outputs": [{"name": o.name, "schema": o.schema, "size": o.size, "sha256": o.sha256} for o in self.outputs],
        }


def basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def run_id_in(head: bytes) -> str:
    """The `run_id` a DynoAI replay states near its top, read from the file's first bytes."""
    m = _RUN_ID.search(head[:65536])
    if not m:
        return ""
    try:
        return json.loads(b'"' + m.group(1) + b'"')
    except ValueError:
        return ""


def parse(data: bytes, name: str) -> Manifest:
    if len(data) > MAX_MANIFEST_BYTES:
        raise ReadError(f"manifest is larger than {MAX_MANIFEST_BYTES:,} bytes")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ReadError("manifest is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ReadError(f"invalid JSON in manifest: {exc.msg}", exc.lineno) from None
    except ValueError:  # an integer of more than 4,300 digits
        raise ReadError("manifest has a number of more than 4,300 digits") from None
    except RecursionError:
        raise ReadError("manifest is nested too deeply (more than about 900 levels)") from None
    if not isinstance(doc, dict):
        raise ReadError("manifest is not a JSON object")
    m = Manifest(name=name, run_id=_text(doc.get("run_id")))
    status = doc.get("status")
    m.status = status if isinstance(status, dict) else {}
    config = doc.get("config")
    args = config.get("args") if isinstance(config, dict) else None
    m.args = args if isinstance(args, dict) else {}
    outputs = doc.get("outputs")
    if outputs is not None and not isinstance(outputs, list):
        raise ReadError(f"manifest's 'outputs' is not a list (got {type(outputs).__name__})")
    inp = doc.get("input")
    m.input = inp if isinstance(inp, dict) else {}
    for out in outputs or []:
        if not isinstance(out, dict):
            continue
        size = out.get("size_bytes")
        # a size no file can have (negative, or past a 64-bit column) is not a size
        size = size if isinstance(size, int) and not isinstance(size, bool) and 0 <= size < 2**63 else None
        entry = Output(
            name=basename(_text(out.get("path")) or _text(out.get("name")))[:500],
            schema=_text(out.get("schema"))[:200],
            size=size,
            sha256=_text(out.get("sha256")).lower()[:64],
        )
        if entry.name and all(o.name != entry.name for o in m.outputs):
            m.outputs.append(entry)
        if entry.schema == REPLAY_SCHEMA and not m.replay_path and entry.name:  # "out/" names no file
            m.replay_path = _text(out.get("path"))
            m.replay_size = size
            m.replay_sha256 = entry.sha256
    return m


def _text(value) -> str:
    """A manifest field as text: a string as it is, a number written out, a list or object ignored."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value:
        return str(value)  # at most 4,300 digits: json.loads refused longer
    return ""


@dataclass
class FileFacts:
    """What ingest measured of the replay file in its hashing pass."""

    size: int
    sha256: str
    newlines: int
    crlf_sha256: str  # sha256 of the bytes with every bare LF written as CRLF


def check(m: Manifest, facts: FileFacts) -> dict:
    """The manifest check shown on the run: {"ok": bool, "message": str, ...}."""
    result = {
        "manifest": m.name,
        "status": m.status,
        "expected_size": m.replay_size,
        "expected_sha256": m.replay_sha256,
        "size": facts.size,
        "sha256": facts.sha256,
    }
    if not m.replay_path and m.replay_size is None and not m.replay_sha256:
        return result | {"ok": False, "message": f"{m.name} lists no session_replay output to check against."}
    size_ok = m.replay_size is None or m.replay_size == facts.size
    sha_ok = not m.replay_sha256 or m.replay_sha256 == facts.sha256
    if size_ok and sha_ok:
        what = "size and sha256" if m.replay_sha256 else "size (it records no sha256)"
        return result | {"ok": True, "message": f"Matches {m.name}: {what} agree."}
    message = (
        f"{m.name} records {m.replay_size:,} bytes and sha256 {m.replay_sha256[:12]}…; "
        f"this file is {facts.size:,} bytes with sha256 {facts.sha256[:12]}…."
    ) if m.replay_size is not None else f"{m.name} records sha256 {m.replay_sha256[:12]}…; this file has {facts.sha256[:12]}…."
    if m.replay_size == facts.size + facts.newlines and (
        not m.replay_sha256 or m.replay_sha256 == facts.crlf_sha256
    ):
        proof = " and its sha256 matches once they are restored" if m.replay_sha256 else ""
        message += (
            f" The difference is exactly its {facts.newlines:,} line endings{proof}: the manifest "
            "describes the file as written with CRLF (Windows) line endings, and it has since been "
            "converted to LF (git does this). The content is the same."
        )
    else:
        message += " The file differs from the one the toolkit wrote: it may have been edited or belong to another run."
    return result | {"ok": False, "message": message}
