"""Multi-agent LLM game sessions (FORMATS.md 2): JSON Lines, one event a line, in rounds, by agents."""
from __future__ import annotations

from typing import Any

from . import Column, Profile, Words, register

LLM_CALL, RESOLUTION = "llm_call", "action_resolution"
NOT_AVAILABLE = "N/A"


def _facts(run) -> list:
    from ..summary import Fact

    facts = [
        Fact("Seed", NOT_AVAILABLE if run.random_seed is None else str(run.random_seed), mono=True),
        Fact("Version", run.version or NOT_AVAILABLE, mono=True),
    ]
    if run.git_commit:
        facts.append(Fact("Git commit", run.git_commit, mono=True))
    if run.session_id:
        facts.append(Fact("Session", run.session_id, mono=True))
    return facts


def _written_values(record: Any, stored: Any) -> Any:
    """The values as written in the line, in the stored values' key order."""
    if not isinstance(record, dict) or not isinstance(stored, dict):
        return stored
    return {k: record[k] if k in record else v for k, v in stored.items()}


def _replay_file(run) -> str | None:
    return f"session_{run.session_id}_replay.jsonl" if run.session_id else None


# -- cells ----------------------------------------------------------------------------------------
CELLS = None

# -- replay ---------------------------------------------------------------------------------------
REPLAY = None

# -- diff -----------------------------------------------------------------------------------------
DIFF = None


PROFILE = register(
    Profile(
        name="session",
        label="Multi-agent session",
        reader="viewer.readers.session",
        words=Words(
            action="Event",
            agent="Agent",
            settings="Session config",
            q_hint="reason, prompt, response",
            action_example="llm_call",
            value_example="roll.margin<0",
            align="round, event type and agent",
        ),
        filter_fields=("round", "agent", "round_min", "round_max"),
        columns=(Column("Round", "round", "num"), Column("Agent", "agent", "agent")),
        facets=(("action", "Event"), ("round", "Round"), ("agent", "Agent")),
        summary_facts=_facts,
        written_values=_written_values,
        replay_file=_replay_file,
        cells=CELLS,
        replay=REPLAY,
        diff=DIFF,
    )
)
