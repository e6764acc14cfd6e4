"""Replay readiness and the replay kit (issue 16.6), and the run page's LLM panel (16.2)."""
import json

import pytest

DEBT = "session/session_debt_auction_ambush.jsonl"
COMBAT = "session/combat_session_sample.jsonl"


def file_calls(path) -> dict:
    """Per agent, its llm_call lines' (call_sequence, model, response) in file order."""
    out = {}
    for line in path.read_text().splitlines():
        e = json.loads(line)
        if e["event_type"] == "llm_call":
            out.setdefault(e["agent_id"], []).append((e["call_sequence"], e["model"], e["response"]))
    return out


@pytest.mark.django_db
@pytest.mark.parametrize("sample", [DEBT, COMBAT])
def test_the_replay_kit_lists_every_llm_call_response_in_call_order_per_agent(
    client_in, import_sample, samples_dir, sample
):
    run = import_sample(sample)
    response = client_in.get(f"/runs/{run.pk}/replay-kit.json")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    kit = json.loads(response.content)
    assert set(kit) == {"random_seed", "version", "config", "responses"}
    got = {a: [(c["call_sequence"], c["model"], c["response"]) for c in calls] for a, calls in kit["responses"].items()}
    assert got == file_calls(samples_dir / sample)
    start = json.loads((samples_dir / sample).read_text().splitlines()[0])
    assert (kit["random_seed"], kit["version"], kit["config"]) == (start["random_seed"], start["version"], start["config"])


@pytest.mark.django_db
def test_the_kit_keeps_a_repeated_call_sequence_in_file_order_with_its_round(client_in, import_sample):
    run = import_sample(COMBAT)
    kit = client_in.get(f"/runs/{run.pk}/replay-kit.json").json()
    enemy = kit["responses"]["enemy_grunt_8e2f1533"]
    assert [(c["call_sequence"], c["round"]) for c in enemy] == [(0, 1), (0, 2)]
    assert [c["call_sequence"] for c in kit["responses"]["dm_01"]] == [0, 1, 2, 3, 4, 5]


@pytest.mark.django_db
def test_the_readiness_report_names_the_seed_version_commit_and_the_turns_without_a_logged_call(
    client_in, import_sample
):
    run = import_sample(DEBT)
    page = client_in.get(f"/runs/{run.pk}/llm/").content.decode()
    assert "1012205817" in page and "1.0.0" in page and "631860b" in page
    # The players' 15 declarations have no logged call; the DM's 20 turns (15 adjudications, 5
    # syntheses) have 21 calls (one before the first round).
    for player in ("player_01", "player_02", "player_03"):
        assert f"{player}" in page
        assert f"{player} (" in page and "5 of 5 turns have no logged LLM call" in page
    assert "1 thing missing" not in page
    assert f"/runs/{run.pk}/replay-kit.json" in page


@pytest.mark.django_db
def test_readiness_says_the_seed_is_missing_and_a_repeated_call_sequence(client_in, import_sample):
    from viewer import kinds, replay_kit

    run = import_sample(COMBAT)
    run.random_seed = None
    report = replay_kit.readiness(run=run, spec=kinds.profile(run).llm, agents=run.agents)
    assert report["missing"][0].startswith("random_seed is not logged")
    enemy = next(c for c in report["coverage"] if c["agent"] == "enemy_grunt_8e2f1533")
    assert (enemy["turns"], enemy["calls"], enemy["repeated"]) == (2, 2, ["0"])
    assert any("call_sequence 0 repeats" in m for m in report["missing"])


@pytest.mark.django_db
def test_the_session_run_page_loads_the_llm_panel_and_the_fragment_has_the_totals(client_in, import_sample):
    run = import_sample(DEBT)
    page = client_in.get(f"/runs/{run.pk}/").content.decode()
    assert f'hx-get="/runs/{run.pk}/llm/"' in page and 'id="llm-panel"' in page
    fragment = client_in.get(f"/runs/{run.pk}/llm/", headers={"HX-Request": "true", "HX-Target": "llm-panel"})
    body = fragment.content.decode()
    assert "<html" not in body and 'id="llm-panel"' in body
    assert "21,633" in body and "5,786" in body and "(estimate)" in body
    assert "derived from the log" in body and "Costliest calls" in body
    assert fragment["Vary"] and "HX-Target" in fragment["Vary"]


@pytest.mark.django_db
def test_a_run_without_llm_calls_has_no_panel_and_its_llm_pages_are_404s(client_in, import_sample):
    run = import_sample("dynoai/real_sample/session_replay.json")
    assert "llm-panel" not in client_in.get(f"/runs/{run.pk}/").content.decode()
    assert client_in.get(f"/runs/{run.pk}/llm/").status_code == 404
    assert client_in.get(f"/runs/{run.pk}/replay-kit.json").status_code == 404


@pytest.mark.django_db
def test_another_users_session_is_a_404(client, other_user, import_sample):
    run = import_sample(DEBT)
    client.force_login(other_user)
    assert client.get(f"/runs/{run.pk}/llm/").status_code == 404
    assert client.get(f"/runs/{run.pk}/replay-kit.json").status_code == 404
