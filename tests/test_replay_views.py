"""/runs/<id>/replay/ (page, htmx fragment, frames JSON), its stored checkpoints, the round export
and GET /api/runs/{id}/replay."""
import datetime as dt
import json
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from viewer import kinds
from viewer import replay as R
from viewer import replay_store as V
from viewer.forms import parse_time
from viewer.kinds.session import CHARACTER_FIELDS
from viewer.models import ReplayCheckpoint, ReplayIndex
from viewer.selectors import filtered_decisions
from viewer.text import clock, duration

SESSION = "session/session_debt_auction_ambush.jsonl"
DYNO = "dynoai/real_sample/session_replay.json"
HX = {"HX-Request": "true", "HX-Target": "replay-main"}  # as htmx sends it: the target's id


def page_url(run, **params):
    return reverse("run-replay", args=[run.pk]) + ("?" + urlencode(params, doseq=True) if params else "")


def frames_url(run, **params):
    return reverse("run-replay-frames", args=[run.pk]) + "?" + urlencode(params, doseq=True)


@pytest.fixture
def session_run(import_sample):
    return import_sample(SESSION)


@pytest.fixture
def dyno_run(import_sample):
    return import_sample(DYNO)


@pytest.fixture
def small_checkpoints(settings):
    settings.REPLAYWEB_REPLAY_EVERY = 10


def session_events(samples_dir):
    return [json.loads(line) for line in (samples_dir / SESSION).read_text().splitlines()]


def current_row(content: str) -> str:
    rows = re.findall(r'<li class="row current[^"]*" data-step="(\d+)"', content)
    assert len(rows) == 1, rows
    return rows[0]


def test_the_page_opens_at_the_step_in_the_url(client_in, session_run):
    response = client_in.get(page_url(session_run, step=50))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Step 50 of 123" in content
    assert current_row(content) == "50"
    assert f'href="{page_url(session_run, step=49)}" data-step="49"' in content
    assert f'href="{page_url(session_run, step=51)}" data-step="51"' in content
    assert f'href="{page_url(session_run, step=0)}" data-step="0"' in content
    assert f'href="{page_url(session_run, step=123)}" data-step="123"' in content
    assert response.context["state"]["round"] == 3


def test_a_step_beyond_the_end_shows_the_last_step(client_in, session_run):
    response = client_in.get(page_url(session_run, step=9999))
    assert response.context["step"] == 123
    assert "Step 123 of 123" in response.content.decode()


def test_the_page_shows_the_party_enemies_clocks_and_llm_use(client_in, session_run, samples_dir):
    content = client_in.get(page_url(session_run, step=123)).content.decode()
    last = {}
    for e in session_events(samples_dir):
        if e["event_type"] == "character_state":
            last[e["character_id"]] = e
    for c in last.values():
        assert c["character_name"] in content
        assert f'{c["health"]}/{c["max_health"]}' in content
    assert "Vault Access" in content and "5/6" in content
    assert "dm_01" in content
    assert "Enemies present" in content



# Our small v1.2 file (tests/test_replay.py reads it line by line): step 10 is the thug's character_state,
# 13 fills "Escape", 14 removes "Alarm", 16 turns the thug into an NPC, 17 kills the boss, 18 sees the
# porter leave and 19 knocks Mara out.
V12_STATE = Path(__file__).parent / "data" / "session_v12_replay_state.jsonl"


@pytest.fixture
def v12_run(import_sample):
    return import_sample(str(V12_STATE))


def state_html(client, run, step) -> str:
    content = client.get(page_url(run, step=step)).content.decode()
    return content[content.index('id="replay-state"'):]


def table(html: str, css: str) -> str:
    start = html.index(f'<table class="{css}">')
    return html[start:html.index("</table>", start)]


def test_an_enemys_state_shows_in_the_enemy_panel_and_not_in_the_party(client_in, v12_run):
    html = state_html(client_in, v12_run, 10)
    assert "Dock Thug" not in table(html, "party")
    enemies = table(html, "enemies")
    thug = enemies[enemies.index("Dock Thug"):]
    thug = thug[:thug.index("</tr>")]
    assert "7/20" in thug and "2 wounds" in thug and "1 stun" in thug and "Off-Balance" in thug
    assert "20/20" not in thug  # the spawn's health is gone
    assert "Dock Boss" in enemies and "40/40" in enemies


def test_the_party_shows_death_state_stuns_energy_and_seeds(client_in, v12_run):
    alive = table(state_html(client_in, v12_run, 9), "party")
    assert "2 stuns" in alive and "drip 6" in alive and "raw seed 1" in alive and "spark" not in alive
    assert 'class="death"' not in alive  # "alive" is no news
    out = table(state_html(client_in, v12_run, 19), "party")
    assert '<span class="death">unconscious</span>' in out and "6 stuns" in out
    assert "drip 2" in out and "attuned seed 1" in out and "raw seed" not in out
    assert 'class="defeated"' in out


def test_a_removed_clock_leaves_the_clocks_and_is_listed_as_removed(client_in, v12_run):
    before = state_html(client_in, v12_run, 13)
    assert '<span class="name">Alarm</span>' in before and "<del>Alarm</del>" not in before
    assert '<span class="filled" title="The party can leave">filled</span>' in before
    after = state_html(client_in, v12_run, 14)
    assert '<span class="name">Alarm</span>' not in after
    assert '<del>Alarm</del><span class="muted small"> removed: story_advancement</span>' in after
    assert '<span class="name">Escape</span>' in after


def test_converted_departed_and_killed_agents_show_as_of_their_step(client_in, v12_run):
    html = state_html(client_in, v12_run, 15)
    assert "Dock Thug" in table(html, "enemies") and "Porter Ennis" not in html
    html = state_html(client_in, v12_run, 18)
    assert '<h3>Enemies present</h3><p class="muted">None.</p>' in html
    npcs = table(html, "enemies npcs")
    assert "Dock Thug" in npcs and "was enemy · surrender" in npcs and "7/20" in npcs
    assert "Changed sides: Dock Thug: enemy → npc (surrender)" in html
    assert "Departed: Porter Ennis (fled, round 2)" in html and "npc_porter_01" not in npcs
    assert "Gone: Dock Boss (killed by Mara Quill, 11 damage)" in html
    agents = table(html, "agents")
    assert re.search(r"<th scope=\"row\">enemy_grunt_0000aaaa</th><td>npc</td>", agents)


def test_links_keep_the_filters_and_the_replay_steps_through_matching_decisions_only(client_in, session_run):
    response = client_in.get(page_url(session_run, action="action_resolution", step=3))
    assert response.context["total"] == 15
    content = response.content.decode()
    assert f'href="{escape(page_url(session_run, action="action_resolution", step=4))}"' in content
    assert response.context["state"]["counts"] == {"action_resolution": 3}


def test_replaying_gradient_limiting_only_steps_through_those(client_in, dyno_run, samples_dir):
    gradients = [d for d in json.loads((samples_dir / DYNO).read_text())["decisions"]
                 if d["action"] == "GRADIENT_LIMITING"]
    response = client_in.get(page_url(dyno_run, action="gradient", step=len(gradients)))
    assert response.context["total"] == len(gradients)
    state = response.context["state"]
    assert state["counts"] == {"GRADIENT_LIMITING": len(gradients)}
    assert state["stage"] == "smoothing"
    assert all("afr_error_pct" not in c for c in state["cells"].values())


def test_a_dynoai_page_embeds_the_heatmap_data(client_in, dyno_run):
    response = client_in.get(page_url(dyno_run, step=119))
    content = response.content.decode()
    assert 'id="replay-grid"' in content and 'id="replay-heatmap"' in content
    assert "plotly-2.35.3.min.js" in content
    grid = response.context["grid"]
    assert sum(v is not None for row in grid["z"]["afr_error_pct"] for v in row) == 18


def test_an_htmx_request_gets_only_the_player_fragment(client_in, session_run):
    response = client_in.get(page_url(session_run, step=7), headers=HX)
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<div id="replay-main">')
    assert "<html" not in content
    assert current_row(content) == "7"
    assert "HX-Request" in response["Vary"]


def test_a_bad_step_is_an_error_on_the_page_and_a_400_naming_it_on_the_fragment(client_in, session_run):
    response = client_in.get(page_url(session_run, step="x"))
    assert response.status_code == 400
    assert "step: Enter a whole number." in response.content.decode()
    response = client_in.get(page_url(session_run, step=-1), headers=HX)
    assert response.status_code == 400 and response.content.decode().startswith("step:")
    response = client_in.get(page_url(session_run, t="soon"), headers=HX)
    assert response.status_code == 400 and response.content.decode().startswith("t:")


def test_a_bad_filter_is_a_400_naming_it_on_the_fragment(client_in, session_run):
    response = client_in.get(page_url(session_run, round_min="three"), headers=HX)
    assert response.status_code == 400
    assert response.content.decode().startswith("round_min:")
    response = client_in.get(page_url(session_run, round_min="three"))
    assert response.status_code == 400 and "round_min" in response.content.decode()


def test_another_users_run_is_a_404(client_in, import_sample, other_user):
    theirs = import_sample(SESSION, owner=other_user)
    assert client_in.get(page_url(theirs)).status_code == 404
    assert client_in.get(frames_url(theirs, start=0)).status_code == 404
    assert client_in.get(f"/api/runs/{theirs.pk}/replay?step=3").status_code == 404


def test_stepping_the_imported_session_to_its_end_gives_its_last_character_states(session_run, samples_dir):
    expected = {}
    for e in session_events(samples_dir):
        if e["event_type"] == "character_state":
            expected[e["character_id"]] = {k: e[k] for k in CHARACTER_FIELDS}
    found = V.replay_state(session_run, {}, step=123)
    assert found["state"]["characters"] == expected
    assert found["decision"]["action"] == "session_end"


def test_every_stored_jump_equals_stepping_from_the_start(session_run, small_checkpoints):
    decisions = list(V.as_dicts(filtered_decisions(run=session_run)))
    reducer = R.reducer_for(kinds.profile("session").replay)
    stepped = reducer.initial()
    for n in range(len(decisions) + 1):
        if n:
            reducer.fold(stepped, decisions[n - 1])
        found = V.replay_state(session_run, {}, step=n)
        assert found["state"] == R.copy_state(stepped), n
    index = ReplayIndex.objects.get(run=session_run)
    steps = ReplayCheckpoint.objects.filter(index=index).values_list("step", flat=True).order_by("step")
    assert list(steps) == list(range(0, 121, 10))


def test_a_jump_reads_one_checkpoint_and_at_most_every_decisions(session_run, small_checkpoints):
    V.replay_state(session_run, {}, step=0)  # builds the index
    with CaptureQueriesContext(connection) as queries:
        found = V.replay_state(session_run, {}, step=57)
    assert found["step"] == 57
    decision_reads = [q["sql"] for q in queries if "viewer_decision" in q["sql"]]
    assert len(decision_reads) == 1
    limit = int(re.search(r"LIMIT (\d+)", decision_reads[0]).group(1))
    assert limit <= 10
    assert sum("viewer_replaycheckpoint" in q["sql"] for q in queries) == 1


def test_an_index_is_built_once_per_run_and_filters(session_run):
    V.replay_state(session_run, {}, step=5)
    V.replay_state(session_run, {}, step=50)
    V.replay_state(session_run, {"action": ("llm",)}, step=5)
    assert ReplayIndex.objects.filter(run=session_run).count() == 2


def test_a_run_keeps_the_checkpoints_of_its_newest_filter_sets_only(session_run, monkeypatch):
    monkeypatch.setattr(V, "MAX_INDEXES_PER_RUN", 3)
    for agent in ("player_01", "player_02", "player_03", "dm_01", "nobody"):
        V.replay_state(session_run, {"agent": agent}, step=1)
    kept = ReplayIndex.objects.filter(run=session_run)
    assert kept.count() == 3
    assert kept.filter(key=V.filter_key({"agent": "nobody"}, R.CHECKPOINT_EVERY)).exists()


def test_frames_give_the_state_and_row_at_each_stride(client_in, session_run):
    response = client_in.get(frames_url(session_run, start=10, count=3, stride=5))
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 123
    assert [f["step"] for f in body["frames"]] == [10, 15, 20]
    for f in body["frames"]:
        assert f["state"].startswith('<div id="replay-state"')
        assert f'data-step="{f["step"]}"' in f["row"]
        assert f["href"] == page_url(session_run, step=f["step"])
    assert body["frames"][0]["round"] == 1


def test_frames_by_time_start_before_the_step_at_that_time(client_in, session_run):
    decisions = list(V.as_dicts(filtered_decisions(run=session_run)))
    t = decisions[29]["t_ms"]
    body = client_in.get(frames_url(session_run, t=f"{t}ms", back=4, count=10)).json()
    expected = max(i + 1 for i in range(len(decisions)) if max(d["t_ms"] for d in decisions[: i + 1]) <= t)
    assert body["at"] == expected
    assert body["frames"][0]["step"] == expected - 4


def test_dynoai_frames_carry_the_heatmap(client_in, dyno_run):
    body = client_in.get(frames_url(dyno_run, start=100, count=2)).json()
    grid = body["frames"][0]["grid"]
    assert set(grid["z"]) == {key for key, _, _ in kinds.profile("dynoai").replay.layers}
    assert grid["rows"][0] == "1500"


def test_frames_reject_bad_parameters_with_a_400_naming_them(client_in, session_run):
    for params, name in (({"start": "x"}, "start"), ({"start": 0, "count": 0}, "count"),
                         ({"start": 0, "stride": -2}, "stride"), ({"start": 0, "rpm": "fast"}, "rpm")):
        response = client_in.get(frames_url(session_run, **params))
        assert response.status_code == 400
        assert response.json()["detail"].startswith(name + ":")


def test_a_jump_by_time_opens_at_the_last_step_at_or_before_it(client_in, session_run):
    decisions = list(V.as_dicts(filtered_decisions(run=session_run)))
    t = decisions[60]["t_ms"]
    response = client_in.get(page_url(session_run, t=f"{t / 1000}s"))
    expected = max(i + 1 for i in range(len(decisions))
                   if max(d["t_ms"] for d in decisions[: i + 1]) <= t + 1e-6)
    assert response.context["step"] == expected


@pytest.mark.parametrize("text,ms", [("1:02.5", 62500), ("12s", 12000), ("800ms", 800), ("250", 250),
                                     ("1:00:00", 3_600_000)])
def test_times_are_read_in_several_spellings(text, ms):
    assert parse_time(text) == pytest.approx(ms)


def test_the_replay_page_offers_the_export_to_the_current_round(client_in, session_run):
    content = client_in.get(page_url(session_run, step=60)).content.decode()
    export = reverse("run-export", args=[session_run.pk, "jsonl"])
    assert f'action="{export}"' in content
    assert re.search(r'name="round_max" min="0" value="3"', content)


def test_the_jsonl_export_to_round_3_gives_the_real_sessions_lines_before_round_4(
        client_in, session_run, samples_dir):
    raw = (samples_dir / SESSION).read_bytes()
    lines = raw.splitlines(keepends=True)
    round_4 = next(i for i, line in enumerate(lines)
                   if json.loads(line)["event_type"] == "round_start" and json.loads(line)["round"] == 4)
    response = client_in.get(reverse("run-export", args=[session_run.pk, "jsonl"]) + "?round_max=3")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"".join(lines[:round_4])
    assert f"session_{session_run.session_id}_replay.jsonl" in response["Content-Disposition"]


def test_the_api_gives_the_state_of_the_page(client_in, session_run):
    response = client_in.get(f"/api/runs/{session_run.pk}/replay?step=40")
    assert response.status_code == 200
    body = response.json()
    page = client_in.get(page_url(session_run, step=40))
    assert body["step"] == 40 and body["total"] == 123
    assert body["state"] == page.context["state"]
    assert body["decision"]["seq"] == 39
    filtered = client_in.get(f"/api/runs/{session_run.pk}/replay?step=2&action=character_state").json()
    assert filtered["total"] == 15 and filtered["state"]["counts"] == {"character_state": 2}
    assert client_in.get(f"/api/runs/{session_run.pk}/replay?step=x").status_code == 400
    assert client_in.get(f"/api/runs/{session_run.pk}/replay?t=later").status_code == 400


def test_hostile_strings_stay_inert_in_the_page_and_the_frames(client_in, import_sample):
    for relpath in ("hostile/xss_session.jsonl", "hostile/xss_session_replay.json"):
        run = import_sample(relpath)
        total = run.decision_count
        content = client_in.get(page_url(run, step=total)).content.decode()
        assert "<script>alert" not in content and "<img src=x" not in content
        body = client_in.get(frames_url(run, start=max(0, total - 5), count=6)).content.decode()
        assert "<script>alert" not in body and "<img src=x" not in body
        for frame in json.loads(body)["frames"]:
            for row in frame.get("grid", {}).get("text", []):
                assert not any("<script" in cell for cell in row)


def test_a_run_with_no_decisions_has_nothing_to_replay(client_in, import_sample, samples_dir):
    path = next(p for p in sorted((samples_dir / "study").iterdir()) if "GUEST" in p.name)
    run = import_sample(path.relative_to(samples_dir))
    assert "nothing to replay" in client_in.get(page_url(run)).content.decode()


class Queue:
    """Stands in for the replay queue: keeps what get_index enqueues until the test runs it, as a
    worker would."""

    def __init__(self, task):
        self.task = task
        self.waiting: list[tuple] = []
        self.queued = 0

    def enqueue(self, *args):
        self.waiting.append(args)
        self.queued += 1

    def work(self, n: int | None = None) -> list[str]:
        """Run the first n waiting tasks (all by default); their results."""
        done, self.waiting = self.waiting[:n], self.waiting[len(self.waiting[:n]):]
        return [self.task.call(*args) for args in done]


@pytest.fixture
def queue(settings, monkeypatch):
    """Every run is big enough to be prepared in the background, by a worker the test plays."""
    settings.REPLAYWEB_REPLAY_SYNC_MAX = 10
    q = Queue(V.build_replay_index)
    monkeypatch.setattr(V, "build_replay_index", q)
    return q


def test_a_big_run_is_prepared_in_the_background_while_the_page_shows_progress(client_in, session_run, queue):
    content = client_in.get(page_url(session_run, step=5)).content.decode()
    assert "Preparing the replay" in content
    assert f'hx-get="{escape(page_url(session_run, step=5))}"' in content
    assert client_in.get(frames_url(session_run, start=0)).status_code == 202
    assert queue.queued == 1  # the frames asked for the same index: queued once
    assert queue.work() == ["ready"]
    response = client_in.get(page_url(session_run, step=5), headers=HX)
    assert current_row(response.content.decode()) == "5"
    assert queue.queued == 1


def test_a_big_runs_replay_is_built_by_the_replay_task_with_its_filters(client_in, session_run, settings):
    settings.REPLAYWEB_REPLAY_SYNC_MAX = 10  # the test backend runs the task inside enqueue()
    response = client_in.get(page_url(session_run, action="llm", step=2))
    assert response.context["step"] == 2
    index = ReplayIndex.objects.get(run=session_run)
    assert index.status == ReplayIndex.Status.READY
    assert index.total == filtered_decisions(run=session_run, action=("llm",)).count()


def test_a_user_prepares_two_replays_at_a_time_and_a_third_waits_for_a_slot(client_in, session_run, queue):
    for agent in ("player_01", "player_02"):
        assert "Preparing the replay" in client_in.get(page_url(session_run, agent=agent)).content.decode()
    third = page_url(session_run, agent="dm_01")
    content = client_in.get(third).content.decode()
    assert "Waiting to prepare the replay of 123 decisions: 2 of your replays are being prepared" in content
    assert f'hx-get="{escape(third)}"' in content  # the page asks again by itself
    assert client_in.get(frames_url(session_run, agent="dm_01", start=0)).json()["status"] == V.WAITING
    assert queue.queued == 2 and ReplayIndex.objects.count() == 2
    queue.work(1)
    assert "Preparing the replay" in client_in.get(third, headers=HX).content.decode()  # its poll: a slot
    assert queue.queued == 3


def test_the_slots_are_per_user(client_in, session_run, queue, import_sample, other_user, settings):
    settings.REPLAYWEB_REPLAY_BUILDS_PER_USER = 1
    theirs = import_sample(SESSION, owner=other_user)
    V.get_index(theirs, {})
    assert "Preparing the replay" in client_in.get(page_url(session_run)).content.decode()
    assert "Waiting to prepare" in client_in.get(page_url(session_run, agent="dm_01")).content.decode()
    assert queue.queued == 2


def test_a_build_whose_worker_died_is_noticed_and_queued_again(client_in, session_run, queue):
    client_in.get(page_url(session_run))
    dead = ReplayIndex.objects.get()
    ReplayIndex.objects.filter(pk=dead.pk).update(updated=timezone.now() - V.STALE_BUILD)
    assert V.building(session_run.owner_id) == 0  # no longer holds a slot
    assert "Preparing the replay" in client_in.get(page_url(session_run)).content.decode()
    fresh = ReplayIndex.objects.get()
    assert fresh.pk != dead.pk and queue.queued == 2
    assert queue.work() == ["gone", "ready"]  # the dead one's task, delivered late, builds nothing
    assert client_in.get(page_url(session_run, step=7)).context["step"] == 7


def test_a_building_index_that_is_still_touched_is_left_to_its_worker(client_in, session_run, queue):
    client_in.get(page_url(session_run))
    ReplayIndex.objects.update(updated=timezone.now() - V.STALE_BUILD + dt.timedelta(seconds=5))
    client_in.get(page_url(session_run))
    assert queue.queued == 1


def test_a_busy_database_makes_the_page_wait_and_its_next_poll_starts_the_build(client_in, session_run, queue,
                                                                                monkeypatch):
    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    with monkeypatch.context() as busy:
        busy.setattr(V, "_create", locked)
        response = client_in.get(page_url(session_run))
    assert response.status_code == 200
    assert f"Waiting to prepare the replay of 123 decisions: {V.BUSY}." in response.content.decode()
    assert "Preparing the replay" in client_in.get(page_url(session_run), headers=HX).content.decode()


def test_a_queue_that_refuses_the_build_leaves_nothing_building(client_in, session_run, queue, monkeypatch):
    def refused(*args):
        raise ConnectionError("redis is away")

    monkeypatch.setattr(queue, "enqueue", refused)
    assert "Waiting to prepare" in client_in.get(page_url(session_run)).content.decode()
    assert not ReplayIndex.objects.exists()


def test_a_small_run_is_built_in_the_request_whatever_the_slots(client_in, session_run, settings,
                                                               monkeypatch):
    settings.REPLAYWEB_REPLAY_BUILDS_PER_USER = 0
    monkeypatch.setattr(V, "build_replay_index", None)  # the queue is not used
    assert client_in.get(page_url(session_run, step=3)).context["step"] == 3


def test_a_failed_build_is_reported_and_tried_again(client_in, session_run, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(V.R, "build_index", broken)
    content = client_in.get(page_url(session_run)).content.decode()
    assert "could not be prepared: disk on fire" in content
    monkeypatch.undo()
    assert client_in.get(page_url(session_run, step=3)).context["step"] == 3


def test_the_fragment_is_picked_by_hx_target_and_the_answer_varies_on_it(client_in, session_run):
    for headers in ({"HX-Request": "true"}, {"HX-Request": "true", "HX-Target": "somewhere-else"}):
        response = client_in.get(page_url(session_run, step=7), headers=headers)
        assert response.status_code == 200 and "<html" in response.content.decode()
        assert "HX-Request" in response["Vary"] and "HX-Target" in response["Vary"]


def test_the_state_grid_is_the_one_heatmap_figure_with_rpm_rows_and_kpa_columns(client_in, dyno_run):
    grid = client_in.get(frames_url(dyno_run, start=119, count=1)).json()["frames"][0]["grid"]
    figure = grid["figure"]
    assert figure["layout"]["yaxis"]["title"]["text"] == "RPM"
    assert figure["layout"]["xaxis"]["title"]["text"] == "kPa"
    assert figure["layout"]["yaxis"]["autorange"] == "reversed"  # RPM ascends downwards
    assert figure["data"][0]["y"] == grid["rows"] == ["1500", "2000", "2500", "3000", "3500", "4000", "4500",
                                                     "5000", "5500", "6000", "6500"]
    assert figure["data"][0]["x"] == grid["cols"] == ["35", "50", "65", "80", "95"]


def test_times_read_as_the_text_module_writes_them(client_in, session_run):
    body = client_in.get(frames_url(session_run, start=60, count=3)).json()
    for f in body["frames"]:
        assert f["t_text"] == clock(f["t_ms"]) and f"<span class=\"t\">{f['t_text']}</span>" in f["row"]
        assert f["round_text"] == f"round {f['round']}"
    response = client_in.get(page_url(session_run, step=60))
    assert response.context["current_t_text"] == clock(response.context["frame"].decision["t_ms"])
    assert f"({duration(response.context['index'].t_last)} in all)" in response.content.decode()


def test_a_kind_without_rounds_shows_none(client_in, dyno_run):
    body = client_in.get(frames_url(dyno_run, start=10, count=1)).json()
    assert body["frames"][0]["round_text"] == ""
    assert 'class="rnd"' not in body["frames"][0]["row"]
    assert "Replay to round" not in client_in.get(page_url(dyno_run, step=10)).content.decode()


def test_a_study_log_shows_its_active_time_as_a_duration(client_in, import_sample, samples_dir):
    path = next(p for p in sorted((samples_dir / "study").iterdir()) if p.name.endswith(".study.log"))
    run = import_sample(path.relative_to(samples_dir))
    response = client_in.get(page_url(run, step=run.decision_count))
    active = duration(response.context["state"]["active_ms"])
    assert f"<dt>Active time</dt><dd>{active}</dd>" in response.content.decode()


@pytest.fixture
def plain_kind_run(session_run):
    """The session run, stored as a registered kind that brings no replay spec of its own."""
    from viewer.kinds import Profile

    kinds.register(Profile(name="plainlog", label="Plain log", reader="viewer.readers.session"))
    type(session_run).objects.filter(pk=session_run.pk).update(kind="plainlog")
    session_run.refresh_from_db()
    yield session_run
    kinds.unregister("plainlog")


def test_a_kind_without_a_replay_spec_steps_through_counts_by_action(client_in, plain_kind_run, samples_dir):
    events = session_events(samples_dir)
    response = client_in.get(page_url(plain_kind_run, step=40))
    assert response.status_code == 200
    assert response.context["state"] == {"counts": {e: sum(x["event_type"] == e for x in events[:40])
                                                    for e in dict.fromkeys(x["event_type"] for x in events[:40])},
                                         "round": None}
    content = response.content.decode()
    assert "Party" not in content and 'id="replay-heatmap"' not in content and "Replay to round" not in content
    body = client_in.get(frames_url(plain_kind_run, start=40, count=1)).json()
    assert body["frames"][0]["round_text"] == "" and "grid" not in body["frames"][0]
    assert "<th scope=\"col\">Event</th>" in body["frames"][0]["state"]


# --- a study log's documents on the page, in the API and as downloads (issue 18) ----------------

import study_writing as W  # noqa: E402


@pytest.fixture
def writing_run(import_sample, tmp_path):
    return import_sample(W.write_log(tmp_path))


def document_url(run, **params):
    return reverse("run-replay-document", args=[run.pk]) + "?" + urlencode(params)


def test_the_api_gives_each_documents_text_after_every_step(client_in, writing_run):
    for n in range(len(W.STEPS) + 1):
        state = client_in.get(f"/api/runs/{writing_run.pk}/replay?step={n}").json()["state"]
        assert {k: v["text"] for k, v in state["documents"].items()} == W.expected(n), n
    assert state["documents"][W.ESSAY]["unknown_commands"] == {"zz": 1}
    assert state["documents"][W.NOTES]["unknown_commands"] == {}


def test_the_page_at_a_middle_step_shows_the_text_its_last_edit_and_the_commands_not_understood(
        client_in, writing_run):
    content = client_in.get(page_url(writing_run, step=7)).content.decode()
    assert '<div class="doc-text"' in content
    assert '<del>H</del><ins>J</ins><span class="caret" title="cursor"></span>ello there!' in content
    assert "<code>zz</code> ×1" in content and "<code>as</code> ×1" in content
    assert f'href="{document_url(writing_run, step=7, doc=W.ESSAY).replace("&", "&amp;")}"' in content
    assert "<dt>Revisions</dt><dd>4</dd>" in content
    assert "<dt>Text deleted</dt><dd>6 of 18 characters written</dd>" in content
    assert 'class="plotly-figure"' in content
    assert W.USER not in content  # pseudonymized as before


def test_a_frame_carries_the_document_as_of_its_step(client_in, writing_run):
    frame = client_in.get(frames_url(writing_run, start=11, count=1)).json()["frames"][0]
    assert '<del> there!</del><span class="caret" title="cursor"></span>' in frame["state"]
    assert "Jello" in frame["state"] and "Notes" in frame["state"]


def test_the_document_text_downloads_as_of_any_step(client_in, writing_run):
    for n in (2, 5, 7, 13):
        response = client_in.get(document_url(writing_run, step=n, doc=W.ESSAY))
        assert response.status_code == 200 and response["Content-Type"] == "text/plain; charset=utf-8"
        assert response.content.decode() == W.expected(n)[W.ESSAY]
        assert f"{W.ESSAY}_step{n}.txt" in response["Content-Disposition"]
    assert client_in.get(document_url(writing_run, step=3, doc=W.NOTES)).status_code == 404  # not yet seen
    assert client_in.get(document_url(writing_run, step="x", doc=W.ESSAY)).status_code == 400
    assert client_in.get(reverse("run-replay-document", args=[writing_run.pk]) + "?step=3").status_code == 400


def test_the_writing_process_downloads_as_csv(client_in, writing_run):
    url = reverse("run-replay-writing", args=[writing_run.pk])
    response = client_in.get(url)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert b"".join(response.streaming_content).decode() == (
        "doc_id,title,minute,chars_added,chars_deleted,pauses,active_s\r\n"
        f"{W.ESSAY},Essay draft,0,18,6,1,8.0\r\n"
        f"{W.ESSAY},Essay draft,1,11,12,0,2.5\r\n"
        f"{W.NOTES},,0,5,0,0,1.0\r\n")
    as_of_5 = b"".join(client_in.get(url + "?step=5").streaming_content).decode()
    assert as_of_5.splitlines()[1:] == [f"{W.ESSAY},Essay draft,0,17,5,1,6.0"]  # 11 + 6 added, "world" deleted


def test_a_run_of_another_kind_has_no_writing_csv_and_no_documents(client_in, session_run):
    assert client_in.get(reverse("run-replay-writing", args=[session_run.pk])).status_code == 404
    assert client_in.get(document_url(session_run, step=3, doc="x")).status_code == 404


def test_the_decision_list_numbers_decisions_by_their_seq_as_every_other_page_does(client_in, session_run):
    content = client_in.get(page_url(session_run, step=5)).content.decode()
    # step 5 is the state after the fifth decision: decision #4, as the run page and the trace number it
    current = re.search(r'<li class="row current[^"]*"[^>]*><a [^>]*><span class="n"[^>]*>([^<]*)</span>', content)
    assert current.group(1) == "#4"
    assert "Step 5 of 123 · decision #4" in content


def test_a_filter_with_nothing_to_replay_offers_to_clear_the_filters(client_in, session_run):
    html = client_in.get(page_url(session_run, action="no_such_event")).content.decode()
    assert "nothing to replay" in html
    assert f'<a href="/runs/{session_run.pk}/replay/">Clear the filters</a>' in html


def test_the_replay_shows_the_notes_of_the_decision_at_the_step_and_marks_noted_rows(client_in, session_run, user):
    from viewer import notes

    first = filtered_decisions(run=session_run)[:3]
    notes.add(session_run, user, seq=first[1].seq, text="**why** here?", labels=["suspect"])
    at_noted = client_in.get(page_url(session_run, step=2)).content.decode()
    section = at_noted[at_noted.index('id="replay-notes"'):at_noted.index("</section>", at_noted.index('id="replay-notes"'))]
    assert f"Notes on decision #{first[1].seq}" in section and "<strong>why</strong> here?" in section
    assert 'title="Decisions labelled suspect">suspect</a>' in section
    assert at_noted.count('class="note-mark"') == 1  # the list's row of the noted decision
    elsewhere = client_in.get(page_url(session_run, step=3)).content.decode()
    assert "None on this decision" in elsewhere
    body = client_in.get(frames_url(session_run, start=1, count=3)).json()
    by_step = {f["step"]: f["notes"] for f in body["frames"]}
    assert "<strong>why</strong>" in by_step[2] and "None on this decision" in by_step[3]
