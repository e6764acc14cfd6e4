import gzip
import io
import json

import pytest
from django.db import DatabaseError

from viewer import ingest
from viewer.ingest import Source, run_ingest
from viewer.models import Decision, Run

BAD_FILES = [
    "array_lines_session.jsonl",
    "bad_timestamp_session_replay.json",
    "bomb_2GiB.study.log.gz",
    "broken_line_3_session.jsonl",
    "decisions_not_list_session_replay.json",
    "empty_session_replay.json",
    "fake_gzip.study.log.gz",
    "latin1_session_replay.json",
    "missing_action_session_replay.json",
    "no_decisions_session_replay.json",
    "not_json_session_replay.json",
    "random_binary.jsonl",
    "truncated.study.log.gz",
    "truncated_session_replay.json",
]


def ingest_one(samples_dir, user, relpath, **kw):
    (result,) = run_ingest(owner=user, sources=[Source(relpath.rsplit("/", 1)[-1], path=samples_dir / relpath)], **kw)
    return result


@pytest.mark.django_db
@pytest.mark.parametrize(
    "relpath, count",
    [
        ("dynoai/real_sample/session_replay.json", 119),
        ("session/combat_session_sample.jsonl", 44),
        ("session/session_debt_auction_ambush.jsonl", 123),
        ("study/2024-03-05T19-02-11.000001-0000000009-GUEST-41233.study.log", 0),
    ],
)
def test_each_real_sample_imports_with_its_exact_count(samples_dir, user, relpath, count):
    result = ingest_one(samples_dir, user, relpath)
    assert result.status == "imported", result.message
    assert result.run.decision_count == count == Decision.objects.filter(run=result.run).count()


@pytest.mark.django_db
def test_the_real_dynoai_sample_spans_22_ms(samples_dir, user):
    run = ingest_one(samples_dir, user, "dynoai/real_sample/session_replay.json").run
    assert run.duration_ms == pytest.approx(22.0)
    assert run.run_id == "2025-12-15T17-28-01Z-e46826"


@pytest.mark.django_db
def test_each_decisions_raw_equals_its_source_record(samples_dir, user):
    run = ingest_one(samples_dir, user, "dynoai/real_sample/session_replay.json").run
    source = json.loads((samples_dir / "dynoai/real_sample/session_replay.json").read_text())["decisions"]
    assert [json.loads(raw) for raw in run.decisions.order_by("seq").values_list("raw", flat=True)] == source

    session = ingest_one(samples_dir, user, "session/session_debt_auction_ambush.jsonl").run
    lines = (samples_dir / "session/session_debt_auction_ambush.jsonl").read_text().splitlines()
    assert list(session.decisions.order_by("seq").values_list("raw", flat=True)) == lines


@pytest.mark.django_db
def test_the_real_samples_manifest_mismatch_is_a_warning_that_explains_itself(samples_dir, user, import_sample):
    run = import_sample("dynoai/real_sample/session_replay.json", "dynoai/real_sample/manifest.json")
    assert run.manifest["ok"] is False
    assert len(run.warnings) == 1
    assert "CRLF" in run.warnings[0] and "1,903 line endings" in run.warnings[0]
    assert run.settings  # the manifest's config.args


@pytest.mark.django_db
@pytest.mark.parametrize("folder", ["large200k_s2_c7", "large200k_s4_c10"])
def test_the_runs_manifests_match_and_give_no_warning(import_sample, folder):
    run = import_sample(f"dynoai/runs/{folder}/session_replay.json", f"dynoai/runs/{folder}/manifest.json")
    assert run.manifest["ok"] is True
    assert run.warnings == []
    assert run.settings.get("smooth_passes") in (2, 4)


@pytest.mark.django_db
@pytest.mark.parametrize("name", BAD_FILES)
def test_each_bad_file_is_refused_whole_with_its_name(samples_dir, user, name):
    result = ingest_one(samples_dir, user, f"bad/{name}")
    assert result.status == "error"
    assert result.message.startswith(name + ": ")
    assert Run.objects.count() == 0 and Decision.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, detail",
    [
        ("broken_line_3_session.jsonl", "line 3"),
        ("array_lines_session.jsonl", "line 1"),
        ("bad_timestamp_session_replay.json", "line 1"),
        ("truncated_session_replay.json", "line 11"),
        ("bomb_2GiB.study.log.gz", "REPLAYWEB_MAX_DECOMPRESSED_BYTES"),
        ("fake_gzip.study.log.gz", "not gzip"),
        ("truncated.study.log.gz", "truncated"),
        ("latin1_session_replay.json", "not UTF-8"),
    ],
)
def test_refusals_say_where_and_what(samples_dir, user, name, detail):
    assert detail in ingest_one(samples_dir, user, f"bad/{name}").message


@pytest.mark.django_db
def test_the_gzip_bomb_stops_at_the_decompressed_size_limit(samples_dir, user, settings):
    settings.REPLAYWEB_MAX_DECOMPRESSED_BYTES = 64 * 1024**2
    result = ingest_one(samples_dir, user, "bad/bomb_2GiB.study.log.gz")
    assert "67,108,864" in result.message or "line" in result.message
    assert Run.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "relpath",
    ["odd/nan_values_session_replay.json", "hostile/xss_session_replay.json", "hostile/xss_session.jsonl"],
)
def test_odd_and_hostile_files_import(samples_dir, user, relpath):
    assert ingest_one(samples_dir, user, relpath).status == "imported"


@pytest.mark.django_db
def test_the_same_file_twice_is_a_duplicate_not_a_second_run(samples_dir, user):
    first = ingest_one(samples_dir, user, "session/combat_session_sample.jsonl")
    second = ingest_one(samples_dir, user, "session/combat_session_sample.jsonl")
    assert second.status == "duplicate" and second.run == first.run
    assert Run.objects.count() == 1


@pytest.mark.django_db
def test_another_user_may_import_the_same_file(samples_dir, user, other_user):
    ingest_one(samples_dir, user, "session/combat_session_sample.jsonl")
    assert ingest_one(samples_dir, other_user, "session/combat_session_sample.jsonl").status == "imported"


@pytest.mark.django_db
def test_an_oversized_upload_is_refused_by_the_setting(samples_dir, user, settings):
    settings.REPLAYWEB_MAX_UPLOAD_BYTES = 1000
    result = ingest_one(samples_dir, user, "dynoai/real_sample/session_replay.json")
    assert "REPLAYWEB_MAX_UPLOAD_BYTES" in result.message and Run.objects.count() == 0


@pytest.mark.django_db
def test_a_line_over_the_length_limit_is_refused(user, settings):
    settings.REPLAYWEB_MAX_LINE_BYTES = 100
    line = json.dumps({"event_type": "llm_call", "ts": "2025-10-31T15:32:23", "response": "x" * 500})
    (result,) = run_ingest(owner=user, sources=[Source("long.jsonl", fileobj=io.BytesIO(line.encode() + b"\n"))])
    assert result.status == "error" and "line 1" in result.message and Run.objects.count() == 0


@pytest.mark.django_db
def test_a_database_error_mid_import_leaves_no_run_and_no_decisions(samples_dir, user, monkeypatch):
    calls = {"n": 0}
    real_flush = ingest.DecisionWriter.flush

    def failing_flush(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise DatabaseError("disk I/O error (injected)")
        real_flush(self)

    monkeypatch.setattr(ingest.DecisionWriter, "flush", failing_flush)
    monkeypatch.setattr("django.conf.settings.REPLAYWEB_INSERT_BATCH", 10)
    result = ingest_one(samples_dir, user, "dynoai/real_sample/session_replay.json")
    assert result.status == "error" and "nothing was stored" in result.message
    assert Run.objects.count() == 0 and Decision.objects.count() == 0


@pytest.mark.django_db
def test_content_decides_the_format_not_the_name(samples_dir, user):
    data = (samples_dir / "session/combat_session_sample.jsonl").read_bytes()
    (result,) = run_ingest(owner=user, sources=[Source("renamed.txt", fileobj=io.BytesIO(data))])
    assert result.status == "imported" and result.run.kind == "session"
    gz = gzip.compress((samples_dir / "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log").read_bytes())
    (result,) = run_ingest(owner=user, sources=[Source("upload.bin", fileobj=io.BytesIO(gz))])
    assert result.status == "imported" and result.run.kind == "study"


@pytest.mark.django_db
def test_study_logs_are_pseudonymized_unless_asked(samples_dir, user, other_user):
    rel = "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"
    real_id = "gc-683268451013967869"
    run = ingest_one(samples_dir, user, rel).run
    assert real_id not in run.name and "gc-104523" not in run.name
    assert not run.decisions.filter(raw__contains=real_id).exists()
    assert not run.decisions.filter(agent=real_id).exists()
    kept = ingest_one(samples_dir, other_user, rel, keep_user_ids=True).run
    assert kept.decisions.filter(agent=real_id).exists()


@pytest.mark.django_db
def test_a_v12_session_says_on_the_run_which_times_were_moved_into_one_frame(user):
    path = __import__("pathlib").Path(__file__).parent / "data" / "session_v12_mixed_zones.jsonl"
    [result] = run_ingest(owner=user, sources=[Source(name=path.name, path=path)])
    run = result.run
    assert any("UTC offset" in w and "moved by" in w for w in run.warnings), run.warnings
    assert run.agents.get("player_01") and run.duration_ms < 10 * 60_000  # not five hours
