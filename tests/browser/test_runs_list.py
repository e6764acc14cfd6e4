"""The runs list in Chromium: renaming a run, and comparing ticked runs side by side."""

import re

import pytest

from viewer.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RUNS = "dynoai/runs"


def test_a_run_renamed_from_the_list_keeps_its_new_name(page, import_sample, browser_user, shot):
    run = import_sample("session/combat_session_sample.jsonl", owner=browser_user)
    page.goto("/")
    page.click(f"text=Rename >> nth=0")
    field = page.locator(f"input[form='rename-{run.pk}']")
    field.fill("Combat, first try")
    page.click(f"button[form='rename-{run.pk}']")
    page.wait_for_load_state()
    shot(page)
    assert Run.objects.get(pk=run.pk).name == "Combat, first try"
    assert page.locator("#run-table a", has_text="Combat, first try").count() == 1
    assert "/diff/" not in page.url  # the rename is its own form, not the compare form around the table


def test_ticked_runs_open_side_by_side_on_the_compare_page(page, import_sample, browser_user, shot):
    a = import_sample(f"{RUNS}/large200k_s2_c7/session_replay.json", owner=browser_user)
    b = import_sample(f"{RUNS}/large200k_s4_c10/session_replay.json", owner=browser_user)
    page.goto("/")
    page.check(f"#compare-form input[value='{a.pk}']")
    page.check(f"#compare-form input[value='{b.pk}']")
    page.click("#compare-form button:has-text('side by side')")
    page.wait_for_url(re.compile(r"/compare/\?run=\d+&run=\d+"))
    shot(page)
    assert page.locator("h1").first.is_visible()
    assert page.locator(f"a[href*='/diff/?a={a.pk}&b={b.pk}'], a[href*='/diff/?a={b.pk}&b={a.pk}']").count() >= 1
