"""Comparing two runs and downloading exports, in Chromium."""

import csv
import io
import json
import re

import pytest
from playwright.sync_api import expect

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


@pytest.fixture
def demo_dyno_pair(tmp_path, browser_user):
    """The demo's two DynoAI runs: one dyno log tuned with 2 smoothing passes and clamp 7, and 4 and 10."""
    from viewer.demo import write_dynoai
    from viewer.ingest import Source, run_ingest

    runs = []
    for folder, passes, clamp in (("a", 2, 7.0), ("b", 4, 10.0)):
        replay = write_dynoai(tmp_path / folder, passes=passes, clamp=clamp)
        sources = [
            Source(name=p.name, path=p, group=folder) for p in (replay, replay.parent / "manifest.json")
        ]
        (result,) = [r for r in run_ingest(owner=browser_user, sources=sources) if r.status == "imported"]
        runs.append(result.run)
    return runs


def test_the_dynoai_diff_draws_its_per_cell_heatmap_and_switches_it_in_place(page, demo_dyno_pair, shot):
    a, b = demo_dyno_pair
    page.goto(f"/diff/?a={a.pk}&b={b.pk}")
    heat = page.locator("#diff-heatmap")
    heat.locator(".main-svg").first.wait_for()
    # Plotly makes its <svg> before it draws the axes' titles: wait for the titles, not the svg alone.
    expect(heat.locator(".xtitle")).to_have_text("kPa")
    expect(heat.locator(".ytitle")).to_have_text("RPM")
    assert "smooth_passes" in page.locator(".diff-settings").first.inner_text()
    shot(page, "final")
    page.locator(".diff-heat-switch a", has_text="Decision count").click()
    page.wait_for_url(re.compile(r"heat=count"))
    page.locator(".diff-heat-switch strong", has_text="Decision count").wait_for()
    heat.locator(".main-svg").first.wait_for()
    shot(page, "count")


def test_the_session_pair_diff_reads_as_a_session(page, import_sample, browser_user, shot, watch):
    run_a = import_sample(A, owner=browser_user)
    run_b = import_sample(B, owner=browser_user)
    page.goto(f"/diff/?a={run_a.pk}&b={run_b.pk}")
    assert page.locator("input[name=round]").count() == 1 and page.locator("input[name=rpm]").count() == 0
    assert "round, event type and agent" in page.locator(".diff-verdict").inner_text()
    assert page.locator("#diff-heatmap").count() == 0 and page.locator("#diff-kinds").count() == 0
    shot(page)
    # A filter that does not parse: the fragment is refused, and the page's one error line says why.
    watch.allow(r"/diff/\?", 400)
    page.fill("#diff-form input[name=v]", "roll.d20 >>> 3")
    page.click("#diff-form button[type=submit]")
    error = page.locator("#htmx-error")
    error.wait_for(state="visible")
    assert error.inner_text().startswith("v:")
    assert page.locator("#diff-body .diff-verdict").count() == 1  # the last good answer stays
    # htmx also logs the refused answer on the console; that one was expected.
    watch.problems[:] = [p for p in watch.problems if "Response Status Error Code 400 from /diff/" not in p]


def test_runs_of_different_kinds_say_so(page, import_sample, browser_user, demo_dyno_pair, shot):
    session = import_sample(A, owner=browser_user)
    page.goto(f"/diff/?a={demo_dyno_pair[0].pk}&b={session.pk}")
    assert "Runs of different kinds" in page.locator("#diff-kinds").inner_text()
    assert page.locator("#diff-heatmap").count() == 0
    shot(page)


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
