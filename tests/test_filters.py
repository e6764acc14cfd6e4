"""The filter grammar (viewer/filters.py): parsing only. What the filters select: test_selectors.py."""
import datetime as dt
from urllib.parse import quote

import pytest
from django.http import QueryDict

from viewer import filters as F
from viewer.filters import DecisionFilterForm, ValueCondition, describe_filters, parse_condition


def parse(qs: str) -> DecisionFilterForm:
    form = DecisionFilterForm(QueryDict(qs))
    form.is_valid()
    return form


@pytest.mark.parametrize(
    "qs, expected",
    [
        ("", {}),
        ("action=gradient", {"action": ("gradient",)}),
        ("action=gradient&action=CLAMP", {"action": ("gradient", "CLAMP")}),
        ("action=&q=", {}),
        ("q=blend toward", {"q": "blend toward"}),
        ("rpm=2000&kpa=65&cylinder=f", {"rpm": 2000, "kpa": 65, "cylinder": "f"}),
        ("rpm_index=0&kpa_index=1", {"rpm_index": 0, "kpa_index": 1}),
        ("round=2&agent=player_01", {"round": 2, "agent": "player_01"}),
        ("rpm_min=1500&rpm_max=3000", {"rpm_min": 1500, "rpm_max": 3000}),
        ("kpa_min=50&kpa_max=50", {"kpa_min": 50, "kpa_max": 50}),
        ("round_min=1&round_max=3", {"round_min": 1, "round_max": 3}),
        ("t_from=1.5&t_to=20", {"t_from": 1.5, "t_to": 20.0}),
        ("t_from=0", {"t_from": 0.0}),
        ("model=gpt-5-mini&agent_type=dm", {"model": "gpt-5-mini", "agent_type": "dm"}),
        ("temperature=0.7", {"temperature": 0.7}),
        ("temperature_min=0.5&temperature_max=1", {"temperature_min": 0.5, "temperature_max": 1.0}),
        ("correlation_id=round_1_0f0e0d0c", {"correlation_id": "round_1_0f0e0d0c"}),
    ],
)
def test_valid_querystrings_become_typed_filters(qs, expected):
    form = parse(qs)
    assert form.is_valid(), form.errors
    assert form.filters() == expected


@pytest.mark.parametrize(
    "qs, bad",
    [
        ("rpm=abc", "rpm"),
        ("kpa=6.5", "kpa"),
        ("rpm_index=x", "rpm_index"),
        ("round=one", "round"),
        ("round_min=3&round_max=1", "round_max"),
        ("rpm_min=4000&rpm_max=2000", "rpm_max"),
        ("t_from=soon", "t_from"),
        ("t_to=nan", "t_to"),
        ("t_from=inf", "t_from"),
        ("t_from=10&t_to=5", "t_to"),
        ("since=yesterday", "since"),
        ("since=2025-12-16T00:00:00Z&until=2025-12-15T00:00:00Z", "until"),
        ("v=afr_error_pct", "v"),
        ("v=>5", "v"),
        ("v=a..b=1", "v"),
        ("v=score<", "v"),
        ("v=ok>true", "v"),
        ("after=x", "after"),
        ("after=-2", "after"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("rpm=99999999999", "rpm"),
        ("v=afr_error_pct>>1", "v"),  # issue 13.11: ">1" is not a number
        ("v=afr_error_pct<=abc", "v"),
        ('v=type>="Spatial"', "v"),
        ("v=a>=1%00", "v"),
        ("action=%00", "action"),
        ("since=2025-01-01T00:00:00%00", "since"),
        ("t_from=2.6e14", "t_from"),
        ("t_to=-1.5e14", "t_to"),
        ("since=0001-01-01T00:00:00%2B05:00", "since"),
        ("until=9999-12-31T23:59:59-05:00", "until"),
        ("temperature=warm", "temperature"),
        ("temperature=nan", "temperature"),
        ("temperature_min=inf", "temperature_min"),
        ("temperature_min=1&temperature_max=0.5", "temperature_max"),
        ("model=%00", "model"),
        ("correlation_id=" + "x" * 501, "correlation_id"),
    ],
)
def test_a_malformed_parameter_is_an_error_naming_it(qs, bad):
    form = parse(qs)
    assert not form.is_valid()
    assert bad in form.errors
    assert form.error_text().startswith(f"{bad}: ") or f"; {bad}: " in form.error_text()


def test_error_text_names_every_bad_parameter():
    form = parse("rpm=x&t_from=y&q=ok")
    text = form.error_text()
    assert "rpm: " in text and "t_from: " in text and "q:" not in text


def test_too_many_repeated_values_are_refused():
    form = parse("&".join(["action=a"] * 51))
    assert "action" in form.errors


def test_paging_is_separate_from_filters():
    form = parse("action=afr&after=10&limit=5")
    assert form.filters() == {"action": ("afr",)}
    assert form.paging() == {"after": 10, "limit": 5}


@pytest.mark.parametrize(
    "text, path, op, value",
    [
        ("afr_error_pct>=5", ("afr_error_pct",), ">=", 5),
        ("afr_error_pct >= 5", ("afr_error_pct",), ">=", 5),
        ("score<4.5", ("score",), "<", 4.5),
        ("limit=10.0", ("limit",), "=", 10.0),
        ("margin>-3", ("margin",), ">", -3),
        ("passes!=2", ("passes",), "!=", 2),
        ("type=Spatial discontinuity", ("type",), "=", "Spatial discontinuity"),
        ("roll.margin<=0", ("roll", "margin"), "<=", 0),
        ("cells.0.clamped=-7", ("cells", "0", "clamped"), "=", -7),
        ('code="10"', ("code",), "=", "10"),
        ('word="true"', ("word",), "=", "true"),
        ("success=true", ("success",), "=", True),
        ("success!=false", ("success",), "!=", False),
        ("afr_commanded=null", ("afr_commanded",), "=", None),
        ("letter_grade=", ("letter_grade",), "=", ""),
        ("value=nan", ("value",), "=", "nan"),
    ],
)
def test_value_conditions_parse_key_operator_and_typed_value(text, path, op, value):
    cond = parse_condition(text)
    assert (cond.path, cond.op, cond.value) == (path, op, value)
    assert type(cond.value) is type(value)


@pytest.mark.parametrize(
    "cond, kind",
    [
        (ValueCondition(("a",), "=", 1), "number"),
        (ValueCondition(("a",), "=", 1.5), "number"),
        (ValueCondition(("a",), "=", "x"), "string"),
        (ValueCondition(("a",), "=", True), "bool"),
        (ValueCondition(("a",), "=", None), "null"),
    ],
)
def test_a_condition_knows_which_json_type_it_matches(cond, kind):
    assert cond.json_type == kind
    assert cond.is_number is (kind == "number")


@pytest.mark.parametrize("text", ["a>=5", "a=x y", 'a="10"', "a=true", "a=null", "b.c!=-2.5", 'a="nan"'])
def test_a_condition_prints_as_text_that_parses_back_to_it(text):
    cond = parse_condition(text)
    assert parse_condition(str(cond)) == cond


def test_value_conditions_repeat_and_are_anded_in_order():
    form = parse("v=weight>70&v=weight<72")
    assert [str(c) for c in form.filters()["v"]] == ["weight>70", "weight<72"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025-12-15T17:28:01.803Z", dt.datetime(2025, 12, 15, 17, 28, 1, 803000, tzinfo=dt.timezone.utc)),
        ("2025-12-15T17:28:01", dt.datetime(2025, 12, 15, 17, 28, 1, tzinfo=dt.timezone.utc)),
        ("2025-12-15 17:28:01", dt.datetime(2025, 12, 15, 17, 28, 1, tzinfo=dt.timezone.utc)),
        ("2025-12-15T18:28:01+01:00", dt.datetime(2025, 12, 15, 17, 28, 1, tzinfo=dt.timezone.utc)),
        # "+01:00" written unencoded in a URL arrives as " 01:00".
        ("2025-12-15T18:28:01 01:00", dt.datetime(2025, 12, 15, 17, 28, 1, tzinfo=dt.timezone.utc)),
        ("2025-12-15", dt.datetime(2025, 12, 15, tzinfo=dt.timezone.utc)),
    ],
)
def test_since_reads_iso_instants_naive_as_utc(text, expected):
    form = parse("since=" + quote(text))
    assert form.is_valid(), form.errors
    assert form.filters()["since"] == expected


def test_describe_reads_as_a_sentence():
    form = parse("action=gradient&action=clamp&rpm_min=2000&t_to=5&v=type=Spatial discontinuity")
    assert form.describe() == (
        "Decisions where action contains “gradient” or “clamp”; rpm ≥ 2000; time ≤ +5.0 ms; "
        "value type=Spatial discontinuity."
    )
    assert describe_filters({}) == "All decisions."


def test_describe_says_times_in_human_units_not_raw_milliseconds():
    form = parse("t_from=181547&t_to=7384000")
    assert form.describe() == "Decisions where time ≥ +3:01.5; time ≤ +2:03:04."


def test_every_parameter_of_the_spec_table_is_a_form_field():
    spec = {
        "action", "q", "rpm", "kpa", "cylinder", "rpm_index", "kpa_index", "round", "agent", "rpm_min",
        "rpm_max", "kpa_min", "kpa_max", "round_min", "round_max", "t_from", "t_to", "since", "until", "v",
        "after", "limit", "model", "agent_type", "temperature", "temperature_min", "temperature_max",
        "correlation_id", "label", "noted",
    }
    assert set(F.ALL_PARAMS) == spec
    assert set(DecisionFilterForm.base_fields) == spec


def test_an_ordering_condition_with_a_value_that_is_not_a_number_names_it():
    form = parse("v=afr_error_pct%3E%3E1")
    assert form.error_text() == "v: 'afr_error_pct>>1': > compares numbers, and '>1' is not a number"


def test_the_time_window_may_reach_about_three_thousand_years():
    assert parse("t_from=-1e14&t_to=1e14").is_valid()
