"""The text DynoAI's `tools/replay_viewer.py` prints, reproduced byte for byte.

Pure Python (no Django), so the `replay_viewer` command, the web `.txt` export and tests share it.
Decisions are plain dicts as `json.load` gives them: a float stays a float (`10.0` prints `10.000`)
and an int stays an int, which the value formatting depends on.

Everything is built as text chunks so a caller can stream a run of any size:

    summary = summary_block(run_id=..., generated_at=..., total=n_all,
                            duration_ms=duration_ms(first_ts, last_ts),
                            counts=action_counts(actions_in_file_order))
    chunks = timeline_chunks(summary, decisions_iterator, total=n_all, action=..., limit=...)

`"".join(chunks)` is what the viewer's `display_timeline` returns: the `--export` file as is, and
what the CLI prints once `print()` adds its final "\\n" (see `printed`).

Where the real viewer crashes, this degrades instead (documented per function):
- A timestamp that is missing, null or unparseable while the first displayed decision has one
  (the CLI raises in `fromisoformat`) prints as `[i] N/A (+N/A)`, or `[i] <raw> (+N/A)` when the raw
  value is present but unparseable. A summary duration that cannot be computed prints `N/A`.
  When the first displayed decision has no timestamp the CLI does not crash: it prints every header
  as `[i] <timestamp>` with no elapsed time, and so does this module.
- A non-string `action` (the CLI crashes on `.upper()` or the `:30s` format) is shown with `str()`;
  a null action matches no filter. A decision that is not an object is treated as `{}`.
- A `cell` that is not an object prints as `str(cell)`; `values` that are not an object print as
  one line `    <str(values)>`.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import chain, islice
from typing import Any

RULE = "=" * 70
NOT_AVAILABLE = "N/A"
NO_DECISIONS_LOGGED = "No decisions logged in this session."
NO_MATCH = "No decisions match the filter criteria."
VALUES_INDENT = "    "
_MISSING = object()


# -- small formatters -------------------------------------------------------------------------


def parse_timestamp(ts: str) -> datetime:
    """The viewer's parser: `Z` becomes `+00:00`, then `datetime.fromisoformat`. Raises on bad input."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _try_parse(ts: Any) -> datetime | None:
    try:
        return parse_timestamp(ts)
    except (AttributeError, TypeError, ValueError):
        return None


def _ms_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    try:
        return (end - start).total_seconds() * 1000
    except TypeError:  # naive minus aware
        return None


def duration_ms(start_ts: Any, end_ts: Any) -> float | None:
    """Milliseconds from start_ts to end_ts, computed as the viewer does; None if either is unusable."""
    if not start_ts or not end_ts:
        return None
    return _ms_between(_try_parse(start_ts), _try_parse(end_ts))


def format_duration(ms: float | None) -> str:
    """`22.0ms` below one second, else `1.17s`; None prints `N/A`."""
    if ms is None:
        return NOT_AVAILABLE
    if ms < 1000:
        return f"{ms:.1f}ms"
    return f"{ms / 1000:.2f}s"


def format_cell(cell: Any) -> str:
    """`RPM=2000 KPA=65 Cyl=f`, `RPM[0] KPA[1]`; parts in a fixed order, else `str(cell)`."""
    if not cell:
        return ""
    if not isinstance(cell, dict):
        return str(cell)
    parts = []
    if "rpm" in cell:
        parts.append(f"RPM={cell['rpm']}")
    if "kpa" in cell:
        parts.append(f"KPA={cell['kpa']}")
    if "rpm_index" in cell:
        parts.append(f"RPM[{cell['rpm_index']}]")
    if "kpa_index" in cell:
        parts.append(f"KPA[{cell['kpa_index']}]")
    if "cylinder" in cell:
        parts.append(f"Cyl={cell['cylinder']}")
    return " ".join(parts) if parts else str(cell)


def format_values(values: Any) -> list[str]:
    """The lines under `  VALUES:`, each with its 4-space indent (no newlines)."""
    if not values:
        return []
    prefix = VALUES_INDENT
    if not isinstance(values, dict):
        return [f"{prefix}{values}"]
    lines = []
    for key, value in values.items():
        if isinstance(value, float):
            lines.append(f"{prefix}{key}: {value:.3f}")
        elif isinstance(value, list) and len(value) > 5:
            lines.append(f"{prefix}{key}: [{len(value)} items, showing first 3]")
            lines.extend(f"{prefix}  - {item}" for item in value[:3])
        elif isinstance(value, dict):
            lines.append(f"{prefix}{key}:")
            lines.extend(f"{prefix}  {k}: {v}" for k, v in value.items())
        else:  # int, bool, None, str, short list: str() as the f-string gives it
            lines.append(f"{prefix}{key}: {value}")
    return lines


# -- actions and the summary ------------------------------------------------------------------


def decision_action(decision: Any) -> Any:
    """The action as the summary and the ACTION line show it (`UNKNOWN` when absent)."""
    if not isinstance(decision, dict):
        return "UNKNOWN"
    return decision.get("action", "UNKNOWN")


def action_matches(decision: Any, action_filter: str) -> bool:
    """The viewer's filter: a case-insensitive substring of the action (a missing action is "")."""
    action = decision.get("action", "") if isinstance(decision, dict) else ""
    if action is None:
        action = ""
    return action_filter.upper() in str(action).upper()


def action_counts(actions: Iterable[Any]) -> list[tuple[str, int]]:
    """Count actions given in file order; sorted by count descending, ties in first-appearance order."""
    counts: dict[str, int] = {}
    for action in actions:
        key = action if isinstance(action, str) else str(action)
        counts[key] = counts.get(key, 0) + 1
    return sort_action_counts(counts.items())


def sort_action_counts(pairs: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """For (action, count) pairs already in first-appearance order, e.g. a GROUP BY ordered by min(seq)."""
    return sorted(pairs, key=lambda pair: -pair[1])


def summary_block(
    *,
    run_id: Any = NOT_AVAILABLE,
    generated_at: Any = NOT_AVAILABLE,
    total: int,
    duration_ms: float | None,
    counts: Iterable[tuple[str, int]],
) -> str:
    """The `SESSION REPLAY SUMMARY` block (no trailing newline).

    `total` counts every decision (unfiltered); `duration_ms` is last minus first in file order
    (`duration_ms(first_ts, last_ts)`); `counts` is sorted already (`action_counts`). Pass `N/A`
    for a missing run_id/generated_at: the viewer prints a JSON null as `None`.
    """
    if not total:
        return NO_DECISIONS_LOGGED
    lines = [
        RULE,
        "SESSION REPLAY SUMMARY",
        RULE,
        f"Run ID:          {run_id}",
        f"Generated:       {generated_at}",
        f"Total Decisions: {total}",
        f"Duration:        {format_duration(duration_ms)}",
        "",
        "DECISIONS BY ACTION TYPE:",
    ]
    lines.extend(f"  {str(action):30s} {count:5d}" for action, count in counts)
    lines.append(RULE)
    return "\n".join(lines)


def _timestamp(decision: Any, default: Any) -> Any:
    return decision.get("timestamp", default) if isinstance(decision, dict) else default


def replay_decisions(replay_data: dict) -> list:
    """The decisions list of a loaded document; a null `decisions` counts as empty, as in the viewer."""
    return replay_data.get("decisions") or []


def replay_summary(replay_data: dict) -> str:
    """`summary_block` for a whole loaded `session_replay.json` (the viewer's `generate_summary`)."""
    decisions = replay_decisions(replay_data)
    if not decisions:
        return NO_DECISIONS_LOGGED
    return summary_block(
        run_id=replay_data.get("run_id", NOT_AVAILABLE),
        generated_at=replay_data.get("generated_at", NOT_AVAILABLE),
        total=len(decisions),
        duration_ms=duration_ms(_timestamp(decisions[0], ""), _timestamp(decisions[-1], "")),
        counts=action_counts(decision_action(d) for d in decisions),
    )


# -- the timeline -----------------------------------------------------------------------------


def _header(index: int, ts: Any, start_raw: Any, start: datetime | None) -> str:
    if not start_raw:  # the viewer omits elapsed time when the first shown decision has no timestamp
        return f"\n[{index}] {ts}"
    ms = _ms_between(start, _try_parse(ts))
    if ms is None:
        shown = NOT_AVAILABLE if ts in ("", None) else ts
        return f"\n[{index}] {shown} (+{NOT_AVAILABLE})"
    return f"\n[{index}] {ts} (+{format_duration(ms)})"


def _block(decision: Any, index: int, start_raw: Any, start: datetime | None) -> str:
    if not isinstance(decision, dict):
        decision = {}
    lines = [
        _header(index, decision.get("timestamp", ""), start_raw, start),
        f"  ACTION: {decision.get('action', 'UNKNOWN')}",
    ]
    reason = decision.get("reason", "")
    if reason:
        lines.append(f"  REASON: {reason}")
    cell = decision.get("cell")
    if cell:
        lines.append(f"  CELL:   {format_cell(cell)}")
    values = decision.get("values")
    if values:
        lines.append("  VALUES:")
        lines.extend(format_values(values))
    return "\n".join(lines)


def decision_block(decision: Any, index: int, start_timestamp: Any = None) -> str:
    """One decision as the viewer shows it. It starts with "\\n" and has no trailing newline.

    `start_timestamp` is the raw timestamp of the first decision displayed; elapsed is relative to it.
    """
    return _block(decision, index, start_timestamp, _try_parse(start_timestamp) if start_timestamp else None)


def _drop_last(items: Iterator, n: int) -> Iterator:
    """items[:-n] over an iterator, holding only n items."""
    buffer: deque = deque()
    for item in items:
        buffer.append(item)
        if len(buffer) > n:
            yield buffer.popleft()


def trailer(total: int, limit: int | None) -> str:
    """The `... and N more decisions` line (with its leading "\\n"), or "" when the viewer prints none.

    N is the unfiltered total minus the limit, whatever the filter kept; a negative limit adds.
    """
    if limit and total > limit:
        return f"\n... and {total - limit} more decisions (use --limit to see more)"
    return ""


def timeline_chunks(
    summary: str,
    decisions: Iterable[Any],
    *,
    total: int | None = None,
    action: str | None = None,
    limit: int | None = None,
) -> Iterator[str]:
    """The viewer's `display_timeline`, as chunks whose concatenation is its exact text.

    - `summary`: `summary_block(...)` over ALL decisions (the filter never changes it).
    - `decisions`: any iterable in file order, consumed once. Pass it unfiltered with `action`, or
      already filtered in the database with `action=None`: the output is the same.
    - `total`: the unfiltered decision count; needed only when `limit` is set (for the trailer).
    - `limit`: 0/None = all; N > 0 = the first N; N < 0 = all but the last |N| (a Python slice,
      buffering |N| decisions). The `--export` mode ignores it: pass None.

    Nothing matching yields only `No decisions match the filter criteria.` (no summary), and so does
    an empty run. No trailing newline: `print()` adds one on the terminal, the export file has none.
    """
    if limit and total is None:
        raise TypeError("timeline_chunks() needs total= when limit is set")
    items: Iterator[Any] = iter(decisions)
    if action:
        items = filter(lambda d: action_matches(d, action), items)
    first = next(items, _MISSING)
    if first is _MISSING:
        yield NO_MATCH
        return
    items = chain((first,), items)
    if limit and limit > 0:
        items = islice(items, limit)
    elif limit and limit < 0:
        items = _drop_last(items, -limit)

    # The viewer joins [summary, "", block, block, ..., trailer] with "\n"; each block starts with "\n".
    yield summary + "\n"
    start_raw: Any = None
    start: datetime | None = None
    for index, decision in enumerate(items, 1):
        if index == 1:
            start_raw = _timestamp(decision, None)
            start = _try_parse(start_raw) if start_raw else None
        yield "\n" + _block(decision, index, start_raw, start)
    tail = trailer(total, limit) if limit else ""
    if tail:
        yield "\n" + tail


def replay_timeline_chunks(
    replay_data: dict, *, action: str | None = None, limit: int | None = None
) -> Iterator[str]:
    """`timeline_chunks` for a whole loaded `session_replay.json`."""
    decisions = replay_decisions(replay_data)
    return timeline_chunks(
        replay_summary(replay_data), decisions, total=len(decisions), action=action, limit=limit
    )


def coalesce(chunks: Iterable[str], min_chars: int = 1 << 16) -> Iterator[str]:
    """Join small chunks into pieces of at least min_chars (one chunk per decision is a lot of writes)."""
    batch: list[str] = []
    size = 0
    for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= min_chars:
            yield "".join(batch)
            batch, size = [], 0
    if batch:
        yield "".join(batch)


def printed(text: str) -> str:
    """What `print(text)` writes: the text plus one newline."""
    return text + "\n"


def exported_to(path: str) -> str:
    """The line `--export` prints after writing the file (with print's newline)."""
    return printed(f"Timeline exported to: {path}")
