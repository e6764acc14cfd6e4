"""A trace's cells (kinds/otel.py builds its CellsSpec from these): operation x agent, operations
and agents in order of first appearance; spans counted, their tokens summed, their duration averaged.
"""
from __future__ import annotations

from django.db.models import Count, FloatField, Min, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from ..cells import MAX_AXIS, Metric, Part, compact, finish_grid, fmt, narrow, plural
from ..readers.otlp import INPUT_TOKENS, OUTPUT_TOKENS
from ..selectors import filtered_decisions
from ..text import duration

METRICS = (
    Metric("spans", "Spans (count)", digits=0),
    Metric("tokens", "LLM tokens (input + output)", digits=0),
    Metric("duration", "Span duration (mean ms)", digits=1),
)


def _first(names: dict[str, int]) -> list[str]:
    return sorted(names, key=lambda a: (names[a], a))


def build(grid: dict, *, run, filters: dict, metric: Metric, cylinder: str) -> dict:
    qs = filtered_decisions(run=run, **filters)
    rows = (
        qs.annotate(_in=Cast(KT("values__" + INPUT_TOKENS), FloatField()),
                    _out=Cast(KT("values__" + OUTPUT_TOKENS), FloatField()))
        .values("action", "agent")
        .annotate(n=Count("pk"), first=Min("seq"), d_n=Count("metric"), d_sum=Sum("metric"),
                  t_in=Sum("_in"), t_out=Sum("_out"), t_n=Count("_in") + Count("_out"))
        .order_by()
    )
    per: dict[tuple[str, str], dict] = {}
    ops: dict[str, int] = {}
    agents: dict[str, int] = {}
    no_agent = 0
    for row in rows:
        if row["agent"] is None:
            no_agent += row["n"]
            continue
        per[(row["action"], row["agent"])] = row
        ops[row["action"]] = min(ops.get(row["action"], row["first"]), row["first"])
        agents[row["agent"]] = min(agents.get(row["agent"], row["first"]), row["first"])
    if no_agent:
        grid["notes"].append(f"{no_agent} span{plural(no_agent)} without an agent or service "
                             f"{'is' if no_agent == 1 else 'are'} not in the grid.")
    if not per:
        grid["notes"].append("No span of this run (with these filters) has an agent.")
        return grid
    xs, ys = _first(agents), _first(ops)
    for what, axis in (("agents", xs), ("operations", ys)):
        if len(axis) > MAX_AXIS:
            grid["notes"].append(f"Only the first {MAX_AXIS} of {len(axis)} {what} are shown.")
    xs, ys = xs[:MAX_AXIS], ys[:MAX_AXIS]
    grid.update(x=list(xs), y=list(ys), x_values=list(xs), y_values=list(ys))
    cols, lines = {a: j for j, a in enumerate(xs)}, {o: i for i, o in enumerate(ys)}
    out = []
    for (op, agent), p in per.items():
        if op not in lines or agent not in cols:
            continue
        tokens = (p["t_in"] or 0) + (p["t_out"] or 0)
        details = [f"{p['n']} span{plural(p['n'])}"]
        if p["t_n"]:
            details.append(f"{int(tokens):,} tokens")
        if p["d_n"]:
            details.append(f"mean duration {duration(p['d_sum'] / p['d_n'])}")
        if metric.key == "spans":
            value, count, text = p["n"], p["n"], str(p["n"])
        elif metric.key == "tokens":
            if not p["t_n"]:
                continue
            value, count, text = tokens, p["n"], compact(tokens)
        else:
            if not p["d_n"]:
                continue
            value, count = p["d_sum"] / p["d_n"], p["d_n"]
            text = fmt(value, 1)
        part = _part({}, op, agent)
        out.append({
            "row": lines[op], "col": cols[agent], "y": op, "x": agent, "value": value, "count": count,
            "text": text, "details": details, "decisions": p["n"],
            "links": [{"label": part.label(p["n"]), "params": part.params}],
            "key": {"cell_action": op, "cell_agent": agent},
        })
    out.sort(key=lambda c: (c["row"], c["col"]))
    return finish_grid(grid, out)


def _part(filters: dict, op, agent) -> Part:
    return Part(narrow(filters, action=(op,), agent=agent), "span", f"of {op} by this agent")


def parts(*, filters: dict, key: dict, cylinder: str) -> list[Part]:
    return [_part(filters, key.get("cell_action"), key.get("cell_agent"))]


def title(run, key: dict, cylinder: str) -> str:
    return f"{key['cell_action']} · agent {key['cell_agent']}"


def where(d) -> str:
    return f"trace {d.round}" if d.round is not None else ""
