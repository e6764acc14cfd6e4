"""A Google Docs document rebuilt from a study log's save commands, and the writing process around it.

Plain Python over JSON-able dicts (the study reducer keeps one per doc_id in its replay state). The
commands' meaning follows the reducers of ETS-Next-Gen/writing_observer (reconstruct_doc.py), which
rebuild a document from the same deltas:
- `is` inserts string `s` before the 1-based index `ibi` (the cursor then sits after it);
- `ds` deletes the 1-based inclusive range `si`..`ei` (the cursor then sits at `si`);
- `mlti` applies the commands in `mts` one after another;
- `as` changes style, and `ae` `ue` `de` `te` `sl` `null` do not touch the text: counted as "other";
- anything else (or a command missing its fields) is counted by type in `unknown_commands`.
An index beyond the text means the log began after the document had text: the missing characters
are filled with PLACEHOLDER (counted in `gaps`), as writing_observer fills them with NUL; U+FFFD,
because a NUL cannot be stored in a PostgreSQL JSON column.
"""
from __future__ import annotations

from typing import Any

PLACEHOLDER = "\ufffd"  # a character written before the log began
OTHER = frozenset({"as", "ae", "ue", "de", "te", "sl", "null"})  # understood; they leave the text alone
MAX_DEPTH = 20  # mlti inside mlti: deeper than this is counted as unknown
MAX_STRUCK = 400  # characters of deleted text kept for the last edit's strike-through
WINDOW = 4000  # characters shown around the last edit of a longer document
PAUSE_MS = 2_000  # a gap between events longer than this is a pause (a common threshold in writing research)
MINUTE_MS = 60_000
# A minute's bucket: [characters added, characters deleted, pauses, active ms].
ADDED, DELETED, PAUSES, ACTIVE = range(4)


def new_document(title: str = "") -> dict:
    return {"title": title, "events": 0, "text": "", "cursor": None, "saves": 0, "revisions": 0,
            "inserted": 0, "deleted": 0, "gaps": 0, "edit": None, "last_step": None,
            "unknown_commands": {}, "other_commands": {}, "active_ms": 0.0, "idle_ms": 0.0, "pauses": 0,
            "minutes": {}, "bursts": 0, "burst_chars": 0, "burst_open": 0}


def _bump(counter: dict, key: str, by: int = 1) -> None:
    counter[key] = counter.get(key, 0) + by


def _index(value: Any) -> int | None:
    """A command's index: an int (bools and floats with a fraction are not indices)."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return None


class Edit:
    """One save applied to a document: the text, the last edit's marks and what changed."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.text = doc["text"]
        self.marks: list = []  # ["ins", start, length] and ["del", at, deleted text], in the new text
        self.added = self.deleted = 0

    def commands(self, commands: Any, depth: int = 0) -> None:
        if not isinstance(commands, list):
            _bump(self.doc["unknown_commands"], "(not a list of commands)")
            return
        for c in commands:
            self.command(c, depth)

    def command(self, c: Any, depth: int) -> None:
        ty = c.get("ty") if isinstance(c, dict) else None
        if ty == "is" and isinstance(c.get("s"), str) and (_index(c.get("ibi")) or 0) >= 1:
            self.insert(_index(c["ibi"]) - 1, c["s"])
        elif ty == "ds" and 1 <= (_index(c.get("si")) or 0) <= (_index(c.get("ei")) or 0):
            self.delete(_index(c["si"]) - 1, _index(c["ei"]))
        elif ty == "mlti" and depth < MAX_DEPTH and isinstance(c.get("mts"), list):
            self.commands(c["mts"], depth + 1)
        elif isinstance(ty, str) and ty in OTHER:
            _bump(self.doc["other_commands"], ty)
        else:
            name = ty if isinstance(ty, str) and ty else "(no type)"
            known = name in ("is", "ds", "mlti")
            _bump(self.doc["unknown_commands"], f"{name} (malformed)" if known else name[:40])

    def _fill(self, upto: int) -> None:
        """Placeholders up to `upto` characters: the text the log never saw written."""
        missing = upto - len(self.text)
        if missing > 0:
            self.text += PLACEHOLDER * missing
            self.doc["gaps"] += missing

    def insert(self, p: int, s: str) -> None:
        self._fill(p)
        self.text = self.text[:p] + s + self.text[p:]
        n = len(s)
        self.added += n
        self.doc["cursor"] = p + n
        merged = False
        for m in self.marks:
            if m[0] == "ins":
                if not merged and m[1] < p <= m[1] + m[2]:
                    m[2] += n
                    merged = True
                elif m[1] >= p:
                    m[1] += n
            elif m[1] > p:
                m[1] += n
        if not merged and n:
            self.marks.append(["ins", p, n])

    def delete(self, a: int, b: int) -> None:
        """Delete characters a..b-1 (0-based)."""
        self._fill(b)
        gone = self.text[a:b]
        self.text = self.text[:a] + self.text[b:]
        width = b - a
        self.deleted += width
        self.doc["cursor"] = a
        before, after, kept = "", "", []
        for m in self.marks:
            if m[0] == "ins":
                start, end = m[1], m[1] + m[2]
                left = m[2] - max(0, min(end, b) - max(start, a))
                start = start - width if start >= b else min(start, a) if start > a else start
                if left > 0:
                    kept.append(["ins", start, left])
            elif m[1] == b:  # struck text right after the range: it follows this one
                after += m[2]
            elif a <= m[1] < b:
                before += m[2]
            else:
                kept.append(["del", m[1] - width if m[1] > b else m[1], m[2]])
        struck = before + gone + after
        if len(struck) > MAX_STRUCK:
            struck = struck[: MAX_STRUCK // 2] + "…" + struck[-MAX_STRUCK // 2 :]
        kept.append(["del", a, struck])
        self.marks = kept

    def finish(self, step: int) -> None:
        doc = self.doc
        doc["saves"] += 1
        doc["inserted"] += self.added
        doc["deleted"] += self.deleted
        if self.text != doc["text"] or self.marks:
            doc["revisions"] += 1
            doc["last_step"] = step
            doc["edit"] = {"step": step, "marks": sorted(self.marks, key=lambda m: (m[1], m[0] == "ins"))}
        doc["text"] = self.text


def apply_save(doc: dict, bundles: Any, step: int) -> tuple[int, int]:
    """A google_docs_save's bundles applied in order: (characters added, characters deleted)."""
    edit = Edit(doc)
    if not isinstance(bundles, list):
        _bump(doc["unknown_commands"], "(bundles not a list)")
        bundles = []
    for bundle in bundles:
        if isinstance(bundle, dict) and "commands" in bundle:
            edit.commands(bundle["commands"])
        else:
            _bump(doc["unknown_commands"], "(bundle without commands)")
    edit.finish(step)
    doc["burst_open"] += edit.added
    return edit.added, edit.deleted


def apply_history(doc: dict, history: Any, step: int) -> tuple[int, int]:
    """A document_history's changelog ([command, time, user, ...] entries) rebuilds the text from
    nothing, as writing_observer does: (characters added, deleted) against the text before."""
    changelog = history.get("changelog") if isinstance(history, dict) else None
    if not isinstance(changelog, list):
        _bump(doc["unknown_commands"], "(history without a changelog)")
        return 0, 0
    was = doc["text"]
    rebuilt = new_document()
    edit = Edit(rebuilt)
    edit.commands([e[0] if isinstance(e, list) and e else e for e in changelog])
    for key in ("unknown_commands", "other_commands"):
        for ty, n in rebuilt[key].items():
            _bump(doc[key], ty, n)
    doc["gaps"] += rebuilt["gaps"]
    doc["cursor"] = rebuilt["cursor"]
    doc["text"] = edit.text
    doc["edit"] = None
    if edit.text != was:
        doc["revisions"] += 1
        doc["last_step"] = step
    added = max(0, len(edit.text) - len(was))
    doc["burst_open"] += added
    return added, max(0, len(was) - len(edit.text))


def record_gap(doc: dict, t_ms: float, gap: float, idle_ms: float) -> None:
    """A gap between two events, counted for the document of the later one: active time (and a
    pause when long), or idle time. A pause or idle time ends the document's burst: the text written
    between two pauses (a P-burst, in writing research)."""
    if gap > PAUSE_MS and doc["burst_open"]:
        doc["bursts"] += 1
        doc["burst_chars"] += doc["burst_open"]
        doc["burst_open"] = 0
    bucket = minute(doc, t_ms)
    if gap <= idle_ms:
        doc["active_ms"] += gap
        bucket[ACTIVE] += gap
        if gap > PAUSE_MS:
            doc["pauses"] += 1
            bucket[PAUSES] += 1
    else:
        doc["idle_ms"] += gap


def minute(doc: dict, t_ms: float) -> list:
    key = str(int(t_ms // MINUTE_MS))
    bucket = doc["minutes"].get(key)
    if bucket is None:
        bucket = doc["minutes"][key] = [0, 0, 0, 0.0]
    return bucket


# --- presentation (pure) ------------------------------------------------------------------------


def segments(doc: dict, window: int = WINDOW) -> dict:
    """The text as [class, text] pieces ("" plain, "ins" inserted, "del" struck, "cursor" the caret)
    around the last edit: at most `window` characters, with how many are left out on each side."""
    text = doc.get("text") or ""
    edit = doc.get("edit") or {}
    marks = [m for m in edit.get("marks", []) if m[1] <= len(text)]
    cursor = doc.get("cursor")
    cursor = cursor if isinstance(cursor, int) and 0 <= cursor <= len(text) else None
    focus = marks[-1][1] if marks else cursor if cursor is not None else len(text)
    lo = max(0, min(focus - window // 2, len(text) - window))
    hi = min(len(text), lo + window)
    points = sorted([(m[1], 0 if m[0] == "del" else 2, m) for m in marks]
                    + ([(cursor, 1, None)] if cursor is not None else []), key=lambda p: (p[0], p[1]))
    out, at = [], lo
    for pos, order, m in points:
        if m is not None and m[0] == "ins":
            start, end = max(pos, lo), min(pos + m[2], hi)
            if start >= end:
                continue
            if start > at:
                out.append(["", text[at:start]])
            if cursor is not None and start < cursor < end:  # the caret inside the inserted text
                out += [["ins", text[start:cursor]], ["cursor", ""], ["ins", text[cursor:end]]]
            else:
                out.append(["ins", text[start:end]])
            at = max(at, end)
            continue
        if not lo <= pos <= hi or pos < at:
            continue
        if pos > at:
            out.append(["", text[at:pos]])
            at = pos
        out.append(["del", m[2]] if m is not None else ["cursor", ""])
    if hi > at:
        out.append(["", text[at:hi]])
    return {"pieces": out, "before": lo, "after": len(text) - hi}


def summary(documents: dict) -> dict:
    """Totals over the documents: revisions, characters inserted and deleted, final length."""
    docs = list(documents.values())
    return {
        "revisions": sum(d.get("revisions", 0) for d in docs),
        "inserted": sum(d.get("inserted", 0) for d in docs),
        "deleted": sum(d.get("deleted", 0) for d in docs),
        "length": sum(len(d.get("text", "")) for d in docs),
        "pauses": sum(d.get("pauses", 0) for d in docs),
        **_bursts(docs),
        "unknown": sum(sum(d.get("unknown_commands", {}).values()) for d in docs),
    }


def _bursts(docs: list) -> dict:
    """Bursts of writing (text added between pauses, the one still open included) and their mean length."""
    count = sum(d["bursts"] + (1 if d["burst_open"] else 0) for d in docs)
    chars = sum(d["burst_chars"] + d["burst_open"] for d in docs)
    return {"bursts": count, "burst_mean": round(chars / count, 1) if count else None}


CSV_HEADER = ("doc_id", "title", "minute", "chars_added", "chars_deleted", "pauses", "active_s")


def writing_rows(documents: dict):
    """The writing-process figures per document and minute since the run's start, for the CSV."""
    yield CSV_HEADER
    for doc_id, d in documents.items():
        for key in sorted(d.get("minutes", {}), key=int):
            b = d["minutes"][key]
            yield (doc_id, d.get("title", ""), int(key), b[ADDED], b[DELETED], b[PAUSES], round(b[ACTIVE] / 1000, 3))


def timeline(documents: dict, max_bins: int = 120) -> dict:
    """Characters added and deleted and pauses over time, all documents together, in at most
    `max_bins` bins of whole minutes (a long run is aggregated here, never shipped minute by minute)."""
    totals: dict[int, list] = {}
    for d in documents.values():
        for key, b in d.get("minutes", {}).items():
            t = totals.setdefault(int(key), [0, 0, 0, 0.0])
            for i in range(4):
                t[i] += b[i]
    if not totals:
        return {"width": 1, "bins": []}
    first, last = min(totals), max(totals)
    width = max(1, -(-(last - first + 1) // max_bins))
    bins: dict[int, list] = {}
    for m, b in totals.items():
        start = first + (m - first) // width * width
        t = bins.setdefault(start, [0, 0, 0, 0.0])
        for i in range(4):
            t[i] += b[i]
    return {"width": width, "bins": sorted([m, *b] for m, b in bins.items())}


def timeline_figure(documents: dict) -> dict | None:
    """The writing timeline as a plotly figure: characters added (up) and deleted (down) per bin,
    and pauses on a second axis. None when no event had a time."""
    from ..text import plot_text

    tl = timeline(documents)
    if not tl["bins"]:
        return None
    w = tl["width"]
    x = [b[0] for b in tl["bins"]]
    per = "minute" if w == 1 else f"{w} minutes"
    bar = {"type": "bar", "x": x, "offset": 0, "width": w * 0.9}
    return {
        "data": [
            {**bar, "name": "added", "y": [b[1 + ADDED] for b in tl["bins"]], "marker": {"color": "#1a9850"},
             "hovertemplate": "minute %{x}: %{y} added<extra></extra>"},
            {**bar, "name": "deleted", "y": [-b[1 + DELETED] for b in tl["bins"]], "marker": {"color": "#d73027"},
             "hovertemplate": "minute %{x}: %{customdata} deleted<extra></extra>",
             "customdata": [b[1 + DELETED] for b in tl["bins"]]},
            {"type": "scatter", "mode": "lines+markers", "name": plot_text(f"pauses > {PAUSE_MS // 1000} s"),
             "x": [m + w / 2 for m in x], "y": [b[1 + PAUSES] for b in tl["bins"]], "yaxis": "y2",
             "line": {"color": "#555", "width": 1}, "marker": {"size": 4},
             "hovertemplate": "%{y} pauses<extra></extra>"},
        ],
        "layout": {
            "barmode": "relative", "height": 260, "margin": {"l": 50, "r": 50, "t": 10, "b": 40},
            "xaxis": {"title": {"text": "minutes since the start"}, "rangemode": "tozero"},
            "yaxis": {"title": {"text": plot_text(f"characters per {per}")}, "zeroline": True},
            "yaxis2": {"title": {"text": "pauses"}, "overlaying": "y", "side": "right", "showgrid": False,
                       "rangemode": "tozero"},
            "legend": {"orientation": "h", "y": -0.25}, "showlegend": True,
        },
    }


def activity_figure(documents: dict) -> dict | None:
    """Active and idle time per document, as stacked horizontal bars (minutes)."""
    from ..text import plot_text

    docs = [(doc_id, d) for doc_id, d in documents.items() if d.get("active_ms") or d.get("idle_ms")]
    if not docs:
        return None
    names = [plot_text((d.get("title") or doc_id)[:40]) for doc_id, d in docs]
    bar = {"type": "bar", "orientation": "h", "y": names, "hovertemplate": "%{x:.1f} min<extra>%{fullData.name}</extra>"}
    return {
        "data": [
            {**bar, "name": "active", "x": [d["active_ms"] / MINUTE_MS for _, d in docs], "marker": {"color": "#4575b4"}},
            {**bar, "name": "idle", "x": [d["idle_ms"] / MINUTE_MS for _, d in docs], "marker": {"color": "#bbb"}},
        ],
        "layout": {"barmode": "stack", "height": 110 + 30 * len(docs), "margin": {"l": 120, "r": 20, "t": 30, "b": 40},
                   "xaxis": {"title": {"text": "minutes (active: gaps up to a minute)"}, "rangemode": "tozero"},
                   "legend": {"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom"}},
    }
