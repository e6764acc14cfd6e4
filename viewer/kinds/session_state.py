"""A session's game state over time (issue 16.4): per character health, wounds, void, soulcredit and
conditions; the scene's clocks; the enemies' health. One pass over the run's decisions in file order
(state.state_series reads them through the selector); every point is one decision (its seq)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..replay import mapping, number, text as as_text
from ..state import Quantity, StateSeries
from .session import parse_clock

ACTIONS = ("round_start", "character_state", "action_resolution", "clock_spawn", "clock_advancement",
           "clock_completion", "clock_removal", "enemy_spawn", "combat_action", "enemy_defeat", "session_end")
CHARACTER = (("health", "health", "Health"), ("wounds", "wounds", "Wounds"), ("void", "void_score", "Void"),
             ("soulcredit", "soulcredit", "Soulcredit"), ("conditions", "conditions", "Conditions"))
ECONOMY = {"void": "void_delta", "soulcredit": "soulcredit_delta"}


def series(rows: Iterable[dict], agents: dict | None = None) -> StateSeries:
    """rows: {seq, action, round, agent, values} in file order."""
    agents = agents or {}
    out = StateSeries(quantities=[Quantity(key, title) for key, _, title in CHARACTER]
                      + [Quantity("clocks", "Clocks", "ticks"), Quantity("enemies", "Enemies' health")])
    q = {quantity.key: quantity for quantity in out.quantities}
    last: dict[tuple[str, str], Any] = {}  # (quantity, character id) -> its last value
    enemy_names: dict[str, str] = {}
    for d in rows:
        seq, action, round_, v = d["seq"], d["action"], d["round"], mapping(d["values"])
        if action == "round_start":
            out.rounds.append((seq, round_))
        elif action == "character_state":
            who = as_text(v.get("character_id") or v.get("character_name"))
            name = as_text(v.get("character_name")) or agents.get(who, who)
            if as_text(v.get("agent")) in ("enemy", "npc") or who in enemy_names:
                q["enemies"].add(enemy_names.get(who, name), seq, round_, number(v.get("health")), "character_state")
                continue
            for key, field, _ in CHARACTER:
                value = v.get(field)
                value = len(value) if key == "conditions" and isinstance(value, list) else number(value)
                note = ", ".join(map(as_text, v.get(field))) if key == "conditions" and v.get(field) else "character_state"
                q[key].add(name, seq, round_, value, note)
                last[(key, who)] = value
        elif action == "action_resolution":
            who = as_text(d.get("agent"))
            economy = mapping(v.get("economy"))
            for key, field in ECONOMY.items():
                delta = number(economy.get(field))
                if delta and last.get((key, who)) is not None:
                    last[(key, who)] += delta
                    q[key].add(agents.get(who, who), seq, round_, last[(key, who)],
                               f"{'+' if delta > 0 else ''}{delta:g} by a resolution")
            clocks = v.get("clocks")
            if isinstance(clocks, dict):
                for name, written in clocks.items():
                    cur, top = parse_clock(written)
                    q["clocks"].add(as_text(name), seq, round_, number(cur), f"{as_text(written)}")
        elif action in ("clock_spawn", "clock_advancement", "clock_completion", "clock_removal"):
            body = v.get("data") if isinstance(v.get("data"), dict) else v
            cur = next((body[k] for k in ("current_ticks", "new_value", "after_ticks", "final_ticks")
                        if body.get(k) is not None), 0 if action == "clock_spawn" else None)
            word = action.replace("clock_", "")
            q["clocks"].add(as_text(body.get("clock_name")), seq, round_, number(cur), word, end=action == "clock_removal")
        elif action == "session_end":
            for name, c in mapping(mapping(v.get("final_state")).get("scene_clocks")).items():
                q["clocks"].add(as_text(name), seq, round_, number(mapping(c).get("current")), "session_end")
        elif action == "enemy_spawn":
            key = as_text(v.get("enemy_id") or v.get("enemy_name"))
            enemy_names[key] = as_text(v.get("enemy_name")) or key
            q["enemies"].add(enemy_names[key], seq, round_, number(mapping(v.get("stats")).get("health")), "spawn")
        elif action == "combat_action":
            key = as_text(mapping(v.get("defender")).get("id"))
            after = v.get("defender_state_after")
            if key in enemy_names and isinstance(after, dict):
                q["enemies"].add(enemy_names[key], seq, round_, number(after.get("health")), "hit")
        elif action == "enemy_defeat":
            key = as_text(v.get("enemy_id") or v.get("enemy_name"))
            name = enemy_names.get(key) or as_text(v.get("enemy_name")) or key
            q["enemies"].add(name, seq, round_, q["enemies"].last(name),
                             f"defeated ({as_text(v.get('defeat_reason'))})", end=True)
    return out
