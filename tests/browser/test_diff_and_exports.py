"""Comparing two runs and downloading exports, in Chromium."""

import csv
import io
import json
import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

A = "session/session_debt_auction_ambush.jsonl"
B = "session/session_debt_auction_ambush_replay.jsonl"
DYNO = "dynoai/real_sample/session_replay.json"


def first_difference(samples_dir) -> int:
    """The first event (file order) that differs in more than its timestamp, computed from the files."""
    a, b = (
        [json.loads(line) for line in (samples_dir / p).read_text().splitlines() if line.strip()]
        for p in (A, B)
    )
    for i, (x, y) in enumerate(zip(a, b)):
        if {k: v for k, v in x.items() if k != "ts"} != {k: v for k, v in y.items() if k != "ts"}:
            return i
    raise AssertionError("the samples do not differ")


def test_ticking_two_runs_opens_their_diff_at_the_first_divergence(
    page, import_sample, browser_user, samples_dir, shot
):
    run_a = import_sample(A, owner=browser_user)
    run_b = import_sample(B, owner=browser_user)
    page.goto("/")
    page.check(f"#compare-form input[value='{run_a.pk}']")
    page.check(f"#compare-form input[value='{run_b.pk}']")
    page.click("#compare-form button:has-text('Compare')")
    page.wait_for_url(re.compile(r"/diff/\?.*a=\d+.*b=\d+"))
    shot(page)
    assert {re.search(r"[?&]a=(\d+)", page.url)[1], re.search(r"[?&]b=(\d+)", page.url)[1]} == {
        str(run_a.pk),
        str(run_b.pk),
    }
    seq = first_difference(samples_dir)
    divergence = page.locator("#divergence")
    links = divergence.locator("p a").all_inner_texts()
    assert links == [f"#{seq}", f"#{seq}"], divergence.inner_text()
    assert "Everything before it is identical" in divergence.inner_text()
    assert "roll" in divergence.locator("ul.changes").inner_text()

    # The diff's CSV export downloads, and lists the changed decision.
    with page.expect_download() as download:
        page.locator(".diff-verdict a", has_text="CSV").click()
    text = open(download.value.path(), encoding="utf-8-sig").read()
    assert download.value.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) > 1 and any(str(seq) in row for row in rows[1:])


def test_the_run_exports_download_with_every_matching_decision(
    page, import_sample, browser_user, samples_dir, shot
):
    run = import_sample(DYNO, owner=browser_user)
    written = json.loads((samples_dir / DYNO).read_text())["decisions"]
    page.goto(f"/runs/{run.pk}/?action=clamp")
    expected = [d for d in written if "clamp" in d["action"].lower()]
    for fmt in ("CSV", "JSON", "JSONL", "TXT", "HTML"):
        with page.expect_download() as download:
            page.locator(".run-nav-export a", has_text=re.compile(rf"^{fmt}$")).click()
        path = download.value.path()
        name = download.value.suggested_filename
        assert name.endswith("." + fmt.lower()), name
        body = open(path, encoding="utf-8-sig").read()
        if fmt == "CSV":
            assert len(list(csv.reader(io.StringIO(body)))) == len(expected) + 1
        elif fmt == "JSONL":
            assert [json.loads(line)["action"] for line in body.splitlines()] == [
                d["action"] for d in expected
            ]
        elif fmt == "JSON":
            assert body.count('"action"') >= len(expected)
        else:
            assert all(d["action"] in body for d in expected)
    shot(page)
