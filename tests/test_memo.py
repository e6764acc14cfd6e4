"""Aggregates computed once per run and parameters, kept in the database (viewer/memo.py)."""
import pickle

import pytest
from django.core.cache import caches
from django.db import OperationalError

from viewer import memo, overview
from viewer.models import Run, RunAggregate

pytestmark = pytest.mark.django_db

REAL = "dynoai/real_sample/session_replay.json"


@pytest.fixture
def big(monkeypatch):
    """Every run counts as big (the sample has 119 decisions)."""
    monkeypatch.setattr(memo, "BIG_RUN", 10)


@pytest.fixture
def run(import_sample):
    return import_sample(REAL)


class Counter:
    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def another_process(run) -> Run:
    """What a second web process or worker has: the run read afresh, and no cache of its own."""
    for cache in caches.all():
        cache.clear()
    return Run.objects.get(pk=run.pk)


def fails():
    raise AssertionError("computed again")


def test_a_big_runs_aggregate_is_computed_once_and_kept_with_its_run(run, big):
    compute = Counter({"AFR": 40})
    assert memo.run_memo(run, "run-page:facets", {"q": "x"}, compute) == {"AFR": 40}
    assert memo.run_memo(run, "run-page:facets", {"q": "x"}, compute) == {"AFR": 40}
    assert compute.calls == 1
    kept = RunAggregate.objects.get(run=run)
    assert kept.what == "run-page:facets" and pickle.loads(kept.value) == {"AFR": 40}
    assert kept.key == memo.aggregate_key("run-page:facets", {"q": "x"})


def test_an_aggregate_computed_in_one_process_is_read_from_the_database_by_another(run, big):
    memo.run_memo(run, "chart:seq", {"action": ("afr",)}, Counter({"data": [1]}))
    assert memo.run_memo(another_process(run), "chart:seq", {"action": ("afr",)}, fails) == {"data": [1]}


def test_parameters_name_the_aggregate_in_any_order_and_others_are_computed_apart(run, big):
    memo.run_memo(run, "stats", {"q": "x", "rpm": 1000}, Counter("first"))
    assert memo.run_memo(run, "stats", {"rpm": 1000, "q": "x"}, fails) == "first"
    assert memo.run_memo(run, "stats", {"rpm": 1500, "q": "x"}, Counter("second")) == "second"
    assert memo.run_memo(run, "facets", {"rpm": 1000, "q": "x"}, Counter("third")) == "third"
    assert RunAggregate.objects.filter(run=run).count() == 3


def test_another_run_has_its_own_aggregates(run, big, import_sample, other_user):
    theirs = import_sample(REAL, owner=other_user)
    memo.run_memo(run, "facets", {}, Counter("mine"))
    assert memo.run_memo(theirs, "facets", {}, Counter("theirs")) == "theirs"
    assert [RunAggregate.objects.filter(run=r).count() for r in (run, theirs)] == [1, 1]


def test_a_failed_write_still_answers(run, big, monkeypatch):
    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(RunAggregate.objects, "create", locked)
    compute = Counter(["answer"])
    assert memo.run_memo(run, "facets", {}, compute) == ["answer"]
    assert memo.run_memo(run, "facets", {}, compute) == ["answer"]
    assert compute.calls == 2 and not RunAggregate.objects.exists()


def test_a_writer_that_stored_it_first_wins_and_both_answer(run, big):
    key = memo.aggregate_key("facets", {})

    def meanwhile():  # another process stores the same aggregate while this one computes it
        RunAggregate.objects.create(run=run, key=key, what="facets", value=pickle.dumps("theirs"))
        return "mine"

    assert memo.run_memo(run, "facets", {}, meanwhile) == "mine"
    assert memo.run_memo(run, "facets", {}, fails) == "theirs"
    assert RunAggregate.objects.count() == 1


def test_an_aggregate_that_no_longer_unpickles_is_computed_again_and_replaced(run, big):
    key = memo.aggregate_key("facets", {})
    RunAggregate.objects.create(run=run, key=key, what="facets", value=b"not a pickle")
    assert memo.run_memo(run, "facets", {}, Counter("fresh")) == "fresh"
    assert memo.run_memo(run, "facets", {}, fails) == "fresh"


def test_a_new_version_of_the_aggregates_never_reads_the_old_ones(run, big, monkeypatch):
    memo.run_memo(run, "facets", {}, Counter("old shape"))
    monkeypatch.setattr(memo, "VERSION", memo.VERSION + 1)
    assert memo.run_memo(run, "facets", {}, Counter("new shape")) == "new shape"


def test_a_run_keeps_a_bounded_number_of_aggregates_and_computes_the_rest_each_time(run, big, monkeypatch):
    monkeypatch.setattr(memo, "MAX_PER_RUN", 2)
    for q in ("a", "b", "c"):
        memo.run_memo(run, "facets", {"q": q}, Counter(q))
    assert RunAggregate.objects.filter(run=run).count() == 2
    assert memo.run_memo(run, "facets", {"q": "a"}, fails) == "a"
    compute = Counter("c")
    memo.run_memo(run, "facets", {"q": "c"}, compute)
    assert compute.calls == 1


def test_a_deleted_run_takes_its_aggregates_with_it(run, big):
    memo.run_memo(run, "facets", {}, Counter("x"))
    assert RunAggregate.objects.filter(run=run).exists()
    run.delete()
    assert not RunAggregate.objects.exists()


def test_a_live_run_still_growing_is_computed_every_time(run, big):
    Run.objects.filter(pk=run.pk).update(status=Run.Status.LIVE)
    run.refresh_from_db()
    compute = Counter("now")
    memo.run_memo(run, "facets", {}, compute)
    memo.run_memo(run, "facets", {}, compute)
    assert compute.calls == 2 and not RunAggregate.objects.exists()


def test_the_run_page_reads_what_another_process_computed(client_in, run, big, monkeypatch):
    url, hx = f"/runs/{run.pk}/", {"HX-Request": "true", "HX-Target": "facets"}
    first = client_in.get(url, headers=hx).content
    assert RunAggregate.objects.filter(run=run, what="run-page:facets").exists()
    another_process(run)
    monkeypatch.setattr(overview, "facets_for", lambda **kwargs: fails())
    assert client_in.get(url, headers=hx).content == first


def test_a_big_runs_filtered_count_is_counted_once_for_the_matchline_and_the_chart(client_in, run, big,
                                                                                    monkeypatch):
    url, qs = f"/runs/{run.pk}/", "?q=gradient"
    line = client_in.get(url + qs, headers={"HX-Request": "true", "HX-Target": "matchline"}).content.decode()
    assert RunAggregate.objects.filter(run=run, what="run-page:count").exists()
    another_process(run)
    monkeypatch.setattr(overview, "filtered_decisions", lambda **kwargs: fails())
    assert client_in.get(url + qs, headers={"HX-Request": "true", "HX-Target": "matchline"}).content.decode() == line
