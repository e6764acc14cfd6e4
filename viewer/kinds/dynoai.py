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
CELLS = None

# -- replay ---------------------------------------------------------------------------------------
REPLAY = None

# -- diff -----------------------------------------------------------------------------------------
DIFF = None


PROFILE = register(
    Profile(
        name="dynoai",
        label="DynoAI session replay",
        reader="viewer.readers.dynoai",
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
    )
)
