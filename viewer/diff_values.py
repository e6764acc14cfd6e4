"""Comparing two decisions' values, and two runs' settings: leaf paths, changes and deltas.

Plain Python over decoded JSON. A value is flattened into `path -> leaf` (`roll.d20`,
`cells[3].clamped`); two flattened values are compared leaf by leaf. Numbers compare by value
(10 == 10.0), booleans by type (True != 1), and a path on one side only is a change to or from
MISSING.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

# Keys (at any depth of a decision's values) whose values differ between any two runs.
VOLATILE_KEYS = frozenset({
    "timestamp", "ts", "iso_ts", "human_ts", "server_time", "generated_at",
    "session", "session_id", "run_id", "event_id", "parent_event_id", "correlation_id",
    "elapsed_ms",
})
VOLATILE = re.compile(r'"(?:' + "|".join(sorted(map(re.escape, VOLATILE_KEYS))) + r')"\s*:')
MAX_DEPTH = 64  # deeper values compare as their JSON text


class _Missing:
    def __repr__(self):
        return "(absent)"


MISSING = _Missing()


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    old: Any
    new: Any
    delta: float | None


def compare(old: dict[str, Any], new: dict[str, Any]) -> tuple[Change, ...]:
    """The leaf paths whose values differ, old -> new, with the numeric delta where both are numbers."""
    out = []
    for path, x in old.items():
        y = new.get(path, MISSING)
        if not same_value(x, y):
            out.append(Change(path, x, y, delta(x, y)))
    for path, y in new.items():
        if path not in old:
            out.append(Change(path, MISSING, y, None))
    return tuple(out)


def same_value(x: Any, y: Any) -> bool:
    if isinstance(x, bool) or isinstance(y, bool):
        return type(x) is type(y) and x == y
    if x is MISSING or y is MISSING:
        return x is y
    return x == y


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def delta(x: Any, y: Any) -> float | None:
    if is_number(x) and is_number(y):
        d = y - x
        return d if isinstance(d, int) else float(f"{d:.12g}")
    return None


def distance(x: dict[str, Any], y: dict[str, Any]) -> float:
    """0 (equal) .. 1 (nothing alike): the mean distance of their leaves."""
    paths = x.keys() | y.keys()
    if not paths:
        return 0.0
    total = 0.0
    for p in paths:
        u, v = x.get(p, MISSING), y.get(p, MISSING)
        if same_value(u, v):
            continue
        if is_number(u) and is_number(v):
            total += min(1.0, abs(u - v) / (abs(u) + abs(v)))
        else:
            total += 1.0
    return total / len(paths)


def flatten(value: Any, prefix: str, out: dict, depth: int = 0, skip=()) -> None:
    """Add `path -> leaf` of `value` to `out` (keys in `skip` left out at any depth)."""
    if isinstance(value, dict) and value:
        if depth >= MAX_DEPTH:
            out[prefix or "values"] = canonical(value)
            return
        for k, v in value.items():
            if k in skip:
                continue
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out, depth + 1, skip)
    elif isinstance(value, list) and value:
        if depth >= MAX_DEPTH:
            out[prefix or "values"] = canonical(value)
            return
        for n, v in enumerate(value):
            flatten(v, f"{prefix}[{n}]", out, depth + 1, skip)
    elif prefix or value not in ({}, []):
        out[prefix or "values"] = value


def strip_volatile(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: strip_volatile(v, depth + 1) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [strip_volatile(v, depth + 1) for v in value]
    return value


def loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # deeper than orjson goes (or not JSON): compare the text
        return text


def canonical(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # nested deeper than orjson writes
        try:
            return json.dumps(value, sort_keys=True, ensure_ascii=False)
        except (RecursionError, ValueError, TypeError):
            return "(nested too deeply to show)"


def value_text(value: Any, limit: int | None = None) -> str:
    """A leaf value as text for a table cell (JSON spelling; strings as they are)."""
    if value is MISSING:
        text = "(absent)"
    elif isinstance(value, str):
        text = value
    else:
        text = canonical(value)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


# --- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingRow:
    path: str
    a: Any
    b: Any

    @property
    def changed(self) -> bool:
        return not same_value(self.a, self.b)

    @property
    def delta(self) -> float | None:
        return delta(self.a, self.b)


def settings_diff(a: dict, b: dict) -> list[SettingRow]:
    """Every setting path on either side, in order of appearance; see SettingRow.changed."""
    fa, fb = {}, {}
    flatten(a, "", fa)
    flatten(b, "", fb)
    paths = list(dict.fromkeys([*fa, *fb]))
    return [SettingRow(p, fa.get(p, MISSING), fb.get(p, MISSING)) for p in paths]
