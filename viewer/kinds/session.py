"""Multi-agent LLM game sessions (FORMATS.md 2): JSON Lines, one event a line, in rounds, by agents."""
from __future__ import annotations

from typing import Any

from . import Column, Profile, Words, register

LLM_CALL, RESOLUTION = "llm_call", "action_resolution"
NOT_AVAILABLE = "N/A"


def _facts(run) -> list:
    from ..summary import Fact

    facts = [
        Fact("Seed", NOT_AVAILABLE if run.random_seed is None else str(run.random_seed), mono=True),
        Fact("Version", run.version or NOT_AVAILABLE, mono=True),
    ]
    if run.git_commit:
        facts.append(Fact("Git commit", run.git_commit, mono=True))
    if run.session_id:
        facts.append(Fact("Session", run.session_id, mono=True))
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
    """The round, the party, the enemies present, the clocks, LLM use per agent, the latest roll."""

    HANDLERS = {name: "_" + name for name in (
        "character_state", "enemy_spawn", "enemy_defeat", "combat_action", "clock_spawn", RESOLUTION,
        LLM_CALL, "session_error", "session_end")}

    def initial(self) -> dict:
        return {"counts": {}, "round": None, "characters": {}, "enemies": {}, "defeated": [], "clocks": {},
                "agents": {}, "last_roll": None, "errors": 0, "ended": False}

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
        state["characters"][key] = {f: v.get(f) for f in CHARACTER_FIELDS}

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
                                  "reason": as_text(v.get("defeat_reason")), "round": d.get("round")})

    def _combat_action(self, state, v, d):
        key = as_text(mapping(v.get("defender")).get("id"))
        after = v.get("defender_state_after")
        enemy = state["enemies"].get(key)
        if enemy is not None and isinstance(after, dict):
            for f in ("health", "max_health"):
                if after.get(f) is not None:
                    enemy[f] = after[f]
            enemy["status"] = after.get("status")

    def _clock_spawn(self, state, v, d):
        name = as_text(v.get("clock_name"))
        state["clocks"][name] = {"cur": v.get("current_ticks", 0), "max": v.get("max_ticks"),
                                 "description": as_text(v.get("description"))}

    def _action_resolution(self, state, v, d):
        clocks = v.get("clocks")
        if isinstance(clocks, dict):
            # Each resolution lists the scene's clocks as they now stand; a scene pivot drops old ones.
            old = state["clocks"]
            state["clocks"] = {}
            for name, written in clocks.items():
                cur, top = parse_clock(written)
                state["clocks"][name] = {"cur": cur, "max": top,
                                         "description": mapping(old.get(name)).get("description", "")}
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
            c = mapping(c)
            clock = state["clocks"].setdefault(name, {"description": ""})
            clock["cur"], clock["max"] = c.get("current"), c.get("maximum")

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


def _replay_context(state: dict) -> dict:
    agents = state.get("agents", {})
    return {
        "clocks": [{"name": name, **c, "pct": pct(c.get("cur"), c.get("max"))}
                   for name, c in state.get("clocks", {}).items()],
        "characters": [{"id": k, **c, "pct": pct(c.get("health"), c.get("max_health"))}
                       for k, c in state.get("characters", {}).items()],
        "enemies": [{"id": k, **e, "pct": pct(e.get("health"), e.get("max_health"))}
                    for k, e in state.get("enemies", {}).items()],
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
)


PROFILE = register(
    Profile(
        name="session",
        label="Multi-agent session",
        reader="viewer.readers.session",
        words=Words(
            action="Event",
            agent="Agent",
            settings="Session config",
            q_hint="reason, prompt, response",
            action_example="llm_call",
            value_example="roll.margin<0",
            align="round, event type and agent",
        ),
        filter_fields=("round", "agent", "round_min", "round_max"),
        columns=(Column("Round", "round", "num"), Column("Agent", "agent_label", "agent")),
        facets=(("action", "Event"), ("round", "Round"), ("agent", "Agent")),
        summary_facts=_facts,
        written_values=_written_values,
        replay_file=_replay_file,
        cells=CELLS,
        replay=REPLAY,
        diff=DIFF,
    )
)
