"""What the filter grammar selects (viewer/selectors.py), checked against the sample files.

Each case compares the seqs decision_list returns with those an independent reading of the file
selects: the file is parsed here with json, and the SPEC's filter meanings are applied in Python.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest
from django.http import Http404, QueryDict

from viewer.filters import DecisionFilterForm
from viewer.models import Run
from viewer import selectors
from viewer.selectors import (
    action_stats, decision_list, filtered_decisions, first_rows, get_run_or_404, neighbours, previous_t_ms,
    visible_runs,
)

pytestmark = pytest.mark.django_db

REAL = "dynoai/real_sample/session_replay.json"
LARGE = "dynoai/runs/large200k_s2_c7/session_replay.json"
COMBAT = "session/combat_session_sample.jsonl"
DEBT = "session/session_debt_auction_ambush.jsonl"
STUDY = "study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log"
STUDY_GZ = "study/2024-03-05T18-40-02.114002-0000000008-gc-104523-41233.study.log.gz"
MISSING = object()


# -- an independent reading of the samples --------------------------------------------------------


def _utc(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _record(seq, action, **fields):
    base = {"seq": seq, "action": action, "reason": "", "text": "", "values": {}, "ts": None, "rpm": None,
            "kpa": None, "cylinder": None, "rpm_index": None, "kpa_index": None, "round": None, "agent": None}
    return base | fields


def read_dynoai(path: Path) -> list[dict]:
    out = []
    for i, d in enumerate(json.loads(path.read_text(encoding="utf-8"))["decisions"]):
        cell = d.get("cell") or {}
        out.append(_record(
            i, d["action"], reason=d.get("reason", ""), values=d.get("values", {}), ts=_utc(d["timestamp"]),
            **{k: cell.get(k) for k in ("rpm", "kpa", "cylinder", "rpm_index", "kpa_index")},
        ))
    return out


def read_session(path: Path) -> list[dict]:
    """Sessions: no ts here (the reader aligns the zones of LLM calls; time filters are tested elsewhere)."""
    out, current = [], 0
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        e = json.loads(line)
        own = e.get("round") if isinstance(e.get("round"), int) else None
        if e["event_type"] == "round_start" and own is not None:
            current = own
        agent = next((e[k] for k in ("agent_id", "player_id", "character_id", "enemy_id", "agent")
                      if e.get(k) is not None), None)
        if agent is None and e["event_type"] == "mission_debrief":  # a per-character debrief (issue 13.2)
            agent = e.get("character")
        text = ""
        if e["event_type"] == "llm_call":
            text = "\n".join([m["content"] for m in e.get("prompt", [])] + [e.get("response", "")])
        values = {k: v for k, v in e.items() if k not in ("event_type", "ts", "session", "round")}
        out.append(_record(i, e["event_type"], values=values, text=text, agent=agent,
                           round=own if own is not None else current))
    return out


def read_study(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            body, _, server_time = line.rstrip("\n").rpartition("\t")
            client = json.loads(body)["client"]
            values = {k: v for k, v in client.items() if k not in ("auth", "event")}
            values["server_time"] = server_time
            out.append(_record(len(out), client["event"], values=values, ts=_utc(server_time)))
    return out


READERS = {"dynoai": read_dynoai, "session": read_session, "study": read_study}


def read_sample(samples_dir, relpath, kind) -> list[dict]:
    records = READERS[kind](samples_dir / relpath)
    first = next((r["ts"] for r in records if r["ts"] is not None), None)
    for r in records:
        r["t_ms"] = (r["ts"] - first).total_seconds() * 1000 if r["ts"] is not None else None
    return records


# -- the SPEC's meanings, in Python ------------------------------------------------------------------


def _at(values, path):
    for key in path:
        if isinstance(values, dict) and key in values:
            values = values[key]
        elif isinstance(values, list) and key.isdigit() and int(key) < len(values):
            values = values[int(key)]
        else:
            return MISSING
    return values


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "container"


def _condition_holds(values, cond) -> bool:
    value = _at(values, cond.path)
    if value is MISSING:
        return False
    same_kind = _json_kind(value) == cond.json_type
    if cond.op == "!=":
        return not (same_kind and value == cond.value)
    if not same_kind:
        return False
    if cond.json_type in ("bool", "null"):
        return value == cond.value
    return {"=": value == cond.value, "<": value < cond.value, "<=": value <= cond.value,
            ">": value > cond.value, ">=": value >= cond.value}[cond.op]


def matches(r: dict, f: dict) -> bool:
    if "action" in f and not any(a.lower() in r["action"].lower() for a in f["action"]):
        return False
    if "q" in f and f["q"].lower() not in r["reason"].lower() and f["q"].lower() not in r["text"].lower():
        return False
    for name in ("rpm", "kpa", "cylinder", "rpm_index", "kpa_index", "round", "agent"):
        if name in f and r[name] != f[name]:
            return False
    bounds = (("rpm_min", "rpm", True), ("rpm_max", "rpm", False), ("kpa_min", "kpa", True),
              ("kpa_max", "kpa", False), ("round_min", "round", True), ("round_max", "round", False),
              ("t_from", "t_ms", True), ("t_to", "t_ms", False), ("since", "ts", True),
              ("until", "ts", False))
    for name, column, low in bounds:
        if name in f:
            if r[column] is None or (r[column] < f[name] if low else r[column] > f[name]):
                return False
    return all(_condition_holds(r["values"], cond) for cond in f.get("v", ()))


def selected(run, qs: str) -> list[int]:
    form = DecisionFilterForm(QueryDict(qs))
    assert form.is_valid(), form.errors
    return list(decision_list(run=run, **form.filters()).values_list("seq", flat=True))


def expected(records, qs: str) -> list[int]:
    form = DecisionFilterForm(QueryDict(qs))
    assert form.is_valid(), form.errors
    return [r["seq"] for r in records if matches(r, form.filters())]


CASES = [
    (REAL, "dynoai", ""),
    (REAL, "dynoai", "action=gradient"),
    (REAL, "dynoai", "action=GRADIENT_limiting"),
    (REAL, "dynoai", "action=afr&action=clamp"),
    (REAL, "dynoai", "action=_START"),
    (REAL, "dynoai", "action=%25"),
    (REAL, "dynoai", "action=nothing-like-this"),
    (REAL, "dynoai", "q=cylinder"),
    (REAL, "dynoai", "q=BLEND toward"),
    (REAL, "dynoai", "q=r cylinder&action=afr"),
    (REAL, "dynoai", "rpm=2000"),
    (REAL, "dynoai", "kpa=65&cylinder=r"),
    (REAL, "dynoai", "cylinder=f"),
    (REAL, "dynoai", "rpm_index=0"),
    (REAL, "dynoai", "kpa_index=1&rpm_index=2"),
    (REAL, "dynoai", "rpm_min=2500"),
    (REAL, "dynoai", "rpm_max=2000&kpa_min=80"),
    (REAL, "dynoai", "kpa_min=65&kpa_max=65"),
    (REAL, "dynoai", "t_from=5&t_to=14"),
    (REAL, "dynoai", "t_to=0"),
    (REAL, "dynoai", "t_from=21.5"),
    (REAL, "dynoai", "since=2025-12-15T17:28:01.810Z"),
    (REAL, "dynoai", "since=2025-12-15T17:28:01.810Z&until=2025-12-15T17:28:01.818Z"),
    (REAL, "dynoai", "v=afr_error_pct>=5"),
    (REAL, "dynoai", "v=afr_error_pct<0"),
    (REAL, "dynoai", "v=afr_error_pct<=-4.94"),
    (REAL, "dynoai", "v=weight>70&v=weight<72"),
    (REAL, "dynoai", "v=afr_commanded=12.5"),
    (REAL, "dynoai", "v=limit=10"),
    (REAL, "dynoai", "v=passes!=2"),
    (REAL, "dynoai", "v=gradient_threshold=1"),
    (REAL, "dynoai", "v=blend_factor>0.5&action=gradient&rpm_index=0"),
    (REAL, "dynoai", 'v=afr_error_pct="0.73"'),
    (LARGE, "dynoai", "v=type=Spatial discontinuity"),
    (LARGE, "dynoai", "v=type!=Spatial discontinuity"),
    (LARGE, "dynoai", "v=letter_grade!=A"),
    (LARGE, "dynoai", "v=score>10"),
    (LARGE, "dynoai", "action=anomaly&v=score>=15"),
    (LARGE, "dynoai", "v=cells.0.clamped<0"),
    (LARGE, "dynoai", "v=clamped_count>=1"),
    (LARGE, "dynoai", "v=afr_commanded=null"),
    (LARGE, "dynoai", "v=afr_commanded!=null"),
    (LARGE, "dynoai", "v=afr_measured>13&cylinder=r"),
    (COMBAT, "session", ""),
    (COMBAT, "session", "action=llm"),
    (COMBAT, "session", "action=ROUND_"),
    (COMBAT, "session", "round=0"),
    (COMBAT, "session", "round=1"),
    (COMBAT, "session", "round_min=2"),
    (COMBAT, "session", "round_max=1&action=character"),
    (COMBAT, "session", "agent=player_01"),
    (COMBAT, "session", "agent=dm_01&action=llm"),
    (COMBAT, "session", "q=TACTICAL COMBAT AGENT"),
    (COMBAT, "session", "v=roll.margin>=5"),
    (COMBAT, "session", "v=roll.success=true"),
    (COMBAT, "session", "v=roll.success!=true"),
    (COMBAT, "session", "v=roll.tier=excellent"),
    (COMBAT, "session", "v=tokens.input>1000"),
    (COMBAT, "session", "v=temperature=0.7&round=1"),
    (COMBAT, "session", "v=health<27"),
    (COMBAT, "session", "v=is_defeated=false"),
    (DEBT, "session", "round=3&action=action_resolution"),
    (DEBT, "session", "v=roll.success=false"),
    (DEBT, "session", "v=success_rate>=0.5"),
    (DEBT, "session", "agent=dm_01"),
    (DEBT, "session", "round_min=2&round_max=4&action=round_summary"),
    (STUDY, "study", "action=keystroke"),
    (STUDY, "study", "action=SAVE&action=visib"),
    (STUDY, "study", "t_from=1000&t_to=60000"),
    (STUDY, "study", "t_from=600000&action=mouse"),
    (STUDY, "study", "since=2024-03-05T18:30:00&until=2024-03-05T18:31:00"),
    (STUDY, "study", "v=keystroke.key=a"),
    (STUDY, "study", "v=keystroke.keyCode>=80"),
    (STUDY, "study", 'v=rev="2"'),
    (STUDY, "study", "v=rev>1"),
    (STUDY_GZ, "study", "action=google&v=doc_id=1AbCdEfGh"),
    (STUDY_GZ, "study", "t_to=60000"),
]


@pytest.mark.parametrize("relpath, kind, qs", CASES)
def test_filters_select_what_the_file_says(samples_dir, import_sample, relpath, kind, qs):
    run = import_sample(relpath)
    assert run.kind == kind
    records = read_sample(samples_dir, relpath, kind)
    assert run.decision_count == len(records)
    by_name = {name: agent_id for agent_id, name in (run.agents or {}).items()}
    for r in records:  # the session reader names an actor by id where the log used its display name
        r["agent"] = by_name.get(r["agent"], r["agent"])
    assert selected(run, qs) == expected(records, qs)


@pytest.mark.parametrize(
    "qs, count",
    [
        ("action=gradient", 18),  # the sample's counts, as FORMATS.md gives them
        ("action=afr", 98),
        ("action=afr&cylinder=f", 49),
        ("action=start", 3),
        ("", 119),
    ],
)
def test_the_real_dynoai_sample_has_the_documented_counts(import_sample, qs, count):
    run = import_sample(REAL)
    assert len(selected(run, qs)) == count


def test_no_case_selects_nothing_by_accident(samples_dir):
    """Guard the oracle: most cases select some, but not all, decisions."""
    partial = 0
    for relpath, kind, qs in CASES:
        n = len(expected(read_sample(samples_dir, relpath, kind), qs))
        partial += 0 < n < len(read_sample(samples_dir, relpath, kind))
    assert partial >= len(CASES) * 0.8


def test_a_study_log_filters_on_its_pseudonymized_user(import_sample):
    run = import_sample(STUDY)
    assert run.user_label and "104523" not in run.user_label
    assert len(selected(run, f"agent={run.user_label}")) == run.decision_count == 1500
    assert selected(run, "agent=gc-683268451013967869") == []


def test_decision_list_pages_by_seq_after_the_cursor(import_sample):
    run = import_sample(REAL)
    every = selected(run, "action=afr")
    first = list(decision_list(run=run, action=("afr",), limit=10).values_list("seq", flat=True))
    assert first == every[:10]
    after = decision_list(run=run, action=("afr",), after=first[-1], limit=10).values_list("seq", flat=True)
    after = list(after)
    assert after == every[10:20]
    assert list(decision_list(run=run, after=118).values_list("seq", flat=True)) == []
    assert list(decision_list(run=run, after=-1, limit=1).values_list("seq", flat=True)) == [0]


def test_filtered_decisions_are_in_file_order_without_paging(import_sample):
    run = import_sample(COMBAT)
    seqs = list(filtered_decisions(run=run).values_list("seq", flat=True))
    assert seqs == list(range(44))


def test_a_time_window_on_a_run_without_timestamps_is_empty(import_sample):
    run = import_sample(REAL)
    Run.objects.filter(pk=run.pk).update(first_ts=None)
    run.refresh_from_db()
    assert selected(run, "t_from=0") == []


def test_a_foreign_run_is_a_404_and_invisible(import_sample, user, other_user):
    run = import_sample(REAL)
    assert get_run_or_404(user, run.pk) == run
    with pytest.raises(Http404):
        get_run_or_404(other_user, run.pk)
    assert list(visible_runs(other_user)) == []
    assert list(visible_runs(user)) == [run]


@pytest.mark.parametrize(
    "first_ts, t_from, t_to, expected",
    [
        ("9999-12-31T00:00:00+00:00", 1e14, None, 0),  # past the end of the calendar: nothing after
        ("9999-12-31T00:00:00+00:00", None, 1e14, 2),  # no upper bound left
        ("0001-01-01T00:00:01+00:00", -1e14, None, 2),  # before the calendar: no lower bound
        ("0001-01-01T00:00:01+00:00", None, -1e14, 0),
    ],
)
def test_a_time_window_reaching_past_the_calendar_is_clamped_not_an_overflow(user, first_ts, t_from, t_to, expected):
    import io

    from viewer.ingest import Source, run_ingest

    line = '{"timestamp": "%s", "action": "A"}' % first_ts
    text = '{"decisions": [%s, %s]}' % (line, line)
    [result] = run_ingest(owner=user, sources=[Source(name="edge_session_replay.json", fileobj=io.BytesIO(text.encode()))])
    assert result.status == "imported", result.message
    filters = {k: v for k, v in (("t_from", t_from), ("t_to", t_to)) if v is not None}
    assert decision_list(run=result.run, **filters).count() == expected
    assert action_stats(run=result.run, **filters) is not None  # as a subquery too


@pytest.mark.django_db
def test_an_agent_filters_by_its_id_or_by_the_name_the_log_gives_it(import_sample):
    run = import_sample("session/combat_session_sample.jsonl")
    by_id = list(filtered_decisions(run=run, agent="player_02").values_list("seq", flat=True))
    by_name = list(filtered_decisions(run=run, agent="Drifter Sable").values_list("seq", flat=True))
    resolutions = filtered_decisions(run=run, agent="player_02", action=("action_resolution",))
    assert by_id == by_name and resolutions.exists()  # a resolution names its actor "Drifter Sable"
    assert list(filtered_decisions(run=run, agent="nobody")) == []


# -- "action contains" as a list of the run's actions (issue 19) -------------------------------------


def _run_of_actions(user, *actions: str) -> Run:
    from viewer.models import Decision

    run = Run.objects.create(owner=user, name="actions", kind="dynoai", size=0, sha256="0" * 64,
                             status=Run.Status.READY)
    Decision.objects.bulk_create(Decision(run=run, seq=k, action=a, raw="") for k, a in enumerate(actions))
    return run


def test_action_contains_is_an_in_list_of_the_runs_matching_actions(user):
    run = _run_of_actions(user, "GRADIENT_LIMITING", "AFR_CORRECTION", "gradient", "CLAMPING")
    sql = str(filtered_decisions(run=run, action=("Gradient", "clamp")).query)
    assert " IN (" in sql and "LIKE" not in sql
    assert list(filtered_decisions(run=run, action=("Gradient", "clamp")).values_list("seq", flat=True)) == [0, 2, 3]


def test_action_contains_takes_percent_and_underscore_literally(user):
    run = _run_of_actions(user, "GRADIENT_LIMITING", "GRADIENTXLIMITING", "100%_DONE", "100X_DONE")
    assert " IN (" in str(filtered_decisions(run=run, action=("t_l",)).query)
    assert list(filtered_decisions(run=run, action=("t_l",)).values_list("seq", flat=True)) == [0]
    assert list(filtered_decisions(run=run, action=("0%_",)).values_list("seq", flat=True)) == [2]


def test_action_contains_nothing_matching_is_no_decision(user):
    run = _run_of_actions(user, "GRADIENT_LIMITING")
    assert "LIKE" not in str(filtered_decisions(run=run, action=("nope",)).query)
    assert not filtered_decisions(run=run, action=("nope",)).exists()
    assert not filtered_decisions(run=run, action=("grad",), rpm=1).exists()


def test_a_run_of_many_actions_filters_by_substring_as_before(user, monkeypatch):
    from viewer import selectors

    monkeypatch.setattr(selectors, "ACTIONS_SCANNED", 2)
    run = _run_of_actions(user, "alpha_1", "alpha_2", "beta", "ALPHA_3")
    assert "LIKE" in str(filtered_decisions(run=run, action=("alpha",)).query)
    assert list(filtered_decisions(run=run, action=("alpha",)).values_list("seq", flat=True)) == [0, 1, 3]


@pytest.mark.parametrize("q", ["gradient", "Clamped", "nudge", "no such words", "e"])
@pytest.mark.parametrize("after", [None, 3, 60])
def test_a_text_filters_pages_and_neighbours_read_in_windows_are_those_of_one_query(import_sample, monkeypatch, q,
                                                                                    after):
    run = import_sample(REAL)
    monkeypatch.setattr(selectors, "WINDOW", 4)  # many windows over the sample's 119 decisions
    qs = decision_list(run=run, after=after, q=q)
    for n in (1, 5, 101):
        assert [d.seq for d in first_rows(qs, run=run, n=n, filters={"q": q}, after=after)] == [d.seq for d in qs[:n]]
    for seq in (0, 1, 40, 118, 119):
        plain = filtered_decisions(run=run, q=q).filter(seq__lt=seq).reverse().values_list("t_ms", flat=True).first()
        assert previous_t_ms(run=run, seq=seq, q=q) == plain
        qs = filtered_decisions(run=run, q=q).values_list("seq", flat=True)
        assert neighbours(run=run, seq=seq, q=q) == (qs.filter(seq__lt=seq).reverse().first(),
                                                     qs.filter(seq__gt=seq).first())


def test_a_text_filters_first_page_reads_a_window_and_a_grown_live_run_is_read_to_its_end(import_sample, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    run = import_sample(REAL)
    monkeypatch.setattr(selectors, "WINDOW", 8)
    with CaptureQueriesContext(connection) as seen:
        first_rows(decision_list(run=run, q="gradient"), run=run, n=1, filters={"q": "gradient"})
    assert '"seq" <= 7' in seen.captured_queries[0]["sql"]
    run.decision_count = 20  # as a page read it while the run was live: the last window is open above
    rows = first_rows(decision_list(run=run, q="e"), run=run, n=1000, filters={"q": "e"})
    assert [d.seq for d in rows] == [d.seq for d in decision_list(run=run, q="e")]
    assert selectors.unindexed({"q": "x"}) and not selectors.unindexed({"action": ("AFR",), "q": ""})
