"""DynoAI as a tuner reads it (issue 17): one cell's story, the result tables from the output files
kept with the run, and the outcomes a sweep of runs is compared by. kinds/dynoai.py builds its
TuningSpec from these.

A cell is an RPM bin x kPa bin of the VE grid. AFR corrections and anomalies name it by bins (AFR
corrections with a cylinder); gradient limiting by index, on the combined front+rear grid; clamping
lists it by index inside values.cells, under the limit of the CLAMPING_START before it. Index cells
are placed on the standard bins (kinds.dynoai.bins_of), so a story has them whatever cylinder is
picked: the VE correction is one grid for both cylinders.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from typing import Any

from django.db.models import Count

from ..outputs import output_file, output_list
from ..selectors import action_counts, filtered_decisions
from ..tuning import CellError

VE_GRID = "VE_Correction_Delta_DYNO.csv"
CLAMPING_START = "CLAMPING_START"
CONFIDENCE = "CONFIDENCE_SCORING_COMPLETE"
TOLERANCE = 0.005  # the grid CSVs write two decimals
AFR_KEYS = ("afr_error_pct", "weight", "afr_commanded", "afr_measured")
GRADIENT_KEYS = ("gradient", "threshold", "blend_factor", "original", "smoothed", "result")
ANOMALY_KEYS = ("type", "score")
# Settings that differ on every run (where it wrote its files): not compared.
NOT_COMPARED = ("outdir",)
# The result tables, as the toolkit writes them: (title, files side by side, signed values).
TABLES = (
    ("VE correction %", (VE_GRID,), True),
    ("AFR error %", ("AFR_Error_Map_Front.csv", "AFR_Error_Map_Rear.csv"), True),
    ("Coverage (samples)", ("Coverage_Front.csv", "Coverage_Rear.csv"), False),
    (
        "Spark adjustment (degrees)",
        ("Spark_Adjust_Suggestion_Front.csv", "Spark_Adjust_Suggestion_Rear.csv"),
        True,
    ),
    ("Torque", ("Torque_Map_Front.csv", "Torque_Map_Rear.csv", "Torque_Map_Combined.csv"), False),
    ("HP", ("HP_Map_Front.csv", "HP_Map_Rear.csv", "HP_Map_Combined.csv"), False),
)
PASTE_READY = {
    VE_GRID: "VE_Delta_PasteReady.txt",
    "Spark_Adjust_Suggestion_Front.csv": "Spark_Front_PasteReady.txt",
    "Spark_Adjust_Suggestion_Rear.csv": "Spark_Rear_PasteReady.txt",
}
# Which decisions touch a table's cells: the VE grid every located decision; the AFR error and coverage
# maps the AFR samples of their cylinder (the file name's Front/Rear); the others none.
CYLINDER_OF = {"Front": "f", "Rear": "r"}
TOUCHED_BY_SAMPLES = ("AFR_Error_Map_", "Coverage_")
STEPS = (("gradient", "gradient-limited"), ("clamp", "clamped"), ("anomaly", "anomaly"))


def _number(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return v
    return None


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# -- the cell -----------------------------------------------------------------------------------


def locate(*, rpm=None, kpa=None, rpm_index=None, kpa_index=None) -> tuple[Any, Any]:
    """(rpm, kpa) of a cell given by bins or by grid indices."""
    if rpm is not None or kpa is not None:
        if rpm is None or kpa is None:
            raise CellError(("kpa" if rpm is not None else "rpm") + ": give both rpm and kpa")
        if rpm_index is not None or kpa_index is not None:
            raise CellError(
                "rpm_index: give the cell by rpm and kpa, or by rpm_index and kpa_index, not both"
            )
        return rpm, kpa
    if rpm_index is None or kpa_index is None:
        raise CellError(
            ("kpa_index" if rpm_index is not None else "rpm") + ": a cell needs rpm and kpa"
            " (or rpm_index and kpa_index)"
        )
    found = bins_of(rpm_index, kpa_index)
    if found is None:
        raise CellError(
            f"rpm_index: [{rpm_index}, {kpa_index}] is outside the standard "
            f"{len(RPM_BINS)} × {len(KPA_BINS)} grid"
        )
    return found


# -- the story ----------------------------------------------------------------------------------


def story(run, *, rpm, kpa, cylinder: str = "both") -> dict:
    """Everything that happened to the cell, in file order, and its final correction."""
    index = index_of(rpm, kpa)
    cyl = cylinder if cylinder in ("f", "r") else None
    found: dict[int, dict] = {}
    for d in filtered_decisions(run=run, rpm=rpm, kpa=kpa).defer("raw", "text"):
        if d.action == AFR and cyl and d.cylinder != cyl:
            continue
        found[d.seq] = _entry(d)
    if index is not None:
        for d in filtered_decisions(run=run, rpm_index=index[0], kpa_index=index[1]).defer("raw", "text"):
            found.setdefault(d.seq, _entry(d))
        limit = None
        for d in _clamping(run).defer("raw", "text"):
            if d.action == CLAMPING_START:
                limit = _number((d.values or {}).get("limit"))
            elif d.action == CLAMP:
                for i, j, original, clamped in clamp_cells(d.values):
                    if (i, j) == index:
                        found[d.seq] = {
                            **_head(d),
                            "original": _number(original),
                            "clamped": _number(clamped),
                            "limit": limit,
                        }
    decisions = [found[s] for s in sorted(found)]
    return {
        "cell": {
            "rpm": rpm,
            "kpa": kpa,
            "rpm_index": index[0] if index else None,
            "kpa_index": index[1] if index else None,
            "cylinder": cylinder,
            "cylinder_label": CYLINDERS.get(cylinder, ""),
        },
        "decisions": decisions,
        "final": final(run, rpm=rpm, kpa=kpa, decisions=decisions),
    }


def _clamping(run):
    """CLAMPING_START (the limit) and CLAMPING_APPLIED (the cells) decisions, in file order."""
    return filtered_decisions(run=run).filter(action__in=(CLAMPING_START, CLAMP))


def _head(d) -> dict:
    return {
        "seq": d.seq,
        "action": d.action,
        "stage": STAGES.get(d.action, ""),
        "t_ms": d.t_ms,
        "cylinder": d.cylinder,
    }


def _entry(d) -> dict:
    values = d.values if isinstance(d.values, dict) else {}
    out = _head(d)
    keys = {AFR: AFR_KEYS, GRADIENT: GRADIENT_KEYS, ANOMALY: ANOMALY_KEYS}.get(d.action)
    if keys is None:
        out["reason"] = d.reason
        out["values"] = {k: v for k, v in values.items() if _number(v) is not None or isinstance(v, str)}
        return out
    for k in keys:
        v = values.get(k)
        out[k] = v if isinstance(v, str) else _number(v)
    if d.action == ANOMALY:
        out["reason"] = d.reason
    return out


def final(run, *, rpm, kpa, decisions: list[dict]) -> dict | None:
    """The cell's final VE correction: the run's VE_Correction_Delta_DYNO grid when kept with it, else
    the last value the decisions give it (a gradient-limited result, or a clamped value)."""
    grid = grid_of(run, VE_GRID)
    if grid is not None:
        value = grid_value(grid, rpm, kpa)
        if value is not None:
            return {"value": value, "source": VE_GRID, "seq": None}
    for e in reversed(decisions):
        if e["action"] == CLAMP and e.get("clamped") is not None:
            return {"value": e["clamped"], "source": "decision", "seq": e["seq"], "action": e["action"]}
        if e["action"] == GRADIENT and e.get("result") is not None:
            return {"value": e["result"], "source": "decision", "seq": e["seq"], "action": e["action"]}
    return None


def grid_of(run, name: str) -> dict | None:
    row = output_list(run).filter(name=name).exclude(grid=None).first()
    return row.grid if row is not None else None


def grid_value(grid: dict, rpm, kpa):
    try:
        return grid["values"][grid["rpm"].index(rpm)][grid["kpa"].index(kpa)]
    except (ValueError, IndexError, KeyError, TypeError):
        return None


# -- what the decisions establish, per cell -------------------------------------------------------


def touched(run) -> dict:
    """(rpm, kpa) -> {"afr": {"f": n, "r": n}, "gradient": [(seq, result)], "clamp": [(seq, orig, clamped,
    limit)], "anomaly": [(seq, score)]}: every cell a decision names, from one pass over the located
    decisions and the clamping ones."""
    cells: dict[tuple, dict] = {}

    def at(b):
        return cells.setdefault(b, {"afr": Counter(), "gradient": [], "clamp": [], "anomaly": []})

    qs = filtered_decisions(run=run)
    # AFR samples are most of a run: counted per cell and cylinder by the database.
    samples = qs.filter(action=AFR).exclude(rpm=None).exclude(kpa=None).values("rpm", "kpa", "cylinder")
    for row in samples.annotate(n=Count("pk")).order_by():
        at((row["rpm"], row["kpa"]))["afr"][row["cylinder"] or ""] += row["n"]
    located = qs.filter(action__in=(GRADIENT, ANOMALY)).exclude(rpm=None, rpm_index=None)
    for seq, action, rpm, kpa, ri, ki, values in located.values_list(
        "seq", "action", "rpm", "kpa", "rpm_index", "kpa_index", "values"
    ):
        values = values if isinstance(values, dict) else {}
        b = (rpm, kpa) if rpm is not None and kpa is not None else bins_of(ri, ki)
        if b is None:
            continue
        if action == GRADIENT:
            at(b)["gradient"].append((seq, _number(values.get("result"))))
        else:
            at(b)["anomaly"].append((seq, _number(values.get("score"))))
    limit = None
    for seq, action, values in _clamping(run).values_list("seq", "action", "values"):
        if action == CLAMPING_START:
            limit = _number((values or {}).get("limit")) if isinstance(values, dict) else None
        elif action == CLAMP:
            for i, j, original, clamped in clamp_cells(values):
                b = bins_of(i, j)
                if b is not None:
                    at(b)["clamp"].append((seq, _number(original), _number(clamped), limit))
    return cells


def established(cell: dict) -> tuple[float | None, int | None]:
    """(the last correction the decisions give a cell, its decision's seq)."""
    last = [(seq, v) for seq, v in cell["gradient"] if v is not None]
    last += [(seq, c) for seq, _, c, _ in cell["clamp"] if c is not None]
    if not last:
        return None, None
    seq, value = max(last)
    return value, seq


# -- the result tables ----------------------------------------------------------------------------


def tables(run) -> dict:
    """The run's output grids in the toolkit's orientation (RPM rows, kPa columns, as the CSV reads),
    each cell with its text as written, whether decisions touched it, and the checks of the values the
    decisions carry against the VE grid; what is missing; and, without a VE grid, the correction the
    decisions alone establish."""
    kept = {o.name: o for o in output_list(run)}
    cells = touched(run)
    out, missing = [], []
    for title, names, signed in TABLES:
        grids = []
        for name in names:
            row = kept.get(name)
            if row is None or row.size is None:
                missing.append(
                    {"name": name, "why": row.why if row is not None else "not imported with the run"}
                )
                continue
            grids.append(_table(run, name, row, cells))
        if grids:
            out.append({"title": title, "signed": signed, "grids": grids})
    ve = grid_of(run, VE_GRID)
    return {
        "tables": out,
        "missing": missing,
        "checks": checks(ve, cells) if ve is not None else [],
        "established": None if ve is not None else _established_grid(cells),
        "touched": len(cells),
        "has_outputs": bool(kept),
    }


def _table(run, name: str, row, cells: dict) -> dict:
    cylinder = next((c for word, c in CYLINDER_OF.items() if word in name), None)
    label = {"f": "front", "r": "rear"}.get(cylinder, "combined" if "Combined" in name else "")
    touches = name == VE_GRID or name.startswith(TOUCHED_BY_SAMPLES)
    table = {
        "name": name,
        "label": label,
        "status": row.status,
        "why": row.why,
        "cols": [],
        "rows": [],
        "paste": None,
        "cylinder": cylinder or "both",
    }
    data = output_file(run=run, name=name)
    text = bytes(data.data).decode("utf-8-sig", errors="replace") if data is not None else ""
    lines = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if lines:
        table["cols"] = [c.strip() for c in lines[0][1:]]
        for line in lines[1:]:
            rpm = _bin(line[0])
            row_cells = []
            for col, value in zip(table["cols"], line[1:]):
                kpa = _bin(col)
                hit = cells.get((rpm, kpa)) if touches else None
                row_cells.append(
                    {
                        "text": value.strip().lstrip("'"),
                        "rpm": rpm,
                        "kpa": kpa,
                        "marks": _marks(hit, cylinder),
                        "css": _css(hit) if name == VE_GRID else "",
                    }
                )
            table["rows"].append({"rpm": line[0].strip(), "cells": row_cells})
    paste = PASTE_READY.get(name)
    paste_row = output_file(run=run, name=paste) if paste else None
    if paste_row is not None:
        table["paste"] = {"name": paste, "text": bytes(paste_row.data).decode("utf-8", errors="replace")}
    return table


def _bin(text: str):
    try:
        value = float(text.strip().lstrip("'"))
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def _marks(hit: dict | None, cylinder: str | None) -> list[str]:
    """What the decisions did to a cell, as short words (none: untouched)."""
    if hit is None:
        return []
    marks = []
    n = sum(hit["afr"].values()) if cylinder is None else hit["afr"].get(cylinder, 0)
    if n:
        marks.append(f"{n} AFR sample{'s' if n != 1 else ''}")
    if cylinder is None:
        marks += [word for key, word in STEPS if hit[key]]
    return marks


def _css(hit: dict | None) -> str:
    """The VE grid's marks: which later steps changed the cell (gradient, clamp, anomaly)."""
    return " ".join(key for key, _ in STEPS if hit and hit[key])


def checks(grid: dict, cells: dict) -> list[dict]:
    """Each value the decisions carry for a cell of the VE grid, against the grid: a clamped value
    must equal it (clamping is the toolkit's last step); a gradient-limited result is logged during
    smoothing, so the grid may have moved on from it."""
    out = []
    for (rpm, kpa), cell in sorted(cells.items(), key=lambda item: (str(type(item[0][0])), item[0])):
        value = grid_value(grid, rpm, kpa)
        entries = [(seq, "gradient-limited result", v, False) for seq, v in cell["gradient"]]
        entries += [(seq, f"clamped (limit {_short(limit)})", c, True) for seq, _, c, limit in cell["clamp"]]
        for seq, what, v, must in sorted(entries, key=lambda e: (e[0], e[1])):
            if v is None or value is None:
                continue
            delta = round(value - v, 4)
            out.append(
                {
                    "rpm": rpm,
                    "kpa": kpa,
                    "seq": seq,
                    "what": what,
                    "decision": v,
                    "grid": value,
                    "delta": delta,
                    "equal": abs(delta) <= TOLERANCE,
                    "must_match": must,
                    "mismatch": must and abs(delta) > TOLERANCE,
                }
            )
    return sorted(out, key=lambda c: not c["must_match"])  # stable: file order within each


def _short(v) -> str:
    return "–" if v is None else (f"{v:g}")


def _established_grid(cells: dict) -> dict | None:
    if not cells:
        return None
    rows = []
    for rpm in RPM_BINS:
        row = []
        for kpa in KPA_BINS:
            cell = cells.get((rpm, kpa))
            value, seq = established(cell) if cell else (None, None)
            row.append(
                {
                    "rpm": rpm,
                    "kpa": kpa,
                    "value": value,
                    "seq": seq,
                    "text": "" if value is None else f"{value:+.2f}",
                    "marks": _marks(cell, None),
                    "css": _css(cell),
                }
            )
        rows.append({"rpm": rpm, "cells": row})
    return {"cols": list(KPA_BINS), "rows": rows}


# -- compare: settings, outcomes, the correction grid -----------------------------------------------


def settings(run) -> dict:
    config = run.settings if isinstance(run.settings, dict) else {}
    return {k: v for k, v in config.items() if k not in NOT_COMPARED}


def outcomes(run) -> dict:
    qs = filtered_decisions(run=run)
    by_action = dict(action_counts(qs))
    cells = touched(run)
    confidence = None
    last = qs.filter(action=CONFIDENCE).order_by("-seq").values_list("values", flat=True).first()
    if isinstance(last, dict):
        confidence = {
            "overall_score": _number(last.get("overall_score")),
            "letter_grade": last.get("letter_grade"),
        }
    return {
        "by_action": by_action,
        "cells_clamped": sum(1 for c in cells.values() if c["clamp"]),
        "cells_gradient_limited": sum(1 for c in cells.values() if c["gradient"]),
        "anomalies": by_action.get(ANOMALY, 0),
        "confidence": confidence,
    }


def correction(run) -> dict | None:
    """The run's VE correction grid (its output file), else the one its decisions establish."""
    grid = grid_of(run, VE_GRID)
    if grid is not None:
        return {"rows": grid["rpm"], "cols": grid["kpa"], "values": grid["values"], "source": VE_GRID}
    cells = touched(run)
    values = [
        [established(cells[(r, k)])[0] if (r, k) in cells else None for k in KPA_BINS] for r in RPM_BINS
    ]
    if all(v is None for row in values for v in row):
        return None
    return {
        "rows": list(RPM_BINS),
        "cols": list(KPA_BINS),
        "values": values,
        "source": "decisions (last gradient-limited or clamped value)",
    }


# The DynoAI facts, imported last (as kinds/dynoai_cells.py does): kinds/dynoai.py imports this module
# in its tuning section, and this module may also be imported first.
from .dynoai import (
    AFR,
    ANOMALY,
    CLAMP,
    CYLINDERS,
    GRADIENT,
    KPA_BINS,
    RPM_BINS,
    STAGES,
    bins_of,
    clamp_cells,
    index_of,
)
