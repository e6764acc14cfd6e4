"""The cell heatmap in Chromium: a click on a heatmap cell opens that cell's drilldown."""

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAMPLE = "dynoai/real_sample/session_replay.json"

# Where a heatmap cell is on the screen, from Plotly's own axes; and its value.
CELL = """([row, col]) => {
  const gd = document.getElementById("cells-heatmap");
  const trace = gd.data.find((t) => t.type === "heatmap");
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  const at = (axis, values, i) =>
    axis._offset + (axis.type === "category" ? axis.l2p(i) : axis.d2p(values[i]));
  return {x: box.left + at(xa, trace.x, col), y: box.top + at(ya, trace.y, row),
          z: trace.z[row][col], xv: trace.x[col], yv: trace.y[row]};
}"""


def test_clicking_a_heatmap_cell_opens_its_drilldown_and_pushes_its_url(
    page, import_sample, browser_user, samples_dir, shot
):
    run = import_sample(SAMPLE, owner=browser_user)
    written = json.loads((samples_dir / SAMPLE).read_text())["decisions"]
    page.goto(f"/runs/{run.pk}/cells/?metric=count")
    page.wait_for_function(
        "() => { const g = document.getElementById('cells-heatmap'); return g && g._fullLayout; }"
    )
    shot(page, "heatmap")
    # The busiest cell of the grid.
    z = page.evaluate(
        "() => document.getElementById('cells-heatmap').data.find((t) => t.type === 'heatmap').z"
    )
    row, col = max(
        ((r, c) for r, line in enumerate(z) for c, v in enumerate(line) if v is not None),
        key=lambda rc: z[rc[0]][rc[1]],
    )
    cell = page.evaluate(CELL, [row, col])
    page.mouse.move(cell["x"], cell["y"])
    page.mouse.click(cell["x"], cell["y"])
    page.wait_for_url(re.compile(r"cell_rpm="))
    drill = page.locator("#cell-drilldown h2")
    drill.wait_for()
    shot(page, "drilldown")

    q = parse_qs(urlsplit(page.url).query)
    rpm, kpa = int(q["cell_rpm"][0]), int(q["cell_kpa"][0])
    assert f"RPM {rpm} × kPa {kpa}" in drill.inner_text()
    assert (str(rpm), str(kpa)) in {(str(cell["xv"]), str(cell["yv"])), (str(cell["yv"]), str(cell["xv"]))}
    total = int(page.locator("#cell-drilldown .drill-summary dd").first.inner_text())
    assert total == cell["z"]  # the heatmap's count and the drilldown agree
    direct = sum(
        1
        for d in written
        if (d.get("cell") or {}).get("rpm") == rpm and (d.get("cell") or {}).get("kpa") == kpa
    )
    assert total >= direct > 0
    rows = page.locator("#cell-drilldown table.drill-decisions tbody tr").count()
    assert rows == min(total, rows) and rows > 0

    # The drilldown's link opens the run page filtered to the cell.
    page.locator("#cell-drilldown .drill-links a").first.click()
    page.wait_for_url(re.compile(rf"/runs/{run.pk}/\?"))
    assert f"rpm={rpm}" in page.url or "rpm_index=" in page.url
    page.go_back()
    page.wait_for_url(re.compile(r"cell_rpm="))
    # The URL can move before the page it names is back: wait for that cell's drilldown itself.
    expect(page.locator("#cell-drilldown h2")).to_contain_text(f"RPM {rpm} × kPa {kpa}")
