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




# -- a made-up kind goes through every face with nothing but its own module -----------------------

import io  # noqa: E402

import pytest  # noqa: E402

import tally_kind  # noqa: E402
from viewer.ingest import Source, run_ingest  # noqa: E402

TALLY_A = "#tally v1\n0.000 ann open door=front\n1.500 bob knock count=3\n2.250 ann knock count=5\n4.000 bob close\n"
TALLY_B = "#tally v1\n0.000 ann open door=back\n1.500 bob knock count=3\n2.250 ann knock count=9\n"


@pytest.fixture
def tally(db):
    profile = tally_kind.register()
    yield profile
    kinds.unregister(profile.name)


def import_tally(user, text, name):
    [result] = run_ingest(owner=user, sources=[Source(name=name, fileobj=io.BytesIO(text.encode()))])
    assert result.status == "imported", result.message
    return result.run


def test_a_registered_kind_is_detected_by_its_own_sniff_and_read_by_its_own_reader(tally, user):
    run = import_tally(user, TALLY_A, "doors.tally")
    assert run.kind == "tally" and run.get_kind_display() == "Tally log"
    assert list(run.decisions.values_list("action", "agent", "t_ms")) == [
        ("open", "ann", 0.0), ("knock", "bob", 1500.0), ("knock", "ann", 2250.0), ("close", "bob", 4000.0)]


def test_a_registered_kind_is_listed_shown_and_filtered_in_its_own_words(tally, user, client_in):
    run = import_tally(user, TALLY_A, "doors.tally")
    assert "doors.tally" in client_in.get("/").content.decode()
    page = client_in.get(f"/runs/{run.pk}/").content.decode()
    assert "Tally log" in page and '<th scope="col">Counter</th>' in page and "Tally contains" in page
    table = client_in.get(f"/runs/{run.pk}/?action=knock&agent=ann&v=count>4",
                          headers={"HX-Request": "true", "HX-Target": "run-view"}).content.decode()
    assert 'data-seq="2"' in table and 'data-seq="1"' not in table and 'data-seq="0"' not in table
    api = client_in.get(f"/api/runs/{run.pk}/decisions?action=knock").json()
    assert [d["seq"] for d in api["items"]] == [1, 2] and api["items"][0]["agent"] == "bob"
    detail = client_in.get(f"/runs/{run.pk}/decisions/1/").content.decode()
    assert "<dt>Counter</dt>" in detail and "bob knocks" in detail


def test_a_registered_kind_replays_diffs_and_exports_through_the_same_code(tally, user, client_in):
    a = import_tally(user, TALLY_A, "a.tally")
    b = import_tally(user, TALLY_B, "b.tally")
    replay = client_in.get(f"/api/runs/{a.pk}/replay?step=3")
    if replay.status_code == 202:  # the replay index is built in the background
        replay = client_in.get(f"/api/runs/{a.pk}/replay?step=3")
    assert replay.status_code == 200, replay.content
    assert client_in.get(f"/runs/{a.pk}/replay/?step=2").status_code == 200
    assert client_in.get(f"/runs/{a.pk}/cells/").status_code == 200
    diff = client_in.get(f"/api/diff?a={a.pk}&b={b.pk}").json()
    assert diff["first_divergence"]["a_seq"] == 0 and not diff["identical"]  # door=front / door=back
    page = client_in.get(f"/diff/?a={a.pk}&b={b.pk}")
    assert page.status_code == 200 and "a.tally" in page.content.decode()
    jsonl = b"".join(client_in.get(f"/runs/{a.pk}/export.jsonl").streaming_content).decode()
    assert jsonl == "".join(line + "\n" for line in TALLY_A.splitlines()[1:])
    csv = b"".join(client_in.get(f"/runs/{a.pk}/export.csv?agent=bob").streaming_content).decode()
    assert csv.count("\n") == 3 and ",knock," in csv and ",close," in csv
