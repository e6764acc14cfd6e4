"""Kind profiles (viewer/kinds): what makes each log kind a kind, registered once."""
import json

from viewer import display, kinds


def test_a_dynoai_record_loses_only_its_file_indentation():
    raw = '{\n      "action": "X",\n      "values": {\n        "limit": 10.0\n      }\n    }'
    text = kinds.profile("dynoai").record_json(raw)
    assert text == '{\n  "action": "X",\n  "values": {\n    "limit": 10.0\n  }\n}'
    assert json.loads(text) == json.loads(raw)


def test_a_study_record_drops_the_tab_and_server_time():
    raw = '{"client": {"event": "keystroke"}}\t2024-03-05T18:22:41.223400'
    assert kinds.profile("study").record_json(raw) == '{"client": {"event": "keystroke"}}'
    assert kinds.profile("study").raw_suffix(raw) == "2024-03-05T18:22:41.223400"


def test_written_values_come_from_the_record_in_stored_key_order():
    record = display.parse_as_written('{"event_type": "x", "ts": "t", "margin": 5.0, "agent": "a"}')
    stored = {"margin": 5, "agent": "a"}
    assert kinds.profile("session").written_values(record, stored) == {"margin": "5.0", "agent": "a"}
    study = display.parse_as_written('{"client": {"rev": 2.0, "event": "e"}}')
    stored = {"rev": 2, "server_time": "s"}
    assert kinds.profile("study").written_values(study, stored) == {"rev": "2.0", "server_time": "s"}


