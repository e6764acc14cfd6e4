"""viewer/replay.py: reducers, checkpoints and jumps, over the real samples read by the readers."""
import json
from pathlib import Path

import pytest
import study_writing as W
from hypothesis import given, settings
from hypothesis import strategies as st

from viewer import kinds
from viewer import replay as R
from viewer.kinds import study_document as D
from viewer.kinds.study import StudyReducer
from viewer.readers import dynoai, session, study
from viewer.readers.base import Limits, RunInfo

# DynoAI's bins, written out here rather than taken from viewer.replay (FORMATS.md 1.3).
RPM = [1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500]
KPA = [35, 50, 65, 80, 95]
SESSION = "session/session_debt_auction_ambush.jsonl"
# Each kind's replay spec, as its profile gives it; "unknown" has none (the generic reducer).
SPECS = {kind: kinds.profile(kind).replay for kind in ("dynoai", "session", "study")}


def reducer(kind):
    return R.reducer_for(SPECS.get(kind))


def dyno_grid(state):
    return SPECS["dynoai"].grid(state)


DYNO_RUNS = ["dynoai/real_sample/session_replay.json", "dynoai/runs/large200k_s2_c7/session_replay.json",
             "dynoai/runs/large200k_s4_c10/session_replay.json"]


def read(samples_dir, relpath, reader, kind):
    """The reader's decisions as dicts, with t_ms (ms since the first timestamp) as ingest adds it."""
    with open(samples_dir / relpath, "rb") as f:
        decisions = [R.as_dict(d) for d in reader.read(f, RunInfo(kind=kind), limits=Limits())]
    first = next((d["ts"] for d in decisions if d["ts"] is not None), None)
    for d in decisions:
        d["t_ms"] = (d["ts"] - first).total_seconds() * 1000 if d["ts"] is not None else None
    return decisions


@pytest.fixture(scope="module")
def session_decisions(samples_dir):
    return read(samples_dir, SESSION, session, "session")


@pytest.fixture(scope="module")
def dyno_decisions(samples_dir):
    return read(samples_dir, DYNO_RUNS[1], dynoai, "dynoai")


@pytest.fixture(scope="module")
def study_decisions(samples_dir):
    path = next(p for p in sorted((samples_dir / "study").iterdir()) if p.name.endswith(".study.log"))
    return read(samples_dir, path.relative_to(samples_dir), study, "study")


def test_stepping_the_real_session_to_its_end_gives_its_last_character_states(samples_dir, session_decisions):
    expected = {}
    for line in (samples_dir / SESSION).read_text().splitlines():
        event = json.loads(line)
        if event["event_type"] == "character_state":
            expected[event["character_id"]] = {
                k: event[k] for k in ("character_name", "health", "max_health", "wounds", "void_score",
                                      "soulcredit", "position", "conditions", "is_defeated")
            }
    assert len(expected) == 3
    player = R.MemoryReplay(reducer("session"), session_decisions, every=10)
    assert player.state_at(player.total)["characters"] == expected
    assert R.step_by_step(reducer("session"), session_decisions, len(session_decisions))["characters"] == expected


def test_the_session_state_follows_rounds_clocks_and_llm_tokens(samples_dir, session_decisions):
    events = [json.loads(line) for line in (samples_dir / SESSION).read_text().splitlines()]
    player = R.MemoryReplay(reducer("session"), session_decisions)
    # Just after round 3's first action resolution: its clocks, as written.
    at = 1 + next(i for i, e in enumerate(events)
                  if e["event_type"] == "action_resolution" and e["round"] == 3)
    state = player.state_at(at)
    assert state["round"] == 3
    written = events[at - 1]["clocks"]
    assert {name: f"{c['cur']}/{c['max']}" for name, c in state["clocks"].items()} == written
    calls = [e for e in events[:at] if e["event_type"] == "llm_call"]
    assert state["agents"]["dm_01"]["calls"] == len(calls)
    assert state["agents"]["dm_01"]["input"] == sum(e["tokens"]["input"] for e in calls)
    assert state["agents"]["dm_01"]["output"] == sum(e["tokens"]["output"] for e in calls)
    declarations = sum(e["event_type"] == "action_declaration" for e in events[:at])
    assert state["counts"]["action_declaration"] == declarations


def test_clock_spawns_add_clocks_with_their_maximum(samples_dir, session_decisions):
    events = [json.loads(line) for line in (samples_dir / SESSION).read_text().splitlines()]
    spawn = next(i for i, e in enumerate(events) if e["event_type"] == "clock_spawn")
    state = R.MemoryReplay(reducer("session"), session_decisions).state_at(spawn + 1)
    clock = state["clocks"][events[spawn]["clock_name"]]
    assert (clock["cur"], clock["max"]) == (0, events[spawn]["max_ticks"])


def test_enemies_are_present_from_spawn_until_defeat():
    decisions = [
        {"seq": 0, "action": "enemy_spawn", "round": 0, "values": {
            "enemy_id": "e1", "enemy_name": "Grunt", "template": "grunt", "position": "Far",
            "stats": {"health": 16, "max_health": 16}}},
        {"seq": 1, "action": "combat_action", "round": 1, "values": {
            "defender": {"id": "e1"},
            "defender_state_after": {"health": 9, "max_health": 16, "status": "hurt"}}},
        {"seq": 2, "action": "enemy_defeat", "round": 2, "values": {
            "enemy_id": "e1", "enemy_name": "Grunt", "defeat_reason": "killed"}},
    ]
    player = R.MemoryReplay(reducer("session"), decisions, every=2)
    assert player.state_at(1)["enemies"]["e1"]["health"] == 16
    assert player.state_at(2)["enemies"]["e1"]["health"] == 9
    assert player.state_at(3)["enemies"] == {}
    assert player.state_at(3)["defeated"][0]["reason"] == "killed"
    assert player.index.markers == [[3, "defeat", 1]]



# --- v1.2 state: enemies' states, death, purses, clocks that go, NPCs that leave, agents that turn ----
# Our own small v1.2 file (tests/data/session_v12_replay_state.jsonl), written as the v1.2 writer writes
# (FORMATS.md 2.3): an enemy's character_state, clocks advanced, filled and removed (bare and wrapped in
# `data`), an enemy turned NPC, an NPC that leaves, a kill with its killer, a character knocked out.
V12_STATE = Path(__file__).parent / "data" / "session_v12_replay_state.jsonl"


@pytest.fixture(scope="module")
def v12_decisions():
    with open(V12_STATE, "rb") as f:
        return [R.as_dict(d) for d in session.read(f, RunInfo(kind="session"), limits=Limits())]


def v12_state_after(decisions, event_type, nth=1):
    """The state just after the nth line of that type (1-based), as the replay gives it."""
    steps = [i + 1 for i, d in enumerate(decisions) if d["action"] == event_type]
    return R.MemoryReplay(reducer("session"), decisions, every=3).state_at(steps[nth - 1])


def test_an_enemys_character_state_updates_that_enemy_and_not_the_party(v12_decisions):
    state = v12_state_after(v12_decisions, "character_state", 2)
    thug = state["enemies"]["enemy_grunt_0000aaaa"]
    assert (thug["health"], thug["max_health"], thug["wounds"], thug["stuns"]) == (7, 20, 2, 1)
    assert thug["conditions"] == ["Off-Balance"] and thug["position"] == "Engaged-PC"
    assert thug["name"] == "Dock Thug" and thug["template"] == "Grunt"  # the spawn's facts stay
    assert list(state["characters"]) == ["player_01"]


def test_a_characters_death_state_energy_seeds_and_stuns_are_its_latest(v12_decisions):
    first = v12_state_after(v12_decisions, "character_state", 1)["characters"]["player_01"]
    assert (first["death_state"], first["stuns"]) == ("alive", 2)
    assert first["energy"] == {"drip": 6, "spark": 0} and first["seeds"] == {"raw": 1}
    last = v12_state_after(v12_decisions, "character_state", 3)["characters"]["player_01"]
    assert (last["death_state"], last["stuns"], last["is_defeated"]) == ("unconscious", 6, True)
    assert last["energy"] == {"drip": 2} and last["seeds"] == {"raw": 0, "attuned": 1}


def test_clock_advancements_and_completions_set_the_clock_whether_wrapped_in_data_or_not(v12_decisions):
    alarm = v12_state_after(v12_decisions, "clock_advancement", 1)["clocks"]["Alarm"]
    assert (alarm["cur"], alarm["max"], alarm["description"]) == (3, 4, "The hub's alarm")
    escape = v12_state_after(v12_decisions, "clock_advancement", 2)["clocks"]["Escape"]
    assert (escape["cur"], escape["max"], escape["filled"]) == (3, 3, True)
    completed = v12_state_after(v12_decisions, "clock_completion")["clocks"]["Escape"]
    assert completed["filled"] is True and completed["consequence"] == "The party can leave"


def test_a_removed_clock_is_gone_as_of_its_step_and_the_session_end_does_not_bring_it_back(v12_decisions):
    before = v12_state_after(v12_decisions, "clock_completion")
    assert "Alarm" in before["clocks"] and before["removed_clocks"] == {}
    after = v12_state_after(v12_decisions, "clock_removal")
    assert list(after["clocks"]) == ["Escape"]
    assert after["removed_clocks"]["Alarm"] == {"cur": 3, "max": 4, "reason": "story_advancement",
                                               "filled": False, "description": "The hub's alarm", "round": 1}
    end = v12_state_after(v12_decisions, "session_end")
    assert list(end["clocks"]) == ["Escape"] and "Alarm" in end["removed_clocks"]


def test_a_respawned_clock_is_present_again():
    decisions = [
        {"seq": 0, "action": "clock_spawn", "values": {"clock_name": "A", "max_ticks": 4}},
        {"seq": 1, "action": "clock_removal", "values": {"data": {"clock_name": "A", "removal_reason": "pivot"}}},
        {"seq": 2, "action": "clock_spawn", "values": {"clock_name": "A", "max_ticks": 6}},
    ]
    player = R.MemoryReplay(reducer("session"), decisions)
    assert player.state_at(2)["clocks"] == {} and player.state_at(2)["removed_clocks"]["A"]["max"] == 4
    assert player.state_at(3)["clocks"]["A"]["max"] == 6 and player.state_at(3)["removed_clocks"] == {}


def test_an_agent_conversion_moves_the_agent_to_its_new_side_with_its_new_type(v12_decisions):
    before = v12_state_after(v12_decisions, "round_start", 2)
    assert "enemy_grunt_0000aaaa" in before["enemies"] and before["agents"]["enemy_grunt_0000aaaa"]["type"] == "enemy"
    state = v12_state_after(v12_decisions, "agent_conversion")
    assert "enemy_grunt_0000aaaa" not in state["enemies"]
    npc = state["npcs"]["enemy_grunt_0000aaaa"]
    assert (npc["name"], npc["health"], npc["converted_from"], npc["trigger"]) == ("Dock Thug", 7, "enemy", "surrender")
    assert state["agents"]["enemy_grunt_0000aaaa"]["type"] == "npc"
    assert state["conversions"] == [{"id": "enemy_grunt_0000aaaa", "name": "Dock Thug", "from": "enemy",
                                     "to": "npc", "trigger": "surrender", "round": 2}]


def test_an_npc_turned_enemy_joins_the_enemies():
    decisions = [
        {"seq": 0, "action": "character_state", "round": 1, "values": {
            "character_id": "npc_guard", "character_name": "Gate Guard", "health": 15, "max_health": 15,
            "agent": "npc"}},
        {"seq": 1, "action": "agent_conversion", "round": 2, "values": {
            "agent_id": "npc_guard", "agent_name": "Gate Guard", "from_type": "npc", "to_type": "enemy",
            "trigger": "escalation", "state_after": {"health": 15}}},
    ]
    player = R.MemoryReplay(reducer("session"), decisions)
    assert player.state_at(1)["npcs"]["npc_guard"]["health"] == 15 and player.state_at(1)["characters"] == {}
    state = player.state_at(2)
    assert state["npcs"] == {} and state["enemies"]["npc_guard"]["converted_from"] == "npc"


def test_a_departed_npc_leaves_the_scene_as_of_its_step(v12_decisions):
    before = v12_state_after(v12_decisions, "enemy_defeat")
    assert "npc_porter_01" in before["npcs"] and before["departed"] == []
    state = v12_state_after(v12_decisions, "npc_departure")
    assert "npc_porter_01" not in state["npcs"]
    assert state["departed"] == [{"id": "npc_porter_01", "name": "Porter Ennis", "reason": "fled", "round": 2}]
    assert "enemy_grunt_0000aaaa" in state["npcs"]  # the converted thug stays


def test_an_enemy_defeat_keeps_who_dealt_the_last_blow_and_the_health_it_had(v12_decisions):
    state = v12_state_after(v12_decisions, "enemy_defeat")
    assert "enemy_elite_0000bbbb" not in state["enemies"]
    assert state["defeated"][-1] == {"id": "enemy_elite_0000bbbb", "name": "Dock Boss", "reason": "killed",
                                     "round": 2, "killer": "Mara Quill", "final_damage": 11, "health": 40,
                                     "max_health": 40}


def test_a_v12_character_state_without_agent_leaves_a_spawned_enemy_an_enemy():
    decisions = [
        {"seq": 0, "action": "enemy_spawn", "values": {"enemy_id": "e1", "enemy_name": "Grunt",
                                                        "stats": {"health": 16, "max_health": 16}}},
        {"seq": 1, "action": "character_state", "values": {"character_id": "e1", "health": 4, "agent": "player"}},
    ]
    state = R.MemoryReplay(reducer("session"), decisions).state_at(2)
    assert state["characters"] == {} and state["enemies"]["e1"]["health"] == 4


def test_hostile_v12_values_do_not_break_the_session_reducer():
    odd = [
        {"seq": 0, "action": "clock_removal", "values": {"data": ["x"]}},
        {"seq": 1, "action": "clock_advancement", "values": {"data": {"clock_name": ["A"], "after_ticks": {}}}},
        {"seq": 2, "action": "clock_completion", "values": {"final_ticks": float("nan")}},
        {"seq": 3, "action": "agent_conversion", "values": {"agent_id": {"x": 1}, "to_type": ["npc"],
                                                            "state_after": "dead"}},
        {"seq": 4, "action": "npc_departure", "values": None},
        {"seq": 5, "action": "entity_lifecycle", "values": {"data": {"npcs_spawned": "npc_a"}}},
        {"seq": 6, "action": "entity_lifecycle", "values": {"data": {"npcs_spawned": [None, 3, {"name": "B"}]}}},
        {"seq": 7, "action": "character_state", "values": {"character_id": "z", "agent": ["enemy"],
                                                           "energy": "lots", "seeds": [1]}},
        {"seq": 8, "action": "enemy_defeat", "values": {"enemy_id": 5, "final_damage": float("inf")}},
        {"seq": 9, "action": "character_state", "values": {"character_id": "p", "energy": "lots",
                                                           "seeds": {"raw": "x", "hollow": None}}},
    ]
    player = R.MemoryReplay(reducer("session"), odd, every=2)
    state = player.state_at(len(odd))
    assert state == R.step_by_step(reducer("session"), odd, len(odd))
    json.dumps(state, allow_nan=False)
    context = SPECS["session"].context(state)  # the page's facts build
    assert [c["energy"] for c in context["characters"]] == [[]]
    assert "z" in [n["id"] for n in context["npcs"]]


def test_the_v12_fixture_replays_to_an_enemy_turned_npc_and_a_removed_clock():
    path = Path(__file__).parent / "data" / "session_v12_mixed_zones.jsonl"
    with open(path, "rb") as f:
        decisions = [R.as_dict(d) for d in session.read(f, RunInfo(kind="session"), limits=Limits())]
    state = R.MemoryReplay(reducer("session"), decisions, every=7).state_at(len(decisions))
    assert set(state["characters"]) == {"player_01", "player_02"}
    assert state["enemies"] == {} and state["npcs"]["enemy_grunt_1a2b3c4d"]["health"] == 9
    assert state["clocks"] == {} and state["removed_clocks"]["Enemy Reinforcements"]["reason"] == "session_end"
    assert [n["name"] for n in state["departed"]] == ["Broker Ilse"]


def _independent_dyno_cells(path):
    """Per cell (rpm bin, kpa bin): the last value each action wrote, read straight from the JSON."""
    cells = {}
    for d in json.loads(path.read_text())["decisions"]:
        action, values, cell = d["action"], d.get("values", {}), d.get("cell", {})
        if action == "AFR_CORRECTION":
            c = cells.setdefault((cell["rpm"], cell["kpa"]), {})
            c["afr_error_pct"], c["weight"] = values["afr_error_pct"], values["weight"]
        elif action == "GRADIENT_LIMITING":
            where = (RPM[cell["rpm_index"]], KPA[cell["kpa_index"]])
            cells.setdefault(where, {})["result"] = values["result"]
        elif action == "CLAMPING_APPLIED":
            for item in values["cells"]:
                where = (RPM[item["rpm_index"]], KPA[item["kpa_index"]])
                cells.setdefault(where, {})["clamped"] = item["clamped"]
        elif action == "ANOMALY_DETECTION_START":  # a new pass: earlier flags no longer hold
            for c in cells.values():
                c.pop("anomaly_score", None)
        elif action == "ANOMALY_DETECTED":
            cells.setdefault((cell["rpm"], cell["kpa"]), {})["anomaly_score"] = values["score"]
    return cells


@pytest.mark.parametrize("relpath", DYNO_RUNS)
def test_the_dynoai_grid_at_the_last_step_equals_the_last_value_per_cell(samples_dir, relpath):
    expected = _independent_dyno_cells(samples_dir / relpath)
    player = R.MemoryReplay(reducer("dynoai"), read(samples_dir, relpath, dynoai, "dynoai"), every=50)
    grid = dyno_grid(player.state_at(player.total))
    assert grid["rows"] == [str(r) for r in RPM] and grid["cols"] == [str(k) for k in KPA]
    for layer in ("afr_error_pct", "weight", "result", "clamped", "anomaly_score"):
        drawn = {(RPM[i], KPA[j]): v for i, row in enumerate(grid["z"][layer]) for j, v in enumerate(row)
                 if v is not None}
        assert drawn == {cell: c[layer] for cell, c in expected.items() if layer in c}, layer
    flagged = {(RPM[i], KPA[j]) for i, j in grid["anomalies"]}
    assert flagged == {cell for cell, c in expected.items() if "anomaly_score" in c}


def test_the_dynoai_state_counts_actions_and_tracks_the_stage(samples_dir, dyno_decisions):
    actions = [d["action"] for d in json.loads((samples_dir / DYNO_RUNS[1]).read_text())["decisions"]]
    player = R.MemoryReplay(reducer("dynoai"), dyno_decisions, every=25)
    first_clamp = actions.index("CLAMPING_START") + 1
    state = player.state_at(first_clamp)
    assert state["stage"] == "clamping"
    assert state["counts"] == {a: actions[:first_clamp].count(a) for a in set(actions[:first_clamp])}
    assert player.state_at(actions.index("SMOOTHING_START") + 1)["stage"] == "smoothing"
    assert player.state_at(actions.index("ANOMALY_DETECTION_START") + 1)["stage"] == "anomaly detection"
    assert player.state_at(0) == reducer("dynoai").initial()


def test_a_new_anomaly_detection_pass_clears_the_flags_of_the_last():
    decisions = [
        {"seq": 0, "action": "ANOMALY_DETECTION_START"},
        {"seq": 1, "action": "ANOMALY_DETECTED", "rpm": 2000, "kpa": 65, "values": {"score": 4.5}},
        {"seq": 2, "action": "ANOMALY_DETECTION_START"},
        {"seq": 3, "action": "ANOMALY_DETECTED", "rpm": 3000, "kpa": 80, "values": {"score": 3.1}},
    ]
    player = R.MemoryReplay(reducer("dynoai"), decisions, every=3)
    flagged = {"rpm": "2000", "kpa": "65", "anomaly": True, "anomaly_score": 4.5}
    assert player.state_at(2)["cells"]["2000|65"] == flagged
    state = player.state_at(4)
    assert "anomaly" not in state["cells"]["2000|65"]
    assert state["cells"]["3000|80"]["anomaly_score"] == 3.1


def test_markers_point_at_anomalies_and_clamps(samples_dir, dyno_decisions):
    actions = [d["action"] for d in json.loads((samples_dir / DYNO_RUNS[1]).read_text())["decisions"]]
    player = R.MemoryReplay(reducer("dynoai"), dyno_decisions)
    expected = sorted([i + 1, {"ANOMALY_DETECTED": "anomaly", "CLAMPING_APPLIED": "clamp"}[a], 1]
                      for i, a in enumerate(actions) if a in ("ANOMALY_DETECTED", "CLAMPING_APPLIED"))
    assert expected and player.index.markers == expected


def test_failed_rolls_of_the_real_session_are_markers(samples_dir, session_decisions):
    events = [json.loads(line) for line in (samples_dir / SESSION).read_text().splitlines()]
    failed = [i + 1 for i, e in enumerate(events)
              if e["event_type"] == "action_resolution" and e["roll"]["success"] is False]
    markers = R.MemoryReplay(reducer("session"), session_decisions).index.markers
    assert [s for s, category, _ in markers if category == "failed roll"] == failed


def test_markers_are_binned_on_a_long_run():
    notable = [(s, "anomaly") for s in range(1, 10_001)]
    markers = R.bin_markers(notable, 10_000, bins=100)
    assert len(markers) == 100
    assert markers[0] == [1, "anomaly", 100] and markers[1] == [101, "anomaly", 100]


def test_the_study_state_counts_events_keystrokes_and_active_time(study_decisions):
    n = len(study_decisions) // 2
    state = R.MemoryReplay(reducer("study"), study_decisions, every=100).state_at(n)
    head = study_decisions[:n]
    assert state["keystrokes"] == sum(d["action"] == "keystroke" for d in head)
    assert sum(state["counts"].values()) == n
    times = [d["t_ms"] for d in head if d["t_ms"] is not None]
    gaps = [b - a for a, b in zip(times, times[1:]) if 0 < b - a <= StudyReducer.IDLE_MS]
    assert state["active_ms"] == pytest.approx(sum(gaps))
    docs = [d["values"].get("object", {}).get("id") or d["values"].get("doc_id") for d in head]
    docs = [x for x in docs if x]
    if docs:
        assert state["document"]["id"] == docs[-1]


@pytest.mark.parametrize("every", [1, 3, 10, 1000])
def test_frames_with_a_stride_equal_states_stepped_one_by_one(session_decisions, every):
    player = R.MemoryReplay(reducer("session"), session_decisions, every=every)
    frames = player.frames(7, 9, stride=4)
    assert [f.step for f in frames] == [7, 11, 15, 19, 23, 27, 31, 35, 39]
    for f in frames:
        assert f.state == R.step_by_step(reducer("session"), session_decisions, f.step)
        assert f.decision["seq"] == session_decisions[f.step - 1]["seq"]


def test_frames_stop_at_the_end_of_the_run(session_decisions):
    player = R.MemoryReplay(reducer("session"), session_decisions, every=10)
    assert [f.step for f in player.frames(120, 10)] == [120, 121, 122, 123]
    assert [f.step for f in player.frames(500, 3)] == [123]
    assert player.frame(0).decision is None


def test_the_window_holds_the_rows_around_the_step_and_the_state_at_it(session_decisions):
    player = R.MemoryReplay(reducer("session"), session_decisions, every=10)
    frame, rows = player.window(40, 5, 7)
    assert [s for s, _ in rows] == list(range(35, 48))
    assert [d["seq"] for _, d in rows] == [d["seq"] for d in session_decisions[34:47]]
    assert frame.state == R.step_by_step(reducer("session"), session_decisions, 40)
    assert frame.decision["seq"] == session_decisions[39]["seq"]
    frame, rows = player.window(0, 5, 3)
    assert frame.decision is None and [s for s, _ in rows] == [1, 2, 3]


def test_a_jump_by_time_lands_on_the_last_step_at_or_before_it(dyno_decisions):
    player = R.MemoryReplay(reducer("dynoai"), dyno_decisions, every=20)
    times = [d["t_ms"] for d in dyno_decisions]
    for t in (times[0], times[len(times) // 3], times[-1], times[-1] + 1000, -5):
        expected = sum(1 for i in range(len(times)) if max(times[: i + 1]) <= t)
        assert player.step_at_time(t) == expected


def test_hostile_values_do_not_break_the_reducers():
    odd = [
        {"seq": 0, "action": "__init__", "values": {"x": 1}},
        {"seq": 1, "action": "GRADIENT_LIMITING", "rpm_index": None, "kpa_index": None, "values": None},
        {"seq": 2, "action": "CLAMPING_APPLIED", "values": {"cells": [
            {"rpm_index": [1], "kpa_index": {"a": 1}}, "text",
            {"rpm_index": 99, "kpa_index": 2, "clamped": float("nan")}]}},
        {"seq": 3, "action": "AFR_CORRECTION", "rpm": 2000, "kpa": 65, "values": {"afr_error_pct": "high"}},
        {"seq": 4, "action": "character_state", "values": ["not", "a", "dict"]},
        {"seq": 5, "action": "action_resolution", "values": {"clocks": {"A": "7/6", "B": "soon"}, "roll": 3}},
        {"seq": 6, "action": "llm_call", "values": {"tokens": {"input": "many", "output": 5}}},
    ]
    for kind in ("dynoai", "session", "study", "unknown"):
        player = R.MemoryReplay(reducer(kind), odd, every=2)
        state = player.state_at(len(odd))
        assert state == R.step_by_step(reducer(kind), odd, len(odd))
        json.dumps(state, allow_nan=False)
    dyno = R.MemoryReplay(reducer("dynoai"), odd).state_at(len(odd))
    assert dyno["cells"]["[99]|65"]["clamped"] is None
    assert dyno["cells"]["2000|65"]["afr_error_pct"] is None
    sessions = R.MemoryReplay(reducer("session"), odd).state_at(len(odd))
    assert sessions["clocks"] == {"A": {"cur": 7, "max": 6, "description": ""},
                                  "B": {"cur": "soon", "max": None, "description": ""}}
    assert sessions["agents"]["unknown"] == {"type": "", "calls": 1, "input": 0, "output": 5}


def test_hover_text_is_html_escaped():
    decisions = [{"seq": 0, "action": "AFR_CORRECTION", "rpm": 2000, "kpa": 65, "cylinder": "<b>f</b>",
                  "values": {"afr_error_pct": 1.5, "weight": 3}}]
    grid = dyno_grid(R.MemoryReplay(reducer("dynoai"), decisions).state_at(1))
    text = grid["text"][1][2]
    assert "&lt;b&gt;f&lt;/b&gt;" in text and "<b>" not in text


# --- jumping to step N equals stepping N times from the start ------------------------------------


@pytest.fixture(scope="module")
def replays(session_decisions, dyno_decisions, study_decisions):
    return {
        kind: (decisions, R.MemoryReplay(reducer(kind), decisions, every=every))
        for kind, decisions, every in (("session", session_decisions, 9), ("dynoai", dyno_decisions, 17),
                                       ("study", study_decisions, 64))
    }


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_jumping_to_step_n_equals_stepping_n_times(replays, data):
    kind = data.draw(st.sampled_from(sorted(replays)))
    decisions, player = replays[kind]
    n = data.draw(st.integers(min_value=0, max_value=len(decisions)))
    stepped = reducer(kind).initial()
    folding = reducer(kind)
    for d in decisions[:n]:
        folding.fold(stepped, R.as_dict(d))
    assert player.state_at(n) == R.copy_state(stepped)


ACTIONS = ["AFR_CORRECTION", "GRADIENT_LIMITING", "CLAMPING_APPLIED", "ANOMALY_DETECTED", "SMOOTHING_START",
           "ANOMALY_DETECTION_START",
           "character_state", "action_resolution", "llm_call", "enemy_spawn", "enemy_defeat", "keystroke",
           "other"]
decision_st = st.fixed_dictionaries({
    "action": st.sampled_from(ACTIONS),
    "t_ms": st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
    "rpm": st.sampled_from([None, 1500, 2000, 7000]), "kpa": st.sampled_from([None, 35, 95]),
    "rpm_index": st.sampled_from([None, 0, 3, 12]), "kpa_index": st.sampled_from([None, 1, 4]),
    "round": st.one_of(st.none(), st.integers(0, 5)),
    "values": st.fixed_dictionaries({}, optional={
        "afr_error_pct": st.floats(-20, 20), "result": st.floats(-20, 20), "score": st.floats(0, 10),
        "character_id": st.sampled_from(["p1", "p2"]), "health": st.integers(0, 30),
        "enemy_id": st.sampled_from(["e1", "e2"]), "clocks": st.dictionaries(st.sampled_from(["A", "B"]),
                                                                              st.sampled_from(["1/4", "x"])),
        "tokens": st.fixed_dictionaries({"input": st.integers(0, 99), "output": st.integers(0, 99)}),
        "roll": st.fixed_dictionaries({"success": st.booleans()}),
    }),
})


@settings(max_examples=80, deadline=None)
@given(kind=st.sampled_from(["dynoai", "session", "study"]), every=st.integers(1, 12),
       decisions=st.lists(decision_st, max_size=60), data=st.data())
def test_jumping_equals_stepping_on_generated_runs(kind, every, decisions, data):
    decisions = [{**d, "seq": 3 * i} for i, d in enumerate(decisions)]
    player = R.MemoryReplay(reducer(kind), decisions, every=every)
    n = data.draw(st.integers(0, len(decisions)))
    assert player.state_at(n) == R.step_by_step(reducer(kind), decisions, n)
    assert player.frame(n).decision == (decisions[n - 1] if n else None)


def test_every_marker_a_reducer_gives_is_in_its_kinds_legend(session_decisions, dyno_decisions, study_decisions):
    for kind, decisions in (("session", session_decisions), ("dynoai", dyno_decisions),
                            ("study", study_decisions)):
        given = {category for _, category, _ in R.MemoryReplay(reducer(kind), decisions).index.markers}
        assert given <= set(SPECS[kind].markers), kind


@settings(max_examples=60, deadline=None)
@given(data=st.data(), every=st.integers(1, 6))
def test_jumping_equals_stepping_over_v12_lines_in_any_order(v12_decisions, data, every):
    picked = data.draw(st.lists(st.sampled_from(v12_decisions), max_size=30))
    decisions = [{**d, "seq": i} for i, d in enumerate(picked)]
    player = R.MemoryReplay(reducer("session"), decisions, every=every)
    n = data.draw(st.integers(0, len(decisions)))
    state = player.state_at(n)
    assert state == R.step_by_step(reducer("session"), decisions, n)
    json.dumps(state, allow_nan=False)
    SPECS["session"].context(state)


# --- a study log's documents, rebuilt from the save commands (issue 18) --------------------------


@pytest.fixture(scope="module")
def writing_decisions(tmp_path_factory):
    path = W.write_log(tmp_path_factory.mktemp("writing"))
    return read(path.parent, path.name, study, "study")


def test_each_documents_text_after_every_step_is_the_hand_worked_one(writing_decisions):
    assert len(writing_decisions) == len(W.STEPS)
    player = R.MemoryReplay(reducer("study"), writing_decisions, every=3)
    for n in range(len(W.STEPS) + 1):
        state = player.state_at(n)
        assert {k: v["text"] for k, v in state["documents"].items()} == W.expected(n), n
        assert state == R.step_by_step(reducer("study"), writing_decisions, n)


def test_the_last_edit_cursor_and_commands_not_understood_are_kept(writing_decisions):
    player = R.MemoryReplay(reducer("study"), writing_decisions)
    essay = player.state_at(7)["documents"][W.ESSAY]
    # "H" struck through, "J" inserted in its place, the cursor after it; style counted, "zz" listed
    assert essay["edit"] == {"step": 7, "marks": [["del", 0, "H"], ["ins", 0, 1]]}
    assert essay["cursor"] == 1
    assert essay["unknown_commands"] == {"zz": 1} and essay["other_commands"] == {"as": 1}
    assert D.segments(essay)["pieces"] == [["del", "H"], ["ins", "J"], ["cursor", ""], ["", "ello there!"]]
    assert player.state_at(5)["documents"][W.ESSAY]["edit"]["marks"] == [["ins", 6, 6]]  # "there!" merged
    assert player.state_at(4)["documents"][W.ESSAY]["edit"]["marks"] == [["del", 6, "world"]]


def test_the_writing_process_counts_revisions_deletions_pauses_and_idle_time(writing_decisions):
    state = R.MemoryReplay(reducer("study"), writing_decisions).state_at(len(writing_decisions))
    essay, notes = state["documents"][W.ESSAY], state["documents"][W.NOTES]
    assert (essay["revisions"], essay["inserted"], essay["deleted"]) == (6, 29, 18)
    assert essay["pauses"] == 1  # 2 s -> 6 s
    assert essay["idle_ms"] == 71_000  # 9 s -> 80 s, counted for the essay it came back to
    assert essay["active_ms"] == 10_500 and notes["active_ms"] == 1_000
    assert essay["minutes"] == {"0": [18, 6, 1, 8000.0], "1": [11, 12, 0, 2500.0]}
    assert list(D.writing_rows(state["documents"]))[1:] == [
        (W.ESSAY, "Essay draft", 0, 18, 6, 1, 8.0), (W.ESSAY, "Essay draft", 1, 11, 12, 0, 2.5),
        (W.NOTES, "", 0, 5, 0, 0, 1.0)]
    assert D.summary(state["documents"])["length"] == len("Hello again") + len("Notes")


def test_writing_comes_in_bursts_between_pauses(writing_decisions):
    state = R.MemoryReplay(reducer("study"), writing_decisions).state_at(len(writing_decisions))
    essay = state["documents"][W.ESSAY]
    # the essay: 11 characters until the pause at 2 s -> 6 s; 6 + 1 until the idle minute; 11 after it (open)
    assert (essay["bursts"], essay["burst_chars"], essay["burst_open"]) == (2, 18, 11)
    assert D.summary(state["documents"])["bursts"] == 4  # and the notes' one burst of 5
    assert D.summary(state["documents"])["burst_mean"] == round((11 + 7 + 11 + 5) / 4, 1)


@pytest.mark.parametrize("commands, text, unknown", [
    ([{"ty": "is", "ibi": 4, "s": "d"}], "\ufffd\ufffd\ufffdd", {}),  # the log began after 3 characters
    ([{"ty": "ds", "si": 3, "ei": 2}], "", {"ds (malformed)": 1}),
    ([{"ty": "is", "ibi": 0, "s": "x"}, {"ty": "is", "ibi": 1, "s": True}], "", {"is (malformed)": 2}),
    ([{"ty": "mlti", "mts": "no"}, "text", {"s": "x"}, {"ty": "weird"}], "",
     {"mlti (malformed)": 1, "(no type)": 2, "weird": 1}),
])
def test_commands_outside_the_text_or_not_understood_are_filled_or_counted(commands, text, unknown):
    doc = D.new_document()
    D.apply_save(doc, [{"commands": commands}], 1)
    assert doc["text"] == text and doc["unknown_commands"] == unknown


def test_hostile_save_bundles_are_counted_never_fatal():
    doc = D.new_document()
    for bundles in (None, "x", [None], [{"commands": "x"}], [{"commands": [{"ty": "is", "ibi": 1.5, "s": "a"}]}]):
        D.apply_save(doc, bundles, 1)
    assert doc["text"] == "" and sum(doc["unknown_commands"].values()) == 5


def test_a_document_history_rebuilds_the_text_from_its_changelog():
    doc = D.new_document()
    D.apply_save(doc, [{"commands": [{"ty": "is", "ibi": 1, "s": "old"}]}], 1)
    history = {"changelog": [[{"ty": "is", "ibi": 1, "s": "abcdef"}, 1, "u"], [{"ty": "ds", "si": 2, "ei": 3}, 2, "u"]]}
    assert D.apply_history(doc, history, 2) == (1, 0) and doc["text"] == "adef"  # 3 characters, then 4


def test_gen_logs_save_bundles_rebuild_a_text_of_the_length_they_say(tmp_path):
    """gen_logs writes is/ds/mlti commands valid against the text they build: no gap, nothing unknown."""
    import subprocess
    import sys

    tool = Path(__file__).resolve().parents[2] / "shared" / "tools" / "gen_logs.py"
    if not tool.exists():
        pytest.skip("no ../shared/tools/gen_logs.py")
    out = tmp_path / "g.study.log"
    subprocess.run([sys.executable, str(tool), "study", "3000", str(out), "--seed", "5"], check=True)
    decisions = read(tmp_path, out.name, study, "study")
    folding, state, length = reducer("study"), reducer("study").initial(), 0

    def walk(commands):
        nonlocal length
        for c in commands:
            if c["ty"] == "mlti":
                walk(c["mts"])
            else:
                length += len(c["s"]) if c["ty"] == "is" else c["si"] - c["ei"] - 1

    for d in decisions:
        folding.fold(state, d)
        if d["action"] == "google_docs_save":
            for bundle in d["values"]["bundles"]:
                walk(bundle["commands"])
            doc = state["documents"][d["values"]["doc_id"]]
            assert (len(doc["text"]), doc["gaps"], doc["unknown_commands"]) == (length, 0, {})
    assert length > 1000
