"""A session event's reason: one readable line built from its fields (FORMATS.md 2.3), for every
event type the logs are known to write and, from its fields, for any other."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import MAX_REASON_CHARS, as_float, dig, plain, short

GENERIC_REASON_KEYS = ("narration", "intent", "description", "message", "error_message", "outcome", "reason")
NOT_VALUES = frozenset(("event_type", "ts", "session", "round"))  # not in a decision's values
CHAIN_KEYS = frozenset(("event_id", "parent_event_id", "correlation_id"))


def _join(*parts: str, sep: str = " ") -> str:
    return sep.join(p for p in parts if p)


def _declaration(e: dict) -> str:
    action = e.get("action")
    if not isinstance(action, dict):
        return plain(action)
    what = plain(action.get("intent") or action.get("major_action"))
    target = plain(action.get("target"))
    return f"{what} (target: {target})" if what and target else what or target


def _resolution(e: dict) -> str:
    roll = e.get("roll") if isinstance(e.get("roll"), dict) else {}
    dice = []
    if roll.get("d20") is not None:
        dice.append(f"d20 {plain(roll['d20'])}")
    if roll.get("total") is not None:
        total = f"total {plain(roll['total'])}"
        dice.append(total + (f" vs DC {plain(roll['dc'])}" if roll.get("dc") is not None else ""))
    summary = ", ".join(dice)
    if roll.get("tier") is not None:
        summary = _join(summary, plain(roll["tier"]), sep=": ")
    if isinstance(roll.get("success"), bool):
        summary += " (success)" if roll["success"] else " (failure)"
    # Shorten the action text, never the roll summary.
    room = MAX_REASON_CHARS - len(summary) - 2
    action = short(plain(e.get("action")), max(room, 20))
    return _join(action, summary, sep=": ")


def _character(e: dict) -> str:
    parts = []
    if e.get("health") is not None:
        parts.append(f"health {plain(e['health'])}/{plain(e.get('max_health'))}")
    for key, name in (("void_score", "void"), ("soulcredit", "soulcredit"), ("position", "position")):
        if e.get(key) is not None:
            parts.append(f"{name} {plain(e[key])}")
    return _join(plain(e.get("character_name") or e.get("character_id")), ", ".join(parts), sep=": ")


def _round_summary(e: dict) -> str:
    attempted, succeeded = e.get("actions_attempted"), e.get("success_count")
    return _join(
        f"{plain(attempted)} actions" if attempted is not None else "",
        f"{plain(succeeded)} succeeded" if succeeded is not None else "",
        sep=", ",
    )


def _enemy_spawn(e: dict) -> str:
    template = plain(e.get("template"))
    position = plain(e.get("position"))
    return _join(
        plain(e.get("enemy_name")), f"({template})" if template else "", f"at {position}" if position else ""
    )


def _enemy_defeat(e: dict) -> str:
    killer = plain(e.get("killer_name"))
    rounds = e.get("rounds_survived")
    return _join(
        plain(e.get("enemy_name") or e.get("enemy_id")),
        plain(e.get("defeat_reason")) or "defeated",
        f"by {killer}" if killer else "",
        f"after {plain(rounds)} rounds" if rounds is not None else "",
    )


def _combat(e: dict) -> str:
    attacker = plain(dig(e, "attacker", "name") or dig(e, "attacker", "id"))
    defender = plain(dig(e, "defender", "name") or dig(e, "defender", "id"))
    hit = dig(e, "attack", "hit")
    dealt = dig(e, "damage", "dealt")
    text = _join(attacker, "attacks", defender, f"with {plain(e['weapon'])}" if e.get("weapon") else "")
    if isinstance(hit, bool):
        text += ": hit" if hit else ": miss"
    if dealt is not None:
        text += f", {plain(dealt)} damage dealt"
    return text


def _clock_spawn(e: dict) -> str:
    name = plain(e.get("clock_name"))
    if e.get("max_ticks") is not None:
        name += f" ({plain(e.get('current_ticks', 0))}/{plain(e['max_ticks'])})"
    return _join(name, plain(e.get("description")), sep=": ")


def _debrief(e: dict) -> str:
    return _join(plain(e.get("character")), short(plain(e.get("debrief"))), sep=": ")


def _session_end(e: dict) -> str:
    why = plain(e.get("termination_reason") or dig(e, "final_state", "reason"))
    return f"session ended ({why})" if why else "session ended"


def _scenario(e: dict) -> str:
    scenario = e.get("scenario")
    if not isinstance(scenario, dict):
        return plain(scenario)
    return _join(plain(scenario.get("theme")), plain(scenario.get("location")), sep=": ")


def _session_start(e: dict) -> str:
    seed = e.get("random_seed")
    return "session started" + (f", seed {plain(seed)}" if seed is not None else "")


def _body(e: dict) -> dict:
    """The payload: generic `log_event` lines wrap it in `data`."""
    data = e.get("data")
    return data if isinstance(data, dict) else e


def _words(key: str) -> str:
    return " ".join("NPCs" if w == "npcs" else "NPC" if w == "npc" else w for w in key.split("_"))


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _ticks(current: Any, maximum: Any) -> str:
    return f"{plain(current)}/{plain(maximum)}" if current is not None and maximum is not None else ""


def _sizes(body: dict, skip: tuple = ()) -> str:
    """"enemies spawned 2, NPCs departed 1" for the non-empty lists and objects of an event."""
    parts = []
    for key, value in body.items():
        if key not in skip and isinstance(value, (list, dict)) and value:
            parts.append(f"{_words(key)} {len(value)}")
    return ", ".join(parts)


def _narrative_memory(e: dict) -> str:
    memory = e.get("memory") if isinstance(e.get("memory"), dict) else {}
    beats, places = memory.get("story_beats"), memory.get("locations_visited")
    counts = ", ".join(
        _count(len(v), word) for v, word in ((beats, "story beat"), (places, "place")) if isinstance(v, list)
    )
    latest = ""
    if isinstance(beats, list) and beats:
        last = beats[-1]  # [round, text] in v1.2 files, or the text alone
        latest = plain(last[-1] if isinstance(last, list) and last else last)
    who = plain(e.get("character_name") or e.get("agent_id"))
    return _join(_join(who, counts, sep=": "), f"latest: {latest}" if latest else "", sep="; ")


def _npc_departure(e: dict) -> str:
    who, why = plain(e.get("npc_name") or e.get("npc_id")), plain(e.get("departure_reason"))
    if not (who or why):
        return ""
    return _join(who, "departed", f"({why})" if why else "")


def _entity_lifecycle(e: dict) -> str:
    body = _body(e)
    why = plain(body.get("conversion_reasoning") or body.get("reasoning"))
    return _join(_sizes(body) or "no entity changes", why, sep=": ")


def _end_state_snapshot(e: dict) -> str:
    body = _body(e)
    parts = []
    party = body.get("party")
    if isinstance(party, list):
        members = []
        for member in party:
            if isinstance(member, dict):
                name = plain(member.get("name") or member.get("character_name") or member.get("id"))
                members.append(name + (" (defeated)" if member.get("is_defeated") is True else ""))
        parts.append("party: " + (", ".join(members) or "none"))
    parts.append(_sizes(body, skip=("party",)))
    return _join(*parts, sep="; ") or "end state"


def _clock_removal(e: dict) -> str:
    body = _body(e)
    why, at = plain(body.get("removal_reason") or body.get("reason")), _ticks(
        body.get("current_ticks"), body.get("maximum_ticks", body.get("max_ticks"))
    )
    text = _join(plain(body.get("clock_name")) or "clock", "removed", f"({why})" if why else "", f"at {at}" if at else "")
    return text + (", filled" if body.get("filled") is True else "")


def _clock_completion(e: dict) -> str:
    body = _body(e)
    at = _ticks(body.get("final_ticks", body.get("current_ticks")), body.get("maximum_ticks", body.get("max_ticks")))
    head = _join(plain(body.get("clock_name")) or "clock", "filled", f"({at})" if at else "")
    return _join(head, plain(body.get("filled_consequence")), sep=": ")


def _clock_advancement(e: dict) -> str:
    body = _body(e)
    top = body.get("maximum", body.get("maximum_ticks"))
    old = _ticks(body.get("old_value", body.get("before_ticks")), top)
    new = _ticks(body.get("new_value", body.get("after_ticks")), top)
    head = _join(plain(body.get("clock_name")) or "clock", f"{old} → {new}" if old and new else "")
    return _join(head, plain(body.get("reason")), sep=": ")


def _structured_output(e: dict) -> str:
    ok = e.get("structured_output_success")
    parts = [f"structured output {'ok' if ok else 'failed'}" if isinstance(ok, bool) else ""]
    if e.get("fallback_triggered") is True:
        parts.append("fallback used")
    issues = e.get("validation_issues_count")
    if isinstance(issues, int) and not isinstance(issues, bool) and issues:
        parts.append(_count(issues, "validation issue"))
    score = as_float(e.get("completeness_score"))
    if score is not None:
        parts.append(f"completeness {score:.0%}")
    text = ", ".join(p for p in parts if p)
    return _join(plain(e.get("agent_id") or e.get("agent_type")), text, sep=": ") if text else ""


def _agent_conversion(e: dict) -> str:
    who = plain(e.get("agent_name") or e.get("agent_id"))
    change = _join(plain(e.get("from_type")), "→", plain(e.get("to_type"))) if e.get("to_type") else ""
    trigger = plain(e.get("trigger"))
    return _join(_join(who, change, sep=": "), f"({trigger})" if trigger else "")


def _session_error(e: dict) -> str:
    head = _join(plain(e.get("error_type")), plain(e.get("error_message")), sep=": ")
    recoverable = e.get("recoverable")
    notes = [plain(e.get("exception_type"))]
    if isinstance(recoverable, bool):
        notes.append("recoverable" if recoverable else "not recoverable")
    notes = ", ".join(n for n in notes if n)
    return _join(head, f"({notes})" if notes else "")


def _difficulty_assessment(e: dict) -> str:
    assessments, changes = e.get("assessments"), e.get("changes")
    parts = []
    if isinstance(assessments, list):
        parts.append(f"{len(assessments)} action{'' if len(assessments) == 1 else 's'} assessed")
    if isinstance(changes, list):
        parts.append(_count(len(changes), "change"))
    first = changes[0] if isinstance(changes, list) and changes else None
    return _join(", ".join(parts), plain(first) if isinstance(first, str) else "", sep=": ")


def _purchase(e: dict) -> str:
    who = plain(e.get("character_name") or e.get("player_id"))
    item = plain(e.get("item_name") or e.get("item_id")) or "an item"
    vendor = plain(e.get("vendor_name") or e.get("vendor_id"))
    cost = e.get("cost")
    price = ", ".join(f"{plain(v)} {k}" for k, v in cost.items()) if isinstance(cost, dict) else plain(cost)
    if e.get("success") is True:
        return _join(who, "bought", item, f"from {vendor}" if vendor else "", f"for {price}" if price else "")
    head = _join(who, "could not buy" if e.get("success") is False else "tried to buy", item,
                 f"from {vendor}" if vendor else "")
    return _join(head, plain(e.get("failure_reason")), sep=": ")


def _targeting(e: dict) -> str:
    who = plain(e.get("agent_id"))
    original = plain(e.get("original_target")) or "no target"
    how = ", ".join(t for t in (plain(e.get("correction_method")), plain(e.get("triggered_by"))) if t)
    if e.get("success") is True and e.get("corrected_target") is not None:
        change = f"target {original} → {plain(e['corrected_target'])}"
        return _join(_join(who, change, sep=": "), f"({how})" if how else "")
    head = _join(_join(who, f"target {original} not resolved", sep=": "), f"({how})" if how else "")
    return _join(head, plain(e.get("error_description")), sep=": ")


def _pydantic_failure(e: dict) -> str:
    schema = plain(e.get("schema_name")) or "output"
    who = plain(e.get("agent_id") or e.get("agent_type"))
    attempt, most = e.get("attempt_number"), e.get("max_attempts")
    tries = f"attempt {plain(attempt)}/{plain(most)}" if attempt is not None and most is not None else ""
    head = _join(schema, f"from {who}" if who else "", "failed validation", f"({tries})" if tries else "")
    return _join(head, plain(e.get("exception_type")), plain(e.get("error_message")), sep=": ")


def _void_change(e: dict) -> str:
    head = _join(plain(e.get("agent")), f"void {plain(e.get('old_void'))} → {plain(e.get('new_void'))}"
                 if e.get("old_void") is not None and e.get("new_void") is not None else "", sep=": ")
    return _join(head, plain(e.get("reason")), sep=", ")


def _generic(e: dict) -> str:
    for source in (e, e.get("data")):
        if isinstance(source, dict):
            for key in GENERIC_REASON_KEYS:
                if isinstance(source.get(key), str) and source[key].strip():
                    return source[key]
    return _fields(_body(e))


def _fields(body: dict) -> str:
    """"clock_name: Alarm, max_ticks: 4, data: 3 items" for an event no rule describes."""
    parts = []
    for key, value in body.items():
        if key in NOT_VALUES or key in CHAIN_KEYS or value is None or value == "":
            continue
        if isinstance(value, (list, dict)):
            parts.append(f"{key}: {_count(len(value), 'item')}")
        else:
            parts.append(f"{key}: {short(plain(value), 60)}")
        if sum(len(p) + 2 for p in parts) > MAX_REASON_CHARS:
            break
    return ", ".join(parts)


REASONS: dict[str, Callable[[dict], str]] = {
    "action_declaration": _declaration,
    "action_resolution": _resolution,
    "round_synthesis": lambda e: plain(e.get("synthesis")),
    "llm_call": lambda e: plain(e.get("response")),
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
    "session_error": _session_error,
    "narrative_memory": _narrative_memory,
    "npc_departure": _npc_departure,
    "entity_lifecycle": _entity_lifecycle,
    "end_state_snapshot": _end_state_snapshot,
    "clock_removal": _clock_removal,
    "clock_completion": _clock_completion,
    "clock_advancement": _clock_advancement,
    "structured_output_metrics": _structured_output,
    "agent_conversion": _agent_conversion,
    "difficulty_assessment": _difficulty_assessment,
    "purchase_attempt": _purchase,
    "targeting_validation": _targeting,
    "pydantic_validation_failure": _pydantic_failure,
    "void_change": _void_change,
}


# Events that only mark a phase: an empty reason is right (their action and round say it all).
NO_REASON = frozenset(("round_start", "declaration_phase_start", "adjudication_start"))


def reason(action: str, event: dict) -> str:
    build = REASONS.get(action)
    text = build(event) if build else ""
    if text or action in NO_REASON:
        return text
    return _generic(event)
