"""A new run's first view computed by its import job (viewer/warm.py): after warm, opening the run
page, its fragments, the cells page (any metric it offers) and the replay computes nothing."""
import pytest

from viewer import cells, kinds, memo, overview
from viewer import replay_store as V
from viewer.kinds import dynoai_cells
from viewer.models import ReplayIndex, RunAggregate
from viewer.warm import warm

pytestmark = pytest.mark.django_db

DYNO = "dynoai/real_sample/session_replay.json"
SESSION = "session/session_debt_auction_ambush.jsonl"
STUDY = "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"
COMPUTES = {  # every read the first view's aggregates are made of
    overview: ("run_actions", "facets_for", "action_stats", "largest_gaps", "chart_points", "seq_bins",
               "seq_range", "time_bins", "time_range"),
    cells: ("cell_grid",),
    dynoai_cells: ("_value_keys",),
    V.R: ("build_index",),
}


@pytest.fixture
def big(monkeypatch):
    """Every run counts as big (the samples have about a hundred decisions)."""
    monkeypatch.setattr(memo, "BIG_RUN", 10)


def refuse_to_compute(monkeypatch):
    def computed(*args, **kwargs):
        raise AssertionError("computed on a request")

    for module, names in COMPUTES.items():
        for name in names:
            monkeypatch.setattr(module, name, computed)


def first_view(run) -> list[tuple[str, dict]]:
    """The requests of someone opening the run from the runs list, then its cells and its replay."""
    page = f"/runs/{run.pk}/"
    spec = kinds.profile(run).cells
    metrics = cells.available_metrics(spec=spec, run=run) if spec else [None]
    return [
        (page, {}),
        *((page, {"HX-Request": "true", "HX-Target": part}) for part in ("facets", "stats", "chart")),
        (f"/runs/{run.pk}/cells/", {}),
        *((f"/runs/{run.pk}/cells/?metric={m.key}", {}) for m in metrics if m),
        (f"/api/runs/{run.pk}/cells", {}),
        (f"/runs/{run.pk}/replay/", {}),
        (f"/runs/{run.pk}/replay/frames/?start=0", {}),
    ]


@pytest.mark.parametrize("sample", [DYNO, SESSION, STUDY])
def test_after_warm_the_first_views_of_a_big_run_compute_nothing(client_in, import_sample, big, monkeypatch,
                                                                 sample):
    run = import_sample(sample)
    warm(run, lambda stage: None)
    refuse_to_compute(monkeypatch)
    for url, headers in first_view(run):
        response = client_in.get(url, headers=headers)
        assert response.status_code == 200, url
    assert "Preparing the replay" not in client_in.get(f"/runs/{run.pk}/replay/").content.decode()


def test_without_warm_the_first_view_computes(client_in, import_sample, big, monkeypatch):
    run = import_sample(DYNO)
    refuse_to_compute(monkeypatch)
    with pytest.raises(AssertionError, match="computed on a request"):
        client_in.get(f"/runs/{run.pk}/", headers={"HX-Request": "true", "HX-Target": "facets"})


def test_warm_stores_each_metric_of_the_cells_page(import_sample, big):
    run = import_sample(DYNO)
    warm(run, lambda stage: None)
    metrics = cells.available_metrics(spec=kinds.profile(run).cells, run=run)
    assert len(metrics) > len(dynoai_cells.METRICS)  # the value keys found in the run's data too
    stored = RunAggregate.objects.filter(run=run, what="cells").count()
    assert stored == len(metrics)


def test_warm_says_aggregating_before_each_aggregate_and_indexing_while_it_builds_the_replay(
        import_sample, big, settings, monkeypatch):
    settings.REPLAYWEB_REPLAY_EVERY = 10
    monkeypatch.setattr(V, "FLUSH_EVERY", 2)
    run = import_sample(DYNO)
    stages = []
    warm(run, stages.append)
    metrics = cells.available_metrics(spec=kinds.profile(run).cells, run=run)
    aggregating = stages.count("aggregating")
    assert aggregating >= 4 + len(metrics)  # colours, facets, summary, chart, then each grid
    assert stages[:aggregating] == ["aggregating"] * aggregating
    indexing = len(stages) - aggregating
    assert stages[aggregating:] == ["indexing"] * indexing and indexing > 3  # before the build, and during it


def test_a_small_run_gets_its_replay_index_and_no_aggregates(import_sample):
    run = import_sample(DYNO)
    stages = []
    warm(run, stages.append)
    assert stages == ["indexing"]
    assert not RunAggregate.objects.exists()
    assert ReplayIndex.objects.get(run=run, key=V.filter_key({}, V.R.CHECKPOINT_EVERY)).status == "ready"


def test_warm_again_builds_nothing_again(import_sample, big, monkeypatch):
    run = import_sample(DYNO)
    warm(run, lambda stage: None)
    refuse_to_compute(monkeypatch)
    warm(run, lambda stage: None)


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("where", ["the first aggregate", "the replay index", "a heartbeat of its build"])
def test_what_say_raises_stops_warm_there(import_sample, big, settings, monkeypatch, where):
    settings.REPLAYWEB_REPLAY_EVERY = 10
    monkeypatch.setattr(V, "FLUSH_EVERY", 2)
    run = import_sample(DYNO)
    stages = []
    warm(run, stages.append)
    RunAggregate.objects.all().delete()
    ReplayIndex.objects.all().delete()
    at = {"the first aggregate": 1, "the replay index": stages.index("indexing") + 1,
          "a heartbeat of its build": len(stages)}[where]
    said = []

    def say(stage):
        said.append(stage)
        if len(said) == at:
            raise Cancelled()

    with pytest.raises(Cancelled):
        warm(run, say)
    assert len(said) == at
    assert not ReplayIndex.objects.filter(status=ReplayIndex.Status.READY).exists()
