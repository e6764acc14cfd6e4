"""Adding, editing and deleting notes from the pages (issue 20.2); the API has its own (api/notes.py).

Every form is a plain POST that redirects back (`next`) and, sent by htmx, answers with the notes
block it came from (viewer/notes.html#notes) so it swaps in place. A note that cannot be taken is
shown again with its reason (400 on the plain page, the block with the message for htmx).
"""
from __future__ import annotations

from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from .. import access, htmx, notes
from ..forms import MAX_SEQ, NoteForm
from ..selectors import get_decision_or_404, get_run_or_404


def block(request, run, *, seq: int | None = None, cell: str = "", error: str = "", given=None) -> dict:
    """What viewer/notes.html#notes shows of one place's notes (a decision, a cell or the run)."""
    if seq is not None:
        found, where, title = notes.by_seq(run, [seq]).get(seq, []), f"d{seq}", "Notes"
    elif cell:
        found, title = notes.on_cell(run, cell), "Notes on this cell"
        where = "c" + "".join(ch if ch.isalnum() else "-" for ch in cell)[:60]
    else:
        found, where, title = notes.on_run(run), "run", "On the whole run"
    user = request.user
    return {
        "id": f"notes-{where}",
        "title": title,
        "run": run,
        "seq": seq,
        "cell": cell,
        "items": [{"note": n, "html": notes.html(n), "may_change": notes.may_change(user, n)} for n in found],
        "can_add": access.can_annotate(user, run),
        "suggested": notes.SUGGESTED,
        "error": error,
        "given": given or {},
        "next": _next(request, run),
    }


def _next(request, run) -> str:
    """Where a plain form goes back to: the page it was on (`next`), else the page showing the block."""
    asked = request.POST.get("next") or request.GET.get("next") or ""
    if asked.startswith("/") and url_has_allowed_host_and_scheme(asked, allowed_hosts={request.get_host()}):
        return asked
    return request.get_full_path() if request.method == "GET" else f"/runs/{run.pk}/"


def _place(request, run, form: NoteForm) -> tuple[int | None, str]:
    """The decision (404 when the run has none such) or the cell the form names; (None, "") for the run."""
    if not form.is_valid() and "seq" in form.errors:
        raise Http404("No such decision")
    seq, cell = form.cleaned_data["seq"], form.cleaned_data["cell"]
    if seq is not None:
        get_decision_or_404(run=run, seq=seq)
        return seq, ""
    return None, cell


def _answer(request, context: dict, status: int = 200):
    if htmx.wants_fragment(request):
        return render(request, "viewer/notes.html#notes", context)  # the block, its message inside
    if status == 200 and not context["place"]["error"]:
        return redirect(context["place"]["next"])
    return render(request, "viewer/notes.html", context, status=status)


@require_http_methods(["GET", "POST"])
def run_notes(request, run_id):
    """GET: one place's notes as a page (the forms without JavaScript). POST: add a note there."""
    run = get_run_or_404(request.user, run_id)
    form = NoteForm(request.POST if request.method == "POST" else request.GET)
    seq, cell = _place(request, run, form)
    if request.method == "GET":
        # The run's own notes page also lists the notes on its decisions and cells, each linked to its place.
        elsewhere = None if seq is not None or cell else [n for n in notes.of_run(run) if n.seq is not None or n.cell]
        return render(request, "viewer/notes.html",
                      {"place": block(request, run, seq=seq, cell=cell), "elsewhere": elsewhere})
    given = {"text": form.cleaned_data["text"], "labels": form.cleaned_data["labels"]}
    try:
        notes.add(run, request.user, seq=seq, cell=cell, text=given["text"], labels=form.all_labels())
    except PermissionError as exc:
        return htmx.bad_request(str(exc), status=403)
    except notes.NoteError as exc:
        context = {"place": block(request, run, seq=seq, cell=cell, error=str(exc), given=given)}
        return _answer(request, context, status=400)
    return _answer(request, {"place": block(request, run, seq=seq, cell=cell)})


def _changeable(request, note_id):
    note = notes.get(note_id) if note_id <= MAX_SEQ else None
    if note is None:
        raise Http404("No such note")
    get_run_or_404(request.user, note.run_id)
    if not notes.may_change(request.user, note):
        raise Http404("No such note")
    return note


@require_POST
def edit_note(request, note_id):
    note = _changeable(request, note_id)
    form = NoteForm(request.POST)
    form.is_valid()  # text and labels are plain strings: they always clean
    given = {"text": form.cleaned_data["text"], "labels": form.cleaned_data["labels"]}
    place = {"seq": note.seq, "cell": note.cell}
    try:
        notes.edit(note, text=given["text"], labels=given["labels"])
    except notes.NoteError as exc:
        note.refresh_from_db()
        context = {"place": block(request, note.run, **place, error=f"Not saved: {exc}", given=given)}
        return _answer(request, context, status=400)
    return _answer(request, {"place": block(request, note.run, **place)})


@require_POST
def delete_note(request, note_id):
    note = _changeable(request, note_id)
    run, place = note.run, {"seq": note.seq, "cell": note.cell}
    notes.delete(note)
    return _answer(request, {"place": block(request, run, **place)})
