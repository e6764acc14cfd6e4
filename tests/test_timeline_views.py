"""The run page (/runs/<id>/), its htmx fragments, and the decision detail (views/timeline.py)."""
from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser

import pytest
from django.db.models import Q

from viewer.filters import DecisionFilterForm
from viewer.models import Decision
from viewer.selectors import decision_list
from viewer.views import timeline

pytestmark = pytest.mark.django_db

REAL = "dynoai/real_sample/session_replay.json"
MANIFEST = "dynoai/real_sample/manifest.json"
LARGE = "dynoai/runs/large200k_s2_c7/session_replay.json"
COMBAT = "session/combat_session_sample.jsonl"
STUDY = "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"
XSS_REPLAY = "hostile/xss_session_replay.json"
XSS_SESSION = "hostile/xss_session.jsonl"
HX = {"HX-Request": "true"}
SEQ = re.compile(r'<tr class="row" data-seq="(\d+)"')


def part(client, run, qs="", target="run-view"):
    return client.get(f"/runs/{run.pk}/?{qs}", headers={**HX, "HX-Target": target})


def fragment_seqs(client, run, qs: str) -> list[int]:
    """Every matching seq, read from the table's rows fragment, following its load-more cursor."""
    seqs, after = [], None
    while True:
        page_qs = qs + (f"&after={after}" if after is not None else "")
        response = part(client, run, page_qs, "load-more")
        assert response.status_code == 200
        html = response.content.decode()
        found = [int(s) for s in SEQ.findall(html)]
        seqs += found
        if 'id="load-more"' not in html:
            return seqs
        assert found, "a load-more link after an empty page"
        after = found[-1]


def csv_seqs(client, run, qs: str) -> list[int]:
    response = client.get(f"/runs/{run.pk}/export.csv?{qs}")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8"))))
    return [int(r[0]) for r in rows[1:]]


def api_seqs(client, run, qs: str) -> list[int]:
    seqs, after = [], None
    while True:
        cursor = f"&after={after}" if after is not None else ""
        response = client.get(f"/api/runs/{run.pk}/decisions?{qs}&limit=7{cursor}")
        assert response.status_code == 200, response.content
        body = response.json()
        seqs += [item["seq"] for item in body["items"]]
        if body["next"] is None:
            return seqs
        after = body["next"]


def selector_seqs(run, qs: str) -> list[int]:
    from django.http import QueryDict

    form = DecisionFilterForm(QueryDict(qs))
    assert form.is_valid()
    return list(decision_list(run=run, **form.filters()).values_list("seq", flat=True))


# -- the page ----------------------------------------------------------------------------------------


def test_the_page_shows_summary_chart_facets_and_table_of_a_dynoai_run(client_in, import_sample):
    run = import_sample(REAL, MANIFEST)
    response = client_in.get(f"/runs/{run.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    for text in ("2025-12-15T17-28-01Z-e46826", "2025-12-15T17:28:01.830Z", "22.0ms", 'id="chart-data"',
                 'id="facets"', 'id="stats"', 'id="decision-table"', "RPM=2000 KPA=65 Cyl=f"):
        assert text in html
    assert len(SEQ.findall(html)) == timeline.PAGE_SIZE
    assert 'id="load-more"' in html


def test_the_manifest_crlf_warning_is_visible_on_the_real_sample(client_in, import_sample):
    run = import_sample(REAL, MANIFEST)
    assert run.warnings
    html = client_in.get(f"/runs/{run.pk}/").content.decode()
    assert 'class="warning run-warning" role="alert"' in html
    assert "CRLF" in html and "1,903 line" in html
    assert "mismatch" in html


def test_dynoai_settings_come_from_the_manifest(client_in, import_sample):
    run = import_sample(REAL, MANIFEST)
    html = client_in.get(f"/runs/{run.pk}/").content.decode()
    assert "smooth_passes" in html and "weighting" in html and "torque" in html


def test_a_session_run_shows_round_and_agent_columns_seed_and_version(client_in, import_sample):
    run = import_sample(COMBAT)
    html = client_in.get(f"/runs/{run.pk}/?round=1").content.decode()
    assert '<th scope="col" class="num">Round</th><th scope="col">Agent</th>' in html
    assert "Seed" in html and str(run.random_seed) in html and "1.0.0" in html
    assert "Session config" in html
    assert "<h3>Round</h3>" in html and "<h3>Agent</h3>" in html  # facets


def test_a_study_log_shows_events_and_the_pseudonymized_user(client_in, import_sample):
    run = import_sample(STUDY)
    html = client_in.get(f"/runs/{run.pk}/?action=keystroke").content.decode()
    assert '<th scope="col">User</th>' in html
    assert run.user_label in html and "org.mitros.writing_analytics" in html
    assert "gc-104523" not in html and "683268451013967869" not in html
    assert "<h3>User</h3>" in html


def test_nav_links_to_the_other_faces_keep_the_filters(client_in, import_sample):
    run = import_sample(REAL)
    html = client_in.get(f"/runs/{run.pk}/?action=gradient&rpm_index=0&after=3").content.decode()
    qs = "action=gradient&amp;rpm_index=0"
    for href in (f"/runs/{run.pk}/cells/?{qs}", f"/runs/{run.pk}/replay/?{qs}", f"/diff/?a={run.pk}&amp;{qs}",
                 *(f"/runs/{run.pk}/export.{fmt}?{qs}" for fmt in ("csv", "html", "txt", "json", "jsonl"))):
        assert f'href="{href}"' in html


def test_another_users_run_is_a_404_everywhere(client, import_sample, other_user):
    run = import_sample(REAL)
    client.force_login(other_user)
    assert client.get(f"/runs/{run.pk}/").status_code == 404
    assert part(client, run, "", "load-more").status_code == 404
    assert client.get(f"/runs/{run.pk}/decisions/0/").status_code == 404


def test_the_page_needs_a_login(client, import_sample):
    run = import_sample(REAL)
    response = client.get(f"/runs/{run.pk}/")
    assert response.status_code == 302 and "/login/" in response["Location"]


# -- fragments ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, root",
    [
        ("run-view", '<div id="run-view"'),
        ("facets", '<section id="facets"'),
        ("stats", '<section id="stats"'),
        ("chart", '<section id="chart"'),
        ("matchline", '<div id="matchline"'),
    ],
)
def test_an_htmx_request_gets_the_part_its_target_names(client_in, import_sample, target, root):
    run = import_sample(REAL)
    response = part(client_in, run, "action=gradient", target)
    html = response.content.decode().strip()
    assert response.status_code == 200
    assert html.startswith(root)
    assert "<html" not in html
    assert "HX-Request" in response["Vary"] and "HX-Target" in response["Vary"]


def test_the_rows_fragment_is_only_rows(client_in, import_sample):
    run = import_sample(REAL)
    html = part(client_in, run, "action=afr&after=10", "load-more").content.decode().strip()
    assert html.startswith('<tr class="row" data-seq="11"')
    assert "<table" not in html and "<html" not in html


def test_a_history_restore_gets_the_whole_page(client_in, import_sample):
    run = import_sample(REAL)
    response = client_in.get(f"/runs/{run.pk}/?action=afr", headers={**HX, "HX-Target": "run-view",
                                                                    "HX-History-Restore-Request": "true"})
    assert "<html" in response.content.decode()


def test_load_more_is_a_real_link_with_the_last_seq(client_in, import_sample):
    run = import_sample(REAL)
    html = client_in.get(f"/runs/{run.pk}/?action=afr").content.decode()
    seqs = [int(s) for s in SEQ.findall(html)]
    assert len(seqs) == 98 and 'id="load-more"' not in html  # all of them fit the first page
    html = client_in.get(f"/runs/{run.pk}/?action=afr&limit=10").content.decode()
    last = [int(s) for s in SEQ.findall(html)][-1]
    assert f'href="?action=afr&amp;limit=10&amp;after={last}"' in html
    assert f'hx-get="?action=afr&amp;limit=10&amp;after={last}"' in html


def test_the_page_after_a_cursor_starts_after_it(client_in, import_sample):
    run = import_sample(REAL)
    html = client_in.get(f"/runs/{run.pk}/?after=110").content.decode()
    assert [int(s) for s in SEQ.findall(html)] == list(range(111, 119))
    assert "After #110" in html


def test_a_pages_first_row_has_its_gap_to_the_previous_match(client_in, import_sample, samples_dir):
    run = import_sample(REAL)
    html = part(client_in, run, "action=clamp&after=-1", "load-more").content.decode()
    assert html.count('<tr class="row"') == 1
    html = part(client_in, run, "action=start&after=100", "load-more").content.decode()
    # CLAMPING_START (seq 117, +15ms) follows SMOOTHING_START (seq 99... +14ms): a 1ms gap
    doc = json.loads((samples_dir / REAL).read_text())["decisions"]
    starts = [i for i, d in enumerate(doc) if "START" in d["action"]]
    assert starts[0] <= 100 < starts[1]
    assert '<td class="num nowrap muted" data-label="Gap">+1.0 ms</td>' in html


@pytest.mark.parametrize(
    "relpath, qs",
    [
        (REAL, ""),
        (REAL, "action=gradient"),
        (REAL, "action=afr&cylinder=r&v=afr_error_pct>=2"),
        (REAL, "t_from=5&t_to=14&q=cylinder"),
        (LARGE, "action=afr&action=anomaly&rpm_min=2500"),
        (COMBAT, "round=1&agent=player_01"),
        (COMBAT, "v=roll.success=true"),
        (STUDY, "action=keystroke&t_to=60000"),
    ],
)
def test_parity_one_querystring_gives_the_same_seqs_everywhere(client_in, import_sample, relpath, qs):
    run = import_sample(relpath)
    expected = selector_seqs(run, qs)
    assert fragment_seqs(client_in, run, qs + "&limit=25") == expected
    assert csv_seqs(client_in, run, qs) == expected
    assert api_seqs(client_in, run, qs) == expected


# -- bad parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["load-more", "facets", "stats", "chart"])
@pytest.mark.parametrize("qs, name", [("rpm=abc", "rpm"), ("t_from=soon", "t_from"), ("v=oops", "v")])
def test_a_malformed_parameter_is_a_400_naming_it_on_fragments(client_in, import_sample, target, qs, name):
    run = import_sample(REAL)
    response = part(client_in, run, qs, target)
    assert response.status_code == 400
    assert response.content.decode().startswith(f"{name}: ")


def test_a_malformed_parameter_is_an_error_on_the_form_of_the_page(client_in, import_sample):
    run = import_sample(REAL)
    response = client_in.get(f"/runs/{run.pk}/?t_from=soon&action=afr")
    html = response.content.decode()
    assert response.status_code == 400
    assert "t_from: Enter a number." in html
    assert 'name="t_from" id="id_t_from" value="soon" aria-invalid="true"' in html
    assert 'value="afr"' in html  # the rest of the form is kept
    assert 'id="decision-table"' not in html


def test_a_malformed_parameter_swaps_the_form_with_its_error(client_in, import_sample):
    run = import_sample(REAL)
    response = part(client_in, run, "round_min=3&round_max=1", "run-view")
    assert response.status_code == 400
    assert "round_max: round_max is before round_min" in response.content.decode()


# -- facets ----------------------------------------------------------------------------------------


def test_facet_links_add_and_remove_values(client_in, import_sample):
    run = import_sample(REAL)
    html = part(client_in, run, "action=gradient", "facets").content.decode()
    # Other actions stay listed (the facet ignores its own parameter); a click ORs one in.
    assert 'href="/runs/%d/?action=gradient&amp;action=AFR_CORRECTION"' % run.pk in html
    html = part(client_in, run, "action=GRADIENT_LIMITING&cylinder=f", "facets").content.decode()
    assert '<li class="selected">' in html
    assert 'href="/runs/%d/?cylinder=f"' % run.pk in html  # removes the selected action
    assert 'href="/runs/%d/?action=GRADIENT_LIMITING"' % run.pk in html  # removes the cylinder


# -- the detail ------------------------------------------------------------------------------------


def test_the_detail_page_shows_values_as_written_cell_and_raw_json(client_in, import_sample, samples_dir):
    run = import_sample(REAL)
    doc = json.loads((samples_dir / REAL).read_text())["decisions"]
    seq = next(i for i, d in enumerate(doc) if d["action"] == "CLAMPING_START")
    html = client_in.get(f"/runs/{run.pk}/decisions/{seq}/").content.decode()
    assert '<span class="k">limit</span><span class="v">10.0</span>' in html  # 10.0, not 10
    assert "Clamping VE corrections to +/- 10.0%" in html
    assert f'id="record-{seq}"' in html and "&quot;limit&quot;: 10.0" in html
    gradient = next(i for i, d in enumerate(doc) if d["action"] == "GRADIENT_LIMITING")
    html = client_in.get(f"/runs/{run.pk}/decisions/{gradient}/").content.decode()
    assert '<span class="k">rpm_index</span><span class="v">0</span>' in html


def test_the_detail_json_download_is_the_record_as_read(client_in, import_sample, samples_dir):
    run = import_sample(REAL)
    doc = json.loads((samples_dir / REAL).read_text())["decisions"]
    response = client_in.get(f"/runs/{run.pk}/decisions/42/?format=json")
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    assert json.loads(response.content) == doc[42]
    assert client_in.get(f"/runs/{run.pk}/decisions/42/?format=xml").status_code == 400


def test_the_study_download_drops_the_server_time_suffix(client_in, import_sample):
    run = import_sample(STUDY)
    body = json.loads(client_in.get(f"/runs/{run.pk}/decisions/0/?format=json").content)
    assert body["client"]["event"] == "keystroke"


def test_previous_and_next_stay_within_the_filter(client_in, import_sample):
    run = import_sample(REAL)
    seqs = selector_seqs(run, "action=gradient")
    html = client_in.get(f"/runs/{run.pk}/decisions/{seqs[1]}/?action=gradient").content.decode()
    assert f'href="/runs/{run.pk}/decisions/{seqs[0]}/?action=gradient"' in html
    assert f'href="/runs/{run.pk}/decisions/{seqs[2]}/?action=gradient"' in html
    html = client_in.get(f"/runs/{run.pk}/decisions/{seqs[0]}/?action=gradient").content.decode()
    assert "← first" in html


def test_the_panel_is_the_same_template_as_a_fragment(client_in, import_sample):
    run = import_sample(REAL)
    html = client_in.get(f"/runs/{run.pk}/decisions/3/?action=afr", headers=HX).content.decode().strip()
    assert html.startswith('<article class="decision" data-seq="3"')
    assert "data-close-panel" in html and 'hx-target="#panel"' in html
    full = client_in.get(f"/runs/{run.pk}/decisions/3/?action=afr").content.decode()
    assert "<html" in full and "data-close-panel" not in full


def test_an_llm_call_shows_prompt_by_role_response_model_and_tokens_as_text(
    client_in, import_sample, samples_dir
):
    run = import_sample(COMBAT)
    lines = (samples_dir / COMBAT).read_text().splitlines()
    seq, event = next((i, json.loads(line)) for i, line in enumerate(lines) if '"llm_call"' in line)
    html = client_in.get(f"/runs/{run.pk}/decisions/{seq}/").content.decode()
    assert "<h3>LLM call</h3>" in html
    assert f'<span class="role">{event["prompt"][0]["role"]}</span>' in html
    assert event["model"] in html and str(event["tokens"]["input"]) in html
    assert str(event["temperature"]) in html
    first_line = event["response"].splitlines()[0]
    from django.utils.html import escape

    assert escape(first_line) in html


def test_a_missing_decision_is_a_404(client_in, import_sample):
    run = import_sample(REAL)
    assert client_in.get(f"/runs/{run.pk}/decisions/119/").status_code == 404


# -- hostile strings -------------------------------------------------------------------------------

ATTACKS = ("<script>alert(", "<img src=x", "<b>BOLD_ACTION</b>", "<i>key")


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def assert_inert(html: str):
    """No markup from the data: the attack strings never appear raw, and, parsed as a browser
    would, the page holds no element the templates do not make (img, b, i), no event-handler
    attribute, and no script but ours (a src, or JSON data)."""
    for attack in ATTACKS:
        assert attack not in html, attack
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in ("img", "b", "i", "iframe", "svg"), (tag, attrs)
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        if tag == "script":
            assert "src" in attrs or attrs.get("type") == "application/json", attrs


@pytest.mark.parametrize("relpath", [XSS_REPLAY, XSS_SESSION])
def test_hostile_strings_stay_inert_in_page_fragments_and_detail(client_in, import_sample, relpath):
    run = import_sample(relpath)
    bodies = [client_in.get(f"/runs/{run.pk}/").content.decode()]
    for target in ("run-view", "load-more", "facets", "stats", "chart"):
        bodies.append(part(client_in, run, "", target).content.decode())
    for seq in range(run.decision_count):
        bodies.append(client_in.get(f"/runs/{run.pk}/decisions/{seq}/").content.decode())
        bodies.append(client_in.get(f"/runs/{run.pk}/decisions/{seq}/", headers=HX).content.decode())
    joined = "\n".join(bodies)
    assert_inert(joined)
    assert "&lt;script&gt;alert(" in joined  # shown, as text


@pytest.mark.parametrize("relpath", [XSS_REPLAY, XSS_SESSION])
def test_hostile_strings_in_the_chart_hover_are_escaped(client_in, import_sample, relpath):
    run = import_sample(relpath)
    html = part(client_in, run, "", "chart").content.decode()
    data = re.search(r'<script id="chart-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    figure = json.loads(data)
    texts = [s for trace in figure["data"] for s in (*trace["text"], trace["name"], *trace["y"])]
    assert texts
    for text in texts:  # plotly reads these as HTML: only our own <br> and <b> may be markup
        assert "<" not in re.sub(r"<br>|</?b>", "", text) and ">" not in re.sub(r"<br>|</?b>", "", text), text
    assert any("&lt;script&gt;" in t or "&lt;img" in t or "&lt;b&gt;" in t for t in texts)


def test_a_hostile_filter_value_is_inert_when_echoed(client_in, import_sample):
    run = import_sample(REAL)
    html = client_in.get(f"/runs/{run.pk}/?q=<script>alert(1)</script>&v=<img src=x>=1").content.decode()
    assert "<script>alert(1)" not in html and "<img src=x>" not in html


def test_a_big_runs_page_loads_facets_summary_and_chart_after_it(client_in, import_sample, monkeypatch):
    run = import_sample(REAL)
    monkeypatch.setattr(timeline, "INLINE_LIMIT", 50)
    html = client_in.get(f"/runs/{run.pk}/?action=afr").content.decode()
    for target in ("facets", "stats", "chart"):
        assert f'<section id="{target}" class="card {target} loading" hx-get="/runs/{run.pk}/?action=afr" ' \
               'hx-trigger="load" hx-swap="outerHTML"' in html
    assert 'id="chart-data"' not in html and 'id="decision-table"' in html
    for _ in range(2):  # computed, then from the cache
        assert 'id="chart-data"' in part(client_in, run, "action=afr", "chart").content.decode()
        assert "AFR_CORRECTION" in part(client_in, run, "action=afr", "facets").content.decode()
        assert "Largest gaps" in part(client_in, run, "action=afr", "stats").content.decode()


def test_a_big_runs_filtered_view_shows_its_rows_at_once_and_counts_them_after(client_in, import_sample,
                                                                              monkeypatch):
    run = import_sample(REAL)
    monkeypatch.setattr(timeline, "INLINE_LIMIT", 50)
    html = part(client_in, run, "q=gradient", "run-view").content.decode()
    assert f'<div id="matchline" class="matchline loading" hx-get="/runs/{run.pk}/?q=gradient" ' \
           'hx-trigger="load" hx-swap="outerHTML"' in html
    assert "Counting the matching decisions" in html and 'id="decision-table"' in html
    counted = Decision.objects.filter(Q(reason__icontains="gradient") | Q(text__icontains="gradient"), run=run).count()
    line = part(client_in, run, "q=gradient", "matchline").content.decode()
    assert 0 < counted < run.decision_count
    assert f'<strong class="num">{counted:,}</strong> of {run.decision_count:,} decisions match.' in line
    assert "Clear filters" in line
    unfiltered = part(client_in, run, "", "run-view").content.decode()
    assert f'<strong class="num">{run.decision_count:,}</strong> of' in unfiltered  # nothing to count


# -- the pipeline as the axis (issue 17.1) ------------------------------------------------------------
CHART_DATA = re.compile(r'<script id="chart-data" type="application/json">(.*?)</script>', re.S)
STAGE_LANES = ["AFR correction", "Smoothing", "Gradient limiting", "Clamping", "Anomaly detection"]


def chart(client, run, qs=""):
    html = part(client, run, qs, "chart").content.decode()
    return html, json.loads(CHART_DATA.search(html)[1])


def test_a_dynoai_runs_chart_is_in_decision_order_in_pipeline_lanes(client_in, import_sample):
    run = import_sample(REAL)
    html, figure = chart(client_in, run)
    assert figure["meta"]["axis"] == "seq"
    assert figure["layout"]["yaxis"]["categoryarray"] == list(reversed(STAGE_LANES))
    assert sorted(x for t in figure["data"] for x in t["x"]) == list(range(119))
    assert "one lane per stage of the pipeline" in html


def test_the_time_axis_is_a_link_that_keeps_the_filters(client_in, import_sample):
    run = import_sample(REAL)
    html, figure = chart(client_in, run, "action=afr&cylinder=f")
    assert 'href="?action=afr&amp;cylinder=f&amp;axis=time"' in html
    assert 'hx-get="?action=afr&amp;cylinder=f&amp;axis=time" hx-target="#chart"' in html
    html, figure = chart(client_in, run, "action=afr&cylinder=f&axis=time")
    assert figure["meta"]["axis"] == "time" and figure["layout"]["xaxis"]["ticktext"][0] == "0.0 ms"
    assert figure["layout"]["yaxis"]["categoryarray"] == ["AFR correction"]  # still lanes by stage
    assert max(x for t in figure["data"] for x in t["x"]) <= 22.0  # ms, not seq
    assert 'href="?action=afr&amp;cylinder=f"' in html  # back to the pipeline: the default, no axis=


def test_a_time_window_is_read_on_the_time_axis_unless_seq_is_asked(client_in, import_sample):
    run = import_sample(REAL)
    _, figure = chart(client_in, run, "t_from=4&t_to=8")
    assert figure["meta"]["axis"] == "time"
    html, figure = chart(client_in, run, "t_from=4&t_to=8&axis=seq")  # a zoom on the seq axis
    assert figure["meta"]["axis"] == "seq" and "range" not in figure["layout"]["xaxis"]
    assert 'class="reset-zoom" href="?"' in html  # reset goes back to the run's own view


@pytest.mark.parametrize("relpath", [COMBAT, STUDY])
def test_sessions_and_study_logs_keep_the_time_axis_with_a_lane_per_action(client_in, import_sample, relpath):
    run = import_sample(relpath)
    html, figure = chart(client_in, run)
    assert figure["meta"]["axis"] == "time"
    assert figure["layout"]["yaxis"]["categoryarray"] == list(reversed([t["name"] for t in figure["data"]]))
    assert "axis=" not in html and "Pipeline order" not in html


def test_a_bad_axis_is_a_400_naming_it(client_in, import_sample):
    run = import_sample(REAL)
    for target in ("chart", "run-view"):
        response = part(client_in, run, "axis=rpm", target)
        assert response.status_code == 400 and "axis: use time or seq" in response.content.decode()


def test_the_filter_form_keeps_the_charts_axis_without_javascript(client_in, import_sample):
    run = import_sample(REAL)
    html = client_in.get(f"/runs/{run.pk}/?axis=time").content.decode()
    assert '<input type="hidden" name="axis" value="time">' in html
    assert 'name="axis"' not in client_in.get(f"/runs/{run.pk}/").content.decode()


# -- event chains (v1.2, issue 16.5) --------------------------------------------------------------


@pytest.fixture
def v12_run(user):
    from pathlib import Path

    from viewer.ingest import Source, run_ingest

    path = Path(__file__).parent / "data" / "session_v12_mixed_zones.jsonl"
    return run_ingest(owner=user, sources=[Source(name=path.name, path=path, group="test")])[0].run


def test_a_v12_event_links_its_parent_its_next_event_and_its_correlation(client_in, v12_run):
    lines = [json.loads(line) for line in open(_V12, encoding="utf-8")]
    seq = 6  # an action_resolution in round 1
    event = lines[seq]
    parent = next(i for i, e in enumerate(lines) if e["event_id"] == event["parent_event_id"])
    child = next(i for i, e in enumerate(lines) if e.get("parent_event_id") == event["event_id"])
    page = client_in.get(f"/runs/{v12_run.pk}/decisions/{seq}/").content.decode()
    assert f'<a rel="up" href="/runs/{v12_run.pk}/decisions/{parent}/">#{parent} {lines[parent]["event_type"]}</a>' in page
    assert f'href="/runs/{v12_run.pk}/decisions/{child}/">#{child} {lines[child]["event_type"]}</a>' in page
    group = f'/runs/{v12_run.pk}/?correlation_id={event["correlation_id"]}'
    assert f'href="{group}" class="chain-group"' in page
    listed = client_in.get(group, headers={"HX-Request": "true", "HX-Target": "run-view"}).content.decode()
    in_round = [i for i, e in enumerate(lines) if e.get("correlation_id") == event["correlation_id"]]
    assert re.findall(r'<tr[^>]*data-seq="(\d+)"', listed) == [str(i) for i in in_round]


def test_the_first_event_starts_the_chain_and_the_last_ends_it(client_in, v12_run):
    first = client_in.get(f"/runs/{v12_run.pk}/decisions/0/").content.decode()
    assert "none: the chain starts here" in first and "/decisions/1/\">#1 scenario" in first
    last = client_in.get(f"/runs/{v12_run.pk}/decisions/{v12_run.decision_count - 1}/").content.decode()
    assert "none: the chain ends here" in last and "chain-group" not in last  # session_end: no correlation


def test_a_v10_event_has_no_chain(client_in, import_sample):
    run = import_sample("session/combat_session_sample.jsonl")
    assert "Event chain" not in client_in.get(f"/runs/{run.pk}/decisions/3/").content.decode()


_V12 = __import__("pathlib").Path(__file__).parent / "data" / "session_v12_mixed_zones.jsonl"


def test_each_time_column_says_its_zone_as_the_kind_knows_it(client_in, import_sample):
    session = client_in.get(f"/runs/{import_sample(COMBAT).pk}/").content.decode()
    assert "Time (log&#x27;s local time)" in session and "Time (UTC)" not in session
    dyno = client_in.get(f"/runs/{import_sample(REAL, MANIFEST).pk}/").content.decode()
    assert "Time (UTC)" in dyno


def test_a_session_shows_its_id_and_start_instead_of_a_run_id_and_generation_time_it_lacks(client_in, import_sample):
    run = import_sample(COMBAT)
    page = client_in.get(f"/runs/{run.pk}/").content.decode()
    head = page.split('<dl class="facts">')[1].split("</dl>")[0]
    assert "Run ID" not in head and "Generated" not in head
    assert "<dt>Session</dt>" in head and run.session_id in head
    assert "<dt>Started</dt>" in head and run.first_ts.strftime("%Y-%m-%d %H:%M:%S") in head
    dyno = client_in.get(f"/runs/{import_sample(REAL, MANIFEST).pk}/").content.decode()
    assert "<dt>Run ID</dt>" in dyno and "<dt>Generated</dt>" in dyno


def test_a_filter_with_no_match_says_so_and_offers_to_clear_the_filters(client_in, import_sample):
    run = import_sample(REAL)
    html = client_in.get(f"/runs/{run.pk}/?action=NO_SUCH_ACTION").content.decode()
    empty = html[html.index('id="no-match"'):]
    assert "No decision matches these filters" in empty
    assert f'<a href="/runs/{run.pk}/">clear the filters</a>' in empty
