"""What a kind offers a tuner (issue 17): one cell's story, the run's result tables, and the outcomes
and correction grid the compare page lines up. A kind that has them sets `Profile.tuning` to a
TuningSpec; the pages and the API ask `kinds.profile(run).tuning` and call its functions, never
comparing a kind (STYLE.md 13). Plain data out; no request here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class CellError(ValueError):
    """A cell that cannot be placed: the message names the parameter."""


@dataclass(frozen=True)
class TuningSpec:
    # (rpm, kpa, rpm_index, kpa_index) -> (rpm, kpa); raises CellError.
    locate: Callable[..., tuple[Any, Any]]
    # (run, *, rpm, kpa, cylinder) -> {"cell", "decisions": [{"seq", "action", ...}], "final": {...} or None}
    story: Callable[..., dict]
    # run -> the result tables report (tables.html renders it)
    tables: Callable[[Any], dict]
    # run -> {"by_action": {...}, "cells_clamped", "cells_gradient_limited", "anomalies", "confidence"}
    outcomes: Callable[[Any], dict]
    # run -> {"rows": [...], "cols": [...], "values": [[...]], "source": str} or None: the correction grid
    correction: Callable[[Any], dict | None]
    # run -> the settings compared across runs (what differs on every run left out)
    settings: Callable[[Any], dict]
    cylinders: dict[str, str] = field(default_factory=dict)  # cylinder value -> label ("both" first)
    story_line: str = ""  # the template that reads one step of a cell's story (the kind's own words)
    value_title: str = "correction %"
