"""The runs list in Chromium: renaming a run, and comparing ticked runs side by side."""

import re

import pytest
from playwright.sync_api import expect

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


def make_runs(owner, count):
    return [Run.objects.create(owner=owner, name=f"run {n:03d}", kind="session", source_name=f"f{n:03d}.jsonl", size=1,
                               sha256=f"{n:064d}", decision_count=n) for n in range(count)]


def test_search_sort_and_next_page_swap_the_table_and_keep_each_step_in_the_url(page, browser_user, shot):
    make_runs(browser_user, 70)
    page.goto("/")
    page.fill("#run-filters input[name=q]", "run 0")
    page.press("#run-filters input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"/\?q=run\+0$"))
    assert page.locator("#run-table .runs-matching").inner_text().startswith("70 runs match")
    page.select_option("#run-filters select[name=sort]", "decisions")
    page.wait_for_url(re.compile(r"/\?q=run\+0&sort=decisions$"))
    assert page.locator("#run-table td.run-name > a").first.inner_text() == "run 000"
    page.click("#run-table nav.pager a[rel=next]")
    page.wait_for_url(re.compile(r"after=\d+"))
    expect_first = page.locator("#run-table td.run-name > a").first
    assert expect_first.inner_text() == "run 050" and page.locator("#run-table tbody tr").count() == 20
    shot(page)
    page.go_back()
    page.wait_for_url(re.compile(r"sort=decisions$"))
    # htmx moves the URL back before it puts the earlier table back: wait for the table, not the URL
    expect(page.locator("#run-table td.run-name > a").first).to_have_text("run 000")


def test_ticked_runs_are_tagged_then_deleted_through_the_bulk_page(page, browser_user, shot):
    runs = make_runs(browser_user, 4)
    page.goto("/?sort=name")
    for run in runs[:2]:
        page.check(f"#compare-form input[value='{run.pk}']")
    page.click("#compare-form button:has-text('Tag…')")
    page.fill("#bulk-tag", "second look")
    page.click(".bulk-form button[type=submit]")
    page.wait_for_url(re.compile(r"/\?sort=name$"))
    assert page.locator(".messages").inner_text() == "Tagged 2 runs “second look”."
    page.locator("#run-table a.tag", has_text="second look").first.click()
    page.wait_for_url(re.compile(r"tag=second"))
    assert sorted(page.locator("#run-table td.run-name > a").all_inner_texts()) == ["run 000", "run 001"]
    page.check("#compare-form input[name=run] >> nth=0")
    page.click("#compare-form button:has-text('Delete…')")
    assert page.locator("h1").inner_text() == "Delete: 1 run"
    shot(page, "confirm")
    page.click(".bulk-form button[type=submit]")
    page.wait_for_url(re.compile(r"tag=second"))
    assert page.locator(".messages").inner_text() == "Deleted 1 run."
    assert Run.objects.filter(owner=browser_user).count() == 3


def test_the_runs_table_is_cards_on_a_phone_with_the_filters_above(page, browser_user, shot):
    make_runs(browser_user, 3)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    row = page.locator("#run-table tbody tr").first
    assert row.evaluate("e => getComputedStyle(e).display") == "block"
    label = row.locator("td[data-label=Decisions]").evaluate("e => getComputedStyle(e, '::before').content")
    assert "Decisions" in label
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("#run-filters input[name=q]").is_visible()
    shot(page)


def test_the_tour_the_no_match_state_and_the_bulk_page_have_no_serious_axe_violation(page, browser_user, tmp_path):
    from axe_playwright_python.sync_playwright import Axe

    from viewer import demo
    from viewer.ingest import Source, run_ingest

    for group in demo.write_all(tmp_path):
        run_ingest(owner=browser_user, sources=[Source("demo/" + str(p.relative_to(tmp_path)), path=p, group=str(p.parent))
                                                for p in group])
    run = Run.objects.filter(owner=browser_user).first()
    axe, found = Axe(), []
    for path in ("/", "/?q=nothing-like-this", f"/runs/bulk/?do=tag&run={run.pk}", f"/runs/bulk/?do=delete&run={run.pk}"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        found += [f"{path}: {v['id']} {v['help']}" for v in axe.run(page).response["violations"]
                  if v["impact"] in ("serious", "critical")]
    assert not found, found
