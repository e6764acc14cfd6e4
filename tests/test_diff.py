"""viewer/diff.py: alignment, changes, first divergence, settings and cells, over real and generated logs.

The rows handed to diff.side_from_rows are built here from the readers' output, the way the
selectors hand them over (values and cell as JSON text), so these tests need no database.
Expected values are computed from the sample files themselves.
"""

import importlib
import importlib.util
import json
import random
from collections import Counter

import pytest

from viewer import diff, diff_summary, diff_values, kinds
from viewer.readers import dynoai, session, study
from viewer.readers.base import Limits, RunInfo

READERS = {"dynoai": dynoai, "session": session, "study": study}
SPECS = {kind: kinds.profile(kind).diff for kind in READERS}  # (loads every built-in kind)
dynoai_kind = importlib.import_module("viewer.kinds.dynoai")
DYNO_PAIR = (
    "dynoai/runs/large200k_s2_c7/session_replay.json",
    "dynoai/runs/large200k_s4_c10/session_replay.json",
)
SESSION_PAIR = (
    "session/session_debt_auction_ambush.jsonl",
    "session/session_debt_auction_ambush_replay.jsonl",
)


def read(kind, path):
    info = RunInfo(kind=kind)
    with open(path, "rb") as f:
        return list(READERS[kind].read(f, info, limits=Limits()))


def rows_of(kind, decisions, volatile=False):
    rows = []
    for d in decisions:
        column = {
            "seq": d.seq,
            "action": d.action,
            "t_ms": None,
            "values_text": json.dumps(d.values),
            "reason": d.reason,
            "cell_text": None if d.cell is None else json.dumps(d.cell),
            "round": d.round,
            "agent": d.agent,
            "ts_text": d.ts.isoformat() if d.ts else None,
        }
        rows.append(tuple(column[name] for name in diff.fields(SPECS[kind], volatile)))
    return rows


def side(kind, path, volatile=False):
    return diff.side_from_rows(
        SPECS[kind], rows_of(kind, read(kind, path), volatile), include_volatile=volatile
    )


def run_diff(kind, path_a, path_b, volatile=False):
    return diff.diff_sides(side(kind, path_a, volatile), side(kind, path_b, volatile))


def statuses_by_seq(result):
    """{A seq: status}, {B seq: status}."""
    a, b = {}, {}
    for row in result.rows:
        if row.a is not None:
            a[result.a.seq[row.a]] = row.status
        if row.b is not None:
            b[result.b.seq[row.b]] = row.status
    return a, b


# --- a run against itself, and swapping ---------------------------------------------------------


@pytest.mark.parametrize(
    "kind, path",
    [
        ("dynoai", DYNO_PAIR[0]),
        ("dynoai", "dynoai/real_sample/session_replay.json"),
        ("session", SESSION_PAIR[0]),
        ("session", "session/combat_session_sample.jsonl"),
        ("study", "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"),
    ],
)
def test_a_run_diffed_with_itself_reports_no_differences(samples_dir, kind, path):
    for volatile in (False, True):
        result = run_diff(kind, samples_dir / path, samples_dir / path, volatile)
        assert result.identical
        assert result.divergence is None
        assert result.counts[diff.SAME] == len(read(kind, samples_dir / path)) > 0
        assert result.differences() == []


@pytest.mark.parametrize("kind, pair", [("dynoai", DYNO_PAIR), ("session", SESSION_PAIR)])
def test_swapping_a_and_b_swaps_only_in_a_and_only_in_b(samples_dir, kind, pair):
    ab = run_diff(kind, samples_dir / pair[0], samples_dir / pair[1])
    ba = run_diff(kind, samples_dir / pair[1], samples_dir / pair[0])
    assert (ab.counts[diff.ONLY_A], ab.counts[diff.ONLY_B]) == (
        ba.counts[diff.ONLY_B],
        ba.counts[diff.ONLY_A],
    )
    assert ab.counts[diff.CHANGED] == ba.counts[diff.CHANGED]
    ab_a, ab_b = statuses_by_seq(ab)
    ba_a, ba_b = statuses_by_seq(ba)
    flip = {diff.ONLY_A: diff.ONLY_B, diff.ONLY_B: diff.ONLY_A}
    assert ba_b == {seq: flip.get(s, s) for seq, s in ab_a.items()}
    assert ba_a == {seq: flip.get(s, s) for seq, s in ab_b.items()}
    changed_ab = {
        (ab.a.seq[r.a], c.path, json.dumps(c.old), json.dumps(c.new), c.delta)
        for r in ab.rows
        for c in r.changes
    }
    changed_ba = {
        (ba.b.seq[r.b], c.path, json.dumps(c.new), json.dumps(c.old), -c.delta if c.delta else c.delta)
        for r in ba.rows
        for c in r.changes
    }
    assert changed_ab == changed_ba


# --- the real DynoAI pair ------------------------------------------------------------------------


def test_the_real_dynoai_pair_lists_every_changed_gradient_limiting_value_with_its_delta(samples_dir):
    docs = [json.loads((samples_dir / p).read_text()) for p in DYNO_PAIR]
    by_cell = [
        {
            (d["cell"]["rpm_index"], d["cell"]["kpa_index"]): d["values"]
            for d in doc["decisions"]
            if d["action"] == "GRADIENT_LIMITING"
        }
        for doc in docs
    ]
    expected = {
        (cell, key, before[key], by_cell[1][cell][key])
        for cell, before in by_cell[0].items()
        if cell in by_cell[1]
        for key in before
        if before[key] != by_cell[1][cell][key]
    }
    assert expected  # the pair really differs here

    result = run_diff("dynoai", *(samples_dir / p for p in DYNO_PAIR))
    found = set()
    for row in result.rows:
        if row.status == diff.CHANGED and result.a.action[row.a] == "GRADIENT_LIMITING":
            cell = json.loads(result.a.column("cell_text")[row.a])
            for c in row.changes:
                assert c.delta == pytest.approx(c.new - c.old)
                found.add(((cell["rpm_index"], cell["kpa_index"]), c.path, c.old, c.new))
    assert found == expected


def test_the_real_dynoai_pair_first_diverges_at_smoothing_start(samples_dir):
    docs = [json.loads((samples_dir / p).read_text())["decisions"] for p in DYNO_PAIR]
    strip = [[{k: v for k, v in d.items() if k != "timestamp"} for d in doc] for doc in docs]
    first = next(k for k, (x, y) in enumerate(zip(*strip)) if x != y)

    result = run_diff("dynoai", *(samples_dir / p for p in DYNO_PAIR))
    d = result.divergence
    assert (d.position, d.a, d.b) == (first, first, first)
    assert result.a.action[first] == docs[0][first]["action"]
    assert {c.path for c in d.row_a.changes} >= {"passes"}
    assert all(result.rows[result.row_of_a[k]].status == diff.SAME for k in range(first))


def test_dynoai_keys_ignore_elapsed_time_unless_asked(samples_dir):
    result = run_diff("dynoai", *(samples_dir / p for p in DYNO_PAIR))
    paths = {c.path for r in result.rows for c in r.changes}
    assert "elapsed_ms" not in paths and "overall_score" in paths
    with_volatile = run_diff("dynoai", *(samples_dir / p for p in DYNO_PAIR), volatile=True)
    paths = {c.path for r in with_volatile.rows for c in r.changes}
    assert {"elapsed_ms", "ts"} <= paths


# --- the session and its replay ----------------------------------------------------------------


def test_the_session_replay_first_diverges_at_the_first_round_4_action_resolution(samples_dir):
    lines = [[json.loads(line) for line in (samples_dir / p).read_text().splitlines()] for p in SESSION_PAIR]
    differing = [
        k
        for k, (x, y) in enumerate(zip(*lines))
        if {k2: v for k2, v in x.items() if k2 != "ts"} != {k2: v for k2, v in y.items() if k2 != "ts"}
    ]
    first_r4 = next(
        k for k, e in enumerate(lines[0]) if e["event_type"] == "action_resolution" and e.get("round") == 4
    )
    assert differing[0] == first_r4
    roll_a, roll_b = lines[0][first_r4]["roll"], lines[1][first_r4]["roll"]
    expected = {(f"roll.{k}", roll_a[k], roll_b[k]) for k in roll_a if roll_a[k] != roll_b[k]}

    result = run_diff("session", *(samples_dir / p for p in SESSION_PAIR))
    d = result.divergence
    assert (d.position, d.a, d.b) == (first_r4, first_r4, first_r4)
    assert d.row_a is d.row_b and d.row_a.status == diff.CHANGED
    assert {(c.path, c.old, c.new) for c in d.row_a.changes} == expected
    assert {c.path for c in d.row_a.changes} <= {"roll.d20", "roll.total", "roll.margin", "roll.success"}
    for c in d.row_a.changes:
        assert c.delta == c.new - c.old
    # Rounds 1-3 (and everything before the divergence) are identical; so is the rest here.
    before = [r for r in result.rows[: result.row_of_a[first_r4]]]
    assert before and all(r.status == diff.SAME for r in before)
    assert {result.a.column("round")[i] for i in range(first_r4)} >= {1, 2, 3}
    assert [result.a.seq[r.a] for r in result.differences()] == differing


def test_the_session_replay_differs_everywhere_in_time_when_timestamps_are_compared(samples_dir):
    result = run_diff("session", *(samples_dir / p for p in SESSION_PAIR), volatile=True)
    assert result.divergence.position == 0
    assert result.counts[diff.CHANGED] == len(result.a)


# --- the generated pair ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gen_logs(samples_dir):
    spec = importlib.util.spec_from_file_location("gen_logs", samples_dir.parent / "tools" / "gen_logs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated_pair(gen, tmp_path, n, seed, p):
    """Write the pair with gen_logs and replay its Variant to know each decision's fate."""
    fates = []

    class Recording(gen.Variant):
        def fate(self):
            f = super().fate()
            if self.p > 0:
                fates.append(f)
            return f

    original = gen.Variant
    gen.Variant = Recording
    try:
        gen.write_dyno(str(tmp_path / "a.json"), n, seed, 0.0)
        gen.write_dyno(str(tmp_path / "b.json"), n, seed, p)
    finally:
        gen.Variant = original
    base = list(gen.dyno_decisions(n * 2, random.Random(seed), gen.Variant(seed, 0.0)))
    a = json.loads((tmp_path / "a.json").read_text())["decisions"]
    b = json.loads((tmp_path / "b.json").read_text())["decisions"]
    assert a == base[:n]

    # Rebuild B from the base and the fates: (base index or None for a repeat, changed?).
    origin = [(0, False)]
    for k, f in enumerate(fates, start=1):
        if f == "drop":
            continue
        floats = [v for v in base[k].get("values", {}).values() if isinstance(v, float)]
        origin.append((k, f == "nudge" and bool(floats)))
        if f == "insert":
            origin.append((None, False))
    assert len(origin) == len(b)
    return a, b, origin


def _ident(d):
    return (
        d["action"],
        json.dumps(d.get("cell"), sort_keys=True),
        d["reason"],
        json.dumps(d.get("values"), sort_keys=True),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_generated_pair_reports_exactly_the_perturbed_decisions(gen_logs, tmp_path, samples_dir, seed):
    n = 2000
    a, b, origin = generated_pair(gen_logs, tmp_path, n, seed, 0.05)
    kept = {k for k, _ in origin if k is not None}
    nudged = {k for k, changed in origin if changed}
    expected_a = [_ident(a[k]) for k in range(n) if k not in kept or k in nudged]
    expected_b = [_ident(b[j]) for j, (k, changed) in enumerate(origin) if k is None or k >= n or changed]
    assert nudged and len(expected_a) > len(nudged) and len(expected_b) > len(nudged)

    result = run_diff("dynoai", tmp_path / "a.json", tmp_path / "b.json")
    reported_a = [
        _ident(a[result.a.seq[r.a]]) for r in result.rows if r.a is not None and r.status != diff.SAME
    ]
    reported_b = [
        _ident(b[result.b.seq[r.b]]) for r in result.rows if r.b is not None and r.status != diff.SAME
    ]
    # Identical decisions (a repeated stage start) are interchangeable: compare as multisets.
    assert Counter(reported_a) == Counter(expected_a)
    assert Counter(reported_b) == Counter(expected_b)
    # Every nudged decision is paired with its own counterpart, its float values changed.
    pairs = {(result.a.seq[r.a], result.b.seq[r.b]) for r in result.rows if r.status == diff.CHANGED}
    for j, (k, changed) in enumerate(origin):
        if changed:
            assert (k, j) in pairs
    # The first divergence is the first perturbed position.
    first = next(j for j, (k, changed) in enumerate(origin) if k != j or changed)
    assert result.divergence.position == first


def test_a_side_that_can_read_its_texts_again_keeps_none_and_aligns_as_one_that_holds_them(
    gen_logs, tmp_path
):
    generated_pair(gen_logs, tmp_path, 3000, 5, 0.05)
    a_rows, b_rows = (rows_of("dynoai", read("dynoai", tmp_path / name)) for name in ("a.json", "b.json"))
    held = diff.diff_sides(*(diff.side_from_rows(SPECS["dynoai"], rows) for rows in (a_rows, b_rows)))
    served = []

    def loader(rows):
        texts = {row[0]: (row[0], row[3], row[4]) for row in rows}  # seq, values_text, reason
        actions = {row[0]: row[1] for row in rows}

        def load(first, last, seqs, only):
            wanted = [s for s in (seqs or range(first, last + 1)) if first <= s <= last and s in texts]
            out = [texts[s] for s in sorted(wanted) if only is None or actions[s] in only]
            served.extend(out)
            return out

        return load

    sides = [diff.side_from_rows(SPECS["dynoai"], rows, load=loader(rows)) for rows in (a_rows, b_rows)]
    assert all(side.held is None for side in sides) and served == []
    result = diff.diff_sides(*sides)
    compared = len(served)
    assert 0 < compared < (len(a_rows) + len(b_rows)) / 2  # only the pairs whose signatures differ
    assert [(r.status, r.a, r.b, r.changes) for r in result.rows] == [(r.status, r.a, r.b, r.changes) for r in held.rows]
    assert result.counts == held.counts and result.divergence == held.divergence
    assert diff_summary.cell_heatmap(result) == diff_summary.cell_heatmap(held)  # its texts read a block at a time
    assert result.a.values_text[5] == a_rows[5][3] and result.a.column("reason")[7] == a_rows[7][4]


def test_a_generated_session_pair_first_diverges_where_the_files_first_differ(gen_logs, tmp_path):
    # The session generator's nudge draws from the main random stream, so everything after the
    # first perturbed event differs; the first divergence is still exactly that event.
    gen_logs.write_session(str(tmp_path / "a.jsonl"), 1500, 4, 0.0)
    gen_logs.write_session(str(tmp_path / "b.jsonl"), 1500, 4, 0.05)
    strip = [
        [
            {k: v for k, v in json.loads(line).items() if k != "ts"}
            for line in (tmp_path / f).read_text().splitlines()
        ]
        for f in ("a.jsonl", "b.jsonl")
    ]
    first = next(k for k, (x, y) in enumerate(zip(*strip)) if x != y)
    assert first > 10
    result = run_diff("session", tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    assert result.divergence.position == first
    assert all(result.rows[result.row_of_a[k]].status == diff.SAME for k in range(first))
    assert not result.identical


# --- pieces ------------------------------------------------------------------------------------


def test_numbers_compare_by_value_and_booleans_by_type():
    assert diff_values.compare({"x": 10}, {"x": 10.0}) == ()
    (c,) = diff_values.compare({"x": True}, {"x": 1})
    assert (c.old, c.new, c.delta) == (True, 1, None)
    (c,) = diff_values.compare({"x": 2.68}, {"x": 2.71})
    assert c.delta == pytest.approx(0.03) and str(c.delta) == "0.03"


def test_a_value_missing_on_one_side_is_a_change_without_delta():
    changes = diff_values.compare({"a": 1}, {"b": 2})
    assert [(c.path, c.old, c.new, c.delta) for c in changes] == [
        ("a", 1, diff_values.MISSING, None),
        ("b", diff_values.MISSING, 2, None),
    ]


def test_volatile_keys_are_ignored_at_any_depth_unless_included():
    def make(stamp, event_id):
        values = {"action": {"intent": "x", "timestamp": stamp}, "event_id": event_id, "n": 1}
        return [(0, "action_declaration", 0.0, json.dumps(values), 1, "player_01")]

    a = diff.side_from_rows(SPECS["session"], make("2025-01-01", "e1"))
    b = diff.side_from_rows(SPECS["session"], make("2025-01-02", "e2"))
    assert diff.diff_sides(a, b).identical
    a = diff.side_from_rows(
        SPECS["session"], [r + ("t1",) for r in make("2025-01-01", "e1")], include_volatile=True
    )
    b = diff.side_from_rows(
        SPECS["session"], [r + ("t2",) for r in make("2025-01-02", "e2")], include_volatile=True
    )
    (row,) = diff.diff_sides(a, b).rows
    assert {c.path for c in row.changes} == {"action.timestamp", "event_id", "ts"}


def test_a_dropped_decision_shifts_nothing_after_it_in_its_group():
    def rows(values):
        return [
            (k, "AFR_CORRECTION", float(k), json.dumps({"v": v}), "r", '{"rpm":2000,"kpa":65}')
            for k, v in enumerate(values)
        ]

    a = diff.side_from_rows(SPECS["dynoai"], rows([1, 2, 3, 4, 5]))
    b = diff.side_from_rows(SPECS["dynoai"], rows([1, 3, 4.5, 5, 6]))
    result = diff.diff_sides(a, b)
    assert [(r.status, r.a, r.b) for r in result.rows] == [
        ("same", 0, 0),
        ("only_a", 1, None),
        ("same", 2, 1),
        ("changed", 3, 2),
        ("same", 4, 3),
        ("only_b", None, 4),
    ]
    assert result.divergence.position == 1


def test_long_groups_align_by_the_linear_sync_as_well_as_by_sequence_matcher():
    values = [round(random.Random(7).uniform(0, 1) * k, 3) for k in range(600)]
    b_values = values[:100] + values[101:300] + [999.0] + values[300:450] + [values[450] + 0.5] + values[451:]

    def rows(vals):
        return [
            (k, "GRADIENT_LIMITING", None, json.dumps({"result": v}), "", '{"rpm_index":0,"kpa_index":0}')
            for k, v in enumerate(vals)
        ]

    result = diff.diff_sides(
        diff.side_from_rows(SPECS["dynoai"], rows(values)),
        diff.side_from_rows(SPECS["dynoai"], rows(b_values)),
    )
    assert len(values) * len(b_values) > diff.MATCHER_LIMIT
    diffs = [(r.status, r.a, r.b) for r in result.differences()]
    assert diffs == [("only_a", 100, None), ("only_b", None, 299), ("changed", 450, 450)]


def test_different_kinds_align_by_action_alone(samples_dir):
    a = diff.side_from_rows(
        SPECS["dynoai"], rows_of("dynoai", read("dynoai", samples_dir / DYNO_PAIR[0])), key=diff.BY_ACTION
    )
    b = diff.side_from_rows(
        SPECS["session"],
        rows_of("session", read("session", samples_dir / SESSION_PAIR[0])),
        key=diff.BY_ACTION,
    )
    result = diff.diff_sides(a, b)
    assert result.counts[diff.SAME] == 0
    assert result.counts[diff.ONLY_A] == len(a) and result.counts[diff.ONLY_B] == len(b)


def test_settings_diff_flattens_and_marks_changes():
    rows = diff_values.settings_diff(
        {"clamp": 7.0, "cfg": {"x": 1, "y": "s"}}, {"clamp": 10.0, "cfg": {"x": 1}, "new": None}
    )
    got = {r.path: (r.a, r.b, r.changed, r.delta) for r in rows}
    assert got == {
        "clamp": (7.0, 10.0, True, 3.0),
        "cfg.x": (1, 1, False, 0),
        "cfg.y": ("s", diff_values.MISSING, True, None),
        "new": (diff_values.MISSING, None, True, None),
    }


def test_the_cell_heatmap_holds_b_minus_a_of_the_final_correction(samples_dir):
    docs = [json.loads((samples_dir / p).read_text())["decisions"] for p in DYNO_PAIR]
    finals = []
    for doc in docs:
        last = {}
        for d in doc:
            if d["action"] == "GRADIENT_LIMITING":
                last[
                    (
                        dynoai_kind.RPM_BINS[d["cell"]["rpm_index"]],
                        dynoai_kind.KPA_BINS[d["cell"]["kpa_index"]],
                    )
                ] = d["values"]["result"]
            elif d["action"] == "CLAMPING_APPLIED":
                for c in d["values"]["cells"]:
                    last[(dynoai_kind.RPM_BINS[c["rpm_index"]], dynoai_kind.KPA_BINS[c["kpa_index"]])] = c[
                        "clamped"
                    ]
        finals.append(last)

    result = run_diff("dynoai", *(samples_dir / p for p in DYNO_PAIR))
    figure = diff_summary.cell_heatmap(result, diff_summary.HEAT_FINAL)
    trace = figure["data"][0]
    got = {}
    for r, rpm in enumerate(trace["y"]):
        for c, kpa in enumerate(trace["x"]):
            if trace["z"][r][c] is not None:
                got[(int(rpm), int(kpa))] = trace["z"][r][c]
    assert got.keys() == finals[0].keys() & finals[1].keys()
    for cell, z in got.items():
        assert z == pytest.approx(finals[1][cell] - finals[0][cell])
    counts = diff_summary.cell_heatmap(result, diff_summary.HEAT_COUNT)["data"][0]
    assert all(v in (None, 0) or isinstance(v, int) for row in counts["z"] for v in row)


def test_heatmap_hover_text_is_only_markup_of_its_own():
    rows = [(0, "GRADIENT_LIMITING", None, '{"result": 1.0}', "<b>x</b>", '{"rpm_index":0,"kpa_index":0}')]
    result = diff.diff_sides(
        diff.side_from_rows(SPECS["dynoai"], rows), diff.side_from_rows(SPECS["dynoai"], rows)
    )
    texts = [
        t
        for row in diff_summary.cell_heatmap(result, diff_summary.HEAT_FINAL)["data"][0]["text"]
        for t in row
    ]
    assert texts and all("<" not in part for t in texts for part in t.split("<br>"))


def test_values_nested_thousands_deep_and_huge_reasons_do_not_break_the_diff():
    deep = "[" * 5000 + "]" * 5000
    deeper = '{"a":' * 3000 + "1" + "}" * 3000
    rows_a = [(0, "X", None, json.dumps({"v": 1}), "r" * 2_000_000, None), (1, "Y", None, deep, "", None)]
    rows_b = [(0, "X", None, json.dumps({"v": 2}), "r" * 2_000_000, None), (1, "Y", None, deeper, "", None)]
    result = diff.diff_sides(
        diff.side_from_rows(SPECS["dynoai"], rows_a), diff.side_from_rows(SPECS["dynoai"], rows_b)
    )
    assert [r.status for r in result.rows] == ["changed", "changed"]
    assert result.rows[0].changes[0].path == "v"
    same = diff.diff_sides(
        diff.side_from_rows(SPECS["dynoai"], rows_a), diff.side_from_rows(SPECS["dynoai"], rows_a)
    )
    assert same.identical


def test_cell_labels_follow_dynoai_viewer_order():
    assert dynoai_kind.diff_cell_label('{"cylinder":"f","kpa":65,"rpm":2000}') == "RPM=2000 KPA=65 Cyl=f"
    assert dynoai_kind.diff_cell_label('{"rpm_index":0,"kpa_index":1}') == "RPM[0] KPA[1]"
    assert dynoai_kind.diff_cell_label(None) == ""
