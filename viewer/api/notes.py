"""The notes endpoints (issue 20.2): notes and labels on a decision, a cell or a whole run.

A run the user cannot see, and a note they may not change, are 404 (a foreign run's notes are not
revealed); a reader of a shared run who may not annotate gets 403 when adding one.
"""
from __future__ import annotations

from ninja import Field, Schema, Status
from ninja.errors import HttpError

from .. import notes
from ..selectors import visible_runs
from .base import ERRORS, MAX_ID, _run, router


class NoteIn(Schema):
    seq: int | None = Field(None, ge=0, le=2**31 - 1, description="the decision's seq; null for the whole run")
    cell: str | None = Field(None, description="a cell key as the cells page names it, instead of a seq")
    text: str = Field("", description=f"markdown (shown sanitized), at most {notes.MAX_TEXT:,} characters")
    labels: list[str] = Field([], description=f"up to {notes.MAX_LABELS} short words, e.g. suspect, ok, regression")


class NoteEdit(Schema):
    text: str | None = Field(None, description="the new text; left as it is when absent")
    labels: list[str] | None = Field(None, description="the new labels; left as they are when absent")


class NoteOut(Schema):
    id: int
    run: int
    seq: int | None
    cell: str | None
    text: str
    labels: list[str]
    author: str | None
    created: str
    updated: str


@router.post("/runs/{run_id}/notes", response={201: NoteOut, **ERRORS}, summary="Add a note",
             description="On a decision (`seq`), a cell (`cell`) or the whole run (neither): a text, labels "
             "or both. 400 says what is wrong with the note; 403 when the run is shared with you read-only.")
def add_note(request, run_id: int, body: NoteIn):
    run = _run(request, run_id)
    try:
        note = notes.add(run, request.auth, seq=body.seq, cell=body.cell or "", text=body.text, labels=body.labels)
    except notes.NoteError as exc:
        raise HttpError(400, str(exc)) from None
    except PermissionError as exc:
        raise HttpError(403, str(exc)) from None
    return Status(201, notes.as_dict(note))


@router.get("/runs/{run_id}/notes", response={200: list[NoteOut], **ERRORS}, summary="A run's notes",
            description="Every note of the run, by decision (run and cell notes first), oldest first.")
def list_notes(request, run_id: int):
    run = _run(request, run_id)
    return [notes.as_dict(note) for note in notes.of_run(run)]


def _changeable(request, note_id: int):
    note = notes.get(note_id) if 0 <= note_id <= MAX_ID else None
    if note is None or not visible_runs(request.auth).filter(pk=note.run_id).exists():
        raise HttpError(404, "No such note")
    if not notes.may_change(request.auth, note):
        raise HttpError(404, "No such note")  # another's note on a run you read: not yours to change
    return note


@router.patch("/notes/{note_id}", response={200: NoteOut, **ERRORS}, summary="Edit a note",
              description="Its author (while they may annotate the run) or the run's owner.")
def edit_note(request, note_id: int, body: NoteEdit):
    note = _changeable(request, note_id)
    try:
        notes.edit(note, text=body.text, labels=body.labels)
    except notes.NoteError as exc:
        raise HttpError(400, str(exc)) from None
    return notes.as_dict(note)


@router.delete("/notes/{note_id}", response={204: None, **ERRORS}, summary="Delete a note")
def delete_note(request, note_id: int):
    notes.delete(_changeable(request, note_id))
    return Status(204, None)

