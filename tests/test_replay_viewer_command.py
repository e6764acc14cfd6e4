"""`manage.py replay_viewer` prints what DynoAI's replay_viewer.py printed, byte for byte."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
RUNS = ["large200k_s2_c7", "large200k_s4_c10"]

# The real viewer's invocations behind each runs/*/expected_*.txt (see samples/README.md); the names
# are the ones expected_viewer_rcs.txt records an exit status for.
INVOCATIONS = {
    "summary": (["--summary-only"], "expected_summary.txt"),
    "timeline": ([], "expected_timeline.txt"),
    "action_gradient": (["--action", "gradient"], "expected_action_gradient.txt"),
    "action_clamp_limit3": (["--action", "clamp", "--limit", "3"], "expected_action_clamp_limit3.txt"),
    "export_afr": (["--export", "out.txt", "--action", "afr"], "expected_export_afr_stdout.txt"),
}


def read_bytes(path):
    return Path(path).read_bytes()


def recorded_statuses(folder):
    """expected_viewer_rcs.txt: one `<invocation> rc=<status>` line per command the real viewer ran."""
    statuses = {}
    for line in (folder / "expected_viewer_rcs.txt").read_text().splitlines():
        name, rc = line.split()
        statuses[name] = int(rc.removeprefix("rc="))
    return statuses


def manage(*args, cwd):
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "replay_viewer", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        env=env,
        timeout=120,
    )


def viewer(*args):
    """call_command, returning (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("replay_viewer", *map(str, args), stdout=out, stderr=err)
    except SystemExit as exc:
        return exc.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.fixture
def write_json(tmp_path):
    def write(name, content):
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
        return path

    return write


# -- the real viewer's recorded outputs ---------------------------------------------------------


def test_the_recorded_statuses_name_every_invocation_we_reproduce(samples_dir):
    for run in RUNS:
        assert recorded_statuses(samples_dir / "dynoai" / "runs" / run) == dict.fromkeys(INVOCATIONS, 0)


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("invocation", INVOCATIONS)
def test_manage_py_prints_the_same_bytes_and_status_as_the_real_viewer(
    samples_dir, tmp_path, run, invocation
):
    folder = samples_dir / "dynoai" / "runs" / run
    options, expected = INVOCATIONS[invocation]
    result = manage(folder / "session_replay.json", *options, cwd=tmp_path)
    assert result.stderr == b""
    assert result.returncode == recorded_statuses(folder)[invocation]
    assert result.stdout == read_bytes(folder / expected)
    if invocation == "export_afr":
        assert read_bytes(tmp_path / "out.txt") == read_bytes(folder / "expected_export_afr.txt")


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("invocation", INVOCATIONS)
def test_call_command_writes_the_same_text_as_the_real_viewer(
    samples_dir, tmp_path, monkeypatch, run, invocation
):
    folder = samples_dir / "dynoai" / "runs" / run
    options, expected = INVOCATIONS[invocation]
    monkeypatch.chdir(tmp_path)
    status, out, err = viewer(folder / "session_replay.json", *options)
    assert (status, err) == (0, "")
    assert out.encode() == read_bytes(folder / expected)


def test_the_afr_export_stdout_names_the_path_it_was_given(samples_dir, tmp_path):
    folder = samples_dir / "dynoai" / "runs" / RUNS[0]
    target = tmp_path / "sub dir" / "afr.txt"
    target.parent.mkdir()
    result = manage(folder / "session_replay.json", "--export", target, "--action", "afr", cwd=tmp_path)
    expected = read_bytes(folder / "expected_export_afr_stdout.txt").replace(b"out.txt", str(target).encode())
    assert result.stdout == expected
    assert read_bytes(target) == read_bytes(folder / "expected_export_afr.txt")


def test_exporting_the_real_sample_reproduces_gradient_decisions_txt_without_a_final_newline(
    samples_dir, tmp_path
):
    real = samples_dir / "dynoai" / "real_sample"
    options = ["--export", "gradient_decisions.txt", "--action", "gradient"]
    result = manage(real / "session_replay.json", *options, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == b"Timeline exported to: gradient_decisions.txt\n"
    written = read_bytes(tmp_path / "gradient_decisions.txt")
    assert written == read_bytes(real / "gradient_decisions.txt")
    assert not written.endswith(b"\n")


# -- option precedence ---------------------------------------------------------------------------


def test_export_wins_over_summary_only_and_ignores_limit(samples_dir, tmp_path, monkeypatch):
    real = samples_dir / "dynoai" / "real_sample"
    monkeypatch.chdir(tmp_path)
    options = ["--export", "x.txt", "--summary-only", "--limit", "2", "--action", "gradient"]
    status, out, _ = viewer(real / "session_replay.json", *options)
    assert (status, out) == (0, "Timeline exported to: x.txt\n")
    assert read_bytes(tmp_path / "x.txt") == read_bytes(real / "gradient_decisions.txt")


def test_summary_only_ignores_the_action_filter(samples_dir):
    folder = samples_dir / "dynoai" / "runs" / RUNS[0]
    status, out, _ = viewer(folder / "session_replay.json", "--summary-only", "--action", "nothing-matches")
    assert out.encode() == read_bytes(folder / "expected_summary.txt")


def test_a_filter_matching_nothing_prints_only_the_no_match_line(samples_dir):
    real = samples_dir / "dynoai" / "real_sample"
    status, out, err = viewer(real / "session_replay.json", "--action", "zzz")
    assert (status, out, err) == (0, "No decisions match the filter criteria.\n", "")


def test_limit_with_a_filter_reports_the_unfiltered_remainder(samples_dir):
    _, out, _ = viewer(samples_dir / "dynoai" / "real_sample" / "session_replay.json", "--action", "gradient",
                       "--limit", "5")
    headers = [line for line in out.splitlines() if line.startswith(("[", "..."))]
    assert headers[4] == "[5] 2025-12-15T17:28:01.817Z (+0.0ms)"
    assert out.endswith("\n\n... and 114 more decisions (use --limit to see more)\n")
    assert out.count("\n[") == 5  # five blocks, though 18 decisions match


def test_an_empty_decisions_list_prints_the_no_match_line_but_its_summary_says_none_logged(write_json):
    path = write_json("empty.json", {"run_id": "R", "decisions": []})
    assert viewer(path)[1] == "No decisions match the filter criteria.\n"
    assert viewer(path, "--summary-only")[1] == "No decisions logged in this session.\n"


# -- errors: one line on stderr, status 1 ---------------------------------------------------------


def test_a_missing_file_is_an_error_naming_the_argument_as_given(tmp_path):
    result = manage("no/such.json", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr == b"ERROR: Replay file not found: no/such.json\n"


def test_invalid_json_is_an_error_with_the_decoder_message(write_json, tmp_path):
    path = write_json("bad.json", '{"decisions": [')
    result = manage(path, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr == (
        b"ERROR: Invalid JSON in replay file: Expecting value: line 1 column 16 (char 15)\n"
    )


def test_a_document_without_decisions_is_an_error(write_json, tmp_path):
    result = manage(write_json("nodec.json", {"run_id": "R"}), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr == b"ERROR: Invalid replay file format (missing 'decisions' key)\n"


@pytest.mark.parametrize("content", ["[]", '"decisions"', "3"])
def test_a_document_that_is_not_an_object_counts_as_missing_decisions(write_json, content):
    assert viewer(write_json("odd.json", content)) == (
        1, "", "ERROR: Invalid replay file format (missing 'decisions' key)\n"
    )


def test_a_decisions_value_that_is_not_a_list_is_an_error(write_json):
    status, out, err = viewer(write_json("odd.json", {"decisions": {"a": 1}}))
    assert (status, out) == (1, "")
    assert err == "ERROR: Invalid replay file format ('decisions' is not a list)\n"


def test_null_decisions_behave_as_an_empty_list_like_the_real_viewer(write_json):
    path = write_json("null.json", {"decisions": None})
    assert viewer(path) == (0, "No decisions match the filter criteria.\n", "")


def test_bytes_that_are_not_utf8_fail_the_read(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"decisions": [], "run_id": "caf\xe9"}')
    assert viewer(path) == (
        1,
        "",
        "ERROR: Failed to read replay file: 'utf-8' codec can't decode byte 0xe9 in position 32: "
        "invalid continuation byte\n",
    )


def test_a_directory_fails_the_read_with_the_os_error(tmp_path):
    message = f"ERROR: Failed to read replay file: [Errno 21] Is a directory: '{tmp_path}'\n"
    assert viewer(tmp_path) == (1, "", message)


def test_an_unwritable_export_path_is_an_error_not_a_traceback(samples_dir, tmp_path):
    status, out, err = viewer(samples_dir / "dynoai" / "real_sample" / "session_replay.json", "--export",
                              tmp_path / "missing" / "x.txt")
    assert (status, out) == (1, "")
    assert err.startswith("ERROR: Failed to write export file: [Errno 2] No such file or directory")


# -- degraded input still prints ------------------------------------------------------------------


def test_decisions_without_timestamps_print_na_instead_of_crashing(write_json, tmp_path):
    path = write_json("nots.json", {
        "run_id": "R",
        "decisions": [
            {"timestamp": "2025-12-15T17:28:01.803Z", "action": "A", "reason": "r"},
            {"action": "B", "reason": "no time"},
        ],
    })
    result = manage(path, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.endswith(b"\n\n[2] N/A (+N/A)\n  ACTION: B\n  REASON: no time\n")
