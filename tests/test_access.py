"""viewer.access: who may see, annotate and change a run (owner, shared user or group, stranger)."""
import pytest
from django.contrib.auth.models import Group

from viewer import access
from viewer.models import Run, RunShare
from viewer.selectors import visible_runs

pytestmark = pytest.mark.django_db

SESSION = "session/combat_session_sample.jsonl"


@pytest.fixture
def run(import_sample):
    return import_sample(SESSION)


def test_a_run_is_its_owners_alone_until_shared(run, user, other_user):
    assert access.role(user, run) == access.OWNER
    assert access.role(other_user, run) is None
    assert not visible_runs(other_user).filter(pk=run.pk).exists()


def test_a_share_lets_the_user_see_the_run_and_annotate_only_when_it_says_so(run, user, other_user):
    share = RunShare.objects.create(run=run, user=other_user, created_by=user)
    assert list(visible_runs(other_user)) == [run]
    assert access.role(other_user, run) == access.READER and not access.can_annotate(other_user, run)
    share.can_annotate = True
    share.save()
    assert access.role(other_user, run) == access.ANNOTATOR and access.can_annotate(other_user, run)
    assert not access.is_owner(other_user, run)


def test_a_group_share_reaches_every_member_and_no_one_else(run, user, other_user, django_user_model):
    team = Group.objects.create(name="tuners")
    other_user.groups.add(team)
    outsider = django_user_model.objects.create_user("eve", password="eve-pass-12345")
    RunShare.objects.create(run=run, group=team, created_by=user)
    assert visible_runs(other_user).filter(pk=run.pk).exists()
    assert not visible_runs(outsider).filter(pk=run.pk).exists()
    RunShare.objects.create(run=run, user=other_user, can_annotate=True, created_by=user)
    assert visible_runs(other_user).filter(pk=run.pk).count() == 1  # shared twice, listed once
    assert access.can_annotate(other_user, run)


def test_a_shared_reader_cannot_rename_or_delete_the_run(run, user, other_user, client):
    RunShare.objects.create(run=run, user=other_user, can_annotate=True, created_by=user)
    client.force_login(other_user)
    assert client.get(f"/runs/{run.pk}/").status_code == 200
    assert client.post(f"/runs/{run.pk}/rename/", {"name": "mine now"}).status_code == 404
    assert client.post(f"/runs/{run.pk}/delete/").status_code == 404
    run.refresh_from_db()
    assert Run.objects.filter(pk=run.pk).exists() and run.name != "mine now"


def test_a_link_visitor_sees_the_linked_run_alone(run, user, import_sample):
    from viewer import shares

    other = import_sample("session/session_debt_auction_ambush.jsonl")
    visitor = access.LinkVisitor(shares.create_link(run, by=user))
    assert list(visible_runs(visitor)) == [run] and not visitor.is_authenticated
    assert access.role(visitor, run) is None and not access.can_annotate(visitor, run)
    assert other not in visible_runs(visitor)


@pytest.mark.parametrize("scope, method, name, kwargs, opens", [
    ("run", "GET", "run", {}, True),
    ("run", "HEAD", "run-replay", {}, True),
    ("run", "GET", "run-export", {"fmt": "csv"}, True),
    ("run", "POST", "run", {}, False),
    ("run", "GET", "run-share", {}, False),
    ("run", "GET", "run-delete", {}, False),
    ("run", "GET", "diff", {}, False),
    ("run", "GET", "a-url-added-later", {}, False),
    ("audit", "GET", "run-export", {"fmt": "html"}, True),
    ("audit", "GET", "run-export", {"fmt": "pdf"}, True),
    ("audit", "GET", "run-export", {"fmt": "csv"}, False),
    ("audit", "GET", "run", {}, False),
])
def test_a_link_opens_only_the_faces_of_its_scope(run, user, scope, method, name, kwargs, opens):
    from viewer import shares

    link = shares.create_link(run, by=user, scope=scope)
    assert access.link_opens(link, method, name, {"run_id": run.pk, **kwargs}) is opens
    assert not access.link_opens(link, method, name, {"run_id": run.pk + 1, **kwargs})  # never another run
