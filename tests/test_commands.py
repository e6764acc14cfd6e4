import io

import pytest
from django.core.management import call_command

from viewer.models import ApiToken, Run, hash_token

pytestmark = pytest.mark.django_db


def run_command(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_import_logs_walks_folders_and_pairs_each_manifest(samples_dir, user):
    code, out, _ = run_command("import_logs", str(samples_dir / "dynoai/runs"), "--user", "alice")
    assert code == 0
    runs = Run.objects.filter(owner=user)
    assert runs.count() == 2 and all(r.manifest["ok"] for r in runs)
    assert "output     runs/large200k_s2_c7/ConfidenceReport.json: kept with" in out  # beside its run, unlisted
    assert "imported   runs/large200k_s2_c7/session_replay.json: 363 decisions" in out


def test_import_logs_reports_each_bad_file_and_exits_1(samples_dir, user, settings):
    settings.REPLAYWEB_MAX_DECOMPRESSED_BYTES = 32 * 1024**2
    code, out, err = run_command("import_logs", str(samples_dir / "bad"), "--user", "alice")
    assert code == 1
    assert out.count("error      ") == 14
    assert "bad/broken_line_3_session.jsonl: line 3" in out
    assert "14 files failed" in err
    assert Run.objects.count() == 0


def test_import_logs_imports_the_same_file_once(samples_dir, user):
    path = str(samples_dir / "session/combat_session_sample.jsonl")
    run_command("import_logs", path, "--user", "alice")
    code, out, _ = run_command("import_logs", path, "--user", "alice")
    assert code == 0 and out.startswith("duplicate") and Run.objects.count() == 1


def test_reset_runs_needs_yes(samples_dir, user, import_sample):
    import_sample("session/combat_session_sample.jsonl")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("reset_runs")
    assert Run.objects.count() == 1
    run_command("reset_runs", "--yes")
    assert Run.objects.count() == 0


def test_create_token_prints_a_token_whose_hash_alone_is_stored(user):
    code, out, _ = run_command("create_token", "alice")
    token = out.strip()
    stored = ApiToken.objects.get(user=user)
    assert stored.token_hash == hash_token(token) and token not in stored.token_hash


def test_load_demo_imports_all_three_kinds_once(user):
    user.is_superuser = True
    user.save()
    run_command("load_demo", "--once")
    kinds = set(Run.objects.values_list("kind", flat=True))
    assert kinds == {"dynoai", "session", "study"}
    count = Run.objects.count()
    assert count == 5 and all(r.decision_count > 0 for r in Run.objects.all())
    assert all(r.manifest["ok"] for r in Run.objects.filter(kind="dynoai"))
    run_command("load_demo", "--once")
    assert Run.objects.count() == count


def test_import_logs_pairs_a_manifest_named_beside_its_replay(samples_dir, user):
    folder = samples_dir / "dynoai/runs/large200k_s2_c7"
    code, out, _ = run_command("import_logs", str(folder / "session_replay.json"), str(folder / "manifest.json"),
                               "--user", "alice")
    run = Run.objects.get()
    assert code == 0 and run.manifest["ok"] and run.settings["smooth_passes"] == 2


@pytest.mark.django_db
def test_ensure_admin_prints_the_login_where_make_run_serves(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("ensure_admin", "--url", "http://127.0.0.1:8101", stdout=out)
    assert out.getvalue().startswith("Log in at http://127.0.0.1:8101/login/\nusername: admin\npassword: ")
