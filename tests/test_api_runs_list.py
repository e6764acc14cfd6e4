"""GET /api/runs takes the runs list's search, filters and sorts (RunListForm) and pages by keyset."""
import pytest
from django.test import Client

from viewer.models import ApiToken, Run, RunTag

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(user):
    _, token = ApiToken.issue(user)
    return Client(headers={"Authorization": f"Bearer {token}"})


def make_runs(owner, names, **fields):
    return [Run.objects.create(owner=owner, **{"name": name, "kind": "session", "source_name": f"{name}.jsonl",
                                               "size": 1, "sha256": f"{owner.pk}-{name}"} | fields) for name in names]


def test_the_api_pages_a_sorted_search_by_the_last_runs_id(api, user):
    make_runs(user, ["delta", "alpha", "charlie", "bravo", "echo", "other"])
    first = api.get("/api/runs?q=a&sort=name&limit=2").json()
    second = api.get(f"/api/runs?q=a&sort=name&limit=2&after={first['next']}").json()
    assert [r["name"] for r in first["items"] + second["items"]] == ["alpha", "bravo", "charlie", "delta"]
    assert second["next"] is None


def test_the_api_filters_by_tag_kind_and_status_and_lists_each_runs_tags(api, user, other_user):
    tagged, dyno, failed = make_runs(user, ["tagged", "dyno", "failed"])
    Run.objects.filter(pk=dyno.pk).update(kind="dynoai")
    Run.objects.filter(pk=failed.pk).update(status=Run.Status.FAILED)
    RunTag.objects.create(run=tagged, name="baseline")
    RunTag.objects.create(run=make_runs(other_user, ["theirs"])[0], name="baseline")
    body = api.get("/api/runs?tag=baseline").json()
    assert [(r["name"], r["tags"]) for r in body["items"]] == [("tagged", ["baseline"])]
    assert [r["name"] for r in api.get("/api/runs?kind=dynoai").json()["items"]] == ["dyno"]
    assert [r["name"] for r in api.get("/api/runs?status=failed").json()["items"]] == ["failed"]
    assert api.get("/api/runs?status=importing").json()["items"] == []


@pytest.mark.parametrize("query, name", [("sort=size", "sort"), ("kind=excel", "kind"),
                                         ("since=2026-02-01&until=2026-01-01", "until")])
def test_a_bad_runs_parameter_is_a_400_naming_it(api, query, name):
    response = api.get(f"/api/runs?{query}")
    assert response.status_code == 400 and response.json()["detail"].startswith(f"{name}:")


def test_an_after_naming_a_deleted_run_is_a_400_that_says_to_start_again(api, user):
    gone = make_runs(user, ["gone"])[0]
    pk = gone.pk
    gone.delete()
    response = api.get(f"/api/runs?sort=name&after={pk}")
    assert response.status_code == 400 and "start again from the first page" in response.json()["detail"]
