"""OTLP/JSON Lines traces (issue 22): viewer/readers/otlp.py, each span a decision."""
import datetime as dt
import gzip
import io
import json
from pathlib import Path

import pytest

from viewer import kinds
from viewer.readers import otlp
from viewer.readers.base import Limits, ReadError, RunInfo

OTLP = Path(__file__).parent / "data" / "otlp"
AGENT = OTLP / "agent_trace.jsonl"  # invoke_agent planner -> chat, execute_tool, chat (in two batches)
TWO = OTLP / "two_traces.jsonl"  # two traces of quote-api, interleaved, with ties in start time
EVERY = OTLP / "every_type.jsonl"  # one span with an attribute of every OTLP value type
BROKEN = OTLP / "broken_line.jsonl"  # its second line cut short


def read_bytes(data: bytes):
    info = RunInfo(kind="trace")
    return list(otlp.read(io.BytesIO(data), info, limits=Limits())), info


def read_path(path):
    return read_bytes(path.read_bytes())


def line(*spans, service="svc"):
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "s"}, "spans": list(spans)}]}]}) + "\n"


def span(**over):
    base = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "work",
            "startTimeUnixNano": "1764511200000000000", "endTimeUnixNano": "1764511200250000000"}
    return {**base, **over}


def test_an_agent_trace_is_its_spans_in_start_order_with_operation_agent_duration_and_ancestry():
    decisions, info = read_path(AGENT)
    assert [d.action for d in decisions] == ["invoke_agent", "chat", "execute_tool", "chat"]
    assert [d.seq for d in decisions] == [0, 1, 2, 3]
    # the tool span has no agent name of its own: it is the agent's that ran it
    assert [d.agent for d in decisions] == ["planner"] * 4
    assert decisions[0].ts == dt.datetime(2025, 11, 30, 14, 0, tzinfo=dt.timezone.utc)
    assert decisions[1].ts == dt.datetime(2025, 11, 30, 14, 0, 0, 15000, tzinfo=dt.timezone.utc)
    assert [d.metric for d in decisions] == [4200.0, 1600.0, 400.0, 2120.0]  # durations, ms
    assert decisions[2].reason == "invoke_agent planner › execute_tool get_weather"
    assert decisions[1].values["gen_ai.usage.input_tokens"] == 97
    assert decisions[1].values["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert info.settings == {"traces": [{"trace": 1, "trace_id": "5b8efff798038103d269b633813fc60c", "spans": 4}]}
    assert info.source == "travel-agent"


def test_prompts_and_responses_are_searchable_from_message_attributes_and_from_events():
    decisions, _ = read_path(AGENT)
    assert "weather in Paris" in decisions[1].text  # gen_ai.input.messages
    assert "14 °C and cloudy" in decisions[3].text  # the gen_ai.choice event
    assert decisions[0].text == ""


def test_each_decision_keeps_its_span_resource_and_scope_as_read():
    decisions, _ = read_path(AGENT)
    record = json.loads(decisions[0].raw)
    assert record["span"]["spanId"] == "eee19b7ec3c1b174" and record["span"]["startTimeUnixNano"] == "1764511200000000000"
    assert record["resource"]["schemaUrl"] == "https://opentelemetry.io/schemas/1.37.0"
    assert record["scope"] == {"name": "opentelemetry.instrumentation.openai_v2", "version": "2.1b0"}


def test_several_traces_are_one_run_numbered_by_first_start_with_ties_broken_by_span_id():
    decisions, info = read_path(TWO)
    # both roots start at 0 ms: span 53995c3f... (trace 4bf9...) before b7ad6b71... (trace 0af7...)
    assert [(d.round, d.action, d.metric) for d in decisions] == [
        (1, "GET /quote", 500.0), (2, "GET /quote", 300.0), (2, "chat", 240.0), (1, "chat", 470.0)]
    assert [t["trace_id"] for t in info.settings["traces"]] == [
        "4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c"]


def test_every_attribute_value_type_is_read_typed():
    (decision,), _ = read_path(EVERY)
    assert decision.values == {
        "a.string": "text", "a.int": 9007199254740993, "a.int.number": 42, "a.double": 0.25, "a.bool": False,
        "a.array": ["x", 2, 3.5, True], "a.kvlist": {"inner": {"deep": 7}, "list": []},
        "a.bytes": "aGVsbG8=", "a.empty": None,
    }
    assert isinstance(decision.values["a.double"], float)


def test_a_broken_line_is_refused_naming_its_line():
    with pytest.raises(ReadError) as caught:
        read_path(BROKEN)
    assert caught.value.line == 2 and "invalid JSON" in caught.value.message


@pytest.mark.parametrize("bad, words", [
    ('{"resourceLogs": []}\n', 'no "resourceSpans"'),
    (line(span(spanId="xyz")), "spanId"),
    (line(span(traceId="0" * 32)), "traceId"),
    (line(span(name="")), "no name"),
    (line(span(startTimeUnixNano="soon")), "startTimeUnixNano"),
    (line(span(attributes=[{"key": "k", "value": {"intValue": "1.5"}}])), "intValue"),
    (line(span(attributes=[{"key": "k", "value": {"stringValue": "a", "intValue": "1"}}])), "one of"),
    (line(span(attributes=[{"value": {"stringValue": "a"}}])), "string key"),
])
def test_a_bad_span_is_refused_naming_the_line_and_what_is_wrong(bad, words):
    with pytest.raises(ReadError) as caught:
        read_bytes(line(span()).encode() + bad.encode())
    assert caught.value.line == 2 and words in caught.value.message


def test_spans_starting_at_the_same_time_are_ordered_by_span_id():
    a = span(spanId="00000000000000b2")
    b = span(spanId="00000000000000a1")
    decisions, _ = read_bytes((line(a) + line(b)).encode())
    assert [json.loads(d.raw)["span"]["spanId"] for d in decisions] == ["00000000000000a1", "00000000000000b2"]


def test_otlp_files_are_detected_by_content_even_gzipped_and_under_any_name():
    head = AGENT.read_bytes()[:4096]
    assert kinds.sniff(head, "spans.json") == "trace"
    assert kinds.sniff(gzip.decompress(gzip.compress(head)), "whatever.log") == "trace"
    session_head = b'{"event_type": "session_start", "ts": "2025-01-01T00:00:00"}\n'
    assert kinds.sniff(session_head, "x.jsonl") == "session"
