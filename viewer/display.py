"""How decisions read on the run page: table rows, value previews, and the detail's parts.

Pure functions over Decision rows (already read through selectors). Every string stays plain
text: the templates escape it, nothing here builds HTML.
"""
from __future__ import annotations

import datetime as dt
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .dynoai_text import format_cell
from .text import duration

PREVIEW_KEYS = 4
PREVIEW_CHARS = 120
TREE_MAX_NODES = 3000
TREE_MAX_DEPTH = 40
SHOWN_TEXT_CHARS = 200_000  # longer raw records and texts are cut on the page; download has all


PALETTE = (
    "#2f6fde", "#d1495b", "#2a9d8f", "#e9a23b", "#7b5ea7", "#3d8b37", "#c2571a", "#06a0c4",
    "#b5179e", "#577590", "#8d6a3a", "#ef476f", "#1b998b", "#6c757d", "#9c6644", "#4361ee",
    "#a4a82b", "#5e3c99", "#d67a9c", "#2b6f5e",
)
Colours = dict[str, str]


def palette(actions: list[str]) -> Colours:
    """A colour per action of the run (its distinct actions, sorted): the same in the chart, the
    table, the facets and the summary, whatever the filter."""
    return {action: PALETTE[i % len(PALETTE)] for i, action in enumerate(actions)}


def colour(action: str, colours: Colours | None = None) -> str:
    """The action's colour in `colours`, else one derived from its name."""
    if colours and action in colours:
        return colours[action]
    return PALETTE[zlib.crc32(action.encode("utf-8", "surrogatepass")) % len(PALETTE)]


# -- the table --------------------------------------------------------------------------------------


@dataclass
class Row:
    seq: int
    time: str
    ts_iso: str
    elapsed: str
    gap: str
    action: str
    colour: str
    reason: str
    cell: str
    round: int | None
    agent: str | None
    preview: str
    agent_label: str = ""  # "player_02 · Ash Vex" where the run names its agents
    columns: list[tuple[str, str]] = field(default_factory=list)  # the kind's own columns: (text, css)


def table_rows(
    decisions,
    previous_t_ms: float | None = None,
    colours: Colours | None = None,
    columns: tuple = (),
    agents: dict | None = None,
) -> list[Row]:
    """Rows for decisions in seq order; `previous_t_ms` is the matching decision before the first;
    `columns` the kind's own columns (each with a `field` of Row and its `css`); `agents` the run's
    agent id -> display name."""
    rows, prev = [], previous_t_ms
    for d in decisions:
        gap = None if d.t_ms is None or prev is None else d.t_ms - prev
        rows.append(Row(
            seq=d.seq,
            time=d.ts.strftime("%H:%M:%S.%f")[:-3] if d.ts else "–",
            ts_iso=iso_ms(d.ts),
            elapsed="–" if d.t_ms is None else "+" + duration(d.t_ms),
            gap="" if gap is None else ("+" if gap >= 0 else "") + duration(gap),
            action=d.action,
            colour=colour(d.action, colours),
            reason=d.short_reason if hasattr(d, "short_reason") else d.reason,
            cell=format_cell(d.cell) if d.cell else "",
            round=d.round,
            agent=d.agent,
            preview=preview(d.values),
            agent_label=agent_label(d.agent, agents),
        ))
        row = rows[-1]
        row.columns = [(_column_text(getattr(row, c.field)), c.css) for c in columns]
        prev = d.t_ms if d.t_ms is not None else prev
    return rows


def agent_label(agent: str | None, agents: dict | None) -> str:
    """An agent as people know it: its id and, where the run names it, its display name."""
    if agent is None:
        return ""
    name = (agents or {}).get(agent)
    return f"{agent} · {name}" if isinstance(name, str) and name and name != agent else agent


def _column_text(value) -> str:
    return "" if value is None else str(value)


def iso_ms(ts: dt.datetime | None) -> str:
    if ts is None:
        return ""
    return ts.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def preview(values: Any) -> str:
    """`key=value key=value …`: the first few scalar values, nested ones as {…} and [n]."""
    if not isinstance(values, dict) or not values:
        return ""
    parts = []
    for key, value in list(values.items())[:PREVIEW_KEYS]:
        parts.append(f"{key}={_short_value(value)}")
    text = " ".join(parts) + (" …" if len(values) > PREVIEW_KEYS else "")
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _short_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{…}"
    if isinstance(value, list):
        return f"[{len(value)}]"
    if isinstance(value, str):
        value = value.replace("\n", " ")
        return value if len(value) <= 40 else value[:39] + "…"
    return json.dumps(value)


# -- the detail -------------------------------------------------------------------------------------


class Number(str):
    """A JSON number kept as written (`10.0` stays `10.0`, `1e3` stays `1e3`)."""


def parse_as_written(text: str) -> Any:
    """json.loads keeping every number's lexeme; raises ValueError when the text is not JSON."""
    try:
        return json.loads(text, parse_float=Number, parse_int=Number, parse_constant=Number)
    except RecursionError:
        raise ValueError("nested too deeply to show as a tree") from None


@dataclass
class Node:
    depth: int
    key: str
    text: str  # the value for a leaf; a count for a container
    type: str  # "object", "array", "string", "number", "bool", "null"


def tree(value: Any) -> tuple[list[Node], bool]:
    """The value as flat rows (depth, key, text) in document order; True when cut short."""
    nodes: list[Node] = []
    stack: list[tuple[int, str, Any]] = [(0, "", value)]
    while stack:
        if len(nodes) >= TREE_MAX_NODES:
            return nodes, True
        depth, key, item = stack.pop()
        if isinstance(item, dict):
            nodes.append(Node(depth, key, f"{{{len(item)} key{'s' if len(item) != 1 else ''}}}", "object"))
            children = [(depth + 1, str(k), v) for k, v in item.items()]
        elif isinstance(item, list):
            nodes.append(Node(depth, key, f"[{len(item)} item{'s' if len(item) != 1 else ''}]", "array"))
            children = [(depth + 1, str(i), v) for i, v in enumerate(item)]
        else:
            nodes.append(_leaf(depth, key, item))
            continue
        if depth + 1 > TREE_MAX_DEPTH and children:
            nodes.append(Node(depth + 1, "…", "deeper levels not shown", "null"))
            continue
        stack.extend(reversed(children))
    return nodes, False


def _leaf(depth: int, key: str, item: Any) -> Node:
    if isinstance(item, Number):
        return Node(depth, key, str(item), "number")
    if isinstance(item, bool):
        return Node(depth, key, "true" if item else "false", "bool")
    if item is None:
        return Node(depth, key, "null", "null")
    if isinstance(item, (int, float)):
        return Node(depth, key, json.dumps(item), "number")
    return Node(depth, key, str(item), "string")


@dataclass
class Message:
    role: str
    content: str


@dataclass
class LlmCall:
    model: str
    temperature: str
    tokens_in: str
    tokens_out: str
    messages: list[Message] = field(default_factory=list)
    response: str = ""


def llm_call(record: Any) -> LlmCall | None:
    """A session's `llm_call` event as plain texts (None for anything else)."""
    if not isinstance(record, dict) or record.get("event_type") != "llm_call":
        return None
    tokens = record.get("tokens") if isinstance(record.get("tokens"), dict) else {}
    call = LlmCall(
        model=_text(record.get("model")),
        temperature=_text(record.get("temperature")),
        tokens_in=_text(tokens.get("input")),
        tokens_out=_text(tokens.get("output")),
        response=_text(record.get("response")),
    )
    prompt = record.get("prompt")
    if isinstance(prompt, str):
        call.messages.append(Message("prompt", prompt))
    for message in prompt if isinstance(prompt, list) else []:
        if isinstance(message, dict):
            role = _text(message.get("role")) or "message"
            call.messages.append(Message(role, _content(message.get("content"))))
        else:
            call.messages.append(Message("message", _text(message)))
    return call


def _content(content: Any) -> str:
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return "\n\n".join(_text(p.get("text")) if isinstance(p, dict) else _text(p) for p in content)
    return _text(content)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


def cut(text: str, limit: int = SHOWN_TEXT_CHARS) -> tuple[str, int]:
    """`text` cut to `limit` characters, and how many were left out."""
    return (text, 0) if len(text) <= limit else (text[:limit], len(text) - limit)


def decision_detail(
    decision,
    colours: Colours | None = None,
    *,
    record_json: Callable[[str], str] | None = None,
    written_values: Callable[[Any, Any], Any] | None = None,
    raw_suffix: Callable[[str], str] | None = None,
    columns: tuple = (),
    agents: dict | None = None,
) -> dict:
    """Everything the detail shows of one decision, as template context. The kind gives the
    record's JSON text (`record_json`), its values as written, the text after the record
    (`raw_suffix`, a server time) and its own columns (shown as facts)."""
    text = record_json(decision.raw) if record_json else decision.raw
    try:
        record = parse_as_written(text)
        problem = ""
    except ValueError as exc:
        record, problem = None, str(exc)
    values = decision.values
    if record is not None and written_values is not None:
        values = written_values(record, decision.values)
    call = llm_call(record)
    if call is not None and isinstance(values, dict):  # its prompt and response are shown once, as a chat
        values = {k: v for k, v in values.items() if k not in ("prompt", "response")}
    nodes, cut_short = tree(values) if values not in ({}, None) else ([], False)
    shown, hidden = cut(text)
    reason, reason_hidden = cut(decision.reason, 20_000)
    return {
        "decision": decision,
        "ts_iso": iso_ms(decision.ts),
        "elapsed": "–" if decision.t_ms is None else "+" + duration(decision.t_ms),
        "colour": colour(decision.action, colours),
        "reason": reason,
        "reason_hidden": reason_hidden,
        "cell": format_cell(decision.cell) if decision.cell else "",
        "cell_nodes": tree(decision.cell)[0][1:] if isinstance(decision.cell, dict) else [],
        "nodes": nodes[1:] if nodes and nodes[0].type in ("object", "array") else nodes,
        "tree_cut": cut_short,
        "tree_problem": problem,
        "llm": call,
        "record_json": shown,
        "record_hidden": hidden,
        "server_time": raw_suffix(decision.raw) if raw_suffix else "",
        "facts": [(c.label, text or "–", c.css) for c, text in _facts(decision, columns, agents)],
    }


def _facts(decision, columns: tuple, agents: dict | None) -> list[tuple]:
    """The kind's own columns of one decision (its cell is shown on its own)."""
    out = []
    for c in columns:
        if c.field == "agent_label":
            out.append((c, agent_label(decision.agent, agents)))
        elif c.field != "cell":
            out.append((c, _column_text(getattr(decision, c.field, None))))
    return out
