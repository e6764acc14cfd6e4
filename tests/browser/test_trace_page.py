"""The trace page in Chromium (issue 16.1): expand a round, pick a call, the URL and the side panel follow."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEBT = "session/session_debt_auction_ambush.jsonl"


@pytest.fixture
def run(import_sample, browser_user):
    return import_sample(DEBT, owner=browser_user)


def test_expanding_a_round_and_picking_a_call_puts_it_in_the_url_and_the_side_panel(page, run, shot):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/runs/{run.pk}/")
    page.locator("nav.run-nav").get_by_role("link", name="Trace").click()
    page.wait_for_url(f"**/runs/{run.pk}/trace/")
    page.locator("#trace-plot .main-svg").first.wait_for()  # the lanes are drawn
    assert page.locator("details.trace-round").count() == 7  # setup, five rounds, the end
    assert "Nothing selected" in page.locator("#trace-panel").inner_text()

    round_2 = page.locator("details.trace-round").nth(2)
    round_2.locator(":scope > summary").click(position={"x": 4, "y": 8})  # the marker, not the link
    assert round_2.get_attribute("open") is not None
    turn = round_2.locator("details.trace-turn").filter(has_text="adjudication").last
    turn.locator(":scope > summary").click(position={"x": 4, "y": 8})
    call = turn.locator("li.leaf.call a.node")
    assert "slow" in call.inner_text()
    call.click()
    page.wait_for_url(f"**/runs/{run.pk}/trace/?node=40")
    panel = page.locator("#trace-panel")
    panel.get_by_text("LLM call").wait_for()
    text = panel.inner_text()
    assert "claude-sonnet-4-5" in text and "1,758 in · 196 out" in text and "1 min 33 s" in text
    assert "adjudication of Ash Vex" in text
    assert call.get_attribute("aria-current") == "true"
    shot(page, "picked")

    # Keyboard: the next node down from the call is the adjudication's resolution.
    call.focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.textContent").strip().startswith("action_resolution")

    # The panel links the decision page; a reload keeps the pick (the URL is the state).
    page.reload()
    assert page.locator("details.trace-round[open]").count() == 1
    assert page.locator("#trace-panel a.open-decision").get_attribute("href") == f"/runs/{run.pk}/decisions/40/"
    page.locator("#trace-panel a.open-decision").click()
    page.wait_for_url(f"**/runs/{run.pk}/decisions/40/")


def test_an_otlp_traces_tree_opens_by_its_summary_selects_by_its_link_and_follows_the_arrow_keys(page, browser_user, shot):
    """A branch's link sits beside its <summary>: the summary opens, the link selects (no nested
    interactive control for axe), and the arrow keys move through spans as through a session's rounds."""
    from pathlib import Path

    from axe_playwright_python.sync_playwright import Axe

    from viewer.ingest import Source, run_ingest

    path = Path(__file__).parent.parent / "data" / "otlp" / "agent_trace.jsonl"
    (result,) = run_ingest(owner=browser_user, sources=[Source(path.name, path=path)])
    run = result.run
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"/runs/{run.pk}/trace/")
    page.locator("#trace-plot .main-svg").first.wait_for()
    root = page.locator("li.branch").first
    details = root.locator(":scope > details.trace-span")
    assert details.get_attribute("open") is None
    details.locator(":scope > summary").click(position={"x": 4, "y": 8})  # the marker opens it
    assert details.get_attribute("open") is not None
    assert "Nothing selected" in page.locator("#trace-panel").inner_text()

    link = root.locator(":scope > a.node")
    link.click()
    page.wait_for_url(f"**/runs/{run.pk}/trace/?node=0")
    page.locator("#trace-panel").get_by_text("4.20 s").wait_for()
    shot(page, "root")

    link.focus()
    page.keyboard.press("ArrowDown")  # the first child: the first chat span
    assert "generation" in page.evaluate("document.activeElement.textContent")
    page.keyboard.press("ArrowLeft")  # a leaf: up to its parent's link
    assert page.evaluate("document.activeElement.dataset.seq") == "0"
    page.keyboard.press("ArrowLeft")  # the parent, open: closes it
    assert details.get_attribute("open") is None
    page.keyboard.press("ArrowRight")  # opens it again and goes to its first child
    assert details.get_attribute("open") is not None
    assert page.evaluate("document.activeElement.dataset.seq") == "1"

    found = Axe().run(page).response["violations"]
    assert not [v["id"] for v in found if v["impact"] in ("serious", "critical")]
