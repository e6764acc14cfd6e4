"""A made-up log kind, "tally", for tests: one reader and one profile, and nothing else.

A tally log is plain text: a `#tally` header line, then one line per event,
`<seconds since 2026-01-01> <who> <what> [key=value ...]`. Registering it (`register()`) is all it
takes for ReplayWeb to import, list, show, filter, replay, diff and export it.
"""
from __future__ import annotations

import datetime as dt

from viewer import kinds
from viewer.readers.base import Decision, ReadError

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def read(stream, info, *, limits, keep_user_ids=False):
    for number, raw_line in enumerate(stream, start=1):
        line = raw_line.decode("utf-8").rstrip("\r\n")
        if number == 1:
            if not line.startswith("#tally"):
                raise ReadError("a tally log starts with #tally", 1)
            info.version = line.partition(" ")[2]
            continue
        if not line.strip():
            continue
        seconds, who, what, *pairs = line.split(" ")
        try:
            ts = EPOCH + dt.timedelta(seconds=float(seconds))
        except ValueError:
            raise ReadError(f"{seconds!r} is not a number of seconds", number) from None
        values = {}
        for pair in pairs:
            key, _, value = pair.partition("=")
            values[key] = int(value) if value.isdigit() else value
        yield Decision(seq=number - 2, action=what, reason=f"{who} {what}s", ts=ts, values=values,
                       agent=who, raw=line, line=number)


def register():
    return kinds.register(kinds.Profile(
        name="tally",
        label="Tally log",
        reader=__name__,
        sniff=lambda head, name: head.startswith(b"#tally"),
        words=kinds.Words(action="Tally", agent="Counter", action_example="knock", value_example="count>2"),
        filter_fields=("agent",),
        columns=(kinds.Column("Counter", "agent_label", "agent"),),
        facets=(("action", "Tally"), ("agent", "Counter")),
    ))
