"""viewer.dynoai_text against the real replay_viewer.py output and its documented quirks."""
import json
import math

import pytest

from viewer import dynoai_text as t

RUNS = ["large200k_s2_c7", "large200k_s4_c10"]
T0 = "2025-12-15T17:28:01.800Z"


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_text(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def timeline(data, **kwargs):
    return "".join(t.replay_timeline_chunks(data, **kwargs))


def dec(ms=0, action="A", **extra):
    return {"timestamp": f"2025-12-15T17:28:{1 + ms // 1000:02d}.{ms % 1000:03d}Z", "action": action, **extra}


# -- the real viewer's files --------------------------------------------------------------------


def test_export_text_equals_the_real_gradient_decisions_file(samples_dir):
    real = samples_dir / "dynoai" / "real_sample"
    assert timeline(load(real / "session_replay.json"), action="gradient") == read_text(
        real / "gradient_decisions.txt"
    )


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize(
    "expected, kwargs",
    [
        ("expected_timeline.txt", {}),
        ("expected_action_gradient.txt", {"action": "gradient"}),
        ("expected_action_clamp_limit3.txt", {"action": "clamp", "limit": 3}),
    ],
)
def test_timeline_printed_equals_what_the_real_viewer_printed(samples_dir, run, expected, kwargs):
    folder = samples_dir / "dynoai" / "runs" / run
    text = timeline(load(folder / "session_replay.json"), **kwargs)
    assert t.printed(text) == read_text(folder / expected)


@pytest.mark.parametrize("run", RUNS)
def test_summary_printed_equals_the_real_summary_only_output(samples_dir, run):
    folder = samples_dir / "dynoai" / "runs" / run
    assert t.printed(t.replay_summary(load(folder / "session_replay.json"))) == read_text(
        folder / "expected_summary.txt"
    )


@pytest.mark.parametrize("run", RUNS)
def test_export_text_equals_the_real_afr_export_file(samples_dir, run):
    folder = samples_dir / "dynoai" / "runs" / run
    assert timeline(load(folder / "session_replay.json"), action="afr") == read_text(
        folder / "expected_export_afr.txt"
    )


def test_streamed_pieces_give_the_same_text_as_the_whole_document_helper(samples_dir):
    data = load(samples_dir / "dynoai" / "runs" / RUNS[0] / "session_replay.json")
    decisions = data["decisions"]
    summary = t.summary_block(
        run_id=data["run_id"],
        generated_at=data["generated_at"],
        total=len(decisions),
        duration_ms=t.duration_ms(decisions[0]["timestamp"], decisions[-1]["timestamp"]),
        counts=t.action_counts(d["action"] for d in decisions),
    )
    prefiltered = (d for d in decisions if "CLAMP" in d["action"])
    chunks = t.timeline_chunks(summary, prefiltered, total=len(decisions), limit=3)
    assert "".join(chunks) == timeline(data, action="clamp", limit=3)


# -- small formatters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ms, text",
    [
        (0.0, "0.0ms"),
        (22.0, "22.0ms"),
        (999.94, "999.9ms"),
        (1000.0, "1.00s"),
        (1170.0, "1.17s"),
        (None, "N/A"),
    ],
)
def test_durations_print_in_milliseconds_below_a_second_and_seconds_above(ms, text):
    assert t.format_duration(ms) == text


def test_duration_is_computed_as_the_viewer_does_and_is_none_when_unusable():
    assert t.duration_ms("2025-12-15T17:28:01.808Z", "2025-12-15T17:28:01.830Z") == pytest.approx(22.0)
    assert t.duration_ms("", "2025-12-15T17:28:01.830Z") is None
    assert t.duration_ms("garbage", "2025-12-15T17:28:01.830Z") is None
    assert t.duration_ms("2025-12-15T17:28:01", "2025-12-15T17:28:01.830Z") is None  # naive minus aware


@pytest.mark.parametrize(
    "cell, text",
    [
        ({"cylinder": "f", "kpa": 65, "rpm": 2000}, "RPM=2000 KPA=65 Cyl=f"),
        ({"kpa_index": 1, "rpm_index": 0}, "RPM[0] KPA[1]"),
        ({"rpm": 2.0}, "RPM=2.0"),
        ({"zone": "x"}, "{'zone': 'x'}"),
        ([1, "rpm"], "[1, 'rpm']"),
        ({}, ""),
    ],
)
def test_cells_print_their_parts_in_a_fixed_order_or_as_a_python_dict(cell, text):
    assert t.format_cell(cell) == text


def test_values_print_floats_with_three_decimals_and_everything_else_as_python_str():
    values = {
        "limit": 10.0,
        "count": 10,
        "flag": True,
        "none": None,
        "name": "Spatial discontinuity",
        "short": [1, 2.0, "a"],
        "nested": {"x": 1.5, "y": "z", "z": None},
        "nan": math.nan,
    }
    assert t.format_values(values) == [
        "    limit: 10.000",
        "    count: 10",
        "    flag: True",
        "    none: None",
        "    name: Spatial discontinuity",
        "    short: [1, 2.0, 'a']",
        "    nested:",
        "      x: 1.5",
        "      y: z",
        "      z: None",
        "    nan: nan",
    ]


def test_a_list_longer_than_five_shows_its_length_and_the_first_three_items_with_str():
    cells = [{"rpm_index": 0, "kpa_index": 1, "original": 12.35, "clamped": 10.0}] * 6
    assert t.format_values({"cells": cells, "names": list("abcdef")}) == [
        "    cells: [6 items, showing first 3]",
        *["      - {'rpm_index': 0, 'kpa_index': 1, 'original': 12.35, 'clamped': 10.0}"] * 3,
        "    names: [6 items, showing first 3]",
        "      - a",
        "      - b",
        "      - c",
    ]


def test_action_counts_sort_by_count_and_keep_first_appearance_order_for_ties():
    actions = ["B", "A", "C", "A", "C", "D"]
    assert t.action_counts(actions) == [("A", 2), ("C", 2), ("B", 1), ("D", 1)]


def test_action_filter_is_a_case_insensitive_substring():
    assert t.action_matches({"action": "GRADIENT_LIMITING"}, "radient_l")
    assert t.action_matches({"action": "ANOMALY_DETECTED"}, "DETECT")
    assert not t.action_matches({"action": "CLAMPING_START"}, "afr")
    assert not t.action_matches({}, "UNKNOWN")  # a missing action filters as ""


def test_summary_rows_are_the_action_padded_to_thirty_and_the_count_to_five():
    summary = t.summary_block(
        run_id="R", generated_at="G", total=3, duration_ms=22.0, counts=[("AFR_CORRECTION", 98), ("X", 1)]
    )
    assert summary.splitlines() == [
        "=" * 70,
        "SESSION REPLAY SUMMARY",
        "=" * 70,
        "Run ID:          R",
        "Generated:       G",
        "Total Decisions: 3",
        "Duration:        22.0ms",
        "",
        "DECISIONS BY ACTION TYPE:",
        "  AFR_CORRECTION                    98",
        "  X                                  1",
        "=" * 70,
    ]


def test_summary_prints_na_for_a_missing_run_id_and_none_for_a_null_one():
    lines = t.replay_summary({"run_id": None, "decisions": [{"action": "A"}]}).splitlines()
    assert lines[3:7] == [
        "Run ID:          None",
        "Generated:       N/A",
        "Total Decisions: 1",
        "Duration:        N/A",
    ]


def test_an_empty_run_has_its_own_summary_text_but_the_timeline_says_nothing_matches():
    assert t.replay_summary({"decisions": []}) == "No decisions logged in this session."
    assert t.replay_summary({"decisions": None}) == "No decisions logged in this session."
    assert timeline({"decisions": []}) == "No decisions match the filter criteria."
    assert timeline({"decisions": None}, action="x") == "No decisions match the filter criteria."


# -- timeline structure and --limit ---------------------------------------------------------------

SMALL = {
    "run_id": "R",
    "generated_at": "G",
    "decisions": [dec(0, "X"), dec(5, "AB"), dec(10, "X"), dec(1500, "AC")],
}


def headers(text):
    return [line for line in text.splitlines() if line.startswith("[") or line.startswith("...")]


def test_blocks_follow_the_summary_after_two_blank_lines_and_are_separated_by_one():
    text = timeline(SMALL, action="x")
    summary = t.replay_summary(SMALL)
    assert text == (
        summary
        + "\n\n\n[1] 2025-12-15T17:28:01.000Z (+0.0ms)\n  ACTION: X"
        + "\n\n[2] 2025-12-15T17:28:01.010Z (+10.0ms)\n  ACTION: X"
    )


def test_elapsed_time_counts_from_the_first_decision_displayed_and_numbering_restarts_after_filtering():
    assert headers(timeline(SMALL, action="a")) == [
        "[1] 2025-12-15T17:28:01.005Z (+0.0ms)",
        "[2] 2025-12-15T17:28:02.500Z (+1.50s)",
    ]


def test_limit_zero_means_no_limit_and_no_trailer():
    assert timeline(SMALL, limit=0) == timeline(SMALL)


def test_the_trailer_counts_the_unfiltered_total_even_when_the_filter_kept_fewer():
    assert headers(timeline(SMALL, action="a", limit=3)) == [
        "[1] 2025-12-15T17:28:01.005Z (+0.0ms)",
        "[2] 2025-12-15T17:28:02.500Z (+1.50s)",
        "... and 1 more decisions (use --limit to see more)",
    ]
    assert timeline(SMALL, limit=3).endswith("\n\n... and 1 more decisions (use --limit to see more)")
    assert "more decisions" not in timeline(SMALL, limit=4)


def test_a_negative_limit_drops_the_last_decisions_and_reports_total_plus_limit():
    assert headers(timeline(SMALL, limit=-3)) == [
        "[1] 2025-12-15T17:28:01.000Z (+0.0ms)",
        "... and 7 more decisions (use --limit to see more)",
    ]


def test_a_negative_limit_larger_than_the_match_leaves_only_summary_and_trailer():
    text = timeline(SMALL, action="ab", limit=-1)
    assert text == t.replay_summary(SMALL) + "\n\n\n... and 5 more decisions (use --limit to see more)"


def test_nothing_matching_prints_only_the_no_match_line():
    assert timeline(SMALL, action="nothing") == "No decisions match the filter criteria."


def test_reason_cell_and_values_lines_appear_only_when_present_and_non_empty():
    data = {
        "decisions": [
            dec(0, "A", reason="", cell={}, values={}),
            dec(1, "B", reason="why", cell={"rpm": 1500, "kpa": 35, "cylinder": "r"}, values={"limit": 7.0}),
        ]
    }
    body = timeline(data).split("=" * 70 + "\n\n", 1)[1]
    assert body == (
        "\n[1] 2025-12-15T17:28:01.000Z (+0.0ms)\n  ACTION: A"
        "\n\n[2] 2025-12-15T17:28:01.001Z (+1.0ms)\n  ACTION: B\n  REASON: why"
        "\n  CELL:   RPM=1500 KPA=35 Cyl=r\n  VALUES:\n    limit: 7.000"
    )


def test_timeline_chunks_consume_a_generator_lazily():
    consumed = []

    def source():
        for i in range(1_000_000):
            consumed.append(i)
            yield dec(i % 1000)

    chunks = t.timeline_chunks("S", source(), total=1_000_000, limit=2)
    assert next(chunks) == "S\n"
    assert next(chunks).startswith("\n\n[1] ")  # the separator, then the block's own newline
    assert len(consumed) == 1
    rest = list(chunks)
    assert rest[-1] == "\n\n... and 999998 more decisions (use --limit to see more)"
    assert len(consumed) <= 3


def test_coalesce_joins_small_chunks_without_changing_the_text():
    chunks = ["ab", "c", "", "defg", "h"]
    assert list(t.coalesce(chunks, min_chars=3)) == ["abc", "defg", "h"]
    assert list(t.coalesce([], min_chars=3)) == []


def test_a_limit_without_the_total_is_refused():
    with pytest.raises(TypeError):
        list(t.timeline_chunks("S", [dec()], limit=1))


# -- graceful degradation where the real viewer crashes -----------------------------------------


def test_a_decision_without_a_timestamp_shows_na_instead_of_crashing():
    data = {"decisions": [dec(0), {"action": "B"}, {"timestamp": None, "action": "C"}, dec(2, "D")]}
    assert headers(timeline(data)) == [
        "[1] 2025-12-15T17:28:01.000Z (+0.0ms)",
        "[2] N/A (+N/A)",
        "[3] N/A (+N/A)",
        "[4] 2025-12-15T17:28:01.002Z (+2.0ms)",
    ]


def test_an_unparseable_timestamp_is_shown_raw_with_na_elapsed():
    data = {"decisions": [dec(0), {"timestamp": "yesterday", "action": "B"}]}
    assert headers(timeline(data))[1] == "[2] yesterday (+N/A)"


def test_when_the_first_shown_decision_has_no_timestamp_headers_have_no_elapsed_like_the_viewer():
    data = {"decisions": [{"action": "A"}, dec(3, "B")]}
    assert headers(timeline(data)) == ["[1] ", "[2] 2025-12-15T17:28:01.003Z"]
    assert "Duration:        N/A" in timeline(data)


def test_odd_actions_cells_values_and_decisions_degrade_to_python_str():
    data = {"decisions": [dec(0, None, cell="rpm", values=["x"]), dec(1, 7), "not an object"]}
    text = timeline(data)
    assert "  ACTION: None\n  CELL:   rpm\n  VALUES:\n    ['x']" in text
    assert "  7                                  1" in text
    assert "  UNKNOWN                            1" in text
    assert timeline(data, action="none") == "No decisions match the filter criteria."
    assert headers(timeline(data, action="7")) == ["[1] 2025-12-15T17:28:01.001Z (+0.0ms)"]
