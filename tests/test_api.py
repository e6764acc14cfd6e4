"""The JSON API (viewer/api.py), its auth, and the token page."""
import json

import pytest
from helpers import job_results
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from viewer import filters as F
from viewer.models import ApiToken, Run, hash_token

pytestmark = pytest.mark.django_db

REAL = "dynoai/real_sample/session_replay.json"


def strict_json(response):
    """The body parsed as strict JSON: NaN or Infinity would raise."""
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]

    def refuse(name):
        raise ValueError(f"non-standard JSON number {name}")

    return json.loads(response.content, parse_constant=refuse)


@pytest.fixture
def token(user):
    return ApiToken.issue(user, name="tests")[1]


@pytest.fixture
def api(client, token):
    """A client that sends the bearer token."""
    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def real_doc(samples_dir):
    return json.loads((samples_dir / REAL).read_text())


# -- auth -----------------------------------------------------------------------------------------


def test_without_credentials_the_api_answers_401_in_json_not_a_login_redirect(client):
    response = client.get("/api/runs")
    assert response.status_code == 401
    assert strict_json(response) == {"detail": "Unauthorized"}


def test_a_bearer_token_authenticates(api, import_sample):
    run = import_sample(REAL)
    response = api.get("/api/runs")
    assert response.status_code == 200
    assert [r["id"] for r in strict_json(response)["items"]] == [run.pk]


def test_an_unknown_or_revoked_token_is_a_401(client, token, user):
    assert client.get("/api/runs", headers={"Authorization": "Bearer rw_not-a-token"}).status_code == 401
    ApiToken.objects.filter(user=user).delete()
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_tokens_are_stored_only_as_their_sha256(token):
    stored = ApiToken.objects.get()
    assert stored.token_hash == hash_token(token)
    assert token not in {stored.token_hash, stored.prefix, stored.name}


def test_the_browser_session_authenticates_reads(client_in, import_sample):
    run = import_sample(REAL)
    assert strict_json(client_in.get(f"/api/runs/{run.pk}"))["id"] == run.pk


def test_a_session_write_without_the_csrf_token_is_refused(user, import_sample):
    run = import_sample(REAL)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.delete(f"/api/runs/{run.pk}")
    assert response.status_code == 403
    assert "CSRF" in strict_json(response)["detail"]
    assert Run.objects.filter(pk=run.pk).exists()


def test_a_session_write_with_the_csrf_token_is_accepted(user, import_sample):
    run = import_sample(REAL)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/tokens/")  # any page sets the csrftoken cookie
    csrf = browser.cookies["csrftoken"].value
    assert browser.delete(f"/api/runs/{run.pk}", headers={"X-CSRFToken": csrf}).status_code == 204
    assert not Run.objects.filter(pk=run.pk).exists()


def test_a_bearer_write_needs_no_csrf_token(token, import_sample):
    run = import_sample(REAL)
    script = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {token}"})
    assert script.delete(f"/api/runs/{run.pk}").status_code == 204


# -- runs -----------------------------------------------------------------------------------------


def test_runs_list_shows_only_your_runs_newest_first(api, import_sample, other_user):
    mine = [import_sample(REAL), import_sample("session/combat_session_sample.jsonl")]
    import_sample("hostile/xss_session.jsonl", owner=other_user)
    items = strict_json(api.get("/api/runs"))["items"]
    assert [r["id"] for r in items] == [mine[1].pk, mine[0].pk]
    assert items[1]["kind"] == "dynoai" and items[1]["decision_count"] == 119


def test_runs_list_pages_with_a_keyset_cursor(api, import_sample):
    samples = (REAL, "session/combat_session_sample.jsonl", "hostile/xss_session.jsonl")
    runs = [import_sample(p) for p in samples]
    first = strict_json(api.get("/api/runs?limit=2"))
    second = strict_json(api.get(f"/api/runs?limit=2&after={first['next']}"))
    assert [r["id"] for r in first["items"] + second["items"]] == [r.pk for r in reversed(runs)]
    assert second["next"] is None


def test_one_run_shows_its_header_and_the_manifest_check(api, import_sample):
    run = import_sample(REAL, "dynoai/real_sample/manifest.json")
    data = strict_json(api.get(f"/api/runs/{run.pk}"))
    assert data["run_id"] == "2025-12-15T17-28-01Z-e46826"
    assert data["sha256"] == run.sha256
    assert data["manifest"]["ok"] is False and data["warnings"]


def test_another_users_run_is_a_404_for_every_endpoint(api, import_sample, other_user):
    run = import_sample(REAL, owner=other_user)
    for path in ("", "/summary", "/decisions"):
        response = api.get(f"/api/runs/{run.pk}{path}")
        assert response.status_code == 404, path
        assert "detail" in strict_json(response)
    assert api.delete(f"/api/runs/{run.pk}").status_code == 404
    assert Run.objects.filter(pk=run.pk).exists()


@pytest.mark.parametrize("run_id", ["abc", "1.5", "-1", "99999999999999999999999"])
def test_a_malformed_or_impossible_run_id_is_a_400_or_404(api, run_id):
    response = api.get(f"/api/runs/{run_id}")
    assert response.status_code in (400, 404)
    assert strict_json(response)["detail"]


def test_delete_removes_the_run(api, import_sample):
    run = import_sample(REAL)
    assert api.delete(f"/api/runs/{run.pk}").status_code == 204
    assert api.get(f"/api/runs/{run.pk}").status_code == 404


# -- upload ---------------------------------------------------------------------------------------


def upload(samples_dir, *relpaths):
    return [SimpleUploadedFile(p.rsplit("/", 1)[-1], (samples_dir / p).read_bytes()) for p in relpaths]


def test_upload_takes_several_files_and_answers_per_file_like_the_page(api, samples_dir, user):
    files = upload(samples_dir, REAL, "dynoai/real_sample/manifest.json", "bad/truncated_session_replay.json")
    response = api.post("/api/runs", {"file": files})
    assert response.status_code == 202
    assert len(strict_json(response)["jobs"]) == 1  # an output folder (a manifest among them): one job
    results = {r["name"]: r for r in job_results(api, response)}
    assert results["session_replay.json"]["status"] == "imported"
    assert results["session_replay.json"]["count"] == 119
    assert results["session_replay.json"]["warnings"]  # the manifest's CRLF note
    assert results["manifest.json"]["status"] == "manifest"
    assert results["truncated_session_replay.json"]["status"] == "error"
    assert "truncated_session_replay.json" in results["truncated_session_replay.json"]["message"]
    run = Run.objects.get(pk=results["session_replay.json"]["run_id"])
    assert run.owner == user


def test_uploading_a_file_again_is_a_duplicate_not_a_second_run(api, samples_dir):
    assert api.post("/api/runs", {"file": upload(samples_dir, REAL)}).status_code == 202
    response = api.post("/api/runs", {"file": upload(samples_dir, REAL)})
    assert response.status_code == 202
    assert job_results(api, response)[0]["status"] == "duplicate"
    assert Run.objects.count() == 1


def test_a_file_that_fails_fails_its_job_with_the_reason(api, samples_dir):
    response = api.post("/api/runs", {"file": upload(samples_dir, "bad/not_json_session_replay.json")})
    assert response.status_code == 202
    [job] = strict_json(response)["jobs"]
    found = strict_json(api.get(f"/api/jobs/{job['id']}"))
    assert found["status"] == "failed" and found["message"].startswith("not_json_session_replay.json: ")
    assert found["results"][0]["status"] == "error" and found["run_id"] is None
    assert not Run.objects.exists()


def test_an_upload_where_every_file_is_refused_before_queueing_is_a_400_with_the_reasons(api, samples_dir, settings):
    settings.REPLAYWEB_MAX_UPLOAD_BYTES = 100
    response = api.post("/api/runs", {"file": upload(samples_dir, REAL)})
    assert response.status_code == 400
    data = strict_json(response)
    assert data["detail"] and data["results"][0]["status"] == "error" and "REPLAYWEB_MAX_UPLOAD_BYTES" in data["results"][0]["message"]
    assert not Run.objects.exists()


def test_an_upload_without_files_is_a_400_naming_the_field(api):
    response = api.post("/api/runs", {})
    assert response.status_code == 400
    assert "file" in strict_json(response)["detail"]


def test_too_many_files_in_one_upload_is_a_400_in_json(api, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [SimpleUploadedFile(f"f{i}.json", b"{}") for i in range(3)]
    response = api.post("/api/runs", {"file": files})
    assert response.status_code == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FILES" in strict_json(response)["detail"]


# -- summary and decisions -------------------------------------------------------------------------


def test_summary_counts_decisions_by_action(api, import_sample, real_doc):
    run = import_sample(REAL)
    counts = {}
    for d in real_doc["decisions"]:
        counts[d["action"]] = counts.get(d["action"], 0) + 1
    data = strict_json(api.get(f"/api/runs/{run.pk}/summary"))
    assert {a["action"]: a["count"] for a in data["actions"]} == counts
    assert data["actions"][0] == {"action": "AFR_CORRECTION", "count": 98}
    assert data["matching"] == data["decision_count"] == 119


def test_summary_takes_the_filters(api, import_sample):
    run = import_sample(REAL)
    data = strict_json(api.get(f"/api/runs/{run.pk}/summary?action=grad&action=clamp"))
    assert data["actions"] == [
        {"action": "GRADIENT_LIMITING", "count": 18}, {"action": "CLAMPING_START", "count": 1}
    ]
    assert data["filters"] == "Decisions where action contains “grad” or “clamp”."


def test_decisions_default_to_100_and_the_cursor_walks_them_all(api, import_sample, real_doc):
    run = import_sample(REAL)
    first = strict_json(api.get(f"/api/runs/{run.pk}/decisions"))
    assert len(first["items"]) == 100 and first["next"] == 99
    second = strict_json(api.get(f"/api/runs/{run.pk}/decisions?after={first['next']}"))
    assert second["next"] is None
    seqs = [d["seq"] for d in first["items"] + second["items"]]
    assert seqs == list(range(len(real_doc["decisions"])))
    d0 = first["items"][0]
    assert d0["values"] == real_doc["decisions"][0]["values"]
    assert d0["ts"] == "2025-12-15T17:28:01.803Z"


def test_decisions_take_the_same_filters_as_the_page(api, import_sample, real_doc):
    run = import_sample(REAL)
    expected = [
        i for i, d in enumerate(real_doc["decisions"])
        if "afr" in d["action"].lower() and d["cell"]["kpa"] == 95 and d["cell"]["cylinder"] == "f"
    ]
    data = strict_json(api.get(f"/api/runs/{run.pk}/decisions?action=afr&kpa=95&cylinder=f&limit=1000"))
    assert [d["seq"] for d in data["items"]] == expected and expected


@pytest.mark.parametrize(
    "query, name",
    [("rpm=fast", "rpm"), ("since=yesterday", "since"), ("v=nonsense", "v"), ("limit=0", "limit"),
     ("limit=1001", "limit"), ("after=x", "after"), ("rpm_min=5&rpm_max=1", "rpm_max")],
)
def test_a_bad_parameter_is_a_400_naming_it(api, import_sample, query, name):
    run = import_sample(REAL)
    response = api.get(f"/api/runs/{run.pk}/decisions?{query}")
    assert response.status_code == 400
    assert strict_json(response)["detail"].startswith(f"{name}:")


def test_nan_values_come_back_as_null_so_the_answer_is_strict_json(api, import_sample):
    run = import_sample("odd/nan_values_session_replay.json")
    items = strict_json(api.get(f"/api/runs/{run.pk}/decisions"))["items"]
    assert items[0]["values"] == {"afr_error_pct": None}


def test_hostile_strings_come_back_as_json_text(api, import_sample):
    run = import_sample("hostile/xss_session_replay.json")
    response = api.get(f"/api/runs/{run.pk}/decisions")
    assert response["Content-Type"] == "application/json; charset=utf-8"
    actions = {d["action"] for d in strict_json(response)["items"]}
    assert "<b>BOLD_ACTION</b>" in actions and "=CMD_ACTION" in actions


# -- OpenAPI --------------------------------------------------------------------------------------


def test_openapi_documents_the_decision_filters_by_the_forms_names(client):
    schema = strict_json(client.get("/api/openapi.json"))
    params = {p["name"] for p in schema["paths"]["/api/runs/{run_id}/decisions"]["get"]["parameters"]}
    assert params == set(F.ALL_PARAMS) | {"run_id"}
    assert {"/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/summary"} <= set(schema["paths"])


def test_the_docs_page_uses_our_own_static_files(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "cdn." not in page and "/static/ninja/swagger-ui-bundle.js" in page


# -- the token page -------------------------------------------------------------------------------


def test_the_token_page_shows_a_new_token_once(client_in, user):
    response = client_in.post("/tokens/", {"name": "ci script"}, follow=True)
    assert response.redirect_chain == [("/tokens/", 303)]
    stored = ApiToken.objects.get(user=user)
    page = response.content.decode()
    token = page.split('<code class="token">')[1].split("</code>")[0]
    assert hash_token(token) == stored.token_hash and stored.name == "ci script"
    assert token not in client_in.get("/tokens/").content.decode()
    assert stored.prefix in client_in.get("/tokens/").content.decode()
    assert Client(headers={"Authorization": f"Bearer {token}"}).get("/api/runs").status_code == 200


def test_reloading_the_page_after_making_a_token_makes_no_second_one(client_in, user):
    # post/redirect/get: the browser reloads the GET it was sent to, not the POST
    response = client_in.post("/tokens/", {"name": "once"})
    assert response.status_code == 303 and response["Location"] == "/tokens/"
    first, again = client_in.get("/tokens/"), client_in.get("/tokens/")
    assert '<code class="token">' in first.content.decode()
    assert '<code class="token">' not in again.content.decode()
    assert ApiToken.objects.filter(user=user).count() == 1


def test_a_token_can_be_revoked_by_its_owner_only(client_in, user, other_user):
    mine = ApiToken.issue(user)[0]
    theirs = ApiToken.issue(other_user)[0]
    assert client_in.post(f"/tokens/{theirs.pk}/revoke/").status_code == 404
    assert client_in.post(f"/tokens/{mine.pk}/revoke/").status_code == 302
    assert list(ApiToken.objects.all()) == [theirs]


def test_the_token_page_lists_only_your_tokens(client_in, user, other_user):
    ApiToken.issue(user, name="mine")
    ApiToken.issue(other_user, name="<b>theirs</b>")
    page = client_in.get("/tokens/").content.decode()
    assert "mine" in page and "theirs" not in page


def test_an_upload_with_an_empty_file_answers_one_line_per_file_and_imports_the_rest(api, samples_dir):
    folder = "dynoai/runs/large200k_s2_c7"
    files = upload(samples_dir, f"{folder}/session_replay.json", f"{folder}/manifest.json")
    files.append(SimpleUploadedFile("empty_session_replay.json", b""))
    response = api.post("/api/runs", {"file": files})
    assert response.status_code == 202
    results = {r["name"]: r for r in job_results(api, response)}
    assert len(results) == 3 and results["session_replay.json"]["status"] == "imported"
    assert results["empty_session_replay.json"]["status"] == "error"
    assert results["empty_session_replay.json"]["message"].startswith("empty_session_replay.json: ")
    assert results["manifest.json"]["status"] == "manifest"


def test_a_run_says_whether_it_is_ready_or_failed(api, import_sample):
    run = import_sample(REAL)
    data = strict_json(api.get(f"/api/runs/{run.pk}"))
    assert data["status"] == "ready" and data["failure"] is None
    assert data["name"] == "2025-12-15T17-28-01Z-e46826" and data["source_name"] == "session_replay.json"
