"""Learning Observer study logs (FORMATS.md 3): a JSON event, a tab and the server's UTC time a
line, maybe gzipped; user ids pseudonymized unless the uploader keeps them."""
from __future__ import annotations

import re
from typing import Any

from . import Column, Profile, Words, register

NOT_AVAILABLE = "N/A"
STUDY_NAME = re.compile(r"^(?P<head>.*?-\d{10}-)(?P<user>.+)(?P<tail>-\d+\.study\.log(?:\.gz)?)$", re.I)


def display_name(name: str, info, keep_user_ids: bool) -> str:
    """Study log names carry the user id: replace it with the run's pseudonym unless ids are kept."""
    if keep_user_ids:
        return name
    for real, alias in info.pseudonyms.items():
        name = name.replace(real, alias)
    folder, _, base = name.replace("\\", "/").rpartition("/")
    m = STUDY_NAME.match(base)
    if m and m["user"] != "GUEST" and m["user"] not in info.pseudonyms.values():
        base = m["head"] + (info.user_label or "user") + m["tail"]
    return f"{folder}/{base}" if folder else base


def _facts(run) -> list:
    from ..summary import Fact

    return [
        Fact("Source", run.source or NOT_AVAILABLE, mono=True),
        Fact("User", run.user_label or NOT_AVAILABLE, mono=True),
    ]


def _record_json(raw: str) -> str:
    """The line without its tab and server time."""
    json_text, tab, _ = raw.rpartition("\t")
    return json_text if tab else raw


def _raw_suffix(raw: str) -> str:
    """The line's server time (after its last tab)."""
    _, tab, suffix = raw.rpartition("\t")
    return suffix.strip() if tab else ""


def _written_values(record: Any, stored: Any) -> Any:
    source = record.get("client") if isinstance(record, dict) else None
    if not isinstance(source, dict) or not isinstance(stored, dict):
        return stored
    return {k: source[k] if k in source else v for k, v in stored.items()}


# -- cells ----------------------------------------------------------------------------------------
from ..cells_time import SPEC as EVENTS_OVER_TIME  # noqa: E402

CELLS = EVENTS_OVER_TIME  # event type x time bucket (UTC): a study log has no grid of its own

# -- replay ---------------------------------------------------------------------------------------
from ..replay import Reducer, ReplaySpec, bump, mapping, text as as_text  # noqa: E402
from ..text import duration  # noqa: E402


class StudyReducer(Reducer):
    """Events by type, keystrokes, the current document and every one seen, active time, the user."""

    IDLE_MS = 60_000  # a gap longer than this is idle, not active time

    def initial(self) -> dict:
        return {"counts": {}, "round": None, "keystrokes": 0, "document": None, "documents": {},
                "active_ms": 0.0, "last_t_ms": None, "user": None}

    def fold(self, state: dict, d: dict) -> None:
        action = d["action"]
        bump(state["counts"], action)
        v = mapping(d.get("values"))
        if action == "keystroke":
            state["keystrokes"] += 1
        obj = mapping(v.get("object"))
        doc_id = as_text(obj.get("id") or v.get("doc_id"))
        if doc_id:
            title = as_text(obj.get("title")) or mapping(state["documents"].get(doc_id)).get("title", "")
            state["document"] = {"id": doc_id, "title": title}
            doc = state["documents"].setdefault(doc_id, {"title": title, "events": 0})
            doc["title"] = title
            doc["events"] += 1
        t = d.get("t_ms")
        if t is not None:
            last = state["last_t_ms"]
            if last is not None and 0 < t - last <= self.IDLE_MS:
                state["active_ms"] += t - last
            state["last_t_ms"] = t if last is None else max(last, t)
        if d.get("agent"):
            state["user"] = d["agent"]


def _replay_context(state: dict) -> dict:
    return {"active": duration(state.get("active_ms", 0)), "documents": list(state.get("documents", {}).items())}


REPLAY = ReplaySpec(reducer=StudyReducer, template="viewer/kinds/study_replay.html", context=_replay_context)

# -- diff -----------------------------------------------------------------------------------------
from ..diff import DiffSpec

DIFF = DiffSpec(
    settings=lambda run: {"source": run.source or None, "version": run.version or None},
    settings_source="source and version",
)


PROFILE = register(
    Profile(
        name="study",
        label="Learning Observer study log",
        reader="viewer.readers.study",
        run_name="viewer.kinds.run_names.study",
        words=Words(
            action="Event",
            agent="User",
            settings="Settings",
            q_hint="reason",
            action_example="keystroke",
            value_example="keystroke.key=a",
            empty=" (the log holds only the empty-log line)",
            align="action",
        ),
        display_name=display_name,
        filter_fields=("agent",),
        columns=(Column("User", "agent_label", "agent mono"),),
        facets=(("action", "Event"), ("agent", "User")),
        summary_facts=_facts,
        record_json=_record_json,
        written_values=_written_values,
        raw_suffix=_raw_suffix,
        cells=CELLS,
        replay=REPLAY,
        diff=DIFF,
    )
)
