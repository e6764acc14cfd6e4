"""LLM tokens and cost (issue 16.2): viewer/tokens.py and GET /api/runs/{id}/tokens."""
import json
from collections import defaultdict

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from viewer import tokens

DEBT = "session/session_debt_auction_ambush.jsonl"
COMBAT = "session/combat_session_sample.jsonl"


def own_count(path) -> dict:
    """Per agent: calls, input and output tokens, summed from the file's own llm_call lines."""
    sums = defaultdict(lambda: {"calls": 0, "input": 0, "output": 0})
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event["event_type"] == "llm_call":
            s = sums[event["agent_id"]]
            s["calls"] += 1
            s["input"] += event["tokens"]["input"]
            s["output"] += event["tokens"]["output"]
    return dict(sums)


@pytest.mark.django_db
@pytest.mark.parametrize("sample", [DEBT, COMBAT])
def test_token_totals_per_agent_equal_the_sum_of_that_agents_tokens_fields_in_the_file(
    client_in, import_sample, samples_dir, sample
):
    run = import_sample(sample)
    expected = own_count(samples_dir / sample)
    answer = client_in.get(f"/api/runs/{run.pk}/tokens").json()
    assert {a: {k: t[k] for k in ("calls", "input", "output")} for a, t in answer["by_agent"].items()} == expected
    assert answer["total"]["input"] == sum(s["input"] for s in expected.values())
    assert answer["total"]["output"] == sum(s["output"] for s in expected.values())
    assert answer["total"]["calls"] == sum(s["calls"] for s in expected.values())


@pytest.mark.django_db
def test_the_debt_auction_totals_by_model_and_round_and_the_default_cost(client_in, import_sample):
    run = import_sample(DEBT)
    answer = client_in.get(f"/api/runs/{run.pk}/tokens").json()
    assert answer["total"] == {"calls": 21, "input": 21633, "output": 5786,
                               "cost": round((21633 * 3 + 5786 * 15) / 1e6, 6)}
    assert answer["by_model"] == {"claude-sonnet-4-5": answer["total"]}
    assert list(answer["by_round"]) == ["0", "1", "2", "3", "4", "5"]
    assert [r["calls"] for r in answer["by_round"].values()] == [1, 4, 4, 4, 4, 4]
    assert sum(r["input"] for r in answer["by_round"].values()) == 21633


@pytest.mark.django_db
def test_the_run_pages_filters_apply_to_the_token_totals(client_in, import_sample):
    run = import_sample(DEBT)
    answer = client_in.get(f"/api/runs/{run.pk}/tokens?round=2&v=tokens.input>1000").json()
    assert answer["total"] == {"calls": 2, "input": 1758 + 1137, "output": 196 + 431,
                               "cost": round(((1758 + 1137) * 3 + (196 + 431) * 15) / 1e6, 6)}
    assert list(answer["by_round"]) == ["2"]


@pytest.mark.django_db
def test_a_bad_filter_is_a_400_naming_it(client_in, import_sample):
    run = import_sample(DEBT)
    response = client_in.get(f"/api/runs/{run.pk}/tokens?round_min=x")
    assert response.status_code == 400
    assert "round_min" in response.json()["detail"]


@pytest.mark.django_db
def test_a_model_without_a_price_has_a_null_cost_and_so_has_every_total_over_it(client_in, import_sample):
    run = import_sample(DEBT)
    with override_settings(REPLAYWEB_PRICES={"some-other-model": {"input": 1, "output": 2}}):
        answer = client_in.get(f"/api/runs/{run.pk}/tokens").json()
    assert answer["total"]["cost"] is None
    assert answer["by_model"]["claude-sonnet-4-5"]["cost"] is None
    assert answer["total"]["input"] == 21633


@pytest.mark.django_db
def test_a_deployments_price_table_replaces_the_default(client_in, import_sample):
    run = import_sample(DEBT)
    with override_settings(REPLAYWEB_PRICES={"claude-sonnet-4-5": {"input": 1, "output": 1}}):
        answer = client_in.get(f"/api/runs/{run.pk}/tokens").json()
    assert answer["total"]["cost"] == round((21633 + 5786) / 1e6, 6)


def test_a_price_table_from_the_environment_is_read_as_json(monkeypatch, settings):
    if hasattr(settings, "REPLAYWEB_PRICES"):
        del settings.REPLAYWEB_PRICES
    monkeypatch.setenv("REPLAYWEB_PRICES", '{"m": {"input": 2, "output": 4}}')
    assert tokens.prices() == {"m": {"input": 2, "output": 4}}
    monkeypatch.setenv("REPLAYWEB_PRICES", '{"m": {"input": "cheap"}}')
    with pytest.raises(ImproperlyConfigured, match="REPLAYWEB_PRICES: expected"):
        tokens.prices()
    monkeypatch.setenv("REPLAYWEB_PRICES", "{not json")
    with pytest.raises(ImproperlyConfigured, match="REPLAYWEB_PRICES is not JSON"):
        tokens.prices()


@pytest.mark.django_db
def test_a_run_without_llm_calls_answers_zeros(client_in, import_sample):
    run = import_sample("dynoai/real_sample/session_replay.json")
    answer = client_in.get(f"/api/runs/{run.pk}/tokens").json()
    assert answer == {"total": {"calls": 0, "input": 0, "output": 0, "cost": 0.0},
                      "by_agent": {}, "by_model": {}, "by_round": {}}


@pytest.mark.django_db
def test_another_users_run_is_a_404(client, other_user, import_sample):
    run = import_sample(DEBT)
    client.force_login(other_user)
    assert client.get(f"/api/runs/{run.pk}/tokens").status_code == 404


@pytest.mark.django_db
def test_the_slowest_calls_wait_from_the_event_that_asked_not_from_what_the_call_logged(import_sample):
    from viewer import kinds

    run = import_sample(DEBT)
    found = tokens.panel(run=run, spec=kinds.profile(run).llm)
    slowest = found["slowest"][0]
    # Line 41's call (dm_01 #7) was logged 1 min 33 s after line 40's adjudication_start; the
    # structured_output_metrics lines logged with a call's answer are not what asked for it.
    assert (slowest["seq"], slowest["call_sequence"], slowest["wait"]) == (40, 7, "1 min 33 s")
    assert [r["wait"] for r in found["slowest"][1:]] == ["1 min 01 s", "59.9 s", "57.8 s", "57.7 s"]
    assert found["costliest"][0]["seq"] == 1  # the setup call: 2,821 in, 546 out


@pytest.mark.parametrize("model, price", [
    ("claude-sonnet-4-5", 3.0),
    ("claude-sonnet-4-5-20250929", 3.0),  # a dated snapshot: priced as its model
    ("claude-sonnet-4-20250514", 3.0),
    ("claude-sonnet-4-5-latest", None),
    ("claude-sonnet", None),
    ("gpt-4o", None),
])
def test_a_dated_snapshot_of_a_model_has_the_models_price(model, price):
    found = tokens.price_of(model, tokens.DEFAULT_PRICES)
    assert (found and found["input"]) == price


@pytest.mark.django_db
def test_calls_without_an_agent_are_counted_but_not_linked_to_a_filter_that_finds_nothing(client_in, user, tmp_path):
    from viewer.ingest import Source, run_ingest

    lines = [
        {"event_type": "session_start", "ts": "2026-01-01T10:00:00", "session": "s1", "config": {}, "version": "1.2.0"},
        {"event_type": "llm_call", "ts": "2026-01-01T10:00:01", "session": "s1", "round": 1, "agent_id": "dm_01",
         "model": "m", "prompt": [], "response": "ok", "tokens": {"input": 5, "output": 2}},
        {"event_type": "llm_call", "ts": "2026-01-01T10:00:02", "session": "s1", "round": 1,
         "model": "m", "prompt": [], "response": "ok", "tokens": {"input": 7, "output": 3}},
    ]
    path = tmp_path / "session_s1.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    [result] = run_ingest(owner=user, sources=[Source(path.name, path=path)])
    totals = client_in.get(f"/api/runs/{result.run.pk}/tokens").json()
    assert totals["by_agent"][tokens.NO_AGENT]["input"] == 7
    page = client_in.get(f"/runs/{result.run.pk}/llm/").content.decode()
    assert f"agent={tokens.NO_AGENT}" not in page and "agent=dm_01" in page


@pytest.mark.django_db
def test_the_costliest_calls_are_the_files_own_top_five_by_price_each_linking_its_decision(
    client_in, import_sample, samples_dir
):
    run = import_sample(DEBT)
    events = [json.loads(line) for line in (samples_dir / DEBT).read_text().splitlines()]
    price = tokens.DEFAULT_PRICES["claude-sonnet-4-5"]
    costs = [
        (-(e["tokens"]["input"] * price["input"] + e["tokens"]["output"] * price["output"]) / 1e6, seq)
        for seq, e in enumerate(events) if e["event_type"] == "llm_call"
    ]
    assert {e["model"] for e in events if e["event_type"] == "llm_call"} == {"claude-sonnet-4-5"}
    top = [seq for _, seq in sorted(costs)[: tokens.TOP]]
    response = client_in.get(f"/runs/{run.pk}/llm/")
    assert [r["seq"] for r in response.context["llm"]["costliest"]] == top
    html = response.content.decode()
    table = html[html.index('class="llm-table llm-costliest"') :]
    for seq in top:
        assert f'<a href="/runs/{run.pk}/decisions/{seq}/">{seq}</a>' in table
