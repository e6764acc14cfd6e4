"""The runs list in Chromium: runs of one input grouped as a sweep, its link opening the compare page."""

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RUNS = "dynoai/runs"


def test_a_sweep_heads_its_runs_and_opens_them_on_the_compare_page(page, import_sample, browser_user, shot):
    for folder in ("large200k_s2_c7", "large200k_s4_c10"):
        import_sample(f"{RUNS}/{folder}/session_replay.json", f"{RUNS}/{folder}/manifest.json", owner=browser_user)
    import_sample("session/combat_session_sample.jsonl", owner=browser_user)
    page.goto("/")
    head = page.locator("#run-table tr.sweep-head")
    assert head.count() == 1
    assert "Sweep of 2 runs of large_resampled_200k.csv" in head.inner_text()
    assert page.locator("#run-table tbody.sweep tr:not(.sweep-head)").count() == 2
    shot(page, "list")
    head.locator("a", has_text="Compare").click()
    page.wait_for_url(re.compile(r"/compare/\?run=\d+&run=\d+$"))
    assert page.locator("h1").first.is_visible()
