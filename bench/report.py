"""Figures, their statistics, the printed table and var/bench/latest.json.

A Figure is one measurement repeated a few times, beside its baseline measured in the same run.
The ratio quoted is always "our speed as a fraction of the baseline's": our rate / the baseline's
rate, or the baseline's time / our time. 1.0 means as fast as the plain script; 0.5 half as fast.
"""
from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

RATE_UNITS = ("decisions/s", "rows/s", "lines/s")


@dataclass
class Figure:
    section: str  # import, reads, diff, export, peers
    name: str  # what was measured, e.g. "dynoai 100,000"
    unit: str  # decisions/s, rows/s, ms, MB, KB
    samples: list[float] = field(default_factory=list)
    baseline_name: str = ""
    baseline: list[float] = field(default_factory=list)
    # A target on the ratio ("ratio", 0.5) or on our median ("max", 150) / ("min", 200000).
    target_kind: str = ""
    target: float | None = None
    note: str = ""  # what limits the figure, or why it is not available
    available: bool = True

    @property
    def higher_is_better(self) -> bool:
        return self.unit in RATE_UNITS

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline) if self.baseline else None

    @property
    def ratio(self) -> float | None:
        ours, base = self.median, self.baseline_median
        if not ours or not base:
            return None
        return ours / base if self.higher_is_better else base / ours

    @property
    def met(self) -> bool | None:
        if not self.available or self.target is None:
            return None
        value = self.ratio if self.target_kind == "ratio" else self.median
        if value is None:
            return None
        if self.target_kind in ("ratio", "min"):
            return value >= self.target
        return value <= self.target

    def target_text(self) -> str:
        if self.target is None:
            return ""
        if self.target_kind == "ratio":
            return f"ratio ≥ {self.target:g}"
        sign = "≥" if self.target_kind == "min" else "≤"
        return f"{sign} {_number(self.target)} {self.unit}"

    def as_dict(self) -> dict:
        data = asdict(self)
        data.update(
            median=self.median, min=min(self.samples) if self.samples else None,
            max=max(self.samples) if self.samples else None, baseline_median=self.baseline_median,
            ratio=self.ratio, met=self.met, target_text=self.target_text(),
        )
        return data


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def spread(values: list[float]) -> str:
    """`median (min–max)`, or just the value when measured once."""
    if not values:
        return "–"
    med = statistics.median(values)
    if len(values) == 1:
        return _number(med)
    return f"{_number(med)} ({_number(min(values))}–{_number(max(values))})"


def table(figures: list[Figure]) -> str:
    header = ("section", "measurement", "ours: median (min–max)", "unit", "baseline: median (min–max)",
              "ratio", "target", "met")
    rows = [header]
    for f in figures:
        if not f.available:
            rows.append((f.section, f.name, "not available", "", "", "", f.target_text(), ""))
            continue
        base = f"{spread(f.baseline)} {f.baseline_name}".strip() if f.baseline else ""
        ratio = _ratio(f.ratio)
        met = {True: "met", False: "MISSED", None: ""}[f.met]
        rows.append((f.section, f.name, spread(f.samples), f.unit, base, ratio, f.target_text(), met))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"  {f.section} / {f.name}: {f.note}" for f in figures if f.note]
    if notes:
        lines += ["", "notes:"] + notes
    return "\n".join(lines)


def markdown(figures: list[Figure]) -> str:
    """The same table as Markdown, for docs/BENCH.md."""
    out = ["| section | measurement | ours: median (min–max) | unit | baseline: median (min–max) | ratio | target | met |",
           "|---|---|---|---|---|---|---|---|"]
    for f in figures:
        if not f.available:
            out.append(f"| {f.section} | {f.name} | not available | | | | {f.target_text()} | |")
            continue
        base = f"{spread(f.baseline)} {f.baseline_name}".strip() if f.baseline else ""
        ratio = _ratio(f.ratio)
        met = {True: "met", False: "**missed**", None: ""}[f.met]
        out.append(f"| {f.section} | {f.name} | {spread(f.samples)} | {f.unit} | {base} | {ratio} | "
                   f"{f.target_text()} | {met} |")
    return "\n".join(out)


def machine(vendor: str) -> dict:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "database": vendor,
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def write_json(path: Path, figures: list[Figure], *, settings: dict, machine_info: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "machine": machine_info,
        "figures": [f.as_dict() for f in figures],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)
