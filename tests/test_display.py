"""How decisions read on the page (viewer/display.py): table rows, previews, the detail's parts."""
import datetime as dt
import json
from types import SimpleNamespace

import pytest

from viewer import display


def decision(seq, t_ms, action="A", values=None, **kw):
    ts = dt.datetime(2025, 12, 15, 17, 28, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=t_ms or 0)
    return SimpleNamespace(seq=seq, t_ms=t_ms, ts=ts if t_ms is not None else None, action=action, reason="r",
                           cell=kw.get("cell"), round=None, agent=None, values=values or {})


def test_rows_carry_elapsed_and_the_gap_to_the_previous_row():
    decisions = [decision(3, 5.0), decision(4, 5.0), decision(7, 1166.0), decision(8, None)]
    rows = display.table_rows(decisions, 2.0)
    assert [r.elapsed for r in rows] == ["+5.0 ms", "+5.0 ms", "+1.17 s", "–"]
    assert [r.gap for r in rows] == ["+3.0 ms", "+0.0 ms", "+1.16 s", ""]
    assert rows[0].time == "17:28:01.005" and rows[0].ts_iso == "2025-12-15T17:28:01.005Z"


def test_the_first_row_of_the_first_page_has_no_gap():
    assert display.table_rows([decision(0, 0.0)])[0].gap == ""


def test_a_step_back_in_time_shows_a_negative_gap():
    assert display.table_rows([decision(0, 10.0), decision(1, 4.0)])[1].gap == "-6.0 ms"


def test_the_values_preview_is_short_and_flat():
    values = {"afr_error_pct": 0.73, "weight": 73.3, "cells": [1, 2, 3], "roll": {"d20": 13}, "more": "x"}
    assert display.preview(values) == "afr_error_pct=0.73 weight=73.3 cells=[3] roll={…} …"
    assert display.preview({}) == "" and display.preview(None) == ""
    assert len(display.preview({"k": "x" * 500, "j": "y" * 500})) <= display.PREVIEW_CHARS


def test_numbers_are_kept_as_written():
    written = display.parse_as_written('{"limit": 10.0, "n": 10, "e": 1e3, "z": -0.50, "x": NaN}')
    nodes, cut = display.tree(written)
    assert [(n.key, n.text, n.type) for n in nodes[1:]] == [
        ("limit", "10.0", "number"), ("n", "10", "number"), ("e", "1e3", "number"), ("z", "-0.50", "number"),
        ("x", "NaN", "number"),
    ]
    assert not cut


def test_the_tree_is_flat_rows_in_document_order_with_depths():
    nodes, _ = display.tree(display.parse_as_written('{"a": {"b": [1, "two", null, true]}, "c": "s"}'))
    assert [(n.depth, n.key, n.text) for n in nodes] == [
        (0, "", "{2 keys}"), (1, "a", "{1 key}"), (2, "b", "[4 items]"), (3, "0", "1"), (3, "1", "two"),
        (3, "2", "null"), (3, "3", "true"), (1, "c", "s"),
    ]


def test_a_huge_or_deep_value_is_cut_short():
    nodes, cut = display.tree(list(range(display.TREE_MAX_NODES + 10)))
    assert cut and len(nodes) == display.TREE_MAX_NODES
    deep = {}
    inner = deep
    for _ in range(display.TREE_MAX_DEPTH + 5):
        inner["k"] = {}
        inner = inner["k"]
    nodes, _ = display.tree(deep)
    assert max(n.depth for n in nodes) <= display.TREE_MAX_DEPTH + 1
    assert nodes[-1].text == "deeper levels not shown"


def test_too_deep_json_is_refused_as_a_tree_not_crashed():
    with pytest.raises(ValueError):
        display.parse_as_written("[" * 100_000 + "]" * 100_000)


def test_an_llm_call_is_read_as_plain_texts():
    record = {
        "event_type": "llm_call", "model": "<b>m</b>", "temperature": 0.7,
        "tokens": {"input": 10, "output": 5},
        "prompt": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        "response": "hello",
    }
    call = display.llm_call(record)
    assert (call.model, call.temperature, call.tokens_in, call.tokens_out) == ("<b>m</b>", "0.7", "10", "5")
    assert [(m.role, m.content) for m in call.messages] == [("system", "be brief"), ("user", "hi")]
    assert call.response == "hello"
    assert display.llm_call({"event_type": "round_start"}) is None


def test_colours_come_from_the_runs_actions_and_fall_back_to_the_name():
    colours = display.palette(["A", "B", "C"])
    assert len(set(colours.values())) == 3
    assert display.colour("B", colours) == colours["B"]
    assert display.colour("Z", colours) == display.colour("Z") == display.colour("Z", None)
