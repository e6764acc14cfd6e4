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
