"""The one filter grammar (SPEC.md, "Filters"): querystring -> typed keyword arguments.

Page, htmx fragment, every export, the chart, the API and the CLI parse filters with
DecisionFilterForm and pass `form.filters()` to selectors.decision_list().
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django import forms
from django.http import QueryDict

from .text import clock

ACTION = "action"
Q = "q"
RPM, KPA, CYLINDER, RPM_INDEX, KPA_INDEX, ROUND, AGENT = "rpm", "kpa", "cylinder", "rpm_index", "kpa_index", "round", "agent"
RPM_MIN, RPM_MAX, KPA_MIN, KPA_MAX, ROUND_MIN, ROUND_MAX = "rpm_min", "rpm_max", "kpa_min", "kpa_max", "round_min", "round_max"
T_FROM, T_TO, SINCE, UNTIL = "t_from", "t_to", "since", "until"
VALUE = "v"
# Filters on a key of the decision's values (a session's LLM calls and v1.2 event chains): exact
# strings, and the temperature exact or as a range.
MODEL, AGENT_TYPE, CORRELATION_ID = "model", "agent_type", "correlation_id"
TEMPERATURE, TEMPERATURE_MIN, TEMPERATURE_MAX = "temperature", "temperature_min", "temperature_max"
# parameter -> (key in values, the condition's operator)
VALUE_KEYS = {
    MODEL: ("model", "="), AGENT_TYPE: ("agent_type", "="), CORRELATION_ID: ("correlation_id", "="),
    TEMPERATURE: ("temperature", "="), TEMPERATURE_MIN: ("temperature", ">="),
    TEMPERATURE_MAX: ("temperature", "<="),
}
# Notes (issue 20.2): decisions with a note carrying any of the labels, or with any note at all.
LABEL, NOTED = "label", "noted"
NOTE_FILTERS = (LABEL, NOTED)  # what changes when a note does: never served from a kept aggregate
AFTER, LIMIT = "after", "limit"

# Everything that narrows the set; AFTER and LIMIT page through it.
FILTER_PARAMS = (
    ACTION, Q, RPM, KPA, CYLINDER, RPM_INDEX, KPA_INDEX, ROUND, AGENT, RPM_MIN, RPM_MAX, KPA_MIN, KPA_MAX,
    ROUND_MIN, ROUND_MAX, T_FROM, T_TO, SINCE, UNTIL, VALUE,
    MODEL, AGENT_TYPE, TEMPERATURE, TEMPERATURE_MIN, TEMPERATURE_MAX, CORRELATION_ID, LABEL, NOTED,
)
ALL_PARAMS = FILTER_PARAMS + (AFTER, LIMIT)
MAX_LIMIT = 10_000_000
OPERATORS = ("<=", ">=", "!=", "<", ">", "=")
ORDERING = ("<", "<=", ">", ">=")
# t_from/t_to go at most this far either way (about 3,170 years): further is a typo, and from a
# run's first time it would leave the calendar (years 1 to 9999; the selector copes even so).
MAX_T_MS = 1e14
_CONDITION = re.compile(r"^\s*(?P<key>[^<>=!]+?)\s*(?P<op><=|>=|!=|<|>|=)\s*(?P<value>.*?)\s*$", re.S)


@dataclass(frozen=True)
class ValueCondition:
    """`v=KEY OP VALUE`. KEY may be a dotted path into nested values (`roll.margin`)."""

    path: tuple[str, ...]
    op: str
    value: float | int | str | bool | None

    @property
    def json_type(self) -> str:
        """What the value must be in the JSON to match: "number", "string", "bool" or "null"."""
        if self.value is None:
            return "null"
        if isinstance(self.value, bool):
            return "bool"
        return "string" if isinstance(self.value, str) else "number"

    @property
    def is_number(self) -> bool:
        return self.json_type == "number"

    def __str__(self):
        if self.json_type in ("bool", "null"):
            shown = {True: "true", False: "false", None: "null"}[self.value]
        elif self.json_type == "string" and _looks_typed(self.value):
            shown = f'"{self.value}"'
        else:
            shown = self.value
        return f"{'.'.join(self.path)}{self.op}{shown}"


def _looks_typed(text: str) -> bool:
    """Whether the string would be read back as something else than that string."""
    if text in ("true", "false", "null") or (len(text) >= 2 and text[0] == text[-1] == '"'):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_condition(text: str) -> ValueCondition:
    _no_nul(text)
    m = _CONDITION.match(text)
    if not m or not m["key"].strip():
        raise forms.ValidationError(
            "%(text)r is not KEY OP VALUE with OP one of < <= > >= = !=", params={"text": text[:100]}
        )
    path = tuple(part for part in m["key"].strip().split("."))
    if any(not part for part in path):
        raise forms.ValidationError("%(text)r has an empty key", params={"text": text[:100]})
    raw = m["value"]
    value: float | int | str | bool | None
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        value = raw[1:-1]  # a quoted value is a string, even `"10"` or `"true"`
    elif raw in _CONSTANTS:
        value = _CONSTANTS[raw]
        if m["op"] not in ("=", "!="):
            raise forms.ValidationError(
                "%(text)r: %(raw)s only compares with = or !=", params={"text": text[:100], "raw": raw}
            )
    else:
        try:
            value = int(raw)
        except ValueError:
            try:
                value = float(raw)
                if value != value or value in (float("inf"), float("-inf")):
                    value = raw
            except ValueError:
                value = raw
    if isinstance(value, str) and m["op"] in ORDERING:
        # `v=afr_error_pct>>1` would otherwise compare with the string ">1" and match nothing.
        raise forms.ValidationError(
            "%(text)r: %(op)s compares numbers, and %(raw)r is not a number",
            params={"text": text[:100], "op": m["op"], "raw": raw[:100]},
        )
    return ValueCondition(path, m["op"], value)


_CONSTANTS = {"true": True, "false": False, "null": None}


def _no_nul(text: str) -> None:
    """PostgreSQL cannot hold NUL in a query parameter: refused here like Django's CharField does."""
    if "\x00" in text:
        raise forms.ValidationError("Null characters are not allowed.")


class _ListWidget(forms.MultipleHiddenInput):
    def value_from_datadict(self, data, files, name):
        getlist = getattr(data, "getlist", None)
        values = getlist(name) if getlist else data.get(name, [])
        if isinstance(values, str):
            values = [values]
        return [v for v in values if v != ""]


class ListField(forms.Field):
    """A repeatable parameter (`action=a&action=b`)."""

    widget = _ListWidget

    def __init__(self, item=None, **kwargs):
        self.item = item
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, value):
        value = value or []
        if len(value) > 50:
            raise forms.ValidationError("at most 50 values")
        for v in value:
            _no_nul(v)
        return [self.item(v) if self.item else v for v in value]


def _instant(text: str) -> dt.datetime:
    text = text.strip()
    # An unencoded "+00:00" in a URL arrives as " 00:00": read the last space back as a plus.
    head, space, tail = text.rpartition(" ")
    candidates = (text, f"{head}+{tail}") if space and ":" in tail and len(tail) <= 5 else (text,)
    for candidate in candidates:
        try:
            value = dt.datetime.fromisoformat(candidate)
        except ValueError:
            continue
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        try:
            value.astimezone(dt.timezone.utc)  # what the database is given
        except OverflowError:
            raise forms.ValidationError(
                "%(text)r is outside the years 1 to 9999 in UTC", params={"text": text[:60]}
            ) from None
        return value
    raise forms.ValidationError("%(text)r is not an ISO-8601 time", params={"text": text[:60]})


class InstantField(forms.CharField):
    def to_python(self, value):
        if isinstance(value, str):
            _no_nul(value)
        value = super().to_python(value)
        return _instant(value) if value else None


def _label(text: str) -> str:
    from .notes import LABEL as SHAPE

    label = text.strip().lower()
    if not SHAPE.match(label):
        raise forms.ValidationError(
            "%(text)r is not a label (up to 40 letters, digits, '-', '_' or '.')", params={"text": text[:60]})
    return label


class NotedField(forms.Field):
    """`noted=1`: only the decisions with a note; `0` or nothing: no narrowing."""

    def to_python(self, value):
        if value in (None, "", "0", "false", "no"):
            return None
        if value in ("1", "true", "yes"):
            return True
        raise forms.ValidationError("use 1 (only the decisions with a note) or 0")


def _int(**kw):
    return forms.IntegerField(required=False, min_value=-(2**31), max_value=2**31 - 1, **kw)


class ParameterForm(forms.Form):
    """A form over a URL's parameters: a bad one is a 400 (or a form error) that names it."""

    def error_text(self) -> str:
        """`name: message` for each bad parameter, in one line."""
        return "; ".join(f"{name}: {e}" for name, errors in self.errors.items() for e in errors)


class DecisionFilterForm(ParameterForm):
    action = ListField(label="Action contains")
    q = forms.CharField(required=False, max_length=500, label="Text")
    rpm = _int()
    kpa = _int()
    cylinder = forms.CharField(required=False, max_length=500)
    rpm_index = _int()
    kpa_index = _int()
    round = _int()
    agent = forms.CharField(required=False, max_length=500)
    rpm_min = _int()
    rpm_max = _int()
    kpa_min = _int()
    kpa_max = _int()
    round_min = _int()
    round_max = _int()
    t_from = forms.FloatField(required=False, label="From (ms)")
    t_to = forms.FloatField(required=False, label="To (ms)")
    since = InstantField(required=False)
    until = InstantField(required=False)
    v = ListField(item=parse_condition, label="Value conditions")
    model = forms.CharField(required=False, max_length=500)
    agent_type = forms.CharField(required=False, max_length=500, label="Agent type")
    temperature = forms.FloatField(required=False)
    temperature_min = forms.FloatField(required=False)
    temperature_max = forms.FloatField(required=False)
    correlation_id = forms.CharField(required=False, max_length=500, label="Correlation id")
    label = ListField(item=_label, label="Label")
    noted = NotedField(required=False, label="With a note")
    after = forms.IntegerField(required=False, min_value=-1)
    limit = forms.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT)

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data if data is not None else QueryDict(), *args, **kwargs)

    def clean(self):
        data = super().clean()
        for low, high in ((RPM_MIN, RPM_MAX), (KPA_MIN, KPA_MAX), (ROUND_MIN, ROUND_MAX), (T_FROM, T_TO), (SINCE, UNTIL),
                          (TEMPERATURE_MIN, TEMPERATURE_MAX)):
            if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
                self.add_error(high, f"{high} is before {low}")
        for name in (T_FROM, T_TO, TEMPERATURE, TEMPERATURE_MIN, TEMPERATURE_MAX):
            value = data.get(name)
            if value is not None and (value != value or abs(value) == float("inf")):
                self.add_error(name, "not a finite number")
            elif value is not None and abs(value) > MAX_T_MS:
                self.add_error(name, f"at most {MAX_T_MS:.0e} ms (about 3,000 years) either way")
        return data

    def filters(self) -> dict:
        """The narrowing filters as keyword arguments for decision_list (no paging)."""
        data = self.cleaned_data
        out = {}
        for name in FILTER_PARAMS:
            value = data.get(name)
            if value in (None, "", []):
                continue
            out[name] = tuple(value) if isinstance(value, list) else value
        return out

    def paging(self) -> dict:
        return {name: self.cleaned_data[name] for name in (AFTER, LIMIT) if self.cleaned_data.get(name) is not None}


    def describe(self) -> str:
        """The filters as a sentence, for audit trails and headings."""
        f = self.filters() if self.is_valid() else {}
        return describe_filters(f)


def describe_filters(f: dict) -> str:
    if not f:
        return "All decisions."
    parts = []
    if ACTION in f:
        parts.append("action contains " + " or ".join(f"“{a}”" for a in f[ACTION]))
    if Q in f:
        parts.append(f"text contains “{f[Q]}”")
    for name in (RPM, KPA, CYLINDER, RPM_INDEX, KPA_INDEX, ROUND, AGENT):
        if name in f:
            parts.append(f"{name} = {f[name]}")
    for low, high, what in ((RPM_MIN, RPM_MAX, "rpm"), (KPA_MIN, KPA_MAX, "kpa"), (ROUND_MIN, ROUND_MAX, "round"),
                            (TEMPERATURE_MIN, TEMPERATURE_MAX, "temperature")):
        if low in f:
            parts.append(f"{what} ≥ {f[low]}")
        if high in f:
            parts.append(f"{what} ≤ {f[high]}")
    if T_FROM in f:
        parts.append(f"time ≥ {clock(f[T_FROM])}")
    if T_TO in f:
        parts.append(f"time ≤ {clock(f[T_TO])}")
    if SINCE in f:
        parts.append(f"since {f[SINCE].isoformat()}")
    if UNTIL in f:
        parts.append(f"until {f[UNTIL].isoformat()}")
    for name in (MODEL, AGENT_TYPE, CORRELATION_ID):
        if name in f:
            parts.append(f"{name} = {f[name]}")
    if TEMPERATURE in f:
        parts.append(f"temperature = {f[TEMPERATURE]:g}")
    for cond in f.get(VALUE, ()):
        parts.append(f"value {cond}")
    if LABEL in f:
        parts.append("labelled " + " or ".join(f"“{a}”" for a in f[LABEL]))
    if NOTED in f:
        parts.append("with a note")
    text = "; ".join(parts)
    return "Decisions where " + text + "."


def filter_querystring(query: QueryDict) -> str:
    """The filter parameters of `query` (no cursor, no paging, no empty values), urlencoded without
    a leading "?": what links to the other faces of a run carry to show the same decisions."""
    params = QueryDict(mutable=True)
    for name in FILTER_PARAMS:
        values = [v for v in query.getlist(name) if v != ""]
        if values:
            params.setlist(name, values)
    return params.urlencode()
