import io
import json

import pytest

from viewer.readers import dynoai
from viewer.readers.base import Limits, ReadError, RunInfo


def read(path_or_bytes, limits=None):
    stream = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb")
    info = RunInfo(kind="dynoai")
    with stream:
        decisions = list(dynoai.read(stream, info, limits=limits or Limits()))
    return info, decisions


def test_the_real_sample_reads_119_decisions_with_its_header(samples_dir):
    info, decisions = read(samples_dir / "dynoai/real_sample/session_replay.json")
    assert len(decisions) == 119
    assert info.run_id == "2025-12-15T17-28-01Z-e46826"
    assert info.generated_at == "2025-12-15T17:28:01.830Z"
    assert info.declared_total == 119
    assert [d.seq for d in decisions] == list(range(119))


def test_each_decisions_raw_is_its_exact_source_text(samples_dir):
    path = samples_dir / "dynoai/real_sample/session_replay.json"
    source = json.loads(path.read_text())["decisions"]
    _, decisions = read(path)
    assert [json.loads(d.raw) for d in decisions] == source
    assert all(d.raw in path.read_text() for d in decisions[:5])


def test_floats_and_ints_keep_the_type_they_were_written_with():
    doc = b'{"decisions": [{"timestamp": "2025-01-01T00:00:00.000Z", "action": "A", "reason": "", "values": {"limit": 10.0, "n": 10}}]}'
    _, (d,) = read(doc)
    assert isinstance(d.values["limit"], float) and isinstance(d.values["n"], int)


def test_cells_by_bin_and_by_index_fill_the_cell_columns(samples_dir):
    _, decisions = read(samples_dir / "dynoai/real_sample/session_replay.json")
    afr = next(d for d in decisions if d.action == "AFR_CORRECTION")
    grad = next(d for d in decisions if d.action == "GRADIENT_LIMITING")
    assert (afr.rpm, afr.kpa, afr.cylinder) == (afr.cell["rpm"], afr.cell["kpa"], afr.cell["cylinder"])
    assert (grad.rpm_index, grad.kpa_index, grad.rpm) == (grad.cell["rpm_index"], grad.cell["kpa_index"], None)
    assert afr.metric == afr.values["afr_error_pct"]


def test_a_decision_without_values_or_cell_reads_as_empty():
    _, (d,) = read(b'{"decisions": [{"timestamp": "2025-01-01T00:00:00.000Z", "action": "START", "reason": "go"}]}')
    assert d.values == {} and d.cell is None and d.rpm is None


def test_bare_nan_is_accepted_and_kept_in_raw(samples_dir):
    _, decisions = read(samples_dir / "odd/nan_values_session_replay.json")
    assert decisions[0].values == {"afr_error_pct": None}
    assert "NaN" in decisions[0].raw


def test_header_keys_after_the_decisions_are_still_read():
    _, (d,) = read(b'{"decisions": [{"action": "A", "reason": ""}], "run_id": "late", "total_decisions": 1}')
    assert d.ts is None


@pytest.mark.parametrize(
    "name, message, line",
    [
        ("truncated_session_replay.json", "invalid JSON", 11),
        ("not_json_session_replay.json", "not a JSON object", 1),
        ("no_decisions_session_replay.json", "no 'decisions' key", None),
        ("decisions_not_list_session_replay.json", "'decisions' is an object, not a list", 1),
        ("bad_timestamp_session_replay.json", "'yesterday-ish' is not an ISO-8601 time", 1),
        ("missing_action_session_replay.json", "has no 'action'", 1),
        ("latin1_session_replay.json", "not UTF-8", 1),
        ("empty_session_replay.json", "the file is empty", None),
    ],
)
def test_each_bad_document_is_refused_with_the_problem_and_line(samples_dir, name, message, line):
    with pytest.raises(ReadError) as err:
        read(samples_dir / "bad" / name)
    assert message in err.value.message
    assert err.value.line == line


def test_an_error_deep_in_a_big_file_names_its_line():
    items = ",\n".join('{"timestamp": "2025-01-01T00:00:00.000Z", "action": "A", "reason": "x"}' for _ in range(50000))
    doc = ('{"decisions": [\n' + items + ',\n{"action": }\n]}').encode()
    with pytest.raises(ReadError) as err:
        read(doc)
    assert err.value.line == 50002


def test_a_record_over_the_size_limit_is_refused():
    doc = b'{"decisions": [{"action": "A", "reason": "' + b"x" * 5000 + b'"}, {"action": "B"}]}'
    with pytest.raises(ReadError, match="longer than"):
        read(doc, Limits(max_line_bytes=1000))


def test_nesting_5000_deep_is_refused_clearly(samples_dir):
    with pytest.raises(ReadError, match="nested too deeply"):
        read(samples_dir / "hostile/deep_and_huge_session_replay.json")
