"""The run page's summary: pure functions over a Run and the selectors' aggregates.

What DynoAI's CLI summary shows (run id, generated, total, duration as `22.0ms`/`1.17s`,
decisions by action sorted by count with ties in first-appearance order), plus what it lacks:
time spent per action type, the largest gaps, the manifest check and the run's settings.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .display import Colours, colour
from .dynoai_text import format_duration, sort_action_counts
from .models import Run
from .text import duration

NOT_AVAILABLE = "N/A"


@dataclass
class Fact:
    label: str
    value: str
    mono: bool = False


@dataclass
class RunSummary:
    """The run as a whole: what does not change with the filters."""

    run_id: str
    generated: str
    total: int
    duration: str
    duration_human: str = ""  # the same in minutes and hours, when it is long
    facts: list[Fact] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    manifest_ok: bool | None = None  # None: no manifest was checked
    manifest_message: str = ""
    settings: list[Fact] = field(default_factory=list)
    settings_json: str = ""  # big nested settings (a session's config) shown as indented JSON


def run_summary(run: Run, *, facts: list[Fact] = ()) -> RunSummary:
    """The run as a whole; `facts` are its kind's own (the profile's summary_facts)."""
    summary = RunSummary(
        run_id=run.run_id or NOT_AVAILABLE,
        generated=run.generated_at or NOT_AVAILABLE,
        total=run.decision_count,
        duration=format_duration(run.duration_ms),
        duration_human=duration(run.duration_ms) if (run.duration_ms or 0) >= 60_000 else "",
        warnings=[str(w) for w in run.warnings or []],
    )
    if isinstance(run.manifest, dict):
        if "ok" in run.manifest:  # a replay was checked against it (a failed run has none)
            summary.manifest_ok = bool(run.manifest.get("ok"))
        summary.manifest_message = str(run.manifest.get("message", ""))
        status = run.manifest.get("status")
        if isinstance(status, dict) and status.get("code"):
            summary.facts.append(Fact("Toolkit status", _status_text(status)))
    summary.facts.extend(facts)
    if run.declared_total is not None and run.declared_total != run.decision_count:
        summary.facts.append(Fact("Declared total", f"{run.declared_total:,}"))
    settings = run.settings if isinstance(run.settings, dict) else {}
    if settings and all(_is_scalar(v) for v in settings.values()):
        summary.settings = [Fact(str(k), _scalar_text(v), mono=True) for k, v in settings.items()]
    elif settings:
        summary.settings_json = json.dumps(settings, indent=2, ensure_ascii=False, default=str)
    return summary


def _status_text(status: dict) -> str:
    parts = [str(status.get("code"))]
    if status.get("message") and status.get("message") != "OK":
        parts.append(str(status["message"]))
    if status.get("last_stage"):
        parts.append(f"last stage {status['last_stage']}")
    return " · ".join(parts)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _scalar_text(value: Any) -> str:
    """As JSON writes it (`null`, `false`, `10.0`), the way the manifest has it."""
    return value if isinstance(value, str) else json.dumps(value)


# -- the part that follows the filters ------------------------------------------------------------


@dataclass
class ActionRow:
    action: str
    count: int
    share: float  # percent of the matching decisions
    spent_ms: float
    spent: str
    spent_share: float  # percent of the time spent by all matching decisions
    colour: str = ""


@dataclass
class Gap:
    ms: float
    text: str
    before_seq: int
    before_action: str
    after_seq: int
    after_action: str


def action_rows(stats: list[tuple[str, int, int, float]], colours: Colours | None = None) -> list[ActionRow]:
    """selectors.action_stats rows as the summary table: by count, ties in first-appearance order."""
    by_first = sorted(stats, key=lambda row: row[2])
    spent = {action: ms for action, _, _, ms in by_first}
    total = sum(n for _, n, _, _ in by_first) or 1
    total_spent = sum(spent.values()) or 0.0
    return [
        ActionRow(
            action=action,
            count=count,
            share=100.0 * count / total,
            spent_ms=spent[action],
            spent=duration(spent[action]),
            spent_share=100.0 * spent[action] / total_spent if total_spent else 0.0,
            colour=colour(action, colours),
        )
        for action, count in sort_action_counts((a, n) for a, n, _, _ in by_first)
    ]


def gaps(rows: list[tuple[float, int, str, int, str]]) -> list[Gap]:
    return [Gap(ms, duration(ms), b, ba, a, aa) for ms, b, ba, a, aa in rows]
