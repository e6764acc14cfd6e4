"""Sharing in Chromium (issue 20.3): two users and a visitor without an account.

The owner shares a run from its Share page (can annotate); the second user finds it in their runs
list, reads who shared it, and annotates a decision; the owner sees the note in the decisions table.
A public link opens the run page in a browser that never logged in; once revoked, a reload says so."""
import pytest


pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SESSION = "session/combat_session_sample.jsonl"
NOTE = "Checked by hand: the roll is right."
PASSWORD = "bea-pass-12345"
TIMEOUT_MS = 15_000


def logged_in(browser, live_server, watch, username, password):
    ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    pg = ctx.new_page()
    watch.attach(pg)
    pg.goto("/login/")
    pg.fill("input[name=username]", username)
    pg.fill("input[name=password]", password)
    with pg.expect_navigation():
        pg.click("form button[type=submit]")
    return ctx, pg


def test_a_run_shared_to_annotate_is_annotated_by_the_other_user_and_the_owner_sees_the_note(
        page, browser, live_server, watch, import_sample, browser_user, django_user_model, shot):
    django_user_model.objects.create_user("bea", password=PASSWORD)
    run = import_sample(SESSION, owner=browser_user)
    page.goto(f"/runs/{run.pk}/")
    page.click("nav.run-nav >> text=Share")
    page.fill("input[name=user]", "bea")
    page.check("input[name=can_annotate]")
    with page.expect_navigation():
        page.click("form.share-form button:has-text('Share')")
    assert page.locator("table.shares td", has_text="read and annotate").count() == 1
    shot(page, "shared")

    ctx, bea = logged_in(browser, live_server, watch, "bea", PASSWORD)
    try:
        bea.goto("/")
        bea.click(f"#run-table a[href='/runs/{run.pk}/'] >> nth=0")
        assert "Shared with you by walker" in bea.locator(".shared-with-you").inner_text()
        assert bea.locator("nav.run-nav >> text=Share").count() == 0
        bea.goto(f"/runs/{run.pk}/notes/?seq=2&next=/runs/{run.pk}/")
        bea.fill("form.note-form textarea[name=text]", NOTE)
        bea.click("form.note-form button:has-text('Add note')")
        bea.wait_for_selector(f".note-text:has-text('{NOTE}')")
        shot(bea, "annotated")
    finally:
        ctx.close()

    page.goto(f"/runs/{run.pk}/")
    assert page.locator("td.action .note-mark").count() == 1
    page.goto(f"/runs/{run.pk}/notes/?seq=2")
    assert page.locator(".note", has_text=NOTE).locator(".note-author", has_text="bea").count() == 1
    shot(page, "owner-sees-note")


def test_a_public_link_opens_the_run_without_an_account_until_it_is_revoked(
        page, browser, live_server, watch, import_sample, browser_user, shot):
    run = import_sample(SESSION, owner=browser_user)
    page.goto(f"/runs/{run.pk}/share/")
    page.select_option("select[name=scope]", "run")
    page.fill("input[name=days]", "7")
    with page.expect_navigation():
        page.click("button:has-text('Create a link')")
    link = page.locator("a.link-url").first.get_attribute("href")

    ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        visitor = ctx.new_page()
        watch.attach(visitor)
        visitor.goto(link)
        assert visitor.url.endswith(f"/runs/{run.pk}/")
        assert visitor.locator("h1", has_text=run.name).count() == 1
        assert "public link" in visitor.locator(".shared-with-you").inner_text()
        shot(visitor, "visitor")
        visitor.goto("/")
        assert "/login/" in visitor.url  # the link opens its run, not the site

        with page.expect_navigation():
            page.click("button:has-text('Revoke')")
        watch.allow(rf"/runs/{run.pk}/$", 410)
        visitor.goto(f"/runs/{run.pk}/")
        assert visitor.locator("h1").inner_text() == "This link was revoked"
        shot(visitor, "revoked")
    finally:
        ctx.close()
