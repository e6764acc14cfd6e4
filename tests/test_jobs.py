"""Imports as jobs (viewer/jobs.py), run where they are enqueued (the suite's immediate backend).
Real worker processes are in test_jobs_workers.py."""
import datetime as dt
import re
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from viewer import jobs
from viewer.models import Decision, ImportJob, Run

pytestmark = pytest.mark.django_db

SESSION = "session/combat_session_sample.jsonl"


def upload_of(samples_dir, *relpaths):
    return [jobs.Upload(name=Path(p).name, path=samples_dir / p) for p in relpaths]


def test_each_log_is_a_job_of_its_own_and_ends_done_with_its_run(user, samples_dir):
    made, refused = jobs.submit(user, upload_of(samples_dir, SESSION, "dynoai/real_sample/session_replay.json"))
    assert refused == [] and len(made) == 2
    for job in made:
        job.refresh_from_db()
        assert job.status == "done" and job.run is not None and job.run.status == "ready"
        assert job.bytes_read == job.total_bytes and job.decisions == job.run.decision_count
        assert job.results[0]["status"] == "imported" and job.results[0]["run_id"] == job.run_id


def test_an_output_folder_stays_one_job_so_its_manifest_meets_its_replay(user, samples_dir):
    folder = "dynoai/runs/large200k_s4_c10"
    made, _ = jobs.submit(user, upload_of(samples_dir, f"{folder}/session_replay.json", f"{folder}/manifest.json"))
    assert len(made) == 1
    job = ImportJob.objects.get()
    assert job.name == "2 files (session_replay.json, …)" and job.status == "done"
    assert job.run.manifest["ok"] and job.run.settings["smooth_passes"] == 4


def test_a_job_records_its_progress_slice_by_slice(user, samples_dir, settings, monkeypatch):
    settings.REPLAYWEB_IMPORT_SLICE = 10
    monkeypatch.setattr(jobs, "REPORT_SECONDS", 0)
    seen = []
    report = jobs._Reporter.__call__

    def watching(self, p):
        report(self, p)
        seen.append(ImportJob.objects.values_list("stage", "decisions", "bytes_read").get(pk=self.job.pk))

    monkeypatch.setattr(jobs._Reporter, "__call__", watching)
    jobs.submit(user, upload_of(samples_dir, SESSION))
    parsing = [s for s in seen if s[0] == "parsing"]
    assert [d for _, d, _ in parsing][:4] == [10, 20, 30, 40]  # the session sample holds 44 decisions
    assert [b for _, _, b in parsing] == sorted(b for _, _, b in parsing) and parsing[0][2] > 0
    assert seen[0][0] == "checking" and seen[-1][0] in ("indexing", "aggregating", "parsing")


def test_a_run_being_imported_is_on_no_page(client_in, user, samples_dir, settings, monkeypatch):
    settings.REPLAYWEB_IMPORT_SLICE = 10
    pages = []

    def look(self, p):
        if p.run_id and p.stage == "parsing":
            listed = client_in.get("/").content.decode().split('id="run-table"')[1]
            pages.append((listed, client_in.get(f"/runs/{p.run_id}/").status_code))

    monkeypatch.setattr(jobs._Reporter, "__call__", look)
    jobs.submit(user, upload_of(samples_dir, SESSION))
    assert pages and all(status == 404 and "combat_session" not in body for body, status in pages)
    assert Run.objects.get().status == "ready"


def test_cancelling_a_running_job_deletes_what_it_stored(user, samples_dir, settings, monkeypatch):
    settings.REPLAYWEB_IMPORT_SLICE = 10
    monkeypatch.setattr(jobs, "REPORT_SECONDS", 0)
    report = jobs._Reporter.__call__

    def cancel_after_a_slice(self, p):
        if p.decisions >= 20:
            jobs.cancel(ImportJob.objects.get(pk=self.job.pk))
        report(self, p)

    monkeypatch.setattr(jobs._Reporter, "__call__", cancel_after_a_slice)
    job = jobs.submit(user, upload_of(samples_dir, SESSION))[0][0]
    job.refresh_from_db()
    assert job.status == "cancelled" and job.run is None
    assert Run.objects.count() == 0 and Decision.objects.count() == 0


def test_a_queued_job_cancelled_never_starts(user, samples_dir):
    job = jobs.submit(user, upload_of(samples_dir, SESSION), enqueue=False)[0][0]
    key = job.files[0]["key"]
    assert default_storage.exists(key)
    assert jobs.cancel(job).status == "cancelled"
    assert jobs.process(job.pk) == "cancelled"
    assert Run.objects.count() == 0 and not default_storage.exists(key)


def test_a_job_is_imported_once_however_often_the_queue_delivers_it(user, samples_dir):
    job = jobs.submit(user, upload_of(samples_dir, SESSION))[0][0]
    assert jobs.process(job.pk) == "done"  # delivered again: already claimed, nothing imported
    assert Run.objects.count() == 1


def test_a_failed_job_keeps_its_clear_message_and_leaves_no_run(user, samples_dir):
    job = jobs.submit(user, upload_of(samples_dir, "bad/broken_line_3_session.jsonl"))[0][0]
    job.refresh_from_db()
    assert job.status == "failed" and "broken_line_3_session.jsonl: line 3" in job.message
    assert Run.objects.count() == 0


def test_a_file_over_the_limit_is_refused_before_it_is_stored(user, samples_dir, settings):
    settings.REPLAYWEB_MAX_UPLOAD_BYTES = 1000
    made, refused = jobs.submit(user, upload_of(samples_dir, SESSION))
    assert made == [] and "over the 1,000-byte limit" in refused[0].message
    assert ImportJob.objects.count() == 0


def test_the_stored_files_go_when_the_job_ends(user, samples_dir):
    job = jobs.submit(user, upload_of(samples_dir, SESSION))[0][0]
    key = job.files[0]["key"]
    assert not default_storage.exists(key)
    assert not Path(default_storage.path(key)).parent.exists()  # nor does the upload's folder stay


def test_a_job_whose_worker_went_quiet_is_failed_and_its_half_run_removed(user, settings):
    run = Run.objects.create(owner=user, name="half", kind="session", source_name="half", size=1, sha256="0" * 64,
                             status=Run.Status.IMPORTING)
    quiet = timezone.now() - dt.timedelta(seconds=settings.REPLAYWEB_JOB_STALE_SECONDS + 5)
    job = ImportJob.objects.create(owner=user, name="big.jsonl", status="running", heartbeat=quiet, worker="w1:42",
                                   run_ids=[run.pk])
    lively = ImportJob.objects.create(owner=user, name="other.jsonl", status="running", heartbeat=timezone.now())
    assert jobs.reap() == 1
    job.refresh_from_db()
    assert job.status == "failed" and "w1:42" in job.message and "nothing was stored" in job.message
    assert not Run.objects.filter(pk=run.pk).exists()
    lively.refresh_from_db()
    assert lively.status == "running"


def api_client(user):
    from django.test import Client

    from viewer.models import ApiToken

    return Client(headers={"Authorization": f"Bearer {ApiToken.issue(user)[1]}"})


def test_a_queued_job_changes_nothing_until_a_worker_takes_it(user, samples_dir, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "replay"]}}
    with open(samples_dir / SESSION, "rb") as f:
        response = api_client(user).post("/api/runs", {"file": f})
    assert response.status_code == 202
    job = ImportJob.objects.get()
    assert response.json()["jobs"] == [{"id": job.pk, "name": "combat_session_sample.jsonl", "status": "queued"}]
    assert Run.objects.count() == 0  # the web process stored the file and queued it; it imports nothing
    from django_tasks_db.models import DBTaskResult

    task = DBTaskResult.objects.get()
    assert task.task_path == "viewer.jobs.run_job" and task.args_kwargs["args"] == [job.pk]
    assert jobs.process(job.pk) == "done" and Run.objects.get().decision_count == 44


def test_the_runs_list_shows_a_running_job_with_its_progress_and_a_cancel_button(client_in, user):
    job = ImportJob.objects.create(owner=user, name="big.jsonl", status="running", stage="parsing",
                                   started=timezone.now() - dt.timedelta(seconds=10), heartbeat=timezone.now(),
                                   bytes_read=25 * 1024**2, total_bytes=100 * 1024**2, decisions=250_000)
    body = client_in.get("/").content.decode()
    assert 'value="25"' in body and "25.0\xa0MB of 100.0\xa0MB" in body and "250000 decisions" in body
    assert "MB/s · about 3" in body and " s left to read" in body  # 2.5 MB/s for 75 MB more
    assert "Reading and storing decisions" in body
    assert f'action="/jobs/{job.pk}/cancel/"' in body and 'hx-trigger="every 1s"' in body


def test_a_job_computing_the_first_view_shows_an_indeterminate_bar_and_no_eta(client_in, user):
    ImportJob.objects.create(owner=user, name="big.jsonl", status="running", stage="aggregating",
                             started=timezone.now() - dt.timedelta(seconds=60), heartbeat=timezone.now(),
                             bytes_read=100, total_bytes=100, decisions=1000)
    body = client_in.get("/").content.decode()
    assert '<progress aria-label="Import of big.jsonl"></progress>' in body
    assert "Computing the run&#x27;s first view" in body and "left to read" not in body


def test_the_jobs_fragment_brings_the_runs_table_when_a_job_has_finished(client_in, user, samples_dir):
    since = timezone.now().isoformat()
    jobs.submit(user, upload_of(samples_dir, SESSION))
    body = client_in.get("/jobs/", {"since": since}, headers={"HX-Request": "true"}).content.decode()
    assert 'id="run-table" hx-swap-oob="true"' in body and "combat_session" in body
    later = client_in.get("/jobs/", {"since": timezone.now().isoformat()}, headers={"HX-Request": "true"})
    assert 'id="run-table"' not in later.content.decode()


def test_cancel_from_the_runs_list(client_in, user, samples_dir):
    job = jobs.submit(user, upload_of(samples_dir, SESSION), enqueue=False)[0][0]
    assert client_in.post(f"/jobs/{job.pk}/cancel/").status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_nobody_sees_or_cancels_another_users_job(client, user, other_user, samples_dir):
    job = jobs.submit(user, upload_of(samples_dir, SESSION), enqueue=False)[0][0]
    client.force_login(other_user)
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 404
    assert "combat_session" not in client.get("/").content.decode()
    job.refresh_from_db()
    assert job.status == "queued"


def test_the_api_follows_a_job_to_its_run_and_cancels_one(user, other_user, samples_dir):
    api = api_client(user)
    with open(samples_dir / SESSION, "rb") as f:
        queued = api.post("/api/runs", {"file": f}).json()["jobs"][0]
    job = api.get(f"/api/jobs/{queued['id']}").json()
    assert job["status"] == "done" and job["decisions"] == 44 and job["bytes_read"] == job["total_bytes"]
    assert job["results"][0]["status"] == "imported"
    assert api.get(f"/api/runs/{job['run_id']}").json()["decision_count"] == 44
    waiting = jobs.submit(user, upload_of(samples_dir, "dynoai/real_sample/session_replay.json"), enqueue=False)[0][0]
    assert api_client(other_user).delete(f"/api/jobs/{waiting.pk}").status_code == 404
    assert api.delete(f"/api/jobs/{waiting.pk}").json()["status"] == "cancelled"
    assert api.get("/api/jobs/99999999").status_code == 404


def test_a_job_checking_its_file_says_so_without_a_byte_count_that_stands_still(client_in, user):
    ImportJob.objects.create(owner=user, name="big.json", status="running", stage="checking",
                             started=timezone.now(), heartbeat=timezone.now(), total_bytes=400 * 1024**2)
    body = client_in.get("/").content.decode()
    assert '<progress aria-label="Import of big.json"></progress>' in body
    words = re.sub(r"[ \t\n]+", " ", body)  # (str.split would take the no-break spaces too)
    assert "Checking the file (size, sha256, duplicates) · 400.0\xa0MB" in words and "0\xa0bytes of" not in words


def test_the_jobs_fragment_takes_a_time_without_a_zone_as_utc(client_in, user, recwarn):
    response = client_in.get("/jobs/", {"since": "2026-01-01T00:00:00"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert not [w for w in recwarn if "naive datetime" in str(w.message)]
