"""OpenTelemetry traces as OTLP/JSON Lines (one `{"resourceSpans": [...]}` object a line, as the
Collector's file exporter writes them): each span a decision, in start-time order.

- seq: spans sorted by start time, ties by span id, then trace id (a total order).
- action: the GenAI operation (`gen_ai.operation.name`: chat, execute_tool, invoke_agent...) where
  the span has one, else the span's name.
- agent: `gen_ai.agent.name`, the span's own or its nearest ancestor's (a tool the agent ran is the
  agent's), else the resource's `service.name`.
- ts: `startTimeUnixNano` (to the microsecond); `metric`: the span's duration in milliseconds.
- values: the span's attributes, typed (OTLP's stringValue, intValue, doubleValue, boolValue,
  arrayValue, kvlistValue; bytesValue stays its base64 text), under their dotted names.
- reason: the span's name path, root first ("invoke_agent planner › chat gpt-4o"): its ancestry, which
  the diff aligns by.
- text: the prompt and the response (`gen_ai.input.messages` / `gen_ai.output.messages`, or the
  `gen_ai.*.message` / `gen_ai.choice` events), for the `q` search.
- round: the trace's number in the file (1, 2...: by first start), so several traces in one file are
  one run with a trace facet. A span ReplayWeb wrote itself (`replayweb.*` attributes, viewer/otlp.py)
  gives back the decision it was: its action, reason, values, round and agent.
- raw: `{"resource", "scope", "span"}` as read, so an export gives back every span and attribute.

A file is refused at its first bad line (not JSON, no resourceSpans, a span without ids, name or
start time, an attribute value of no known type), naming the line. All spans are held until the end
of the file: their order is known only then.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import orjson

from .base import Decision, ReadError, as_float, as_int, json_safe, label, short
from .lines import iter_lines, parse_object

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
HEX = re.compile(r"[0-9a-fA-F]+")
SNIFF = re.compile(r'\s*\{\s*"resourceSpans"\s*:')
OPERATION, AGENT, SERVICE = "gen_ai.operation.name", "gen_ai.agent.name", "service.name"
INPUT_TOKENS, OUTPUT_TOKENS = "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"
INPUT_MESSAGES, OUTPUT_MESSAGES = "gen_ai.input.messages", "gen_ai.output.messages"
OWN = "replayweb."  # attributes of a span viewer/otlp.py wrote from a decision
PATH_SEP = " › "
MAX_PATH = 300


def sniff(head: bytes, name: str) -> bool:
    """An OTLP/JSON trace line starts the file."""
    return SNIFF.match(head[:4096].decode("utf-8", errors="replace").lstrip("\ufeff")) is not None


# -- AnyValue -----------------------------------------------------------------------------------


def any_value(value: Any, what: str, line: int) -> Any:
    """An OTLP AnyValue as plain JSON: {"intValue": "3"} -> 3; {} (no value) -> None."""
    if not isinstance(value, dict):
        raise ReadError(f"{what}: an attribute value is an object like {{\"stringValue\": ...}}", line)
    if not value:
        return None
    if len(value) != 1:
        raise ReadError(f"{what}: an attribute value has one of stringValue, intValue, doubleValue, boolValue, "
                        f"arrayValue, kvlistValue, bytesValue (got {', '.join(sorted(value))[:120]})", line)
    ((kind, v),) = value.items()
    if kind == "stringValue" and isinstance(v, str):
        return v
    if kind == "boolValue" and isinstance(v, bool):
        return v
    if kind == "intValue":
        n = _int(v)
        if n is not None:
            return n
    elif kind == "doubleValue":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if v in ("NaN", "Infinity", "-Infinity"):
            return None  # a JSON column cannot hold them
    elif kind == "bytesValue" and isinstance(v, str):
        return v  # base64 as written
    elif kind == "arrayValue" and isinstance(v, dict):
        items = v.get("values", [])
        if isinstance(items, list):
            return [any_value(x, what, line) for x in items]
    elif kind == "kvlistValue" and isinstance(v, dict):
        return key_values(v.get("values", []), what, line)
    raise ReadError(f"{what}: {kind} {_brief(v)} is not a valid OTLP value", line)


def _int(v: Any) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?\d{1,20}", v):
        return int(v)
    return None


def _brief(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 60 else text[:59] + "…"


def key_values(items: Any, what: str, line: int) -> dict:
    """[{"key": k, "value": AnyValue}, ...] -> {k: value}."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ReadError(f"{what}: attributes are a list of {{\"key\", \"value\"}}", line)
    out: dict = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ReadError(f"{what}: an attribute without a string key", line)
        out[item["key"]] = any_value(item.get("value", {}), f"{what}: attribute {item['key'][:80]!r}", line)
    return out


# -- spans --------------------------------------------------------------------------------------


def _nanos(value: Any, what: str, line: int, required: bool = True) -> int | None:
    n = _int(value)
    if n is None or n < 0:
        if value in (None, "", 0, "0") and not required:
            return None
        raise ReadError(f"{what} {_brief(value)} is not a time in nanoseconds since 1970", line)
    return n


def _hex_id(value: Any, size: int, what: str, line: int, required: bool = True) -> str:
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or len(value) != size or not HEX.fullmatch(value) or not value.strip("0"):
        raise ReadError(f"{what} {_brief(value)} is not {size} hex digits (not all zero)", line)
    return value.lower()


def _objects(value: Any, what: str, line: int) -> list:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ReadError(f"{what} is not a list of objects", line)
    return value


class Span:
    __slots__ = ("trace", "id", "parent", "name", "start", "end", "attrs", "service", "events", "raw", "line")

    def __init__(self, span: dict, resource: dict, scope: dict, service: str, line: int):
        what = f"span {_brief(span.get('name'))}"
        self.line = line
        self.trace = _hex_id(span.get("traceId"), 32, f"{what}: traceId", line)
        self.id = _hex_id(span.get("spanId"), 16, f"{what}: spanId", line)
        self.parent = _hex_id(span.get("parentSpanId"), 16, f"{what}: parentSpanId", line, required=False)
        name = span.get("name")
        if not isinstance(name, str) or not name:
            raise ReadError(f"span {self.id}: no name", line)
        self.name = label(name, "span name", line)
        self.start = _nanos(span.get("startTimeUnixNano"), f"{what}: startTimeUnixNano", line)
        self.end = _nanos(span.get("endTimeUnixNano"), f"{what}: endTimeUnixNano", line, required=False)
        self.attrs = key_values(span.get("attributes"), what, line)
        self.events = [(e.get("name"), key_values(e.get("attributes"), f"{what}: event", line))
                       for e in _objects(span.get("events"), f"{what}: events", line)]
        self.service = service
        record = {"resource": resource, "scope": scope, "span": span}
        self.raw = orjson.dumps(record).decode()

    @property
    def key(self) -> tuple:
        return (self.start, self.id, self.trace)


def spans_of(obj: dict, line: int) -> Iterator[Span]:
    batches = obj.get("resourceSpans")
    if not isinstance(batches, list):
        raise ReadError('not an OTLP/JSON trace line (no "resourceSpans" list)', line)
    for batch in batches:
        if not isinstance(batch, dict):
            raise ReadError("resourceSpans holds something that is not an object", line)
        resource = batch.get("resource") or {}
        if not isinstance(resource, dict):
            raise ReadError("resource is not an object", line)
        service = key_values(resource.get("attributes"), "resource", line).get(SERVICE)
        resource = {**resource, **({"schemaUrl": batch["schemaUrl"]} if batch.get("schemaUrl") else {})}
        for scoped in _objects(batch.get("scopeSpans"), "scopeSpans", line):
            scope = scoped.get("scope") or {}
            if not isinstance(scope, dict):
                raise ReadError("scope is not an object", line)
            scope = {**scope, **({"schemaUrl": scoped["schemaUrl"]} if scoped.get("schemaUrl") else {})}
            for span in _objects(scoped.get("spans"), "spans", line):
                yield Span(span, resource, scope, service if isinstance(service, str) else "", line)


# -- decisions ----------------------------------------------------------------------------------


def _messages_text(value: Any) -> list[str]:
    """The texts of GenAI messages: a JSON string or a list of {role, parts: [{content}]} / {content}."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    out: list[str] = []
    for m in value if isinstance(value, list) else [value]:
        if isinstance(m, str):
            out.append(m)
        elif isinstance(m, dict):
            for part in m.get("parts") or []:
                if isinstance(part, dict) and isinstance(part.get("content"), str):
                    out.append(part["content"])
            if isinstance(m.get("content"), str):
                out.append(m["content"])
            if isinstance(m.get("message"), dict):  # a gen_ai.choice event's body
                out += _messages_text(m["message"])
    return out


def prompt_and_response(span: Span) -> str:
    parts = _messages_text(span.attrs.get(INPUT_MESSAGES)) + _messages_text(span.attrs.get(OUTPUT_MESSAGES))
    for name, attrs in span.events:
        if isinstance(name, str) and name.startswith("gen_ai.") and (name.endswith(".message") or name == "gen_ai.choice"):
            parts += _messages_text(attrs.get("content") if "content" in attrs else attrs)
    return "\n\n".join(p for p in parts if p)


def _path(span: Span, by_id: dict) -> str:
    names = [span.name]
    seen = {span.id}
    up = by_id.get((span.trace, span.parent))
    while up is not None and up.id not in seen:
        names.append(up.name)
        seen.add(up.id)
        up = by_id.get((up.trace, up.parent))
    text = PATH_SEP.join(reversed(names))
    return text if len(text) <= MAX_PATH else "…" + text[-(MAX_PATH - 1):]


def _own(attrs: dict) -> dict | None:
    """What a span ReplayWeb wrote says of its decision: {action, reason, values, round, agent}."""
    if OWN + "action" not in attrs:
        return None
    values = attrs.get(OWN + "values")
    try:
        values = json.loads(values) if isinstance(values, str) else {}
    except ValueError:
        values = {}
    return {"action": attrs[OWN + "action"], "reason": attrs.get(OWN + "reason"), "values": values,
            "round": attrs.get(OWN + "round"), "agent": attrs.get(OWN + "agent"), "cell": attrs.get(OWN + "cell")}


def read(stream, info, *, limits, keep_user_ids=False) -> Iterator[Decision]:
    spans: list[Span] = []
    for line, text in iter_lines(stream, limits):
        obj, _lenient = parse_object(text, line)
        spans.extend(spans_of(obj, line))
    spans.sort(key=lambda s: s.key)
    by_id = {(s.trace, s.id): s for s in spans}
    traces: dict[str, int] = {}
    for s in spans:
        traces.setdefault(s.trace, len(traces) + 1)
    services = sorted({s.service for s in spans if s.service})
    info.run_id = next(iter(traces), "")
    info.source = ", ".join(services)[:500]
    info.settings = {"traces": [{"trace": n, "trace_id": t, "spans": sum(s.trace == t for s in spans)}
                                for t, n in traces.items()]}
    ends = [s.end for s in spans if s.end is not None]
    if ends:
        info.ends_at = EPOCH + dt.timedelta(microseconds=max(ends) // 1000)  # the last span's end
    for seq, s in enumerate(spans):
        yield _decision(seq, s, by_id, traces[s.trace], _agent(s, by_id))


def _agent(span: Span, by_id: dict) -> str:
    up, seen = span, set()
    while up is not None and up.id not in seen:
        name = up.attrs.get(AGENT)
        if isinstance(name, str) and name:
            return name
        seen.add(up.id)
        up = by_id.get((up.trace, up.parent))
    return span.service


def _decision(seq: int, s: Span, by_id: dict, trace_no: int, agent: str) -> Decision:
    line = s.line
    ts = EPOCH + dt.timedelta(microseconds=s.start // 1000)
    duration = (s.end - s.start) / 1e6 if s.end is not None and s.end >= s.start else None
    attrs = json_safe(s.attrs)
    own = _own(attrs)
    if own is not None:
        cell = own["cell"]
        try:
            cell = json.loads(cell) if isinstance(cell, str) else None
        except ValueError:
            cell = None
        return Decision(
            seq=seq, action=label(own["action"], "replayweb.action", line), reason=str(own["reason"] or ""),
            ts=ts, values=own["values"] if isinstance(own["values"], dict) else {}, cell=cell if isinstance(cell, dict) else None,
            round=as_int(own["round"]), agent=label(own["agent"], "agent", line) if own["agent"] else None,
            metric=duration, text=prompt_and_response(s), raw=s.raw, line=line,
        )
    action = attrs.get(OPERATION) if isinstance(attrs.get(OPERATION), str) and attrs.get(OPERATION) else s.name
    return Decision(
        seq=seq,
        action=label(action, "operation", line),
        reason=short(_path(s, by_id)),
        ts=ts,
        values=attrs,
        round=trace_no,
        agent=label(agent, "agent", line) if agent else None,
        metric=duration,
        text=prompt_and_response(s),
        raw=s.raw,
        line=line,
    )


def tokens(values: dict) -> tuple[float | None, float | None]:
    return as_float(values.get(INPUT_TOKENS)), as_float(values.get(OUTPUT_TOKENS))
