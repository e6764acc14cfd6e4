"""A session's cells (the cells section of kinds/session.py builds its CellsSpec from these):
round x agent, agents in order of first appearance.
"""
from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, Min, Q, Sum

from ..cells import MAX_AXIS, Metric, Part, compact, finish_grid, fmt, narrow, plural
from ..selectors import filtered_decisions

METRICS = (
    Metric("events", "Events (count)", digits=0),
    Metric("tokens", "LLM tokens (input + output)", digits=0),
    Metric("success", "Resolution success rate (%)", digits=0),
    Metric("margin", "Resolution roll margin (mean)", diverging=True, digits=1),
)


def build(grid: dict, *, run, filters: dict, metric: Metric, cylinder: str) -> dict:
    m = metric
    qs = filtered_decisions(run=run, **filters)
    per: dict[tuple[int, str], dict] = defaultdict(
        lambda: {"n": 0, "tokens": 0.0, "calls": 0, "m_n": 0, "m_sum": 0.0, "res": 0, "ok": 0, "known": 0}
    )
    first_seen: dict[str, int] = {}
    no_agent = 0
    rows = (
        qs.values("round", "agent", "action")
        .annotate(n=Count("pk"), m_n=Count("metric"), m_sum=Sum("metric"), first=Min("seq"))
        .order_by()
    )
    for row in rows:
        if row["agent"] is None or row["round"] is None:
            no_agent += row["n"]
            continue
        p = per[(row["round"], row["agent"])]
        p["n"] += row["n"]
        first_seen[row["agent"]] = min(first_seen.get(row["agent"], row["first"]), row["first"])
        if row["action"] == LLM_CALL:
            p["calls"] += row["n"]
            p["tokens"] += row["m_sum"] or 0.0
        elif row["action"] == RESOLUTION:
            p["res"] += row["n"]
            p["m_n"] += row["m_n"]
            p["m_sum"] += row["m_sum"] or 0.0
    if m.key == "success":
        # roll.success lives in JSON: read it only for action_resolution rows, grouped in SQL.
        resolutions = filtered_decisions(run=run, **narrow(filters, action=(RESOLUTION,)))
        exact = Q(action=RESOLUTION)
        for row in (
            resolutions.values("round", "agent")
            .annotate(
                ok=Count("pk", filter=exact & Q(values__roll__success=True)),
                fail=Count("pk", filter=exact & Q(values__roll__success=False)),
            )
            .order_by()
        ):
            if (row["round"], row["agent"]) in per:
                per[(row["round"], row["agent"])]["ok"] += row["ok"]
                per[(row["round"], row["agent"])]["known"] += row["ok"] + row["fail"]
    agents = sorted(first_seen, key=lambda a: (first_seen[a], a))
    if len(agents) > MAX_AXIS:
        grid["notes"].append(f"Only the first {MAX_AXIS} of {len(agents)} agents are shown.")
        agents = agents[:MAX_AXIS]
    if no_agent:
        grid["notes"].append(
            f"{no_agent} event{plural(no_agent)} without an agent (round markers, summaries, session events) "
            f"{'is' if no_agent == 1 else 'are'} not in the grid."
        )
    if not per:
        grid["notes"].append("No event of this run (with these filters) has a round and an agent.")
        return grid
    grid["y_values"] = sorted({r for r, _ in per})
    grid["x_values"] = agents
    grid["y"] = [str(r) for r in grid["y_values"]]
    grid["x"] = list(agents)
    rows_at = {v: i for i, v in enumerate(grid["y_values"])}
    cols_at = {v: j for j, v in enumerate(agents)}
    out = []
    for (rnd, agent), p in sorted(per.items(), key=lambda kv: (kv[0][0], cols_at.get(kv[0][1], 0))):
        if agent not in cols_at:
            continue
        details = [f"{p['n']} event{plural(p['n'])}"]
        if p["calls"]:
            details.append(f"{p['calls']} LLM call{plural(p['calls'])}, {int(p['tokens']):,} tokens")
        if p["res"]:
            details.append(
                f"{p['res']} resolution{plural(p['res'])}"
                + (f", mean margin {fmt(p['m_sum'] / p['m_n'], 1)}" if p["m_n"] else "")
            )
        if p["known"]:
            details.append(f"{p['ok']} of {p['known']} succeeded")
        if m.key == "events":
            value, count, text = p["n"], p["n"], str(p["n"])
        elif m.key == "tokens":
            if not p["calls"]:
                continue
            value, count, text = p["tokens"], p["calls"], compact(p["tokens"])
        elif m.key == "success":
            if not p["known"]:
                continue
            value, count = 100.0 * p["ok"] / p["known"], p["known"]
            text = f"{value:.0f}%"
        else:
            if not p["m_n"]:
                continue
            value, count = p["m_sum"] / p["m_n"], p["m_n"]
            text = fmt(value, 1)
        part = _part({}, rnd, agent)
        out.append(
            {
                "row": rows_at[rnd],
                "col": cols_at[agent],
                "y": rnd,
                "x": agent,
                "value": value,
                "count": count,
                "text": text,
                "details": details,
                "decisions": p["n"],
                "links": [{"label": part.label(p["n"]), "params": part.params}],
                "key": {"cell_round": rnd, "cell_agent": agent},
            }
        )
    return finish_grid(grid, out)


def _part(filters: dict, rnd, agent) -> Part:
    return Part(narrow(filters, round=rnd, agent=agent), "event", f"of round {rnd} by this agent")


def parts(*, filters: dict, key: dict, cylinder: str) -> list[Part]:
    return [_part(filters, key.get("cell_round"), key.get("cell_agent"))]


def title(run, key: dict, cylinder: str) -> str:
    return f"Round {key['cell_round']} · agent {key['cell_agent']}"


def where(d) -> str:
    return f"round {d.round}" if d.round is not None and d.agent is not None else ""


# Imported last: kinds/session.py imports this module in its cells section (see kinds/dynoai_cells.py).
from .session import LLM_CALL, RESOLUTION
