"""Notes from the pages: the decision's notes and form, the table's mark, the run's notes card, edit and delete."""
import pytest

from viewer import notes
from viewer.models import Note, RunShare

pytestmark = pytest.mark.django_db

SESSION = "session/combat_session_sample.jsonl"
HX = {"HX-Request": "true", "HX-Target": "notes-d3"}


@pytest.fixture
def run(import_sample):
    return import_sample(SESSION)


def test_the_owner_adds_a_labelled_note_from_the_decision_page_and_every_face_shows_it(client_in, run):
    page = client_in.get(f"/runs/{run.pk}/decisions/3/").content.decode()
    assert 'action="/runs/%d/notes/"' % run.pk in page and 'name="seq" value="3"' in page
    response = client_in.post(f"/runs/{run.pk}/notes/", {
        "seq": "3", "text": "AFR *looks* off", "label": ["suspect"], "labels": "Recheck, ", "next": f"/runs/{run.pk}/decisions/3/"})
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/decisions/3/"
    note = Note.objects.get()
    assert (note.seq, note.labels, note.author.username) == (3, ["suspect", "recheck"], "alice")
    detail = client_in.get(f"/runs/{run.pk}/decisions/3/").content.decode()
    assert "AFR <em>looks</em> off" in detail and 'class="note-author">alice<' in detail
    table = client_in.get(f"/runs/{run.pk}/?label=suspect").content.decode()
    assert table.count('class="row"') == 1 and 'data-seq="3"' in table and 'class="note-mark"' in table
    assert 'class="note-label">suspect</a> <span class="count">1</span>' in table  # the notes card's label facet


def test_an_htmx_note_swaps_the_block_in_place_and_a_bad_one_says_why_keeping_the_text(client_in, run):
    added = client_in.post(f"/runs/{run.pk}/notes/", {"seq": "3", "text": "fine", "label": "ok"}, headers=HX)
    assert added.status_code == 200 and added.content.decode().lstrip().startswith('<section id="notes-d3"')
    refused = client_in.post(f"/runs/{run.pk}/notes/", {"seq": "3", "text": "keep me", "labels": "<b>x</b>"}, headers=HX)
    body = refused.content.decode()
    assert 'role="alert"' in body and "label" in body and ">keep me</textarea>" in body
    plain = client_in.post(f"/runs/{run.pk}/notes/", {"seq": "3", "text": "x" * 20_001})
    assert plain.status_code == 400 and "at most 20,000 characters" in plain.content.decode()
    assert Note.objects.count() == 1


def test_markup_in_a_note_is_shown_as_text(client_in, run, user):
    notes.add(run, user, seq=3, text="<script>alert(1)</script> <img src=x onerror=alert(1)>")
    page = client_in.get(f"/runs/{run.pk}/decisions/3/").content.decode()
    assert "<script>alert(1)" not in page and "<img src=x" not in page and "&lt;script&gt;" in page


def test_a_reader_sees_notes_without_the_form_and_cannot_post_a_stranger_gets_404(client, run, user, other_user):
    notes.add(run, user, seq=3, text="the owner says so")
    client.force_login(other_user)
    assert client.post(f"/runs/{run.pk}/notes/", {"seq": "3", "text": "hi"}).status_code == 404
    RunShare.objects.create(run=run, user=other_user, created_by=user)
    page = client.get(f"/runs/{run.pk}/decisions/3/").content.decode()
    assert "the owner says so" in page and "Add a note" not in page and "/edit/" not in page
    assert client.post(f"/runs/{run.pk}/notes/", {"seq": "3", "text": "hi"}).status_code == 403
    assert Note.objects.count() == 1


def test_the_author_edits_and_deletes_another_annotator_cannot(client, run, user, other_user):
    note = notes.add(run, user, seq=3, text="first", labels=["ok"])
    RunShare.objects.create(run=run, user=other_user, created_by=user, can_annotate=True)
    client.force_login(other_user)
    assert client.post(f"/notes/{note.pk}/edit/", {"text": "mine"}).status_code == 404
    assert client.post(f"/notes/{note.pk}/delete/").status_code == 404
    client.force_login(user)
    edited = client.post(f"/notes/{note.pk}/edit/", {"text": "second", "labels": "regression", "next": "https://evil.example/"})
    assert edited.status_code == 302 and edited["Location"] == f"/runs/{run.pk}/"
    note.refresh_from_db()
    assert (note.text, note.labels) == ("second", ["regression"])
    assert client.post(f"/notes/{note.pk}/delete/", headers={"HX-Request": "true"}).status_code == 200
    assert not Note.objects.exists()


def test_the_run_page_has_a_notes_card_for_the_whole_run(client_in, run, user):
    notes.add(run, user, text="tuned with the **new** injectors")
    page = client_in.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-notes"' in page and "<strong>new</strong>" in page and 'id="notes-run"' in page


def test_the_diff_marks_a_noted_decision_beside_its_seq_on_its_side(client_in, import_sample, user):
    a = import_sample("dynoai/real_sample/session_replay.json")
    b = import_sample("dynoai/runs/large200k_s2_c7/session_replay.json")
    seq = a.decisions.order_by("seq")[0].seq
    notes.add(a, user, seq=seq, labels=["regression"])
    page = client_in.get(f"/diff/?a={a.pk}&b={b.pk}&limit=50").content.decode()
    cell = page[page.index(f'data-label="A"><a href="/runs/{a.pk}/decisions/{seq}/">'):][:400]
    assert 'class="note-mark"' in cell and ">regression</span>" in cell
    assert page.count('class="note-mark"') == 1


def test_a_cells_drilldown_shows_and_takes_the_cells_notes(client_in, import_sample, user):
    run = import_sample("dynoai/real_sample/session_replay.json")
    page = client_in.get(f"/runs/{run.pk}/cells/").content.decode()
    link = page[page.index("?cell_"):].split('"', 1)[0].replace("&amp;", "&")
    drill = client_in.get(f"/runs/{run.pk}/cells/{link}").content.decode()
    cell = drill[drill.index('name="cell" value="') + 19:].split('"', 1)[0].replace("&amp;", "&")
    assert cell.startswith("cell_")
    posted = client_in.post(f"/runs/{run.pk}/notes/", {"cell": cell, "text": "lean here", "label": "suspect"})
    assert posted.status_code == 302
    assert notes.on_cell(run, cell)[0].text == "lean here" and not notes.on_run(run)
    assert "lean here" in client_in.get(f"/runs/{run.pk}/cells/{link}").content.decode()


def test_the_runs_notes_page_lists_the_notes_on_its_decisions_and_cells_with_links(client_in, run, user):
    notes.add(run, user, seq=3, text="too lean here", labels=["suspect"])
    notes.add(run, user, cell="round=1|agent=x", text="this cell")
    notes.add(run, user, text="the whole run")
    html = client_in.get(f"/runs/{run.pk}/notes/").content.decode()
    elsewhere = html[html.index('id="notes-elsewhere"'):]
    assert f'href="/runs/{run.pk}/decisions/3/">#3</a>' in elsewhere and "too lean here" in elsewhere
    assert "cell round=1|agent=x" in elsewhere and "this cell" in elsewhere
    assert "the whole run" not in elsewhere  # shown above, in the run's own block
    assert 'id="notes-elsewhere"' not in client_in.get(f"/runs/{run.pk}/notes/?seq=3").content.decode()
