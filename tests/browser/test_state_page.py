"""A session's state over time in Chromium (issue 16.4): the plots are drawn, a point opens its decision."""
import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEBT = "session/session_debt_auction_ambush.jsonl"
POINT = """([id, trace, i]) => {
  const el = document.getElementById(id), t = el.data[trace], l = el._fullLayout;
  const box = el.querySelector('.nsewdrag').getBoundingClientRect();
  return [t.customdata[i], box.left + l.xaxis.d2p(t.x[i]), box.top + l.yaxis.d2p(t.y[i])];
}"""


def test_the_state_page_draws_its_plots_and_a_point_click_opens_its_decision(page, import_sample, browser_user, shot):
    run = import_sample(DEBT, owner=browser_user)
    page.goto(f"/runs/{run.pk}/")
    page.locator("nav.run-nav").get_by_role("link", name="State").click()
    page.wait_for_url(f"**/runs/{run.pk}/state/")
    for key in ("health", "wounds", "void", "soulcredit", "conditions", "clocks"):
        page.locator(f"#plot-{key} .main-svg").first.wait_for()
    # Plotly makes its <svg> before it draws the lines and ticks: wait for them, not the svg alone.
    expect(page.locator("#plot-health .scatterlayer .trace")).to_have_count(3)  # one line per character
    expect(page.locator("#plot-clocks .xtick text").first).to_have_text("R1")
    shot(page)
    # The second point of the first line, in page pixels (plotly's axes map data to the plot area).
    seq, x, y = page.evaluate(POINT, ["plot-health", 0, 1])
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_url(f"**/runs/{run.pk}/decisions/{seq}/")
    assert "character_state" in page.locator("#decision-title").inner_text()
