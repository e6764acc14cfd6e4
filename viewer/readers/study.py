"""Learning Observer study logs (FORMATS.md section 3): `<JSON object>\\t<naive UTC time>` per line.

Users are pseudonymized unless `keep_user_ids`: each distinct real id (the `safe_user_id` and
`user_id` of the client's and the server's `auth`, and a Chrome identity's `id`) gets a random
name, stable within one read and recorded in `info.pseudonyms`; a Chrome identity's email becomes
"<pseudonym>@example.invalid". Real ids are replaced wherever they occur, as substrings, in `raw`
(as written in the JSON text), `values` (keys too) and `reason`: an id that happens to be part of
some other string is replaced there as well, since over-scrubbing beats a leak.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import secrets
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from .base import Decision, Limits, ReadError, RunInfo, dig, label, parse_instant, plain, short
from .lines import iter_lines, json_values, parse_object

SENTINEL = "[Empty log file -- no events captured]"
GUEST = "GUEST"
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SAFE_ID = re.compile(r"[A-Za-z0-9_.@+-]+")
_ADJECTIVES = (
    "amber", "brisk", "calm", "dusky", "eager", "fuzzy", "gentle", "hazel", "icy", "jolly", "keen",
    "lucky", "mellow", "nimble", "olive", "plucky", "quiet", "rosy", "sunny", "tidy", "urban",
    "vivid", "witty", "young", "zesty",
)
_ANIMALS = (
    "badger", "crane", "dingo", "egret", "ferret", "gecko", "heron", "ibis", "jackal", "koala",
    "lemur", "marten", "newt", "otter", "panda", "quail", "raven", "stoat", "tapir", "urchin",
    "vole", "walrus", "yak", "zebra",
)


def read(
    stream: BinaryIO, info: RunInfo, *, limits: Limits, keep_user_ids: bool = False
) -> Iterator[Decision]:
    scrubber = None if keep_user_ids else _Scrubber(info)
    seq = 0
    for line, text in iter_lines(stream, limits):
        body = text[:-1] if text.endswith("\r") else text
        if body.startswith("[") and body.strip() == SENTINEL:
            continue
        json_text, tab, server_time = body.rpartition("\t")
        if not tab:
            json_text, server_time = body, None
        event, lenient = parse_object(json_text, line)
        client = event.get("client")
        if not isinstance(client, dict) or not isinstance(client.get("event"), str) or not client["event"]:
            raise ReadError("missing client.event", line)
        action = label(client["event"], "client.event", line)

        values = {k: v for k, v in client.items() if k not in ("auth", "event")}
        values["server_time"] = server_time
        if lenient:
            values = json_values(values, line)
        reason = _reason(action, client)
        ids = _user_ids(event, client)
        user = ids[0] if ids else GUEST
        raw = text
        if scrubber is not None:
            scrubber.learn(ids, _chrome_identities(event, client))
            if user != GUEST:
                user = scrubber.table[user]
            raw = scrubber.json_text(json_text, line) + text[len(json_text) :]
            values = scrubber.value(values, line)
            reason = scrubber.text(reason)

        if seq == 0:
            source = client.get("source") or dig(event, "metadata", "source")
            info.source = plain(source)[:500]
            info.user_label = user
        yield Decision(
            seq=seq,
            action=action,
            reason=short(reason),
            ts=_timestamp(event, client, server_time, line),
            values=values,
            agent=label(user, "user id", line),
            raw=raw,
            line=line,
        )
        seq += 1


def _timestamp(event: dict, client: dict, server_time: str | None, line: int) -> dt.datetime | None:
    if server_time is not None:
        return parse_instant(server_time.strip(), line, "server time")
    epoch = dig(event, "server", "time")
    if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) and math.isfinite(epoch):
        try:
            return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ReadError(f"server.time {epoch!r} is not a possible time", line) from None
    iso_ts = dig(client, "metadata", "iso_ts")
    if iso_ts is not None:
        return parse_instant(iso_ts, line, "client.metadata.iso_ts")
    return None


def _user_ids(event: dict, client: dict) -> list[str]:
    """The event's real user ids, most authoritative first (FORMATS 3.6)."""
    ids = []
    for auth in (client.get("auth"), dig(event, "metadata", "auth")):
        if isinstance(auth, dict):
            for key in ("safe_user_id", "user_id"):
                value = plain(auth.get(key))
                if value and value != GUEST:
                    ids.append(value)
    return ids


def _chrome_identities(event: dict, client: dict) -> Iterator[dict]:
    for holder in (client, event.get("metadata")):
        identity = dig(holder, "chrome_identity")
        if isinstance(identity, dict):
            yield identity


class _Scrubber:
    """Real ids and their pseudonyms for one read; replaces them in text, JSON text and values."""

    def __init__(self, info: RunInfo):
        self.table = info.pseudonyms  # real id (or email) -> its replacement
        self._names: set[str] = set(self.table.values())
        self._size = -1
        self._plain: re.Pattern | None = None
        self._escaped: re.Pattern | None = None
        self._escaped_bytes: re.Pattern | None = None
        self._escaped_table: dict[str, str] = {}
        self._safe_keys: set[str] = set()
        self._single: tuple[str, str] | None = None

    def learn(self, user_ids: list[str], identities: Iterator[dict]) -> None:
        identities = list(identities)
        if not identities:
            table = self.table
            for real in user_ids:
                if real not in table:
                    break
            else:
                return  # the usual line: its ids are known already (or it has none)
        ids = user_ids + [plain(i.get("id")) for i in identities if plain(i.get("id"))]
        if not ids:
            return
        name = next((self.table[i] for i in ids if i in self.table), None) or self._new_name()
        for real in ids:
            self.table.setdefault(real, name)
        for identity in identities:
            email = plain(identity.get("email"))
            if email:
                self.table.setdefault(email, f"{name}@example.invalid")

    def _new_name(self) -> str:
        while True:
            name = f"user-{secrets.choice(_ADJECTIVES)}-{secrets.choice(_ANIMALS)}-{secrets.token_hex(2)}"
            if name not in self._names:
                self._names.add(name)
                return name

    def _compile(self) -> None:
        if self._size == len(self.table):
            return
        self._size = len(self.table)
        self._escaped_table = {}
        for real, fake in self.table.items():
            for ascii_only in (True, False):  # writers escape non-ASCII, or not
                self._escaped_table[json.dumps(real, ensure_ascii=ascii_only)[1:-1]] = fake
        self._plain = _alternation(self.table)
        self._escaped = _alternation(self._escaped_table)
        self._safe_keys = {k for k in self._escaped_table if _SAFE_ID.fullmatch(k)}
        self._single = next(iter(self._escaped_table.items())) if len(self._escaped_table) == 1 else None
        self._escaped_bytes = _alternation({k.encode(): v for k, v in self._escaped_table.items()})

    def text(self, text: str) -> str:
        self._compile()
        if self._plain is None:
            return text
        return self._plain.sub(lambda m: self.table[m.group()], text)

    def json_text(self, text: str, line: int) -> str:
        self._compile()
        if self._escaped is None:
            return text
        # An id of letters, digits and -_.@+ right between two quotes is a whole run of plain
        # characters inside a string: valid JSON has a ':' or ',' between two strings, and an
        # escape needs a backslash. Replacing it cannot break the JSON; anything else is checked.
        if self._single is not None:  # one id (the usual log): str.replace, as the regex would
            key, fake = self._single
            found = text.count(key)
            if not found:
                return text
            scrubbed = text.replace(key, fake)
            inside = key in self._safe_keys and text.count(f'"{key}"') == found
        else:
            pieces, pos, inside = [], 0, True
            for m in self._escaped.finditer(text):
                start, end = m.span()
                key = m.group()
                if inside and not (key in self._safe_keys and text[start - 1 : start] == '"' == text[end : end + 1]):
                    inside = False
                pieces.append(text[pos:start])
                pieces.append(self._escaped_table[key])
                pos = end
            if not pieces:
                return text
            pieces.append(text[pos:])
            scrubbed = "".join(pieces)
        if not inside:
            try:
                parse_object(scrubbed, line)
            except ReadError:
                # An id matched across JSON syntax or an escape: replace inside each string instead.
                scrubbed = _JSON_STRING.sub(self._literal, text)
        return scrubbed

    def _literal(self, match: re.Match) -> str:
        value = json.loads(match.group())
        scrubbed = self.text(value)
        return match.group() if scrubbed == value else json.dumps(scrubbed)

    def value(self, value: Any, line: int) -> Any:
        self._compile()
        if self._plain is None:
            return value
        try:
            # orjson escapes strings as _escaped_table's keys do: no match there means no id here.
            if not self._escaped_bytes.search(orjson.dumps(value)):
                return value
        except TypeError:  # a lone surrogate or an integer orjson cannot write: look at every string
            pass
        try:
            return self._walk(value)
        except RecursionError:
            raise ReadError("values nested too deeply", line) from None

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self._walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        return value


def _alternation(table: dict) -> re.Pattern | None:
    """One pattern matching any key, longest first, so each spot is replaced once."""
    if not table:
        return None
    keys = sorted(table, key=len, reverse=True)
    return re.compile((b"|" if isinstance(keys[0], bytes) else "|").join(map(re.escape, keys)))


def _reason(action: str, client: dict) -> str:
    title = plain(dig(client, "object", "title"))
    if action == "keystroke":
        keystroke = client.get("keystroke") if isinstance(client.get("keystroke"), dict) else {}
        kind = plain(keystroke.get("type")) or "key"
        key = keystroke.get("key")
        text = f"{kind} {plain(key)!r}" if key is not None else kind
    elif action == "google_docs_save":
        return f"save rev {plain(client.get('rev'))} of doc {plain(client.get('doc_id'))}"
    else:
        text = action
    return f"{text} in {title}" if title else text
