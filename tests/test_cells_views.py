"""The cell heatmap page /runs/<id>/cells/ and its htmx fragments."""

import json
import re
from datetime import datetime
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.http import QueryDict
from django.urls import reverse

from viewer.filters import DecisionFilterForm
from viewer.selectors import filtered_decisions

pytestmark = pytest.mark.django_db

FOLDER = "dynoai/runs/large200k_s2_c7"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def dyno_run(import_sample):
    return import_sample(f"{FOLDER}/session_replay.json", f"{FOLDER}/manifest.json")


def _json_script(html, element_id):
    m = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert m, f"no #{element_id}"
    return json.loads(m.group(1))


def _hrefs(html, text_contains):
    return [unescape(h) for h, t in re.findall(r'<a href="([^"]+)">([^<]*)</a>', html) if text_contains in t]


def _seqs_of_link(run, href):
    """What the run view shows for a link: its querystring through the one filter grammar."""
    url = urlsplit(href)
    assert url.path == f"/runs/{run.pk}/"
    form = DecisionFilterForm(QueryDict(url.query))
    assert form.is_valid(), form.errors
    return [d.seq for d in filtered_decisions(run=run, **form.filters())]


def test_the_page_draws_the_heatmap_from_embedded_json(client_in, dyno_run):
    response = client_in.get(reverse("run-cells", args=[dyno_run.pk]), {"metric": "afr_mean", "cyl": "f"})
    assert response.status_code == 200
    html = response.content.decode()
    figure = _json_script(html, "cells-figure")["figure"]
    trace = figure["data"][0]
    assert trace["type"] == "heatmap"
    assert trace["y"] == [str(r) for r in range(1500, 7000, 500)] and trace["x"] == [
        "35",
        "50",
        "65",
        "80",
        "95",
    ]
    assert all(v is not None for row in trace["z"] for v in row)
    assert "vendor/plotly-2.35.3.min.js" in html and "js/cells.js" in html
    assert "<script>" not in html.replace('<script id="cells-figure" type="application/json">', "")
    assert 'value="f" checked' in html


def test_the_heatmap_names_its_axes_rpm_and_kpa_as_the_replay_and_diff_heatmaps_do(client_in, dyno_run):
    """Issue 12: one orientation (RPM rows ascending downwards, kPa columns) and one axis naming."""
    html = client_in.get(reverse("run-cells", args=[dyno_run.pk])).content.decode()
    layout = _json_script(html, "cells-figure")["figure"]["layout"]
    assert layout["yaxis"]["title"]["text"] == "RPM" and layout["xaxis"]["title"]["text"] == "kPa"
    assert layout["yaxis"]["autorange"] == "reversed"
    assert "<th>RPM \\ kPa</th>" in html


def test_the_page_says_where_index_based_actions_are_placed(client_in, dyno_run):
    html = client_in.get(
        reverse("run-cells", args=[dyno_run.pk]), {"metric": "gradient_count"}
    ).content.decode()
    assert "standard bins: RPM 1500–6500 in steps of 500" in html


def test_a_foreign_run_is_a_404(client, other_user, dyno_run):
    client.force_login(other_user)
    assert client.get(reverse("run-cells", args=[dyno_run.pk])).status_code == 404


def test_changing_the_metric_swaps_only_the_panel(client_in, dyno_run):
    response = client_in.get(
        reverse("run-cells", args=[dyno_run.pk]),
        {"metric": "anomaly_score"},
        headers={**HTMX, "HX-Target": "cells-panel"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="cells-panel"')
    assert "<html" not in html and "cells-options" not in html
    assert len(_json_script(html, "cells-figure")["figure"]["data"][0]["z"]) == 11
    assert response.headers["Vary"].count("HX-Request") == 1


def test_clicking_a_cell_loads_its_drilldown_which_links_to_exactly_its_decisions(
    samples_dir, client_in, dyno_run
):
    decisions = json.loads((samples_dir / FOLDER / "session_replay.json").read_text())["decisions"]
    page = client_in.get(
        reverse("run-cells", args=[dyno_run.pk]), {"metric": "afr_mean", "cyl": "r"}
    ).content.decode()
    # a heatmap click follows its cell's table link (static/js/cells.js): RPM 2000 is row 1, kPa 65 col 2
    link = re.search(r'<a id="cell-1-2" href="([^"]+)" hx-get="([^"]+)" hx-target="#cell-drilldown"', page)
    assert link and link.group(1) == link.group(2)
    href = unescape(link.group(1))
    assert parse_qs(urlsplit(href).query) == {
        "metric": ["afr_mean"],
        "cyl": ["r"],
        "cell_rpm": ["2000"],
        "cell_kpa": ["65"],
    }

    response = client_in.get(href, headers={**HTMX, "HX-Target": "cell-drilldown"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="cell-drilldown"')
    expected = [
        seq
        for seq, d in enumerate(decisions)
        if d.get("cell", {}).get("rpm") == 2000
        and d["cell"].get("kpa") == 65
        and d["cell"].get("cylinder") == "r"
    ]
    listed = [int(s) for s in re.findall(rf'href="/runs/{dyno_run.pk}/decisions/(\d+)/"', html)]
    assert listed == expected
    (run_link,) = _hrefs(html, "in the run view")
    assert _seqs_of_link(dyno_run, run_link) == expected
    assert _json_script(html, "drill-figure")["figure"]["data"]


def test_a_cell_link_keeps_the_current_filters(samples_dir, client_in, dyno_run):
    decisions = json.loads((samples_dir / FOLDER / "session_replay.json").read_text())["decisions"]
    params = {"action": "afr", "t_to": "600", "cell_rpm": "3000", "cell_kpa": "50"}
    html = client_in.get(reverse("run-cells", args=[dyno_run.pk]), params).content.decode()
    assert '<input type="hidden" name="action" value="afr">' in html
    assert "Filters apply:" in html
    (run_link,) = _hrefs(html, "in the run view")
    assert parse_qs(urlsplit(run_link).query) == {
        "action": ["afr"],
        "t_to": ["600"],
        "rpm": ["3000"],
        "kpa": ["50"],
    }
    first = decisions[0]["timestamp"]

    def t_ms(d):
        return (datetime.fromisoformat(d["timestamp"]) - datetime.fromisoformat(first)).total_seconds() * 1000

    expected = [
        seq
        for seq, d in enumerate(decisions)
        if "AFR" in d["action"]
        and t_ms(d) <= 600
        and d.get("cell", {}).get("rpm") == 3000
        and d["cell"].get("kpa") == 50
    ]
    assert expected and _seqs_of_link(dyno_run, run_link) == expected


def test_the_gradient_drilldown_links_by_index(client_in, dyno_run):
    html = client_in.get(
        reverse("run-cells", args=[dyno_run.pk]),
        {"metric": "gradient_count", "cell_rpm": "1500", "cell_kpa": "35"},
    ).content.decode()
    links = _hrefs(html, "in the run view")
    assert [parse_qs(urlsplit(h).query) for h in links] == [
        {"rpm": ["1500"], "kpa": ["35"]},
        {"rpm_index": ["0"], "kpa_index": ["0"]},
    ]
    assert all(_seqs_of_link(dyno_run, h) for h in links)


def test_every_table_link_opens_a_drilldown(client_in, import_sample):
    run = import_sample("session/combat_session_sample.jsonl")
    html = client_in.get(reverse("run-cells", args=[run.pk]), {"metric": "events"}).content.decode()
    hrefs = [unescape(h) for h in re.findall(r'<a id="cell-\d+-\d+" href="([^"]+)"', html)]
    z = _json_script(html, "cells-figure")["figure"]["data"][0]["z"]
    assert hrefs and len(hrefs) == sum(v is not None for row in z for v in row)
    for href in hrefs:
        response = client_in.get(href, headers={**HTMX, "HX-Target": "cell-drilldown"})
        assert response.status_code == 200
        (run_link,) = _hrefs(response.content.decode(), "in the run view")
        query = parse_qs(urlsplit(run_link).query)
        assert set(query) == {"round", "agent"}


@pytest.mark.parametrize(
    "params,name",
    [
        ({"rpm": "abc"}, "rpm"),
        ({"metric": "nope"}, "metric"),
        ({"cyl": "x"}, "cyl"),
        ({"cell_rpm": "2000"}, "cell_kpa"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(client_in, dyno_run, params, name):
    _is_a_400_naming(client_in, reverse("run-cells", args=[dyno_run.pk]), params, name, "cells-panel")


def _is_a_400_naming(client, url, params, name, target):
    """The fragment answers a 400 naming the parameter; the page, an error on its form."""
    fragment = client.get(url, params, headers={**HTMX, "HX-Target": target})
    assert fragment.status_code == 400
    assert f"{name}:" in fragment.content.decode()
    page = client.get(url, params)
    assert page.status_code == 400
    assert f"<li>{name}: " in page.content.decode()


STUDY = "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"


@pytest.mark.parametrize(
    "name,value",
    [("cell_t", "1e40"), ("cell_t", "-1e40"), ("cell_w", "1e40"), ("cell_w", "1" + "0" * 20)],
)
def test_an_out_of_range_study_cell_is_a_400_naming_it(client_in, import_sample, name, value):
    run = import_sample(STUDY)
    params = {"cell_action": "keystroke", "cell_t": "0", "cell_w": "60000", name: value}
    _is_a_400_naming(client_in, reverse("run-cells", args=[run.pk]), params, name, "cell-drilldown")
    detail = client_in.get(f"/api/runs/{run.pk}/cells", params).json()["detail"]
    assert detail.startswith(f"{name}: ") and "a cell needs" not in detail  # the range, said once


def test_a_full_page_with_a_cell_shows_its_drilldown_and_frames_it(client_in, dyno_run):
    html = client_in.get(
        reverse("run-cells", args=[dyno_run.pk]), {"metric": "count", "cell_rpm": "6500", "cell_kpa": "95"}
    ).content.decode()
    assert "RPM 6500 × kPa 95" in html and "Clamping decision #" in html
    shapes = _json_script(html, "cells-figure")["figure"]["layout"]["shapes"]
    assert shapes[0]["x0"] == 3.5 and shapes[0]["y0"] == 9.5


def test_a_drilldown_says_its_times_in_human_units_not_raw_milliseconds(client_in, import_sample):
    run = import_sample("session/session_debt_auction_ambush.jsonl")
    html = client_in.get(reverse("run-cells", args=[run.pk]), {"cell_round": "1", "cell_agent": "player_01"}).content.decode()
    assert "First" in html or "first" in html
    assert not re.search(r"\d ms\)", html) and "t (ms)" not in html
    assert re.search(r"UTC \(\+(\d+:\d\d\.\d|[\d.]+ s)\)", html)


@pytest.mark.parametrize("path", ["hostile/xss_session.jsonl", "hostile/xss_session_replay.json"])
def test_hostile_strings_are_inert_on_the_page_and_in_the_drilldown(client_in, import_sample, path):
    run = import_sample(path)
    url = reverse("run-cells", args=[run.pk])
    html = client_in.get(url).content.decode()
    figure = _json_script(html, "cells-figure")["figure"]
    hrefs = [unescape(h) for h in re.findall(r'<a id="cell-\d+-\d+" href="([^"]+)"', html)]
    assert hrefs
    pages = [html] + [
        client_in.get(h, headers={**HTMX, "HX-Target": "cell-drilldown"}).content.decode() for h in hrefs
    ]
    for text in pages:
        for attack in ("<script>alert", "<img src=x", "<svg onload", "<i>key", "<b>BOLD"):
            assert attack not in text
    hover = json.dumps(figure["data"][0]["customdata"]) + json.dumps(figure["data"][0]["x"])
    assert "&lt;" in hover and "<script" not in hover and "<img" not in hover


def test_the_api_serves_the_same_grid(client_in, dyno_run):
    from viewer import cells, kinds

    response = client_in.get(
        f"/api/runs/{dyno_run.pk}/cells", {"metric": "afr_mean", "cyl": "f", "rpm_min": "4000"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    spec = kinds.profile(dyno_run).cells
    grid = cells.cell_grid(spec=spec, run=dyno_run, filters={"rpm_min": 4000}, metric="afr_mean", cylinder="f")
    assert body["z"] == grid["z"] and body["y_values"] == list(range(4000, 7000, 500))
    assert [(c["y"], c["x"], c["count"], c["links"][0]["params"]) for c in body["cells"]] == [
        (c["y"], c["x"], c["count"], c["links"][0]["params"]) for c in grid["cells"]
    ]
    assert (
        client_in.get(f"/api/runs/{dyno_run.pk}/cells", {"metric": "nope"})
        .json()["detail"]
        .startswith("metric:")
    )
    assert client_in.get(f"/api/runs/{dyno_run.pk}/cells", {"rpm": "x"}).status_code == 400


def test_the_api_cells_of_a_foreign_run_is_a_404(client, other_user, dyno_run):
    client.force_login(other_user)
    assert client.get(f"/api/runs/{dyno_run.pk}/cells").status_code == 404


def test_the_run_page_opened_from_a_cell_lists_exactly_that_cells_decisions(samples_dir, client_in, dyno_run):
    decisions = json.loads((samples_dir / FOLDER / "session_replay.json").read_text())["decisions"]
    html = client_in.get(
        reverse("run-cells", args=[dyno_run.pk]), {"metric": "count", "cell_rpm": "4000", "cell_kpa": "65"}
    ).content.decode()
    links = _hrefs(html, "in the run view")
    expected_parts = [
        [
            s
            for s, d in enumerate(decisions)
            if (d.get("cell", {}).get("rpm"), d.get("cell", {}).get("kpa")) == (4000, 65)
        ],
        [
            s
            for s, d in enumerate(decisions)
            if (d.get("cell", {}).get("rpm_index"), d.get("cell", {}).get("kpa_index")) == (5, 2)
        ],
    ]
    assert len(links) == 2 and all(expected_parts)
    for href, expected in zip(links, expected_parts):
        page = client_in.get(href, headers={**HTMX, "HX-Target": "run-view"})
        assert page.status_code == 200
        assert [int(s) for s in re.findall(r'data-seq="(\d+)"', page.content.decode())] == expected


def test_a_kind_without_a_cells_spec_shows_its_events_over_time(client_in, import_sample):
    """A new kind needs no cells code: its page is the event x time grid (viewer/cells_time.py)."""
    from dataclasses import replace

    from viewer import kinds
    from viewer.models import Run

    run = import_sample(STUDY)
    kinds.register(replace(kinds.profile("study"), name="made_up", label="Made-up log", cells=None))
    try:
        Run.objects.filter(pk=run.pk).update(kind="made_up")
        url = reverse("run-cells", args=[run.pk])
        html = client_in.get(url).content.decode()
        assert _json_script(html, "cells-figure")["figure"]["layout"]["xaxis"]["title"]["text"] == "Time (UTC)"
        hrefs = [unescape(h) for h in re.findall(r'<a id="cell-\d+-\d+" href="([^"]+)"', html)]
        drill = client_in.get(hrefs[0], headers={**HTMX, "HX-Target": "cell-drilldown"})
        assert drill.status_code == 200 and "in the run view" in drill.content.decode()
        assert client_in.get(f"/api/runs/{run.pk}/cells").json()["y_title"] == "Event"
    finally:
        kinds.unregister("made_up")


def test_a_filter_leaving_no_cell_says_what_to_do_next(client_in, dyno_run):
    html = client_in.get(f"/runs/{dyno_run.pk}/cells/?action=NO_SUCH_ACTION").content.decode()
    empty = html[html.index('id="no-cells"'):]
    assert "No cell has data" in empty and "with these filters" in empty
    assert "Clear the filters</a>, pick another metric above" in " ".join(empty.split())
    assert f'<a href="/runs/{dyno_run.pk}/">decisions</a>' in empty
    assert f'<a href="/runs/{dyno_run.pk}/replay/">replay</a>' in empty
