"""Facets beside the run page's filters (viewer/facets.py), counted against the sample files."""
import collections
import json

import pytest
from django.http import QueryDict

from viewer import kinds
from viewer.facets import facets_for, link_facets, toggle_query

pytestmark = pytest.mark.django_db

REAL = "dynoai/real_sample/session_replay.json"
COMBAT = "session/combat_session_sample.jsonl"
STUDY = "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"


def by_name(facets):
    return {f.name: {fv.value: fv for fv in f.values} for f in facets}


def test_dynoai_facets_count_actions_and_cylinders(samples_dir, import_sample):
    run = import_sample(REAL)
    decisions = json.loads((samples_dir / REAL).read_text())["decisions"]
    facets = facets_for(run=run, filters={}, facets=kinds.profile(run).facets)
    assert [f.name for f in facets] == ["action", "cylinder"]
    counts = by_name(facets)
    actions = collections.Counter(d["action"] for d in decisions)
    assert {a: fv.count for a, fv in counts["action"].items()} == actions
    cylinders = collections.Counter((d.get("cell") or {}).get("cylinder") for d in decisions)
    assert {c: fv.count for c, fv in counts["cylinder"].items()} == cylinders
    assert list(counts["action"])[0] == "AFR_CORRECTION"  # by count


def test_a_facet_ignores_its_own_parameter_but_follows_the_others(samples_dir, import_sample):
    run = import_sample(REAL)
    decisions = json.loads((samples_dir / REAL).read_text())["decisions"]
    counts = by_name(facets_for(run=run, filters={"action": ("gradient",), "cylinder": "r"}, facets=kinds.profile(run).facets))
    cylinder = [(d.get("cell") or {}).get("cylinder") for d in decisions]
    expected = collections.Counter(d["action"] for d, c in zip(decisions, cylinder) if c == "r")
    assert {a: fv.count for a, fv in counts["action"].items() if fv.count} == expected
    cylinders = collections.Counter(c for d, c in zip(decisions, cylinder) if "GRADIENT" in d["action"])
    assert counts["cylinder"]["r"].selected and counts["cylinder"]["r"].count == cylinders.get("r", 0)


def test_action_values_toggle_into_the_repeatable_parameter(import_sample):
    run = import_sample(REAL)
    counts = by_name(facets_for(run=run, filters={"action": ("gradient_limiting", "clamp")}, facets=kinds.profile(run).facets))
    gradient = counts["action"]["GRADIENT_LIMITING"]
    assert gradient.selected and gradient.toggled == ["clamp"]
    afr = counts["action"]["AFR_CORRECTION"]
    assert not afr.selected and afr.toggled == ["gradient_limiting", "clamp", "AFR_CORRECTION"]


def test_session_facets_are_event_round_and_agent(samples_dir, import_sample):
    run = import_sample(COMBAT)
    facets = facets_for(run=run, filters={"round": 1}, facets=kinds.profile(run).facets)
    assert [f.name for f in facets][:3] == ["action", "round", "agent"]
    rounds = [fv.value for fv in by_name(facets)["round"].values()]
    assert rounds == sorted(rounds)
    assert by_name(facets)["round"][1].selected
    events = [json.loads(line) for line in (samples_dir / COMBAT).read_text().splitlines()]
    keys = ("agent_id", "player_id", "character_id", "enemy_id", "agent")
    # A character is one agent: a resolution names its actor by display name, mapped to the id
    # the log pairs with that name (character_state, action_declaration).
    ids = {e["character_name"]: e.get("character_id") or e.get("player_id") for e in events
           if e.get("character_name") and (e.get("character_id") or e.get("player_id"))}
    def actor(e):  # a per-character debrief names its character
        named = next((e[k] for k in keys if e.get(k) is not None), None)
        return e.get("character") if named is None and e["event_type"] == "mission_debrief" else named

    agents = collections.Counter(ids.get(actor(e), actor(e)) for e in events)
    assert "Drifter Sable" not in agents and agents["player_02"] > 0
    shown = {fv.value: fv.count for fv in by_name(facets_for(run=run, filters={}, facets=kinds.profile(run).facets))["agent"].values()}
    assert all(agents[a] == n for a, n in shown.items())


def test_a_study_log_has_event_and_user_facets(import_sample):
    run = import_sample(STUDY)
    facets = facets_for(run=run, filters={}, facets=kinds.profile(run).facets)
    assert [(f.name, f.label) for f in facets] == [("action", "Event"), ("agent", "User")]
    assert by_name(facets)["agent"][run.user_label].count == 1500


def test_a_selected_value_with_no_count_is_still_listed_to_remove(import_sample):
    run = import_sample(REAL)
    counts = by_name(facets_for(run=run, filters={"cylinder": "x", "action": ("NOPE",)}, facets=kinds.profile(run).facets))
    assert counts["cylinder"]["x"].selected and counts["cylinder"]["x"].count == 0
    assert counts["action"]["NOPE"].selected and counts["action"]["NOPE"].toggled == []


def test_an_action_substring_is_listed_with_what_it_finds(import_sample):
    run = import_sample(REAL)
    counts = by_name(facets_for(run=run, filters={"action": ("start",)}, facets=kinds.profile(run).facets))
    start = counts["action"]["start"]
    assert start.selected and start.substring and start.count == 3 and start.toggled == []
    assert not counts["action"]["SMOOTHING_START"].selected


def test_links_toggle_the_value_and_drop_the_cursor(import_sample):
    run = import_sample(REAL)
    query = QueryDict("action=gradient&after=40&q=cylinder")
    facets = link_facets(facets_for(run=run, filters={"action": ("gradient",), "q": "cylinder"}, facets=kinds.profile(run).facets), query)
    afr = by_name(facets)["action"]["AFR_CORRECTION"]
    assert afr.href == "?action=gradient&action=AFR_CORRECTION&q=cylinder"
    facets = link_facets(facets_for(run=run, filters={"q": "cylinder"}, facets=kinds.profile(run).facets), QueryDict("q=cylinder&after=3"))
    assert by_name(facets)["cylinder"]["f"].href == "?q=cylinder&cylinder=f"
    assert by_name(facets)["action"]["AFR_CORRECTION"].colour.startswith("#")


def test_toggle_query_removes_a_parameter():
    assert toggle_query(QueryDict("cylinder=f&rpm=2000"), "cylinder", None) == "?rpm=2000"
    assert toggle_query(QueryDict("action=a"), "action", []) == "?"


def test_session_llm_facets_count_the_calls_by_model_agent_type_and_temperature(samples_dir, import_sample):
    sample = "session/session_debt_auction_ambush.jsonl"
    run = import_sample(sample)
    events = [json.loads(line) for line in (samples_dir / sample).read_text().splitlines()]
    facets = by_name(facets_for(run=run, filters={"temperature": 0.7}, facets=kinds.profile(run).facets))
    for key in ("model", "agent_type", "temperature"):
        expected = {}
        for e in events:
            if key in e and (key == "temperature" or e.get("temperature") == 0.7):
                expected[e[key]] = expected.get(e[key], 0) + 1
        assert {v: fv.count for v, fv in facets[key].items()} == expected, key
    assert facets["temperature"][0.7].selected and not facets["temperature"][0.9].selected
    assert facets["model"]["claude-sonnet-4-5"].toggled == "claude-sonnet-4-5"


def test_the_more_values_of_a_facet_are_a_control_that_shows_them_as_links(client_in, import_sample, monkeypatch):
    from functools import partial

    from viewer import overview

    monkeypatch.setattr(overview, "facets_for", partial(facets_for, shown=3))
    run = import_sample(REAL)
    html = client_in.get(f"/runs/{run.pk}/").content.decode()
    more = html.split('<details class="facet-more">')[1].split("</details>")[0]
    assert "<summary" in more and "more values" in more
    hidden = facets_for(run=run, filters={}, facets=kinds.profile(run).facets, shown=3)[0].more
    assert hidden and all(f'href="/runs/{run.pk}/?action={fv.value}"' in more for fv in hidden)
