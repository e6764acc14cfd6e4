"""LLM use of a run: tokens and an estimated cost per call, totals by agent, model and round, the
costliest and the slowest calls (issue 16.2).

A plain service over selector output: the kind says which decisions are LLM calls and where their
fields are (an `LlmSpec`, its profile's `llm`); nothing here knows a log kind. Totals are summed over
the calls themselves, so nothing is counted twice.

Cost is an estimate: tokens times a price per million tokens, from the deployment's price table
(`REPLAYWEB_PRICES`, JSON `{"model": {"input": usd, "output": usd}}`, replacing the default table)
or DEFAULT_PRICES. A model without a price has no cost, and a total over it has none either (null),
rather than a number that silently leaves it out.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .selectors import filtered_decisions
from .text import duration

# USD per million tokens, list prices as published by Anthropic on 2025-11-01 (an estimate: no
# batch or cache discounts). The models seen in the sample session logs, and their neighbours.
PRICES_DATE = "2025-11-01"
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "claude-sonnet-4-5": {"input": 3.0, "output": 15.0},
    "claude-sonnet-4": {"input": 3.0, "output": 15.0},
    "claude-3-7-sonnet": {"input": 3.0, "output": 15.0},
    "claude-haiku-4-5": {"input": 1.0, "output": 5.0},
    "claude-3-5-haiku": {"input": 0.8, "output": 4.0},
    "claude-opus-4-1": {"input": 15.0, "output": 75.0},
    "claude-opus-4": {"input": 15.0, "output": 75.0},
}
PRICES_ENV = "REPLAYWEB_PRICES"
TOP = 5  # the costliest and the slowest calls shown
NO_AGENT, NO_ROUND, NO_MODEL = "unknown", "none", "unknown"


@dataclass(frozen=True)
class LlmSpec:
    """Where a kind logs its LLM calls: the action of a call and the dotted paths of its fields in
    `values`; `after_call` are actions logged once a call has returned (not what asked for it);
    `turns` maps an action that needs a call to whose call it is (None: the event's own agent; a
    word: the agent whose calls carry that `agent_type`); `required` the actions a replay needs."""

    action: str
    model: str = "model"
    input: str = "tokens.input"
    output: str = "tokens.output"
    agent_type: str = "agent_type"
    call_sequence: str = "call_sequence"
    response: str = "response"
    prompt: str = "prompt"  # the messages sent (the OTLP export writes them as gen_ai.input.messages)
    timed: bool = False  # a call's `metric` is its own duration in ms (a span's): its wait is that
    round_word: str = "Round"  # what the kind's `round` is (a trace's number in its file: "Trace")
    replayable: bool = True  # the page shows replay readiness and the replay kit (a session re-run)
    after_call: tuple[str, ...] = ()
    turns: dict[str, str | None] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    # (run) -> dict of what a replay starts from, e.g. {"random_seed", "version", "git_commit", "config"}
    start: Callable[[Any], dict] | None = None


def prices() -> dict[str, dict[str, float]]:
    """The price table: the setting REPLAYWEB_PRICES (a dict, or JSON in the environment), else the
    default. A bad table is an error at the first use, not a silent fallback."""
    table = getattr(settings, PRICES_ENV, None)
    if table is None and os.environ.get(PRICES_ENV):
        try:
            table = json.loads(os.environ[PRICES_ENV])
        except ValueError as exc:
            raise ImproperlyConfigured(f"{PRICES_ENV} is not JSON: {exc}") from None
    if table is None:
        return DEFAULT_PRICES
    if not isinstance(table, dict) or not all(
        isinstance(p, dict) and all(_number(p.get(k)) is not None for k in ("input", "output"))
        for p in table.values()
    ):
        raise ImproperlyConfigured(f'{PRICES_ENV}: expected {{"model": {{"input": usd, "output": usd}}}} per million tokens')
    return table


def dig(values: Any, path: str) -> Any:
    if isinstance(values, dict) and path in values:  # a key with dots of its own (gen_ai.usage.input_tokens)
        return values[path]
    for key in path.split("."):
        if not isinstance(values, dict):
            return None
        values = values.get(key)
    return values


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


@dataclass
class Call:
    seq: int
    agent: str
    round: int | None
    model: str
    agent_type: str
    call_sequence: Any
    input: int | float
    output: int | float
    cost: float | None
    wait_ms: float | None = None  # from the event before it (that asked) to its own log time


def price_of(model: str, table: dict) -> dict | None:
    """The model's price: its own entry, else that of the model it is a dated snapshot of
    (`claude-sonnet-4-5-20250929` is priced as `claude-sonnet-4-5`)."""
    if model in table:
        return table[model]
    base = max((k for k in table if model.startswith(k + "-") and model[len(k) + 1:].isdigit()), key=len, default=None)
    return None if base is None else table[base]


def call_cost(model: str, input_: float, output: float, table: dict) -> float | None:
    price = price_of(model, table)
    if price is None:
        return None
    return (input_ * price["input"] + output * price["output"]) / 1_000_000


def _call(seq, agent, round_, values, spec: LlmSpec, table) -> Call:
    model = dig(values, spec.model)
    model = model if isinstance(model, str) and model else NO_MODEL
    input_ = _number(dig(values, spec.input)) or 0
    output = _number(dig(values, spec.output)) or 0
    agent_type = dig(values, spec.agent_type)
    return Call(seq=seq, agent=agent or NO_AGENT, round=round_, model=model,
                agent_type=agent_type if isinstance(agent_type, str) else "",
                call_sequence=dig(values, spec.call_sequence), input=input_, output=output,
                cost=call_cost(model, input_, output, table))


def calls(*, run, spec: LlmSpec, filters: dict | None = None, table: dict | None = None) -> list[Call]:
    """The run's LLM calls that pass the filters, in file order."""
    table = prices() if table is None else table
    qs = filtered_decisions(run=run, **(filters or {})).filter(action=spec.action)
    rows = qs.values_list("seq", "agent", "round", "values").iterator(chunk_size=500)
    return [_call(seq, agent, round_, values, spec, table) for seq, agent, round_, values in rows]


def _totals(group: Iterable[Call]) -> dict:
    out = {"calls": 0, "input": 0, "output": 0, "cost": 0.0}
    for c in group:
        out["calls"] += 1
        out["input"] += c.input
        out["output"] += c.output
        out["cost"] = None if out["cost"] is None or c.cost is None else out["cost"] + c.cost
    if out["cost"] is not None:
        out["cost"] = round(out["cost"], 6)
    return out


def _by(found: list[Call], key: Callable[[Call], Any], order=None) -> dict:
    groups: dict[Any, list[Call]] = {}
    for c in found:
        groups.setdefault(key(c), []).append(c)
    keys = sorted(groups, key=order) if order else list(groups)
    return {str(k): _totals(groups[k]) for k in keys}


def report(found: list[Call]) -> dict:
    """{"total", "by_agent", "by_model", "by_round"}: each {"calls", "input", "output", "cost"};
    agents and models in order of first call, rounds in number order (a call without one last)."""
    return {
        "total": _totals(found),
        "by_agent": _by(found, lambda c: c.agent),
        "by_model": _by(found, lambda c: c.model),
        "by_round": _by(found, lambda c: NO_ROUND if c.round is None else c.round,
                        order=lambda r: (r == NO_ROUND, r if r != NO_ROUND else 0)),
    }


def with_waits(found: list[Call], *, run, spec: LlmSpec) -> list[Call]:
    """Each call's wait: from the event before it (skipping what is logged once a call returned; an
    earlier call's answer counts) to the call's own log time. Derived from log times: the log has no
    latency of its own."""
    wanted = {c.seq: c for c in found}
    if spec.timed:
        rows = filtered_decisions(run=run).filter(action=spec.action).values_list("seq", "metric")
        for seq, took in rows.iterator(chunk_size=2000):
            if seq in wanted:
                wanted[seq].wait_ms = took
        return found
    before = None  # t_ms of the last event that could have asked
    rows = filtered_decisions(run=run).values_list("seq", "action", "t_ms").iterator(chunk_size=2000)
    for seq, action, t_ms in rows:
        call = wanted.get(seq)
        if call is not None and t_ms is not None and before is not None:
            call.wait_ms = t_ms - before
        if action not in spec.after_call and t_ms is not None:
            before = t_ms
    return found


def panel(*, run, spec: LlmSpec, agents: dict | None = None) -> dict:
    """What the run page's LLM panel shows: the report, the costliest and the slowest calls."""
    table = prices()
    found = with_waits(calls(run=run, spec=spec, table=table), run=run, spec=spec)
    unpriced = sorted({c.model for c in found if c.cost is None})
    costliest = sorted((c for c in found if c.cost is not None), key=lambda c: (-c.cost, c.seq))[:TOP]
    if not costliest:  # no prices at all: the biggest by tokens
        costliest = sorted(found, key=lambda c: (-(c.input + c.output), c.seq))[:TOP]
    slowest = sorted((c for c in found if c.wait_ms is not None), key=lambda c: (-c.wait_ms, c.seq))[:TOP]
    names = {k: v for k, v in (agents or {}).items() if isinstance(v, str) and v != k}
    summed = report(found)
    return {
        "report": summed,
        # a call without an agent is grouped under NO_AGENT, which no agent filter selects: no link for it
        "agents": [{"key": k, "name": names.get(k, ""), "link": k != NO_AGENT, **t}
                   for k, t in summed["by_agent"].items()],
        "models": [{"key": k, **t} for k, t in summed["by_model"].items()],
        "rounds": [{"key": k, **t} for k, t in summed["by_round"].items()],
        "costliest": [_row(c, names) for c in costliest],
        "slowest": [_row(c, names) for c in slowest],
        "unpriced": unpriced,
        "prices_date": PRICES_DATE if table is DEFAULT_PRICES else "",
        "action": spec.action,
        "timed": spec.timed,
        "round_word": spec.round_word,
        "replayable": spec.replayable,
    }


def _row(c: Call, names: dict) -> dict:
    return {"seq": c.seq, "agent": c.agent, "name": names.get(c.agent, ""), "round": c.round, "model": c.model,
            "call_sequence": c.call_sequence, "input": c.input, "output": c.output, "cost": c.cost,
            "wait": duration(c.wait_ms) if c.wait_ms is not None else ""}
