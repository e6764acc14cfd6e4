import datetime as dt
import gzip
import io
import json
import re

import pytest

from viewer.readers import study
from viewer.readers.base import Limits, ReadError, RunInfo

PLAIN = "2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"
GZIPPED = "2024-03-05T18-40-02.114002-0000000008-gc-104523-41233.study.log.gz"
EMPTY = "2024-03-05T19-02-11.000001-0000000009-GUEST-41233.study.log"
SENTINEL = "[Empty log file -- no events captured]"
PSEUDONYM = re.compile(r"user-[a-z]+-[a-z]+-[0-9a-f]{4}")


def open_log(path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_path(path, **kwargs):
    info = RunInfo(kind="study")
    with open_log(path) as stream:
        return list(study.read(stream, info, limits=Limits(), **kwargs)), info


def source_lines(path):
    with open_log(path) as stream:
        lines = stream.read().decode().split("\n")
    return [line for line in lines if line.strip() and line.strip() != SENTINEL]


def record_of(raw):
    return json.loads(raw.rpartition("\t")[0] or raw)


def read_text(text, **kwargs):
    info = RunInfo(kind="study")
    limits = kwargs.pop("limits", Limits())
    return list(study.read(io.BytesIO(text.encode()), info, limits=limits, **kwargs)), info


def line(event, server_time="2024-03-05T18:22:41.223400"):
    text = json.dumps(event, sort_keys=True)
    return text + "\t" + server_time if server_time else text


def auth(user_id, safe_user_id=None):
    return {"providence": "ls", "sec": "authenticated", "user_id": user_id,
            "safe_user_id": safe_user_id or user_id}


def keystroke(user, key="a", **client):
    return {
        "client": {"auth": auth(user), "event": "keystroke", "keystroke": {"key": key, "type": "keydown"},
                   "object": {"title": "Essay draft"}, "source": "org.mitros.writing_analytics", **client},
        "metadata": {"auth": auth(user), "source": "org.mitros.writing_analytics"},
        "server": {"time": 1709662961.2231},
    }


@pytest.fixture(scope="module", params=[PLAIN, GZIPPED])
def sample(request, samples_dir):
    path = samples_dir / "study" / request.param
    decisions, info = read_path(path)
    return path, decisions, info


@pytest.mark.parametrize("name", [PLAIN, GZIPPED])
def test_every_event_of_a_study_log_is_read(samples_dir, name):
    path = samples_dir / "study" / name
    decisions, _ = read_path(path, keep_user_ids=True)
    assert len(decisions) == len(source_lines(path)) > 0


def test_a_log_holding_only_the_empty_sentinel_is_an_empty_run(samples_dir):
    decisions, info = read_path(samples_dir / "study" / EMPTY)
    assert decisions == []
    assert (info.source, info.user_label, info.pseudonyms) == ("", "", {})


@pytest.mark.parametrize("name", [PLAIN, GZIPPED])
def test_with_keep_user_ids_raw_is_the_exact_line(samples_dir, name):
    path = samples_dir / "study" / name
    decisions, info = read_path(path, keep_user_ids=True)
    lines = source_lines(path)
    for i, (d, text) in enumerate(zip(decisions, lines, strict=True)):
        assert (d.seq, d.line, d.raw) == (i, i + 1, text)
        record = record_of(text)
        assert d.action == record["client"]["event"]
        assert d.agent == record["client"]["auth"]["safe_user_id"]
    assert info.pseudonyms == {}
    assert info.user_label == decisions[0].agent


def test_each_decision_is_its_line_with_the_user_replaced_by_a_pseudonym(sample):
    path, decisions, info = sample
    lines = source_lines(path)
    [(real, fake)] = info.pseudonyms.items()
    assert PSEUDONYM.fullmatch(fake)
    assert real.startswith("gc-")
    for d, text in zip(decisions, lines, strict=True):
        assert d.raw == text.replace(real, fake)
        assert record_of(d.raw) == record_of(text.replace(real, fake))
        assert d.agent == fake


def test_no_real_user_id_is_left_in_raw_values_agent_or_reason(sample):
    _, decisions, info = sample
    real = next(iter(info.pseudonyms))
    for d in decisions:
        assert real not in d.raw
        assert real not in json.dumps(d.values)
        assert real not in d.agent + d.reason
    assert info.user_label == info.pseudonyms[real]


def test_pseudonyms_are_random_per_read_and_not_derived_from_the_id(samples_dir):
    path = samples_dir / "study" / PLAIN
    names = {read_path(path)[1].pseudonyms["gc-683268451013967869"] for _ in range(3)}
    assert len(names) == 3


def test_info_source_and_fields_of_a_real_log(sample):
    _, decisions, info = sample
    assert info.source == "org.mitros.writing_analytics"
    first = decisions[0]
    assert first.action == "keystroke"
    assert first.reason == f"keydown {record_of(first.raw)['client']['keystroke']['key']!r} in Essay draft"
    suffix = first.raw.rpartition("\t")[2]
    assert first.ts == dt.datetime.fromisoformat(suffix).replace(tzinfo=dt.timezone.utc)
    assert first.values["server_time"] == suffix
    assert "auth" not in first.values and "event" not in first.values
    saves = [d for d in decisions if d.action == "google_docs_save"]
    rev = record_of(saves[0].raw)["client"]["rev"]
    assert saves[0].reason == f"save rev {rev} of doc 1AbCdEfGh"
    assert all((d.round, d.cell, d.metric) == (None, None, None) for d in decisions)


def test_file_order_is_kept_even_when_times_go_backwards():
    later = line(keystroke("ls-ann", "b"), "2024-03-05T18:22:42")
    earlier = line(keystroke("ls-ann", "a"), "2024-03-05T18:22:41")
    text = later + "\n" + earlier
    decisions, _ = read_text(text)
    assert [d.reason for d in decisions] == ["keydown 'b' in Essay draft", "keydown 'a' in Essay draft"]
    assert decisions[0].ts > decisions[1].ts


def test_values_are_the_client_event_without_auth_and_event_plus_the_server_time():
    event = keystroke("ls-ann", frameindex=-1)
    decisions, _ = read_text(line(event, "2024-03-05T18:22:41"), keep_user_ids=True)
    expected = {k: v for k, v in event["client"].items() if k not in ("auth", "event")}
    assert decisions[0].values == {**expected, "server_time": "2024-03-05T18:22:41"}


def test_the_same_id_gets_the_same_pseudonym_and_other_ids_another():
    text = "\n".join(line(keystroke(user)) for user in ["ls-ann", "ls-bob", "ls-ann"])
    decisions, info = read_text(text)
    ann, bob, ann_again = (d.agent for d in decisions)
    assert ann == ann_again != bob
    assert info.pseudonyms == {"ls-ann": ann, "ls-bob": bob}
    assert info.user_label == ann


def test_both_user_ids_and_the_chrome_identity_are_scrubbed():
    event = keystroke("x")
    event["client"]["auth"] = auth("ann@school.example", "ls-ann%40school.example")
    event["metadata"]["auth"] = auth("ann@school.example", "ls-ann%40school.example")
    event["metadata"]["chrome_identity"] = {"email": "ann.lee@gmail.example", "id": "104523456789012345678"}
    event["client"]["object"]["url"] = "https://docs.example/?u=ann@school.example&g=104523456789012345678"
    decisions, info = read_text(line(event))
    d = decisions[0]
    name = info.pseudonyms["ls-ann%40school.example"]
    assert d.agent == name
    assert info.pseudonyms == {
        "ls-ann%40school.example": name,
        "ann@school.example": name,
        "104523456789012345678": name,
        "ann.lee@gmail.example": f"{name}@example.invalid",
    }
    for real in info.pseudonyms:
        assert real not in d.raw and real not in json.dumps(d.values)
    record = record_of(d.raw)
    assert record["metadata"]["chrome_identity"] == {"email": f"{name}@example.invalid", "id": name}
    assert d.values["object"]["url"] == f"https://docs.example/?u={name}&g={name}"


def test_an_id_written_with_json_escapes_is_still_replaced():
    decisions, info = read_text(line(keystroke("ls-zoë/\"q\"")))
    name = info.pseudonyms["ls-zoë/\"q\""]
    assert "zo" not in decisions[0].raw
    assert record_of(decisions[0].raw)["client"]["auth"]["user_id"] == name


def test_an_id_that_also_matches_json_syntax_is_replaced_only_inside_strings():
    event = keystroke("17", key="17")
    decisions, info = read_text(line(event))
    d = decisions[0]
    name = info.pseudonyms["17"]
    record = record_of(d.raw)
    assert record["server"]["time"] == 1709662961.2231
    assert record["client"]["keystroke"]["key"] == name
    assert d.reason == f"keydown {name!r} in Essay draft"


def test_events_without_a_user_are_guest_and_guest_is_not_pseudonymized():
    anonymous = keystroke("x")
    del anonymous["client"]["auth"], anonymous["metadata"]["auth"]
    guest = keystroke("GUEST")
    decisions, info = read_text(line(anonymous) + "\n" + line(guest))
    assert [d.agent for d in decisions] == ["GUEST", "GUEST"]
    assert info.pseudonyms == {}
    assert decisions[1].raw == line(guest)


def test_the_user_falls_back_from_client_auth_to_the_server_metadata():
    event = keystroke("x")
    del event["client"]["auth"]
    event["metadata"]["auth"] = {"user_id": "ls-meta"}
    decisions, _ = read_text(line(event), keep_user_ids=True)
    assert decisions[0].agent == "ls-meta"


def test_without_a_tab_the_time_comes_from_server_time_then_the_client_iso_time():
    with_server = keystroke("ls-ann")
    without_server = keystroke("ls-ann", metadata={"iso_ts": "2024-03-05T18:22:40.512Z"})
    del without_server["server"]
    neither = keystroke("ls-ann")
    del neither["server"]
    text = "\n".join(line(e, None) for e in (with_server, without_server, neither))
    decisions, _ = read_text(text)
    utc = dt.timezone.utc
    assert decisions[0].ts == dt.datetime.fromtimestamp(1709662961.2231, utc)
    assert decisions[1].ts == dt.datetime(2024, 3, 5, 18, 22, 40, 512000, tzinfo=utc)
    assert decisions[2].ts is None
    assert decisions[0].values["server_time"] is None


def test_the_sentinel_and_blank_lines_are_skipped_but_counted():
    text = f"{SENTINEL}\n\n{line(keystroke('ls-ann'))}\r\n"
    decisions, _ = read_text(text, keep_user_ids=True)
    assert [(d.seq, d.line) for d in decisions] == [(0, 3)]
    assert decisions[0].raw == line(keystroke("ls-ann")) + "\r"
    assert decisions[0].values["server_time"] == "2024-03-05T18:22:41.223400"


def test_source_falls_back_to_the_server_metadata():
    event = keystroke("ls-ann")
    del event["client"]["source"]
    _, info = read_text(line(event))
    assert info.source == "org.mitros.writing_analytics"


@pytest.mark.parametrize(
    "text, message",
    [
        (line({"client": {"auth": {}}}), "missing client.event"),
        (line({"client": "keystroke"}), "missing client.event"),
        (line({"event": "keystroke"}), "missing client.event"),
        ("[1, 2]\t2024-03-05T18:22:41", "line is not a JSON object (got a list)"),
        ('{"client": \t2024-03-05T18:22:41', "invalid JSON: Expecting value (column 12)"),
        (line(keystroke("ls-ann"), "not a time"), "server time 'not a time' is not an ISO-8601 time"),
    ],
)
def test_a_bad_line_refuses_the_file_naming_the_line(text, message):
    with pytest.raises(ReadError) as caught:
        read_text(line(keystroke("ls-ann")) + "\n" + text + "\n")
    assert (caught.value.line, caught.value.message) == (2, message)


def test_a_line_longer_than_the_limit_is_refused():
    text = line(keystroke("ls-ann"))
    assert len(read_text(text, limits=Limits(max_line_bytes=len(text)))[0]) == 1
    with pytest.raises(ReadError) as caught:
        read_text(text, limits=Limits(max_line_bytes=len(text) - 1))
    assert caught.value.line == 1
    assert caught.value.message == f"line is longer than {len(text) - 1:,} bytes (REPLAYWEB_MAX_LINE_BYTES)"
