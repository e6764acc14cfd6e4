"""The run page's summary (viewer/summary.py) and the aggregates it reads (action_stats, largest_gaps)."""
import datetime as dt
import json
import re

import pytest

from viewer.text import duration
from viewer.selectors import action_stats, largest_gaps
from viewer import kinds
from viewer.summary import action_rows, gaps, run_summary

pytestmark = pytest.mark.django_db

REAL = "dynoai/real_sample/session_replay.json"
MANIFEST = "dynoai/real_sample/manifest.json"
LARGE_DIR = "dynoai/runs/large200k_s2_c7"
COMBAT = "session/combat_session_sample.jsonl"
STUDY = "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"


def file_times(samples_dir, relpath) -> list[tuple[str, float]]:
    """(action, ms since the first decision) per decision, read from a DynoAI file."""
    decisions = json.loads((samples_dir / relpath).read_text())["decisions"]
    stamps = [dt.datetime.fromisoformat(d["timestamp"].replace("Z", "+00:00")) for d in decisions]
    return [(d["action"], (t - stamps[0]).total_seconds() * 1000) for d, t in zip(decisions, stamps)]



def summary_of(run):
    """The run page's summary: the run's own facts from its kind's profile."""
    return run_summary(run, facts=kinds.profile(run).summary_facts(run))

def test_the_header_has_what_the_cli_summary_has(import_sample):
    run = import_sample(REAL, MANIFEST)
    summary = summary_of(run)
    assert summary.run_id == "2025-12-15T17-28-01Z-e46826"
    assert summary.generated == "2025-12-15T17:28:01.830Z"
    assert summary.total == 119
    assert summary.duration == "22.0ms"
    assert summary.duration_human == ""


def test_the_manifest_check_and_its_crlf_warning_are_in_the_summary(import_sample):
    run = import_sample(REAL, MANIFEST)
    summary = summary_of(run)
    assert summary.manifest_ok is False
    assert any("CRLF" in w for w in summary.warnings)
    assert any(f.label == "Toolkit status" and f.value.startswith("success") for f in summary.facts)
    settings = {s.label: s.value for s in summary.settings}
    assert (settings["smooth_passes"], settings["clamp"], settings["base_front"]) == ("2", "10.0", "null")


def test_a_run_without_a_manifest_has_no_check(import_sample):
    summary = summary_of(import_sample(REAL))
    assert summary.manifest_ok is None and summary.warnings == []


def test_a_long_duration_is_also_given_in_minutes(samples_dir, import_sample):
    run = import_sample(f"{LARGE_DIR}/session_replay.json")
    expected = (samples_dir / LARGE_DIR / "expected_summary.txt").read_text()
    duration = re.search(r"^Duration:\s+(\S+)$", expected, re.M).group(1)
    assert summary_of(run).duration == duration == "1.17s"
    run.duration_ms = 1126958.772
    assert summary_of(run).duration_human == "18 min 47 s"


def test_a_session_summary_has_seed_version_and_config(import_sample, samples_dir):
    run = import_sample(COMBAT)
    start = json.loads((samples_dir / COMBAT).read_text().splitlines()[0])
    summary = summary_of(run)
    facts = {f.label: f.value for f in summary.facts}
    assert facts["Seed"] == ("N/A" if start["random_seed"] is None else str(start["random_seed"]))
    assert facts["Version"] == start["version"]
    assert json.loads(summary.settings_json) == start["config"]


def test_a_study_summary_has_source_and_pseudonymized_user(import_sample):
    run = import_sample(STUDY)
    facts = {f.label: f.value for f in summary_of(run).facts}
    assert facts["Source"] == "org.mitros.writing_analytics"
    assert facts["User"] == run.user_label and facts["User"].startswith("user-")


def test_counts_by_action_match_the_cli_order_with_ties_in_first_appearance(samples_dir, import_sample):
    run = import_sample(f"{LARGE_DIR}/session_replay.json")
    expected = (samples_dir / LARGE_DIR / "expected_summary.txt").read_text()
    block = expected.split("DECISIONS BY ACTION TYPE:\n", 1)[1]
    cli = [(m[1], int(m[2])) for m in re.finditer(r"^  (\S+)\s+(\d+)$", block, re.M)]
    rows = action_rows(action_stats(run=run))
    assert [(r.action, r.count) for r in rows] == cli


def test_time_spent_is_the_time_to_the_next_matching_decision(samples_dir, import_sample):
    run = import_sample(REAL)
    times = file_times(samples_dir, REAL)
    spent: dict[str, float] = {}
    for (action, t), (_, t_next) in zip(times, times[1:]):
        spent[action] = spent.get(action, 0.0) + max(t_next - t, 0.0)
    rows = {r.action: r for r in action_rows(action_stats(run=run))}
    for action, ms in spent.items():
        assert rows[action].spent_ms == pytest.approx(ms, abs=1e-6)
    assert sum(r.spent_ms for r in rows.values()) == pytest.approx(times[-1][1] - times[0][1])
    assert sum(r.spent_share for r in rows.values()) == pytest.approx(100.0)
    assert rows["AFR_CORRECTION"].share == pytest.approx(100.0 * 98 / 119)


def test_under_a_filter_time_and_gaps_count_the_matching_decisions_only(samples_dir, import_sample):
    run = import_sample(REAL)
    times = [(a, t) for a, t in file_times(samples_dir, REAL) if "GRADIENT" in a]
    stats = action_stats(run=run, action=("gradient",))
    assert [(a, n) for a, n, _, _ in stats] == [("GRADIENT_LIMITING", len(times))]
    assert stats[0][3] == pytest.approx(times[-1][1] - times[0][1])


def test_the_largest_gaps_are_between_consecutive_decisions(samples_dir, import_sample):
    run = import_sample(REAL)
    times = file_times(samples_dir, REAL)
    steps = sorted(((t2 - t1, i) for i, ((_, t1), (_, t2)) in enumerate(zip(times, times[1:])) if t2 > t1),
                   key=lambda s: (-s[0], s[1]))[:5]
    found = gaps(largest_gaps(run=run, n=5))
    assert [(g.before_seq, g.after_seq) for g in found] == [(i, i + 1) for _, i in steps]
    assert [g.ms for g in found] == pytest.approx([ms for ms, _ in steps])
    assert found[0].before_action == times[steps[0][1]][0]
    assert found[0].text == duration(steps[0][0])


def test_ties_in_counts_keep_first_appearance_order():
    stats = [("B", 2, 5, 0.0), ("A", 2, 1, 0.0), ("C", 3, 9, 0.0)]
    assert [r.action for r in action_rows(stats)] == ["C", "A", "B"]


def test_an_empty_selection_has_no_rows():
    assert action_rows([]) == [] and gaps([]) == []
