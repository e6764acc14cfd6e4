"""The hostile samples in a real browser, after every script has run: no alert fires, no markup from
a log reaches the DOM (hover labels, the side panel, replay frames drawn by JS, the diff), and the
CSP reports nothing (a blocked inline handler would be a console error, which fails the test)."""

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS_DYNO = "hostile/xss_session_replay.json"
XSS_SESSION = "hostile/xss_session.jsonl"

# Markup from the logs that would show up in the DOM had it been parsed as HTML (plotly turns
# <b>/<i> into bold/italic text: a text node "BOLD_ACTION" alone means the tags were taken as markup).
INJECTED = """() => {
  const bad = [];
  const tags = 'img[src="x"], img[src="q"], svg[onload], [onerror], [onload], [onclick], '
    + "iframe, object, embed";
  document.querySelectorAll(tags)
    .forEach((e) => bad.push(e.outerHTML.slice(0, 100)));
  document.querySelectorAll("script").forEach((s) => {
    if (!s.src && s.type !== "application/json") bad.push("inline script: " + s.textContent.slice(0, 60));
  });
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const t = n.nodeValue.trim();
    if (t === "BOLD_ACTION" || /^key\\d+$/.test(t)) bad.push("markup taken as HTML around: " + t);
  }
  return bad;
}"""

# Hover every point of every plotly graph on the page, collecting the hover labels' text. Plotly
# throttles hover to one per 50 ms (constants.HOVERMINTIME): each hover waits that long.
HOVER_ALL = """async () => {
  const texts = [];
  const pause = () => new Promise((done) => setTimeout(done, 60));
  for (const gd of document.querySelectorAll(".js-plotly-plot")) {
    const traces = gd.data || [];
    for (let curve = 0; curve < traces.length; curve++) {
      const trace = traces[curve];
      if (trace.hoverinfo === "skip") continue;
      const points = [];
      if (trace.type === "heatmap") {
        (trace.z || []).forEach((row, i) => row.forEach((v, j) => { if (v !== null) points.push([i, j]); }));
      } else {
        (trace.x || []).forEach((x, i) => { if (x !== null) points.push(i); });
      }
      const subplot = (trace.xaxis || "x") + (trace.yaxis || "y");
      for (const p of points.slice(0, 40)) {
        Plotly.Fx.hover(gd, [{curveNumber: curve, pointNumber: p}], subplot);
        await pause();
        const layer = gd.querySelector(".hoverlayer");
        if (layer) texts.push(layer.textContent);
      }
      Plotly.Fx.unhover(gd);
    }
  }
  return texts;
}"""


@pytest.fixture
def hostile(import_sample, browser_user):
    from types import SimpleNamespace

    return SimpleNamespace(
        dyn=import_sample(XSS_DYNO, owner=browser_user),
        sess=import_sample(XSS_SESSION, owner=browser_user),
        real_dyn=import_sample("dynoai/real_sample/session_replay.json", owner=browser_user),
        real_sess=import_sample("session/combat_session_sample.jsonl", owner=browser_user),
    )


@pytest.fixture
def dialogs(page):
    fired = []

    def record(dialog):
        fired.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return fired


# The drilldown htmx swapped in has settled: its chart (if any) is drawn and its cell story (if any)
# has replaced the slot that loads it (htmx draws and loads those a moment after the swap).
DRILLDOWN_SETTLED = """() => {
  const d = document.getElementById("cell-drilldown");
  if (!d || !d.querySelector("h2") || d.querySelector("div#cell-story")) return false;
  return [...d.querySelectorAll("[data-plot]")].every((g) => g._fullLayout);
}"""


def drilldown_shown(page, href: str) -> None:
    """Wait for the drilldown of the cell link `href` (pushed to the URL by htmx with its swap)."""
    wanted = parse_qs(urlsplit(href).query)
    page.wait_for_url(lambda url: parse_qs(urlsplit(url).query) == wanted)
    page.wait_for_function(DRILLDOWN_SETTLED)


def inert(page, dialogs, where: str) -> None:
    assert page.evaluate(INJECTED) == [], where
    assert dialogs == [], f"{where}: an alert ran: {dialogs}"


def test_the_run_pages_hover_labels_and_panels_show_hostile_strings_as_text(page, hostile, dialogs, shot):
    for run in (hostile.dyn, hostile.sess):
        page.goto(f"/runs/{run.pk}/")
        page.wait_for_function(
            "() => { const p = document.getElementById('plot'); return p && p._fullLayout; }"
        )
        # The facets and the summary land by htmx after the page: check them too, once they are in.
        expect(page.locator("[aria-busy=true]")).to_have_count(0, timeout=15_000)
        hovers = " ".join(page.evaluate(HOVER_ALL))
        assert "<script>alert(" in hovers or '<img src=x onerror=alert("xss-img")>' in hovers, hovers[:500]
        inert(page, dialogs, f"run {run.pk} chart")
        shot(page, f"run-{run.kind}")
        for row in range(page.locator("#decision-rows tr.row").count()):
            page.locator("#decision-rows tr.row a.open").nth(row).click()
            page.wait_for_selector(f"#panel article.decision[data-seq='{row}']")
        inert(page, dialogs, f"run {run.pk} panels")
        shot(page, f"panel-{run.kind}")


def test_the_cells_page_and_its_drilldowns_show_hostile_strings_as_text(page, hostile, dialogs, shot):
    for run in (hostile.dyn, hostile.sess):
        page.goto(f"/runs/{run.pk}/cells/")
        page.wait_for_load_state("networkidle")
        page.evaluate(HOVER_ALL)
        inert(page, dialogs, f"cells {run.pk}")
        links = page.locator("#cells-panel table a[id^=cell-]")
        for i in range(min(links.count(), 4)):
            href = links.nth(i).get_attribute("href")
            page.evaluate("(i) => document.querySelectorAll('#cells-panel table a[id^=cell-]')[i].click()", i)
            # From the second cell on, the previous drilldown's <h2> is already there and the page was
            # network-idle long ago: wait for this cell's drilldown, its chart and its story instead.
            drilldown_shown(page, href)
            page.evaluate(HOVER_ALL)
            inert(page, dialogs, f"cells {run.pk} drilldown {i}")
        shot(page, f"cells-{run.kind}")


def test_a_replay_played_to_the_end_shows_hostile_strings_as_text(page, hostile, dialogs, shot):
    for run in (hostile.dyn, hostile.sess):
        page.goto(f"/runs/{run.pk}/replay/?step=0")
        page.wait_for_selector("#play:not([disabled])")
        page.select_option("#speed", page.locator("#speed option").last.get_attribute("value"))
        page.click("#play")
        page.wait_for_function(
            "() => /^Step (\\d+) of \\1(?!\\d)/.test(document.getElementById('step-out').textContent)"
        )
        # Pausing at the end fetches the rows around the last step and redraws the list once they
        # arrive (replay.js fillWindow): wait until the player has no fetch left ("loading…" hidden).
        expect(page.locator("#buffering")).to_be_hidden(timeout=15_000)
        page.evaluate(HOVER_ALL)
        inert(page, dialogs, f"replay {run.pk}")
        expect(page.locator("#replay-list")).to_contain_text(
            "</textarea><svg onload=alert(1)>", use_inner_text=True
        )
        shot(page, f"replay-{run.kind}")


def test_the_diff_of_a_hostile_run_shows_its_strings_as_text(page, hostile, dialogs, shot):
    for a, b in ((hostile.real_dyn, hostile.dyn), (hostile.real_sess, hostile.sess)):
        page.goto(f"/diff/?a={a.pk}&b={b.pk}&rows=all")
        page.wait_for_load_state("networkidle")
        page.evaluate(HOVER_ALL)
        inert(page, dialogs, f"diff {a.pk}-{b.pk}")
        shot(page, f"diff-{a.kind}")


def test_the_html_export_of_a_hostile_run_runs_nothing(page, hostile, dialogs, shot):
    for run in (hostile.dyn, hostile.sess):
        page.goto(f"/runs/{run.pk}/")  # the export is a download; open its text as a page instead
        html = page.evaluate("(url) => fetch(url).then((r) => r.text())", f"/runs/{run.pk}/export.html")
        page.set_content(html)
        inert(page, dialogs, f"export {run.pk}")
        assert "<script>alert(" in page.locator("body").inner_text()
    shot(page)


def test_the_injection_check_sees_markup_when_there_is_some(context):
    blank = context.new_page()  # not watched: the probe's <img> is meant to fail
    blank.set_content('<p><b>BOLD_ACTION</b> <img src="x"> <span onclick="x()">key3</span></p>')
    assert len(blank.evaluate(INJECTED)) == 4
    blank.close()
