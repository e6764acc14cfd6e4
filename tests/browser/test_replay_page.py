"""The replay in Chromium: play, pause, step with the arrow keys, Home, Back."""

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAMPLE = "session/session_debt_auction_ambush.jsonl"
V12_STATE = Path(__file__).parents[1] / "data" / "session_v12_replay_state.jsonl"  # ours, small


def step_shown(page) -> int:
    return int(re.match(r"Step (\d+) of", page.locator("#step-out").inner_text())[1])


def wait_step(page, step: int) -> None:
    page.wait_for_function(
        "(s) => document.getElementById('step-out').textContent.startsWith(`Step ${s} of`)", arg=step
    )


def state_text(page) -> str:
    return " ".join(page.locator("#replay-state").inner_text().split())


def test_play_pause_and_the_arrow_keys_step_through_the_replay(
    page, context, import_sample, browser_user, samples_dir, shot
):
    run = import_sample(SAMPLE, owner=browser_user)
    total = sum(1 for line in (samples_dir / SAMPLE).read_text().splitlines() if line.strip())
    page.goto(f"/runs/{run.pk}/replay/?step=10")
    page.wait_for_selector("#play:not([disabled])")
    assert page.locator("#step-out").inner_text() == f"Step 10 of {total} · decision #9"

    page.select_option("#speed", page.locator("#speed option").last.get_attribute("value"))  # the fastest
    page.click("#play")
    page.wait_for_function(
        "() => Number(document.getElementById('step-out').textContent.match(/Step (\\d+)/)[1]) >= 20"
    )
    page.click("#play")  # pause
    paused = step_shown(page)
    shot(page, "paused")
    page.wait_for_timeout(600)  # a paused player stays put (nothing to wait for but time)
    assert step_shown(page) == paused

    page.locator("h1, h2").first.click()  # focus off the buttons: keys go to the player
    page.keyboard.press("ArrowRight")
    wait_step(page, paused + 1)
    page.keyboard.press("ArrowLeft")
    wait_step(page, paused)
    page.keyboard.press("ArrowLeft")
    wait_step(page, paused - 1)
    page.wait_for_url(re.compile(rf"step={paused - 1}\b"))
    assert page.locator("#state-step").inner_text() == str(paused - 1)
    assert page.locator("#replay-list li.current").get_attribute("data-step") == str(paused - 1)
    stepped = state_text(page)
    shot(page, "stepped")

    # The state the keys reached is the state the server renders for that step.
    fresh = context.new_page()
    fresh.goto(f"/runs/{run.pk}/replay/?step={paused - 1}")
    assert state_text(fresh) == stepped
    fresh.close()

    page.keyboard.press("Home")
    wait_step(page, 0)
    page.wait_for_url(re.compile(r"step=0\b"))
    page.go_back()
    wait_step(page, paused - 1)

    page.keyboard.press(" ")  # space plays from here
    page.wait_for_function(
        "(s) => Number(document.getElementById('step-out').textContent.match(/Step (\\d+)/)[1]) > s",
        arg=paused - 1,
    )
    page.keyboard.press(" ")


def test_the_replay_of_a_dynoai_run_draws_its_grid(page, import_sample, browser_user, shot):
    run = import_sample("dynoai/real_sample/session_replay.json", owner=browser_user)
    page.goto(f"/runs/{run.pk}/replay/?step=60")
    page.wait_for_selector("#play:not([disabled])")
    page.wait_for_function(
        "() => { const g = document.getElementById('replay-heatmap'); return g && g._fullLayout; }"
    )
    page.keyboard.press("End")
    wait_step(page, 119)
    shot(page)


def test_the_dynoai_grid_has_rpm_rows_downwards_and_kpa_columns_and_switches_layers(
    page, import_sample, browser_user, shot
):
    run = import_sample("dynoai/real_sample/session_replay.json", owner=browser_user)
    page.goto(f"/runs/{run.pk}/replay/?step=119")
    page.wait_for_function("() => { const g = document.getElementById('replay-heatmap'); return g && g._fullLayout; }")
    drawn = page.evaluate(
        """() => { const g = document.getElementById('replay-heatmap'); const heat = g.data[1];
        return { x: g.layout.xaxis.title.text, y: g.layout.yaxis.title.text, down: g._fullLayout.yaxis.range[0] > g._fullLayout.yaxis.range[1],
                 rows: heat.y, filled: heat.z.flat().filter((v) => v !== null).length,
                 hover: heat.customdata.flat().filter(Boolean).length }; }"""
    )
    assert (drawn["x"], drawn["y"], drawn["down"]) == ("kPa", "RPM", True)  # the first row at the top
    assert drawn["rows"][0] == "1500" and drawn["rows"][-1] == "6500"
    assert drawn["filled"] == 18 and drawn["hover"] >= 18
    page.select_option("#layer", "result")
    page.wait_for_function(
        "() => document.getElementById('replay-heatmap').data[1].colorbar.title.text === 'Gradient-limited result'"
    )
    shot(page)


def test_a_v12_replay_shows_the_enemys_new_health_and_who_left_the_scene(page, import_sample, browser_user, shot):
    run = import_sample(str(V12_STATE), owner=browser_user)
    page.goto(f"/runs/{run.pk}/replay/?step=10")  # just after the thug's own character_state
    page.wait_for_selector("#play:not([disabled])")
    enemies = page.locator("#replay-state table.enemies").first.inner_text()
    assert "Dock Thug" in enemies and "7/20" in enemies and "Off-Balance" in enemies
    assert "Dock Thug" not in page.locator("#replay-state table.party").inner_text()
    shot(page, "enemy-updated")

    page.locator("h1, h2").first.click()  # focus off the buttons: keys go to the player
    page.keyboard.press("End")
    wait_step(page, 20)
    text = state_text(page)
    assert "unconscious" in text and "6 stuns" in text and "drip 2" in text
    assert "Departed: Porter Ennis (fled, round 2)" in text and "was enemy · surrender" in text
    assert "removed: story_advancement" in text and "Gone: Dock Boss (killed by Mara Quill, 11 damage)" in text
    shot(page, "end")


def test_a_study_replay_shows_the_document_as_of_the_step_and_follows_the_player(
    page, import_sample, browser_user, tmp_path, shot
):
    import study_writing as W

    run = import_sample(str(W.write_log(tmp_path)), owner=browser_user)
    page.goto(f"/runs/{run.pk}/replay/?step=7")
    page.wait_for_selector("#play:not([disabled])")
    essay = page.locator(f"#replay-state details[data-doc='{W.ESSAY}'] .doc-text")
    assert essay.inner_text() == "HJello there!"  # "H" struck through, then "J" inserted
    assert essay.locator("del").inner_text() == "H" and essay.locator("ins").inner_text() == "J"
    assert "zz ×1" in page.locator("#replay-state .unknown-commands").inner_text()
    page.wait_for_function("() => document.querySelectorAll('#replay-state .plotly-figure .main-svg').length >= 2")
    shot(page, "middle")

    page.locator("h1, h2").first.click()  # focus off the buttons: keys go to the player
    # One key at a time: a key seeks from the step shown, and a step whose frame is still being
    # fetched is not shown yet (four quick presses could all ask for step 8).
    for step in range(8, 12):
        page.keyboard.press("ArrowRight")
        wait_step(page, step)
    assert essay.inner_text() == "Jello there!"  # " there!" struck through
    assert essay.locator("del").inner_text() == " there!"
    assert page.locator("#replay-state .plotly-figure .main-svg").count() >= 2  # kept through the frames
    page.keyboard.press("End")
    wait_step(page, len(W.STEPS))
    assert "Hello again" in essay.inner_text()
    shot(page, "end")
