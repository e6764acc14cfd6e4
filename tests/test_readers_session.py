import datetime as dt
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from viewer.readers import session
from viewer.readers.base import Limits, ReadError, RunInfo

COMBAT = "combat_session_sample.jsonl"
AMBUSH = "session_debt_auction_ambush.jsonl"
DATA = Path(__file__).parent / "data"
MIXED = DATA / "session_v12_mixed_zones.jsonl"  # v1.2 shapes: local naive times, llm_call at +00:00
NO_ROUND_START = DATA / "session_no_round_start.jsonl"  # v1.0 shapes, rounds 1-3, no round_start lines


@dataclass
class InfoWithWarnings(RunInfo):
    """A RunInfo that carries warnings, as ingest would put them on the run."""

    warnings: list = field(default_factory=list)


def read_path(path, **kwargs):
    info = RunInfo(kind="session")
    with open(path, "rb") as stream:
        return list(session.read(stream, info, limits=kwargs.pop("limits", Limits()), **kwargs)), info


def read_text(text, limits=None):
    info = RunInfo(kind="session")
    data = text.encode() if isinstance(text, str) else text
    return list(session.read(io.BytesIO(data), info, limits=limits or Limits())), info


def jsonl(*events):
    return "".join(json.dumps(e) + "\n" for e in events)


@pytest.fixture(scope="module")
def combat(samples_dir):
    return read_path(samples_dir / "session" / COMBAT)


@pytest.fixture(scope="module")
def combat_lines(samples_dir):
    return (samples_dir / "session" / COMBAT).read_text().splitlines()


def by_line(decisions, line):
    return next(d for d in decisions if d.line == line)


@pytest.mark.parametrize("name, count", [(COMBAT, 44), (AMBUSH, 123)])
def test_every_event_of_a_real_session_is_read(samples_dir, name, count):
    decisions, _ = read_path(samples_dir / "session" / name)
    assert len(decisions) == count


@pytest.mark.parametrize("name", [COMBAT, AMBUSH])
def test_each_decision_keeps_its_source_line_in_file_order(samples_dir, name):
    lines = (samples_dir / "session" / name).read_text().splitlines()
    decisions, _ = read_path(samples_dir / "session" / name)
    for i, (d, line) in enumerate(zip(decisions, lines, strict=True)):
        assert (d.seq, d.line) == (i, i + 1)
        assert d.raw == line
        record = json.loads(line)
        assert json.loads(d.raw) == record
        assert d.action == record["event_type"]


def test_values_are_the_event_without_event_type_ts_session_and_round(combat, combat_lines):
    decisions, _ = combat
    for d, line in zip(decisions, combat_lines):
        record = json.loads(line)
        for key in ("event_type", "ts", "session", "round"):
            record.pop(key, None)
        assert d.values == record
        assert list(d.values) == list(record)


def test_llm_call_round_null_takes_the_round_of_the_previous_round_start(combat, combat_lines):
    decisions, _ = combat
    assert json.loads(combat_lines[5])["round"] is None
    assert by_line(decisions, 6).action == "llm_call"
    assert by_line(decisions, 6).round == 1


def test_events_before_the_first_round_start_are_round_0_and_later_roundless_ones_take_the_last(combat):
    decisions, _ = combat
    assert [d.round for d in decisions[:3]] == [0, 0, 0]  # session_start, scenario, enemy_spawn
    assert [d.round for d in decisions if d.action == "round_start"] == [1, 2]
    assert [d.round for d in decisions if d.action in ("mission_debrief", "session_end")] == [2, 2, 2]


def test_a_missing_round_after_round_start_takes_that_round():
    decisions, _ = read_text(
        jsonl(
            {"event_type": "round_start", "round": 4},
            {"event_type": "clock_spawn", "clock_name": "Alarm", "max_ticks": 4},
            {"event_type": "llm_call", "round": None, "agent_id": "enemy_x"},
            {"event_type": "character_state", "round": 3},
        )
    )
    assert [d.round for d in decisions] == [4, 4, 4, 3]


def test_agent_is_the_first_present_id_field(combat):
    decisions, _ = combat
    agents = {d.action: d.agent for d in decisions}
    assert agents["session_start"] is None
    assert agents["round_start"] is None
    assert by_line(decisions, 3).agent == "enemy_grunt_8e2f1533"  # enemy_spawn: enemy_id
    assert by_line(decisions, 6).agent == "enemy_grunt_8e2f1533"  # llm_call: agent_id
    assert by_line(decisions, 8).agent == "player_01"  # action_declaration: player_id
    assert by_line(decisions, 13).agent == "player_02"  # action_resolution: "Drifter Sable", by its id
    assert by_line(decisions, 20).agent == "player_01"  # character_state: character_id


def test_agent_prefers_agent_id_and_skips_nulls():
    decisions, _ = read_text(
        jsonl(
            {"event_type": "x", "agent": "Name", "player_id": None, "agent_id": "player_02"},
            {"event_type": "x", "agent_id": None, "character_id": "player_03", "agent": "Name"},
            {"event_type": "x", "enemy_id": 7},
        )
    )
    assert [d.agent for d in decisions] == ["player_02", "player_03", "7"]


def test_llm_call_utc_times_are_moved_into_the_local_frame_of_their_neighbours(combat, combat_lines):
    decisions, _ = combat
    llm = by_line(decisions, 6)
    assert json.loads(combat_lines[5])["ts"] == "2025-10-31T20:32:37.680566"
    assert llm.ts == dt.datetime(2025, 10, 31, 15, 32, 37, 680566, tzinfo=dt.timezone.utc)
    assert "20:32:37.680566" in llm.raw
    for d in decisions:
        if d.action == "llm_call":
            before, after = decisions[d.seq - 1], decisions[d.seq + 1]
            assert before.ts - dt.timedelta(minutes=2) <= d.ts <= after.ts + dt.timedelta(minutes=2)


@pytest.mark.parametrize("name", [COMBAT, AMBUSH])
def test_the_timeline_never_goes_backwards_after_the_zone_fix(samples_dir, name):
    decisions, _ = read_path(samples_dir / "session" / name)
    times = [d.ts for d in decisions]
    assert None not in times
    assert times == sorted(times)


def test_llm_calls_before_any_local_event_are_held_back_and_shifted_too():
    decisions, _ = read_text(
        jsonl(
            {"event_type": "llm_call", "ts": "2025-10-31T20:30:00", "agent_id": "dm_01"},
            {"event_type": "session_start", "ts": "2025-10-31T15:30:05", "session": "s"},
            {"event_type": "llm_call", "ts": "2025-10-31T20:31:00", "agent_id": "dm_01"},
        )
    )
    assert [d.ts.hour for d in decisions] == [15, 15, 15]
    assert [d.seq for d in decisions] == [0, 1, 2]


def test_aware_llm_call_times_and_matching_naive_times_are_left_alone():
    decisions, _ = read_text(
        jsonl(
            {"event_type": "round_start", "ts": "2026-06-23T04:28:20", "round": 1},
            {"event_type": "llm_call", "ts": "2026-06-23T04:28:26.019352+00:00", "agent_id": "dm_01"},
            {"event_type": "llm_call", "ts": "2026-06-23T04:28:30", "agent_id": "dm_01"},
        )
    )
    assert decisions[1].ts == dt.datetime(2026, 6, 23, 4, 28, 26, 19352, tzinfo=dt.timezone.utc)
    assert decisions[2].ts == dt.datetime(2026, 6, 23, 4, 28, 30, tzinfo=dt.timezone.utc)


def test_run_info_comes_from_session_start(combat, combat_lines):
    _, info = combat
    start = json.loads(combat_lines[0])
    assert info.kind == "session"
    assert info.session_id == "5fe45c0e-760a-49f8-b051-78a8b6eebd04"
    assert info.random_seed == start["random_seed"] == 1006139188
    assert info.settings == start["config"]
    assert info.version == "1.0.0"
    assert info.git_commit == "631860b"


def test_session_id_comes_from_the_first_event_without_a_session_start():
    decisions, info = read_text(jsonl({"event_type": "round_start", "session": "abc", "round": 1}))
    assert len(decisions) == 1
    assert (info.session_id, info.random_seed, info.settings) == ("abc", None, {})


def test_reasons_describe_each_event_in_one_short_line(combat):
    decisions, _ = combat
    assert by_line(decisions, 1).reason == "session started, seed 1006139188"
    assert by_line(decisions, 2).reason == "Siege Breakout: Surrounded Safe House (Arcadia)"
    assert by_line(decisions, 3).reason == "Siege Perimeter (grunt) at Far-Enemy"
    assert by_line(decisions, 6).reason == "# TACTICAL DECISION"
    assert by_line(decisions, 7).reason == "Shift_2 (target: Extreme-Enemy)"
    assert by_line(decisions, 13).reason == (
        "Coordinate with Kael Dren on siege perimeter weaknesses: "
        "d20 13, total 33 vs DC 18: excellent (success)"
    )
    assert by_line(decisions, 20).reason == (
        "Enforcer Kael Dren: health 27/27, void 0, soulcredit 5, position Near-PC"
    )
    assert by_line(decisions, 22).reason == "2 actions, 1 succeeded"
    assert by_line(decisions, 19).reason.startswith("Drifter Sable moves with practiced precision")
    assert by_line(decisions, 42).reason.startswith("Enforcer Kael Dren: *leans back")
    for d in decisions:
        assert len(d.reason) <= 300
        assert "\n" not in d.reason


def test_metric_is_llm_tokens_or_the_roll_margin(combat):
    decisions, _ = combat
    assert by_line(decisions, 6).metric == 1807 + 379
    assert by_line(decisions, 13).metric == 15
    assert by_line(decisions, 17).metric == -14
    assert all(d.metric is None for d in decisions if d.action not in ("llm_call", "action_resolution"))
    assert all(d.cell is None for d in decisions)


def test_llm_call_text_holds_the_prompt_and_the_response(combat, combat_lines):
    decisions, _ = combat
    record = json.loads(combat_lines[5])
    text = by_line(decisions, 6).text
    assert text == "\n".join([m["content"] for m in record["prompt"]] + [record["response"]])
    assert all(d.text == "" for d in decisions if d.action != "llm_call")


def test_v1_2_lines_are_read_with_their_event_ids(tmp_path):
    ids = {"event_id": "c2b9a39f-1", "parent_event_id": "ebf34eaf-0", "correlation_id": None}
    events = [
        {"event_type": "session_start", **ids, "ts": "2026-06-22T23:28:04.100000", "session": "v12",
         "config": {"max_turns": 3}, "random_seed": 42, "git_commit": "01a26c8-dirty", "version": "1.2.0"},
        {"event_type": "enemy_spawn", "ts": "2026-06-22T23:28:04.784158", "session": "v12", "round": 0,
         "enemy_id": "enemy_grunt_6a782ba8", "enemy_name": "Freeborn Thug #1", "template": "Grunt",
         "faction": "Freeborn", "count": 3, "position": "Near-Enemy", **ids},
        {"event_type": "round_start", "ts": "2026-06-22T23:28:05", "session": "v12", "round": 1, **ids,
         "correlation_id": "round_1_0a1b2c3d"},
        {"event_type": "llm_call", "ts": "2026-06-23T04:28:26.019352+00:00", "session": "v12", "round": 0,
         "agent_id": "dm_01", "prompt": [{"role": "user", "content": "go"}], "response": "\n\nDone.\nMore",
         "tokens": {"input": 10, "output": 2.5}, **ids},
        {"event_type": "session_error", "ts": "2026-06-22T23:29:00", "session": "v12", "round": 1,
         "error_type": "llm", "error_message": "timeout after 30s", "recoverable": True, **ids},
        {"event_type": "npc_departure", "ts": "2026-06-22T23:29:01", "session": "v12",
         "narration": "The broker slips away.", **ids},
    ]
    path = tmp_path / "session_v12.jsonl"
    path.write_text(jsonl(*events))
    decisions, info = read_path(path)
    assert [d.action for d in decisions] == [e["event_type"] for e in events]
    assert (info.session_id, info.random_seed) == ("v12", 42)
    assert (info.version, info.git_commit) == ("1.2.0", "01a26c8-dirty")
    assert info.settings == {"max_turns": 3}
    assert decisions[0].values["event_id"] == "c2b9a39f-1"
    assert decisions[1].values["faction"] == "Freeborn"
    assert decisions[1].values["correlation_id"] is None
    assert [d.round for d in decisions] == [0, 0, 1, 0, 1, 1]
    llm = decisions[3]
    assert llm.ts == dt.datetime(2026, 6, 22, 23, 28, 26, 19352, tzinfo=dt.timezone.utc)  # 5 h: local time
    assert (llm.reason, llm.metric, llm.text) == ("Done.", 12.5, "go\n\n\nDone.\nMore")
    assert decisions[4].reason == "llm: timeout after 30s (recoverable)"
    assert decisions[5].reason == "The broker slips away."
    assert isinstance(llm.values["tokens"]["output"], float)
    assert isinstance(llm.values["tokens"]["input"], int)


def test_a_broken_line_refuses_the_file_naming_that_line(samples_dir):
    with pytest.raises(ReadError) as caught:
        read_path(samples_dir / "bad" / "broken_line_3_session.jsonl")
    assert caught.value.line == 3
    assert caught.value.message.startswith("invalid JSON: ")


def test_lines_that_are_arrays_are_refused_at_line_1(samples_dir):
    with pytest.raises(ReadError) as caught:
        read_path(samples_dir / "bad" / "array_lines_session.jsonl")
    assert (caught.value.line, caught.value.message) == (1, "line is not a JSON object (got a list)")


def test_random_bytes_are_refused_at_line_1_as_not_text(samples_dir):
    with pytest.raises(ReadError) as caught:
        read_path(samples_dir / "bad" / "random_binary.jsonl")
    assert caught.value.line == 1
    assert caught.value.message.startswith(("not UTF-8", "invalid JSON"))


def test_bytes_that_are_not_utf8_are_named_with_their_column():
    with pytest.raises(ReadError) as caught:
        read_text(b'{"event_type": "x"}\n{"event_type": "caf\xe9"}\n')
    assert (caught.value.line, caught.value.message) == (2, "not UTF-8 (byte 0xe9 at column 20)")


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"ts": "2025-10-31T15:32:23"}', "missing event_type"),
        ('{"event_type": 3}', "missing event_type"),
        ('"just a string"', "line is not a JSON object (got a string)"),
        ("null", "line is not a JSON object (got null)"),
        ('{"event_type": "x", "ts": "yesterday"}', "ts 'yesterday' is not an ISO-8601 time"),
        ('{"event_type": "x", "v": ' + "[" * 5000 + "]" * 5000 + "}", "values nested too deeply"),
    ],
)
def test_a_bad_event_is_refused_with_its_line_number(line, message):
    with pytest.raises(ReadError) as caught:
        read_text('{"event_type": "ok"}\n\n' + line + "\n")
    assert (caught.value.line, caught.value.message) == (3, message)


def test_an_event_without_ts_has_no_time():
    decisions, _ = read_text(jsonl({"event_type": "x"}, {"event_type": "y", "ts": None}))
    assert [d.ts for d in decisions] == [None, None]


def test_blank_lines_count_for_line_numbers_but_not_for_seq():
    decisions, _ = read_text('\n{"event_type": "a"}\n   \n\n{"event_type": "b"}')
    assert [(d.seq, d.line, d.action) for d in decisions] == [(0, 2, "a"), (1, 5, "b")]


def test_a_carriage_return_stays_in_raw_but_not_in_the_parse():
    decisions, _ = read_text('{"event_type": "a"}\r\n{"event_type": "b"}\r\n')
    assert [d.raw for d in decisions] == ['{"event_type": "a"}\r', '{"event_type": "b"}\r']
    assert [d.action for d in decisions] == ["a", "b"]


def test_nan_and_infinity_from_python_writers_are_read():
    line = '{"event_type": "action_resolution", "roll": {"margin": NaN}, "score": Infinity, "n": 1.0}'
    decisions, _ = read_text(line + "\n")
    d = decisions[0]
    assert d.raw == line
    assert math.isnan(json.loads(d.raw)["roll"]["margin"])
    assert d.values == {"roll": {"margin": None}, "score": None, "n": 1.0}
    assert d.metric is None


def test_numbers_keep_int_or_float_as_written_even_beyond_64_bits():
    decisions, _ = read_text('{"event_type": "x", "a": 1, "b": 1.0, "c": 123456789012345678901234567890}\n')
    values = decisions[0].values
    assert [type(values[k]) for k in "abc"] == [int, float, int]
    assert values["c"] == 123456789012345678901234567890


def test_a_line_longer_than_the_limit_is_refused():
    short = '{"event_type": "a"}'
    long = json.dumps({"event_type": "b", "pad": "x" * 200})
    assert len(read_text(short + "\n", limits=Limits(max_line_bytes=len(short)))[0]) == 1
    with pytest.raises(ReadError) as caught:
        read_text(f"{short}\n{long}\n", limits=Limits(max_line_bytes=100))
    assert caught.value.line == 2
    assert caught.value.message == "line is longer than 100 bytes (REPLAYWEB_MAX_LINE_BYTES)"


def test_the_file_is_read_lazily_line_by_line(samples_dir):
    path = samples_dir / "session" / AMBUSH
    with open(path, "rb") as stream:
        first = next(session.read(stream, RunInfo(kind="session"), limits=Limits()))
        assert first.action == "session_start"
        assert stream.tell() < path.stat().st_size / 4


def test_hostile_strings_are_kept_intact(samples_dir):
    path = samples_dir / "hostile" / "xss_session.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    decisions, info = read_path(path)
    assert len(decisions) == len(records) == 12
    assert info.session_id == '<script>alert("xss-session")</script>'
    assert info.settings == {"session_name": '<img src=x onerror=alert("xss-img")>'}
    for d, record in zip(decisions, records):
        assert json.loads(d.raw) == record
        if "agent_id" in record:
            assert d.agent == record["agent_id"]
            assert d.text == "\n".join([m["content"] for m in record["prompt"]] + [record["response"]])
    assert '"quoted, with comma"\nand newline' in [d.agent for d in decisions]


# --- one time frame for every stamp (issue 13, point 1) -------------------------------------------


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("path", [MIXED, NO_ROUND_START])
def test_every_llm_call_lies_between_its_neighbours_whatever_zone_it_was_written_in(path):
    decisions, _ = read_path(path)
    for d in decisions:
        if d.action == "llm_call" and 0 < d.seq < len(decisions) - 1:
            assert decisions[d.seq - 1].ts <= d.ts <= decisions[d.seq + 1].ts


@pytest.mark.parametrize("path", [MIXED, NO_ROUND_START])
def test_times_never_go_backwards_within_a_round(path):
    decisions, _ = read_path(path)
    rounds = {}
    for d in decisions:
        rounds.setdefault(d.round, []).append(d.ts)
    for times in rounds.values():
        assert times == sorted(times)
    assert [d.ts for d in decisions] == sorted(d.ts for d in decisions)


def test_a_v1_2_llm_call_at_utc_is_moved_into_the_local_time_of_its_neighbours():
    decisions, _ = read_path(MIXED)
    llm = by_line(decisions, 4)
    assert json.loads(llm.raw)["ts"] == "2026-06-23T04:28:25.984000+00:00"  # the line keeps what was written
    assert llm.ts == utc(2026, 6, 22, 23, 28, 25, 984000)
    assert by_line(decisions, 3).ts == utc(2026, 6, 22, 23, 28, 4, 784000)  # local times stay as written
    last = decisions[-1].ts - decisions[0].ts
    assert dt.timedelta(minutes=1) < last < dt.timedelta(minutes=3)  # the duration is the session's, not 5 h


def test_a_v1_0_writer_east_of_utc_has_its_llm_calls_moved_forward():
    decisions, _ = read_path(NO_ROUND_START)
    llm = by_line(decisions, 2)
    assert json.loads(llm.raw)["ts"] == "2025-11-02T06:15:09.750000"
    assert llm.ts == utc(2025, 11, 2, 9, 15, 9, 750000)


def test_naive_local_naive_utc_and_offset_times_in_one_file_share_one_frame():
    decisions, _ = read_text(
        jsonl(
            {"event_type": "round_start", "ts": "2026-03-01T10:00:00", "round": 1},
            {"event_type": "llm_call", "ts": "2026-03-01T15:00:05", "agent_id": "dm_01"},  # naive UTC
            {"event_type": "action_resolution", "ts": "2026-03-01T10:00:06", "round": 1},
            {"event_type": "llm_call", "ts": "2026-03-01T10:00:07-05:00", "agent_id": "dm_01"},  # with offset
            {"event_type": "character_state", "ts": "2026-03-01T10:00:08", "round": 1},
            {"event_type": "llm_call", "ts": "2026-03-01T15:00:09+00:00", "agent_id": "dm_01"},
        )
    )
    assert [d.ts.second for d in decisions] == [0, 5, 6, 7, 8, 9]
    assert {d.ts.hour for d in decisions} == {10}


def test_a_stamp_with_an_offset_before_any_local_event_waits_for_the_next_one():
    decisions, _ = read_text(
        jsonl(
            {"event_type": "llm_call", "ts": "2026-06-23T04:28:00+00:00", "agent_id": "dm_01"},
            {"event_type": "session_start", "ts": "2026-06-22T23:28:01", "session": "s"},
        )
    )
    assert [d.ts for d in decisions] == [utc(2026, 6, 22, 23, 28), utc(2026, 6, 22, 23, 28, 1)]


def test_a_gap_of_more_than_14_hours_is_not_a_zone_and_moves_nothing():
    decisions, _ = read_text(
        jsonl(
            {"event_type": "round_start", "ts": "2026-03-01T10:00:00", "round": 1},
            {"event_type": "llm_call", "ts": "2026-03-02T10:00:00+00:00", "agent_id": "dm_01"},
        )
    )
    assert decisions[1].ts == utc(2026, 3, 2, 10)


def test_what_was_moved_and_by_how_much_is_recorded_on_the_run():
    info = InfoWithWarnings(kind="session")
    with open(MIXED, "rb") as stream:
        list(session.read(stream, info, limits=Limits()))
    assert info.warnings == [
        (
            "6 times written with a UTC offset were moved by -05:00 into the local time of the other events "
            "(the lines keep what was written)."
        )
    ]
    info = InfoWithWarnings(kind="session")
    with open(NO_ROUND_START, "rb") as stream:
        list(session.read(stream, info, limits=Limits()))
    assert info.warnings == [
        (
            "7 llm_call times written in UTC without a zone were moved by +03:00 into the local time of the "
            "other events (the lines keep what was written)."
        )
    ]


def test_nothing_is_recorded_when_no_time_moved():
    info = InfoWithWarnings(kind="session")
    text = jsonl(
        {"event_type": "round_start", "ts": "2026-03-01T10:00:00"},
        {"event_type": "llm_call", "ts": "2026-03-01T10:00:01"},
    )
    list(session.read(io.BytesIO(text.encode()), info, limits=Limits()))
    assert info.warnings == []


# --- one agent per character (point 2) ------------------------------------------------------------


def test_the_debt_auction_has_one_agent_per_character(samples_dir):
    decisions, info = read_path(samples_dir / "session" / AMBUSH)
    assert {d.agent for d in decisions} == {None, "dm_01", "player_01", "player_02", "player_03"}
    assert info.agents == {"player_01": "Riven Ashglow", "player_02": "Ash Vex", "player_03": "Recursionist Vale"}
    resolutions = [d for d in decisions if d.action == "action_resolution"]
    assert [d.agent for d in resolutions][:3] == ["player_02", "player_03", "player_01"]
    assert json.loads(resolutions[0].raw)["agent"] == "Ash Vex"  # raw keeps the name


def test_every_event_about_a_character_carries_its_id():
    decisions, info = read_path(MIXED)
    agents = {d.line: d.agent for d in decisions}
    assert agents[7] == "player_02"  # action_resolution "Ash Vex" before any line pairs it: config order
    assert agents[18] == "player_01"  # action_resolution "Enforcer Kael Dren"
    assert agents[19] == "player_02"  # combat_action: attacker.id
    assert agents[32] == "npc_broker_5e6f"  # npc_departure: npc_id
    assert agents[35] == "player_02"  # void_change "Ash Vex"
    assert (agents[36], agents[37]) == ("player_01", "player_02")  # mission_debrief by character
    assert agents[31] == "Broker Ilse"  # no line had paired this name yet: the name is kept
    assert info.agents == {
        "enemy_grunt_1a2b3c4d": "Freeborn Thug #1",
        "player_01": "Enforcer Kael Dren",
        "player_02": "Ash Vex",
        "npc_broker_5e6f": "Broker Ilse",
    }


def test_a_stated_pair_overrides_the_config_order_and_ids_in_config_are_used():
    decisions, info = read_text(
        jsonl(
            {"event_type": "session_start", "config": {"agents": {"players": [
                {"name": "Mira Seln"}, {"name": "Echo"}, {"name": "Ash", "agent_id": "player_ash"}]}}},
            {"event_type": "character_state", "character_id": "player_01", "character_name": "Echo"},
            {"event_type": "action_resolution", "agent": "Echo"},
            {"event_type": "action_resolution", "agent": "Mira Seln"},
            {"event_type": "mission_debrief", "character": "Ash"},
        )
    )
    assert [d.agent for d in decisions[2:]] == ["player_01", "Mira Seln", "player_ash"]
    assert info.agents == {"player_01": "Echo", "player_ash": "Ash"}


def test_a_name_two_ids_claim_stays_a_name():
    decisions, info = read_text(
        jsonl(
            {"event_type": "enemy_spawn", "enemy_id": "enemy_a", "enemy_name": "Guard"},
            {"event_type": "enemy_spawn", "enemy_id": "enemy_b", "enemy_name": "Guard"},
            {"event_type": "action_resolution", "agent": "Guard"},
        )
    )
    assert decisions[2].agent == "Guard"
    assert info.agents == {"enemy_a": "Guard", "enemy_b": "Guard"}


# --- rounds without round_start (point 3) -------------------------------------------------------


def test_without_round_start_an_event_without_a_round_takes_the_highest_round_seen():
    decisions, _ = read_path(NO_ROUND_START)
    rounds = {d.line: d.round for d in decisions}
    assert rounds[1] == 0  # session_start, before any round
    assert rounds[11] == 2  # clock_spawn in round 2
    assert rounds[17] == 0  # a DM llm_call written with round 0 keeps it...
    assert (rounds[18], rounds[19]) == (3, 3)  # ...and does not pull the debrief and session_end back


# --- readable reasons for v1.2 events (point 4) ---------------------------------------------------


@pytest.mark.parametrize(
    "line, reason",
    [
        (13, "dm_01: structured output ok, 1 validation issue, completeness 85%"),
        (14, "2 actions assessed, 1 change: player_01: DC 20 -> 18 (point-blank)"),
        (15, "player_02: target Thug → enemy_grunt_1a2b3c4d (mechanical, name_instead_of_id)"),
        (16, ("ActionResolution from dm_01 failed validation (attempt 1/3): UnexpectedModelBehavior: "
              "Exceeded maximum retries (1) for output validation")),
        (23, ("Enforcer Kael Dren: 1 story beat, 1 place; latest: Combat [success] vs Freeborn Thug #1: "
              "stunned him, 8 dmg")),
        (29, "NPCs spawned 1, enemies converted 1: Thug #1 surrendered at low health."),
        (30, "Freeborn Thug #1: enemy → npc (surrender)"),
        (32, "Broker Ilse departed (story_advanced)"),
        (33, "Ash Vex could not buy Med Kit from Field Medic Jara: Insufficient currency: need 5 Drip, have 4 Drip"),
        (34, "llm_error: Request timed out after 60s (TimeoutError, recoverable)"),
        (38, "Enemy Reinforcements removed (session_end) at 1/10"),
        (39, "party: Enforcer Kael Dren, Ash Vex (defeated); enemies 1, clocks 1"),
    ],
)
def test_v1_2_events_get_a_readable_reason(line, reason):
    decisions, _ = read_path(MIXED)
    assert by_line(decisions, line).reason == reason


def test_an_unknown_event_gets_a_reason_from_its_fields():
    decisions, _ = read_text(
        jsonl(
            {"event_type": "seed_attunement", "round": 2, "agent_id": "player_01", "seed": "raw", "amount": 3,
             "event_id": "e1", "parent_event_id": None, "correlation_id": "round_2_x"},
            {"event_type": "morale_check", "round": 2, "data": {"character": "Thug", "result": "flee", "roll": {"d20": 4}}},
        )
    )
    assert decisions[0].reason == "agent_id: player_01, seed: raw, amount: 3"
    assert decisions[1].reason == "character: Thug, result: flee, roll: 1 item"


def test_v1_0_structured_output_metrics_are_described(combat):
    decisions, _ = combat
    assert by_line(decisions, 11).reason == "dm_01: structured output ok, completeness 43%"
