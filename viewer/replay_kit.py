"""What re-running a session deterministically needs, and the kit a cached-response client replays
from (issue 16.6). Plain functions over selector output; the kind's `tokens.LlmSpec` says which
decisions are calls, which turns need one, which events a replay requires and where it starts from.

The kit lists every logged LLM response per agent in file order: that is the order a cached client
hands them back, since real logs repeat a call_sequence (an enemy's two calls both numbered 0), so
`(agent, call_sequence)` is not a key.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from .selectors import filtered_decisions
from .tokens import NO_AGENT, LlmSpec, dig


def _calls(run, spec: LlmSpec):
    qs = filtered_decisions(run=run).filter(action=spec.action)
    return qs.values_list("seq", "agent", "round", "values").iterator(chunk_size=500)


def kit(*, run, spec: LlmSpec) -> dict:
    """{"random_seed", "version", "config", "responses": {agent: [{"call_sequence", "round", "model",
    "response"}, ...]}}, each list in call (file) order."""
    start = spec.start(run) if spec.start else {}
    responses: dict[str, list[dict]] = {}
    for _seq, agent, round_, values in _calls(run, spec):
        responses.setdefault(agent or NO_AGENT, []).append({
            "call_sequence": dig(values, spec.call_sequence),
            "round": round_,
            "model": dig(values, spec.model),
            "response": dig(values, spec.response),
        })
    return {"random_seed": start.get("random_seed"), "version": start.get("version"),
            "config": start.get("config") or {}, "responses": responses}


def readiness(*, run, spec: LlmSpec, agents: dict | None = None) -> dict:
    """Whether the log holds what a deterministic replay needs: the seed, the version and commit,
    the required events, and per agent the calls logged against the turns that needed one."""
    start = spec.start(run) if spec.start else {}
    calls: Counter = Counter()
    types: dict[str, str] = {}
    no_response: Counter = Counter()
    sequences: dict[str, Counter] = {}
    for _seq, agent, _round, values in _calls(run, spec):
        key = agent or NO_AGENT
        calls[key] += 1
        kind = dig(values, spec.agent_type)
        if isinstance(kind, str) and kind:
            types.setdefault(key, kind)
        if not isinstance(dig(values, spec.response), str):
            no_response[key] += 1
        sequences.setdefault(key, Counter())[repr(dig(values, spec.call_sequence))] += 1
    by_type: dict[str, str] = {}
    for key, kind in types.items():
        by_type.setdefault(kind, key)
    turns: Counter = Counter()
    present: Counter = Counter()
    wanted = set(spec.turns) | set(spec.required)
    rows = filtered_decisions(run=run).filter(action__in=wanted).values_list("action", "agent")
    for action, agent in rows.iterator(chunk_size=2000):
        present[action] += 1
        if action in spec.turns:
            role = spec.turns[action]
            whose = agent if role is None else by_type.get(role, role)
            turns[whose or NO_AGENT] += 1
    names = agents or {}
    coverage = []
    for key in [*calls, *(k for k in turns if k not in calls)]:
        coverage.append({
            "agent": key, "name": names.get(key) if isinstance(names.get(key), str) else "",
            "type": types.get(key, ""), "calls": calls[key], "turns": turns[key],
            "repeated": sorted(s for s, n in sequences.get(key, Counter()).items() if n > 1),
            "no_response": no_response[key],
        })
    return {
        "seed": start.get("random_seed"),
        "version": start.get("version"),
        "git_commit": start.get("git_commit"),
        "coverage": coverage,
        "missing": _missing(start, coverage, spec, present),
    }


def _missing(start: dict, coverage: list[dict], spec: LlmSpec, present: Counter) -> list[str]:
    out = []
    if start.get("random_seed") is None:
        out.append("random_seed is not logged: dice and choices cannot be drawn again the same way.")
    if not start.get("git_commit"):
        out.append("git_commit is not logged: which code wrote the log is unknown.")
    elif str(start["git_commit"]).endswith("-dirty"):
        out.append(f"git_commit {start['git_commit']} had uncommitted changes: that code cannot be checked out.")
    for action in spec.required:
        if not present[action]:
            out.append(f"no {action} event: the replay needs one.")
    for row in coverage:
        who = row["agent"] + (f" ({row['name']})" if row["name"] else "")
        if row["turns"] > row["calls"]:
            out.append(f"{who}: {row['turns'] - row['calls']} of {row['turns']} turns have no logged LLM call: "
                       "a replay must ask the model again for them.")
        if row["no_response"]:
            out.append(f"{who}: {row['no_response']} calls without a response.")
        if row["repeated"]:
            out.append(f"{who}: call_sequence {', '.join(row['repeated'])} repeats: a cache keyed on "
                       "(agent, call_sequence) would answer the wrong call; replay in file order (as the kit lists them).")
    return out


def summary_line(report: dict) -> str:
    """'ready' or how many things are missing, for a heading."""
    n = len(report["missing"])
    return "Everything a deterministic replay needs is logged." if not n else f"{n} thing{'s' if n != 1 else ''} missing for a deterministic replay."


def response_count(k: dict[str, Any]) -> int:
    return sum(len(v) for v in k["responses"].values())
