"""DynoAI `session_replay.json`: one JSON document whose `decisions` array is streamed.

ijson would be the obvious streaming parser, but it rejects the bare NaN/Infinity that
Python's json.dump writes (ICRAR/ijson#33). So the document is walked here with the
standard library's C scanner (`JSONDecoder.raw_decode`), one header value or one decision
at a time, over a sliding text buffer. That keeps memory flat, accepts NaN, keeps ints and
floats as written, gives exact line numbers, and lets `raw` be the decision's exact text.
"""
from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from .lines import TOO_MANY_DIGITS
from .base import (
    MAX_LABEL_CHARS,
    Decision,
    Limits,
    ReadError,
    RunInfo,
    as_float,
    as_int,
    as_text,
    json_safe,
    label,
    parse_instant,
)

CHUNK_CHARS = 1 << 20
_WS = re.compile(r"[ \t\n\r]*")
_SEP = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")
_INT_MIN, _INT_MAX = -(2**31), 2**31
_REFILL = 1 << 16
_CELL_INTS = ("rpm", "kpa", "rpm_index", "kpa_index")
METRIC_KEYS = ("afr_error_pct", "result", "score", "clamped_count", "overall_score")


class _Scanner:
    """A window of decoded text over a binary stream, with line numbers for error messages."""

    def __init__(self, stream: BinaryIO, limits: Limits):
        self.stream = stream
        self.limits = limits
        self.utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.bytes_read = 0
        self.lines_dropped = 0  # newlines in text already dropped from the buffer
        self.counted_to = 0  # newlines in buf[:counted_to] are in counted
        self.counted = 0
        self.nonfinite = False
        self.decoder = json.JSONDecoder(parse_constant=self._constant)

    def _constant(self, name: str) -> float:
        self.nonfinite = True
        return float(name)

    def fill(self) -> None:
        if self.eof:
            return
        data = self.stream.read(CHUNK_CHARS)
        self.eof = not data
        try:
            text = self.utf8.decode(data, final=self.eof)
        except UnicodeDecodeError as exc:
            offset = self.bytes_read + exc.start
            bad = data[exc.start : exc.start + 1].hex() if exc.start < len(data) else "end of file"
            line = self.line_at(len(self.buf)) + data[: exc.start].count(b"\n")
            raise ReadError(f"not UTF-8 text (byte 0x{bad} at offset {offset:,})", line) from None
        self.bytes_read += len(data)
        if self.pos > CHUNK_CHARS:  # drop consumed text, keeping line numbers right
            self.line_at(self.pos)
            self.lines_dropped += self.counted
            self.counted = 0
            self.buf = self.buf[self.pos :]
            self.counted_to = 0
            self.pos = 0
        self.buf += text

    def line_at(self, index: int) -> int:
        if index < self.counted_to:  # rare: an error before the last counted point
            return self.lines_dropped + self.buf.count("\n", 0, index) + 1
        self.counted += self.buf.count("\n", self.counted_to, index)
        self.counted_to = index
        return self.lines_dropped + self.counted + 1

    def peek(self) -> str:
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos : self.pos + 1]
            self.fill()

    def expect(self, chars: str, what: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            found = "the end of the file" if not c else repr(c)
            raise ReadError(f"invalid JSON: expected {what}, found {found}", self.line_at(self.pos))
        self.pos += 1
        return c

    def value(self) -> tuple[Any, int, int]:
        """Decode the next JSON value; returns it with its start and end in the buffer."""
        self.peek()
        while True:
            start = self.pos
            try:
                obj, end = self.decoder.raw_decode(self.buf, start)
            except json.JSONDecodeError as exc:
                if not self.eof and len(self.buf) - start <= self.limits.max_line_bytes:
                    self.fill()
                    continue
                if not self.eof:
                    raise ReadError(
                        f"one JSON value is longer than {self.limits.max_line_bytes:,} characters "
                        "(REPLAYWEB_MAX_LINE_BYTES) or is malformed",
                        self.line_at(start),
                    ) from None
                raise ReadError(f"invalid JSON: {exc.msg}", self.line_at(exc.pos)) from None
            except ValueError:  # an integer of more than 4,300 digits
                raise ReadError(TOO_MANY_DIGITS, self.line_at(start)) from None
            except RecursionError:
                raise ReadError(
                    "JSON nested too deeply (more than about 900 levels)", self.line_at(start)
                ) from None
            if end == len(self.buf) and not self.eof:
                self.fill()  # a number may continue in the next chunk
                continue
            if end - start > self.limits.max_line_bytes:
                raise ReadError(
                    f"one JSON value is {end - start:,} characters, longer than the "
                    f"{self.limits.max_line_bytes:,} limit (REPLAYWEB_MAX_LINE_BYTES)",
                    self.line_at(start),
                )
            self.pos = end
            return obj, start, end


def read(stream: BinaryIO, info: RunInfo, *, limits: Limits, keep_user_ids: bool = False) -> Iterator[Decision]:
    s = _Scanner(stream, limits)
    c = s.peek()
    if c == "\ufeff":  # a byte-order mark
        s.pos += 1
        c = s.peek()
    if not c:
        raise ReadError("the file is empty")
    if c != "{":
        raise ReadError("not a DynoAI session replay: the file is not a JSON object", s.line_at(s.pos))
    s.pos += 1
    seen_decisions = False
    if s.peek() == "}":
        s.pos += 1
    else:
        while True:
            key, start, _ = s.value()
            if not isinstance(key, str):
                raise ReadError("invalid JSON: expected a key", s.line_at(start))
            s.expect(":", "':'")
            if key == "decisions":
                seen_decisions = True
                yield from _decisions(s)
            else:
                value, start, _ = s.value()
                _header(info, key, value, s.line_at(start))
            if s.expect(",}", "',' or '}'") == "}":
                break
    if s.peek():
        raise ReadError("invalid JSON: extra data after the document", s.line_at(s.pos))
    if not seen_decisions:
        raise ReadError("not a DynoAI session replay: no 'decisions' key")


def _header(info: RunInfo, key: str, value: Any, line: int) -> None:
    if key in ("run_id", "schema_version", "generated_at") and value is not None:
        setattr(info, key, as_text(value, key, line)[:500])
    elif key == "total_decisions":
        info.declared_total = as_int(value)


def _json_text(value: Any, line: int) -> str:
    try:
        return json.dumps(value)
    except RecursionError:
        raise ReadError("'reason' is nested too deeply", line) from None


def _decisions(s: _Scanner) -> Iterator[Decision]:
    c = s.peek()
    if c != "[":
        kind = {"{": "an object", '"': "a string"}.get(c, "not a list")
        raise ReadError(f"'decisions' is {kind}, not a list", s.line_at(s.pos))
    s.pos += 1
    if s.peek() == "]":
        s.pos += 1
        return
    seq = 0
    last_text, last_ts = None, None
    # The hot loop (a million turns for a 400 MB file): the C scanner is called directly and the
    # separator found by one regex; anything unusual (a value or separator that reaches the end of
    # the buffer, a parse error) takes the careful path through the _Scanner methods.
    scan = s.decoder.scan_once
    sep = _SEP.match
    max_chars = s.limits.max_line_bytes
    while True:
        s.nonfinite = False
        if len(s.buf) - s.pos < _REFILL and not s.eof:
            s.fill()  # before the scanner fails on a cut value (its error counts lines over the buffer)
        buf, start = s.buf, s.pos
        try:
            obj, end = scan(buf, start)
            fast = end < len(buf) and end - start <= max_chars
        except (StopIteration, ValueError, RecursionError):
            fast = False
        if not fast:
            obj, start, end = s.value()
            buf = s.buf
        line = s.line_at(start)
        if not isinstance(obj, dict):
            raise ReadError(f"decision {seq + 1} is not a JSON object", line)
        get = obj.get
        action = get("action")
        if not isinstance(action, str) or not action:
            raise ReadError(f"decision {seq + 1} has no 'action'", line)
        stamp = get("timestamp")
        if stamp is None or stamp == "":
            ts = None
        elif stamp == last_text:
            ts = last_ts
        else:
            ts = parse_instant(stamp, line, f"decision {seq + 1}: timestamp")
            last_text, last_ts = stamp, ts
        reason = get("reason", "")
        values = get("values") or {}
        cell = get("cell")
        if not isinstance(values, dict):
            raise ReadError(f"decision {seq + 1}: 'values' is not an object", line)
        if cell is not None and not isinstance(cell, dict):
            raise ReadError(f"decision {seq + 1}: 'cell' is not an object", line)
        if s.nonfinite:
            values = json_safe(values)
        if len(action) > MAX_LABEL_CHARS or not action.isascii() or "\x00" in action:
            action = label(action, "action", line)
        d = Decision(
            seq=seq,
            action=action,
            reason=reason if isinstance(reason, str) else _json_text(reason, line),
            ts=ts,
            values=values,
            cell=cell,
            raw=buf[start:end],
            line=line,
        )
        if cell:
            cget = cell.get
            for key in _CELL_INTS:
                v = cget(key)
                if v is not None:  # the common case, a plain int in range, skips as_int's checks
                    setattr(d, key, v if type(v) is int and _INT_MIN <= v < _INT_MAX else as_int(v))
            v = cget("cylinder")
            if v is not None:
                d.cylinder = (v if type(v) is str and len(v) <= MAX_LABEL_CHARS and v.isascii() and "\x00" not in v
                              else label(v, "cylinder", line))
        if values:
            for key in METRIC_KEYS:
                if key in values:
                    d.metric = as_float(values[key])
                    break
        yield d
        seq += 1
        m = sep(buf, end)
        if m is not None and m.end() < len(buf) and buf is s.buf:
            s.pos = m.end()
            if m.group(1) == "]":
                return
            continue
        s.pos = end
        if s.expect(",]", "',' or ']'") == "]":
            return
        s.peek()
