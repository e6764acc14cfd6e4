"""A session's state over time (viewer/kinds/session_state.py, viewer/state.py, /runs/<id>/state/)."""
import json
import re

import pytest

from viewer import kinds, state

pytestmark = pytest.mark.django_db

AMBUSH = "session/session_debt_auction_ambush.jsonl"
DATA = re.compile(r'<script id="state-data" type="application/json">(.*?)</script>', re.S)


def lines(samples_dir):
    return [json.loads(line) for line in (samples_dir / AMBUSH).read_text().splitlines()]


def quantity(series, key):
    return next(q for q in series.quantities if q.key == key)


def test_a_characters_health_per_round_is_what_its_character_state_lines_say(samples_dir, import_sample):
    run = import_sample(AMBUSH)
    series = state.state_series(run, kinds.profile(run).state)
    states = [(i, e["round"], e["health"]) for i, e in enumerate(lines(samples_dir))
              if e["event_type"] == "character_state" and e["character_id"] == "player_02"]
    name = next(e["character_name"] for e in lines(samples_dir) if e.get("character_id") == "player_02")
    assert [(seq, r, y) for seq, r, y, _ in quantity(series, "health").lines[name].points] == states
    assert len(states) == 5  # one a round


def test_void_moves_with_each_resolutions_economy_and_then_with_the_next_state(samples_dir, import_sample):
    run = import_sample(AMBUSH)
    series = state.state_series(run, kinds.profile(run).state)
    events = lines(samples_dir)
    vale = "Recursionist Vale"
    expected, last = [], None
    for i, e in enumerate(events):
        if e["event_type"] == "character_state" and e["character_name"] == vale:
            last = e["void_score"]
            expected.append((i, last))
        elif e["event_type"] == "action_resolution" and e["agent"] == vale and e["economy"]["void_delta"] and last is not None:
            last += e["economy"]["void_delta"]
            expected.append((i, last))
    assert [(seq, y) for seq, _, y, _ in quantity(series, "void").lines[vale].points] == expected
    assert any("by a resolution" in note for *_, note in quantity(series, "void").lines[vale].points)


def test_clocks_follow_the_resolutions_and_a_spawned_clock_starts_at_zero(samples_dir, import_sample):
    run = import_sample(AMBUSH)
    clocks = quantity(state.state_series(run, kinds.profile(run).state), "clocks").lines
    events = lines(samples_dir)
    registry = [(i, int(e["clocks"]["Registry Preservation"].split("/")[0])) for i, e in enumerate(events)
                if e["event_type"] == "action_resolution" and "Registry Preservation" in e["clocks"]]
    assert [(seq, y) for seq, _, y, _ in clocks["Registry Preservation"].points] == registry
    spawn = next(i for i, e in enumerate(events) if e.get("clock_name") == "Vault Access")
    assert clocks["Vault Access"].points[0][:3] == (spawn, None, 0) or clocks["Vault Access"].points[0][0] == spawn


def test_the_round_marks_are_the_round_starts(samples_dir, import_sample):
    run = import_sample(AMBUSH)
    series = state.state_series(run, kinds.profile(run).state)
    assert series.rounds == [(i, e["round"]) for i, e in enumerate(lines(samples_dir)) if e["event_type"] == "round_start"]


def test_enemies_health_follows_spawn_hits_and_defeat(user):
    from pathlib import Path

    from viewer.ingest import Source, run_ingest

    path = Path(__file__).parent / "data" / "session_v12_replay_state.jsonl"
    run = run_ingest(owner=user, sources=[Source(name=path.name, path=path, group="test")])[0].run
    enemies = quantity(state.state_series(run, kinds.profile(run).state), "enemies").lines
    events = [json.loads(line) for line in path.read_text().splitlines()]
    spawned = [e["enemy_name"] for e in events if e["event_type"] == "enemy_spawn"]
    assert set(spawned) <= set(enemies)
    first = next(e for e in events if e["event_type"] == "enemy_spawn")
    assert enemies[first["enemy_name"]].points[0][2] == first["stats"]["health"]


def test_the_state_page_embeds_a_figure_per_quantity_whose_points_are_decisions(client_in, import_sample):
    run = import_sample(AMBUSH)
    page = client_in.get(f"/runs/{run.pk}/state/")
    assert page.status_code == 200
    text = page.content.decode()
    assert f'href="/runs/{run.pk}/state/" aria-current="page">State</a>' in text
    figures = json.loads(DATA.search(text).group(1))
    assert {"health", "void", "soulcredit", "clocks"} <= set(figures)
    for fig in figures.values():
        for trace in fig["data"]:
            assert trace["customdata"] == trace["x"]
        assert fig["layout"]["xaxis"]["ticktext"][:2] == ["R1", "R2"]
    assert "<script>" not in text.split("<body", 1)[1].replace('<script src=', '').replace('type="application/json"', '')


def test_a_kind_without_state_has_no_state_page_nor_link(client_in, import_sample):
    run = import_sample("dynoai/real_sample/session_replay.json")
    assert client_in.get(f"/runs/{run.pk}/state/").status_code == 404
    assert f"/runs/{run.pk}/state/" not in client_in.get(f"/runs/{run.pk}/").content.decode()


def test_a_hostile_name_stays_inert_in_the_figures():
    from viewer.state import Quantity, StateSeries, figures

    q = Quantity("health", "Health")
    q.add("<img src=x onerror=alert(1)>", 3, 1, 5, "<b>x</b>")
    fig = figures(StateSeries([q], [(0, 1)]))[0]["figure"]
    assert fig["data"][0]["name"] == "&lt;img src=x onerror=alert(1)&gt;"
    assert "<b>" not in fig["data"][0]["text"][0]
