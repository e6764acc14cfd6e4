"""viewer.cells and viewer.drilldown with each kind's cells spec: heatmap grids and drilldowns,
checked against counts computed here from the samples."""

import json
from collections import Counter, defaultdict
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from django.http import QueryDict

from viewer import cells, cells_time, display, drilldown, kinds
from viewer.filters import DecisionFilterForm
from viewer.selectors import filtered_decisions, run_actions

pytestmark = pytest.mark.django_db

RUNS = ["dynoai/runs/large200k_s2_c7", "dynoai/runs/large200k_s4_c10"]
# The toolkit's bins (FORMATS.md 1.3), written out here rather than imported from the code under test.
RPM = [1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500]
KPA = [35, 50, 65, 80, 95]


def cell_grid(*, run, **kw):
    """The engine with the run's kind spec, as the page and the API call it."""
    return cells.cell_grid(spec=kinds.profile(run).cells, run=run, **kw)


def cell_drilldown(*, run, **kw):
    return drilldown.cell_drilldown(spec=kinds.profile(run).cells, run=run, **kw)


def available_metrics(*, run):
    return cells.available_metrics(spec=kinds.profile(run).cells, run=run)


def _decisions(samples_dir, folder):
    return json.loads((samples_dir / folder / "session_replay.json").read_text())["decisions"]


def _import(import_sample, folder):
    return import_sample(f"{folder}/session_replay.json", f"{folder}/manifest.json")


def _by_cell(grid):
    return {(c["y"], c["x"]): c for c in grid["cells"]}


def _seqs_for(run, params):
    """The decisions a cell link selects, parsed the way every page parses a querystring."""
    form = DecisionFilterForm(QueryDict(urlencode(params, doseq=True)))
    assert form.is_valid(), form.errors
    return [d.seq for d in filtered_decisions(run=run, **form.filters())]


@pytest.mark.parametrize("folder", RUNS)
@pytest.mark.parametrize("cyl", ["f", "r"])
def test_afr_grid_shows_all_55_cells_per_cylinder_with_counts_from_the_json(
    samples_dir, import_sample, folder, cyl
):
    run = _import(import_sample, folder)
    expected = Counter()
    sums = defaultdict(float)
    for d in _decisions(samples_dir, folder):
        if d["action"] == "AFR_CORRECTION" and d["cell"]["cylinder"] == cyl:
            expected[(d["cell"]["rpm"], d["cell"]["kpa"])] += 1
            sums[(d["cell"]["rpm"], d["cell"]["kpa"])] += d["values"]["afr_error_pct"]

    grid = cell_grid(run=run, filters={"action": ("AFR_CORRECTION",)}, metric="count", cylinder=cyl)
    assert len(expected) == 55
    assert {k: c["count"] for k, c in _by_cell(grid).items()} == dict(expected)
    assert grid["y_values"] == RPM and grid["x_values"] == KPA
    assert all(v is not None for row in grid["z"] for v in row)

    means = _by_cell(cell_grid(run=run, filters={}, metric="afr_mean", cylinder=cyl))
    assert {k: c["count"] for k, c in means.items()} == dict(expected)
    for k, n in expected.items():
        assert means[k]["value"] == pytest.approx(sums[k] / n)


def test_afr_last_is_the_last_sample_of_the_cell_in_file_order(samples_dir, import_sample):
    folder = RUNS[0]
    run = _import(import_sample, folder)
    last = {}
    for d in _decisions(samples_dir, folder):
        if d["action"] == "AFR_CORRECTION" and d["cell"]["cylinder"] == "r":
            last[(d["cell"]["rpm"], d["cell"]["kpa"])] = d["values"]["afr_error_pct"]
    grid = cell_grid(run=run, filters={}, metric="afr_last", cylinder="r")
    assert {k: c["value"] for k, c in _by_cell(grid).items()} == pytest.approx(last)


@pytest.mark.parametrize("folder", RUNS + ["dynoai/real_sample"])
def test_gradient_limiting_indices_land_on_the_standard_bins(samples_dir, import_sample, folder):
    run = _import(import_sample, folder)
    expected, last = Counter(), {}
    for d in _decisions(samples_dir, folder):
        if d["action"] == "GRADIENT_LIMITING":
            where = (RPM[d["cell"]["rpm_index"]], KPA[d["cell"]["kpa_index"]])
            expected[where] += 1
            last[where] = d["values"]["result"]
    assert expected
    counts = _by_cell(cell_grid(run=run, filters={}, metric="gradient_count"))
    assert {k: c["value"] for k, c in counts.items()} == dict(expected)
    results = _by_cell(cell_grid(run=run, filters={}, metric="gradient_result", cylinder="f"))
    assert {k: c["value"] for k, c in results.items()} == pytest.approx(last)
    assert any(
        "standard bins" in note
        for note in cell_grid(run=run, filters={}, metric="gradient_count")["notes"]
    )


def test_clamped_cells_come_from_values_cells_and_blank_cells_are_null(samples_dir, import_sample):
    folder = RUNS[0]
    run = _import(import_sample, folder)
    expected = {}
    for d in _decisions(samples_dir, folder):
        if d["action"] == "CLAMPING_APPLIED":
            for e in d["values"]["cells"]:
                expected[(RPM[e["rpm_index"]], KPA[e["kpa_index"]])] = (e["original"], e["clamped"])
    assert expected
    grid = cell_grid(run=run, filters={}, metric="clamped")
    got = _by_cell(grid)
    assert set(got) == set(expected)
    for k, (original, clamped) in expected.items():
        assert got[k]["value"] == original
        assert got[k]["text"] == f"{original:.2f}→{clamped:.2f}"
    flat = [v for row in grid["z"] for v in row]
    assert flat.count(None) == len(flat) - len(expected)  # no data is blank, not zero


def test_anomaly_score_is_the_highest_score_of_the_cell(samples_dir, import_sample):
    folder = RUNS[1]
    run = _import(import_sample, folder)
    expected = {}
    for d in _decisions(samples_dir, folder):
        if d["action"] == "ANOMALY_DETECTED":
            k = (d["cell"]["rpm"], d["cell"]["kpa"])
            expected[k] = max(expected.get(k, float("-inf")), d["values"]["score"])
    grid = cell_grid(run=run, filters={}, metric="anomaly_score")
    assert {k: c["value"] for k, c in _by_cell(grid).items()} == pytest.approx(expected)


def test_any_numeric_value_key_is_a_metric_and_averages_that_value(samples_dir, import_sample):
    folder = RUNS[0]
    run = _import(import_sample, folder)
    keys = {m.key for m in available_metrics(run=run)}
    assert {"value:weight", "value:afr_measured", "value:blend_factor", "value:score"} <= keys
    assert "value:passes" not in keys  # SMOOTHING_START has no cell
    sums, counts = defaultdict(float), Counter()
    for d in _decisions(samples_dir, folder):
        if d["action"] == "AFR_CORRECTION" and d["cell"]["cylinder"] == "f":
            k = (d["cell"]["rpm"], d["cell"]["kpa"])
            sums[k] += d["values"]["weight"]
            counts[k] += 1
    grid = cell_grid(run=run, filters={}, metric="value:weight", cylinder="f")
    got = _by_cell(grid)
    assert set(got) == set(counts)
    for k in counts:
        assert got[k]["value"] == pytest.approx(sums[k] / counts[k])


def test_an_unknown_metric_falls_back_to_the_first(import_sample):
    run = _import(import_sample, RUNS[0])
    assert cell_grid(run=run, filters={}, metric="value:no such key")["metric"] == "count"


@pytest.mark.parametrize("cyl", ["f", "both"])
def test_each_cells_link_selects_exactly_that_cells_decisions(samples_dir, import_sample, cyl):
    folder = RUNS[0]
    run = _import(import_sample, folder)
    decisions = _decisions(samples_dir, folder)
    grid = cell_grid(run=run, filters={}, metric="afr_mean", cylinder=cyl)
    assert len(grid["cells"]) == 55
    for c in grid["cells"]:
        (link,) = c["links"]
        expected = [
            seq
            for seq, d in enumerate(decisions)
            if d.get("cell", {}).get("rpm") == c["y"]
            and d["cell"].get("kpa") == c["x"]
            and (cyl == "both" or d["cell"].get("cylinder") == cyl)
        ]
        assert _seqs_for(run, link["params"]) == expected

    for c in cell_grid(run=run, filters={}, metric="gradient_count")["cells"]:
        (link,) = c["links"]
        i, j = RPM.index(c["y"]), KPA.index(c["x"])
        expected = [
            seq
            for seq, d in enumerate(decisions)
            if d.get("cell", {}).get("rpm_index") == i and d["cell"].get("kpa_index") == j
        ]
        assert _seqs_for(run, link["params"]) == expected


def test_drilldown_lists_every_decision_of_the_cell_in_file_order(samples_dir, import_sample):
    folder = RUNS[0]
    run = _import(import_sample, folder)
    decisions = _decisions(samples_dir, folder)
    rpm, kpa = 6500, 95
    i, j = RPM.index(rpm), KPA.index(kpa)
    expected = []
    for seq, d in enumerate(decisions):
        cell = d.get("cell", {})
        clamped = [
            e for e in d.get("values", {}).get("cells", []) if (e["rpm_index"], e["kpa_index"]) == (i, j)
        ]
        if (
            (cell.get("rpm"), cell.get("kpa")) == (rpm, kpa)
            or (cell.get("rpm_index"), cell.get("kpa_index")) == (i, j)
            or (d["action"] == "CLAMPING_APPLIED" and clamped)
        ):
            expected.append(seq)
    assert any(decisions[s]["action"] == "CLAMPING_APPLIED" for s in expected)

    drill = cell_drilldown(run=run, filters={}, key={"cell_rpm": rpm, "cell_kpa": kpa})
    assert [r["d"].seq for r in drill["rows"]] == expected
    assert drill["total"] == len(expected)
    assert dict(drill["by_action"]) == dict(Counter(decisions[s]["action"] for s in expected))
    assert drill["first_ts"].isoformat(timespec="milliseconds").replace("+00:00", "Z") == min(
        decisions[s]["timestamp"] for s in expected
    )
    assert drill["figure"]["x_is_time"]
    names = {t["name"] for t in drill["figure"]["data"]}
    assert names == {"AFR_CORRECTION", "GRADIENT_LIMITING", "CLAMPING_APPLIED"}

    front = cell_drilldown(run=run, filters={}, key={"cell_rpm": rpm, "cell_kpa": kpa}, cylinder="f")
    assert [r["d"].seq for r in front["rows"]] == [
        s for s in expected if decisions[s].get("cell", {}).get("cylinder") == "f"
    ]


def test_the_current_filters_apply_to_the_grid_and_the_drilldown(samples_dir, import_sample):
    folder = RUNS[0]
    run = _import(import_sample, folder)
    decisions = _decisions(samples_dir, folder)
    filters = {"rpm_min": 4000, "q": "r cylinder"}
    grid = cell_grid(run=run, filters=filters, metric="count")
    expected = Counter(
        (d["cell"]["rpm"], d["cell"]["kpa"])
        for d in decisions
        if d["action"] == "AFR_CORRECTION" and d["cell"]["rpm"] >= 4000 and "r cylinder" in d["reason"]
    )
    assert {k: c["count"] for k, c in _by_cell(grid).items()} == dict(expected)
    drill = cell_drilldown(run=run, filters=filters, key={"cell_rpm": 4000, "cell_kpa": 65})
    assert {r["d"].cylinder for r in drill["rows"]} == {"r"}
    assert drill["total"] == expected[(4000, 65)]
    # a cell outside the filters has nothing, whatever its coordinates say
    assert (
        cell_drilldown(run=run, filters=filters, key={"cell_rpm": 1500, "cell_kpa": 65})["total"] == 0
    )


def _session_expected(path, run):
    """Counts per (round, agent) computed from the JSONL. Round and agent are the reader's, decision by
    decision (issue 13: agents by id, display names mapped to them; tests/test_readers_session.py)."""
    where = {d.seq: (d.round, d.agent) for d in filtered_decisions(run=run)}
    events, tokens, calls, ok, known = Counter(), Counter(), Counter(), Counter(), Counter()
    for seq, line in enumerate(path.read_text().splitlines()):
        e = json.loads(line)
        rnd, agent = where[seq]
        if agent is None or rnd is None:
            continue
        events[(rnd, agent)] += 1
        if e["event_type"] == "llm_call":
            calls[(rnd, agent)] += 1
            tokens[(rnd, agent)] += e["tokens"]["input"] + e["tokens"]["output"]
        if e["event_type"] == "action_resolution" and isinstance(e["roll"].get("success"), bool):
            known[(rnd, agent)] += 1
            ok[(rnd, agent)] += e["roll"]["success"]
    return events, tokens, calls, ok, known


@pytest.mark.parametrize("name", ["combat_session_sample.jsonl", "session_debt_auction_ambush.jsonl"])
def test_session_grid_matches_counts_from_the_jsonl(samples_dir, import_sample, name):
    run = import_sample(f"session/{name}")
    events, tokens, calls, ok, known = _session_expected(samples_dir / "session" / name, run)
    grid = cell_grid(run=run, filters={}, metric="events")
    assert {k: c["value"] for k, c in _by_cell(grid).items()} == dict(events)
    assert grid["y_values"] == sorted({r for r, _ in events})
    grid = cell_grid(run=run, filters={}, metric="tokens")
    assert {k: c["value"] for k, c in _by_cell(grid).items()} == dict(tokens)
    assert {k: c["count"] for k, c in _by_cell(grid).items()} == dict(calls)
    grid = cell_grid(run=run, filters={}, metric="success")
    assert known
    assert {k: c["value"] for k, c in _by_cell(grid).items()} == pytest.approx(
        {k: 100.0 * ok[k] / n for k, n in known.items()}
    )


def test_a_session_cell_link_selects_that_round_and_agent(samples_dir, import_sample):
    name = "session_debt_auction_ambush.jsonl"
    run = import_sample(f"session/{name}")
    events, *_ = _session_expected(samples_dir / "session" / name, run)
    grid = cell_grid(run=run, filters={}, metric="events")
    for c in grid["cells"]:
        (link,) = c["links"]
        seqs = _seqs_for(run, link["params"])
        assert len(seqs) == events[(c["y"], c["x"])]
        drill = cell_drilldown(run=run, filters={}, key=c["key"])
        assert [r["d"].seq for r in drill["rows"]] == seqs
        assert (
            not drill["figure"] or not drill["figure"]["x_is_time"]
        )  # sessions: file order, not mixed-zone ts


def test_study_grid_counts_events_by_type_and_time_bucket(samples_dir, import_sample):
    name = "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"
    run = import_sample(name)
    per_type = Counter()
    for line in (samples_dir / name).read_text().splitlines():
        if line.strip() and not line.startswith("[Empty"):
            per_type[json.loads(line.rpartition("\t")[0])["client"]["event"]] += 1
    grid = cell_grid(run=run, filters={}, metric="events")
    totals = Counter()
    for c in grid["cells"]:
        totals[c["y"]] += c["count"]
        (link,) = c["links"]
        assert len(_seqs_for(run, link["params"])) == c["count"]
        assert cell_drilldown(run=run, filters={}, key=c["key"])["total"] == c["count"]
    assert totals == per_type
    assert len(grid["x"]) <= cells_time.MAX_BUCKETS + 1
    assert all(label.endswith(":00") for label in grid["x"])  # buckets start on whole minutes


def test_an_empty_study_log_gives_an_empty_grid_with_a_note(import_sample):
    run = import_sample("study/2024-03-05T19-02-11.000001-0000000009-GUEST-41233.study.log")
    grid = cell_grid(run=run, filters={})
    assert grid["cells"] == [] and grid["notes"]


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _markup(text):
    return text.replace("<b>", "").replace("</b>", "").replace("<br>", "").replace("<extra></extra>", "")


@pytest.mark.parametrize(
    "path,metric", [("hostile/xss_session.jsonl", "tokens"), ("hostile/xss_session_replay.json", "count")]
)
def test_hostile_strings_reach_plotly_escaped(import_sample, path, metric):
    run = import_sample(path)
    grid = cell_grid(run=run, filters={}, metric=metric)
    assert grid["cells"]
    figure = cells.heatmap_figure(grid)
    assert all("<" not in _markup(s) for s in _strings(figure))
    text = json.dumps(figure)
    assert "&lt;script&gt;" in text or "&lt;i&gt;" in text or "&lt;" in text
    for c in grid["cells"]:
        drill = cell_drilldown(run=run, filters={}, key=c["key"])
        if drill["figure"]:
            assert all("<" not in _markup(s) for s in _strings(drill["figure"]))


def test_hostile_value_keys_are_metrics_whose_labels_are_escaped(import_sample):
    run = import_sample("hostile/xss_session_replay.json")
    grid = cell_grid(run=run, filters={}, metric="value:<i>key3</i>")
    assert grid["metric"] == "value:<i>key3</i>"
    assert [c["value"] for c in grid["cells"]] == [3]
    figure = cells.heatmap_figure(grid)
    assert "&lt;i&gt;key3&lt;/i&gt;" in figure["data"][0]["colorbar"]["title"]["text"]


def test_narrow_intersects_and_reports_contradictions():
    assert cells.narrow({"rpm_min": 3000}, rpm=3500, kpa=None) == {"rpm_min": 3000, "rpm": 3500}
    assert cells.narrow({"rpm": 3000}, rpm=3500) is None
    assert cells.narrow({"t_from": 10.0, "t_to": 50.0}, t_from=0, t_to=20) == {"t_from": 10.0, "t_to": 20}
    assert cells.narrow({"t_from": 100.0}, t_from=0, t_to=20) is None


@pytest.mark.parametrize(
    "span,width", [(0, 1000), (40_000, 1000), (50 * 60_000, 120_000), (3 * 86_400_000, 7_200_000)]
)
def test_bucket_width_keeps_the_grid_under_the_bucket_limit(span, width):
    assert cells_time.bucket_width(span) == width
    assert span / cells_time.bucket_width(span) < cells_time.MAX_BUCKETS


def test_a_drilldown_colours_each_action_as_the_run_page_does(import_sample):
    """Issue 12: one palette; an action keeps its colour between the run page and a cell drilldown."""
    run = _import(import_sample, RUNS[0])
    drill = cell_drilldown(run=run, filters={}, key={"cell_rpm": 6500, "cell_kpa": 95})
    colours = display.palette(run_actions(run=run))
    assert len({t["name"] for t in drill["figure"]["data"]}) == 3
    for trace in drill["figure"]["data"]:
        assert trace["marker"]["color"] == colours[trace["name"]]


def test_the_drilldown_chart_shows_bidi_controls_as_code_points():
    decisions = [
        SimpleNamespace(seq=seq, t_ms=t, action="ACT\u202eION", values={"k\u2067ey": v})
        for seq, t, v in ((0, 0.0, 1.5), (1, 5.0, 2.5))
    ]
    text = json.dumps(drilldown.values_figure(decisions), ensure_ascii=False)
    assert "\u202e" not in text and "\u2067" not in text
    assert "ACT&lt;U+202E&gt;ION" in text and "k&lt;U+2067&gt;ey" in text


def test_the_drilldown_chart_does_not_plot_an_epoch_timestamp_as_a_value():
    decisions = [
        SimpleNamespace(seq=seq, t_ms=t, action="keystroke",
                        values={"timestamp": 1709663660000 + t, "keystroke": {"timeStamp": t, "keyCode": 84}})
        for seq, t in ((0, 0.0), (1, 5.0))
    ]
    titles = [a["text"] for a in drilldown.values_figure(decisions)["layout"]["annotations"]]
    assert not any("timestamp" in t for t in titles), titles
    assert any("keyCode" in t for t in titles) and any("timeStamp" in t for t in titles)


@pytest.mark.django_db
def test_a_sessions_round_by_agent_grid_has_one_column_per_character(import_sample):
    run = import_sample("session/session_debt_auction_ambush.jsonl")
    grid = cell_grid(run=run, filters={}, metric="events")
    agents = [x for x in grid["x_values"] if x is not None]
    # resolutions name their actor by display name; the grid counts them under the character's id
    assert {a for a in agents if not str(a).startswith(("enemy_", "npc_"))} == {
        "dm_01", "player_01", "player_02", "player_03"}, agents
    assert not any(" " in str(a) for a in agents)
