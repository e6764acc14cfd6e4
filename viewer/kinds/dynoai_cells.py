"""DynoAI's cells (the cells section of kinds/dynoai.py builds its CellsSpec from these): the VE grid,
RPM bins x kPa bins (FORMATS.md 1.3).

AFR corrections and anomalies carry bin values (rpm, kpa) and a cylinder; gradient limiting
carries indices (rpm_index, kpa_index) on the combined front+rear grid, and clamping lists its
cells by index inside values.cells: indices are placed on the standard bins (kinds.dynoai.bins_of).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import Case, CharField, Count, FloatField, Func, Max, Q, Sum, When
from django.db.models.fields.json import KeyTextTransform, compile_json_path
from django.db.models.functions import Cast

from ..cells import Metric, Part, finish_grid, finite, fmt, is_number, narrow, plural
from ..memo import run_memo
from ..models import Decision
from ..selectors import filtered_decisions

VALUE_PREFIX = "value:"
MAX_VALUE_KEYS = 40  # numeric value keys offered as metrics
KEY_SAMPLE = 25  # decisions per action read to discover those keys
NUMBER_TYPES = ("integer", "real", "number")

METRICS = (
    Metric("count", "Decisions (count)", digits=0),
    Metric("afr_mean", "AFR error % (mean)", diverging=True),
    Metric("afr_last", "AFR error % (last)", diverging=True),
    Metric("gradient_count", "Gradient-limited (count)", per_cylinder=False, digits=0),
    Metric("gradient_result", "Gradient-limited result (last)", per_cylinder=False, diverging=True),
    Metric("clamped", "Clamped: original → clamped", per_cylinder=False, diverging=True),
    Metric("anomaly_score", "Anomaly score (max)", per_cylinder=False),
)


def value_metrics(run) -> list[Metric]:
    """Every numeric value key of the run's located decisions, as a metric (its mean)."""
    keys = run_memo(run, "cells:value-keys", {}, lambda: _value_keys(run))
    return [Metric(VALUE_PREFIX + key, f"value “{key}” (mean)", diverging=True, digits=3) for key in keys]


def _value_keys(run) -> list[str]:
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
                    if is_number(value):
                        keys.setdefault(key, None)
    return sorted(keys, key=str.lower)[:MAX_VALUE_KEYS]


def _clamps(entries) -> list[tuple[int, int, float | None, float | None]]:
    """Clamping's cells with finite numbers only (a NaN would not survive JSON)."""
    return [(i, j, finite(o), finite(c)) for i, j, o, c in clamp_cells({"cells": entries})]


# ---------------------------------------------------------------------------------------------
# The grid


@dataclass
class _Acc:
    """What one cell holds. `rc` = rows with rpm/kpa, keyed (cylinder, action); `ix` = index rows."""

    rc: dict = field(default_factory=dict)
    ix: dict = field(default_factory=dict)
    index: tuple[int, int] | None = None
    clamps: list = field(default_factory=list)  # (seq, original, clamped)
    values: dict = field(default_factory=dict)  # value-key metric: "rc"/"ix" -> (n, sum)


def build(grid: dict, *, run, filters: dict, metric: Metric, cylinder: str) -> dict:
    m = metric
    grid["cylinder"] = cylinder
    qs = filtered_decisions(run=run, **filters)
    cells: dict[tuple[int, int], _Acc] = defaultdict(_Acc)
    stats = ("n", "m_n", "m_sum", "m_max", "last")
    aggregates = {
        "n": Count("pk"),
        "m_n": Count("metric"),
        "m_sum": Sum("metric"),
        "m_max": Max("metric"),
        "last": Max("seq"),
    }

    # One pass over the run: rows with bins and rows with indices, by cylinder and action. Every
    # metric starts from it, so it is computed once per filters (a big run's metric menu, warmed).
    outside = 0
    located = qs.values("rpm", "kpa", "cylinder", "rpm_index", "kpa_index", "action").annotate(**aggregates)
    for row in run_memo(run, "cells:located", filters, lambda: list(located.order_by())):
        if row["rpm"] is not None and row["kpa"] is not None:
            acc = cells[(row["rpm"], row["kpa"])]
            key = (row["cylinder"], row["action"])
            acc.rc[key] = _add_stats(acc.rc.get(key), row, stats)
        if row["rpm_index"] is not None and row["kpa_index"] is not None:
            b = bins_of(row["rpm_index"], row["kpa_index"])
            if b is None:
                outside += row["n"]
                continue
            acc = cells[b]
            acc.index = (row["rpm_index"], row["kpa_index"])
            acc.ix[row["action"]] = _add_stats(acc.ix.get(row["action"]), row, stats)
    if m.key == "clamped" or (m.key == "count" and cylinder == "both"):
        # Clamping lists its cells inside values.cells: the toolkit logs one such decision per run.
        for seq, entries in qs.filter(action=CLAMP).values_list("seq", "values__cells"):
            for i, j, original, clamped in _clamps(entries):
                b = bins_of(i, j)
                if b is None:
                    outside += 1
                    continue
                cells[b].index = (i, j)
                cells[b].clamps.append((seq, original, clamped))
    if m.key.startswith(VALUE_PREFIX):
        _value_sums(_value_rows(run, qs, filters, m.key[len(VALUE_PREFIX) :]), cells, cylinder)

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
        cell = _cell(m, cylinder, rpm, kpa, acc, last_metric)
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
            f"{outside} index-based entries lie outside the standard {len(RPM_BINS)} × {len(KPA_BINS)} grid "
            "and are not shown."
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
    return finish_grid(grid, out)


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


def _value_rows(run, qs, filters: dict, key: str) -> list[tuple]:
    """One value key's numbers per located group: the pass over the run reads every value key the
    metric menu offers at once (one pass, not one per key), once per filters."""
    keys = [m.key[len(VALUE_PREFIX) :] for m in value_metrics(run)]
    if key not in keys:
        return _value_pass(qs, [key])[key]
    return run_memo(run, "cells:value-sums", filters, lambda: _value_pass(qs, keys))[key]


def _value_pass(qs, keys: list[str]) -> dict[str, list[tuple]]:
    """Per (rpm, kpa, cylinder, rpm_index, kpa_index): how many decisions hold a number under each
    key, and their sum. JSON extraction, only for the value keys (PERF.md: 25x slower than a column)."""
    aliases, per_group = {}, {}
    for i, key in enumerate(keys):
        is_num = Q(**{f"_t{i}__in": NUMBER_TYPES})
        aliases[f"_t{i}"] = _JsonType(key)
        per_group[f"n{i}"] = Count("pk", filter=is_num)
        # CASE, not an aggregate FILTER, so PostgreSQL never casts a string value to a number.
        per_group[f"s{i}"] = Sum(Case(When(is_num, then=Cast(KeyTextTransform(key, "values"), FloatField()))))
    located = ("rpm", "kpa", "cylinder", "rpm_index", "kpa_index")
    out: dict[str, list[tuple]] = {key: [] for key in keys}
    for row in qs.alias(**aliases).values(*located).annotate(**per_group).order_by():
        for i, key in enumerate(keys):
            if row[f"n{i}"]:
                out[key].append((*(row[c] for c in located), row[f"n{i}"], row[f"s{i}"]))
    return out


def _value_sums(rows: list[tuple], cells: dict, cylinder: str) -> None:
    """Mean of one JSON value per cell, from its numbers per located group."""
    for rpm, kpa, cyl, rpm_index, kpa_index, n, s in rows:
        if rpm is not None and kpa is not None and cylinder in ("both", cyl):
            n0, s0 = cells[(rpm, kpa)].values.get("rc", (0, 0.0))
            cells[(rpm, kpa)].values["rc"] = (n0 + n, s0 + s)
        elif rpm_index is not None and kpa_index is not None and cylinder == "both":
            b = bins_of(rpm_index, kpa_index)
            if b is not None:
                cells[b].index = (rpm_index, kpa_index)
                n0, s0 = cells[b].values.get("ix", (0, 0.0))
                cells[b].values["ix"] = (n0 + n, s0 + s)


def _bins_part(filters: dict, rpm, kpa, cylinder: str | None) -> Part:
    where = f"at RPM {rpm}, kPa {kpa}" + (f", cylinder {cylinder}" if cylinder else "")
    return Part(narrow(filters, rpm=rpm, kpa=kpa, cylinder=cylinder), "decision", where)


def _index_part(filters: dict, index: tuple[int, int]) -> Part:
    params = narrow(filters, rpm_index=index[0], kpa_index=index[1])
    return Part(params, "decision", f"at index [{index[0]}, {index[1]}]")


def _cell(m: Metric, cylinder: str, rpm: int, kpa: int, acc: _Acc, last_metric: dict) -> dict | None:
    """One cell's value, count, text and links for metric m; None when the metric has no data there."""

    def rc(action=None, cyl=cylinder):
        return [
            s
            for (c, a), s in acc.rc.items()
            if (action is None or a == action) and (cyl == "both" or c == cyl)
        ]

    cyl = cylinder if cylinder != "both" else None
    n_rc = sum(s["n"] for s in rc())
    n_rc_all = sum(s["n"] for s in rc(cyl="both"))
    n_ix = sum(s["n"] for s in acc.ix.values())
    links = []
    details = []

    def add_link(n, part):
        if n:
            links.append({"label": part.label(n), "params": part.params})

    def rc_link(n, cylinder=cyl):
        add_link(n, _bins_part({}, rpm, kpa, cylinder))

    def ix_link(n):
        if acc.index:
            add_link(n, _index_part({}, acc.index))

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
        text = fmt(value, 2)
        details = [
            f"AFR error mean {fmt(mean, 2)} % over {n_num} sample{plural(n_num)}",
            f"last {fmt(last, 2)} %" if last is not None else "last: none",
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
        text = str(count) if m.key == "gradient_count" else fmt(last, 2)
        details = [
            f"gradient-limited {count} time{plural(count)}",
            f"last result {fmt(last, 2)}",
            f"mean result {fmt(mean, 2)}",
        ]
        ix_link(n_ix)
    elif m.key == "clamped":
        entries = [(o, c) for _, o, c in acc.clamps if o is not None]
        if not entries:
            return None
        count = len(acc.clamps)
        original, clamped = entries[-1]
        value = original
        text = f"{fmt(original, 2)}→{fmt(clamped, 2)}"
        details = [f"#{seq}: {fmt(o, 2)} → {fmt(c, 2)}" for seq, o, c in acc.clamps if o is not None]
        links.extend({"label": f"clamping decision #{seq}", "seq": seq} for seq, _, _ in acc.clamps)
    elif m.key == "anomaly_score":
        rows = [s for s in rc(ANOMALY, cyl="both") if s["m_n"]]
        if not rows:
            return None
        count = sum(s["n"] for s in rows)
        value = max(s["m_max"] for s in rows)
        text = fmt(value, 2)
        details = [f"{count} anomal{'y' if count == 1 else 'ies'}, max score {fmt(value, 3)}"]
        rc_link(n_rc_all, cylinder=None)
    elif m.key.startswith(VALUE_PREFIX):
        n1, s1 = acc.values.get("rc", (0, 0.0))
        n2, s2 = acc.values.get("ix", (0, 0.0))
        count = n1 + n2
        if not count:
            return None
        value = (s1 + s2) / count
        text = fmt(value, m.digits)
        details = [f"mean {fmt(value, 4)} over {count} decision{plural(count)}"]
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
# One cell's drilldown


def parts(*, filters: dict, key: dict, cylinder: str) -> list[Part]:
    """A cell's decisions logged by bins (with the cylinder picked) and, on the combined grid, by index."""
    rpm, kpa = key.get("cell_rpm"), key.get("cell_kpa")
    cyl = cylinder if cylinder in ("f", "r") else None
    out = [_bins_part(filters, rpm, kpa, cyl)]
    index = index_of(rpm, kpa)
    if index is not None and cyl is None:
        out.append(_index_part(filters, index))
    return out


def inside(*, run, filters: dict, key: dict, cylinder: str) -> list:
    """Clamping decisions listing the cell in values.cells: [(decision, [(i, j, original, clamped)])]."""
    index = index_of(key.get("cell_rpm"), key.get("cell_kpa"))
    if cylinder in ("f", "r") or index is None:
        return []
    clamping = filtered_decisions(run=run, **filters).filter(action=CLAMP)
    hits = {}
    for seq, entries in clamping.values_list("seq", "values__cells"):
        found = [e for e in _clamps(entries) if (e[0], e[1]) == index]
        if found:
            hits[seq] = found
    if not hits:
        return []
    return [(d, hits[d.seq]) for d in clamping.filter(seq__in=list(hits)).defer("raw", "text")]


def title(run, key: dict, cylinder: str) -> str:
    text = f"RPM {key['cell_rpm']} × kPa {key['cell_kpa']}"
    index = index_of(key["cell_rpm"], key["cell_kpa"])
    if index is not None:
        text += f" (index [{index[0]}, {index[1]}])"
    if cylinder in CYLINDERS and cylinder != "both":
        text += f" · {CYLINDERS[cylinder]} cylinder"
    return text


def where(d) -> str:
    out = []
    if d.rpm is not None or d.kpa is not None:
        out.append(f"RPM {d.rpm} · kPa {d.kpa}")
    if d.rpm_index is not None or d.kpa_index is not None:
        out.append(f"[{d.rpm_index}, {d.kpa_index}]")
    if d.cylinder:
        out.append(f"cyl {d.cylinder}")
    return " ".join(out)


# The DynoAI facts, imported last: kinds/dynoai.py imports this module in its cells section, after
# they are defined, and this module may also be imported first (then kinds/dynoai.py runs here and
# finds every name above already defined).
from .dynoai import (
    AFR,
    ANOMALY,
    CLAMP,
    CYLINDERS,
    GRADIENT,
    INDEX_NOTE,
    KPA_BINS,
    RPM_BINS,
    bins_of,
    clamp_cells,
    index_of,
)
