"""Multi-agent LLM game sessions (FORMATS.md 2): JSON Lines, one event a line, in rounds, by agents."""
from __future__ import annotations

from typing import Any

from . import Column, Profile, Words, register

LLM_CALL, RESOLUTION = "llm_call", "action_resolution"
NOT_AVAILABLE = "N/A"


def _facts(run) -> list:
    from ..summary import Fact

    # A session has no run id nor generation time (the page leaves those out): its id and start say which it is.
    facts = [Fact("Session", run.session_id, mono=True)] if run.session_id else []
    if run.first_ts:
        facts.append(Fact("Started", run.first_ts.strftime("%Y-%m-%d %H:%M:%S") + " (log's local time)", mono=True))
    facts += [
        Fact("Seed", NOT_AVAILABLE if run.random_seed is None else str(run.random_seed), mono=True),
        Fact("Version", run.version or NOT_AVAILABLE, mono=True),
    ]
    if run.git_commit:
        facts.append(Fact("Git commit", run.git_commit, mono=True))
    return facts


def _written_values(record: Any, stored: Any) -> Any:
    """The values as written in the line, in the stored values' key order."""
    if not isinstance(record, dict) or not isinstance(stored, dict):
        return stored
    return {k: record[k] if k in record else v for k, v in stored.items()}


def _replay_file(run) -> str | None:
    return f"session_{run.session_id}_replay.jsonl" if run.session_id else None


# -- cells ----------------------------------------------------------------------------------------
from ..cells import CellsSpec  # noqa: E402  (the grid code needs the facts above: kinds/session_cells.py)
from . import session_cells  # noqa: E402

CELLS = CellsSpec(
    metrics=session_cells.METRICS,
    build=session_cells.build,
    cell_keys=("cell_round", "cell_agent"),
    parts=session_cells.parts,
    title=session_cells.title,
    where=session_cells.where,
    x_title="Agent",
    y_title="Round",
    by_time=False,  # v1.0 files mix time zones: file order is the truth
)

# -- replay ---------------------------------------------------------------------------------------
from ..replay import Reducer, ReplaySpec, bump, mapping, number, pct, text as as_text  # noqa: E402

CHARACTER_FIELDS = ("character_name", "health", "max_health", "wounds", "void_score", "soulcredit",
                    "position", "conditions", "is_defeated")
V12_CHARACTER_FIELDS = ("death_state", "stuns", "energy", "seeds")  # kept only where the line has them
# What a character_state, a combat_action's defender_state_after or a conversion's state_after
# says about an enemy or an NPC.
BODY_FIELDS = ("health", "max_health", "wounds", "stuns", "position", "conditions", "death_state", "is_defeated")
# agent_conversion's from_type / to_type -> the roster of the state; any other type is an NPC's.
ROSTERS = {"player": "characters", "enemy": "enemies", "npc": "npcs"}


def _body(v: dict) -> dict:
    """The fields of an event written through the generic log_event, which wraps them in `data`."""
    data = v.get("data")
    return data if isinstance(data, dict) else v


def _first(body: dict, *keys: str) -> Any:
    return next((body[k] for k in keys if body.get(k) is not None), None)


def _entity(name: Any, round_: Any) -> dict:
    """An enemy or NPC seen without its spawn line."""
    return {"name": as_text(name), "template": "", "health": None, "max_health": None, "position": None,
            "count": None, "status": None, "since_round": round_}


def parse_clock(value: Any) -> tuple[Any, Any]:
    """"3/8" -> (3, 8); anything else -> (value, None)."""
    if isinstance(value, str) and "/" in value:
        cur, _, top = value.partition("/")
        try:
            return int(cur), int(top)
        except ValueError:
            pass
    return value, None


class SessionReducer(Reducer):
    """The round, the party, the enemies and NPCs present, the clocks, LLM use per agent, the latest
    roll; what left the scene (defeated enemies, departed NPCs, removed clocks) and who changed sides."""

    HANDLERS = {name: "_" + name for name in (
        "character_state", "enemy_spawn", "enemy_defeat", "combat_action", "clock_spawn", RESOLUTION,
        LLM_CALL, "session_error", "session_end", "clock_advancement", "clock_completion", "clock_removal",
        "npc_departure", "agent_conversion", "entity_lifecycle")}

    def initial(self) -> dict:
        return {"counts": {}, "round": None, "characters": {}, "enemies": {}, "defeated": [], "clocks": {},
                "agents": {}, "last_roll": None, "errors": 0, "ended": False,
                "npcs": {}, "departed": [], "conversions": [], "removed_clocks": {}}

    def fold(self, state: dict, d: dict) -> None:
        action = d["action"]
        bump(state["counts"], action)
        if d.get("round") is not None:
            state["round"] = d["round"]
        handler = self.HANDLERS.get(action)
        if handler is not None:
            getattr(self, handler)(state, mapping(d.get("values")), d)

    def _character_state(self, state, v, d):
        key = as_text(v.get("character_id") or v.get("character_name"))
        # v1.2 logs enemies' and NPCs' states too, saying whose in `agent`. Its default is "player",
        # so a spawned enemy or a known NPC stays one without a word to the contrary.
        kind = as_text(v.get("agent"))
        if kind in ("", "player"):
            roster = next((r for r in ("enemies", "npcs") if key in state[r]), "characters")
        else:
            roster = ROSTERS.get(kind, "npcs")
        for other in ("characters", "enemies", "npcs"):
            if other != roster:
                state[other].pop(key, None)
        if roster == "characters":
            state["characters"][key] = {**{f: v.get(f) for f in CHARACTER_FIELDS},
                                        **{f: v[f] for f in V12_CHARACTER_FIELDS if f in v}}
            return
        entity = state[roster].setdefault(key, _entity(v.get("character_name"), d.get("round")))
        entity["name"] = entity.get("name") or as_text(v.get("character_name"))
        entity.update({f: v[f] for f in BODY_FIELDS if f in v})
        if roster == "npcs" and kind not in ("", "npc"):
            entity["type"] = kind

    def _enemy_spawn(self, state, v, d):
        stats = mapping(v.get("stats"))
        key = as_text(v.get("enemy_id") or v.get("enemy_name"))
        state["enemies"][key] = {
            "name": as_text(v.get("enemy_name")), "template": as_text(v.get("template")),
            "health": stats.get("health"), "max_health": stats.get("max_health"),
            "position": v.get("position"), "count": v.get("count", stats.get("unit_count")),
            "status": None, "since_round": d.get("round"),
        }

    def _enemy_defeat(self, state, v, d):
        key = as_text(v.get("enemy_id") or v.get("enemy_name"))
        gone = state["enemies"].pop(key, None) or {}
        state["defeated"].append({"id": key, "name": as_text(v.get("enemy_name") or gone.get("name")),
                                  "reason": as_text(v.get("defeat_reason")), "round": d.get("round"),
                                  # v1.2: who dealt the last blow, and how hard; the health it had
                                  "killer": as_text(v.get("killer_name") or v.get("killer_id")),
                                  "final_damage": v.get("final_damage"),
                                  "health": gone.get("health"), "max_health": gone.get("max_health")})

    def _combat_action(self, state, v, d):
        key = as_text(mapping(v.get("defender")).get("id"))
        after = v.get("defender_state_after")
        enemy = state["enemies"].get(key, state["npcs"].get(key))
        if enemy is not None and isinstance(after, dict):
            for f in ("health", "max_health", "wounds", "stuns"):
                if after.get(f) is not None:
                    enemy[f] = after[f]
            enemy["status"] = after.get("status")

    def _clock_spawn(self, state, v, d):
        name = as_text(v.get("clock_name"))
        state["clocks"][name] = {"cur": v.get("current_ticks", 0), "max": v.get("max_ticks"),
                                 "description": as_text(v.get("description"))}
        state["removed_clocks"].pop(name, None)

    def _clock_advancement(self, state, v, d):
        body = _body(v)
        clock = self._clock(state, body, _first(body, "new_value", "after_ticks", "current_ticks"),
                            _first(body, "maximum", "maximum_ticks", "max_ticks"))
        if isinstance(body.get("filled"), bool):
            clock["filled"] = body["filled"]

    def _clock_completion(self, state, v, d):
        body = _body(v)
        clock = self._clock(state, body, _first(body, "final_ticks", "current_ticks"),
                            _first(body, "maximum_ticks", "max_ticks", "maximum"))
        clock["filled"] = True
        if body.get("filled_consequence"):
            clock["consequence"] = as_text(body["filled_consequence"])[:300]

    @staticmethod
    def _clock(state, body, cur, top) -> dict:
        """The named clock (made if unseen, and present again if it was removed), set to cur/top."""
        name = as_text(body.get("clock_name"))
        clock = state["clocks"].setdefault(name, {"cur": None, "max": None, "description": ""})
        state["removed_clocks"].pop(name, None)
        if cur is not None:
            clock["cur"] = cur
        if top is not None:
            clock["max"] = top
        return clock

    def _clock_removal(self, state, v, d):
        body = _body(v)
        name = as_text(body.get("clock_name"))
        gone = state["clocks"].pop(name, None) or {}
        cur = _first(body, "current_ticks", "final_ticks")
        top = _first(body, "maximum_ticks", "max_ticks", "maximum")
        state["removed_clocks"][name] = {
            "cur": gone.get("cur") if cur is None else cur, "max": gone.get("max") if top is None else top,
            "reason": as_text(body.get("removal_reason") or body.get("reason")),
            "filled": body.get("filled") is True or gone.get("filled") is True,
            "description": as_text(body.get("description") or gone.get("description")),
            "round": d.get("round"),
        }

    def _action_resolution(self, state, v, d):
        clocks = v.get("clocks")
        if isinstance(clocks, dict):
            # Each resolution lists the scene's clocks as they now stand; a scene pivot drops old ones.
            old = state["clocks"]
            state["clocks"] = {}
            for name, written in clocks.items():
                cur, top = parse_clock(written)
                before = mapping(old.get(name))
                state["clocks"][name] = {"cur": cur, "max": top, "description": before.get("description", "")}
                if "filled" in before:
                    state["clocks"][name]["filled"] = before["filled"]
                state["removed_clocks"].pop(name, None)
        roll = mapping(v.get("roll"))
        state["last_roll"] = {
            "agent": as_text(v.get("agent")), "action": as_text(v.get("action"))[:200],
            **{k: roll.get(k) for k in ("d20", "total", "dc", "margin", "tier", "success")},
        }

    def _llm_call(self, state, v, d):
        key = as_text(v.get("agent_id") or d.get("agent") or "unknown")
        tokens = mapping(v.get("tokens"))
        agent = state["agents"].setdefault(key, {"type": as_text(v.get("agent_type")), "calls": 0,
                                                 "input": 0, "output": 0})
        agent["calls"] += 1
        for f in ("input", "output"):
            n = number(tokens.get(f))
            if n is not None:
                agent[f] += n

    def _session_error(self, state, v, d):
        state["errors"] += 1

    def _session_end(self, state, v, d):
        state["ended"] = True
        for name, c in mapping(mapping(v.get("final_state")).get("scene_clocks")).items():
            if name in state["removed_clocks"]:  # the writer takes final_state before its last removals
                continue
            c = mapping(c)
            clock = state["clocks"].setdefault(name, {"description": ""})
            clock["cur"], clock["max"] = c.get("current"), c.get("maximum")

    def _npc_departure(self, state, v, d):
        key = as_text(v.get("npc_id") or v.get("npc_name"))
        gone = state["npcs"].pop(key, None) or {}
        state["departed"].append({"id": key, "name": as_text(v.get("npc_name") or gone.get("name")),
                                  "reason": as_text(v.get("departure_reason")), "round": d.get("round")})

    def _agent_conversion(self, state, v, d):
        """An NPC turned enemy or an enemy turned NPC (a prisoner, say): the same id, another roster."""
        key = as_text(v.get("agent_id") or v.get("agent_name"))
        before, after = as_text(v.get("from_type")), as_text(v.get("to_type"))
        source = ROSTERS.get(before)
        if source is None or key not in state[source]:
            source = next((r for r in ("enemies", "npcs", "characters") if key in state[r]), None)
        entity = state[source].pop(key) if source else {}
        name = as_text(v.get("agent_name")) or entity.get("name") or entity.get("character_name") or ""
        target = ROSTERS.get(after, "npcs")
        now = mapping(v.get("state_after"))
        if target == "characters":
            state["characters"][key] = {f: now.get(f, entity.get(f)) for f in CHARACTER_FIELDS} | {
                "character_name": name}
        else:
            if source == "characters" or not entity:
                entity = _entity(name, d.get("round")) | {f: entity[f] for f in BODY_FIELDS if f in entity}
            entity.update({f: now[f] for f in BODY_FIELDS if f in now})
            entity.update(name=name, converted_from=before, trigger=as_text(v.get("trigger")))
            if target == "npcs" and after != "npc":
                entity["type"] = after
            state[target][key] = entity
        if key in state["agents"]:
            state["agents"][key]["type"] = after
        state["conversions"].append({"id": key, "name": name, "from": before, "to": after,
                                     "trigger": as_text(v.get("trigger")), "round": d.get("round")})

    def _entity_lifecycle(self, state, v, d):
        """NPCs entering the scene; the other changes it lists come as events of their own."""
        spawned = _body(v).get("npcs_spawned")
        for entry in spawned if isinstance(spawned, list) else ():
            entry = entry if isinstance(entry, dict) else {"npc_id": entry}
            key = as_text(_first(entry, "npc_id", "agent_id", "id", "name", "npc_name"))
            if key and key not in state["npcs"]:
                state["npcs"][key] = _entity(_first(entry, "name", "npc_name"), d.get("round"))

    def marker(self, d: dict) -> str | None:
        action = d["action"]
        if action == RESOLUTION:
            roll = mapping(mapping(d.get("values")).get("roll"))
            return "failed roll" if roll.get("success") is False else None
        if action in ("session_error", "pydantic_validation_failure"):
            return "error"
        if action == "enemy_defeat":
            return "defeat"
        return None


def _amounts(value: Any) -> list[tuple[str, Any]]:
    """{"drip": 8, "spark": 0} -> [("drip", 8)]: a purse's or a seed pouch's non-zero entries."""
    return [(as_text(k), n) for k, n in mapping(value).items() if number(n)]


def _replay_context(state: dict) -> dict:
    agents = state.get("agents", {})
    return {
        "clocks": [{"name": name, **c, "pct": pct(c.get("cur"), c.get("max"))}
                   for name, c in state.get("clocks", {}).items()],
        "removed_clocks": [{"name": name, **c} for name, c in state.get("removed_clocks", {}).items()],
        "characters": [{"id": k, **c, "pct": pct(c.get("health"), c.get("max_health")),
                        "energy": _amounts(c.get("energy")), "seeds": _amounts(c.get("seeds"))}
                       for k, c in state.get("characters", {}).items()],
        "enemies": [{"id": k, **e, "pct": pct(e.get("health"), e.get("max_health"))}
                    for k, e in state.get("enemies", {}).items()],
        "npcs": [{"id": k, **e, "pct": pct(e.get("health"), e.get("max_health"))}
                 for k, e in state.get("npcs", {}).items()],
        "agents": [{"id": k, **a, "tokens": a["input"] + a["output"]} for k, a in agents.items()],
        "llm_total": {f: sum(a[f] for a in agents.values()) for f in ("calls", "input", "output")},
    }


REPLAY = ReplaySpec(
    reducer=SessionReducer,
    template="viewer/kinds/session_replay.html",
    filters=("agent", "round_min", "round_max"),
    context=_replay_context,
    markers=("failed roll", "error", "defeat"),
    rounds=True,
)

# -- diff -----------------------------------------------------------------------------------------
from ..diff import DiffSpec


def _diff_where(row, run) -> str:
    """`round 4 · Ash Vex`: the agent by the name the log gives it (its id where it gives none), as
    the diff's exports have always written it."""
    parts = [f"round {row['round']}"] if row["round"] is not None else []
    agent = row["agent"]
    if agent:
        name = (getattr(run, "agents", None) or {}).get(agent)
        parts.append(name if isinstance(name, str) and name else str(agent))
    return " · ".join(parts)


def _diff_settings(run) -> dict:
    return {"random_seed": run.random_seed, "version": run.version or None,
            "git_commit": run.git_commit or None, "config": run.settings or {}}


DIFF = DiffSpec(
    columns=("round", "agent"),
    key=("round", "action", "agent"),
    where=_diff_where,
    settings=_diff_settings,
    settings_source="session_start: random_seed, version, git_commit, config",
    filters=(("round", "Round", "number"), ("agent", "Agent", "search")),
    texts=("prompt", "response"),  # an llm_call's, compared word by word side by side
)


# -- LLM calls: tokens and cost, replay readiness, the replay kit (issue 16) ---------------------
from ..tokens import LlmSpec  # noqa: E402


def _replay_start(run) -> dict:
    """What replay.py takes from session_start to re-run a session."""
    return {"random_seed": run.random_seed, "version": run.version or None,
            "git_commit": run.git_commit or None, "config": run.settings or {}}


LLM = LlmSpec(
    action=LLM_CALL,
    after_call=("structured_output_metrics",),  # logged once the DM's call has returned
    # A turn that needs a call: a declaration (its agent's), an adjudication and a synthesis (the DM's)
    turns={"action_declaration": None, "adjudication_start": "dm", "round_synthesis": "dm"},
    required=("session_start", "scenario", "round_start"),  # replay.py stops without them
    start=_replay_start,
)


# -- trace: session → round → agent turn → events (issue 16.1) -----------------------------------
from ..trace import TraceSpec, Turn  # noqa: E402

# How a call is attached to the turn it served, from the order of the lines (FORMATS 2.4) and the
# call's own agent_id / agent_type:
# - An adjudication is opened by `adjudication_start`; the DM's call comes after it (beside its
#   structured_output_metrics, logged once the call returned) and its `action_resolution` closes it.
#   Every DM call while it is open is its (a retry too).
# - A declaration, a synthesis and the scenario record an answer: their call is logged just before
#   them. A call outside an open adjudication waits, as a turn of its own, for the event it served:
#   an `action_declaration` takes the latest waiting call of its own agent (an enemy's, v1.0: the
#   enemy's tactics), `round_synthesis` and `scenario` the latest waiting DM call.
# - A call nothing claims by the next round stays a turn of its own ("call"). The round is the
#   line's place after a `round_start`, not its `round` field (null on v1.0 enemy calls).
TRACE = TraceSpec(
    call=LLM_CALL,
    round_start="round_start",
    turns={
        "action_declaration": Turn("declaration"),
        "adjudication_start": Turn("adjudication", whose="dm", call_first=False),
        "round_synthesis": Turn("synthesis", whose="dm"),
        "scenario": Turn("scenario", whose="dm"),
    },
    closes=(RESOLUTION,),
    after_call=("structured_output_metrics",),
    closing=("mission_debrief", "session_end"),
    type_labels={"enemy": "enemy tactics"},
    llm=LLM,
)


# -- event chains (v1.2): parent, children, the round's correlation (issue 16.5) -----------------
def _chain(run, decision):
    from .. import chains

    return chains.chain(run, decision, id_key="event_id", parent_key="parent_event_id", group_key="correlation_id")


# -- the game state over time (issue 16.4): viewer/kinds/session_state.py -------------------------
from ..state import StateSpec  # noqa: E402
from . import session_state  # noqa: E402

STATE = StateSpec(actions=session_state.ACTIONS, series=session_state.series)


PROFILE = register(
    Profile(
        name="session",
        label="Multi-agent session",
        reader="viewer.readers.session",
        run_name="viewer.kinds.run_names.session",
        line_log=True,
        end_actions=("session_end",),  # the writer's last line (FORMATS 2): the session is over
        words=Words(
            action="Event",
            agent="Agent",
            settings="Session config",
            q_hint="reason, prompt, response",
            action_example="llm_call",
            value_example="roll.margin<0",
            align="round, event type and agent",
            time_zone="log's local time",  # v1.0 files write local times without a zone
        ),
        filter_fields=("round", "agent", "round_min", "round_max", "model", "agent_type", "temperature"),
        columns=(Column("Round", "round", "num"), Column("Agent", "agent_label", "agent")),
        facets=(("action", "Event"), ("round", "Round"), ("agent", "Agent"), ("model", "Model"),
                ("agent_type", "Agent type"), ("temperature", "Temperature")),
        summary_facts=_facts,
        written_values=_written_values,
        replay_file=_replay_file,
        cells=CELLS,
        replay=REPLAY,
        diff=DIFF,
        llm=LLM,
        chain=_chain,
        state=STATE,
        trace=TRACE,
    )
)
