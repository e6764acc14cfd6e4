"""Aeonisk multi-agent session logs (FORMATS.md section 2): one JSON event per line, v1.0 and v1.2.

Time zones: v1.0 stamps `llm_call` events with naive UTC and every other event with naive local
time (FORMATS 2.2), so an LLM call can sit hours away from its neighbours. The first naive
`llm_call` after a naive non-LLM event measures the writer's UTC offset: the gap between the two,
rounded to the nearest 15 minutes. When that is not zero it is subtracted from every naive
`llm_call` in the file, so all naive times share the writer's local frame (and, like any naive
time, are then read as UTC). LLM calls seen before any naive non-LLM event are held back (at
most HOLD_MAX events) and measured against the next one. Aware times (v1.2 `llm_call`, "+00:00")
are left alone. The offset is not recorded anywhere; `raw` keeps what was written.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from .base import Decision, Limits, ReadError, RunInfo, as_float, as_int, label, parse_instant
from .lines import iter_lines, json_values, parse_object

AGENT_KEYS = ("agent_id", "player_id", "character_id", "enemy_id", "agent")
NOT_VALUES = frozenset(("event_type", "ts", "session", "round"))
GENERIC_REASON_KEYS = ("narration", "intent", "description", "message", "error_message", "outcome")
MAX_REASON_CHARS = 300
HOLD_MAX = 1000
QUARTER_HOUR = 900  # seconds


def read(
    stream: BinaryIO, info: RunInfo, *, limits: Limits, keep_user_ids: bool = False
) -> Iterator[Decision]:
    offset: dt.timedelta | None = None  # the v1.0 llm_call zone offset, once measured
    last_local: dt.datetime | None = None  # ts of the latest naive non-LLM event
    held_llm_ts: dt.datetime | None = None  # ts of the latest held-back naive llm_call
    pending: list[tuple[Decision, bool]] = []  # (decision, is a naive llm_call) not yet yielded

    for d, naive in _decisions(lines=iter_lines(stream, limits), info=info):
        naive_llm = naive and d.action == "llm_call"
        pending.append((d, naive_llm))
        if offset is None:
            if naive_llm:
                if last_local is not None:
                    offset = _quarter_hours(d.ts - last_local)
                else:
                    held_llm_ts = d.ts
            elif naive:
                if held_llm_ts is not None:
                    offset = _quarter_hours(held_llm_ts - d.ts)
                last_local = d.ts
            if held_llm_ts is not None and offset is None:
                if len(pending) < HOLD_MAX:
                    continue
                offset = dt.timedelta(0)  # nothing to measure against: give up
        for p, shift in pending:
            if shift and offset:
                p.ts -= offset
            yield p
        pending.clear()
    yield from (p for p, _ in pending)


def _quarter_hours(delta: dt.timedelta) -> dt.timedelta:
    return dt.timedelta(seconds=QUARTER_HOUR * round(delta.total_seconds() / QUARTER_HOUR))


def _decisions(*, lines: Iterator[tuple[int, str]], info: RunInfo) -> Iterator[tuple[Decision, bool]]:
    """Decisions in file order, each with whether its ts was written naive."""
    current_round = 0
    seq = 0
    seen_start = False
    for line, text in lines:
        event, lenient = parse_object(text, line)
        action = event.get("event_type")
        if not isinstance(action, str) or not action:
            raise ReadError("missing event_type", line)
        if seq == 0 and isinstance(event.get("session"), str):
            info.session_id = event["session"][:500]
        if action == "session_start" and not seen_start:
            seen_start = True
            _start(info, event, lenient, line)

        own_round = as_int(event.get("round"))
        if action == "round_start" and own_round is not None:
            current_round = own_round

        ts, naive = None, False
        stamp = event.get("ts")
        if stamp is not None:
            ts = parse_instant(stamp, line, "ts")
            naive = dt.datetime.fromisoformat(stamp).tzinfo is None

        values = {k: v for k, v in event.items() if k not in NOT_VALUES}
        if lenient:
            values = json_values(values, line)
        d = Decision(
            seq=seq,
            action=label(action, "event_type", line),
            reason=_short(_reason(action, event)),
            ts=ts,
            values=values,
            round=current_round if own_round is None else own_round,
            agent=_agent(event, line),
            metric=_metric(action, event),
            text=_llm_text(event) if action == "llm_call" else "",
            raw=text,
            line=line,
        )
        yield d, naive
        seq += 1


def _start(info: RunInfo, event: dict, lenient: bool, line: int) -> None:
    if isinstance(event.get("session"), str):
        info.session_id = event["session"][:500]
    seed = event.get("random_seed")
    if isinstance(seed, int) and not isinstance(seed, bool) and -(2**63) <= seed < 2**63:
        info.random_seed = seed
    config = event.get("config")
    if isinstance(config, dict):
        info.settings = json_values(config, line) if lenient else config
    for key in ("version", "git_commit"):
        if event.get(key) is not None:
            setattr(info, key, _text(event[key])[:100])


def _agent(event: dict, line: int) -> str | None:
    for key in AGENT_KEYS:
        value = event.get(key)
        if value is not None:
            return label(value, "agent", line)
    return None


def _metric(action: str, event: dict) -> float | None:
    if action == "llm_call":
        tokens = event.get("tokens")
        if isinstance(tokens, dict):
            counts = [as_float(tokens.get(k)) for k in ("input", "output")]
            counts = [c for c in counts if c is not None]
            return sum(counts) if counts else None
    elif action == "action_resolution":
        roll = event.get("roll")
        if isinstance(roll, dict):
            return as_float(roll.get("margin"))
    return None


def _llm_text(event: dict) -> str:
    """The prompt and the response, for the `q` search."""
    parts = []
    prompt = event.get("prompt")
    if isinstance(prompt, list):
        for message in prompt:
            content = message.get("content") if isinstance(message, dict) else message
            if isinstance(content, list):  # content given as parts: [{"type": "text", "text": ...}]
                texts = (p.get("text") for p in content if isinstance(p, dict))
                parts.extend(t for t in texts if isinstance(t, str))
            elif isinstance(content, str):
                parts.append(content)
    elif isinstance(prompt, str):
        parts.append(prompt)
    if isinstance(event.get("response"), str):
        parts.append(event["response"])
    return "\n".join(parts)


# --- reason: one short line describing the event ---------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _get(event: dict, *path: str) -> Any:
    for key in path:
        if not isinstance(event, dict):
            return None
        event = event.get(key)
    return event


def _short(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """The first non-empty line, at most `limit` characters."""
    start = 0
    while True:
        end = text.find("\n", start)
        piece = text[start : end if end >= 0 else None].strip()
        if piece or end < 0:
            break
        start = end + 1
    return piece if len(piece) <= limit else piece[: limit - 1] + "…"


def _join(*parts: str, sep: str = " ") -> str:
    return sep.join(p for p in parts if p)


def _declaration(e: dict) -> str:
    action = e.get("action")
    if not isinstance(action, dict):
        return _text(action)
    what = _text(action.get("intent") or action.get("major_action"))
    target = _text(action.get("target"))
    return f"{what} (target: {target})" if what and target else what or target


def _resolution(e: dict) -> str:
    roll = e.get("roll") if isinstance(e.get("roll"), dict) else {}
    dice = []
    if roll.get("d20") is not None:
        dice.append(f"d20 {_text(roll['d20'])}")
    if roll.get("total") is not None:
        total = f"total {_text(roll['total'])}"
        dice.append(total + (f" vs DC {_text(roll['dc'])}" if roll.get("dc") is not None else ""))
    summary = ", ".join(dice)
    if roll.get("tier") is not None:
        summary = _join(summary, _text(roll["tier"]), sep=": ")
    if isinstance(roll.get("success"), bool):
        summary += " (success)" if roll["success"] else " (failure)"
    # Shorten the action text, never the roll summary.
    room = MAX_REASON_CHARS - len(summary) - 2
    action = _short(_text(e.get("action")), max(room, 20))
    return _join(action, summary, sep=": ")


def _character(e: dict) -> str:
    parts = []
    if e.get("health") is not None:
        parts.append(f"health {_text(e['health'])}/{_text(e.get('max_health'))}")
    for key, name in (("void_score", "void"), ("soulcredit", "soulcredit"), ("position", "position")):
        if e.get(key) is not None:
            parts.append(f"{name} {_text(e[key])}")
    return _join(_text(e.get("character_name") or e.get("character_id")), ", ".join(parts), sep=": ")


def _round_summary(e: dict) -> str:
    attempted, succeeded = e.get("actions_attempted"), e.get("success_count")
    return _join(
        f"{_text(attempted)} actions" if attempted is not None else "",
        f"{_text(succeeded)} succeeded" if succeeded is not None else "",
        sep=", ",
    )


def _enemy_spawn(e: dict) -> str:
    template = _text(e.get("template"))
    position = _text(e.get("position"))
    return _join(
        _text(e.get("enemy_name")), f"({template})" if template else "", f"at {position}" if position else ""
    )


def _enemy_defeat(e: dict) -> str:
    killer = _text(e.get("killer_name"))
    rounds = e.get("rounds_survived")
    return _join(
        _text(e.get("enemy_name") or e.get("enemy_id")),
        _text(e.get("defeat_reason")) or "defeated",
        f"by {killer}" if killer else "",
        f"after {_text(rounds)} rounds" if rounds is not None else "",
    )


def _combat(e: dict) -> str:
    attacker = _text(_get(e, "attacker", "name") or _get(e, "attacker", "id"))
    defender = _text(_get(e, "defender", "name") or _get(e, "defender", "id"))
    hit = _get(e, "attack", "hit")
    dealt = _get(e, "damage", "dealt")
    text = _join(attacker, "attacks", defender, f"with {_text(e['weapon'])}" if e.get("weapon") else "")
    if isinstance(hit, bool):
        text += ": hit" if hit else ": miss"
    if dealt is not None:
        text += f", {_text(dealt)} damage dealt"
    return text


def _clock_spawn(e: dict) -> str:
    name = _text(e.get("clock_name"))
    if e.get("max_ticks") is not None:
        name += f" ({_text(e.get('current_ticks', 0))}/{_text(e['max_ticks'])})"
    return _join(name, _text(e.get("description")), sep=": ")


def _debrief(e: dict) -> str:
    return _join(_text(e.get("character")), _short(_text(e.get("debrief"))), sep=": ")


def _session_end(e: dict) -> str:
    why = _text(e.get("termination_reason") or _get(e, "final_state", "reason"))
    return f"session ended ({why})" if why else "session ended"


def _scenario(e: dict) -> str:
    scenario = e.get("scenario")
    if not isinstance(scenario, dict):
        return _text(scenario)
    return _join(_text(scenario.get("theme")), _text(scenario.get("location")), sep=": ")


def _session_start(e: dict) -> str:
    seed = e.get("random_seed")
    return "session started" + (f", seed {_text(seed)}" if seed is not None else "")


def _generic(e: dict) -> str:
    for source in (e, e.get("data")):
        if isinstance(source, dict):
            for key in GENERIC_REASON_KEYS:
                if source.get(key):
                    return _text(source[key])
    return ""


REASONS: dict[str, Callable[[dict], str]] = {
    "action_declaration": _declaration,
    "action_resolution": _resolution,
    "round_synthesis": lambda e: _text(e.get("synthesis")),
    "llm_call": lambda e: _text(e.get("response")),
    "character_state": _character,
    "round_summary": _round_summary,
    "enemy_spawn": _enemy_spawn,
    "enemy_defeat": _enemy_defeat,
    "combat_action": _combat,
    "clock_spawn": _clock_spawn,
    "mission_debrief": _debrief,
    "session_end": _session_end,
    "scenario": _scenario,
    "session_start": _session_start,
    "session_error": lambda e: _text(e.get("error_message")),
}


def _reason(action: str, event: dict) -> str:
    build = REASONS.get(action)
    return (build(event) if build else "") or _generic(event)
