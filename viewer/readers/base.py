"""The normalized decision every reader yields, and the one error every reader raises.

Readers are plain Python: no Django import. Each reader module has
`read(stream, info, *, limits, keep_user_ids=False) -> Iterator[Decision]`, where `stream`
is a binary file object (already decompressed), `info` a RunInfo it fills in while reading
(header fields may appear before or after the decisions), and `limits` a Limits.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

MAX_LABEL_CHARS = 500  # action, agent and cylinder are indexed columns


class ReadError(Exception):
    """The file cannot be imported. `line` is 1-based where the problem has a line."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line

    def describe(self, name: str) -> str:
        where = f"{name}: line {self.line}: " if self.line else f"{name}: "
        return where + self.message


@dataclass(slots=True)
class Limits:
    max_line_bytes: int = 16 * 1024**2
    max_decompressed_bytes: int = 1024**3


# NUL cannot be stored by PostgreSQL (text and jsonb), and a lone surrogate cannot be encoded as
# UTF-8 by any driver; JSON text can still spell both as escapes.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def unstorable(raw: str) -> bool:
    """Whether JSON text may decode to a string holding NUL or a lone surrogate (cheap first test)."""
    return "\x00" in raw or ("\\u" in raw and _UNSTORABLE_ESCAPE.search(raw) is not None)


def storable(value: Any) -> Any:
    """Strings and keys, at any depth, with NUL and lone surrogates replaced by U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


@dataclass(slots=True)
class Decision:
    seq: int
    action: str
    reason: str = ""
    ts: dt.datetime | None = None  # aware UTC
    values: dict = field(default_factory=dict)
    cell: dict | None = None
    rpm: int | None = None
    kpa: int | None = None
    cylinder: str | None = None
    rpm_index: int | None = None
    kpa_index: int | None = None
    round: int | None = None
    agent: str | None = None
    metric: float | None = None
    text: str = ""
    raw: str = ""
    line: int | None = None

    def __post_init__(self):
        # Every reader builds a decision from its record's text (`raw`): only when that text spells
        # NUL or a surrogate can a field hold one. `raw` keeps the escapes; a literal NUL goes.
        raw = self.raw
        if ("\\u" in raw or "\x00" in raw) and unstorable(raw):  # inline: the common case costs ~0.1 µs
            try:
                for name in ("action", "reason", "values", "cell", "cylinder", "agent", "text", "raw"):
                    setattr(self, name, storable(getattr(self, name)))
            except RecursionError:
                raise ReadError("values nested too deeply", self.line) from None


@dataclass
class RunInfo:
    kind: str
    run_id: str = ""
    schema_version: str = ""
    generated_at: str = ""
    session_id: str = ""
    random_seed: int | None = None
    settings: dict = field(default_factory=dict)
    version: str = ""
    git_commit: str = ""
    source: str = ""
    user_label: str = ""
    declared_total: int | None = None
    # Real ids that were replaced by pseudonyms: ingest scrubs them from the file name too.
    pseudonyms: dict[str, str] = field(default_factory=dict)
    # Agent id -> display name, as the log itself pairs them ("player_02" -> "Ash Vex").
    agents: dict[str, str] = field(default_factory=dict)
    # What the reader changed and the run should say (times moved into one frame, ...).
    warnings: list[str] = field(default_factory=list)
    # The log's last moment when it is later than its last decision's time (a trace: its last span's
    # end, while a decision's time is its span's start): the run's duration runs to it.
    ends_at: dt.datetime | None = None

    def __setattr__(self, name, value):
        # Header text from the file becomes Run columns: the same NUL/surrogate hazard as decisions.
        if isinstance(value, str) or (name == "settings" and isinstance(value, dict)):  # not a copy of others
            try:
                value = storable(value)
            except RecursionError:
                raise ReadError(f"{name} nested too deeply") from None
        object.__setattr__(self, name, value)


def label(value: Any, what: str, line: int | None) -> str:
    """A short string column (action, agent, cylinder); too long is an error, not a truncation."""
    text = value if isinstance(value, str) else as_text(value, what, line)
    if not text.isascii() or "\x00" in text:
        text = storable(text)
    if len(text) > MAX_LABEL_CHARS:
        raise ReadError(f"{what} is {len(text):,} characters long (at most {MAX_LABEL_CHARS})", line)
    return text


def as_text(value: Any, what: str, line: int | None) -> str:
    """str(value) for a value read from JSON; an integer too long to write out is a ReadError."""
    try:
        return str(value)
    except ValueError:  # Python writes at most 4,300 digits (sys.set_int_max_str_digits)
        raise ReadError(f"{what} is a number too long to show", line) from None
    except RecursionError:
        raise ReadError(f"{what} is nested too deeply", line) from None


def as_int(value: Any) -> int | None:
    """An integer cell coordinate, or None when the value is not a finite whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**31) <= value < 2**31 else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and -(2**31) <= value < 2**31:
        return int(value)  # the same 32-bit range: the columns are IntegerFields
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def parse_instant(text: Any, line: int | None, what: str = "timestamp") -> dt.datetime:
    """ISO-8601 to an aware UTC datetime; a naive time is taken as UTC."""
    if not isinstance(text, str):
        raise ReadError(f"{what} {text!r} is not a string", line)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ReadError(f"{what} {text[:80]!r} is not an ISO-8601 time", line) from None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    try:
        return value.astimezone(dt.timezone.utc)
    except OverflowError:  # "9999-12-31T23:59:59-05:00" is in the year 10000 in UTC
        raise ReadError(f"{what} {text[:80]!r} is outside the years 1 to 9999 in UTC", line) from None


def json_safe(value: Any) -> Any:
    """Values for a JSON column: NaN and infinities become None (PostgreSQL's jsonb rejects
    them); `raw` keeps what was written."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


MAX_REASON_CHARS = 300


def plain(value: Any) -> str:
    """A field as text: None as "", a string as it is, anything else written out."""
    return "" if value is None else value if isinstance(value, str) else str(value)


def dig(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]..., or None where a step is not an object."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def short(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """A reason: the first non-empty line, at most `limit` characters."""
    start = 0
    while True:
        end = text.find("\n", start)
        piece = text[start : end if end >= 0 else None].strip()
        if piece or end < 0:
            break
        start = end + 1
    return piece if len(piece) <= limit else piece[: limit - 1] + "…"
