"""Line-by-line reading shared by the JSONL formats (session and study logs).

A file is refused at its first bad line: a corrupt line is never skipped.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from .base import Limits, ReadError, json_safe, storable, unstorable

# orjson turns integers outside 64 bits into floats; such lines go to the standard parser.
# The regex alone costs more than orjson, so a cheap test for 19 digits in a row goes first.
_LONG_INT = re.compile(r"[\[:,]\s*-?\d{19}")
_DIGITS_TO_0 = bytes.maketrans(b"123456789", b"000000000")
_19_DIGITS = b"0" * 19

TOO_MANY_DIGITS = "a number has more than 4,300 digits (Python reads no longer integers)"
_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def iter_lines(stream: BinaryIO, limits: Limits) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) for each non-blank line, 1-based.

    The text is the line without its "\\n" (a "\\r" is kept); blank lines are skipped but counted.
    """
    cap = limits.max_line_bytes
    number = 0
    while True:
        chunk = stream.readline(cap + 1)
        if not chunk:
            return
        number += 1
        if chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        elif len(chunk) > cap:
            raise ReadError(f"line is longer than {cap:,} bytes (REPLAYWEB_MAX_LINE_BYTES)", number)
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ReadError(
                f"not UTF-8 (byte 0x{chunk[exc.start]:02x} at column {exc.start + 1})", number
            ) from None
        if number == 1 and text.startswith("\ufeff"):  # a byte-order mark is not part of the text
            text = text[1:]
        if text and not text.isspace():
            yield number, text


def parse_object(text: str, line: int) -> tuple[dict, bool]:
    """Parse one line's JSON object (a trailing "\\r" is ignored).

    Returns the object and whether the lenient standard parser was needed: it accepts the
    NaN/Infinity that Python writers emit, so such values must go through `json_values`.
    """
    if text.endswith("\r"):
        text = text[:-1]
    value, lenient = _parse(text, line)
    if ("\\u" in text or "\x00" in text) and unstorable(text):  # NUL or a lone surrogate: base.storable
        try:
            value = storable(value)
        except RecursionError:
            raise ReadError("values nested too deeply", line) from None
    return _object(value, line), lenient


def _parse(text: str, line: int) -> tuple[Any, bool]:
    if not _long_int(text):
        try:
            return orjson.loads(text), False
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text), True
    except json.JSONDecodeError as exc:
        raise ReadError(f"invalid JSON: {exc.msg} (column {exc.colno})", line) from None
    except ValueError:  # an integer of more than 4,300 digits (sys.set_int_max_str_digits)
        raise ReadError(TOO_MANY_DIGITS, line) from None
    except RecursionError:
        raise ReadError("values nested too deeply", line) from None


def _long_int(text: str) -> bool:
    return _19_DIGITS in text.encode().translate(_DIGITS_TO_0) and bool(_LONG_INT.search(text))


def _object(value: Any, line: int) -> dict:
    if not isinstance(value, dict):
        kind = "null" if value is None else _KINDS.get(type(value), type(value).__name__)
        raise ReadError(f"line is not a JSON object (got {kind})", line)
    return value


def json_values(value: Any, line: int) -> Any:
    """base.json_safe (NaN and infinities become None), with deep nesting as a ReadError."""
    try:
        return json_safe(value)
    except RecursionError:
        raise ReadError("values nested too deeply", line) from None
