"""The demo runs `make run` loads (viewer/demo.py): each shows what its kind's pages can do."""
import pytest

from viewer import demo
from viewer.ingest import Source, run_ingest
from viewer.replay_store import replay_state

pytestmark = pytest.mark.django_db


def test_the_demo_study_log_replays_into_the_essay_its_keystrokes_typed(tmp_path, user):
    path = demo.write_study(tmp_path / "2026-01-20T14-00-00.250000-0000000003-gc-demo-4242.study.log.gz")
    [result] = run_ingest(owner=user, sources=[Source(name=path.name, path=path)])
    answer = replay_state(result.run, {}, step=result.run.decision_count)  # a small run's index builds at once
    essay = answer["state"]["documents"]["1DemoDoc"]
    assert essay["text"].startswith("The industrial revolution changed how people worked and lived. The ")
    assert essay["unknown_commands"] == {} and essay["revisions"] >= 10


def test_the_tour_takes_the_demo_runs_in_order_and_drops_a_link_whose_partner_is_gone():
    from viewer.models import Run

    def run(pk, source):
        return Run(pk=pk, source_name=source, decision_count=400)

    runs = [run(5, "demo/2026-01-20T14-00-00.250000-0000000003-gc-demo-4242.study.log.gz"),
            run(4, "demo/session_demo_depot_heist_replay.jsonl"), run(3, "demo/session_demo_depot_heist.jsonl"),
            run(2, "demo/dyno_passes4_clamp10/session_replay.json"), run(9, "my_own_log.jsonl")]
    stops = demo.tour(runs)
    assert [(s.run.pk, s.url) for s in stops] == [
        (2, "/runs/2/cells/"),  # its diff partner (the 2-pass run) was deleted: its cells instead
        (3, "/runs/3/replay/"),
        (4, "/diff/?a=3&b=4#divergence"),
        (5, "/runs/5/replay/?step=400"),
    ]
    assert all(s.line and s.look for s in stops)
