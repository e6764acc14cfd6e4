"""The run page in Chromium: filters, facets, chart and table agree; zoom; Back/Forward; keyboard."""

import datetime as dt
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAMPLE = "dynoai/real_sample/session_replay.json"


@pytest.fixture
def written(samples_dir):
    """The sample's decisions as written, with ms since the first (computed here, not by the app)."""
    decisions = json.loads((samples_dir / SAMPLE).read_text())["decisions"]
    first = dt.datetime.fromisoformat(decisions[0]["timestamp"])
    for d in decisions:
        d["t_ms"] = (dt.datetime.fromisoformat(d["timestamp"]) - first).total_seconds() * 1000
    return decisions


@pytest.fixture
def run(import_sample, browser_user):
    return import_sample(SAMPLE, owner=browser_user)


def query(page) -> dict:
    return parse_qs(urlsplit(page.url).query)


def shown_seqs(page) -> list[int]:
    return [
        int(s)
        for s in page.locator("#decision-rows tr.row").evaluate_all("rows => rows.map(r => r.dataset.seq)")
    ]


def chart_points(page) -> int:
    """Marks drawn by Plotly, from the live graph object."""
    return page.evaluate("""() => {
      const plot = document.getElementById("plot");
      return plot && plot.data ? plot.data.reduce((n, t) => n + t.x.filter((x) => x !== null).length, 0) : -1;
    }""")


def action_facet(page) -> dict[str, int]:
    facet = page.locator("#facets .facet").filter(
        has=page.locator("h3", has_text=re.compile("^(Action|Event)"))
    )
    counts = {}
    for li in facet.locator("li:not(.selected)").all():
        link = li.locator("a")
        if link.count():
            counts[link.inner_text().strip()] = int(li.locator(".count").inner_text().replace(",", ""))
    return counts


def matching(page) -> int:
    return int(page.locator(".matchline strong").inner_text().replace(",", ""))


def wait_restored(page, count: int) -> None:
    """After Back or Forward: htmx moves the URL before it restores the view, so wait for the view itself."""
    expect(page.locator(".matchline strong")).to_have_text(f"{count:,}")
    wait_drawn(page)
    page.wait_for_function(
        "(n) => { const p = document.getElementById('plot');"
        " return p && p.data && p.data.reduce((k, t) => k + t.x.filter((x) => x !== null).length, 0) === n; }",
        arg=count,
    )


def wait_drawn(page) -> None:
    page.wait_for_function(
        "() => { const p = document.getElementById('plot'); return p && p.data && p._fullLayout; }"
    )


def test_filtering_the_timeline_keeps_url_table_facets_and_chart_in_agreement(page, run, written, shot):
    page.goto(f"/runs/{run.pk}/")
    wait_drawn(page)
    assert matching(page) == len(written) == chart_points(page)
    shot(page, "all")

    expected = [i for i, d in enumerate(written) if "gradient" in d["action"].lower()]
    assert expected
    page.fill("#filters input[name=action][aria-label='Another action']", "gradient")
    page.press("#filters input[name=action][aria-label='Another action']", "Enter")
    page.wait_for_url(re.compile(r"[?&]action=gradient"))
    wait_drawn(page)
    shot(page, "gradient")

    assert query(page) == {"action": ["gradient"]}  # empty inputs are left out of the URL
    assert shown_seqs(page) == expected
    assert matching(page) == len(expected) == chart_points(page)
    # The action facet counts each action as if chosen (its own filter aside); the chosen one is marked.
    selected = page.locator("#facets li.selected")
    assert selected.count() == 1 and "gradient" in selected.inner_text()
    assert int(selected.locator(".count").inner_text()) == len(expected)
    facet = action_facet(page)
    assert facet["GRADIENT_LIMITING"] == sum(1 for d in written if d["action"] == "GRADIENT_LIMITING")
    assert all("GRADIENT" in t for t in page.locator("#decision-rows td.action").all_inner_texts())

    # Back and Forward restore each view, URL and content together.
    page.go_back()
    page.wait_for_url(re.compile(rf"/runs/{run.pk}/$"))
    wait_restored(page, len(written))
    assert matching(page) == len(written) == chart_points(page)
    assert page.locator("#filters input[name=action]").first.input_value() == ""
    page.go_forward()
    page.wait_for_url(re.compile(r"action=gradient"))
    wait_restored(page, len(expected))
    assert shown_seqs(page) == expected and chart_points(page) == len(expected)
    assert page.locator("#filters input[name=action]").first.input_value() == "gradient"


def test_a_facet_link_narrows_the_view_and_back_undoes_it(page, run, written, shot):
    page.goto(f"/runs/{run.pk}/")
    wait_drawn(page)
    facet = action_facet(page)
    action = min(facet, key=facet.get)  # the rarest action
    assert facet[action] == sum(1 for d in written if d["action"] == action)
    page.locator("#facets a", has_text=action).first.click()
    page.wait_for_url(re.compile(r"\?"))
    wait_drawn(page)
    shot(page, "facet")
    assert matching(page) == facet[action] == chart_points(page) == len(shown_seqs(page))
    page.go_back()
    page.wait_for_url(re.compile(rf"/runs/{run.pk}/$"))
    wait_restored(page, len(written))
    assert matching(page) == len(written)


def test_zooming_the_chart_narrows_the_table_to_the_window(page, run, written, shot):
    page.goto(f"/runs/{run.pk}/")
    wait_drawn(page)
    drag = page.locator("#plot .nsewdrag").first.bounding_box()
    y = drag["y"] + drag["height"] / 2
    page.mouse.move(drag["x"] + drag["width"] * 0.30, y)
    page.mouse.down()
    page.mouse.move(drag["x"] + drag["width"] * 0.45, y + 2, steps=5)
    page.mouse.move(drag["x"] + drag["width"] * 0.65, y + 2, steps=5)
    page.mouse.up()
    page.wait_for_url(re.compile(r"t_from=.*t_to=|t_to=.*t_from="))
    wait_drawn(page)
    shot(page, "zoomed")

    q = query(page)
    low, high = float(q["t_from"][0]), float(q["t_to"][0])
    assert 0 < low < high < written[-1]["t_ms"]
    expected = [i for i, d in enumerate(written) if low <= d["t_ms"] <= high]
    assert expected and len(expected) < len(written)
    assert shown_seqs(page) == expected
    assert matching(page) == len(expected) == chart_points(page)
    assert page.locator("#id_t_from").input_value() == q["t_from"][0]

    page.click("a.reset-zoom")
    page.wait_for_url(re.compile(rf"/runs/{run.pk}/$"))
    wait_drawn(page)
    assert matching(page) == len(written)
    page.go_back()
    page.wait_for_url(re.compile(r"t_from="))
    wait_restored(page, len(expected))
    assert shown_seqs(page) == expected


def test_the_keyboard_moves_through_decisions_and_opens_one(page, run, written, shot):
    page.goto(f"/runs/{run.pk}/")
    wait_drawn(page)
    page.locator("body").press("j")
    assert page.locator("#decision-rows tr.row.current").get_attribute("data-seq") == "0"
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    panel = page.locator("#panel article.decision")
    panel.wait_for()
    assert panel.get_attribute("data-seq") == "1"
    assert written[1]["reason"] in page.locator("#panel").inner_text()
    shot(page, "panel")
    page.keyboard.press("j")  # with the panel open, moving opens the next one
    page.wait_for_selector("#panel article.decision[data-seq='2']")
    page.keyboard.press("k")
    page.wait_for_selector("#panel article.decision[data-seq='1']")
    page.keyboard.press("Escape")
    page.wait_for_selector("#panel", state="hidden")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "id_q"
    page.keyboard.press("Escape")
    page.keyboard.press("?")
    assert page.locator("#keys-help").is_visible()


def test_a_decision_opens_on_its_own_page_from_a_shared_link(page, run, written, shot):
    page.goto(f"/runs/{run.pk}/decisions/5/")
    text = page.locator("main").inner_text()
    assert written[5]["action"] in text and written[5]["reason"] in text
    shot(page)


def test_the_pipeline_is_the_axis_and_time_is_one_click_away(page, run, written, shot):
    another = "#filters input[name=action][aria-label='Another action']"
    x_title = "() => document.getElementById('plot')._fullLayout.xaxis.title.text"
    page.goto(f"/runs/{run.pk}/")
    wait_drawn(page)
    shot(page, "pipeline")
    lanes = page.evaluate("() => document.getElementById('plot')._fullLayout.yaxis.categoryarray")
    assert lanes == ["Anomaly detection", "Clamping", "Gradient limiting", "Smoothing", "AFR correction"]
    assert "seq" in page.evaluate(x_title)
    page.fill(another, "afr")
    page.press(another, "Enter")
    page.wait_for_url(re.compile(r"action=afr"))
    wait_drawn(page)
    page.click("#chart a[data-axis=time]")
    page.wait_for_url(re.compile(r"action=afr&axis=time$"))
    page.wait_for_function("() => { const p = document.getElementById('plot'); return p && p._fullLayout && p._fullLayout.xaxis.title.text.startsWith('time'); }")
    shot(page, "time")
    ticks = page.locator("#plot .xtick text").evaluate_all("els => els.map(e => e.textContent)")
    assert "0.0 ms" in ticks and "10.0 ms" in ticks
    assert chart_points(page) == sum(1 for d in written if "AFR" in d["action"])
    page.fill("#id_cylinder", "f")  # another filter keeps the axis
    page.press("#id_cylinder", "Enter")
    page.wait_for_url(re.compile(r"cylinder=f.*axis=time"))
    wait_drawn(page)
    assert page.evaluate(x_title).startswith("time")
    assert query(page) == {"action": ["afr"], "cylinder": ["f"], "axis": ["time"]}


def test_zooming_binned_decision_order_narrows_to_their_time_span(page, run, written, shot, monkeypatch):
    from viewer import charts, overview

    monkeypatch.setattr(overview, "POINTS_MAX", 10)  # the sample is drawn as bins of consecutive decisions
    monkeypatch.setattr(charts, "BINS", 20)
    page.goto(f"/runs/{run.pk}/")
    wait_drawn(page)
    assert "consecutive decisions" in page.locator("#chart").inner_text()
    drag = page.locator("#plot .nsewdrag").first.bounding_box()
    y = drag["y"] + drag["height"] / 2
    page.mouse.move(drag["x"] + drag["width"] * 0.40, y)
    page.mouse.down()
    page.mouse.move(drag["x"] + drag["width"] * 0.50, y + 2, steps=5)
    page.mouse.move(drag["x"] + drag["width"] * 0.70, y + 2, steps=5)
    page.mouse.up()
    page.wait_for_url(re.compile(r"t_from=.*axis=seq"))
    wait_drawn(page)
    shot(page, "zoomed")
    q = query(page)
    low, high = float(q["t_from"][0]), float(q["t_to"][0])
    assert 0 < low <= high < written[-1]["t_ms"]
    assert matching(page) == sum(1 for d in written if low <= d["t_ms"] <= high)
    assert "seq" in page.evaluate("() => document.getElementById('plot')._fullLayout.xaxis.title.text")


def test_a_filter_inputs_placeholder_keeps_its_underscores_at_1x(page, run):
    # line-height "normal" left a monospace placeholder's descenders (the _ of afr_error_pct) clipped at 1x
    page.goto(f"/runs/{run.pk}/")
    box = page.locator('input[name="v"]').last
    assert box.get_attribute("placeholder") == "afr_error_pct>=5"
    ratio = box.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) / parseFloat(getComputedStyle(e).fontSize)")
    assert ratio >= 1.3, ratio
    # and Debian's monospace (DejaVu Sans Mono) loses a placeholder's underscores at 14-15 px at 1x
    assert box.evaluate("e => parseFloat(getComputedStyle(e).fontSize)") <= 13.5


def test_a_long_action_name_in_a_facet_wraps_whole_not_mid_word(page, run):
    page.goto(f"/runs/{run.pk}/")
    # a narrow side column: the name gets a line of its own, its count the next, the name unbroken
    page.locator("#facets").evaluate("e => { e.style.width = '14rem'; }")
    lines = page.locator("#facets li a").evaluate_all(
        "links => links.map(a => [a.textContent.trim(), a.getClientRects().length])")
    assert any(len(name) >= 20 for name, _ in lines), lines
    assert all(n == 1 for _, n in lines), lines
