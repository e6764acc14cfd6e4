"""The runs list's selector (selectors.runs_page) and its form (forms.RunListForm): search, filters,
sort and keyset paging over the runs a user can see."""
import datetime as dt

import pytest
from django.utils import timezone

from viewer.forms import RunListForm
from viewer.models import Run, RunTag
from viewer.selectors import CursorGone, runs_page

pytestmark = pytest.mark.django_db


def make_run(owner, n, **fields):
    values = {"name": f"run {n:03d}", "kind": "session", "source_name": f"file_{n:03d}.jsonl", "size": 10,
              "sha256": f"{n:064d}", "decision_count": n} | fields
    return Run.objects.create(owner=owner, **values)


def pages(user, **kwargs):
    """Every page of runs_page, followed by its cursor: [[names], ...]."""
    out, after = [], None
    while True:
        runs, after = runs_page(user, after=after, **kwargs)
        out.append([r.name for r in runs])
        if after is None:
            return out


def parsed(query: str) -> dict:
    from django.http import QueryDict

    form = RunListForm(QueryDict(query))
    assert form.is_valid(), form.errors
    return form.filters()


@pytest.mark.parametrize("sort", ["-created", "created", "name", "-name", "-decisions", "decisions"])
def test_keyset_pages_hold_every_run_once_in_the_sort_order(user, sort):
    for n in range(23):
        make_run(user, n, decision_count=n % 4, name=f"Run {n % 5}")  # ties on both: the id breaks them
    Run.objects.update(created=timezone.now())  # every run imported in the same instant
    got = pages(user, sort=sort, limit=5)
    assert [len(p) for p in got] == [5, 5, 5, 5, 3]
    flat = [name for page in got for name in page]
    whole, _ = runs_page(user, sort=sort, limit=100)
    assert flat == [r.name for r in whole] and len({r.pk for r in whole}) == 23


def test_a_page_after_a_run_stays_put_when_a_newer_run_is_imported(user):
    for n in range(6):
        make_run(user, n)
    first, after = runs_page(user, limit=3)
    make_run(user, 99)  # newer than all: lands on page one, never shifts page two
    second, _ = runs_page(user, after=after, limit=3)
    assert [r.name for r in first + second] == ["run 005", "run 004", "run 003", "run 002", "run 001", "run 000"]


def test_a_cursor_naming_a_run_that_is_gone_says_so(user, other_user):
    foreign = make_run(other_user, 1)
    with pytest.raises(CursorGone, match=f"run {foreign.pk} is not in this list"):
        runs_page(user, after=foreign.pk)


def test_search_finds_a_run_by_name_run_id_session_id_or_file_name(user):
    make_run(user, 1, name="Heist at the depot")
    make_run(user, 2, run_id="2026-03-14T09-30-12Z-abc123")
    make_run(user, 3, session_id="5d1e2a90-aaaa")
    make_run(user, 4, source_name="pull_3.csv")
    make_run(user, 5)
    for q, name in [("DEPOT", "Heist at the depot"), ("abc123", "run 002"), ("5d1e2a90", "run 003"), ("pull_3", "run 004")]:
        assert [r.name for r in runs_page(user, **parsed(f"q={q}"))[0]] == [name]


def test_kind_tag_owner_status_and_dates_each_narrow_the_list(user, other_user):
    a = make_run(user, 1, kind="dynoai")
    b = make_run(user, 2, status=Run.Status.FAILED)
    c = make_run(user, 3)
    make_run(user, 4, status=Run.Status.IMPORTING)  # never listed: its job is
    make_run(other_user, 5)
    RunTag.objects.create(run=c, name="baseline")
    Run.objects.filter(pk=a.pk).update(created=timezone.make_aware(dt.datetime(2026, 1, 10, 23, 59)))

    def names(query):
        return sorted(r.name for r in runs_page(user, **parsed(query))[0])

    assert names("kind=dynoai") == ["run 001"]
    assert names("tag=baseline") == ["run 003"]
    assert names("status=failed") == ["run 002"]
    assert names("status=importing") == []
    assert names("owner=alice") == ["run 001", "run 002", "run 003"]
    assert names("owner=mallory") == []  # only runs alice can see, whoever owns them
    assert names("until=2026-01-10") == ["run 001"]  # the whole last day
    assert names("since=2026-01-11") == ["run 002", "run 003"]


@pytest.mark.parametrize("query, field", [
    ("sort=size", "sort"), ("kind=excel", "kind"), ("status=gone", "status"), ("after=x", "after"),
    ("since=2026-13-01", "since"), ("since=2026-02-01&until=2026-01-01", "until"), ("limit=0", "limit"),
])
def test_a_bad_list_parameter_is_an_error_naming_it(query, field):
    from django.http import QueryDict

    form = RunListForm(QueryDict(query))
    assert not form.is_valid() and field in form.errors
