"""viewer.shares, its page (/runs/<id>/share/), its API (/api/runs/{id}/shares) and public links (/s/<token>/)."""
import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from viewer import shares
from viewer.models import RunShare, ShareLink

pytestmark = pytest.mark.django_db

SESSION = "session/combat_session_sample.jsonl"
JSON = "application/json"


@pytest.fixture
def run(import_sample):
    return import_sample(SESSION)


@pytest.fixture
def other_run(import_sample):
    return import_sample("session/session_debt_auction_ambush.jsonl")


def visitor() -> Client:
    return Client()


def opened(run, user, scope="run", days=7) -> tuple[Client, ShareLink]:
    """A client without an account that has opened a fresh public link to `run`."""
    link = shares.create_link(run, by=user, scope=scope, days=days)
    client = visitor()
    response = client.get(shares.link_path(link))
    assert response.status_code == 302 and response["Location"] == shares.target(link)
    return client, link


# -- the service ----------------------------------------------------------------------------------


def test_sharing_again_changes_can_annotate_instead_of_adding_a_second_share(run, user, other_user):
    shares.share(run, by=user, username="mallory")
    shares.share(run, by=user, username="mallory", can_annotate=True)
    (share,) = RunShare.objects.filter(run=run)
    assert share.user == other_user and share.can_annotate and share.created_by == user


@pytest.mark.parametrize("kwargs, message", [
    ({"username": "nobody"}, "No user is called 'nobody'."),
    ({"username": "alice"}, "You own this run: there is no need to share it with yourself."),
    ({"group": "ghosts"}, "No group is called 'ghosts'."),
    ({}, "Name a user or a group (one of them)."),
    ({"username": "mallory", "group": "tuners"}, "Name a user or a group (one of them)."),
])
def test_a_share_that_cannot_be_made_says_why(run, user, other_user, kwargs, message):
    with pytest.raises(shares.ShareError, match=message.replace("(", r"\(").replace(")", r"\)")):
        shares.share(run, by=user, **kwargs)
    assert not RunShare.objects.exists()


def test_a_reader_is_told_who_shared_the_run_and_what_they_may_do(run, user, other_user):
    team = Group.objects.create(name="tuners")
    other_user.groups.add(team)
    assert shares.shared_with(other_user, run) is None
    shares.share(run, by=user, group="tuners")
    assert shares.shared_with(other_user, run) == {"by": "alice", "groups": ["tuners"], "can_annotate": False}
    shares.share(run, by=user, username="mallory", can_annotate=True)
    assert shares.shared_with(other_user, run)["can_annotate"] is True
    assert shares.shared_with(user, run) is None  # the owner


def test_a_links_token_is_signed_so_an_altered_one_opens_nothing(run, user):
    link = shares.create_link(run, by=user)
    assert shares.open_link(shares.token(link)) == link
    pk, _, signature = shares.token(link).partition(":")
    for forged in (f"{pk}:{signature[:-1]}x", f"{int(pk) + 1}:{signature}", pk, "garbage"):
        with pytest.raises(ShareLink.DoesNotExist):
            shares.open_link(forged)


def test_a_link_lasts_at_most_the_cap(run, user):
    with pytest.raises(shares.ShareError, match="1 to 90 days"):
        shares.create_link(run, by=user, days=shares.MAX_LINK_DAYS + 1)
    with pytest.raises(shares.ShareError, match="scope"):
        shares.create_link(run, by=user, scope="everything")


# -- the share page -------------------------------------------------------------------------------


def test_the_owner_shares_from_the_page_and_the_reader_sees_it_listed_and_explained(run, user, other_user, client):
    client.force_login(user)
    assert 'href="/runs/%d/share/"' % run.pk in client.get(f"/runs/{run.pk}/").content.decode()
    response = client.post(f"/runs/{run.pk}/share/", {"user": "mallory", "can_annotate": "on"})
    assert response.status_code == 303 and response["Location"] == f"/runs/{run.pk}/share/"
    page = client.get(f"/runs/{run.pk}/share/").content.decode()
    assert "mallory" in page and "read and annotate" in page
    client.force_login(other_user)
    assert run.name in client.get("/").content.decode()
    run_page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "Shared with you by alice: you may read it and annotate its decisions." in run_page
    assert f"/runs/{run.pk}/share/" not in run_page  # only the owner is offered Share
    assert client.get(f"/runs/{run.pk}/share/").status_code == 404


def test_sharing_with_an_unknown_user_from_the_page_is_a_400_saying_so(run, user, client):
    client.force_login(user)
    response = client.post(f"/runs/{run.pk}/share/", {"user": "nobody"})
    assert response.status_code == 400
    assert "No user is called &#x27;nobody&#x27;." in response.content.decode()


def test_the_owner_removes_a_share_and_the_run_is_gone_for_them(run, user, other_user, client):
    shares.share(run, by=user, username="mallory")
    client.force_login(user)
    assert client.post(f"/runs/{run.pk}/share/remove/", {"user": "mallory"}).status_code == 303
    assert not RunShare.objects.exists()
    client.force_login(other_user)
    assert client.get(f"/runs/{run.pk}/").status_code == 404


def test_no_one_but_the_owner_changes_the_shares(run, user, other_user, client):
    shares.share(run, by=user, username="mallory", can_annotate=True)
    client.force_login(other_user)
    for url, data in ((f"/runs/{run.pk}/share/", {"user": "alice"}), (f"/runs/{run.pk}/share/remove/", {"user": "mallory"}),
                      (f"/runs/{run.pk}/share/links/", {"scope": "run", "days": "3"})):
        assert client.post(url, data).status_code == 404, url
    assert RunShare.objects.count() == 1 and not ShareLink.objects.exists()


def test_the_owner_makes_a_link_sees_it_listed_and_revokes_it(run, user, client):
    client.force_login(user)
    assert client.post(f"/runs/{run.pk}/share/links/", {"scope": "audit", "days": "3"}).status_code == 303
    link = ShareLink.objects.get()
    assert link.scope == "audit" and dt.timedelta(days=2, hours=23) < link.expires - timezone.now() <= dt.timedelta(days=3)
    page = client.get(f"/runs/{run.pk}/share/").content.decode()
    assert f"http://testserver{shares.link_path(link)}" in page and "active" in page
    assert client.post(f"/runs/{run.pk}/share/links/{link.pk}/revoke/").status_code == 303
    link.refresh_from_db()
    assert link.revoked and shares.link_state(link) == shares.REVOKED
    assert client.post(f"/runs/{run.pk}/share/links/", {"scope": "run", "days": "91"}).status_code == 400


# -- public links ---------------------------------------------------------------------------------


def test_a_run_link_opens_the_run_page_and_its_faces_without_an_account(run, user):
    client, _ = opened(run, user)
    page = client.get(f"/runs/{run.pk}/")
    assert page.status_code == 200 and run.name in page.content.decode()
    assert "/diff/?a=" not in page.content.decode()  # a visitor is not offered what they cannot open
    assert client.get(f"/runs/{run.pk}/export.csv").status_code == 200
    assert client.get(f"/runs/{run.pk}/replay/").status_code == 200


def test_a_link_holder_reaches_nothing_else(run, other_run, user):
    client, _ = opened(run, user)
    for url in ("/", f"/runs/{other_run.pk}/", "/upload/", "/tokens/", f"/diff/?a={run.pk}&b={other_run.pk}",
                f"/runs/{run.pk}/share/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    assert client.get(f"/api/runs/{run.pk}").status_code == 401
    assert client.post(f"/runs/{run.pk}/rename/", {"name": "x"}).status_code == 302


def test_an_audit_link_opens_the_audit_trail_alone(run, user):
    client, link = opened(run, user, scope="audit")
    assert shares.target(link) == f"/runs/{run.pk}/export.html"
    assert client.get(f"/runs/{run.pk}/export.html").status_code == 200
    for url in (f"/runs/{run.pk}/", f"/runs/{run.pk}/export.csv"):
        assert client.get(url).status_code == 302, url


def test_revoking_a_link_closes_it_at_once_for_a_visitor_who_already_opened_it(run, user):
    client, link = opened(run, user)
    shares.revoke_link(link)
    response = client.get(f"/runs/{run.pk}/")
    assert response.status_code == 410 and "This link was revoked" in response.content.decode()
    assert client.get(f"/runs/{run.pk}/").status_code == 302  # forgotten: now as for anyone
    gone = visitor().get(shares.link_path(link))
    assert gone.status_code == 410 and "This link was revoked" in gone.content.decode()


def test_an_expired_link_opens_nothing(run, user):
    client, link = opened(run, user)
    ShareLink.objects.filter(pk=link.pk).update(expires=timezone.now() - dt.timedelta(seconds=1))
    assert client.get(f"/runs/{run.pk}/").status_code == 410
    response = visitor().get(shares.link_path(link))
    assert response.status_code == 410 and "This link has expired" in response.content.decode()


def test_a_forged_link_is_a_404(run, user):
    link = shares.create_link(run, by=user)
    response = visitor().get(f"/s/{link.pk}:forged/")
    assert response.status_code == 404 and "No such link" in response.content.decode()


def test_a_logged_in_user_who_cannot_see_the_run_is_told_the_link_is_for_visitors(run, user, other_user, client):
    link = shares.create_link(run, by=user)
    client.force_login(other_user)
    response = client.get(shares.link_path(link))
    assert response.status_code == 403 and "without an account" in response.content.decode()
    client.force_login(user)
    assert client.get(shares.link_path(link))["Location"] == f"/runs/{run.pk}/"


# -- the API --------------------------------------------------------------------------------------


def test_the_owner_shares_and_unshares_through_the_api(run, user, other_user, client):
    client.force_login(user)
    response = client.post(f"/api/runs/{run.pk}/shares", {"user": "mallory", "can_annotate": True}, content_type=JSON)
    assert response.status_code == 201, response.content
    assert response.json() | {"created": None} == {"user": "mallory", "group": None, "can_annotate": True, "created": None}
    assert [s["user"] for s in client.get(f"/api/runs/{run.pk}/shares").json()] == ["mallory"]
    assert client.delete(f"/api/runs/{run.pk}/shares/mallory").status_code == 204
    assert not RunShare.objects.exists()
    assert client.delete(f"/api/runs/{run.pk}/shares/mallory").status_code == 404


def test_the_api_refuses_an_unknown_user_or_yourself_with_a_400_saying_so(run, user, client):
    client.force_login(user)
    for name, message in (("nobody", "No user is called 'nobody'."), ("alice", "You own this run")):
        response = client.post(f"/api/runs/{run.pk}/shares", {"user": name}, content_type=JSON)
        assert response.status_code == 400 and message in response.json()["detail"]


def test_the_api_answers_a_reader_or_a_stranger_changing_shares_with_a_404(run, user, other_user, client):
    shares.share(run, by=user, username="mallory", can_annotate=True)
    client.force_login(other_user)
    assert client.post(f"/api/runs/{run.pk}/shares", {"user": "alice"}, content_type=JSON).status_code == 404
    assert client.get(f"/api/runs/{run.pk}/shares").status_code == 404
    assert client.delete(f"/api/runs/{run.pk}/shares/mallory").status_code == 404
    assert RunShare.objects.count() == 1
