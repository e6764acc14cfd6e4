"""Notes and labels on a run (issue 20.2): the one service every face reads them through.

A note sits on one decision (`seq`), one cell (`cell`: the cell's key as the kind's cells page names
it) or the whole run (neither). Its text is markdown, shown through `conversation.markdown` (raw HTML
off, cleaned by nh3); its labels are short lower-case words. Who may write is viewer/access.py's
answer: the owner, or a user the run is shared with for annotation; a note is edited or deleted by
its author or by the run's owner.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from django.db.models import Count, F, Max, QuerySet

from . import access
from .conversation import markdown
from .models import Note, Run
from .selectors import has_decision

MAX_TEXT = 20_000
MAX_LABELS = 10
LABEL = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
SUGGESTED = ("suspect", "ok", "regression")  # offered by the forms; any word of LABEL's shape is taken


class NoteError(ValueError):
    """What is wrong with a note as given, in words for the person who gave it."""


def clean_labels(labels: Iterable[str] | str | None) -> list[str]:
    """Labels as stored: lower case, trimmed, each once, in the order given; commas split a string."""
    if labels is None:
        return []
    if isinstance(labels, str):
        labels = labels.split(",")
    out: list[str] = []
    for raw in labels:
        if not isinstance(raw, str):
            raise NoteError("a label is a word, not " + type(raw).__name__)
        label = raw.strip().lower()
        if not label:
            continue
        if not LABEL.match(label):
            raise NoteError(f"label {raw[:60]!r}: use up to 40 letters, digits, '-', '_' or '.', starting with a letter or digit")
        if label not in out:
            out.append(label)
    if len(out) > MAX_LABELS:
        raise NoteError(f"at most {MAX_LABELS} labels on a note")
    return out


def _clean_text(text: str | None) -> str:
    text = (text or "").replace("\x00", "").strip()
    if len(text) > MAX_TEXT:
        raise NoteError(f"a note is at most {MAX_TEXT:,} characters (this one has {len(text):,})")
    return text


def add(run: Run, author, *, seq: int | None = None, cell: str = "", text: str = "", labels=None) -> Note:
    """A new note by `author` (who must be allowed to annotate the run: callers check access first)."""
    if not access.can_annotate(author, run):
        raise PermissionError("only the owner or a user the run is shared with for annotation adds notes")
    text, labels, cell = _clean_text(text), clean_labels(labels), (cell or "").strip()
    if not text and not labels:
        raise NoteError("a note needs a text or at least one label")
    if seq is not None and cell:
        raise NoteError("a note is on a decision or on a cell, not both")
    if len(cell) > 200:
        raise NoteError("a cell key is at most 200 characters")
    if seq is not None and not has_decision(run=run, seq=seq):
        raise NoteError(f"this run has no decision #{seq}")
    return Note.objects.create(run=run, seq=seq, cell=cell, text=text, labels=labels, author=author)


def may_change(user, note: Note) -> bool:
    """The author (while they may still annotate the run) or the run's owner."""
    if access.is_owner(user, note.run):
        return True
    return note.author_id == getattr(user, "pk", None) and access.can_annotate(user, note.run)


def edit(note: Note, *, text: str | None = None, labels=None) -> Note:
    if text is not None:
        note.text = _clean_text(text)
    if labels is not None:
        note.labels = clean_labels(labels)
    if not note.text and not note.labels:
        raise NoteError("a note needs a text or at least one label")
    note.save()
    return note


def delete(note: Note) -> None:
    note.delete()


def get(note_id) -> Note | None:
    return Note.objects.select_related("run", "author").filter(pk=note_id).first()


def of_run(run: Run) -> QuerySet[Note]:
    return Note.objects.filter(run=run).select_related("author").order_by(F("seq").asc(nulls_first=True), "created", "id")


def by_seq(run: Run, seqs: Iterable[int] | None = None) -> dict[int, list[Note]]:
    """{seq: its notes, oldest first} for the decisions given (all of the run's when None)."""
    qs = of_run(run).filter(seq__isnull=False)
    if seqs is not None:
        qs = qs.filter(seq__in=list(seqs))
    out: dict[int, list[Note]] = {}
    for note in qs:
        out.setdefault(note.seq, []).append(note)
    return out


def on_run(run: Run) -> list[Note]:
    """The notes on the whole run (no decision, no cell), oldest first."""
    return list(of_run(run).filter(seq__isnull=True, cell=""))


def on_cell(run: Run, cell: str) -> list[Note]:
    return list(of_run(run).filter(seq__isnull=True, cell=cell))


def by_cell(run: Run) -> dict[str, list[Note]]:
    out: dict[str, list[Note]] = {}
    for note in of_run(run).filter(seq__isnull=True).exclude(cell=""):
        out.setdefault(note.cell, []).append(note)
    return out


def version(run: Run) -> str:
    """Changes whenever one of the run's notes is added, edited or deleted (a key for what is kept)."""
    found = Note.objects.filter(run=run).aggregate(n=Count("id"), last=Max("id"), changed=Max("updated"))
    changed = found["changed"].isoformat() if found["changed"] else ""
    return f"{found['n']}:{found['last'] or 0}:{changed}"


def summary(notes: list[Note]) -> dict:
    """What a row shows of a decision's notes: how many, their labels (each once) and a tooltip."""
    labels: list[str] = []
    for note in notes:
        labels += [label for label in note.labels or [] if label not in labels]
    title = " · ".join(f"{_who(n)}: {n.text[:80]}" for n in notes if n.text)
    return {"count": len(notes), "labels": labels, "title": title}


def _who(note: Note) -> str:
    return note.author.get_username() if note.author else "(deleted user)"


def csv_cells(notes: list[Note]) -> tuple[str, str]:
    """The csv export's notes ("author: text", joined by " | ") and labels (joined by ",") cells."""
    texts = " | ".join(f"{_who(n)}: {n.text}" for n in notes if n.text)
    return texts, ",".join(summary(notes)["labels"])


def seqs_with(run: Run, labels: Iterable[str] = ()) -> set[int]:
    """The decisions that have a note, or (labels given) a note with one of those labels."""
    wanted = set(clean_labels(list(labels)))
    rows = Note.objects.filter(run=run, seq__isnull=False).values_list("seq", "labels")
    return {seq for seq, have in rows if not wanted or wanted & set(have or [])}


def run_labels(run: Run) -> list[tuple[str, int]]:
    """Every label used on the run's decisions, with how many decisions carry it, most used first."""
    counts: dict[str, set[int]] = {}
    for seq, labels in Note.objects.filter(run=run, seq__isnull=False).values_list("seq", "labels"):
        for label in labels or []:
            counts.setdefault(label, set()).add(seq)
    return sorted(((label, len(seqs)) for label, seqs in counts.items()), key=lambda p: (-p[1], p[0]))


def as_dict(note: Note) -> dict:
    """A note for the API and the JSON export."""
    return {
        "id": note.pk,
        "run": note.run_id,
        "seq": note.seq,
        "cell": note.cell or None,
        "text": note.text,
        "labels": list(note.labels or []),
        "author": _who(note) if note.author else None,
        "created": note.created.isoformat(),
        "updated": note.updated.isoformat(),
    }


def html(note: Note):
    """The note's text as safe HTML (markdown, raw HTML off, cleaned)."""
    return markdown(note.text)
