"""viewer.notes: notes and labels on a decision, a cell or a run, and who may write them."""
import pytest

from django.http import QueryDict

from viewer import memo, notes, overview, replay_store
from viewer.filters import DecisionFilterForm
from viewer.models import Note, RunAggregate, RunShare
from viewer.selectors import filtered_decisions

pytestmark = pytest.mark.django_db

SESSION = "session/combat_session_sample.jsonl"


@pytest.fixture
def run(import_sample):
    return import_sample(SESSION)


def test_the_owner_notes_a_decision_with_labels_kept_lower_case_and_once(run, user):
    note = notes.add(run, user, seq=3, text="Looks *off*", labels=["Suspect", "suspect", " regression "])
    assert (note.seq, note.labels, note.author) == (3, ["suspect", "regression"], user)
    assert notes.by_seq(run) == {3: [note]}
    assert notes.seqs_with(run) == {3} and notes.seqs_with(run, ["regression"]) == {3}
    assert notes.seqs_with(run, ["ok"]) == set()
    assert notes.run_labels(run) == [("regression", 1), ("suspect", 1)]


def test_a_note_needs_a_decision_of_the_run_and_something_to_say(run, user):
    with pytest.raises(notes.NoteError, match="no decision #99999"):
        notes.add(run, user, seq=99999, text="x")
    with pytest.raises(notes.NoteError, match="a text or at least one label"):
        notes.add(run, user, seq=1, text="   ")
    with pytest.raises(notes.NoteError, match="not both"):
        notes.add(run, user, seq=1, cell="2000|50", text="x")
    with pytest.raises(notes.NoteError, match="label"):
        notes.add(run, user, seq=1, labels=["<script>"])
    assert not Note.objects.exists()


def test_a_stranger_and_a_reader_cannot_add_notes_an_annotator_can(run, user, other_user):
    with pytest.raises(PermissionError):
        notes.add(run, other_user, seq=1, text="hi")
    share = RunShare.objects.create(run=run, user=other_user, created_by=user)
    with pytest.raises(PermissionError):
        notes.add(run, other_user, seq=1, text="hi")
    share.can_annotate = True
    share.save()
    note = notes.add(run, other_user, seq=1, text="hi", labels="ok")
    assert notes.may_change(other_user, note) and notes.may_change(user, note)  # author and owner
    own = notes.add(run, user, text="the whole run")
    assert not notes.may_change(other_user, own)


def test_a_note_renders_markdown_without_any_markup_of_its_own(run, user):
    note = notes.add(run, user, seq=2, text="**bold** <script>alert(1)</script> [x](javascript:alert(1))")
    html = str(notes.html(note))
    assert "<strong>bold</strong>" in html and "<script" not in html and "href" not in html


def test_label_and_noted_narrow_the_decisions_to_those_with_such_a_note(run, user):
    notes.add(run, user, seq=2, labels=["suspect"])
    notes.add(run, user, seq=4, text="fine", labels=["ok"])
    notes.add(run, user, text="the run's own note", labels=["suspect"])
    form = DecisionFilterForm(QueryDict("label=Suspect&label=regression"))
    assert form.is_valid() and form.filters() == {"label": ("suspect", "regression")}
    assert form.describe() == "Decisions where labelled “suspect” or “regression”."
    assert [d.seq for d in filtered_decisions(run=run, **form.filters())] == [2]
    assert [d.seq for d in filtered_decisions(run=run, noted=True)] == [2, 4]
    assert [d.seq for d in filtered_decisions(run=run, label=("regression",))] == []
    assert not DecisionFilterForm(QueryDict("noted=perhaps")).is_valid()
    assert "label" in DecisionFilterForm(QueryDict("label=%3Cscript%3E")).errors


def test_a_big_runs_aggregates_filtered_by_notes_are_never_served_stale(run, user, monkeypatch):
    monkeypatch.setattr(memo, "BIG_RUN", 0)  # every run is "big": its aggregates are kept
    overview.stats(run, {})
    assert RunAggregate.objects.filter(run=run).exists()  # the memo does keep the unfiltered ones
    notes.add(run, user, seq=2, labels=["suspect"])
    filters = {"label": ("suspect",)}
    assert sum(n for _, n, _, _ in overview.stats(run, filters)[0]) == 1
    notes.add(run, user, seq=5, labels=["suspect"])
    assert sum(n for _, n, _, _ in overview.stats(run, filters)[0]) == 2


def test_a_replay_filtered_by_label_steps_through_the_decisions_labelled_now(run, user):
    notes.add(run, user, seq=2, labels=["suspect"])
    assert replay_store.replay_state(run, {"label": ("suspect",)}, 1)["total"] == 1
    note = notes.add(run, user, seq=6, labels=["suspect"])
    assert replay_store.replay_state(run, {"label": ("suspect",)}, 1)["total"] == 2
    notes.edit(note, labels=["ok"])
    assert replay_store.replay_state(run, {"label": ("suspect",)}, 1)["total"] == 1
