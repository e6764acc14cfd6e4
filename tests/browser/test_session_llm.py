"""A session in Chromium (issue 16): the run page's LLM panel and replay readiness, the replay kit."""

import json

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEBT = "session/session_debt_auction_ambush.jsonl"


@pytest.fixture
def run(import_sample, browser_user):
    return import_sample(DEBT, owner=browser_user)


def test_the_session_run_page_shows_tokens_cost_and_replay_readiness(page, run, shot):
    page.goto(f"/runs/{run.pk}/")
    panel = page.locator("#llm-panel:not([aria-busy])")
    panel.wait_for()
    assert "21 calls" not in panel.inner_text()  # the count is its own number
    page.locator("header.run-head").screenshot(path=str(shot(page, "header").with_name("session-run-head.png")))
    summary = panel.locator("details.llm-use > summary").inner_text()
    assert "21" in summary and "21,633 in" in summary and "5,786 out" in summary and "(estimate)" in summary
    panel.locator("details.llm-use > summary").click()
    panel.locator("details.replay-readiness > summary").click()
    agents = panel.locator("table.llm-by-agent tbody tr")
    assert agents.count() == 1 and "dm_01" in agents.first.inner_text()
    assert "derived from the log" in panel.locator("table.llm-slowest caption").inner_text()
    assert "1 min 33 s" in panel.locator("table.llm-slowest tbody tr").first.inner_text()
    ready = panel.locator("details.replay-readiness")
    assert "1012205817" in ready.inner_text() and "631860b" in ready.inner_text()
    assert ready.locator("table.llm-coverage tbody tr").count() == 4  # the DM and three players
    shot(page, "panel")
    panel.screenshot(path=str(shot(page, "panel").with_name("session-llm-panel.png")))
    with page.expect_download() as download:
        ready.get_by_text("Replay kit (JSON)").click()
    kit = json.loads(download.value.path().read_text())
    assert [c["call_sequence"] for c in kit["responses"]["dm_01"]] == list(range(21))
    # The agent link filters the run page to that agent's calls.
    agents.first.locator("a").click()
    page.wait_for_url(f"**/runs/{run.pk}/?action=llm_call&agent=dm_01")
    assert page.locator("#decision-rows tr.row").count() == 21


def longest_llm_call_seq(path) -> int:
    lines = path.read_text().splitlines()
    return max((i for i, line in enumerate(lines) if '"event_type": "llm_call"' in line), key=lambda i: len(lines[i]))


def test_the_longest_llm_call_reads_as_a_chat_under_3000_px_until_expanded(page, run, samples_dir, shot, context):
    seq = longest_llm_call_seq(samples_dir / DEBT)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/runs/{run.pk}/decisions/{seq}/")
    turns = page.locator(".chat article.turn")
    assert [t.locator(".role").inner_text().lower() for t in turns.all()] == ["system", "user", "response"]
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 3000, height
    shot(page, "collapsed")
    # Markdown is rendered (the system prompt's headings), not shown as "#" lines, once expanded.
    system = turns.first
    system.locator("details.long > summary").click()
    assert system.locator(".md h1, .md h2, .md h3").count() > 0
    system.locator(".md").scroll_into_view_if_needed()
    page.screenshot(path=str(shot(page, "expanded")))
    assert page.evaluate("document.documentElement.scrollHeight") > height
    system.locator("details.long > summary .collapse").click()
    assert abs(page.evaluate("document.documentElement.scrollHeight") - height) < 5
    # Copy gives the text as written (markdown, not HTML).
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = system.locator("button[data-copy]")
    # The write is async: run.js marks the button "copied" once it is done (for 1.5 s); note that
    # mark as it comes, and read the clipboard only after it.
    copy.evaluate(
        """(b) => { window.__copied = false; new MutationObserver(() => {
             if (b.classList.contains("copied")) window.__copied = true;
           }).observe(b, {attributes: true, attributeFilter: ["class"]}); }"""
    )
    copy.click()
    page.wait_for_function("() => window.__copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    written = json.loads((samples_dir / DEBT).read_text().splitlines()[seq])
    assert copied == written["prompt"][0]["content"]
    # The JSON is one click away.
    raw = page.locator("details.raw-json")
    assert not raw.locator("pre.json").is_visible()
    raw.locator("summary").click()
    assert raw.locator("pre.json").is_visible()


def test_an_llm_call_opened_in_the_run_pages_side_panel_reads_as_a_chat(page, run, shot):
    page.goto(f"/runs/{run.pk}/?action=llm_call&round=3")
    page.locator("#decision-rows tr.row a.open").first.click()
    chat = page.locator("#panel .chat")
    chat.wait_for()
    assert chat.locator("article.turn").count() == 3
    assert chat.locator("details.long:not([open])").count() == 2
    page.locator("#panel").screenshot(path=str(shot(page, "x").with_name("session-llm-side-panel.png")))
