import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from viewer.models import Run

pytestmark = pytest.mark.django_db


def upload(client, samples_dir, *relpaths, htmx=True, **extra):
    files = [SimpleUploadedFile(p.rsplit("/", 1)[-1], (samples_dir / p).read_bytes()) for p in relpaths]
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post("/upload/", {"files": files, **extra}, headers=headers)


def test_the_runs_list_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_several_files_upload_at_once_with_a_result_line_each(client_in, samples_dir):
    response = upload(client_in, samples_dir, "dynoai/real_sample/session_replay.json", "dynoai/real_sample/manifest.json",
                      "session/combat_session_sample.jsonl", "bad/broken_line_3_session.jsonl")
    body = response.content.decode()
    assert response.status_code == 202  # queued: a worker imports them (here, on the spot)
    assert body.count('class="result imported"') == 2
    assert "broken_line_3_session.jsonl: line 3" in body
    assert "CRLF" in body  # the manifest warning, shown with the result
    assert Run.objects.count() == 2
    assert 'id="run-table" hx-swap-oob="true"' in body  # the list refreshes too


def test_an_upload_without_javascript_renders_the_whole_page(client_in, samples_dir):
    response = upload(client_in, samples_dir, "session/combat_session_sample.jsonl", htmx=False)
    assert response.status_code == 202 and "<html" in response.content.decode()
    assert Run.objects.get().decision_count == 44


@pytest.mark.parametrize("name", ["bomb_2GiB.study.log.gz", "random_binary.jsonl", "latin1_session_replay.json"])
def test_a_refused_file_fails_its_job_with_a_clear_line_and_stores_nothing(client_in, samples_dir, name, settings):
    from viewer.models import ImportJob

    settings.REPLAYWEB_MAX_DECOMPRESSED_BYTES = 32 * 1024**2
    response = upload(client_in, samples_dir, f"bad/{name}")
    assert response.status_code == 202
    job = ImportJob.objects.get()
    assert job.status == "failed" and job.message.startswith(name) and job.results[0]["status"] == "error"
    body = response.content.decode()
    assert 'class="result error"' in body and name in body.split('id="jobs"')[1]
    assert Run.objects.count() == 0


def test_uploading_requires_the_csrf_token(samples_dir, user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert upload(client, samples_dir, "session/combat_session_sample.jsonl").status_code == 403
    assert Run.objects.count() == 0


def test_the_study_pseudonym_checkbox_keeps_real_ids(client_in, samples_dir):
    rel = "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"
    upload(client_in, samples_dir, rel, keep_user_ids="on")
    assert Run.objects.get().decisions.filter(agent="gc-683268451013967869").exists()


def test_another_user_cannot_list_open_or_delete_the_run(client, samples_dir, user, other_user, import_sample):
    run = import_sample("session/combat_session_sample.jsonl")
    client.force_login(other_user)
    assert run.name not in client.get("/").content.decode()
    assert client.get(f"/runs/{run.pk}/").status_code == 404
    assert client.post(f"/runs/{run.pk}/delete/").status_code == 404
    assert Run.objects.filter(pk=run.pk).exists()


def test_the_owner_can_delete_a_run(client_in, import_sample):
    run = import_sample("session/combat_session_sample.jsonl")
    assert client_in.post(f"/runs/{run.pk}/delete/").status_code == 302
    assert not Run.objects.filter(pk=run.pk).exists()


def test_the_runs_list_shows_durations_as_people_read_them(client_in, import_sample):
    import_sample("dynoai/real_sample/session_replay.json")
    import_sample("dynoai/runs/large200k_s2_c7/session_replay.json")
    import_sample("session/combat_session_sample.jsonl")
    body = client_in.get("/").content.decode()
    assert ">22.0 ms<" in body and ">1.17 s<" in body
    assert ">5 min 15 s<" in body  # the session's 314,790 ms, never "314.79s"


def test_an_empty_file_beside_a_good_run_gets_its_own_line_and_the_run_imports(client_in, samples_dir):
    folder = "dynoai/runs/large200k_s4_c10"
    files = [SimpleUploadedFile(n, (samples_dir / folder / n).read_bytes()) for n in ("session_replay.json", "manifest.json")]
    files.append(SimpleUploadedFile("notes.txt", b""))
    response = client_in.post("/upload/", {"files": files}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 202
    assert body.count('class="result ') == 3
    assert body.count('class="result imported"') == 1 and "notes.txt: the file is empty" in body
    run = Run.objects.get()
    assert run.manifest["ok"] and run.settings["smooth_passes"] == 4


def test_the_runs_list_names_each_run_beside_its_file_and_offers_a_rename(client_in, import_sample):
    run = import_sample("dynoai/runs/large200k_s4_c10/session_replay.json", "dynoai/runs/large200k_s4_c10/manifest.json")
    body = client_in.get("/").content.decode()
    assert "2026-11-21T08-43-10Z-1dbf4d · smooth_passes 4, clamp 10" in body
    assert f'action="/runs/{run.pk}/rename/"' in body and ">session_replay.json<" in body


def test_a_failed_toolkit_runs_upload_line_says_it_failed(client_in, samples_dir, tmp_path):
    import json

    doc = json.loads((samples_dir / "dynoai/runs/large200k_s2_c7/manifest.json").read_text())
    doc.update(status={"code": "error", "message": "no torque column", "last_stage": "load"}, outputs=[])
    files = [SimpleUploadedFile("manifest.json", json.dumps(doc).encode())]
    body = client_in.post("/upload/", {"files": files}, headers={"HX-Request": "true"}).content.decode()
    assert "a failed toolkit run" in body and "no torque column" in body and "0 decisions" not in body


def test_runs_of_one_input_are_grouped_as_a_sweep_with_a_compare_link(client_in, import_sample):
    folder = "dynoai/runs/large200k_s2_c7", "dynoai/runs/large200k_s4_c10"
    a = import_sample(f"{folder[0]}/session_replay.json", f"{folder[0]}/manifest.json")
    b = import_sample(f"{folder[1]}/session_replay.json", f"{folder[1]}/manifest.json")
    alone = import_sample("session/combat_session_sample.jsonl")
    body = client_in.get("/").content.decode()
    assert body.count("Sweep of") == 1
    assert "Sweep of 2 runs of <span class=\"mono\">large_resampled_200k.csv</span>" in body
    assert f'href="/compare/?run={b.pk}&amp;run={a.pk}"' in body
    sweep = body.split('<tbody class="sweep">', 1)[1].split("</tbody>", 1)[0]
    assert f'href="/runs/{a.pk}/"' in sweep and f'href="/runs/{b.pk}/"' in sweep
    assert f'href="/runs/{alone.pk}/"' not in sweep  # a run without an input stays a row of its own


def test_a_run_without_a_manifest_is_no_sweep(client_in, import_sample):
    import_sample("dynoai/runs/large200k_s2_c7/session_replay.json")
    import_sample("dynoai/runs/large200k_s4_c10/session_replay.json")
    assert "Sweep of" not in client_in.get("/").content.decode()


def test_a_sweep_stands_where_its_newest_run_is_and_counts_failed_runs_of_its_input():
    from viewer.views.runs import sweeps

    def run(pk, sha=None, failed=False):
        given = {"input": {"path": "C:\\dyno\\pull_3.csv", "sha256": sha}} if sha else None
        return Run(pk=pk, manifest=None if failed else given, failure=given if failed else None)

    runs = [run(5, "AB"), run(4), run(3, "ab", failed=True), run(2, "cd"), run(1, "AB")]
    groups = sweeps(runs)
    assert [[r.pk for r in g.runs] for g in groups] == [[5, 3, 1], [4], [2]]
    assert groups[0].sweep and groups[0].input_name == "pull_3.csv"
    assert groups[0].compare_url == "/compare/?run=5&run=3&run=1"
    assert not groups[1].sweep and not groups[2].sweep


def test_a_run_still_being_followed_is_listed_as_live(client_in, import_sample):
    run = import_sample("session/combat_session_sample.jsonl")
    Run.objects.filter(pk=run.pk).update(status=Run.Status.LIVE)
    assert '<span class="badge live"' in client_in.get("/").content.decode()
    Run.objects.filter(pk=run.pk).update(status=Run.Status.READY)
    assert '<span class="badge live"' not in client_in.get("/").content.decode()


# -- The runs list for hundreds of runs (issue 20): search, filters, sort, paging, tags, bulk actions --

def make_runs(owner, count, start=0, **fields):
    return [Run.objects.create(owner=owner, **{"name": f"run {n:03d}", "kind": "session", "source_name": f"f{n}.jsonl",
                                               "size": 1, "sha256": f"{owner.pk}-{n}"} | fields)
            for n in range(start, start + count)]


def listed(body: str) -> list[str]:
    import re

    table = body.split('id="run-table"', 1)[1]
    return re.findall(r'<a href="/runs/\d+/">(run \d+)</a>', table)


def test_the_list_pages_through_hundreds_of_runs_by_a_next_link(client_in, user):
    import re

    make_runs(user, 120)
    seen, url = [], "/"
    while url:
        body = client_in.get(url).content.decode()
        seen += listed(body)
        found = re.search(r'<a href="(/\?[^"]*after=\d+[^"]*)"[^>]*rel="next"', body)
        url = found[1].replace("&amp;", "&") if found else ""
    assert len(seen) == 120 and len(set(seen)) == 120 and seen[0] == "run 119"


def test_filters_and_sort_live_in_the_url_and_the_next_page_keeps_them(client_in, user):
    make_runs(user, 60, kind="dynoai")
    make_runs(user, 3, start=60)  # sessions: another kind
    body = client_in.get("/?kind=dynoai&sort=name&q=run").content.decode()
    assert listed(body)[:3] == ["run 000", "run 001", "run 002"]
    assert "60 runs match" in body
    nxt = body.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert "kind=dynoai" in nxt and "sort=name" in nxt and "q=run" in nxt and "after=" in nxt
    assert listed(client_in.get(nxt).content.decode()) == [f"run {n:03d}" for n in range(50, 60)]


def test_the_table_alone_answers_an_htmx_request(client_in, user):
    make_runs(user, 3)
    response = client_in.get("/?sort=name", headers={"HX-Request": "true", "HX-Target": "run-table"})
    body = response.content.decode()
    assert body.startswith('<div id="run-table"') and "<html" not in body
    assert listed(body) == ["run 000", "run 001", "run 002"] and "HX-Target" in response["Vary"]


def test_the_filter_forms_empty_fields_leave_the_url_and_htmx_pushes_the_same_clean_url(client_in, user):
    make_runs(user, 2)
    response = client_in.get("/?q=run&kind=&tag=&status=&sort=name")
    assert response.status_code == 302 and response["Location"] == "/?q=run&sort=name"
    fragment = client_in.get("/?q=run&kind=&sort=name", headers={"HX-Request": "true", "HX-Target": "run-table"})
    assert fragment.status_code == 200 and fragment["HX-Push-Url"] == "/?q=run&sort=name"


def test_a_filter_with_no_match_says_so_and_offers_to_clear_the_filters(client_in, user):
    make_runs(user, 2)
    body = client_in.get("/?q=nothing-like-this").content.decode()
    assert "No run matches these filters" in body and '<a href="/">clear filters</a>' in body
    assert "No runs yet" not in body


def test_a_new_users_empty_list_says_how_to_import_a_first_log(client_in):
    body = client_in.get("/").content.decode()
    assert "No runs yet." in body and "import_logs PATH" in body and "load_demo --user alice" in body
    assert 'id="run-filters"' not in body  # nothing to filter yet


def test_a_bad_list_parameter_is_a_400_naming_it_with_clear_filters(client_in, user):
    make_runs(user, 1)
    response = client_in.get("/?sort=size")
    body = response.content.decode()
    assert response.status_code == 400 and "sort:" in body and "Clear filters" in body


def test_status_importing_lists_the_unfinished_imports_and_failed_the_failed_ones(client_in, user, other_user):
    from viewer.models import ImportJob

    make_runs(user, 2)
    ImportJob.objects.create(owner=user, name="big.jsonl", status="running")
    ImportJob.objects.create(owner=user, name="broken.jsonl", status="failed", message="broken.jsonl: line 3: not JSON")
    ImportJob.objects.create(owner=other_user, name="theirs.jsonl", status="failed")
    importing = client_in.get("/?status=importing").content.decode()
    assert "big.jsonl" in importing and "broken.jsonl" not in importing and listed(importing) == []
    assert "No run is being imported now" in importing
    failed = client_in.get("/?status=failed").content.decode()
    assert "broken.jsonl: line 3" in failed and "big.jsonl" not in failed and "theirs.jsonl" not in failed
    ready = client_in.get("/?status=ready").content.decode()
    assert "big.jsonl" not in ready and len(listed(ready)) == 2


def test_bulk_tag_tags_only_your_own_ticked_runs_and_the_tag_filters_the_list(client_in, user, other_user):
    from viewer.models import RunTag

    mine = make_runs(user, 3)
    theirs = make_runs(other_user, 1)[0]
    ids = [mine[0].pk, mine[2].pk, theirs.pk]
    response = client_in.post("/runs/bulk/", {"do": "tag", "tag": "  first   pass ", "run": ids, "next": "/?sort=name"})
    assert response.status_code == 303 and response["Location"] == "/?sort=name"
    assert sorted(RunTag.objects.values_list("run_id", "name")) == [(mine[0].pk, "first pass"), (mine[2].pk, "first pass")]
    body = client_in.get("/?tag=first+pass").content.decode()
    assert listed(body) == ["run 002", "run 000"] and "Tagged 2 runs “first pass”." in body
    assert 'href="/?tag=first%20pass"' in body  # each tag on a row filters the list by it
    client_in.post("/runs/bulk/", {"do": "untag", "tag": "first pass", "run": [mine[0].pk]})
    assert list(RunTag.objects.values_list("run_id", flat=True)) == [mine[2].pk]


def test_bulk_delete_deletes_only_your_own_ticked_runs(client_in, user, other_user):
    mine = make_runs(user, 3)
    theirs = make_runs(other_user, 1)[0]
    response = client_in.post("/runs/bulk/", {"do": "delete", "run": [mine[0].pk, mine[1].pk, theirs.pk]})
    assert response.status_code == 303 and response["Location"] == "/"
    assert set(Run.objects.values_list("pk", flat=True)) == {mine[2].pk, theirs.pk}
    only_theirs = client_in.post("/runs/bulk/", {"do": "delete", "run": [theirs.pk]})
    assert only_theirs.status_code == 404  # as for a run that does not exist
    assert Run.objects.filter(pk=theirs.pk).exists()


def test_bulk_actions_without_javascript_show_the_ticked_runs_and_a_post_form(client_in, user):
    mine = make_runs(user, 2)
    query = f"do=delete&run={mine[0].pk}&run={mine[1].pk}"
    response = client_in.get(f"/runs/bulk/?{query}", HTTP_REFERER="http://testserver/?sort=name&after=9")
    body = response.content.decode()
    assert response.status_code == 200 and Run.objects.count() == 2  # a GET changes nothing
    assert 'method="post" action="/runs/bulk/"' in body and "csrfmiddlewaretoken" in body
    assert "Delete 2 runs" in body and 'name="next" value="/?sort=name"' in body
    tag = client_in.get(f"/runs/bulk/?do=tag&run={mine[0].pk}").content.decode()
    assert 'name="tag"' in tag and "give a tag" not in tag  # asked for, not yet an error


def test_bulk_actions_require_the_csrf_token_and_a_tag_to_tag_with(user):
    from django.test import Client

    run = make_runs(user, 1)[0]
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/runs/bulk/", {"do": "delete", "run": [run.pk]}).status_code == 403
    client = Client()
    client.force_login(user)
    response = client.post("/runs/bulk/", {"do": "tag", "tag": " ", "run": [run.pk]})
    assert response.status_code == 400 and "give a tag" in response.content.decode()
    assert Run.objects.filter(pk=run.pk).exists()


def test_the_demo_runs_are_introduced_one_line_each_with_a_link_to_their_most_telling_page(client_in, user, tmp_path):
    from pathlib import Path

    from viewer import demo
    from viewer.ingest import Source, run_ingest

    for group in demo.write_all(tmp_path):
        run_ingest(owner=user, sources=[Source("demo/" + str(p.relative_to(tmp_path)), path=p, group=str(p.parent))
                                        for p in group])
    runs = {Path(r.source_name).parts[1]: r for r in Run.objects.all()}
    a, b = runs["dyno_passes2_clamp7"], runs["dyno_passes4_clamp10"]
    s, r = runs["session_demo_depot_heist.jsonl"], runs["session_demo_depot_heist_replay.jsonl"]
    body = client_in.get("/").content.decode()
    tour = body.split('class="card tour"', 1)[1].split("</section>", 1)[0]
    assert tour.count("<li>") == 5
    assert f'href="/diff/?a={a.pk}&amp;b={b.pk}#divergence"' in tour
    assert f'href="/diff/?a={s.pk}&amp;b={r.pk}#divergence"' in tour and "round 3" in tour
    assert f'href="/runs/{a.pk}/cells/story/?rpm=3500&amp;kpa=95"' in tour
    assert f'href="/runs/{s.pk}/replay/"' in tour
    assert "the replay types the essay back" in tour
    assert 'class="card tour"' not in client_in.get("/?kind=study").content.decode()  # a filtered list is no tour


def test_the_owner_filter_picks_among_runs_shared_with_you_and_bulk_actions_leave_them_alone(client_in, user, other_user):
    from viewer.models import RunShare, RunTag

    mine = make_runs(user, 1)[0]
    shared = make_runs(other_user, 1, start=1)[0]
    RunShare.objects.create(run=shared, user=user, created_by=other_user)
    body = client_in.get("/").content.decode()
    assert sorted(listed(body)) == ["run 000", "run 001"] and '<option value="mallory"' in body
    assert listed(client_in.get("/?owner=mallory").content.decode()) == ["run 001"]
    assert listed(client_in.get("/?owner=alice").content.decode()) == ["run 000"]
    assert "shared by mallory" in body and f'form="delete-{shared.pk}"' not in body and f'form="delete-{mine.pk}"' in body
    client_in.post("/runs/bulk/", {"do": "tag", "tag": "mine", "run": [mine.pk, shared.pk]})
    client_in.post("/runs/bulk/", {"do": "delete", "run": [shared.pk]})
    assert list(RunTag.objects.values_list("run_id", flat=True)) == [mine.pk]
    assert Run.objects.filter(pk=shared.pk).exists()


def test_the_imports_poll_of_a_filtered_list_keeps_its_filters_in_the_jobs_and_the_table(client_in, user):
    import datetime as dt

    from django.utils import timezone

    from viewer.models import ImportJob

    make_runs(user, 3)
    make_runs(user, 1, start=3, kind="dynoai")
    ImportJob.objects.create(owner=user, name="big.jsonl", status="running")
    ImportJob.objects.create(owner=user, name="done.jsonl", status="done", finished=timezone.now())
    page = client_in.get("/?kind=dynoai&sort=name").content.decode()
    assert "list=kind%3Ddynoai%26sort%3Dname" in page  # the poll carries the list's filters
    since = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    poll = client_in.get("/jobs/", {"since": since, "list": "kind=dynoai&status=importing"}, headers={"HX-Request": "true"})
    body = poll.content.decode()
    assert "big.jsonl" in body and "done.jsonl" not in body  # status=importing: the unfinished ones
    assert 'id="run-table" hx-swap-oob="true"' in body and "No run is being imported now" in body
    assert listed(body) == []


def test_opening_the_upload_url_goes_to_the_runs_list_where_its_form_is(client_in):
    response = client_in.get("/upload/")
    assert response.status_code == 303 and response["Location"] == "/"
