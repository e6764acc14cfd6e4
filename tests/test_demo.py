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
