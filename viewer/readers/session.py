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
from collections.abc import Iterator
from typing import Any, BinaryIO

from . import base
from .base import (
    Decision,
    Limits,
    ReadError,
    RunInfo,
    as_float,
    as_int,
    label,
    parse_instant,
    plain,
    short,
    storable,
)
from .lines import iter_lines, json_values, parse_object
from .session_reasons import NOT_VALUES, reason

AGENT_KEYS = ("agent_id", "player_id", "character_id", "enemy_id", "npc_id")
NAME_KEYS = ("agent", "character")  # display names, replaced by their id when known
# (id field, name field) pairs an event states about one agent
PAIRS = (
    ("character_id", "character_name"), ("player_id", "character_name"), ("agent_id", "character_name"),
    ("enemy_id", "enemy_name"), ("enemy_id", "character_name"), ("npc_id", "npc_name"),
    ("agent_id", "agent_name"), ("player_id", "player_name"), ("killer_id", "killer_name"),
)
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
            reason=short(reason(action, event)),
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
            setattr(info, key, plain(event[key])[:100])


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
