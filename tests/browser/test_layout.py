"""Every page at a phone's, a tablet's and a laptop's width (issue 21.1): nothing scrolls sideways and no
form control is cut off. A page at 390 px is kept as a screenshot (test-artifacts/screenshots/)."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"phone": (390, 844), "tablet": (768, 1024), "laptop": (1440, 900)}

# What sticks out: the page's own width, and each visible control whose box leaves the viewport.
MEASURE = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll("input, select, textarea, button")) {
    if (el.type === "hidden" || !el.checkVisibility({visibilityProperty: true})) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.left < -0.5 || box.right > width + 0.5) {
      const name = el.name || el.id || el.getAttribute("aria-label") || el.textContent.trim().slice(0, 30);
      out.push(`${el.tagName.toLowerCase()} ${name}: ${Math.round(box.left)}..${Math.round(box.right)}`);
    }
  }
  // The outermost elements that stick out, to name in a failure.
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    const parent = el.parentElement.getBoundingClientRect();
    if (box.right > width + 0.5 && parent.right <= width + 0.5 && box.width > 0) {
      wide.push(`<${el.tagName.toLowerCase()} class="${el.className}"> to ${Math.round(box.right)}`);
    }
  }
  return {width, scroll: document.documentElement.scrollWidth, out, wide: wide.slice(0, 5)};
}"""


# The page has come to rest: no htmx fragment still loading, swapping or settling, every plotly figure
# drawn, and the page's size and the figures' sizes unchanged over a few frames in a row (a figure is
# drawn, and sized, a moment after the fragment that holds it lands).
AT_REST = """() => {
  const busy = document.querySelector(
    '[aria-busy="true"], .htmx-request, .htmx-swapping, .htmx-settling, .htmx-added');
  const plots = [...document.querySelectorAll(".js-plotly-plot")];
  if (busy || plots.some((g) => !g._fullLayout)) { window.__atRest = null; return false; }
  const doc = document.documentElement;
  const key = JSON.stringify([doc.scrollWidth, doc.scrollHeight,
    plots.map((g) => { const b = g.getBoundingClientRect(); return [b.width, b.height]; })]);
  const last = window.__atRest;
  if (!last || last.key !== key) { window.__atRest = {key, frames: 1}; return false; }
  return ++last.frames >= 5;
}"""


def settle(page, path):
    page.goto(path)
    page.wait_for_load_state("networkidle")
    page.wait_for_function(AT_REST, polling="raf")  # not a fixed sleep: until nothing moves any more


def overflow(page, path):
    settle(page, path)
    m = page.evaluate(MEASURE)
    problems = []
    if m["scroll"] > m["width"]:
        problems.append(f"{path} is {m['scroll']} px wide in a {m['width']} px viewport: {m['wide']}")
    problems += [f"{path}: {c} cut off (viewport {m['width']} px)" for c in m["out"]]
    return problems


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_no_page_scrolls_sideways_or_cuts_off_a_control(page, site_pages, viewport, shot, browser, live_server):
    width, height = VIEWPORTS[viewport]
    page.set_viewport_size({"width": width, "height": height})
    problems = []
    for name, path in site_pages:
        problems += overflow(page, path)
        if viewport == "phone":
            shot(page, name)
    # The login page, logged out.
    ctx = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
    try:
        login = ctx.new_page()
        problems += overflow(login, "/login/")
        if viewport == "phone":
            shot(login, "login")
    finally:
        ctx.close()
    assert not problems, "\n".join(problems)


def test_the_decision_table_is_cards_on_a_phone(page, site_pages, shot):
    run = dict(site_pages)["run-session"]
    page.set_viewport_size({"width": 390, "height": 844})
    settle(page, run)
    row = page.locator("#decision-rows tr.row").first
    assert page.locator("#decision-table thead").evaluate("e => getComputedStyle(e).display") != "table-header-group"
    assert row.evaluate("e => getComputedStyle(e).display") == "block"
    cells = row.locator("td[data-label]")
    assert cells.count() >= 6
    label = cells.nth(1).evaluate("e => getComputedStyle(e, '::before').content")
    assert "Time" in label
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(shot(page, "cards")))  # the viewport only: a few cards


def test_a_sessions_values_column_has_room_at_1440(page, site_pages):
    page.set_viewport_size({"width": 1440, "height": 900})
    settle(page, dict(site_pages)["run-session"])
    cell = page.locator("#decision-rows tr.row td.preview").first
    assert cell.bounding_box()["width"] >= 240  # ~30 characters of "config={…"


def test_the_plotly_toolbar_does_not_cover_the_heatmap(page, site_pages):
    page.set_viewport_size({"width": 1440, "height": 900})
    settle(page, dict(site_pages)["cells"])
    bar = page.locator(".cells-heatmap .modebar").first
    plot = page.locator(".cells-heatmap .nsewdrag").first
    if bar.count():
        bar_box, plot_box = bar.bounding_box(), plot.bounding_box()
        assert bar_box["y"] + bar_box["height"] <= plot_box["y"] + 1, (bar_box, plot_box)
