"""Every run as OTLP/JSON Lines (issue 22): viewer/otlp.py, /runs/<id>/export.otlp.jsonl and
`export_run --format otlp`; valid by opentelemetry-proto; the round trips."""
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from viewer import kinds
from viewer.ingest import Source, run_ingest
from viewer.models import Decision

OTLP = Path(__file__).parent / "data" / "otlp"
DEBT = "session/session_debt_auction_ambush.jsonl"


@pytest.fixture
def import_path(user):
    def _import(path: Path, name: str | None = None):
        (result,) = run_ingest(owner=user, sources=[Source(name=name or path.name, path=path, group="test")])
        assert result.status == "imported", result.message
        return result.run

    return _import


def export(client, run, query="") -> list[str]:
    answer = client.get(f"/runs/{run.pk}/export.otlp.jsonl{query}")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("application/x-ndjson")
    return b"".join(answer.streaming_content).decode().splitlines()


def spans_of(lines: list[str]) -> list[dict]:
    return [s for text in lines for rs in json.loads(text)["resourceSpans"]
            for ss in rs["scopeSpans"] for s in ss["spans"]]


def decisions(run) -> list[tuple]:
    return list(Decision.objects.filter(run=run).order_by("seq").values_list("action", "t_ms", "agent", "values"))


@pytest.mark.django_db
def test_the_debt_auction_exports_as_one_trace_every_line_a_valid_export_request(client_in, import_sample):
    run = import_sample(DEBT)
    lines = export(client_in, run)
    for text in lines:
        Parse(text, ExportTraceServiceRequest())  # raises on anything the protobuf schema refuses
    spans = spans_of(lines)
    assert len(spans) == run.decision_count
    assert {s["traceId"] for s in spans} == {run.sha256[:32]}
    assert [s["spanId"] for s in spans[:3]] == ["0000000000000001", "0000000000000002", "0000000000000003"]
    assert all(len(bytes.fromhex(s["traceId"])) == 16 and len(bytes.fromhex(s["spanId"])) == 8 for s in spans)


@pytest.mark.django_db
def test_an_llm_call_carries_the_genai_attributes_and_every_span_its_decision(client_in, import_sample):
    run = import_sample(DEBT)
    call = Decision.objects.filter(run=run, action="llm_call").order_by("seq").first()
    span = next(s for s in spans_of(export(client_in, run)) if s["spanId"] == f"{call.seq + 1:016x}")
    attrs = {a["key"]: a["value"] for a in span["attributes"]}
    assert attrs["gen_ai.operation.name"] == {"stringValue": "chat"}
    assert attrs["gen_ai.request.model"] == {"stringValue": call.values["model"]}
    assert attrs["gen_ai.usage.input_tokens"] == {"intValue": str(call.values["tokens"]["input"])}
    assert attrs["gen_ai.usage.output_tokens"] == {"intValue": str(call.values["tokens"]["output"])}
    messages = json.loads(attrs["gen_ai.input.messages"]["stringValue"])
    assert messages[0]["parts"][0]["type"] == "text" and messages[0]["parts"][0]["content"]
    assert json.loads(attrs["gen_ai.output.messages"]["stringValue"])[0]["role"] == "assistant"
    assert json.loads(attrs["replayweb.values"]["stringValue"]) == call.values
    assert attrs["replayweb.action"] == {"stringValue": "llm_call"} and attrs["replayweb.agent"] == {"stringValue": call.agent}


@pytest.mark.django_db
def test_a_run_exported_as_otlp_and_imported_again_has_the_same_decisions(client_in, import_sample, import_path,
                                                                        tmp_path):
    run = import_sample(DEBT)
    path = tmp_path / "debt.otlp.jsonl"
    path.write_text("\n".join(export(client_in, run)) + "\n")
    again = import_path(path)
    assert again.kind == "trace"
    assert decisions(again) == decisions(run)
    rounds = list(Decision.objects.filter(run=run).order_by("seq").values_list("round", "reason"))
    assert list(Decision.objects.filter(run=again).order_by("seq").values_list("round", "reason")) == rounds


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["agent_trace.jsonl", "two_traces.jsonl", "every_type.jsonl"])
def test_an_otlp_file_imported_and_exported_again_keeps_every_span_and_attribute(client_in, import_path, name):
    run = import_path(OTLP / name)
    lines = export(client_in, run)
    for text in lines:
        Parse(text, ExportTraceServiceRequest())
    given = spans_of((OTLP / name).read_text().splitlines())
    back = spans_of(lines)
    key = lambda s: (s["traceId"], s["spanId"])  # noqa: E731
    assert sorted(back, key=key) == sorted(given, key=key)
    # each trace is a line of its own, its resource and scope as they were
    assert len(lines) == len({s["traceId"] for s in given})
    first = json.loads(lines[0])["resourceSpans"][0]
    source = json.loads((OTLP / name).read_text().splitlines()[0])["resourceSpans"][0]
    assert first["resource"] == source["resource"] and first["schemaUrl"] == source["schemaUrl"]


@pytest.mark.django_db
def test_the_export_takes_the_run_pages_filters(client_in, import_path):
    run = import_path(OTLP / "agent_trace.jsonl")
    spans = spans_of(export(client_in, run, "?action=chat"))
    assert [s["spanId"] for s in spans] == ["eee19b7ec3c1b175", "eee19b7ec3c1b177"]


@pytest.mark.django_db
def test_export_run_writes_the_same_otlp_as_the_page(client_in, import_path, tmp_path):
    run = import_path(OTLP / "two_traces.jsonl")
    out = tmp_path / "out.jsonl"
    call_command("export_run", str(run.pk), "--format", "otlp", "--out", str(out), stderr=io.StringIO())
    assert out.read_text().splitlines() == export(client_in, run)
    answer = client_in.get(f"/runs/{run.pk}/export.otlp.jsonl")
    assert answer["Content-Disposition"].endswith('two_traces_decisions.otlp.jsonl"')


def note_events(span: dict) -> list[dict]:
    return [{a["key"]: a["value"] for a in e["attributes"]} for e in span.get("events") or []
            if e["name"] == "replayweb.note"]


@pytest.mark.django_db
@pytest.mark.parametrize("source", ["debt auction", "agent trace"])
def test_a_decisions_notes_travel_as_events_on_its_span(client_in, user, import_sample, import_path, source):
    from viewer import notes

    run = import_sample(DEBT) if source == "debt auction" else import_path(OTLP / "agent_trace.jsonl")
    notes.add(run, user, seq=2, text="Bid looks **too high**", labels=["suspect"])
    lines = export(client_in, run)
    for text in lines:
        Parse(text, ExportTraceServiceRequest())
    raw = Decision.objects.get(run=run, seq=2).raw
    record = kinds.profile(run).otlp_record
    noted_span = record(raw)["span"]["spanId"] if record else "0000000000000003"  # seq 2's own span, or seq + 1
    noted = {s["spanId"]: note_events(s) for s in spans_of(lines)}
    assert [span for span, found in noted.items() if found] == [noted_span]
    (said,) = noted[noted_span]
    assert said["replayweb.note.text"] == {"stringValue": "Bid looks **too high**"}
    assert said["replayweb.note.labels"] == {"arrayValue": {"values": [{"stringValue": "suspect"}]}}
    assert said["replayweb.note.author"] == {"stringValue": user.username}


@pytest.mark.django_db
def test_a_note_on_a_span_read_with_null_events_still_exports(client_in, user, import_path, tmp_path):
    from viewer import notes

    request = json.loads((OTLP / "agent_trace.jsonl").read_text().splitlines()[0])
    for rs in request["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                span["events"] = None
    path = tmp_path / "null_events.jsonl"
    path.write_text(json.dumps(request) + "\n")
    run = import_path(path)
    notes.add(run, user, seq=0, labels=["ok"])
    events = [note_events(s) for s in spans_of(export(client_in, run))]
    assert sum(len(found) for found in events) == 1
