"""Aeonisk multi-agent session logs (FORMATS.md section 2): one JSON event per line, v1.0 and v1.2.

Time zones. The writer stamps most events with its naive local time and `llm_call` with UTC:
naive in v1.0 ("2025-10-31T20:32:37"), with an offset in v1.2 ("2026-06-23T04:28:26+00:00"), so
an LLM call sits hours away from its neighbours (FORMATS 2.2). Every stamp is put in one of three
frames: naive non-LLM events (the writer's local time: the reference), naive `llm_call`s, and
stamps with an offset (converted to UTC). The offset between a frame and the reference is measured
once, at that frame's first event, against the reference events just before and just after it
(whichever gap is nearer a quarter hour), rounded to the nearest 15 minutes; beyond 14 hours it is
not a zone and nothing moves. Every stamp of that frame is then moved by it, so all events share
the writer's local frame and, like any naive time, are read as UTC. Events wait (at most HOLD_MAX)
until the next reference event has been seen. What moved, and by how much, is written to
`info.warnings` when RunInfo carries one; `raw` keeps what was written.

Agents. Declarations and states name a character by id (`player_02`), resolutions, debriefs and
void changes by display name ("Ash Vex"). The id -> name pairs the log itself states
(`session_start.config` players, `character_state`, `action_declaration`, `enemy_spawn`,
`combat_action` attacker/defender, ...) are collected in `info.agents`, and a display name is
replaced by its id in the `agent` column wherever it is known by then. Config players that carry
no id are numbered `player_01`, `player_02`, ... in order, as the writer numbers them; any
explicit pair overrides that guess. A name two ids claim, or one not yet paired, stays a name.

Rounds. An event without a round of its own takes the round of the last `round_start`; in a log
without `round_start` lines, the highest round seen so far (a setup event in round 0 after round 3,
such as a DM `llm_call`, does not pull later events back).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from . import base
from .base import Decision, Limits, ReadError, RunInfo, as_float, as_int, label, parse_instant, storable
from .lines import iter_lines, json_values, parse_object

AGENT_KEYS = ("agent_id", "player_id", "character_id", "enemy_id", "npc_id")
NAME_KEYS = ("agent", "character")  # display names, replaced by their id when known
# (id field, name field) pairs an event states about one agent
PAIRS = (
    ("character_id", "character_name"), ("player_id", "character_name"), ("agent_id", "character_name"),
    ("enemy_id", "enemy_name"), ("enemy_id", "character_name"), ("npc_id", "npc_name"),
    ("agent_id", "agent_name"), ("player_id", "player_name"), ("killer_id", "killer_name"),
)
NOT_VALUES = frozenset(("event_type", "ts", "session", "round"))
CHAIN_KEYS = frozenset(("event_id", "parent_event_id", "correlation_id"))
GENERIC_REASON_KEYS = ("narration", "intent", "description", "message", "error_message", "outcome", "reason")
MAX_REASON_CHARS = 300
HOLD_MAX = 1000
QUARTER_HOUR = 900  # seconds
MAX_ZONE_OFFSET = dt.timedelta(hours=14)  # UTC offsets run from -12:00 to +14:00
ZERO = dt.timedelta(0)

LOCAL, LLM_UTC, WITH_OFFSET = "local", "llm_utc", "offset"
FRAME_WORDS = {
    LLM_UTC: "llm_call time{s} written in UTC without a zone",
    WITH_OFFSET: "time{s} written with a UTC offset",
}


def read(
    stream: BinaryIO, info: RunInfo, *, limits: Limits, keep_user_ids: bool = False
) -> Iterator[Decision]:
    yield from _one_frame(_decisions(lines=iter_lines(stream, limits), info=info), info)


# --- time: one frame for every stamp -------------------------------------------------------------


def _one_frame(
    items: Iterator[tuple[Decision, str | None, dt.datetime | None]], info: RunInfo
) -> Iterator[Decision]:
    """Decisions with every ts moved into the reference (local) frame, in file order."""
    offsets: dict[str, dt.timedelta] = {LOCAL: ZERO}
    waiting: dict[str, tuple[dt.datetime, dt.datetime | None]] = {}  # frame -> (its first ts, local before)
    last_local: dt.datetime | None = None
    pending: list[tuple[Decision, str | None, dt.datetime | None]] = []
    moved: Counter = Counter()
    for item in items:
        pending.append(item)
        _, frame, ts = item
        if frame == LOCAL:
            for other, (first, before) in waiting.items():
                offsets[other] = _measure(first, before, ts)
            waiting.clear()
            last_local = ts
        elif frame is not None and frame not in offsets and frame not in waiting:
            waiting[frame] = (ts, last_local)
        if waiting and len(pending) < HOLD_MAX:
            continue
        for other, (first, before) in waiting.items():  # no reference event came: measure from before
            offsets[other] = _measure(first, before, None)
        waiting.clear()
        yield from _moved(pending, offsets, moved)
        pending.clear()
    for other, (first, before) in waiting.items():
        offsets[other] = _measure(first, before, None)
    yield from _moved(pending, offsets, moved)
    _note_moves(info, offsets, moved)


def _moved(pending, offsets, moved) -> Iterator[Decision]:
    for d, frame, ts in pending:
        if ts is not None:
            offset = offsets.get(frame, ZERO)
            if offset:
                try:
                    ts = ts - offset
                    moved[frame] += 1
                except OverflowError:  # near year 1 or 9999: keep the time as written
                    pass
            d.ts = ts.replace(tzinfo=dt.timezone.utc)
        yield d


def _measure(first: dt.datetime, before: dt.datetime | None, after: dt.datetime | None) -> dt.timedelta:
    """The zone offset of a frame whose first stamp is `first`, from the local stamps around it."""
    best = None
    for local in (before, after):
        if local is None:
            continue
        gap = first - local
        offset = _quarter_hours(gap)
        misfit = abs(gap - offset)
        if best is None or misfit < best[0]:
            best = (misfit, offset)
    if best is None or abs(best[1]) > MAX_ZONE_OFFSET:
        return ZERO
    return best[1]


def _quarter_hours(delta: dt.timedelta) -> dt.timedelta:
    return dt.timedelta(seconds=QUARTER_HOUR * round(delta.total_seconds() / QUARTER_HOUR))


def _note_moves(info: RunInfo, offsets: dict[str, dt.timedelta], moved: Counter) -> None:
    notes = getattr(info, "warnings", None)
    if not isinstance(notes, list):
        return
    for frame, words in FRAME_WORDS.items():
        if moved[frame]:
            notes.append(
                f"{moved[frame]:,} {words.format(s='' if moved[frame] == 1 else 's')} "
                f"{'was' if moved[frame] == 1 else 'were'} moved by {_signed(-offsets[frame])} "
                "into the local time of the other events (the lines keep what was written)."
            )


def _signed(delta: dt.timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _stamp(stamp: Any, action: str, line: int) -> tuple[str | None, dt.datetime | None]:
    """(frame, naive time in that frame) of an event's ts; (None, None) without one."""
    if stamp is None:
        return None, None
    instant = parse_instant(stamp, line, "ts")  # aware UTC; a naive stamp is taken as UTC
    if dt.datetime.fromisoformat(stamp).tzinfo is not None:
        return WITH_OFFSET, instant.replace(tzinfo=None)
    return (LLM_UTC if action == "llm_call" else LOCAL), instant.replace(tzinfo=None)


# --- agents: ids for names -----------------------------------------------------------------------


class _Names:
    """The id <-> display name pairs a session states, collected in `info.agents`."""

    def __init__(self, info: RunInfo):
        self.agents = info.agents
        self.ids: dict[str, str | None] = {}  # display name -> id (None: two ids claim it)
        self.guessed: set[str] = set()  # ids numbered from config order, not stated

    def learn(self, agent_id: Any, name: Any, *, guess: bool = False) -> None:
        if isinstance(agent_id, int) and not isinstance(agent_id, bool):
            agent_id = str(agent_id)
        if not (isinstance(agent_id, str) and isinstance(name, str) and agent_id and name.strip()):
            return
        if name == agent_id or len(agent_id) > base.MAX_LABEL_CHARS or len(name) > base.MAX_LABEL_CHARS:
            return
        agent_id, name = storable(agent_id), storable(name)
        if guess:
            if agent_id not in self.agents and name not in self.ids:
                self.agents[agent_id] = name
                self.ids[name] = agent_id
                self.guessed.add(agent_id)
            return
        for guessed in {agent_id, self.ids.get(name)} & self.guessed:  # the log now states it
            self.guessed.discard(guessed)
            old = self.agents.pop(guessed)
            if self.ids.get(old) == guessed:
                del self.ids[old]
        self.agents.setdefault(agent_id, name)
        self.ids[name] = agent_id if self.ids.get(name, agent_id) == agent_id else None

    def learn_event(self, event: dict) -> None:
        for source in (event, event.get("data")):
            if isinstance(source, dict):
                for id_key, name_key in PAIRS:
                    if id_key in source and name_key in source:
                        self.learn(source[id_key], source[name_key])
        for side in ("attacker", "defender"):
            who = event.get(side)
            if isinstance(who, dict):
                self.learn(who.get("id"), who.get("name"))

    def learn_config(self, config: dict) -> None:
        agents = config.get("agents")
        lists = [(config.get("players"), True)]  # (entries, whether they are the players in order)
        if isinstance(agents, dict):
            lists.append((agents.get("players"), True))
        elif isinstance(agents, list):
            lists.append((agents, False))
        for entries, players in lists:
            if not isinstance(entries, list):
                continue
            for number, entry in enumerate(entries, 1):
                if not isinstance(entry, dict):
                    continue
                name = entry.get("name") or entry.get("character_name")
                stated = next((entry[k] for k in ("agent_id", "id", "player_id") if entry.get(k)), None)
                if stated is not None:
                    self.learn(stated, name)
                elif players:
                    self.learn(f"player_{number:02d}", name, guess=True)

    def id_for(self, name: str) -> str:
        return self.ids.get(name) or name


def _agent(action: str, event: dict, names: _Names, line: int) -> str | None:
    for source in (event, event.get("data")):
        if not isinstance(source, dict):
            continue
        for key in AGENT_KEYS:
            value = source.get(key)
            if value is not None:
                return label(value, "agent", line)
        if source is event and action == "combat_action":
            attacker = event.get("attacker")
            if isinstance(attacker, dict):
                if attacker.get("id") is not None:
                    return label(attacker["id"], "agent", line)
                if isinstance(attacker.get("name"), str):
                    return label(names.id_for(attacker["name"]), "agent", line)
        for key in NAME_KEYS if source is event else ("character", "character_name"):
            value = source.get(key)
            if isinstance(value, str):
                return label(names.id_for(value), "agent", line)
            if value is not None and key == "agent":
                return label(value, "agent", line)
    return None


# --- events ----------------------------------------------------------------------------------------


def _decisions(
    *, lines: Iterator[tuple[int, str]], info: RunInfo
) -> Iterator[tuple[Decision, str | None, dt.datetime | None]]:
    """Decisions in file order, each with the frame and naive time of its ts."""
    names = _Names(info)
    current_round = 0
    seen_round_start = False
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
            if isinstance(event.get("config"), dict):
                names.learn_config(event["config"])

        own_round = as_int(event.get("round"))
        if action == "round_start" and own_round is not None:
            current_round = own_round
            seen_round_start = True
        elif own_round is not None and not seen_round_start:
            current_round = max(current_round, own_round)

        frame, ts = _stamp(event.get("ts"), action, line)
        names.learn_event(event)

        values = {k: v for k, v in event.items() if k not in NOT_VALUES}
        if lenient:
            values = json_values(values, line)
        d = Decision(
            seq=seq,
            action=label(action, "event_type", line),
            reason=_short(_reason(action, event)),
            values=values,
            round=current_round if own_round is None else own_round,
            agent=_agent(action, event, names, line),
            metric=_metric(action, event),
            text=_llm_text(event) if action == "llm_call" else "",
            raw=text,
            line=line,
        )
        yield d, frame, ts
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


def _body(e: dict) -> dict:
    """The payload: generic `log_event` lines wrap it in `data`."""
    data = e.get("data")
    return data if isinstance(data, dict) else e


def _words(key: str) -> str:
    return " ".join("NPCs" if w == "npcs" else "NPC" if w == "npc" else w for w in key.split("_"))


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _ticks(current: Any, maximum: Any) -> str:
    return f"{_text(current)}/{_text(maximum)}" if current is not None and maximum is not None else ""


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
        latest = _text(last[-1] if isinstance(last, list) and last else last)
    who = _text(e.get("character_name") or e.get("agent_id"))
    return _join(_join(who, counts, sep=": "), f"latest: {latest}" if latest else "", sep="; ")


def _npc_departure(e: dict) -> str:
    who, why = _text(e.get("npc_name") or e.get("npc_id")), _text(e.get("departure_reason"))
    if not (who or why):
        return ""
    return _join(who, "departed", f"({why})" if why else "")


def _entity_lifecycle(e: dict) -> str:
    body = _body(e)
    why = _text(body.get("conversion_reasoning") or body.get("reasoning"))
    return _join(_sizes(body) or "no entity changes", why, sep=": ")


def _end_state_snapshot(e: dict) -> str:
    body = _body(e)
    parts = []
    party = body.get("party")
    if isinstance(party, list):
        members = []
        for member in party:
            if isinstance(member, dict):
                name = _text(member.get("name") or member.get("character_name") or member.get("id"))
                members.append(name + (" (defeated)" if member.get("is_defeated") is True else ""))
        parts.append("party: " + (", ".join(members) or "none"))
    parts.append(_sizes(body, skip=("party",)))
    return _join(*parts, sep="; ") or "end state"


def _clock_removal(e: dict) -> str:
    body = _body(e)
    why, at = _text(body.get("removal_reason") or body.get("reason")), _ticks(
        body.get("current_ticks"), body.get("maximum_ticks", body.get("max_ticks"))
    )
    text = _join(_text(body.get("clock_name")) or "clock", "removed", f"({why})" if why else "", f"at {at}" if at else "")
    return text + (", filled" if body.get("filled") is True else "")


def _clock_completion(e: dict) -> str:
    body = _body(e)
    at = _ticks(body.get("final_ticks", body.get("current_ticks")), body.get("maximum_ticks", body.get("max_ticks")))
    head = _join(_text(body.get("clock_name")) or "clock", "filled", f"({at})" if at else "")
    return _join(head, _text(body.get("filled_consequence")), sep=": ")


def _clock_advancement(e: dict) -> str:
    body = _body(e)
    top = body.get("maximum", body.get("maximum_ticks"))
    old = _ticks(body.get("old_value", body.get("before_ticks")), top)
    new = _ticks(body.get("new_value", body.get("after_ticks")), top)
    head = _join(_text(body.get("clock_name")) or "clock", f"{old} → {new}" if old and new else "")
    return _join(head, _text(body.get("reason")), sep=": ")


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
    return _join(_text(e.get("agent_id") or e.get("agent_type")), text, sep=": ") if text else ""


def _agent_conversion(e: dict) -> str:
    who = _text(e.get("agent_name") or e.get("agent_id"))
    change = _join(_text(e.get("from_type")), "→", _text(e.get("to_type"))) if e.get("to_type") else ""
    trigger = _text(e.get("trigger"))
    return _join(_join(who, change, sep=": "), f"({trigger})" if trigger else "")


def _session_error(e: dict) -> str:
    head = _join(_text(e.get("error_type")), _text(e.get("error_message")), sep=": ")
    recoverable = e.get("recoverable")
    notes = [_text(e.get("exception_type"))]
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
    return _join(", ".join(parts), _text(first) if isinstance(first, str) else "", sep=": ")


def _purchase(e: dict) -> str:
    who = _text(e.get("character_name") or e.get("player_id"))
    item = _text(e.get("item_name") or e.get("item_id")) or "an item"
    vendor = _text(e.get("vendor_name") or e.get("vendor_id"))
    cost = e.get("cost")
    price = ", ".join(f"{_text(v)} {k}" for k, v in cost.items()) if isinstance(cost, dict) else _text(cost)
    if e.get("success") is True:
        return _join(who, "bought", item, f"from {vendor}" if vendor else "", f"for {price}" if price else "")
    head = _join(who, "could not buy" if e.get("success") is False else "tried to buy", item,
                 f"from {vendor}" if vendor else "")
    return _join(head, _text(e.get("failure_reason")), sep=": ")


def _targeting(e: dict) -> str:
    who = _text(e.get("agent_id"))
    original = _text(e.get("original_target")) or "no target"
    how = ", ".join(t for t in (_text(e.get("correction_method")), _text(e.get("triggered_by"))) if t)
    if e.get("success") is True and e.get("corrected_target") is not None:
        change = f"target {original} → {_text(e['corrected_target'])}"
        return _join(_join(who, change, sep=": "), f"({how})" if how else "")
    head = _join(_join(who, f"target {original} not resolved", sep=": "), f"({how})" if how else "")
    return _join(head, _text(e.get("error_description")), sep=": ")


def _pydantic_failure(e: dict) -> str:
    schema = _text(e.get("schema_name")) or "output"
    who = _text(e.get("agent_id") or e.get("agent_type"))
    attempt, most = e.get("attempt_number"), e.get("max_attempts")
    tries = f"attempt {_text(attempt)}/{_text(most)}" if attempt is not None and most is not None else ""
    head = _join(schema, f"from {who}" if who else "", "failed validation", f"({tries})" if tries else "")
    return _join(head, _text(e.get("exception_type")), _text(e.get("error_message")), sep=": ")


def _void_change(e: dict) -> str:
    head = _join(_text(e.get("agent")), f"void {_text(e.get('old_void'))} → {_text(e.get('new_void'))}"
                 if e.get("old_void") is not None and e.get("new_void") is not None else "", sep=": ")
    return _join(head, _text(e.get("reason")), sep=", ")


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
            parts.append(f"{key}: {_short(_text(value), 60)}")
        if sum(len(p) + 2 for p in parts) > MAX_REASON_CHARS:
            break
    return ", ".join(parts)


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


def _reason(action: str, event: dict) -> str:
    build = REASONS.get(action)
    text = build(event) if build else ""
    if text or action in NO_REASON:
        return text
    return _generic(event)
