"""viewer.saved_views and its views: a page's filters under a name, listed on its run."""
import pytest

from viewer import saved_views, shares
from viewer.models import SavedView

pytestmark = pytest.mark.django_db

SESSION = "session/combat_session_sample.jsonl"


@pytest.fixture
def run(import_sample):
    return import_sample(SESSION)


@pytest.fixture
def run_b(import_sample):
    return import_sample("session/session_debt_auction_ambush.jsonl")


def test_a_saved_views_url_is_the_pages_own_without_its_paging(run, user):
    view = saved_views.save(owner=user, run=run, name=" Attacks ", url=f"/runs/{run.pk}/?action=attack&q=x&after=40")
    assert view.name == "Attacks" and view.url == f"/runs/{run.pk}/?action=attack&q=x"


def test_a_diff_is_saved_on_either_of_its_runs_and_a_compare_on_any_of_them(run, run_b, user):
    diff = f"/diff/?a={run.pk}&b={run_b.pk}&action=attack&start=100"
    assert saved_views.save(owner=user, run=run_b, name="d", url=diff).url == f"/diff/?a={run.pk}&b={run_b.pk}&action=attack"
    compare = f"/compare/?run={run.pk}&run={run_b.pk}"
    assert saved_views.save(owner=user, run=run, name="c", url=compare).url == compare


@pytest.mark.parametrize("url, message", [
    ("/tokens/", "Only a run page, a diff or a compare can be saved as a view."),
    ("/runs/999999/?q=x", "That page does not show run"),
    ("/diff/?a=999999&b=999998", "That page does not show run"),
])
def test_only_a_page_that_shows_the_run_is_saved_on_it(run, user, url, message):
    with pytest.raises(saved_views.SavedViewError, match=message):
        saved_views.save(owner=user, run=run, name="v", url=url)
    assert not SavedView.objects.exists()


def test_a_url_naming_another_site_keeps_only_our_path(run, user):
    view = saved_views.save(owner=user, run=run, name="v", url=f"https://evil.example/runs/{run.pk}/?q=x")
    assert view.url == f"/runs/{run.pk}/?q=x"


def test_a_view_needs_a_name(run, user):
    with pytest.raises(saved_views.SavedViewError, match="Name the view."):
        saved_views.save(owner=user, run=run, name="  ", url=f"/runs/{run.pk}/")


def test_saving_from_the_run_page_opens_the_view_and_lists_it_there(run, client_in):
    page = client_in.get(f"/runs/{run.pk}/?action=attack").content.decode()
    assert "Save this view as" in page and f'value="/runs/{run.pk}/?action=attack"' in page
    response = client_in.post(f"/runs/{run.pk}/views/", {"name": "Attacks", "url": f"/runs/{run.pk}/?action=attack"})
    assert response.status_code == 303 and response["Location"] == f"/runs/{run.pk}/?action=attack"
    page = client_in.get(f"/runs/{run.pk}/").content.decode()
    assert f'<a href="/runs/{run.pk}/?action=attack">Attacks</a>' in page


def test_the_diff_and_compare_pages_offer_to_save_themselves(run, run_b, client_in):
    diff = client_in.get(f"/diff/?a={run.pk}&b={run_b.pk}").content.decode()
    assert "Save this view as" in diff and f"/runs/{run.pk}/views/" in diff
    fragment = client_in.get(f"/diff/?a={run.pk}&b={run_b.pk}&action=attack",
                             headers={"HX-Request": "true", "HX-Target": "diff-body"}).content.decode()
    assert f'value="/diff/?a={run.pk}&amp;b={run_b.pk}&amp;action=attack"' in fragment  # the filters as they are now


def test_a_shared_reader_sees_the_owners_views_and_deletes_only_their_own(run, user, other_user, client):
    shares.share(run, by=user, username="mallory")
    mine = saved_views.save(owner=user, run=run, name="Owner's view", url=f"/runs/{run.pk}/?q=goblin")
    client.force_login(other_user)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "Owner&#x27;s view" in page and f"/views/{mine.pk}/delete/" not in page
    assert client.post(f"/runs/{run.pk}/views/{mine.pk}/delete/").status_code == 404
    theirs = client.post(f"/runs/{run.pk}/views/", {"name": "Mine", "url": f"/runs/{run.pk}/?q=orc"})
    assert theirs.status_code == 303
    view = SavedView.objects.get(name="Mine")
    assert view.owner == other_user
    assert client.post(f"/runs/{run.pk}/views/{view.pk}/delete/", {"next": "https://evil.example/"})["Location"] == f"/runs/{run.pk}/"
    assert list(SavedView.objects.values_list("name", flat=True)) == ["Owner's view"]


def test_a_stranger_neither_sees_nor_saves_views_of_a_run(run, user, other_user, client):
    client.force_login(other_user)
    assert client.post(f"/runs/{run.pk}/views/", {"name": "x", "url": f"/runs/{run.pk}/"}).status_code == 404
    assert not SavedView.objects.exists()


def test_a_public_links_visitor_sees_the_views_but_no_form(run, user, client):
    saved_views.save(owner=user, run=run, name="Goblins", url=f"/runs/{run.pk}/?q=goblin")
    link = shares.create_link(run, by=user)
    client.get(shares.link_path(link))
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "Goblins" in page and "Save this view as" not in page
    assert client.post(f"/runs/{run.pk}/views/", {"name": "x", "url": f"/runs/{run.pk}/"}).status_code == 302
