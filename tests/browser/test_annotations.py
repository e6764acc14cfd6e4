"""Notes in Chromium (issue 20.2): a note added in the decision panel swaps in place, marks its row, is
found by label=, follows the replay to its step; a bad one says why and keeps what was typed."""

import pytest
from playwright.sync_api import expect

from viewer.models import Note

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAMPLE = "dynoai/real_sample/session_replay.json"


@pytest.fixture
def run(import_sample, browser_user):
    return import_sample(SAMPLE, owner=browser_user)


def test_a_note_added_in_the_panel_marks_its_row_and_filters_and_replays(page, run):
    page.goto(f"/runs/{run.pk}/")
    row = page.locator("#decision-rows tr.row").nth(4)
    seq = int(row.get_attribute("data-seq"))
    row.locator("a.open").click()
    form = page.locator("#panel .note-form")
    form.locator("textarea[name=text]").fill("too **large** a step <b>here</b>")
    form.locator("input[name=label][value=suspect]").check()
    form.locator("button[type=submit]").click()
    note = page.locator("#panel .note-list .note")
    note.wait_for()
    assert "too large a step <b>here</b>" in note.inner_text() and "suspect" in note.inner_text()
    assert page.locator("#panel .note-text strong").inner_text() == "large"
    assert f"/runs/{run.pk}/" in page.url and "decisions" not in page.url  # swapped in place: no navigation

    page.goto(f"/runs/{run.pk}/")
    assert "suspect" in page.locator(f"#decision-rows tr[data-seq='{seq}'] .note-mark").inner_text()
    page.locator("#run-notes a.note-label", has_text="suspect").click()
    page.wait_for_url("**label=suspect**")
    # The unfiltered rows were there before the click: wait for the filtered table (one row), then read it.
    rows = page.locator("#decision-rows tr.row")
    expect(rows).to_have_count(1)
    assert rows.evaluate_all("rs => rs.map(r => +r.dataset.seq)") == [seq]

    page.goto(f"/runs/{run.pk}/replay/?step={seq}")
    assert "None on this decision" in page.locator("#replay-notes").inner_text()
    page.keyboard.press("ArrowRight")
    page.locator("#replay-notes", has_text=f"decision #{seq}").locator(".note").wait_for()
    assert "suspect" in page.locator("#replay-notes").inner_text()


def test_a_refused_note_says_why_and_keeps_the_text(page, run):
    page.goto(f"/runs/{run.pk}/decisions/3/")
    form = page.locator(".note-form")
    form.locator("textarea[name=text]").fill("keep this text")
    form.locator("input[name=labels]").fill("not a label!")
    form.locator("button[type=submit]").click()
    page.locator(".note-error").wait_for()
    assert "label" in page.locator(".note-error").inner_text()
    assert page.locator(".note-form textarea[name=text]").input_value() == "keep this text"
    assert not Note.objects.exists()
