"""DynoAI session replays (FORMATS.md 1): one JSON document of decisions, checked against the
manifest.json beside it; decisions sit on the VE grid, RPM bins x kPa bins."""
from __future__ import annotations

from typing import Any

from . import Column, Profile, Words, register

# The toolkit's VE grid (dynoai/constants.py): grid[rpm_index][kpa_index]. Bins come from the data
# where decisions carry them; these place the index-only cells (gradient limiting, clamping).
RPM_BINS = (1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000, 6500)
KPA_BINS = (35, 50, 65, 80, 95)
AFR, GRADIENT, CLAMP, ANOMALY = "AFR_CORRECTION", "GRADIENT_LIMITING", "CLAMPING_APPLIED", "ANOMALY_DETECTED"
CYLINDERS = {"both": "front and rear", "f": "front", "r": "rear"}
INDEX_NOTE = (
    "Gradient limiting and clamping are logged with grid indices (rpm_index, kpa_index) and no cylinder, "
    "on the combined front+rear grid; they are placed on the standard bins: RPM 1500–6500 in steps of 500 "
    "(index 0–10) × kPa 35, 50, 65, 80, 95 (index 0–4)."
)


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def bins_of(rpm_index: Any, kpa_index: Any) -> tuple[int, int] | None:
    """(rpm, kpa) of a grid index pair, or None outside the grid."""
    if _whole(rpm_index) and _whole(kpa_index):
        if 0 <= rpm_index < len(RPM_BINS) and 0 <= kpa_index < len(KPA_BINS):
            return RPM_BINS[rpm_index], KPA_BINS[kpa_index]
    return None


def index_of(rpm: Any, kpa: Any) -> tuple[int, int] | None:
    """(rpm_index, kpa_index) of a cell on the standard bins, or None."""
    if rpm in RPM_BINS and kpa in KPA_BINS:
        return RPM_BINS.index(rpm), KPA_BINS.index(kpa)
    return None


def cell_bins(cell: Any) -> tuple[Any, Any] | None:
    """(rpm, kpa) of a decision's cell, given by bins or by indices; None without a cell."""
    if not isinstance(cell, dict):
        return None
    rpm, kpa = cell.get("rpm"), cell.get("kpa")
    if _float(rpm) is not None and _float(kpa) is not None:
        return rpm, kpa
    return bins_of(cell.get("rpm_index"), cell.get("kpa_index"))


def clamp_cells(values: Any) -> list[tuple[int, int, float | None, float | None]]:
    """CLAMPING_APPLIED's values.cells as (rpm_index, kpa_index, original, clamped)."""
    entries = values.get("cells") if isinstance(values, dict) else None
    out = []
    for e in entries if isinstance(entries, list) else ():
        if isinstance(e, dict) and _whole(e.get("rpm_index")) and _whole(e.get("kpa_index")):
            out.append((e["rpm_index"], e["kpa_index"], _float(e.get("original")), _float(e.get("clamped"))))
    return out


def _facts(run) -> list:
    from ..summary import Fact

    return [Fact("Schema", run.schema_version, mono=True)] if run.schema_version else []


def _record_json(raw: str) -> str:
    """The decision as read, without the indentation it had inside the file (JSON strings hold no raw
    newline, so only layout changes)."""
    lines = raw.split("\n")
    indents = [len(line) - len(line.lstrip(" ")) for line in lines[1:] if line.strip()]
    strip = min(indents) if indents else 0
    if not strip:
        return raw
    return "\n".join([lines[0], *(line[strip:] if line[:strip].isspace() else line for line in lines[1:])])


def _written_values(record: Any, stored: Any) -> Any:
    return record.get("values", {}) if isinstance(record, dict) else stored


def _is_log(name: str, head: str) -> bool:
    """A *.json beside the replay (a report, the confidence JSON) is not one: named or shaped like a replay."""
    return "session_replay" in name.lower() or (head.startswith("{") and '"decisions"' in head)


# -- cells ----------------------------------------------------------------------------------------
from ..cells import CellsSpec  # noqa: E402  (the grid code needs the facts above: kinds/dynoai_cells.py)
from ..heatmap import KPA as KPA_TITLE, RPM as RPM_TITLE  # noqa: E402
from . import dynoai_cells  # noqa: E402

CELLS = CellsSpec(
    metrics=dynoai_cells.METRICS,
    more_metrics=dynoai_cells.value_metrics,
    build=dynoai_cells.build,
    cell_keys=("cell_rpm", "cell_kpa"),
    parts=dynoai_cells.parts,
    inside=dynoai_cells.inside,
    inside_label="Clamping decision",
    title=dynoai_cells.title,
    where=dynoai_cells.where,
    x_title=KPA_TITLE,
    y_title=RPM_TITLE,
    cylinders=CYLINDERS,
)

# -- replay ---------------------------------------------------------------------------------------
from ..heatmap import KPA as KPA_AXIS, RPM as RPM_AXIS, figure as heatmap_figure  # noqa: E402
from ..replay import Reducer, ReplaySpec, bump, mapping, number, text as as_text  # noqa: E402
from ..text import plot_text  # noqa: E402

INF = float("inf")

STAGES = {
    AFR: "AFR correction",
    "SMOOTHING_START": "smoothing", GRADIENT: "smoothing",
    "CLAMPING_START": "clamping", CLAMP: "clamping",
    "ANOMALY_DETECTION_START": "anomaly detection", ANOMALY: "anomaly detection",
    "CONFIDENCE_SCORING_START": "confidence scoring", "CONFIDENCE_SCORING_COMPLETE": "confidence scoring",
}
REPLAY_MARKERS = {ANOMALY: "anomaly", CLAMP: "clamp"}
# The state grid's layers: (cell key, label, signed: drawn on the diverging scale).
REPLAY_LAYERS = (
    ("afr_error_pct", "AFR error %", True),
    ("result", "Gradient-limited result", True),
    ("clamped", "Clamped value", True),
    ("anomaly_score", "Anomaly score", False),
    ("weight", "Weight", False),
)


def cell_label(value: Any, index: Any, bins: tuple[int, ...]) -> str | None:
    """A grid row/column label: the bin value as written, else the bin of the index, else "[i]"."""
    if number(value) is not None:
        return as_text(int(value) if float(value).is_integer() else value)
    if _whole(index):
        return str(bins[index]) if 0 <= index < len(bins) else f"[{index}]"
    return None


class DynoReducer(Reducer):
    """The cells touched so far (keyed "rpm|kpa"), counts by action, the current stage, confidence."""

    def __init__(self):
        self._keys: dict[tuple, tuple | None] = {}  # (rpm, kpa, rpm_index, kpa_index) -> (key, row, col)

    def initial(self) -> dict:
        return {"counts": {}, "stage": None, "cells": {}, "confidence": None, "round": None}

    def fold(self, state: dict, d: dict) -> None:
        action = d["action"]
        bump(state["counts"], action)
        state["stage"] = STAGES.get(action, state["stage"])
        values = mapping(d.get("values"))
        if action == AFR:
            cell = self._cell(state, d.get("rpm"), d.get("kpa"), None, None)
            if cell is not None:
                cell["afr_error_pct"] = number(values.get("afr_error_pct"))
                cell["weight"] = number(values.get("weight"))
                cell["cylinder"] = d.get("cylinder")
                cell["samples"] = cell.get("samples", 0) + 1
        elif action == GRADIENT:
            cell = self._cell(state, None, None, d.get("rpm_index"), d.get("kpa_index"))
            if cell is not None:
                for key in ("result", "gradient", "original", "smoothed"):
                    cell[key] = number(values.get(key))
        elif action == "ANOMALY_DETECTION_START":
            # A new detection pass: the flags of the last one no longer describe the grid.
            for cell in state["cells"].values():
                cell.pop("anomaly", None)
                cell.pop("anomaly_score", None)
        elif action == CLAMP:
            for rpm_index, kpa_index, original, clamped in clamp_cells(values):
                cell = self._cell(state, None, None, rpm_index, kpa_index)
                if cell is not None:
                    cell["clamped"], cell["unclamped"] = number(clamped), number(original)
        elif action == ANOMALY:
            cell = self._cell(state, d.get("rpm"), d.get("kpa"), d.get("rpm_index"), d.get("kpa_index"))
            if cell is not None:
                cell["anomaly"] = True
                cell["anomaly_score"] = number(values.get("score"))
        elif action == "CONFIDENCE_SCORING_COMPLETE":
            state["confidence"] = {k: values.get(k) for k in ("overall_score", "letter_grade")}

    def _cell(self, state: dict, rpm, kpa, rpm_index, kpa_index) -> dict | None:
        where = (rpm, kpa, rpm_index, kpa_index)
        try:
            found = self._keys.get(where, False)
        except TypeError:  # a list or dict where a coordinate should be
            where, found = None, False
        if found is False:
            row, col = cell_label(rpm, rpm_index, RPM_BINS), cell_label(kpa, kpa_index, KPA_BINS)
            found = None if row is None or col is None else (f"{row}|{col}", row, col)
            if where is not None and len(self._keys) < 100_000:
                self._keys[where] = found
        if found is None:
            return None
        key, row, col = found
        cell = state["cells"].get(key)
        if cell is None:
            cell = state["cells"][key] = {"rpm": row, "kpa": col}
        return cell

    def marker(self, d: dict) -> str | None:
        return REPLAY_MARKERS.get(d["action"])


def _grid_axis(labels, bins: tuple[int, ...]) -> list[str]:
    """Row/column labels: every standard bin, plus any other label seen, in numeric order."""
    seen = set(labels) | {str(b) for b in bins}

    def key(label: str):
        try:
            return (0, float(label) if not label.startswith("[") else INF, label)
        except ValueError:
            return (1, INF, label)

    return sorted(seen, key=key)


def replay_grid(state: dict) -> dict:
    """The state's VE grid: RPM rows, kPa columns (viewer/heatmap.py's orientation), one z matrix per
    layer, the anomaly flags, the hover text (made inert here: plotly renders it as HTML) and the
    empty figure the player fills in with the chosen layer."""
    cells = state.get("cells", {})
    rows = _grid_axis((c["rpm"] for c in cells.values()), RPM_BINS)
    cols = _grid_axis((c["kpa"] for c in cells.values()), KPA_BINS)
    z = {layer: [[None] * len(cols) for _ in rows] for layer, _, _ in REPLAY_LAYERS}
    hover = [[""] * len(cols) for _ in rows]
    anomalies = []
    row_at, col_at = {r: i for i, r in enumerate(rows)}, {c: j for j, c in enumerate(cols)}
    for cell in cells.values():
        i, j = row_at[cell["rpm"]], col_at[cell["kpa"]]
        for layer in z:
            z[layer][i][j] = cell.get(layer)
        if cell.get("anomaly"):
            anomalies.append([i, j])
        hover[i][j] = "<br>".join(plot_text(line) for line in _hover_lines(cell))
    blank = [[None] * len(cols) for _ in rows]
    return {"rows": rows, "cols": cols, "z": z, "text": hover, "anomalies": anomalies,
            "figure": heatmap_figure(rows=rows, columns=cols, z=blank, x_title=KPA_AXIS, y_title=RPM_AXIS)}


def _hover_lines(cell: dict) -> list[str]:
    lines = [f"{RPM_AXIS} {cell['rpm']} · {KPA_AXIS} {cell['kpa']}"]
    if cell.get("afr_error_pct") is not None:
        lines.append(f"AFR error {cell['afr_error_pct']:+.2f}% · weight {_short(cell.get('weight'))}"
                     f" ({as_text(cell.get('cylinder'))}, {cell.get('samples', 0)} samples)")
    if cell.get("result") is not None:
        lines.append(f"gradient-limited {_short(cell.get('original'))} → {_short(cell['result'])}"
                     f" (gradient {_short(cell.get('gradient'))})")
    if cell.get("clamped") is not None:
        lines.append(f"clamped {_short(cell.get('unclamped'))} → {_short(cell['clamped'])}")
    if cell.get("anomaly"):
        lines.append(f"⚠ anomaly, score {_short(cell.get('anomaly_score'))}")
    return lines


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "–" if value is None else as_text(value)


def _replay_context(state: dict) -> dict:
    cells = state.get("cells", {}).values()
    return {"cells_touched": len(cells), "anomaly_cells": sum(1 for c in cells if c.get("anomaly"))}


REPLAY = ReplaySpec(
    reducer=DynoReducer,
    template="viewer/kinds/dynoai_replay.html",
    context=_replay_context,
    grid=replay_grid,
    layers=REPLAY_LAYERS,
    markers=("anomaly", "clamp"),
)

# -- diff -----------------------------------------------------------------------------------------
from ..diff import CellDelta, DiffSpec
from ..diff_values import is_number as diff_is_number
from ..diff_values import loads as diff_loads
from ..dynoai_text import format_cell


def diff_cell_label(cell_text: str | None) -> str:
    """`RPM=2000 KPA=65 Cyl=f` / `RPM[0] KPA[1]`, as DynoAI's viewer writes cells."""
    return format_cell(diff_loads(cell_text)) if cell_text else ""


def _diff_cell_of(cell_text: str | None) -> tuple | None:
    return cell_bins(diff_loads(cell_text)) if cell_text else None


def _diff_finals(rows, last: dict[tuple, float]) -> None:
    """Fold (action, cell text, values text) rows, in seq order, into the last correction logged per
    (rpm, kpa): GRADIENT_LIMITING `result`, or a later CLAMPING_APPLIED `clamped`. Called on each
    stretch as the diff reads a run, so no decision is read twice for the heatmap. The stretch is
    walked from its end: a cell already set by a later decision is skipped unparsed."""
    found: dict[tuple, float] = {}
    for act, text, values_text in reversed(rows if isinstance(rows, list) else list(rows)):
        if act == GRADIENT:
            cell = _DIFF_CELLS.get(text, False)
            if cell is False:
                cell = _diff_cell_of(text)
                if len(_DIFF_CELLS) < 100_000:
                    _DIFF_CELLS[text] = cell
            if cell is None or cell in found:
                continue
            values = diff_loads(values_text)
            if isinstance(values, dict) and diff_is_number(values.get("result")):
                found[cell] = values["result"]
        elif act == CLAMP:  # clamp_cells and bins_of, inline: a run's clamps list about a million cells
            values = diff_loads(values_text)
            entries = values.get("cells") if isinstance(values, dict) else None
            for e in reversed(entries) if isinstance(entries, list) else ():
                if type(e) is dict and type(ri := e.get("rpm_index")) is int and type(ki := e.get("kpa_index")) is int:
                    cell = _GRID_BINS.get((ri, ki))
                    if cell and cell not in found and diff_is_number(clamped := e.get("clamped")):
                        found[cell] = float(clamped)  # as clamp_cells gives it
    last.update(found)


_DIFF_CELLS: dict[str | None, tuple | None] = {}  # cell text -> its bins (few distinct texts per grid)
_GRID_BINS = {(ri, ki): (rpm, kpa) for ri, rpm in enumerate(RPM_BINS) for ki, kpa in enumerate(KPA_BINS)}


DIFF = DiffSpec(
    columns=("reason", "cell_text"),
    key=("action", "cell_text"),
    compared=("reason",),
    where=lambda row, run: diff_cell_label(row["cell_text"]),
    settings=lambda run: dict(run.settings or {}),
    settings_source="manifest config.args",
    settings_missing="import the session replay together with its manifest.json",
    filters=(("rpm", "RPM", "number"), ("kpa", "kPa", "number")),
    cells=CellDelta(
        column="cell_text",
        cell_of=_diff_cell_of,
        finals=_diff_finals,
        final_note="The last correction logged per cell: GRADIENT_LIMITING result, or a later "
        "CLAMPING_APPLIED value. Blank: no value on one side.",
        count_note="Decisions logged per cell (both cylinders; index cells mapped to DynoAI's bins).",
    ),
)


# -- tuning (issue 17): the cell story, the result tables, compare of runs (kinds/dynoai_tuning.py) ------
from ..tuning import TuningSpec  # noqa: E402
from . import dynoai_tuning  # noqa: E402

TUNING = TuningSpec(
    locate=dynoai_tuning.locate,
    story=dynoai_tuning.story,
    tables=dynoai_tuning.tables,
    outcomes=dynoai_tuning.outcomes,
    correction=dynoai_tuning.correction,
    settings=dynoai_tuning.settings,
    cylinders=CYLINDERS,
    value_title="VE correction %",
    story_line="viewer/kinds/dynoai_story_line.html",
)


# -- the timeline (issue 17.1): decisions in order, in lanes by pipeline stage (charts.Lanes) -------------
from ..charts import SEQ, Lanes  # noqa: E402

# The toolkit's pipeline, in the order it runs; an action is in the stage its name starts with
# (SMOOTHING_START, CLAMPING_APPLIED...); an action of no stage goes to "Other", last.
PIPELINE = (
    ("AFR correction", ("AFR_",)),
    ("Smoothing", ("SMOOTH",)),
    ("Gradient limiting", ("GRADIENT",)),
    ("Clamping", ("CLAMP",)),
    ("Anomaly detection", ("ANOMAL",)),
    ("Confidence", ("CONFIDENCE",)),
)
TIMELINE = Lanes(stages=PIPELINE, axis=SEQ)


PROFILE = register(
    Profile(
        name="dynoai",
        label="DynoAI session replay",
        reader="viewer.readers.dynoai",
        run_name="viewer.kinds.run_names.dynoai",
        words=Words(
            action="Action",
            agent="Agent",
            settings="Settings",
            q_hint="reason",
            action_example="gradient",
            value_example="afr_error_pct>=5",
            align="action and cell",
        ),
        uses_manifest=True,
        is_log=_is_log,
        filter_fields=(
            "rpm", "kpa", "cylinder", "rpm_min", "rpm_max", "kpa_min", "kpa_max", "rpm_index", "kpa_index",
        ),
        columns=(Column("Cell", "cell", "mono nowrap"),),
        facets=(("action", "Action"), ("cylinder", "Cylinder")),
        summary_facts=_facts,
        record_json=_record_json,
        written_values=_written_values,
        raw_is_decision=True,
        cells=CELLS,
        replay=REPLAY,
        diff=DIFF,
        tuning=TUNING,
        timeline=TIMELINE,
    )
)
