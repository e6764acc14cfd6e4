"""Cell heatmaps: a run's decisions aggregated over a grid, and one cell's drilldown.

DynoAI runs use the VE grid, RPM bins x KPA bins (FORMATS.md 1.3). AFR corrections and anomalies
carry bin values (rpm, kpa); gradient limiting carries indices (rpm_index, kpa_index) on the
combined front+rear grid, and clamping lists its cells by index inside values.cells: indices are
placed on the standard bins (RPM_BINS x KPA_BINS). Sessions use round x agent, study logs time
bucket x event type.

Pure functions over selector output: the cells page, its fragments and the API call them with the
run and the parsed filters, and every read goes through selectors.filtered_decisions. Counts and
means are GROUP BY queries over real columns (PERF.md: aggregating JSON values is 25x slower on
SQLite); JSON is read only for a value key the user picks and for the few clamping records.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django import forms
from django.db.models import Case, CharField, Count, F, FloatField, Func, Max, Min, Q, Sum, When
from django.db.models.fields.json import KeyTextTransform, compile_json_path
from django.db.models.functions import Cast, Floor

from . import filters as FP
from .memo import run_memo
from .models import Decision, Run
from .selectors import filtered_decisions

RPM_BINS = (1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500)
KPA_BINS = (35, 50, 65, 80, 95)
AFR, GRADIENT, CLAMP, ANOMALY = "AFR_CORRECTION", "GRADIENT_LIMITING", "CLAMPING_APPLIED", "ANOMALY_DETECTED"
LLM_CALL, RESOLUTION = "llm_call", "action_resolution"

CYLINDERS = {"both": "front and rear", "f": "front", "r": "rear"}
VALUE_PREFIX = "value:"
MAX_VALUE_KEYS = 40  # numeric value keys offered as metrics
KEY_SAMPLE = 25  # decisions per action read to discover those keys
MAX_AXIS = 400  # agents / event types shown; the rest are counted in a note
DRILL_ROWS = 200  # decisions listed in a drilldown
DRILL_POINTS = 2000  # decisions charted in a drilldown
MAX_CHARTS = 12
BUCKET_WIDTHS_MS = [
    s * 1000
    for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
]
MAX_BUCKETS = 48

INDEX_NOTE = (
    "Gradient limiting and clamping are logged with grid indices (rpm_index, kpa_index) and no cylinder, "
    "on the combined front+rear grid; they are placed on the standard bins: RPM 1500–6500 in steps of 500 "
    "(index 0–10) × KPA 35, 50, 65, 80, 95 (index 0–4)."
)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    per_cylinder: bool = True  # the cylinder choice applies (False: logged on the combined grid)
    diverging: bool = False  # signed values: colours centred on zero
    digits: int = 2


DYNO_METRICS = (
    Metric("count", "Decisions (count)", digits=0),
    Metric("afr_mean", "AFR error % (mean)", diverging=True),
    Metric("afr_last", "AFR error % (last)", diverging=True),
    Metric("gradient_count", "Gradient-limited (count)", per_cylinder=False, digits=0),
    Metric("gradient_result", "Gradient-limited result (last)", per_cylinder=False, diverging=True),
    Metric("clamped", "Clamped: original → clamped", per_cylinder=False, diverging=True),
    Metric("anomaly_score", "Anomaly score (max)", per_cylinder=False),
)
SESSION_METRICS = (
    Metric("events", "Events (count)", digits=0),
    Metric("tokens", "LLM tokens (input + output)", digits=0),
    Metric("success", "Resolution success rate (%)", digits=0),
    Metric("margin", "Resolution roll margin (mean)", diverging=True, digits=1),
)
STUDY_METRICS = (Metric("events", "Events (count)", digits=0),)


# ---------------------------------------------------------------------------------------------
# Metrics on offer


def available_metrics(*, run: Run) -> list[Metric]:
    """The metrics a run's heatmap can show; DynoAI adds every numeric value key of its located decisions."""
    if run.kind == Run.Kind.SESSION:
        return list(SESSION_METRICS)
    if run.kind == Run.Kind.STUDY:
        return list(STUDY_METRICS)
    return list(DYNO_METRICS) + [
        Metric(VALUE_PREFIX + key, f"value “{key}” (mean)", diverging=True, digits=3)
        for key in run_memo(run, "cells:value-keys", {}, lambda: _value_keys(run))
    ]


def _value_keys(run: Run) -> list[str]:
    """Numeric top-level value keys of the actions that have cells, read from a few decisions per action
    (the action list comes from the (run, action) index; no scan of the run)."""
    qs = filtered_decisions(run=run)
    actions = qs.values_list("action", flat=True).distinct().order_by("action")
    keys: dict[str, None] = {}
    for action in list(actions[:50]):
        sample = qs.filter(action=action).values_list("rpm", "rpm_index", "values")[:KEY_SAMPLE]
        for rpm, rpm_index, values in sample:
            if (rpm is not None or rpm_index is not None) and isinstance(values, dict):
                for key, value in values.items():
                    if _is_number(value):
                        keys.setdefault(key, None)
    return sorted(keys, key=str.lower)[:MAX_VALUE_KEYS]


def metric_by_key(metrics: list[Metric], key: str | None) -> Metric:
    for m in metrics:
        if m.key == key:
            return m
    return metrics[0]


# ---------------------------------------------------------------------------------------------
# The panel's own parameters (the decision filters are DecisionFilterForm's)

METRIC, CYL = "metric", "cyl"
CELL_KEYS = {
    Run.Kind.DYNOAI: ("cell_rpm", "cell_kpa"),
    Run.Kind.SESSION: ("cell_round", "cell_agent"),
    Run.Kind.STUDY: ("cell_action", "cell_t", "cell_w"),
}
CELL_PARAMS = (
    METRIC,
    CYL,
    "cell_rpm",
    "cell_kpa",
    "cell_round",
    "cell_agent",
    "cell_action",
    "cell_t",
    "cell_w",
)


def _cell_int():
    return forms.IntegerField(required=False, min_value=-(2**31), max_value=2**31 - 1)


class CellOptionsForm(forms.Form):
    """metric, cyl (DynoAI: f, r or both) and the selected cell (`cell_*`: its drilldown)."""

    metric = forms.CharField(required=False, max_length=600)
    cyl = forms.ChoiceField(required=False, choices=list(CYLINDERS.items()))
    cell_rpm = _cell_int()
    cell_kpa = _cell_int()
    cell_round = _cell_int()
    cell_agent = forms.CharField(required=False, max_length=500, strip=False)
    cell_action = forms.CharField(required=False, max_length=500, strip=False)
    cell_t = forms.FloatField(required=False)
    cell_w = forms.IntegerField(required=False, min_value=1, max_value=10 * 365 * 86_400_000)

    def __init__(self, data, *, run: Run, metrics: list[Metric] | None = None):
        super().__init__(data)
        self.run = run
        self.metrics = metrics if metrics is not None else available_metrics(run=run)

    def clean_metric(self):
        key = self.cleaned_data.get(METRIC) or ""
        if key and key not in {m.key for m in self.metrics}:
            raise forms.ValidationError("%(key)r is not a metric of this run", params={"key": key[:100]})
        return key or self.metrics[0].key

    def clean_cyl(self):
        return self.cleaned_data.get(CYL) or "both"

    def clean_cell_t(self):
        value = self.cleaned_data.get("cell_t")
        if value is not None and not math.isfinite(value):
            raise forms.ValidationError("not a finite number")
        return value

    def clean(self):
        data = super().clean()
        names = CELL_KEYS[self.run.kind]
        given = [n for n in names if data.get(n) not in (None, "")]
        if given and len(given) != len(names):
            missing = [n for n in names if n not in given]
            self.add_error(missing[0], f"a cell needs {', '.join(names)}")
        return data

    def cell_key(self) -> dict | None:
        """The selected cell's key (as in cell_grid's cells), or None."""
        names = CELL_KEYS[self.run.kind]
        key = {n: self.cleaned_data.get(n) for n in names}
        return key if all(v not in (None, "") for v in key.values()) else None

    def error_text(self) -> str:
        return "; ".join(f"{name}: {e}" for name, errors in self.errors.items() for e in errors)


# ---------------------------------------------------------------------------------------------
# The grid


def cell_grid(
    *,
    run: Run,
    filters: dict,
    metric: str | None = None,
    cylinder: str = "both",
    metrics: list[Metric] | None = None,
) -> dict:
    """The heatmap of one metric over the run's filtered decisions, as plain JSON-able data.

    x/y hold the axis labels, z the values (rows follow y; None where a cell has no data), and
    `cells` one entry per cell with data: its value and count, a short text, detail lines, the
    filter parameters that select its decisions in the run view (`links`) and its drilldown key.
    """
    metrics = metrics if metrics is not None else available_metrics(run=run)
    m = metric_by_key(metrics, metric)
    cylinder = cylinder if cylinder in CYLINDERS else "both"
    if run.kind == Run.Kind.SESSION:
        grid = _session_grid(run, filters, m)
    elif run.kind == Run.Kind.STUDY:
        grid = _study_grid(run, filters, m)
    else:
        grid = _dyno_grid(run, filters, m, cylinder)
    grid.update(
        kind=run.kind,
        metric=m.key,
        metric_label=m.label,
        diverging=m.diverging,
        counts_from_zero=not m.diverging,
        metrics=[{"key": x.key, "label": x.label} for x in metrics],
    )
    return grid


def _empty_grid(x_title: str, y_title: str) -> dict:
    return {
        "x_title": x_title,
        "y_title": y_title,
        "x": [],
        "y": [],
        "x_values": [],
        "y_values": [],
        "z": [],
        "cells": [],
        "notes": [],
        "cylinder": None,
    }


def _finish(grid: dict, cells: list[dict]) -> dict:
    """Fill z from the cells (None elsewhere: no data is blank, not zero)."""
    grid["z"] = [[None] * len(grid["x"]) for _ in grid["y"]]
    for c in cells:
        grid["z"][c["row"]][c["col"]] = c["value"]
    grid["cells"] = cells
    return grid


@dataclass
class _Acc:
    """What one DynoAI cell holds. `rc` = rows with rpm/kpa, keyed (cylinder, action); `ix` = index rows."""

    rc: dict = field(default_factory=dict)
    ix: dict = field(default_factory=dict)
    index: tuple[int, int] | None = None
    clamps: list = field(default_factory=list)  # (seq, original, clamped)
    values: dict = field(default_factory=dict)  # value-key metric: "rc"/"ix" -> (n, sum)


def _dyno_grid(run: Run, filters: dict, m: Metric, cylinder: str) -> dict:
    grid = _empty_grid("KPA", "RPM")
    grid["cylinder"] = cylinder
    qs = filtered_decisions(run=run, **filters)
    cells: dict[tuple[int, int], _Acc] = defaultdict(_Acc)
    stats = ("n", "m_n", "m_sum", "m_max", "last")
    aggregates = dict(
        n=Count("pk"), m_n=Count("metric"), m_sum=Sum("metric"), m_max=Max("metric"), last=Max("seq")
    )

    # One pass over the run: rows with bins and rows with indices, by cylinder and action.
    outside = 0
    located = qs.values("rpm", "kpa", "cylinder", "rpm_index", "kpa_index", "action").annotate(**aggregates)
    for row in located.order_by():
        if row["rpm"] is not None and row["kpa"] is not None:
            acc = cells[(row["rpm"], row["kpa"])]
            key = (row["cylinder"], row["action"])
            acc.rc[key] = _add_stats(acc.rc.get(key), row, stats)
        if row["rpm_index"] is not None and row["kpa_index"] is not None:
            b = _bins_of(row["rpm_index"], row["kpa_index"])
            if b is None:
                outside += row["n"]
                continue
            acc = cells[b]
            acc.index = (row["rpm_index"], row["kpa_index"])
            acc.ix[row["action"]] = _add_stats(acc.ix.get(row["action"]), row, stats)
    if m.key == "clamped" or (m.key == "count" and cylinder == "both"):
        # Clamping lists its cells inside values.cells: the toolkit logs one such decision per run.
        for seq, entries in qs.filter(action=CLAMP).values_list("seq", "values__cells"):
            for i, j, original, clamped in _clamp_entries({"cells": entries}):
                b = _bins_of(i, j)
                if b is None:
                    outside += 1
                    continue
                cells[b].index = (i, j)
                cells[b].clamps.append((seq, original, clamped))
    if m.key.startswith(VALUE_PREFIX):
        _value_sums(qs, m.key[len(VALUE_PREFIX) :], cells, cylinder)

    if not cells:
        grid["notes"].append("No decision of this run (with these filters) has a cell.")
        return grid
    grid["y_values"] = sorted({b[0] for b in cells})
    grid["x_values"] = sorted({b[1] for b in cells})
    grid["y"] = [str(v) for v in grid["y_values"]]
    grid["x"] = [str(v) for v in grid["x_values"]]
    rows = {v: i for i, v in enumerate(grid["y_values"])}
    cols = {v: j for j, v in enumerate(grid["x_values"])}

    last_seqs = set()
    for acc in cells.values():
        for (cyl, action), s in acc.rc.items():
            if action == AFR:
                last_seqs.add(s["last"])
        if GRADIENT in acc.ix:
            last_seqs.add(acc.ix[GRADIENT]["last"])
    last_metric = dict(qs.filter(seq__in=last_seqs).values_list("seq", "metric")) if last_seqs else {}

    out = []
    for (rpm, kpa), acc in sorted(cells.items()):
        cell = _dyno_cell(m, cylinder, rpm, kpa, acc, last_metric)
        if cell is not None:
            cell.update(row=rows[rpm], col=cols[kpa], y=rpm, x=kpa, key={"cell_rpm": rpm, "cell_kpa": kpa})
            out.append(cell)
    uses_index = m.key in ("gradient_count", "gradient_result", "clamped") or (
        cylinder == "both" and (m.key == "count" or any("ix" in acc.values for acc in cells.values()))
    )
    if uses_index and any(acc.ix or acc.clamps for acc in cells.values()):
        grid["notes"].append(INDEX_NOTE)
    if outside:
        grid["notes"].append(
            f"{outside} index-based entries lie outside the standard 11 × 5 grid and are not shown."
        )
    if cylinder != "both" and not m.per_cylinder:
        grid["notes"].append(
            f"“{m.label}” is logged without a cylinder: "
            f"the {CYLINDERS[cylinder]}-cylinder choice does not apply."
        )
    elif cylinder != "both" and m.key == "count":
        grid["notes"].append(
            f"Counting only decisions logged for the {CYLINDERS[cylinder]} cylinder "
            "(gradient limiting, clamping and anomalies have none)."
        )
    return _finish(grid, out)


def _add_stats(into: dict | None, row: dict, stats) -> dict:
    """Merge one GROUP BY row's aggregates into a cell's (rows may differ in columns the cell ignores)."""
    if into is None:
        return {k: row[k] for k in stats}
    return {
        "n": into["n"] + row["n"],
        "m_n": into["m_n"] + row["m_n"],
        "m_sum": (into["m_sum"] or 0.0) + (row["m_sum"] or 0.0),
        "m_max": max((v for v in (into["m_max"], row["m_max"]) if v is not None), default=None),
        "last": max(into["last"], row["last"]),
    }


def _bins_of(i: int, j: int) -> tuple[int, int] | None:
    if 0 <= i < len(RPM_BINS) and 0 <= j < len(KPA_BINS):
        return RPM_BINS[i], KPA_BINS[j]
    return None


def index_of(rpm: int, kpa: int) -> tuple[int, int] | None:
    if rpm in RPM_BINS and kpa in KPA_BINS:
        return RPM_BINS.index(rpm), KPA_BINS.index(kpa)
    return None


def _clamp_entries(values) -> list[tuple[int, int, float | None, float | None]]:
    """CLAMPING_APPLIED's values.cells: [{rpm_index, kpa_index, original, clamped}, ...]."""
    entries = values.get("cells") if isinstance(values, dict) else None
    out = []
    for e in entries if isinstance(entries, list) else ():
        if not isinstance(e, dict):
            continue
        i, j = e.get("rpm_index"), e.get("kpa_index")
        if _is_int(i) and _is_int(j):
            out.append((i, j, _float(e.get("original")), _float(e.get("clamped"))))
    return out


class _JsonType(Func):
    """The JSON type of values[key]: integer/real/text... (SQLite), number/string... (PostgreSQL)."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(output_field=CharField())

    def as_sql(self, compiler, connection, **extra):
        column = f"{connection.ops.quote_name(Decision._meta.db_table)}.{connection.ops.quote_name('values')}"
        if connection.vendor == "postgresql":
            return f"jsonb_typeof({column} -> %s)", [self.key]
        return f"json_type({column}, %s)", [compile_json_path([self.key])]


NUMBER_TYPES = ("integer", "real", "number")


def _value_sums(qs, key: str, cells: dict, cylinder: str) -> None:
    """Mean of one JSON value per cell: JSON extraction, only for a key picked explicitly."""
    is_number = Q(_t__in=NUMBER_TYPES)
    # CASE, not an aggregate FILTER, so PostgreSQL never casts a string value to a number.
    number = Case(When(is_number, then=Cast(KeyTextTransform(key, "values"), FloatField())))
    qs = qs.alias(_t=_JsonType(key))
    per_cell = dict(n=Count("pk", filter=is_number), s=Sum(number))
    for row in qs.values("rpm", "kpa", "cylinder", "rpm_index", "kpa_index").annotate(**per_cell).order_by():
        if not row["n"]:
            continue
        if row["rpm"] is not None and row["kpa"] is not None and cylinder in ("both", row["cylinder"]):
            n, s = cells[(row["rpm"], row["kpa"])].values.get("rc", (0, 0.0))
            cells[(row["rpm"], row["kpa"])].values["rc"] = (n + row["n"], s + row["s"])
        elif row["rpm_index"] is not None and row["kpa_index"] is not None and cylinder == "both":
            b = _bins_of(row["rpm_index"], row["kpa_index"])
            if b is not None:
                cells[b].index = (row["rpm_index"], row["kpa_index"])
                n, s = cells[b].values.get("ix", (0, 0.0))
                cells[b].values["ix"] = (n + row["n"], s + row["s"])


def _dyno_cell(m: Metric, cylinder: str, rpm: int, kpa: int, acc: _Acc, last_metric: dict) -> dict | None:
    """One cell's value, count, text and links for metric m; None when the metric has no data there."""

    def rc(action=None, cyl=cylinder):
        rows = [
            s
            for (c, a), s in acc.rc.items()
            if (action is None or a == action) and (cyl == "both" or c == cyl)
        ]
        return rows

    where = {"rpm": rpm, "kpa": kpa}
    rc_params = dict(where, **({"cylinder": cylinder} if cylinder != "both" else {}))
    ix_params = {"rpm_index": acc.index[0], "kpa_index": acc.index[1]} if acc.index else None
    n_rc = sum(s["n"] for s in rc())
    n_rc_all = sum(s["n"] for s in rc(cyl="both"))
    n_ix = sum(s["n"] for s in acc.ix.values())
    links = []
    details = []

    def rc_link(n, params=rc_params):
        if n:
            links.append(
                {
                    "label": f"{n} decision{_s(n)} at RPM {rpm}, KPA {kpa}"
                    + (f", cylinder {params['cylinder']}" if "cylinder" in params else ""),
                    "params": params,
                }
            )

    def ix_link(n):
        if n and ix_params:
            links.append(
                {
                    "label": f"{n} decision{_s(n)} at index [{acc.index[0]}, {acc.index[1]}]",
                    "params": ix_params,
                }
            )

    value = count = None
    text = ""
    if m.key == "count":
        with_index = cylinder == "both"
        count = n_rc + (n_ix + len(acc.clamps) if with_index else 0)
        if not count:
            return None
        value, text = count, str(count)
        by_action = Counter()
        for (c, a), s in acc.rc.items():
            if cylinder == "both" or c == cylinder:
                by_action[a] += s["n"]
        if with_index:
            for a, s in acc.ix.items():
                by_action[a] += s["n"]
            if acc.clamps:
                by_action[CLAMP] += len(acc.clamps)
        details = [f"{a}: {n}" for a, n in by_action.most_common()]
        rc_link(n_rc)
        if with_index:
            ix_link(n_ix)
    elif m.key in ("afr_mean", "afr_last"):
        rows = [s for s in rc(AFR) if s["m_n"]]
        if not rows:
            return None
        count = sum(s["n"] for s in rows)
        n_num = sum(s["m_n"] for s in rows)
        mean = sum(s["m_sum"] for s in rows) / n_num
        last = last_metric.get(max(s["last"] for s in rows))
        value = mean if m.key == "afr_mean" else last
        if value is None:
            return None
        text = _fmt(value, 2)
        details = [
            f"AFR error mean {_fmt(mean, 2)} % over {n_num} sample{_s(n_num)}",
            f"last {_fmt(last, 2)} %" if last is not None else "last: none",
        ]
        rc_link(n_rc)
    elif m.key in ("gradient_count", "gradient_result"):
        s = acc.ix.get(GRADIENT)
        if not s:
            return None
        count = s["n"]
        last = last_metric.get(s["last"])
        mean = s["m_sum"] / s["m_n"] if s["m_n"] else None
        value = count if m.key == "gradient_count" else last
        if value is None:
            return None
        text = str(count) if m.key == "gradient_count" else _fmt(last, 2)
        details = [
            f"gradient-limited {count} time{_s(count)}",
            f"last result {_fmt(last, 2)}",
            f"mean result {_fmt(mean, 2)}",
        ]
        ix_link(n_ix)
    elif m.key == "clamped":
        entries = [(o, c) for _, o, c in acc.clamps if o is not None]
        if not entries:
            return None
        count = len(acc.clamps)
        original, clamped = entries[-1]
        value = original
        text = f"{_fmt(original, 2)}→{_fmt(clamped, 2)}"
        details = [f"#{seq}: {_fmt(o, 2)} → {_fmt(c, 2)}" for seq, o, c in acc.clamps if o is not None]
        links.extend({"label": f"clamping decision #{seq}", "seq": seq} for seq, _, _ in acc.clamps)
    elif m.key == "anomaly_score":
        rows = [s for s in rc(ANOMALY, cyl="both") if s["m_n"]]
        if not rows:
            return None
        count = sum(s["n"] for s in rows)
        value = max(s["m_max"] for s in rows)
        text = _fmt(value, 2)
        details = [f"{count} anomal{'y' if count == 1 else 'ies'}, max score {_fmt(value, 3)}"]
        rc_link(n_rc_all, where)
    elif m.key.startswith(VALUE_PREFIX):
        n1, s1 = acc.values.get("rc", (0, 0.0))
        n2, s2 = acc.values.get("ix", (0, 0.0))
        count = n1 + n2
        if not count:
            return None
        value = (s1 + s2) / count
        text = _fmt(value, m.digits)
        details = [f"mean {_fmt(value, 4)} over {count} decision{_s(count)}"]
        rc_link(n1)
        ix_link(n2)
    return {
        "value": value,
        "count": count,
        "text": text,
        "details": details,
        "decisions": n_rc + (n_ix + len(acc.clamps) if cylinder == "both" else 0),
        "index": list(acc.index) if acc.index else None,
        "links": links,
    }


# ---------------------------------------------------------------------------------------------
# Sessions: round x agent


def _session_grid(run: Run, filters: dict, m: Metric) -> dict:
    grid = _empty_grid("Agent", "Round")
    qs = filtered_decisions(run=run, **filters)
    per: dict[tuple[int, str], dict] = defaultdict(
        lambda: {"n": 0, "tokens": 0.0, "calls": 0, "m_n": 0, "m_sum": 0.0, "res": 0, "ok": 0, "known": 0}
    )
    first_seen: dict[str, int] = {}
    no_agent = 0
    rows = (
        qs.values("round", "agent", "action")
        .annotate(n=Count("pk"), m_n=Count("metric"), m_sum=Sum("metric"), first=Min("seq"))
        .order_by()
    )
    for row in rows:
        if row["agent"] is None or row["round"] is None:
            no_agent += row["n"]
            continue
        p = per[(row["round"], row["agent"])]
        p["n"] += row["n"]
        first_seen[row["agent"]] = min(first_seen.get(row["agent"], row["first"]), row["first"])
        if row["action"] == LLM_CALL:
            p["calls"] += row["n"]
            p["tokens"] += row["m_sum"] or 0.0
        elif row["action"] == RESOLUTION:
            p["res"] += row["n"]
            p["m_n"] += row["m_n"]
            p["m_sum"] += row["m_sum"] or 0.0
    if m.key == "success":
        # roll.success lives in JSON: read it only for action_resolution rows, grouped in SQL.
        resolutions = filtered_decisions(run=run, **narrow(filters, action=(RESOLUTION,)))
        exact = Q(action=RESOLUTION)
        for row in (
            resolutions.values("round", "agent")
            .annotate(
                ok=Count("pk", filter=exact & Q(values__roll__success=True)),
                fail=Count("pk", filter=exact & Q(values__roll__success=False)),
            )
            .order_by()
        ):
            if (row["round"], row["agent"]) in per:
                per[(row["round"], row["agent"])]["ok"] += row["ok"]
                per[(row["round"], row["agent"])]["known"] += row["ok"] + row["fail"]
    agents = sorted(first_seen, key=lambda a: (first_seen[a], a))
    if len(agents) > MAX_AXIS:
        grid["notes"].append(f"Only the first {MAX_AXIS} of {len(agents)} agents are shown.")
        agents = agents[:MAX_AXIS]
    if no_agent:
        grid["notes"].append(
            f"{no_agent} event{_s(no_agent)} without an agent (round markers, summaries, session events) "
            f"{'is' if no_agent == 1 else 'are'} not in the grid."
        )
    if not per:
        grid["notes"].append("No event of this run (with these filters) has a round and an agent.")
        return grid
    grid["y_values"] = sorted({r for r, _ in per})
    grid["x_values"] = agents
    grid["y"] = [str(r) for r in grid["y_values"]]
    grid["x"] = list(agents)
    rows_at = {v: i for i, v in enumerate(grid["y_values"])}
    cols_at = {v: j for j, v in enumerate(agents)}
    out = []
    for (rnd, agent), p in sorted(per.items(), key=lambda kv: (kv[0][0], cols_at.get(kv[0][1], 0))):
        if agent not in cols_at:
            continue
        details = [f"{p['n']} event{_s(p['n'])}"]
        if p["calls"]:
            details.append(f"{p['calls']} LLM call{_s(p['calls'])}, {int(p['tokens']):,} tokens")
        if p["res"]:
            details.append(
                f"{p['res']} resolution{_s(p['res'])}"
                + (f", mean margin {_fmt(p['m_sum'] / p['m_n'], 1)}" if p["m_n"] else "")
            )
        if p["known"]:
            details.append(f"{p['ok']} of {p['known']} succeeded")
        if m.key == "events":
            value, count, text = p["n"], p["n"], str(p["n"])
        elif m.key == "tokens":
            if not p["calls"]:
                continue
            value, count, text = p["tokens"], p["calls"], _compact(p["tokens"])
        elif m.key == "success":
            if not p["known"]:
                continue
            value, count = 100.0 * p["ok"] / p["known"], p["known"]
            text = f"{value:.0f}%"
        else:
            if not p["m_n"]:
                continue
            value, count = p["m_sum"] / p["m_n"], p["m_n"]
            text = _fmt(value, 1)
        params = {"round": rnd, "agent": agent}
        out.append(
            {
                "row": rows_at[rnd],
                "col": cols_at[agent],
                "y": rnd,
                "x": agent,
                "value": value,
                "count": count,
                "text": text,
                "details": details,
                "decisions": p["n"],
                "links": [
                    {"label": f"{p['n']} event{_s(p['n'])} of round {rnd} by this agent", "params": params}
                ],
                "key": {"cell_round": rnd, "cell_agent": agent},
            }
        )
    return _finish(grid, out)


# ---------------------------------------------------------------------------------------------
# Study logs: time bucket x event type


def _study_grid(run: Run, filters: dict, m: Metric) -> dict:
    grid = _empty_grid("Time (UTC)", "Event")
    qs = filtered_decisions(run=run, **filters)
    span = qs.aggregate(lo=Min("t_ms"), hi=Max("t_ms"), untimed=Count("pk") - Count("t_ms"))
    if span["untimed"]:
        n = span["untimed"]
        grid["notes"].append(f"{n} event{_s(n)} without a time {'is' if n == 1 else 'are'} not in the grid.")
    if span["lo"] is None or run.first_ts is None:
        grid["notes"].append("No event of this run (with these filters) has a time.")
        return grid
    width = bucket_width(span["hi"] - span["lo"])
    # Buckets start on round clock times (whole minutes, hours...), not at the first event.
    start_ms = run.first_ts.timestamp() * 1000.0
    offset = start_ms % width
    rows = (
        qs.values("action")
        .annotate(b=Floor((F("t_ms") + offset) / width), n=Count("pk"), first=Min("seq"))
        .order_by()
    )
    per: dict[tuple[str, int], int] = {}
    first_seen: dict[str, int] = {}
    for row in rows:
        if row["b"] is None:
            continue
        per[(row["action"], int(row["b"]))] = row["n"]
        first_seen[row["action"]] = min(first_seen.get(row["action"], row["first"]), row["first"])
    actions = sorted(first_seen, key=lambda a: (first_seen[a], a))[:MAX_AXIS]
    lo, hi = int((span["lo"] + offset) // width), int((span["hi"] + offset) // width)
    buckets = list(range(lo, hi + 1))
    grid["x_values"] = [_ms(b * width - offset) for b in buckets]
    grid["x"] = [_bucket_label(run.first_ts, b * width - offset, width) for b in buckets]
    grid["y_values"] = actions
    grid["y"] = list(actions)
    grid["bucket_ms"] = width
    grid["notes"].append(f"Buckets of {_duration(width)}; times are UTC.")
    rows_at = {a: i for i, a in enumerate(actions)}
    out = []
    for (action, b), n in sorted(per.items(), key=lambda kv: (rows_at.get(kv[0][0], 0), kv[0][1])):
        if action not in rows_at:
            continue
        t_from = _ms(b * width - offset)
        params = {"action": [action], "t_from": t_from, "t_to": _ms(t_from + width - 0.001)}
        out.append(
            {
                "row": rows_at[action],
                "col": b - lo,
                "y": action,
                "x": grid["x"][b - lo],
                "value": n,
                "count": n,
                "text": str(n),
                "decisions": n,
                "details": [f"{n} event{_s(n)}", f"{_duration(width)} from {grid['x'][b - lo]}"],
                "links": [{"label": f"{n} “{action}” event{_s(n)} in this interval", "params": params}],
                "key": {"cell_action": action, "cell_t": t_from, "cell_w": width},
            }
        )
    return _finish(grid, out)


def bucket_width(span_ms: float) -> int:
    for width in BUCKET_WIDTHS_MS:
        if span_ms / width < MAX_BUCKETS:
            return width
    days = math.ceil(span_ms / MAX_BUCKETS / 86_400_000)
    return days * 86_400_000


def _bucket_label(first_ts: dt.datetime, t_ms: float, width: int) -> str:
    at = first_ts + dt.timedelta(milliseconds=t_ms)
    return at.strftime("%Y-%m-%d %H:%M" if width >= 3_600_000 else "%H:%M:%S")


def _duration(ms: int) -> str:
    s = ms // 1000
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


# ---------------------------------------------------------------------------------------------
# One cell's drilldown


def narrow(filters: dict, **extra) -> dict | None:
    """filters AND extra exact-match cell parameters; None when they contradict (nothing can match).

    `action` replaces the filters' action list (a cell's event type already passes it); t_from/t_to
    intersect the filters' window.
    """
    out = dict(filters)
    for name, value in extra.items():
        if value is None:
            continue
        if name == FP.T_FROM:
            out[name] = max(value, filters[name]) if filters.get(name) is not None else value
        elif name == FP.T_TO:
            out[name] = min(value, filters[name]) if filters.get(name) is not None else value
        elif name == FP.ACTION:
            out[name] = tuple(value)
        elif filters.get(name) not in (None, "") and filters[name] != value:
            return None
        else:
            out[name] = value
    if out.get(FP.T_FROM) is not None and out.get(FP.T_TO) is not None and out[FP.T_FROM] > out[FP.T_TO]:
        return None
    return out


def cell_parts(*, run: Run, filters: dict, key: dict, cylinder: str = "both") -> list[dict]:
    """The filter sets whose union is the cell's decisions (a DynoAI cell may have bin and index rows)."""
    if run.kind == Run.Kind.SESSION:
        parts = [narrow(filters, round=key.get("cell_round"), agent=key.get("cell_agent"))]
    elif run.kind == Run.Kind.STUDY:
        t_from = key.get("cell_t")
        width = key.get("cell_w")
        t_to = _ms(t_from + width - 0.001) if t_from is not None and width else None
        parts = [narrow(filters, action=(key.get("cell_action"),), t_from=t_from, t_to=t_to)]
    else:
        rpm, kpa = key.get("cell_rpm"), key.get("cell_kpa")
        cyl = cylinder if cylinder in ("f", "r") else None
        parts = [narrow(filters, rpm=rpm, kpa=kpa, cylinder=cyl)]
        index = index_of(rpm, kpa)
        if index is not None and cyl is None:
            parts.append(narrow(filters, rpm_index=index[0], kpa_index=index[1]))
    return [p for p in parts if p is not None]


def cell_drilldown(*, run: Run, filters: dict, key: dict, cylinder: str = "both") -> dict:
    """One cell: its decisions in file order, counts by action, first/last time, numeric values over time."""
    parts = cell_parts(run=run, filters=filters, key=key, cylinder=cylinder)
    querysets = [filtered_decisions(run=run, **p).defer("raw", "text") for p in parts]
    clamps = []
    if run.kind == Run.Kind.DYNOAI and cylinder not in ("f", "r"):
        index = index_of(key.get("cell_rpm"), key.get("cell_kpa"))
        if index is not None:
            clamping = filtered_decisions(run=run, **filters).filter(action=CLAMP)
            hits = {}
            for seq, entries in clamping.values_list("seq", "values__cells"):
                found = [e for e in _clamp_entries({"cells": entries}) if (e[0], e[1]) == index]
                if found:
                    hits[seq] = found
            if hits:
                clamps = [(d, hits[d.seq]) for d in clamping.filter(seq__in=list(hits)).defer("raw", "text")]

    by_action: Counter = Counter()
    part_sizes = []
    first = last = None
    for qs in querysets:
        size = 0
        for row in qs.values("action").annotate(n=Count("pk"), lo=Min("ts"), hi=Max("ts")).order_by():
            by_action[row["action"]] += row["n"]
            size += row["n"]
            first = _min(first, row["lo"])
            last = _max(last, row["hi"])
        part_sizes.append(size)
    if len(querysets) == 2 and all(
        part_sizes
    ):  # a decision with bins and indices is in both parts: count it once
        both = narrow(parts[0], rpm_index=parts[1][FP.RPM_INDEX], kpa_index=parts[1][FP.KPA_INDEX])
        if both is not None:
            for row in (
                filtered_decisions(run=run, **both).values("action").annotate(n=Count("pk")).order_by()
            ):
                by_action[row["action"]] -= row["n"]
    for d, _ in clamps:
        by_action[d.action] += 1
        first, last = _min(first, d.ts), _max(last, d.ts)
    by_action = +by_action
    total = sum(by_action.values())

    merged: dict[int, object] = {}
    for qs, size in zip(querysets, part_sizes):
        if size:
            for d in qs[:DRILL_POINTS]:
                merged.setdefault(d.seq, d)
    clamp_hits = {d.seq: found for d, found in clamps}
    for d, _ in clamps:
        merged.setdefault(d.seq, d)
    decisions = [merged[s] for s in sorted(merged)][:DRILL_POINTS]

    links = [
        {"label": _part_label(p, n), "params": _cell_params(p, filters)}
        for p, n in zip(parts, part_sizes)
        if n
    ]
    return {
        "total": total,
        "by_action": by_action.most_common(),
        "first_ts": first,
        "last_ts": last,
        "first_t_ms": _t_ms(run, first),
        "last_t_ms": _t_ms(run, last),
        "rows": [
            {
                "d": d,
                "where": _where(d),
                "values": _values_text(d.values),
                "clamps": clamp_hits.get(d.seq, []),
            }
            for d in decisions[:DRILL_ROWS]
        ],
        "shown": min(len(decisions), DRILL_ROWS),
        "charted": len(decisions),
        "links": links,
        "clamps": [{"seq": d.seq, "entries": found} for d, found in clamps],
        "figure": values_figure(run, decisions, clamp_hits),
    }


def _part_label(p: dict, n: int) -> str:
    if FP.RPM_INDEX in p:
        return f"{n} decision{_s(n)} at index [{p[FP.RPM_INDEX]}, {p[FP.KPA_INDEX]}]"
    if FP.RPM in p:
        cyl = f", cylinder {p[FP.CYLINDER]}" if p.get(FP.CYLINDER) else ""
        return f"{n} decision{_s(n)} at RPM {p[FP.RPM]}, KPA {p[FP.KPA]}{cyl}"
    if FP.AGENT in p:
        return f"{n} event{_s(n)} of round {p[FP.ROUND]} by this agent"
    return f"{n} event{_s(n)} of this type in this interval"


def _cell_params(p: dict, filters: dict) -> dict:
    """The parameters a cell adds to the current filters (the rest of the querystring stays)."""
    return {k: v for k, v in p.items() if filters.get(k) != v}


def _values_text(values, limit: int = 160) -> str:
    """`key=value` for the scalar values, shortened: a table cell, not the decision page."""
    if not isinstance(values, dict):
        return ""
    parts = []
    for k, v in values.items():
        if isinstance(v, (dict, list)):
            v = f"[{len(v)} items]" if isinstance(v, list) else "{…}"
        parts.append(f"{k}={v}")
    return _short(" ".join(parts), limit)


def _where(d) -> str:
    parts = []
    if d.rpm is not None or d.kpa is not None:
        parts.append(f"RPM {d.rpm} · KPA {d.kpa}")
    if d.rpm_index is not None or d.kpa_index is not None:
        parts.append(f"[{d.rpm_index}, {d.kpa_index}]")
    if d.cylinder:
        parts.append(f"cyl {d.cylinder}")
    if d.round is not None and d.agent is not None:
        parts.append(f"round {d.round}")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# Plotly figures (pure: data in, figure dict out). Plotly renders text as HTML: every string that
# comes from a log is escaped here.


SEQUENTIAL = [[0, "#deebf7"], [0.5, "#6baed6"], [1, "#08306b"]]
_BIDI = {c: f"<U+{c:04X}>" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}
TICK_CHARS = 28


def plot_text(value) -> str:
    """A log string made inert for plotly, which renders text as HTML: markup escaped, and bidi
    controls (a right-to-left override would reverse the label) shown as their code points."""
    return html.escape(str(value).translate(_BIDI), quote=False)


def heatmap_figure(grid: dict, selected: dict | None = None) -> dict:
    """The plotly figure for cell_grid's output; `selected` (a cell key) gets a frame."""
    e = plot_text
    ny, nx = len(grid["y"]), len(grid["x"])
    hover = [[None] * nx for _ in range(ny)]
    text = [[""] * nx for _ in range(ny)]
    for c in grid["cells"]:
        y, x = e(str(grid["y"][c["row"]])), e(str(grid["x"][c["col"]]))
        head = f"{e(grid['y_title'])} {y} · {e(grid['x_title'])} {x}"
        if grid.get("cylinder") in ("f", "r"):
            head += f" · cylinder {grid['cylinder']}"
        lines = [f"<b>{head}</b>", f"{e(grid['metric_label'])}: {e(c['text'])}"] + [
            e(str(x)) for x in c["details"]
        ]
        hover[c["row"]][c["col"]] = "<br>".join(lines)
        text[c["row"]][c["col"]] = e(c["text"])
    trace = {
        "type": "heatmap",
        "x": [e(str(v)) for v in grid["x"]],
        "y": [e(str(v)) for v in grid["y"]],
        "z": grid["z"],
        "text": text,
        "texttemplate": "%{text}",
        "customdata": hover,
        "hovertemplate": "%{customdata}<extra></extra>",
        "hoverongaps": False,
        "xgap": 2,
        "ygap": 2,
        "colorscale": "RdBu" if grid["diverging"] else SEQUENTIAL,
        "colorbar": {"title": {"text": e(grid["metric_label"]), "side": "right"}, "thickness": 14},
    }
    values = [v for row in grid["z"] for v in row if v is not None]
    if grid["diverging"] and values:
        bound = max(abs(v) for v in values) or 1.0
        trace.update(zmin=-bound, zmax=bound, zmid=0)
    elif values and grid.get("counts_from_zero"):
        trace.update(zmin=0, zmax=max(values) or 1)
    layout = {
        "margin": {
            "l": 120 if grid["kind"] != "dynoai" else 60,
            "r": 20,
            "t": 10,
            "b": 90 if grid["kind"] != "dynoai" else 50,
        },
        "xaxis": {
            "title": {"text": e(grid["x_title"])},
            "type": "category",
            "side": "bottom",
            "automargin": True,
            **_ticks(trace["x"]),
        },
        "yaxis": {
            "title": {"text": e(grid["y_title"])},
            "type": "category",
            "autorange": "reversed",
            "automargin": True,
            **_ticks(trace["y"]),
        },
        "height": max(260, min(900, 70 + 34 * max(ny, 1))),
        "plot_bgcolor": "#f3f4f6",
        "font": {"size": 12},
    }
    if selected:
        cell = next((c for c in grid["cells"] if c["key"] == selected), None)
        if cell is not None:
            layout["shapes"] = [
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "y",
                    "line": {"color": "#111", "width": 3},
                    "x0": cell["col"] - 0.5,
                    "x1": cell["col"] + 0.5,
                    "y0": cell["row"] - 0.5,
                    "y1": cell["row"] + 0.5,
                }
            ]
    return {"data": [trace], "layout": layout}


PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)


def _ticks(labels: list[str]) -> dict:
    """Long category labels shortened on the axis only (the hover keeps them whole; shortening the
    categories themselves could merge two of them)."""
    if all(len(html.unescape(x)) <= TICK_CHARS for x in labels):
        return {}
    short = [plot_text(_short(html.unescape(x), TICK_CHARS)) for x in labels]
    return {"tickmode": "array", "tickvals": labels, "ticktext": short}


def values_figure(run: Run, decisions: list, clamp_hits: dict | None = None) -> dict | None:
    """Small multiples: each numeric value of the decisions over time (ms since the run's first decision),
    or over seq where times are missing or unreliable (sessions mix time zones: file order is the truth).
    One colour per action, shared x axis."""
    clamp_hits = clamp_hits or {}
    times = {d.t_ms for d in decisions}
    # Time where it is known, varies and is trustworthy; sessions mix time zones (file order is the truth).
    use_time = run.kind != Run.Kind.SESSION and None not in times and len(times) > 1
    series: dict[str, dict[str, list]] = {}
    for d in decisions:
        if d.seq in clamp_hits:  # its top-level numbers describe the whole grid, not this cell
            points = []
            for _, _, original, clamped in clamp_hits[d.seq]:
                points += [("clamp original", original), ("clamp result", clamped)]
        else:
            points = list(_numbers(d.values))
        for k, v in points:
            if v is not None:
                series.setdefault(k, {}).setdefault(d.action, []).append(
                    (d.t_ms if use_time else d.seq, v, d.seq)
                )
    size = {k: sum(len(p) for p in by_action.values()) for k, by_action in series.items()}
    keys = sorted(series, key=lambda k: (-size[k], k.lower()))[:MAX_CHARTS]
    if not keys:
        return None
    keys.sort(key=str.lower)
    e = html.escape
    colours = {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(dict.fromkeys(d.action for d in decisions))}
    n = len(keys)
    columns = min(3, n)
    rows = math.ceil(n / columns)
    data = []
    layout = {
        "grid": {"rows": rows, "columns": columns, "pattern": "independent", "xgap": 0.12, "ygap": 0.35},
        "height": 60 + 170 * rows,
        "showlegend": len(colours) > 1,
        "legend": {
            "orientation": "h",
            "yref": "container",
            "y": 1,
            "yanchor": "top",
            "x": 0,
            "xanchor": "left",
        },
        "margin": {"l": 50, "r": 10, "t": 64 if len(colours) > 1 else 24, "b": 40},
        "font": {"size": 11},
        "annotations": [],
    }
    x_title = "ms since the run's first decision" if use_time else "seq"
    seqs = [d.seq for d in decisions]
    seq_ticks = {} if use_time else {"tick0": 0, "dtick": max(1, math.ceil((max(seqs) - min(seqs)) / 6))}
    in_legend = set()
    for i, k in enumerate(keys):
        suffix = "" if i == 0 else str(i + 1)
        for action, pts in series[k].items():
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": e(action),
                    "legendgroup": e(action),
                    "showlegend": action not in in_legend,
                    "x": [p[0] for p in pts],
                    "y": [p[1] for p in pts],
                    "xaxis": "x" + suffix,
                    "yaxis": "y" + suffix,
                    "customdata": [p[2] for p in pts],
                    "hovertemplate": (
                        f"{e(k)} = %{{y}}<br>#%{{customdata}} {e(action)}<br>{x_title}: %{{x}}<extra></extra>"
                    ),
                    "marker": {"size": 7, "color": colours[action]},
                }
            )
            in_legend.add(action)
        layout["xaxis" + suffix] = {
            "title": {"text": x_title if i >= n - columns else ""},
            "automargin": True,
            **seq_ticks,
        }
        if i:
            layout["xaxis" + suffix]["matches"] = "x"
        layout["yaxis" + suffix] = {"automargin": True}
        layout["annotations"].append(
            {
                "text": f"<b>{e(_short(k, 40))}</b>",
                "showarrow": False,
                "xref": f"x{suffix} domain",
                "yref": f"y{suffix} domain",
                "x": 0,
                "y": 1.0,
                "xanchor": "left",
                "yanchor": "bottom",
            }
        )
    return {"data": data, "layout": layout, "x_is_time": use_time}


def _numbers(values, prefix: str = "", depth: int = 0):
    """(dotted key, number) for the numbers in values, one level deep (roll.margin, tokens.input)."""
    if not isinstance(values, dict):
        return
    for k, v in values.items():
        name = f"{prefix}{k}"
        if _is_number(v):
            if math.isfinite(v):
                yield name, v
        elif isinstance(v, dict) and depth < 1:
            yield from _numbers(v, name + ".", depth + 1)


# ---------------------------------------------------------------------------------------------
# Small helpers


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _float(v) -> float | None:
    return float(v) if _is_number(v) and math.isfinite(v) else None


def _fmt(v, digits: int) -> str:
    if v is None:
        return "–"
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.00"


def _compact(v: float) -> str:
    if v >= 10_000:
        return f"{v / 1000:.0f}k"
    if v >= 1000:
        return f"{v / 1000:.1f}k"
    return f"{v:.0f}"


def _ms(v: float):
    return int(v) if float(v).is_integer() else round(v, 3)


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _min(a, b):
    return b if a is None else a if b is None else min(a, b)


def _max(a, b):
    return b if a is None else a if b is None else max(a, b)


def _t_ms(run: Run, ts):
    if ts is None or run.first_ts is None:
        return None
    return (ts - run.first_ts).total_seconds() * 1000.0
