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
from functools import partial  # noqa: E402

from ..replay import Reducer, ReplaySpec, bump, mapping, number  # noqa: E402
from ..replay import text as as_text  # noqa: E402
from ..text import duration  # noqa: E402
from . import study_document as D  # noqa: E402


class StudyReducer(Reducer):
    """Events by type, keystrokes, active time, the user; per document (doc_id) its text rebuilt from
    the google_docs_save commands (study_document.py), the last edit, and its writing process."""

    IDLE_MS = 60_000  # a gap longer than this is idle, not active time

    def initial(self) -> dict:
        return {"counts": {}, "round": None, "keystrokes": 0, "document": None, "documents": {},
                "active_ms": 0.0, "last_t_ms": None, "user": None, "steps": 0, "saves_without_doc": 0}

    def fold(self, state: dict, d: dict) -> None:
        action = d["action"]
        bump(state["counts"], action)
        state["steps"] += 1
        v = mapping(d.get("values"))
        if action == "keystroke":
            state["keystrokes"] += 1
        obj = mapping(v.get("object"))
        doc_id = as_text(obj.get("id") or v.get("doc_id"))
        docs = state["documents"]
        doc = None
        if doc_id:
            title = as_text(obj.get("title")) or mapping(docs.get(doc_id)).get("title", "")
            state["document"] = {"id": doc_id, "title": title}
            doc = docs.get(doc_id) or docs.setdefault(doc_id, D.new_document(title))
            doc["title"] = title
            doc["events"] += 1
        elif state["document"]:  # an event of no document: its time counts for the current one
            doc = docs.get(state["document"]["id"])
        t = number(d.get("t_ms"))
        if t is not None:
            last = state["last_t_ms"]
            if last is not None and t > last:
                if t - last <= self.IDLE_MS:
                    state["active_ms"] += t - last
                if doc is not None:
                    D.record_gap(doc, t, t - last, self.IDLE_MS)
            state["last_t_ms"] = t if last is None else max(last, t)
        if action in ("google_docs_save", "document_history"):
            if not doc_id:
                state["saves_without_doc"] += 1
                return
            if action == "google_docs_save":
                added, deleted = D.apply_save(doc, v.get("bundles"), state["steps"])
            else:
                added, deleted = D.apply_history(doc, v.get("history"), state["steps"])
            if t is not None and (added or deleted):
                bucket = D.minute(doc, t)
                bucket[D.ADDED] += added
                bucket[D.DELETED] += deleted
        if d.get("agent"):
            state["user"] = d["agent"]


def _replay_context(state: dict) -> dict:
    docs = mapping(state.get("documents"))
    current = mapping(state.get("document")).get("id")
    shown = [{"id": doc_id, "doc": doc, "current": doc_id == current, "length": len(doc.get("text", "")),
              "text": D.segments(doc), "active": duration(doc.get("active_ms", 0)),
              "idle": duration(doc.get("idle_ms", 0)),
              "unknown": sorted(doc.get("unknown_commands", {}).items()),
              "other": sorted(doc.get("other_commands", {}).items())}
             for doc_id, doc in docs.items() if isinstance(doc, dict) and "text" in doc]
    shown.sort(key=lambda s: not s["current"])  # the current document first
    return {
        "active": duration(state.get("active_ms", 0)), "documents": list(docs.items()), "shown": shown,
        "writing": D.summary(docs) if shown else None, "pause_s": D.PAUSE_MS // 1000,
        "figures": [f for f in (D.timeline_figure(docs), D.activity_figure(docs)) if f],
        "writing_csv": partial(D.writing_rows, docs),  # rows for /runs/<id>/replay/writing.csv
    }


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
        line_log=True,  # no event ends a study log: a followed one ends when it goes quiet
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
