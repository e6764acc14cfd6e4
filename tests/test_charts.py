"""The timeline chart (viewer/charts.py) and the reads behind it (selectors.chart_points, time_bins)."""
import datetime as dt
import json
import math
import re

import pytest

from viewer import charts, overview
from viewer.display import palette
from viewer.selectors import chart_points, run_actions, time_bins, time_range

pytestmark = pytest.mark.django_db

REAL = "dynoai/real_sample/session_replay.json"
XSS_REPLAY = "hostile/xss_session_replay.json"


CHART_DATA = re.compile(r'<script id="chart-data" type="application/json">(.*?)</script>', re.S)


def file_points(samples_dir, relpath):
    decisions = json.loads((samples_dir / relpath).read_text())["decisions"]
    stamps = [dt.datetime.fromisoformat(d["timestamp"].replace("Z", "+00:00")) for d in decisions]
    return [(i, d["action"], (stamps[i] - stamps[0]).total_seconds() * 1000) for i, d in enumerate(decisions)]


def chart_part(client, run, qs) -> tuple[str, dict]:
    response = client.get(f"/runs/{run.pk}/?{qs}", headers={"HX-Request": "true", "HX-Target": "chart"})
    html = response.content.decode()
    return html, json.loads(CHART_DATA.search(html)[1])


def test_points_put_each_decision_in_its_actions_lane(samples_dir, import_sample):
    run = import_sample(REAL)
    expected = file_points(samples_dir, REAL)
    figure = charts.points_figure(chart_points(run=run, limit=charts.POINTS_MAX))
    assert figure["meta"]["mode"] == "points"
    lanes = {t["name"]: t for t in figure["data"]}
    assert list(lanes) == list(dict.fromkeys(a for _, a, _ in expected))  # first appearance
    for name, trace in lanes.items():
        mine = [(i, t) for i, a, t in expected if a == name]
        assert trace["customdata"] == [i for i, _ in mine]
        assert trace["x"] == pytest.approx([t for _, t in mine])
        assert set(trace["y"]) == {name}
        assert trace["hovertemplate"] == "%{text}<extra></extra>"
    assert figure["layout"]["yaxis"]["type"] == "category"


def test_hover_text_has_seq_time_action_and_reason(import_sample):
    run = import_sample(REAL)
    figure = charts.points_figure(chart_points(run=run, limit=5))
    text = figure["data"][0]["text"][0]
    assert text.startswith("#0 · +0.0 ms<br>2025-12-15T17:28:01.803Z<br><b>AFR_CORRECTION</b><br>")
    assert "Accepted AFR error sample for f cylinder" in text


def test_every_string_from_the_log_is_escaped_in_the_figure(import_sample):
    run = import_sample(XSS_REPLAY)
    figure = charts.points_figure(chart_points(run=run, limit=charts.POINTS_MAX))
    names = [t["name"] for t in figure["data"]]
    assert "&lt;b&gt;BOLD_ACTION&lt;/b&gt;" in names
    for trace in figure["data"]:
        for text in (*trace["text"], trace["name"], *trace["y"]):
            bare = re.sub(r"<br>|</?b>", "", text)
            assert "<" not in bare and ">" not in bare, text
    escaped = '&lt;script&gt;alert("xss-reason")&lt;/script&gt;'  # plotly shows an escaped quote as &quot;
    assert any(escaped in t for t in figure["data"][0]["text"])


def test_the_window_sets_the_x_range(import_sample):
    run = import_sample(REAL)
    figure = charts.points_figure(chart_points(run=run, limit=10, t_from=2.0, t_to=9.0), window=(2.0, 9.0))
    assert figure["layout"]["xaxis"]["range"] == [2.0, 9.0]
    assert "range" not in charts.points_figure([])["layout"]["xaxis"]


def test_decisions_without_a_time_are_counted_not_drawn():
    figure = charts.points_figure([(0, None, None, "A", ""), (1, 5.0, None, "A", "r")])
    assert figure["meta"]["undated"] == 1 and figure["data"][0]["x"] == [5.0]


def test_time_bins_count_per_action_per_bin_in_sql(samples_dir, import_sample):
    run = import_sample(REAL)
    points = file_points(samples_dir, REAL)
    low, high = time_range(run=run)
    assert (low, high) == (0.0, pytest.approx(22.0))
    width = charts.bin_width(low, high, bins=5)
    expected: dict[tuple[str, int], int] = {}
    for _, action, t in points:
        key = (action, math.floor((t - low) / width))
        expected[key] = expected.get(key, 0) + 1
    found = {(a, b): n for a, b, n in time_bins(run=run, start=low, width=width)}
    assert found == expected
    assert max(b for _, b in found) == 4  # the last decision falls in the last bin, not past it


def test_time_bins_follow_the_filters(samples_dir, import_sample):
    run = import_sample(REAL)
    found = time_bins(run=run, start=5.0, width=3.0, action=("afr",), t_from=5.0, t_to=11.0)
    points = [t for _, a, t in file_points(samples_dir, REAL) if "AFR" in a and 5.0 <= t <= 11.0]
    assert sum(n for _, _, n in found) == len(points)
    assert {a for a, _, _ in found} == {"AFR_CORRECTION"}


def test_the_bins_figure_is_small_whatever_the_run_size():
    actions = [f"ACTION_{i}" for i in range(30)]
    bins = [(a, b, 1000 + b) for a in actions for b in range(charts.BINS)]
    figure = charts.bins_figure(bins, start=0.0, width=3333.4, total=1_000_000, colours=palette(actions))
    payload = json.dumps(figure)
    assert len(payload) < 1_000_000
    assert figure["meta"]["mode"] == "bins" and figure["meta"]["total"] == 1_000_000
    trace = figure["data"][0]
    assert len(trace["x"]) == charts.BINS and trace["x"][0] == pytest.approx(3333.4 / 2, abs=1e-3)
    assert "1,000 decisions" in trace["text"][0]
    assert max(trace["marker"]["size"]) == pytest.approx(18.0)


def test_over_the_point_limit_the_view_sends_bins(client_in, import_sample, monkeypatch, samples_dir):
    run = import_sample(REAL)
    monkeypatch.setattr(overview, "POINTS_MAX", 50)
    html, figure = chart_part(client_in, run, "action=afr")
    assert figure["meta"]["mode"] == "bins" and figure["meta"]["total"] == 98
    texts = [t for trace in figure["data"] for t in trace["text"]]
    counted = sum(int(re.search(r"<br>([\d,]+) decision", t)[1].replace(",", "")) for t in texts)
    assert counted == 98
    assert "each dot counts the decisions" in html


def test_zooming_in_re_bins_the_window(client_in, import_sample, monkeypatch):
    run = import_sample(REAL)
    monkeypatch.setattr(overview, "POINTS_MAX", 10)
    html, figure = chart_part(client_in, run, "t_from=4&t_to=8")
    assert figure["layout"]["xaxis"]["range"] == [4.0, 8.0]
    assert all(4.0 <= x <= 8.0 for tr in figure["data"] for x in tr["x"])
    assert "Reset zoom" in html and 'href="?"' in html


def test_an_action_has_one_colour_whatever_the_filter(client_in, import_sample):
    run = import_sample(REAL)
    colours = palette(run_actions(run=run))
    assert len(set(colours.values())) == len(colours)  # the sample's 5 actions are told apart
    for qs in ("", "action=gradient", "cylinder=f"):
        html = client_in.get(f"/runs/{run.pk}/?{qs}").content.decode()
        figure = json.loads(CHART_DATA.search(html)[1])
        for trace in figure["data"]:
            assert trace["marker"]["color"] == colours[trace["name"]]
        # colour and action, from the table, the summary and the facets
        pairs = re.findall(r'style="--c: (#[0-9a-f]{6})">(?:</span>)?([A-Z_]+)<', html)
        assert pairs
        assert all(colours[name] == colour for colour, name in pairs)


# -- the pipeline as the axis (issue 17.1) ------------------------------------------------------------
def test_dynoai_puts_each_action_in_its_pipeline_stage_and_others_last():
    from viewer.kinds import profile

    lanes = profile("dynoai").timeline
    assert lanes.axis == charts.SEQ
    assert [lanes.stage_of(a) for a in (
        "AFR_CORRECTION", "SMOOTHING_START", "GRADIENT_LIMITING", "CLAMPING_START", "CLAMPING_APPLIED",
        "ANOMALY_DETECTION_START", "ANOMALY_DETECTED", "CONFIDENCE_SCORING_COMPLETE", "RESAMPLE",
    )] == ["AFR correction", "Smoothing", "Gradient limiting", "Clamping", "Clamping", "Anomaly detection",
           "Anomaly detection", "Confidence", "Other"]
    assert lanes.order == ["AFR correction", "Smoothing", "Gradient limiting", "Clamping", "Anomaly detection",
                           "Confidence", "Other"]
    assert profile("session").timeline is None and profile("study").timeline is None


def test_on_the_seq_axis_each_decision_is_at_its_seq_in_its_stage_lane(samples_dir, import_sample):
    from viewer.kinds import profile

    run = import_sample(REAL)
    lanes = profile(run).timeline
    figure = charts.points_figure(chart_points(run=run, limit=charts.POINTS_MAX), axis=charts.SEQ, lanes=lanes)
    expected = file_points(samples_dir, REAL)
    assert figure["meta"]["axis"] == "seq"
    for trace in figure["data"]:  # a trace (and a colour) per action, drawn in its stage's lane
        seqs = [i for i, a, _ in expected if a == trace["name"]]
        assert trace["x"] == trace["customdata"] == seqs
        assert set(trace["y"]) == {lanes.stage_of(trace["name"])}
    assert figure["layout"]["yaxis"]["categoryarray"] == list(reversed(
        ["AFR correction", "Smoothing", "Gradient limiting", "Clamping", "Anomaly detection"]))  # top down
    assert "seq" in figure["layout"]["xaxis"]["title"]["text"]
    assert figure["meta"]["spans"][0] == [0, 0, 0.0, 0.0] and len(figure["meta"]["spans"]) == len(expected)


def test_an_action_of_no_stage_is_in_the_other_lane_at_the_bottom():
    lanes = charts.Lanes(stages=(("First", ("A",)), ("Second", ("B",))))
    figure = charts.points_figure([(0, 0.0, None, "B1", ""), (1, 1.0, None, "ZZ", ""), (2, 2.0, None, "A1", "")],
                                  axis=charts.SEQ, lanes=lanes)
    assert figure["layout"]["yaxis"]["categoryarray"] == ["Other", "Second", "First"]


def test_the_time_axis_reads_in_durations():
    ticks = charts.time_ticks(0.0, 22.0)
    assert ticks["tickvals"][:3] == [0.0, 5.0, 10.0] and ticks["ticktext"][:3] == ["0.0 ms", "5.0 ms", "10.0 ms"]
    assert charts.time_ticks(0.0, 300_000.0)["ticktext"][:3] == ["0.0 ms", "1 min 00 s", "2 min 00 s"]
    figure = charts.points_figure([(0, 0.0, None, "A", ""), (1, 22.0, None, "A", "")])
    assert figure["layout"]["xaxis"]["ticktext"][-1] == "25.0 ms"
    assert figure["layout"]["xaxis"]["title"]["text"] == "time since the first decision"


def test_over_the_point_limit_the_seq_axis_counts_consecutive_decisions(client_in, import_sample, monkeypatch,
                                                                       samples_dir):
    times = [t for _, _, t in file_points(samples_dir, REAL)]
    run = import_sample(REAL)
    monkeypatch.setattr(overview, "POINTS_MAX", 10)
    monkeypatch.setattr(charts, "BINS", 20)
    html, figure = chart_part(client_in, run, "")
    assert figure["meta"]["mode"] == "bins" and figure["meta"]["axis"] == "seq"
    assert figure["meta"]["bin_seq"] == 6 and figure["meta"]["total"] == 119  # 119 decisions in <= 20 bins
    counted = {}
    for trace in figure["data"]:
        for x, text in zip(trace["x"], trace["text"]):
            first = int(re.search(r"#(\d+) to #", text)[1])
            assert x == first + 2.5
            counted[trace["name"]] = counted.get(trace["name"], 0) + int(re.search(r"<br>(\d+) decision", text)[1])
    assert counted == {"AFR_CORRECTION": 98, "GRADIENT_LIMITING": 18, "SMOOTHING_START": 1, "CLAMPING_START": 1,
                       "ANOMALY_DETECTION_START": 1}
    spans = figure["meta"]["spans"]  # each bin's seqs and time span, for a zoom to become a time window
    assert [s[:2] for s in spans] == [[k, k + 5] for k in range(0, 119, 6)]
    assert [s[2:] for s in spans] == [pytest.approx([min(times[k:k + 6]), max(times[k:k + 6])]) for k in range(0, 119, 6)]
    assert "6 consecutive decisions" in html


def test_a_long_lane_label_is_shortened_on_the_axis_and_kept_whole_in_the_hover():
    long = "CONFIDENCE_SCORING_COMPLETE_WITH_A_VERY_LONG_SUFFIX"
    figure = charts.points_figure([(0, 0.0, None, long, "why"), (1, 1.0, None, "A", "")])
    yaxis = figure["layout"]["yaxis"]
    assert yaxis["tickvals"] == [long, "A"] and yaxis["ticktext"] == ["CONFIDENCE_SCORING_COMP…", "A"]
    assert figure["layout"]["margin"]["l"] < 50 and yaxis["automargin"]  # the labels take what they need
    assert any(long in text for trace in figure["data"] for text in trace["text"])
