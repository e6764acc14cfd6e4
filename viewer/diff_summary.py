"""What two diffed runs add up to: decisions per action on each side, and the per-cell B − A heatmap.

Pure functions over `diff.DiffResult`; the heatmap is drawn by the one heatmap figure
(`viewer/heatmap.py`: RPM rows, kPa columns) for kinds whose spec has a `CellDelta`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from . import heatmap
from .diff import CellDelta, DiffResult, Side
from .diff_values import delta
from .text import number

HEAT_FINAL, HEAT_COUNT = "final", "count"
HEAT_WHAT = {HEAT_FINAL: "final correction", HEAT_COUNT: "decisions"}


@dataclass(frozen=True)
class CountRow:
    label: str
    a: int
    b: int

    @property
    def delta(self) -> int:
        return self.b - self.a


def action_counts(a: Side, b: Side) -> list[CountRow]:
    """Decisions per action on each side, most frequent first (ties in order of appearance)."""
    ca, cb = Counter(a.action), Counter(b.action)
    order = list(dict.fromkeys([*ca, *cb]))
    order.sort(key=lambda act: -(ca[act] + cb[act]))
    return [CountRow(act, ca[act], cb[act]) for act in order]


def cells_of(result: DiffResult) -> CellDelta | None:
    """The grid both runs sit on, when they are of one kind that has one."""
    spec = result.a.spec
    return spec.cells if spec is result.b.spec else None


def cell_heatmap(result: DiffResult, metric: str = HEAT_FINAL) -> dict | None:
    """A plotly heatmap of B − A per cell (RPM rows, kPa columns); None without a grid or cells.

    `final`: the last value each run logged for the cell (the kind's `finals`); a cell only one run
    logged is blank and labelled "A only" or "B only". `count`: decisions logged for the cell (a
    cell one run never logged counts 0 there).
    """
    grid = cells_of(result)
    if grid is None:
        return None
    sides = (result.a, result.b)
    per = [_counts(grid, s) for s in sides] if metric == HEAT_COUNT else [s.finals for s in sides]
    cells = per[0].keys() | per[1].keys()
    if not cells:
        return None
    rows = sorted({c[0] for c in cells})
    columns = sorted({c[1] for c in cells})
    what = HEAT_WHAT.get(metric, metric)
    missing = 0 if metric == HEAT_COUNT else None  # no decision in a cell is a count of 0, not a gap
    z, text, hover = [], [], []
    for r in rows:
        zr, tr, hr = [], [], []
        for c in columns:
            logged = (r, c) in per[0] or (r, c) in per[1]  # else a corner of the rectangle: nothing to say
            va, vb = per[0].get((r, c), missing), per[1].get((r, c), missing)
            d = delta(va, vb) if logged and va is not None and vb is not None else None
            zr.append(d)
            # A cell logged by one run only has no B − A: it says which run has it; neither, nothing.
            tr.append(f"{d:+g}" if d is not None else "" if not logged else "A only" if va is not None else "B only")
            lines = [f"{heatmap.RPM} {r} · {heatmap.KPA} {c} ({what})",
                     f"A: {number(va)}", f"B: {number(vb)}"]
            if d is not None:
                lines.append(f"B − A: {d:+g}")
            hr.append(lines)
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    return heatmap.figure(
        rows=rows, columns=columns, z=z, text=text, hover=hover, value_title="B − A", diverging=True
    )


def _counts(grid: CellDelta, side: Side) -> dict[tuple, int]:
    out: dict[tuple, int] = {}
    for text, n in Counter(side.column(grid.column)).items():
        cell = grid.cell_of(text)
        if cell is not None:
            out[cell] = out.get(cell, 0) + n
    return out
