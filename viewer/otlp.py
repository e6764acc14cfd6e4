"""A run's decisions as OTLP/JSON Lines (issue 22): one `ExportTraceServiceRequest` as JSON a line,
as the OpenTelemetry Collector's file exporter writes them; Jaeger, Langfuse, Phoenix and the like
load them.

- A run of any kind is one trace: its id the first 32 hex digits of the run's sha256, a span per
  decision (its id `seq + 1` in 16 hex digits), starting and ending at the decision's time. An LLM
  call (the kind's `LlmSpec`) carries the GenAI attributes (`gen_ai.operation.name` chat, the model,
  the tokens, the messages); every span carries `replayweb.*` attributes (action, reason, values and
  cell as JSON, round, agent, seq), from which viewer/readers/otlp.py gives back the decision.
- A run read from OTLP (the trace kind: `record(raw)` gives a span as it was read, with its resource
  and scope) gives back its spans as they were: ids, times, attributes, events, links, status.

A line holds one trace's spans of a batch of CHUNK decisions (the Collector also writes in batches),
so a run of any size streams in flat memory. Ids are lowercase hex, as OTLP/JSON spells them.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from django.db.models import QuerySet

from . import notes
from .selectors import row_batches

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
CHUNK = 2000
SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3
SCOPE = {"name": "replayweb", "version": "1"}
FIELDS = ("seq", "ts", "t_ms", "action", "reason", "values", "cell", "round", "agent", "raw")


def chunks(run, qs: QuerySet, *, llm=None, record: Callable[[str], dict] | None = None,
           noted: dict[int, list] | None = None) -> Iterator[str]:
    """The export of the decisions `qs` (the filtered selection) of `run`. `noted`: {seq: its notes}
    (notes.by_seq), each note a `replayweb.note` event on its decision's span."""
    for batch in row_batches(qs, FIELDS, CHUNK):
        yield _lines(run, batch, llm, record, noted or {})


def _lines(run, batch: list[tuple], llm, record, noted: dict[int, list]) -> str:
    if record is not None:
        records = [record(row[-1]) for row in batch]
        for row, rec in zip(batch, records):
            if row[0] in noted and isinstance(rec.get("span"), dict):
                rec["span"] = {**rec["span"], "events": [*(rec["span"].get("events") or []), *note_events(noted[row[0]])]}
        return "".join(_dump(r) + "\n" for r in given_back(records))
    trace_id = trace_id_of(run)
    spans = [decision_span(run, row, trace_id, llm) for row in batch]
    for row, span in zip(batch, spans):
        if row[0] in noted:
            span["events"] = note_events(noted[row[0]])
    return _dump(request(resource_of(run), SCOPE, spans)) + "\n"


def note_events(found: list) -> list[dict]:
    """A decision's notes as span events (what a reviewer said, when, with which labels)."""
    events = []
    for note in found:
        said = notes.as_dict(note)
        events.append({
            "timeUnixNano": nanos(note.created),
            "name": "replayweb.note",
            "attributes": attributes({key: value for key, value in {
                "replayweb.note.text": said["text"], "replayweb.note.labels": said["labels"],
                "replayweb.note.author": said["author"], "replayweb.note.updated": said["updated"],
            }.items() if value is not None}),  # an author deleted since: no attribute rather than an empty value
        })
    return events


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- a span per decision -------------------------------------------------------------------------


def trace_id_of(run) -> str:
    digest = run.sha256 if len(run.sha256 or "") >= 32 else hashlib.sha256(f"run {run.pk}".encode()).hexdigest()
    return digest[:32].lower()


def span_id(seq: int) -> str:
    return f"{seq + 1:016x}"  # an all-zero span id is invalid


def resource_of(run) -> dict:
    return {"attributes": attributes({
        "service.name": "replayweb",
        "replayweb.run.name": run.name,
        "replayweb.run.kind": run.kind,
        "replayweb.run.sha256": run.sha256,
    })}


def request(resource: dict, scope: dict, spans: list[dict]) -> dict:
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope, "spans": spans}]}]}


def nanos(ts: dt.datetime) -> str:
    delta = ts - EPOCH
    return str((delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000)


def _start(run, ts, t_ms) -> str:
    if ts is None and t_ms is not None and run.first_ts is not None:
        ts = run.first_ts + dt.timedelta(milliseconds=t_ms)
    return nanos(ts or run.created or EPOCH)


def decision_span(run, row: tuple, trace_id: str, llm) -> dict:
    seq, ts, t_ms, action, reason, values, cell, round_, agent, _raw = row
    own = {"replayweb.seq": seq, "replayweb.action": action, "replayweb.reason": reason,
           "replayweb.values": _dump(values if values is not None else {})}
    if cell is not None:
        own["replayweb.cell"] = _dump(cell)
    if round_ is not None:
        own["replayweb.round"] = round_
    if agent:
        own["replayweb.agent"] = agent
    genai = llm_attributes(values, agent, llm) if llm is not None and action == llm.action else {}
    start = _start(run, ts, t_ms)
    return {
        "traceId": trace_id,
        "spanId": span_id(seq),
        "name": action,
        "kind": SPAN_KIND_CLIENT if genai else SPAN_KIND_INTERNAL,
        "startTimeUnixNano": start,
        "endTimeUnixNano": start,
        "attributes": attributes({**genai, **own}),
        "status": {},
    }


def llm_attributes(values: Any, agent: str | None, llm) -> dict:
    """The GenAI semantic conventions' attributes of an LLM call: operation, model, tokens, messages."""
    from .tokens import dig

    out: dict[str, Any] = {"gen_ai.operation.name": "chat"}
    model = dig(values, llm.model)
    if isinstance(model, str) and model:
        out["gen_ai.request.model"] = model
    for key, path in (("gen_ai.usage.input_tokens", llm.input), ("gen_ai.usage.output_tokens", llm.output)):
        n = dig(values, path)
        if isinstance(n, (int, float)) and not isinstance(n, bool):
            out[key] = int(n)
    if agent:
        out["gen_ai.agent.name"] = agent
    prompt = _messages(dig(values, llm.prompt), "user")
    if prompt:
        out["gen_ai.input.messages"] = _dump(prompt)
    response = _messages(dig(values, llm.response), "assistant")
    if response:
        out["gen_ai.output.messages"] = _dump(response)
    return out


def _messages(value: Any, role: str) -> list[dict]:
    """[{"role", "parts": [{"type": "text", "content"}]}] from a prompt or a response as a log writes it:
    a string, or a list of {role, content} whose content is a string or [{"type": "text", "text"}]."""
    if isinstance(value, str):
        return [{"role": role, "parts": [{"type": "text", "content": value}]}]
    out = []
    for m in value if isinstance(value, list) else []:
        if isinstance(m, str):
            m = {"content": m}
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        texts = [content] if isinstance(content, str) else [
            p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        ] if isinstance(content, list) else []
        out.append({"role": str(m.get("role") or role), "parts": [{"type": "text", "content": t} for t in texts]})
    return out


def attributes(values: dict) -> list[dict]:
    return [{"key": k, "value": any_value(v)} for k, v in values.items()]


def any_value(v: Any) -> dict:
    """A plain JSON value as an OTLP AnyValue (an int as a decimal string: int64 in JSON)."""
    if v is None:
        return {}
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)} if -(2**63) <= v < 2**63 else {"stringValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [any_value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": attributes(v)}}
    return {"stringValue": str(v)}


# -- spans given back as read -----------------------------------------------------------------------


def given_back(records: list[dict]) -> list[dict]:
    """One request per trace (in order of first span), its spans grouped by resource and scope."""
    traces: dict[str, dict[str, dict[str, list]]] = {}
    kept: dict[str, Any] = {}
    for rec in records:
        span = rec.get("span") or {}
        resource, scope = rec.get("resource") or {}, rec.get("scope") or {}
        r_key, s_key = _dump(resource), _dump(scope)
        kept[r_key], kept[s_key] = resource, scope
        traces.setdefault(str(span.get("traceId", "")), {}).setdefault(r_key, {}).setdefault(s_key, []).append(span)
    out = []
    for by_resource in traces.values():
        batches = []
        for r_key, by_scope in by_resource.items():
            resource = dict(kept[r_key])
            batch = {"resource": resource}
            if "schemaUrl" in resource:
                batch["schemaUrl"] = resource.pop("schemaUrl")
            batch["scopeSpans"] = []
            for s_key, spans in by_scope.items():
                scope = dict(kept[s_key])
                scoped = {"scope": scope, "spans": spans}
                if "schemaUrl" in scope:
                    scoped["schemaUrl"] = scope.pop("schemaUrl")
                batch["scopeSpans"].append(scoped)
            batches.append(batch)
        out.append({"resourceSpans": batches})
    return out
