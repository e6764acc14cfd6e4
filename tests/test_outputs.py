"""DynoAI output folders and batches (issue 13, points 6-10): pairing, outputs, failed runs, names."""
import io
import hashlib
import json
from pathlib import Path

import pytest
from helpers import job_results
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from viewer import outputs
from viewer.ingest import Source, run_ingest
from viewer.models import ApiToken, Run, RunOutput

pytestmark = pytest.mark.django_db

RUNS = "dynoai/runs"
S2, S4 = "large200k_s2_c7", "large200k_s4_c10"
LISTED = 14  # outputs[] of each manifest, session_replay.json included
UNLISTED_TOOL_FILES = {"ConfidenceReport.json", "HP_Map_Combined.csv", "HP_Map_Front.csv", "HP_Map_Rear.csv",
                       "Torque_Map_Combined.csv", "Torque_Map_Front.csv", "Torque_Map_Rear.csv"}


def folder_sources(samples_dir, *folders, group=None):
    """Every file of the folders, as import_logs walks them (group None: one group per folder)."""
    sources = []
    for folder in folders:
        for path in sorted((samples_dir / RUNS / folder).iterdir()):
            sources.append(Source(f"{folder}/{path.name}", path=path, group=group or folder))
    return sources


def by_name(results):
    return {r.name: r for r in results}


@pytest.fixture
def api(user):
    return Client(headers={"Authorization": f"Bearer {ApiToken.issue(user)[1]}"})


# -- 6. pairing ------------------------------------------------------------------------------------


def test_two_runs_uploaded_together_each_meet_their_own_manifest_whatever_the_order(samples_dir, user):
    files = [f"{S2}/session_replay.json", f"{S4}/session_replay.json", f"{S4}/manifest.json", f"{S2}/manifest.json"]
    results = run_ingest(owner=user, sources=[Source(p, path=samples_dir / RUNS / p, group="upload") for p in files])
    runs = {r.run.run_id: r.run for r in results if r.status == "imported"}
    assert runs["2026-11-21T08-43-07Z-92cc58"].settings["smooth_passes"] == 2
    assert runs["2026-11-21T08-43-10Z-1dbf4d"].settings["smooth_passes"] == 4
    assert all(run.manifest["ok"] and not run.warnings for run in runs.values())
    assert [r.status for r in results] == ["imported", "imported", "manifest", "manifest"]
    assert "describes" in results[2].message and "smooth_passes 4" in results[2].message


def test_a_replay_meets_its_manifest_by_the_crlf_sha256_when_the_run_ids_differ(samples_dir, user, tmp_path):
    doc = json.loads((samples_dir / "dynoai/real_sample/manifest.json").read_text())
    doc["run_id"] = "another-id"
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    other = json.loads((samples_dir / RUNS / S4 / "manifest.json").read_text())
    (tmp_path / "m2.manifest.json").write_text(json.dumps(other))  # a manifest of another run, listed first
    sources = [Source("m2.manifest.json", path=tmp_path / "m2.manifest.json", group="g"),
               Source("manifest.json", path=tmp_path / "manifest.json", group="g"),
               Source("session_replay.json", path=samples_dir / "dynoai/real_sample/session_replay.json", group="g")]
    results = run_ingest(owner=user, sources=sources)
    run = results[2].run
    assert run.manifest["manifest"] == "manifest.json" and "CRLF" in run.warnings[0]
    assert results[0].status == "skipped" and "names no uploaded file" in results[0].message


def test_a_manifest_that_names_no_uploaded_file_says_so(samples_dir, user):
    sources = [Source("session_replay.json", path=samples_dir / RUNS / S2 / "session_replay.json", group="u"),
               Source("manifest.json", path=samples_dir / RUNS / S4 / "manifest.json", group="u")]
    replay, manifest = run_ingest(owner=user, sources=sources)
    assert replay.status == "imported" and replay.run.manifest is None  # not given the other run's settings
    assert manifest.status == "skipped"
    assert manifest.message.startswith("manifest.json: names no uploaded file: its session_replay.json (sha256 50a588")


def test_a_manifest_uploaded_after_its_run_attaches_to_it(samples_dir, user):
    (first,) = run_ingest(owner=user, sources=[Source("session_replay.json", path=samples_dir / RUNS / S4 / "session_replay.json")])
    assert first.run.manifest is None and "toolkit" not in first.run.name
    (late,) = run_ingest(owner=user, sources=[Source("manifest.json", path=samples_dir / RUNS / S4 / "manifest.json")])
    run = Run.objects.get()
    assert late.status == "manifest" and late.run == run and "attached to" in late.message
    assert run.manifest["ok"] and run.settings["smooth_passes"] == 4
    assert run.name == "2026-11-21T08-43-10Z-1dbf4d · smooth_passes 4, clamp 10"
    assert RunOutput.objects.get(run=run, name="session_replay.json").status == "matched"
    (again,) = run_ingest(owner=user, sources=[Source("manifest.json", path=samples_dir / RUNS / S4 / "manifest.json")])
    assert "already checks" in again.message


# -- 7. the output folder ----------------------------------------------------------------------------


def test_a_whole_folder_is_one_run_with_every_output_verified(samples_dir, user):
    results = run_ingest(owner=user, sources=folder_sources(samples_dir, S2))
    (run,) = Run.objects.all()
    rows = {o.name: o for o in RunOutput.objects.filter(run=run)}
    listed = [o for o in rows.values() if o.expected_sha256]
    assert len(listed) == LISTED and all(o.status == "matched" for o in listed)
    assert UNLISTED_TOOL_FILES <= {n for n, o in rows.items() if o.status == "unlisted"}
    assert not any(o.status in ("missing", "differs") for o in rows.values())
    assert by_name(results)[f"{S2}/VE_Correction_Delta_DYNO.csv"].status == "output"
    assert by_name(results)[f"{S2}/manifest.json"].status == "manifest"


def test_grid_csvs_are_stored_parsed_as_well(samples_dir, user):
    run_ingest(owner=user, sources=folder_sources(samples_dir, S2))
    ve = RunOutput.objects.get(name="VE_Correction_Delta_DYNO.csv")
    assert ve.grid["kpa"] == [35, 50, 65, 80, 95] and ve.grid["rpm"][0] == 1500 and len(ve.grid["rpm"]) == 11
    assert ve.grid["values"][0] == [5.75, 2.67, 1.04, 0.28, -0.59]  # '+5.75: the apostrophe guard dropped
    assert RunOutput.objects.get(name="HP_Map_Front.csv").grid["values"][0] == [None] * 5  # empty = no data
    assert RunOutput.objects.get(name="Coverage_Front.csv").grid["values"][0][0] == 5987
    assert RunOutput.objects.get(name="Diagnostics_Report.txt").grid is None


@pytest.mark.parametrize(
    "text, why",
    [
        (b"RPM,35,50\n1500,1,2,3\n", "line 2 has 4 fields"),
        (b"RPM,35,50\n1500,'+1,abc\n", "line 2, field 3"),
        (b"RPM\n1500\n", "kPa bins"),
        (b"\xff\xfeRPM", "not UTF-8"),
    ],
)
def test_a_csv_that_is_not_a_grid_is_said_and_kept_whole(text, why):
    with pytest.raises(outputs.OutputError, match=why):
        outputs.parse_grid(text)


def test_an_edited_output_differs_with_why_and_an_absent_one_is_missing(samples_dir, user, tmp_path):
    folder = samples_dir / RUNS / S2
    edited = (folder / "VE_Correction_Delta_DYNO.csv").read_bytes().replace(b"5.75", b"9.99")
    (tmp_path / "VE_Correction_Delta_DYNO.csv").write_bytes(edited)
    (tmp_path / "Coverage_Front.csv").write_bytes(b"RPM,35\n1500,x\n")
    sources = [Source(n, path=folder / n, group="g") for n in ("session_replay.json", "manifest.json")]
    sources += [Source(n, path=tmp_path / n, group="g") for n in ("VE_Correction_Delta_DYNO.csv", "Coverage_Front.csv")]
    results = by_name(run_ingest(owner=user, sources=sources))
    rows = {o.name: o for o in RunOutput.objects.all()}
    assert rows["VE_Correction_Delta_DYNO.csv"].status == "differs"
    assert "sha256 cffb54e49ab8… expected" in rows["VE_Correction_Delta_DYNO.csv"].why
    assert "differs (" in results["VE_Correction_Delta_DYNO.csv"].message
    assert rows["Diagnostics_Report.txt"].status == "missing" and rows["Diagnostics_Report.txt"].data is None
    assert rows["Coverage_Front.csv"].grid is None and "not read as a grid" in results["Coverage_Front.csv"].warnings[0]


def test_an_output_file_with_crlf_endings_lost_differs_by_line_endings_only():
    data = b"a\nb\n"
    crlf = outputs.file_facts(b"a\r\nb\r\n")
    status, why = outputs.verdict({"size": crlf.size, "sha256": crlf.sha256}, outputs.file_facts(data), "m.json")
    assert status == "differs" and "only its 2 line endings differ" in why


def test_outputs_api_lists_each_file_with_its_check(api, samples_dir, user):
    run_ingest(owner=user, sources=folder_sources(samples_dir, S2))
    run = Run.objects.get()
    items = api.get(f"/api/runs/{run.pk}/outputs").json()["items"]
    ve = next(i for i in items if i["name"] == "VE_Correction_Delta_DYNO.csv")
    assert {k: ve[k] for k in ("status", "size", "sha256", "expected_sha256", "why")} == {
        "status": "matched", "size": 471, "sha256": ve["expected_sha256"], "expected_sha256":
        "cffb54e49ab83d639a25e099db3428ce136e1daabb414e655b2634b41a317d89", "why": ""}
    assert items[0]["name"] == "VE_Correction_Delta_DYNO.csv"  # the manifest's order
    assert next(i for i in items if i["name"] == "ConfidenceReport.json")["status"] == "unlisted"


def test_each_output_is_served_back_unchanged_to_its_owner_only(client, samples_dir, user, other_user):
    run_ingest(owner=user, sources=folder_sources(samples_dir, S2))
    run = Run.objects.get()
    client.force_login(user)
    for name in ("VE_Correction_Delta_DYNO.csv", "Anomaly_Hypotheses.json", "session_replay.json"):
        response = client.get(f"/runs/{run.pk}/outputs/{name}")
        assert response.status_code == 200 and response.content == (samples_dir / RUNS / S2 / name).read_bytes()
        assert "html" not in response["Content-Type"]
    assert client.get(f"/runs/{run.pk}/outputs/nothing.csv").status_code == 404
    client.force_login(other_user)
    assert client.get(f"/runs/{run.pk}/outputs/VE_Correction_Delta_DYNO.csv").status_code == 404


def test_the_run_page_shows_its_output_files(client_in, samples_dir, user):
    run_ingest(owner=user, sources=folder_sources(samples_dir, S2))
    body = client_in.get(f"/runs/{Run.objects.get().pk}/").content.decode()
    assert "Output files" in body and "VE_Correction_Delta_DYNO.csv" in body and "✓ matched" in body


# -- 8. a failed toolkit run -------------------------------------------------------------------------


@pytest.fixture
def failed_manifest(samples_dir, tmp_path) -> Path:
    doc = json.loads((samples_dir / RUNS / S2 / "manifest.json").read_text())
    doc["run_id"] = "2026-11-21T09-00-00Z-dead00"
    doc["status"] = {"code": "error", "message": "no torque column", "last_stage": "load"}
    doc["outputs"] = []
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(doc, separators=(",", ":")))
    return path


def test_a_failed_toolkit_run_is_a_run_listed_as_failed(client_in, user, failed_manifest):
    (result,) = run_ingest(owner=user, sources=[Source("manifest.json", path=failed_manifest)])
    run = result.run
    assert result.status == "imported" and "failed at stage load: no torque column" in result.message
    assert run.status == "failed" and run.decision_count == 0 and not run.decisions.exists()
    assert run.failure["stage"] == "load" and run.failure["message"] == "no torque column"
    assert run.failure["input"]["path"] == "inputs/large_resampled_200k.csv"
    assert run.run_id == "2026-11-21T09-00-00Z-dead00" and run.settings["clamp"] == 7.0
    assert "failed" in client_in.get("/").content.decode()
    page = client_in.get(f"/runs/{run.pk}/").content.decode()
    assert "This toolkit run failed" in page and "no torque column" in page
    (again,) = run_ingest(owner=user, sources=[Source("manifest.json", path=failed_manifest)])
    assert again.status == "duplicate" and Run.objects.count() == 1


def test_a_failed_toolkit_runs_files_are_verified_against_its_manifest(client_in, user, samples_dir, tmp_path):
    doc = json.loads((samples_dir / RUNS / S2 / "manifest.json").read_text())
    doc["run_id"] = "2026-11-21T09-00-00Z-dead01"
    doc["status"] = {"code": "error", "message": "no torque column", "last_stage": "load"}
    report = b"load failed: no torque column\n"
    doc["outputs"] = [{"name": "Diagnostics_Report.txt", "path": "Diagnostics_Report.txt", "size": len(report),
                       "sha256": hashlib.sha256(report).hexdigest()}]
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    (tmp_path / "Diagnostics_Report.txt").write_bytes(report)
    results = run_ingest(owner=user, sources=[Source(n, path=tmp_path / n, group="g")
                                             for n in ("manifest.json", "Diagnostics_Report.txt")])
    run = next(r.run for r in results if r.run is not None)
    assert run.status == "failed"
    assert [(o.name, o.status) for o in run.output_files()] == [("Diagnostics_Report.txt", "matched")]
    page = client_in.get(f"/runs/{run.pk}/").content.decode()
    assert "mismatch" not in page  # no replay was checked, so no manifest verdict on it


# -- 10. names -----------------------------------------------------------------------------------------


def test_runs_are_named_from_what_they_say_about_themselves(samples_dir, user, import_sample):
    dyn = import_sample(f"{RUNS}/{S4}/session_replay.json", f"{RUNS}/{S4}/manifest.json")
    assert dyn.name == "2026-11-21T08-43-10Z-1dbf4d · smooth_passes 4, clamp 10"
    assert dyn.source_name == "session_replay.json"
    defaults = import_sample(f"{RUNS}/{S2}/session_replay.json", f"{RUNS}/{S2}/manifest.json")
    assert defaults.name == "2026-11-21T08-43-07Z-92cc58 · toolkit defaults"  # 2 passes, clamp 7: the CLI's own
    session = import_sample("session/session_debt_auction_ambush.jsonl")
    assert session.name.endswith(" · " + session.session_id.replace("-", "")[:8])
    study = import_sample("study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log")
    assert study.name.endswith(" · 2024-03-05") and "104523" not in study.name  # the pseudonym, not the id


def test_the_owner_renames_a_run_and_exports_take_the_name(client_in, api, import_sample, other_user):
    run = import_sample(f"{RUNS}/{S4}/session_replay.json", f"{RUNS}/{S4}/manifest.json")
    response = api.patch(f"/api/runs/{run.pk}", {"name": "  passes 4  run "}, content_type="application/json")
    assert response.status_code == 200 and response.json()["name"] == "passes 4 run"
    assert response.json()["source_name"] == "session_replay.json"
    assert api.patch(f"/api/runs/{run.pk}", {"name": " "}, content_type="application/json").status_code == 400
    assert client_in.post(f"/runs/{run.pk}/rename/", {"name": "the s4 run"}).status_code == 302
    run.refresh_from_db()
    assert run.name == "the s4 run"
    export = client_in.get(f"/runs/{run.pk}/export.csv")
    assert 'filename="the_s4_run_decisions.csv"' in export["Content-Disposition"]
    client_in.force_login(other_user)
    assert client_in.post(f"/runs/{run.pk}/rename/", {"name": "mine"}).status_code == 404


# -- done when: the two folders together ----------------------------------------------------------------


def check_two_runs(api):
    runs = {r.settings["smooth_passes"]: r for r in Run.objects.all()}
    assert sorted(runs) == [2, 4] and len(runs) == Run.objects.count()
    for run in runs.values():
        rows = RunOutput.objects.filter(run=run)
        listed = [o for o in rows if o.expected_sha256]
        assert len(listed) == LISTED and all(o.status == "matched" for o in listed), [(o.name, o.why) for o in listed]
    diff = api.get(f"/api/diff?a={runs[2].pk}&b={runs[4].pk}").json()
    changed = {c["path"]: (c["a"], c["b"]) for c in diff["settings"]}
    assert changed["smooth_passes"] == (2, 4) and changed["clamp"] == (7.0, 10.0)


def test_the_two_folders_as_one_multipart_upload_give_two_verified_runs(api, samples_dir, user):
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for folder in (S2, S4)
             for p in sorted((samples_dir / RUNS / folder).iterdir())
             if not p.name.startswith("expected_")]  # the sample's own expectations: no toolkit files
    response = api.post("/api/runs", {"file": files})
    assert response.status_code == 202, response.content
    check_two_runs(api)
    statuses = [r["status"] for r in job_results(api, response)]
    assert statuses.count("imported") == 2 and "error" not in statuses


def test_the_two_folders_through_import_logs_give_two_verified_runs(api, samples_dir, user):
    from django.core.management import call_command

    call_command("import_logs", str(samples_dir / RUNS / S2), str(samples_dir / RUNS / S4), "--user", "alice",
                 stdout=io.StringIO())
    check_two_runs(api)


# -- bad input beside a run: a line of its own, nothing half-stored --------------------------------------


def test_a_bad_manifest_or_an_oversized_output_is_refused_alone(samples_dir, user, tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "MAX_OUTPUT_BYTES", 1000)
    (tmp_path / "manifest.json").write_text('{"schema_id": "dynoai.manifest@1", "outputs": {"x": 1}}')
    (tmp_path / "run.manifest.json").write_text('{"schema_id": "dynoai.manifest@1", ')
    folder = samples_dir / RUNS / S2
    sources = [Source("session_replay.json", path=folder / "session_replay.json", group="g"),
               Source("manifest.json", path=tmp_path / "manifest.json", group="g"),
               Source("run.manifest.json", path=tmp_path / "run.manifest.json", group="g"),
               Source("Anomaly_Hypotheses.json", path=folder / "Anomaly_Hypotheses.json", group="g"),
               Source("Coverage_Front.csv", path=folder / "Coverage_Front.csv", group="g")]
    results = by_name(run_ingest(owner=user, sources=sources))
    assert results["manifest.json"].message == "manifest.json: manifest's 'outputs' is not a list (got dict)"
    assert results["run.manifest.json"].status == "error" and "invalid JSON" in results["run.manifest.json"].message
    assert results["Anomaly_Hypotheses.json"].message.startswith("Anomaly_Hypotheses.json: 8,844 bytes, over the")
    assert results["session_replay.json"].status == "imported"
    assert results["Coverage_Front.csv"].status == "output"
    assert set(RunOutput.objects.values_list("name", flat=True)) == {"Coverage_Front.csv"}  # the replay: over 1000 too


# -- manifests that name things no file can be (found in review) ------------------------------------


def _replay_with_manifest(samples_dir, tmp_path, outputs_list):
    replay = samples_dir / "dynoai/real_sample/session_replay.json"
    doc = json.loads((samples_dir / "dynoai/real_sample/manifest.json").read_text())
    doc["outputs"] = outputs_list
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    return [Source("session_replay.json", path=replay, group="g"), Source("manifest.json", path=tmp_path / "manifest.json", group="g")]


def test_a_manifest_whose_replay_path_names_a_folder_leaves_a_run_page_that_opens(samples_dir, user, client_in, tmp_path):
    replay = samples_dir / "dynoai/real_sample/session_replay.json"
    sha = __import__("hashlib").sha256(replay.read_bytes()).hexdigest()
    entry = {"name": "session_replay.json", "path": "out/", "schema": "session_replay", "sha256": sha}
    results = run_ingest(owner=user, sources=_replay_with_manifest(samples_dir, tmp_path, [entry]))
    run = next(r.run for r in results if r.status == "imported")
    assert client_in.get(f"/runs/{run.pk}/").status_code == 200


def test_a_manifest_size_past_any_column_is_no_size_and_no_crash(samples_dir, user, tmp_path):
    replay = samples_dir / "dynoai/real_sample/session_replay.json"
    run_ingest(owner=user, sources=[Source("session_replay.json", path=replay, group="first")])  # then its manifest
    entry = {"name": "x.csv", "path": "x.csv", "schema": "grid", "size_bytes": 99999999999999999999}
    results = run_ingest(owner=user, sources=_replay_with_manifest(samples_dir, tmp_path, [entry]))
    assert {r.status for r in results} <= {"duplicate", "manifest", "imported", "skipped"}, [r.message for r in results]


def test_an_output_file_downloads_exactly_as_stored_even_with_bidi_controls(user, client_in):
    text = b'{"note": "\\u202e reversed", "raw": "\xe2\x80\xae"}\n'
    run = Run.objects.create(owner=user, name="r", kind="dynoai", source_name="r", size=1, sha256="0" * 64)
    RunOutput.objects.create(run=run, name="Anomaly_Hypotheses.json", data=text, size=len(text), sha256="x")
    response = client_in.get(f"/runs/{run.pk}/outputs/Anomaly_Hypotheses.json")
    assert response.content == text and response["Content-Disposition"].startswith("attachment")
