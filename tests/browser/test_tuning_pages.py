"""A tuner's pages in Chromium (issue 17): the cell story card loading in the cells drilldown, the result
tables with their Copy button, and a compare of a sweep of runs drawn as small multiples (screenshots)."""

import subprocess
import sys

import pytest

from viewer.ingest import Source, run_ingest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RUNS = "dynoai/runs"
FOLDERS = ("large200k_s2_c7", "large200k_s4_c10")


def import_folder(owner, path):
    sources = [Source(f"{path.name}/{p.name}", path=p, group=path.name) for p in sorted(path.iterdir())]
    return next(r.run for r in run_ingest(owner=owner, sources=sources) if r.status == "imported")


def test_the_cell_story_card_loads_in_the_drilldown_and_links_each_step(
    page, browser_user, samples_dir, shot
):
    run = import_folder(browser_user, samples_dir / RUNS / FOLDERS[0])
    page.goto(f"/runs/{run.pk}/cells/?metric=count&cell_rpm=3500&cell_kpa=65")
    card = page.locator("#cell-drilldown section#cell-story")
    card.wait_for()
    assert "The story of RPM 3500 × kPa 65" in card.locator("h3").inner_text()
    assert "-1.11 %" in card.locator(".story-final").inner_text()
    lines = card.locator("li.story-line")
    assert lines.count() == 7  # 3 front and 3 rear AFR samples, one gradient limiting
    assert "gradient limited" in lines.nth(6).inner_text()
    card.scroll_into_view_if_needed()
    shot(page, "story")
    lines.nth(6).locator("a.seq").click()
    page.wait_for_url(f"**/runs/{run.pk}/decisions/337/")


def test_the_result_tables_show_the_grids_and_copy_the_paste_ready_text(
    page, browser_user, samples_dir, shot
):
    run = import_folder(browser_user, samples_dir / RUNS / FOLDERS[0])
    page.goto(f"/runs/{run.pk}/")
    page.locator(".run-nav a", has_text="Tables").click()
    page.wait_for_url(f"**/runs/{run.pk}/tables/")
    assert page.locator("section.result-table").count() == 6
    assert page.locator("table.checks tr.equal").count() == 1  # the clamped cell equals the grid
    shot(page, "tables")
    button = page.locator("button.copy").first
    button.click()
    page.wait_for_function("() => document.querySelector('button.copy').textContent === 'Copied'")
    page.locator("td.touched a", has_text="-1.11").first.click()
    page.wait_for_url("**/cells/story/?rpm=3500&kpa=65&cylinder=both")
    page.locator("#cell-story").wait_for()


def test_a_sweep_of_six_runs_is_compared_on_one_colour_scale(page, browser_user, samples_dir, shot, tmp_path):
    runs = [import_folder(browser_user, samples_dir / RUNS / folder) for folder in FOLDERS]
    tool = samples_dir.parent / "tools" / "gen_logs.py"
    for seed in (1, 2, 3, 4):
        out = tmp_path / f"seed{seed}_session_replay.json"
        subprocess.run([sys.executable, str(tool), "dyno", "400", str(out), "--seed", str(seed)], check=True)
        (result,) = run_ingest(owner=browser_user, sources=[Source(out.name, path=out)])
        runs.append(result.run)
    page.goto("/compare/?" + "&".join(f"run={r.pk}" for r in runs))
    page.wait_for_function(
        "() => [...document.querySelectorAll('.multiple-plot')].filter((g) => g._fullLayout).length === 6"
    )
    assert page.locator("tr.differ").count() == 2  # smooth_passes and clamp; the generated runs record none
    scales = page.evaluate(
        "() => [...document.querySelectorAll('.multiple-plot')].map((g) => [g.data[0].zmin, g.data[0].zmax])"
    )
    assert len({tuple(s) for s in scales}) == 1
    shot(page, "compare")
    page.locator("a", has_text=f"{runs[0].pk} vs {runs[1].pk}").click()
    page.wait_for_url(f"**/diff/?a={runs[0].pk}&b={runs[1].pk}")
