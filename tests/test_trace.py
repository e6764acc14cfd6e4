"""The trace (issue 16.1): viewer/trace.py, its spec in viewer/kinds/session.py, and /runs/<id>/trace/."""
import json

import pytest

from viewer import kinds, trace
from viewer.kinds.session import TRACE

DEBT = "session/session_debt_auction_ambush.jsonl"
COMBAT = "session/combat_session_sample.jsonl"


def own_rounds(path) -> list[dict]:
    """Per round, counted from the file's own lines: the declaring agents in order, the adjudications,
    the synthesis lines and the llm_call lines between its round_start and the next."""
    rounds = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        kind = event["event_type"]
        if kind == "round_start":
            rounds.append({"declared": [], "adjudications": 0, "syntheses": 0, "calls": 0})
        elif not rounds or kind in ("mission_debrief", "session_end"):
            continue
        elif kind == "action_declaration":
            rounds[-1]["declared"].append(event["player_id"])
        elif kind == "adjudication_start":
            rounds[-1]["adjudications"] += 1
        elif kind == "round_synthesis":
            rounds[-1]["syntheses"] += 1
        elif kind == "llm_call":
            rounds[-1]["calls"] += 1
    return rounds


def turns(node, label):
    return [n for n in node.children if n.role == "turn" and n.label.startswith(label)]


@pytest.mark.django_db
def test_the_debt_auction_trace_has_five_rounds_with_each_agents_turns_and_calls(import_sample, samples_dir):
    run = import_sample(DEBT)
    expected = own_rounds(samples_dir / DEBT)
    assert len(expected) == 5
    built = trace.build(run=run, spec=TRACE)
    rounds = [r for r in built.rounds if r.label.startswith("Round")]
    assert [r.label for r in rounds] == [f"Round {n}" for n in range(1, 6)]
    for node, own in zip(rounds, expected):
        assert [t.agent for t in turns(node, "declaration")] == own["declared"]
        adjudications = turns(node, "adjudication")
        assert len(adjudications) == own["adjudications"] == 3
        assert len(turns(node, "synthesis")) == own["syntheses"] == 1
        # every call of the round is a generation under a DM turn, one per adjudication and synthesis
        assert len(node.calls) == own["calls"] == 4
        assert all(len(t.calls) == 1 and t.agent == "dm_01" for t in adjudications + turns(node, "synthesis"))
        assert not turns(node, "call")  # no call left without its turn


@pytest.mark.django_db
def test_the_call_before_the_scenario_is_the_scenarios_and_the_end_holds_the_debriefs(import_sample):
    built = trace.build(run=import_sample(DEBT), spec=TRACE)
    setup, end = built.rounds[0], built.rounds[-1]
    assert setup.label == trace.SETUP and [t.label for t in turns(setup, "")] == ["scenario"]
    assert [c.seq for c in setup.calls] == [1]
    assert end.label == trace.END
    assert [n.action for n in end.children] == ["mission_debrief"] * 3 + ["session_end"]


@pytest.mark.django_db
def test_an_enemys_call_logged_before_its_declaration_is_that_turns_enemy_tactics(import_sample):
    built = trace.build(run=import_sample(COMBAT), spec=TRACE)
    for node in built.rounds[1:3]:
        tactics = turns(node, "enemy tactics")
        assert len(tactics) == 1 and tactics[0].agent == "enemy_grunt_8e2f1533"
        assert tactics[0].children[-1].action == "action_declaration"  # the call, then what it decided
        assert [c.agent_type for c in tactics[0].calls] == ["enemy"]


@pytest.mark.django_db
def test_a_calls_wait_runs_from_the_event_before_it_and_the_slowest_stands_out(import_sample):
    built = trace.build(run=import_sample(DEBT), spec=TRACE)
    call = built.nodes[40]  # the DM's call after adjudication_start #39, the slowest in the file
    assert call.role == "call" and call.parent.label == "adjudication"
    assert call.parent.subject == "player_02"  # Ash Vex, whose action it adjudicated
    assert call.wait == "1 min 33 s" and call.slow
    assert [c.seq for c in built.calls if c.slow] == [40]


def test_a_call_nothing_claims_stays_a_turn_of_its_own():
    rows = [
        (0, "round_start", None, 1, 0.0, "", None, None, None, None),
        (1, "llm_call", "npc_7", 1, 5.0, "hello", "m", "10", "2", "npc"),
        (2, "round_summary", None, 1, 6.0, "", None, None, None, None),
    ]
    built = trace.assemble(rows, spec=TRACE)
    (lone,) = turns(built.rounds[0], "call")
    assert lone.agent == "npc_7" and lone.calls[0].input == 10 and lone.calls[0].wait_ms == 5.0


def test_selecting_a_node_opens_its_ancestors_and_an_unknown_node_selects_nothing():
    rows = [(0, "round_start", None, 1, 0.0, "", None, None, None, None),
            (1, "adjudication_start", None, 1, 1.0, "", None, None, None, None),
            (2, "llm_call", "dm_01", 1, 3.0, "", "m", "1", "1", "dm")]
    built = trace.assemble(rows, spec=TRACE)
    assert built.select(99) is None
    call = built.select(2)
    assert call.selected and call.parent.open and call.parent.parent.open


def test_the_lanes_draw_each_call_as_a_span_on_its_agents_lane_linking_to_its_node():
    rows = [(0, "round_start", None, 1, 0.0, "", None, None, None, None),
            (1, "adjudication_start", None, 1, 1000.0, "", None, None, None, None),
            (2, "llm_call", "dm_01", 1, 4000.0, "", "<b>m</b>", "7", "3", "dm")]
    figure = trace.lanes_figure(trace.assemble(rows, spec=TRACE), link="/runs/1/trace/?node=")
    (bars,) = figure["data"]
    assert bars["base"] == [1000.0] and bars["x"] == [3000.0] and bars["y"] == ["dm_01"]
    assert bars["customdata"] == ["/runs/1/trace/?node=2"]
    assert "&lt;b&gt;m&lt;/b&gt;" in bars["text"][0] and "7 in · 3 out" in bars["text"][0]


@pytest.mark.django_db
def test_the_session_profile_offers_a_trace_and_the_dynoai_profile_none():
    assert kinds.profile("session").trace is TRACE
    assert kinds.profile("dynoai").trace is None


@pytest.mark.django_db
def test_the_trace_page_shows_the_tree_the_lanes_and_the_selected_calls_decision(client_in, import_sample):
    run = import_sample(DEBT)
    page = client_in.get(f"/runs/{run.pk}/trace/?node=40").content.decode()
    assert page.count('<details class="trace-round"') == 7  # setup, 5 rounds, end
    assert page.count('<details class="trace-round" open') == 1  # the selected call's round
    assert 'id="trace-lanes-data"' in page and "derived from the log" in page
    assert f'href="/runs/{run.pk}/decisions/40/"' in page and "claude-sonnet-4-5" in page
    assert 'aria-current="true"' in page and f'href="/runs/{run.pk}/trace/" aria-current="page"' in page


@pytest.mark.django_db
def test_the_panel_alone_is_the_htmx_fragment(client_in, import_sample):
    run = import_sample(DEBT)
    answer = client_in.get(f"/runs/{run.pk}/trace/?node=20", headers={"HX-Request": "true", "HX-Target": "trace-panel"})
    body = answer.content.decode()
    assert body.lstrip().startswith('<aside id="trace-panel"') and "synthesis" in body
    assert "HX-Target" in answer["Vary"]


@pytest.mark.django_db
@pytest.mark.parametrize("node", ["x", "-1", "99999", "1e9", "9" * 40])
def test_a_bad_node_selects_nothing_and_says_so(client_in, import_sample, node):
    run = import_sample(DEBT)
    answer = client_in.get(f"/runs/{run.pk}/trace/", {"node": node})
    assert answer.status_code == 200 and "No node" in answer.content.decode()


@pytest.mark.django_db
def test_a_run_of_a_kind_without_a_trace_is_a_404_and_its_nav_has_no_trace_link(client_in, import_sample):
    run = import_sample("dynoai/real_sample/session_replay.json")
    assert client_in.get(f"/runs/{run.pk}/trace/").status_code == 404
    assert "/trace/" not in client_in.get(f"/runs/{run.pk}/").content.decode()
