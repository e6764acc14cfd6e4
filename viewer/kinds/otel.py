"""OpenTelemetry traces (issue 22): OTLP/JSON Lines from any instrumented agent, each span a decision
(viewer/readers/otlp.py). The kind is named "trace"; this module is `otel` so as not to be taken for
viewer/trace.py, the trace page's engine.

Several traces in one file are one run with a trace facet (`round` is the trace's number in the
file): a file is one run everywhere else in ReplayWeb (upload, import_logs, follow, the manifest),
and an agent's traces written together (one per request, say) are read, filtered and compared
together. The Trace facet and the `round` filter pick one.
"""
from __future__ import annotations

import json
from typing import Any

from ..readers import otlp as reader
from . import Column, Profile, Words, register

CHAT = "chat"
LLM_ACTIONS = ("text_completion", "generate_content")  # the other GenAI operations that are LLM calls
MODEL = "gen_ai.request.model"


def _facts(run) -> list:
    from ..summary import Fact

    traces = (run.settings or {}).get("traces") or []
    facts = [Fact("Traces", str(len(traces)), mono=True)]
    if len(traces) == 1:
        facts.append(Fact("Trace id", traces[0].get("trace_id", ""), mono=True))
    if run.source:
        facts.append(Fact("Services", run.source, mono=True))
    return facts


def record(raw: str) -> dict:
    """A decision's own record: {"resource", "scope", "span"} as the file had them."""
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _record_json(raw: str) -> str:
    return json.dumps(record(raw), ensure_ascii=False, indent=2)


def _written_values(rec: Any, stored: Any) -> Any:
    return stored


def span_ids(raw: str) -> tuple[str, str]:
    """(span id, parent span id or "") of a decision's span."""
    span = record(raw).get("span") or {}
    own, parent = span.get("spanId"), span.get("parentSpanId")
    return (own.lower() if isinstance(own, str) else "", parent.lower() if isinstance(parent, str) else "")


# -- cells: operation x agent (viewer/kinds/otel_cells.py) ----------------------------------------
from ..cells import CellsSpec  # noqa: E402
from . import otel_cells  # noqa: E402

CELLS = CellsSpec(
    metrics=otel_cells.METRICS,
    build=otel_cells.build,
    cell_keys=("cell_action", "cell_agent"),
    parts=otel_cells.parts,
    title=otel_cells.title,
    where=otel_cells.where,
    x_title="Agent",
    y_title="Operation",
)

# -- replay: the spans open at each step and the tokens so far -------------------------------------
from ..replay import Reducer, ReplaySpec, bump, mapping, number  # noqa: E402

OPEN_SHOWN = 30


class SpanReducer(Reducer):
    """A span opens at its start and closes at its end (its start plus its duration, `metric`); a
    step's state is the spans open at its decision's start, and the tokens of the spans begun so far."""

    def initial(self) -> dict:
        return {"counts": {}, "round": None, "open": [], "tokens": {"calls": 0, "input": 0, "output": 0},
                "agents": {}, "errors": 0}

    def fold(self, state: dict, d: dict) -> None:
        bump(state["counts"], d["action"])
        state["round"] = d.get("round")
        now = d.get("t_ms")
        if now is not None:
            state["open"] = [s for s in state["open"] if s["end"] is None or s["end"] > now]
        duration = number(d.get("metric"))
        if now is not None and duration:
            state["open"].append({"seq": d["seq"], "action": d["action"], "agent": d.get("agent") or "",
                                  "start": now, "end": now + duration})
        values = mapping(d.get("values"))
        i, o = (number(values.get(k)) for k in (reader.INPUT_TOKENS, reader.OUTPUT_TOKENS))
        if i is not None or o is not None or d["action"] in (CHAT, *LLM_ACTIONS):
            agent = state["agents"].setdefault(d.get("agent") or "unknown", {"calls": 0, "input": 0, "output": 0})
            for target in (state["tokens"], agent):
                target["calls"] += 1
                target["input"] += i or 0
                target["output"] += o or 0
        if values.get("error.type"):
            state["errors"] += 1

    def marker(self, d: dict) -> str | None:
        return "error" if mapping(d.get("values")).get("error.type") else None


def _replay_context(state: dict) -> dict:
    spans = sorted(state.get("open", []), key=lambda s: (s["start"], s["seq"]))
    return {"open_spans": spans[-OPEN_SHOWN:], "open_count": len(spans), "tokens": state.get("tokens", {}),
            "agents": [{"id": k, **a, "total": a["input"] + a["output"]} for k, a in state.get("agents", {}).items()]}


REPLAY = ReplaySpec(
    reducer=SpanReducer,
    template="viewer/kinds/otel_replay.html",
    context=_replay_context,
    markers=("error",),
)

# -- diff: aligned by service (agent), operation and span name path, as Jaeger compares traces -----
from ..diff import DiffSpec  # noqa: E402


def _diff_where(row, run) -> str:
    parts = [str(row["reason"])] if row.get("reason") else []
    if row.get("agent"):
        parts.append(str(row["agent"]))
    return " · ".join(parts)


DIFF = DiffSpec(
    columns=("round", "agent", "reason"),
    key=("agent", "action", "reason"),
    where=_diff_where,
    filters=(("agent", "Agent", "search"),),
)

# -- LLM calls: the GenAI chat spans' model and tokens ------------------------------------------
from ..tokens import LlmSpec  # noqa: E402

LLM = LlmSpec(
    action=CHAT,
    model=MODEL,
    input=reader.INPUT_TOKENS,
    output=reader.OUTPUT_TOKENS,
    agent_type=reader.AGENT,
    call_sequence="gen_ai.response.id",
    response=reader.OUTPUT_MESSAGES,
    prompt=reader.INPUT_MESSAGES,
    timed=True,
    round_word="Trace",
    replayable=False,  # no seed nor turns: a trace records calls, it does not re-run them
)

# -- the trace page: the spans' own tree -----------------------------------------------------------
from ..trace import TraceSpec  # noqa: E402

TRACE = TraceSpec(
    call=CHAT,
    calls=LLM_ACTIONS,
    spans=span_ids,
    flat=True,
    llm=LLM,
    intro="Spans under their parents, as the trace recorded them; each chat span is an LLM call.",
    lanes_note="Each bar is an LLM call's span, from its start to its end, as the trace timed it.",
)

PROFILE = register(
    Profile(
        name="trace",
        label="OpenTelemetry trace",
        reader="viewer.readers.otlp",
        sniff=reader.sniff,
        words=Words(
            action="Operation",
            agent="Agent",
            settings="Traces",
            q_hint="span name path, prompt, response",
            action_example="chat",
            value_example="gen_ai.usage.input_tokens>100",
            empty="An OTLP file with no spans makes an empty run.",
            align="agent, operation and span name path",
        ),
        filter_fields=("round", "agent"),
        columns=(Column("Trace", "round", "num"), Column("Agent", "agent_label", "agent")),
        facets=(("action", "Operation"), ("agent", "Agent"), ("round", "Trace")),
        summary_facts=_facts,
        record_json=_record_json,
        written_values=_written_values,
        cells=CELLS,
        replay=REPLAY,
        diff=DIFF,
        llm=LLM,
        trace=TRACE,
        otlp_record=record,
    )
)
