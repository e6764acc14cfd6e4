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
CELLS = None

# -- replay ---------------------------------------------------------------------------------------
REPLAY = None

# -- diff -----------------------------------------------------------------------------------------
DIFF = None


PROFILE = register(
    Profile(
        name="study",
        label="Learning Observer study log",
        reader="viewer.readers.study",
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
        columns=(Column("User", "agent", "agent mono"),),
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
