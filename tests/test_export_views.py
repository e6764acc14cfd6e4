"""`/runs/<id>/export.<fmt>` and `manage.py export_run`."""
import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.http import StreamingHttpResponse
from django.urls import reverse

pytestmark = pytest.mark.django_db

REAL = "dynoai/real_sample/session_replay.json"


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def url(run, fmt, query=""):
    return reverse("run-export", args=[run.pk, fmt]) + (f"?{query}" if query else "")


@pytest.mark.parametrize(
    "fmt, content_type",
    [
        ("csv", "text/csv"),
        ("txt", "text/plain"),
        ("html", "text/html"),
        ("json", "application/json"),
        ("jsonl", "application/x-ndjson"),
    ],
)
def test_every_format_streams_as_an_attachment_named_after_the_run(
    client_in, import_sample, fmt, content_type
):
    run = import_sample(REAL)
    response = client_in.get(url(run, fmt))
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith(content_type)
    # named after the run (its run_id), not after the file every DynoAI run shares (session_replay.json)
    assert run.name == "2025-12-15T17-28-01Z-e46826"
    assert response["Content-Disposition"] == f'attachment; filename="2025-12-15T17-28-01Z-e46826_decisions.{fmt}"'
    assert body(response)


def test_export_txt_with_action_gradient_is_the_real_viewers_file(client_in, import_sample, samples_dir):
    run = import_sample(REAL)
    expected = (samples_dir / "dynoai/real_sample/gradient_decisions.txt").read_bytes()
    assert body(client_in.get(url(run, "txt", "action=gradient"))) == expected


def test_export_csv_carries_the_querystring_filters(client_in, import_sample, samples_dir):
    run = import_sample(REAL)
    doc = json.loads((samples_dir / REAL).read_text())
    expected = [i for i, d in enumerate(doc["decisions"]) if d.get("cell", {}).get("cylinder") == "r"][:5]
    text = body(client_in.get(url(run, "csv", "cylinder=r&limit=5"))).decode()
    assert [int(r["seq"]) for r in csv.DictReader(io.StringIO(text))] == expected


def test_a_bad_filter_parameter_is_a_400_naming_it(client_in, import_sample):
    run = import_sample(REAL)
    response = client_in.get(url(run, "csv", "rpm_min=lots"))
    assert response.status_code == 400
    assert response.content.decode().startswith("rpm_min:")


def test_an_unknown_format_is_a_404(client_in, import_sample):
    run = import_sample(REAL)
    assert client_in.get(f"/runs/{run.pk}/export.xlsx").status_code == 404


def test_another_users_run_is_a_404(client, import_sample, other_user):
    run = import_sample(REAL)
    client.force_login(other_user)
    assert client.get(url(run, "csv")).status_code == 404


def test_a_run_id_too_large_for_the_database_is_a_404(client_in):
    assert client_in.get("/runs/99999999999999999999999/export.csv").status_code == 404


def test_exports_need_a_login(client, import_sample):
    run = import_sample(REAL)
    response = client.get(url(run, "csv"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_session_jsonl_with_round_max_downloads_as_a_session_replay(client_in, import_sample, samples_dir):
    run = import_sample("session/combat_session_sample.jsonl")
    response = client_in.get(url(run, "jsonl", "round_max=1"))
    assert response["Content-Disposition"] == f'attachment; filename="session_{run.session_id}_replay.jsonl"'
    lines = (samples_dir / "session/combat_session_sample.jsonl").read_text().splitlines(keepends=True)
    expected, current = [], 0
    for line in lines:  # SPEC: the event's own round, else the nearest round_start's, 0 before the first
        event = json.loads(line)
        if event["event_type"] == "round_start" and event.get("round") is not None:
            current = event["round"]
        own = event.get("round")
        if (own if own is not None else current) <= 1:
            expected.append(line)
    assert body(response).decode().splitlines(keepends=True) == expected
    assert 0 < len(expected) < len(lines)


def test_hostile_html_export_is_served_with_the_content_security_policy(client_in, import_sample):
    run = import_sample("hostile/xss_session_replay.json")
    response = client_in.get(url(run, "html"))
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "<script" not in body(response).decode()


# -- manage.py export_run -------------------------------------------------------------------------


def test_export_run_writes_the_same_txt_as_the_page(import_sample, samples_dir, tmp_path):
    run = import_sample(REAL)
    out = tmp_path / "gradient.txt"
    call_command(
        "export_run", str(run.pk), "--format", "txt", "--action", "gradient", "--out", str(out),
        stderr=io.StringIO(),
    )
    assert out.read_bytes() == (samples_dir / "dynoai/real_sample/gradient_decisions.txt").read_bytes()


def test_export_run_takes_every_filter_as_an_option(import_sample, client_in):
    run = import_sample(REAL)
    stdout = io.StringIO()
    call_command(
        "export_run", str(run.pk), "--format", "csv", "--action", "afr", "--action", "smooth",
        "--rpm-min", "2500", "--kpa_max", "80", "--q", "cylinder", "--limit", "4", stdout=stdout,
    )
    query = "action=afr&action=smooth&rpm_min=2500&kpa_max=80&q=cylinder&limit=4"
    page = body(client_in.get(url(run, "csv", query)))
    assert stdout.getvalue().encode() == page
    assert page.count(b"\r\n") == 5


def test_export_run_reports_a_bad_filter_naming_it(import_sample):
    run = import_sample(REAL)
    with pytest.raises(CommandError, match="^since:"):
        call_command(
            "export_run", str(run.pk), "--format", "json", "--since", "yesterday", stdout=io.StringIO()
        )


def test_export_run_of_a_missing_run_is_an_error():
    with pytest.raises(CommandError, match="no run with id 4242"):
        call_command("export_run", "4242", "--format", "csv", stdout=io.StringIO())
