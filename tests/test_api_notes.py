"""/api/runs/{id}/notes and /api/notes/{id}: add, list, edit and delete notes; who may; label= and noted=."""
import pytest
from django.test import Client

from viewer.models import ApiToken, Note, RunShare

pytestmark = pytest.mark.django_db

SESSION = "session/combat_session_sample.jsonl"


def bearer(user):
    return Client(headers={"Authorization": f"Bearer {ApiToken.issue(user, name='t')[1]}"})


@pytest.fixture
def api(user):
    return bearer(user)


@pytest.fixture
def run(import_sample):
    return import_sample(SESSION)


def post(client, run, **body):
    return client.post(f"/api/runs/{run.pk}/notes", body, content_type="application/json")


def test_a_note_is_created_with_201_and_listed_with_its_author_and_times(api, run):
    made = post(api, run, seq=3, text="looks **off**", labels=["Suspect"])
    assert made.status_code == 201
    note = made.json()
    assert (note["seq"], note["labels"], note["author"], note["text"]) == (3, ["suspect"], "alice", "looks **off**")
    assert note["created"] and note["updated"]
    whole = post(api, run, seq=None, text="the whole run").json()
    assert whole["seq"] is None
    listed = api.get(f"/api/runs/{run.pk}/notes").json()
    assert [n["id"] for n in listed] == [whole["id"], note["id"]]  # the run's notes first


def test_a_bad_note_is_a_400_with_the_reason_and_stores_nothing(api, run):
    cases = [
        ({"seq": 3, "text": " "}, "a text or at least one label"),
        ({"seq": 99999, "text": "x"}, "no decision #99999"),
        ({"seq": 3, "labels": ["<b>bold</b>"]}, "label"),
        ({"seq": 3, "text": "x" * 20_001}, "at most 20,000 characters"),
        ({"seq": 3, "labels": [f"l{n}" for n in range(11)]}, "at most 10 labels"),
        ({"seq": "three", "text": "x"}, "seq"),
    ]
    for body, message in cases:
        response = post(api, run, **body)
        assert response.status_code == 400, body
        assert message in response.json()["detail"]
    assert not Note.objects.exists()


def test_another_users_run_is_a_404_and_a_reader_may_not_annotate(run, user, other_user):
    stranger = bearer(other_user)
    assert post(stranger, run, seq=1, text="hi").status_code == 404
    assert stranger.get(f"/api/runs/{run.pk}/notes").status_code == 404
    RunShare.objects.create(run=run, user=other_user, created_by=user)
    assert stranger.get(f"/api/runs/{run.pk}/notes").json() == []
    assert post(stranger, run, seq=1, text="hi").status_code == 403
    assert not Note.objects.exists()


def test_the_author_edits_and_deletes_a_note_another_reader_gets_404(api, run, user, other_user):
    note = post(api, run, seq=2, text="first", labels=["ok"]).json()
    edited = api.patch(f"/api/notes/{note['id']}", {"labels": ["regression"]}, content_type="application/json")
    assert edited.status_code == 200
    assert (edited.json()["text"], edited.json()["labels"]) == ("first", ["regression"])
    RunShare.objects.create(run=run, user=other_user, created_by=user, can_annotate=True)
    other = bearer(other_user)
    assert other.patch(f"/api/notes/{note['id']}", {"text": "mine"}, content_type="application/json").status_code == 404
    assert other.delete(f"/api/notes/{note['id']}").status_code == 404
    assert api.patch(f"/api/notes/{note['id']}", {"text": "", "labels": []},
                     content_type="application/json").status_code == 400
    assert api.delete(f"/api/notes/{note['id']}").status_code == 204
    assert api.delete(f"/api/notes/{note['id']}").status_code == 404
    assert not Note.objects.exists()


def test_a_strangers_note_id_is_a_404_whatever_its_run(api, run, other_user):
    theirs = post(bearer(run.owner), run, seq=1, text="x").json()
    stranger = bearer(other_user)
    assert stranger.patch(f"/api/notes/{theirs['id']}", {"text": "y"}, content_type="application/json").status_code == 404
    assert stranger.delete(f"/api/notes/{theirs['id']}").status_code == 404
    assert api.delete("/api/notes/999999999999").status_code == 404


def test_decisions_filter_by_label_and_by_having_a_note(api, run):
    post(api, run, seq=2, text="hmm", labels=["suspect"])
    post(api, run, seq=5, labels=["ok"])
    post(api, run, text="on the run, not a decision", labels=["suspect"])

    def seqs(query):
        return [d["seq"] for d in api.get(f"/api/runs/{run.pk}/decisions?{query}").json()["items"]]

    assert seqs("label=suspect") == [2]
    assert seqs("label=suspect&label=ok") == [2, 5]
    assert seqs("noted=1") == [2, 5]
    assert seqs("label=regression") == []
    assert api.get(f"/api/runs/{run.pk}/decisions?noted=maybe").status_code == 400
    assert "label" in api.get(f"/api/runs/{run.pk}/decisions?label=%3Cb%3E").json()["detail"]
