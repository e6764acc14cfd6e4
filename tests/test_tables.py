"""The result tables page (issue 17.3): a DynoAI run's output grids, the cells decisions touched, the
checks of decision values against the VE grid, paste-ready text, and the files served byte for byte."""

import re
import shutil

import pytest

from viewer.ingest import Source, run_ingest

pytestmark = pytest.mark.django_db

RUNS = "dynoai/runs"
S2 = "large200k_s2_c7"
GRIDS = (
    "VE_Correction_Delta_DYNO.csv",
    "AFR_Error_Map_Front.csv",
    "AFR_Error_Map_Rear.csv",
    "Coverage_Front.csv",
    "Coverage_Rear.csv",
    "Spark_Adjust_Suggestion_Front.csv",
    "Spark_Adjust_Suggestion_Rear.csv",
    "Torque_Map_Front.csv",
    "Torque_Map_Rear.csv",
    "Torque_Map_Combined.csv",
    "HP_Map_Front.csv",
    "HP_Map_Rear.csv",
    "HP_Map_Combined.csv",
)


def check_rows(page, cell):
    """The rows of the checks table for a cell ("RPM 6500 × kPa 95")."""
    return [
        row for row in re.findall(r"<tr class=\"[a-z]+\">(.*?)</tr>", page, re.DOTALL) if f"{cell}</a>" in row
    ]


def import_folder(user, path, name=S2):
    sources = [Source(f"{name}/{p.name}", path=p, group=name) for p in sorted(path.iterdir())]
    return next(r.run for r in run_ingest(owner=user, sources=sources) if r.status == "imported")


@pytest.fixture
def run(samples_dir, user):
    return import_folder(user, samples_dir / RUNS / S2)


def test_every_grid_is_linked_and_served_back_byte_for_byte(samples_dir, run, client_in):
    page = client_in.get(f"/runs/{run.pk}/tables/").content.decode()
    for name in GRIDS + (
        "VE_Delta_PasteReady.txt",
        "Spark_Front_PasteReady.txt",
        "Spark_Rear_PasteReady.txt",
    ):
        assert f'href="/runs/{run.pk}/outputs/{name}"' in page, name
        served = client_in.get(f"/runs/{run.pk}/outputs/{name}")
        assert served.content == (samples_dir / RUNS / S2 / name).read_bytes(), name


def test_the_grids_read_as_the_csv_rpm_rows_kpa_columns_with_touched_cells_linking_to_their_story(
    run, client_in
):
    page = client_in.get(f"/runs/{run.pk}/tables/").content.decode()
    ve = page[page.index("VE correction %") :]
    assert '<th>RPM \\ kPa</th><th class="num">35</th><th class="num">50</th><th class="num">65</th>' in ve
    assert re.search(r"<tr><th>1500</th><td[^>]*>.*?5\.75", ve)
    story = f'href="/runs/{run.pk}/cells/story/?rpm=3500&amp;kpa=65&amp;cylinder=both" title="6 AFR samples, gradient-limited">-1.11</a>'
    assert story in page
    # The front AFR map links its cells to the front cylinder's story
    assert f"/runs/{run.pk}/cells/story/?rpm=3500&amp;kpa=65&amp;cylinder=f" in page
    assert 'title="3 AFR samples"' in page
    assert "Front · " in page and "Rear · " in page and "Combined · " in page  # side by side
    # On the VE grid, what later steps did; the torque, HP and spark grids no decision touches
    assert '<td class="num touched gradient clamp">' in ve[: ve.index("AFR error %")]
    torque = page[page.index("<h2>Torque</h2>") :]
    assert "/cells/story/" not in torque


def test_the_clamped_value_is_checked_equal_and_gradient_results_shown_as_moved(run, client_in):
    page = client_in.get(f"/runs/{run.pk}/tables/").content.decode()
    clamp, gradient = check_rows(page, "RPM 6500 × kPa 95")  # clamping checks first
    assert "gradient-limited result" in gradient and "moved by later smoothing" in gradient
    assert "clamped (limit 7)" in clamp and "✓ equal" in clamp
    assert "✗ mismatch" not in page
    assert "moved by later smoothing" in page


def test_a_grid_that_disagrees_with_the_clamping_decision_shows_a_mismatch(
    samples_dir, user, client_in, tmp_path
):
    folder = tmp_path / S2
    shutil.copytree(samples_dir / RUNS / S2, folder)
    ve = folder / "VE_Correction_Delta_DYNO.csv"
    ve.chmod(0o644)
    ve.write_bytes(ve.read_bytes().replace(b"'-5.39,'-7.00", b"'-5.39,'-6.50"))
    run = import_folder(user, folder)
    page = client_in.get(f"/runs/{run.pk}/tables/").content.decode()
    assert "differs" in page  # the edited file no longer matches its manifest
    clamp, _ = check_rows(page, "RPM 6500 × kPa 95")
    assert 'class="num">-7.00<' in clamp and 'class="num">-6.50<' in clamp and "✗ mismatch" in clamp


def test_the_paste_ready_text_is_there_to_copy(samples_dir, run, client_in):
    page = client_in.get(f"/runs/{run.pk}/tables/").content.decode()
    text = (samples_dir / RUNS / S2 / "VE_Delta_PasteReady.txt").read_text()
    assert f"readonly>{text.replace(chr(39), '&#x27;')}</textarea>" in page
    assert 'class="secondary copy" data-copy="paste-1-1">Copy</button>' in page


def test_without_output_files_the_page_says_what_is_missing_and_shows_what_the_decisions_establish(
    import_sample, client_in
):
    run = import_sample("dynoai/real_sample/session_replay.json", "dynoai/real_sample/manifest.json")
    page = client_in.get(f"/runs/{run.pk}/tables/").content.decode()
    assert "No output grids with this run" in page
    assert "<code>VE_Correction_Delta_DYNO.csv</code>" in page
    assert "What the decisions establish" in page
    assert f'href="/runs/{run.pk}/cells/story/?rpm=3500&amp;kpa=65"' in page


def test_the_run_nav_links_tables_only_for_kinds_that_have_them(import_sample, client_in):
    dyno = import_sample("dynoai/real_sample/session_replay.json")
    session = import_sample("session/combat_session_sample.jsonl")
    assert f'<a href="/runs/{dyno.pk}/tables/"' in client_in.get(f"/runs/{dyno.pk}/").content.decode()
    assert "/tables/" not in client_in.get(f"/runs/{session.pk}/").content.decode()
    assert client_in.get(f"/runs/{session.pk}/tables/").status_code == 404
    assert client_in.get(f"/runs/{session.pk}/cells/story/?rpm=1&kpa=2").status_code == 404


def test_the_cells_drilldown_loads_the_story_card(run, client_in):
    page = client_in.get(f"/runs/{run.pk}/cells/?cell_rpm=3500&cell_kpa=65&cyl=f").content.decode()
    url = f"/runs/{run.pk}/cells/story/?rpm=3500&amp;kpa=65&amp;cylinder=f"
    assert (
        f'<div id="cell-story" class="story-slot" hx-get="{url}" hx-trigger="load" hx-swap="outerHTML"><a href="{url}">'
        in page
    )
    card = client_in.get(url.replace("&amp;", "&"), headers={"HX-Request": "true", "HX-Target": "cell-story"})
    assert card.content.decode().lstrip().startswith('<section id="cell-story"')
    assert f'<a class="seq" href="/runs/{run.pk}/decisions/337/">#337</a>' in card.content.decode()
    full = client_in.get(url.replace("&amp;", "&")).content.decode()
    assert "<html" in full and 'id="cell-story"' in full
