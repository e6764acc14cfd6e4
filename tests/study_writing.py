"""A small study log of our own (FORMATS.md 3): two documents written, revised and partly deleted
through google_docs_save bundles (a multi-command bundle, a style command, an unknown one), with a
keystroke stream between; and each document's text after every step, worked out by hand."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

USER = "gc-777000111222"
AUTH = {"providence": "gcu", "safe_user_id": USER, "sec": "authenticated", "user_id": USER}
ESSAY, NOTES = "1EssayDoc", "2NotesDoc"
START = 1709662960.0


def _save(doc, *bundles):
    return {"event": "google_docs_save", "doc_id": doc, "rev": "1", "tab_id": "t.0",
            "bundles": [{"commands": list(b)} for b in bundles]}


def _key(doc, key, title="Essay draft"):
    return {"event": "keystroke", "event_type": "keystroke",
            "keystroke": {"key": key, "code": f"Key{key.upper()}", "type": "keydown", "timeStamp": 1.0},
            "object": {"id": doc, "title": title, "tab_id": "t.0"}}


# (seconds since the start, client event, ESSAY's text after it, NOTES' text after it)
STEPS = [
    (0.0, _key(ESSAY, "H"), "", None),
    (1.0, _save(ESSAY, [{"ty": "is", "ibi": 1, "s": "Hello world"}]), "Hello world", None),
    (1.5, _key(ESSAY, "d"), "Hello world", None),
    # delete 1-based 7..11 inclusive: "world"
    (2.0, _save(ESSAY, [{"ty": "ds", "si": 7, "ei": 11}]), "Hello ", None),
    # one multi-command bundle: "there" before index 7, then "!" before index 12 of the new text
    (6.0, _save(ESSAY, [{"ty": "mlti", "mts": [{"ty": "is", "ibi": 7, "s": "there"},
                                               {"ty": "is", "ibi": 12, "s": "!"}]}]), "Hello there!", None),
    (6.5, _key(ESSAY, "j"), "Hello there!", None),
    # two bundles: a style change and a command nobody knows, then "H" replaced by "J"
    (7.0, _save(ESSAY, [{"ty": "as", "si": 1, "ei": 5, "st": "text", "sm": {"ts_bd": True}},
                        {"ty": "zz", "what": 1}],
                [{"ty": "ds", "si": 1, "ei": 1}, {"ty": "is", "ibi": 1, "s": "J"}]), "Jello there!", None),
    (8.0, {"event": "mouseclick", "event_type": "mouseclick", "mouseclick": {"button": 0}}, "Jello there!", None),
    (9.0, _save(NOTES, [{"ty": "is", "ibi": 1, "s": "Notes"}]), "Jello there!", "Notes"),
    # back to the essay after more than a minute away (idle), then " there!" deleted (6..12)
    (80.0, _key(ESSAY, "x"), "Jello there!", "Notes"),
    (81.0, _save(ESSAY, [{"ty": "ds", "si": 6, "ei": 12}]), "Jello", "Notes"),
    (81.5, _key(ESSAY, "a"), "Jello", "Notes"),
    (82.0, _save(ESSAY, [{"ty": "mlti", "mts": [{"ty": "ds", "si": 1, "ei": 5},
                                                {"ty": "is", "ibi": 1, "s": "Hello again"}]}]), "Hello again", "Notes"),
    (82.5, _key(ESSAY, "n"), "Hello again", "Notes"),
]


def line(i: int, seconds: float, client: dict) -> str:
    epoch = START + seconds
    when = dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)
    client = {**client, "auth": AUTH, "source": "org.mitros.writing_analytics", "version": "1.0.0.2",
              "metadata": {"iso_ts": when.isoformat(timespec="milliseconds") + "Z"}}
    if client["event"] == "google_docs_save":
        client["timestamp"] = int(epoch * 1000)
    event = {"client": client, "metadata": {"auth": AUTH, "source": "org.mitros.writing_analytics"},
             "server": {"agent": "test", "executable": "aio_webapp", "ip": "", "origin": "x", "time": epoch}}
    return json.dumps(event, sort_keys=True) + "\t" + when.isoformat() + "\n"


def write_log(folder: Path) -> Path:
    """The log as a file named as Learning Observer names them."""
    path = Path(folder) / f"2024-03-05T18-22-40.000000-0000000042-{USER}-4242.study.log"
    path.write_text("".join(line(i, s, c) for i, (s, c, _, _) in enumerate(STEPS)))
    return path


def expected(step: int) -> dict:
    """doc_id -> its text after the first `step` events (documents not yet seen are absent)."""
    out = {}
    for _, client, essay, notes in STEPS[:step]:
        if essay is not None and (out or client.get("doc_id") == ESSAY or "object" in client):
            out[ESSAY] = essay
        if notes is not None:
            out[NOTES] = notes
    return out
