"""How numbers, durations and log strings read, everywhere a person reads them (one module).

- `cli_duration`: exactly as DynoAI's CLI prints a duration (`22.0ms`, `1.17s`); the summary's
  DynoAI line and the text export keep it.
- `duration`: as people read a span of time: `22.0 ms`, `1.2 s`, `3 min 05 s`, `2 h 03 min`.
- `clock`: a position in a run, as a player's clock shows it: `+22.0 ms`, `+1.50 s`, `+1:02.5`.
- `plot_text`: a log string made inert for plotly, which renders text as HTML.
- `inert`: a log string with bidi controls shown as their code points (pages, exports).
"""
from __future__ import annotations

import html
import math

from .dynoai_text import format_duration

# Bidi controls (embeddings, overrides, isolates, marks): a right-to-left override in a log
# string would reverse the text around it on a page, a chart label or an export.
BIDI = {c: f"<U+{c:04X}>" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}
DASH = "–"


def cli_duration(ms: float | None) -> str:
    return DASH if ms is None else format_duration(ms)


def duration(ms: float | None, *, signed: bool = False) -> str:
    """`22.0 ms`, `1.2 s`, `3 min 05 s`, `2 h 03 min`, `3 d 04 h`; `–` when unknown. Never a
    rounded-up `1000.0 ms` or `60.0 s`."""
    if ms is None or (isinstance(ms, float) and not math.isfinite(ms)):
        return DASH
    sign = ("+" if ms > 0 else "-" if ms < 0 else "") if signed else ("-" if ms < 0 else "")
    ms = abs(ms)
    if round(ms, 1) < 1000:
        return f"{sign}{ms:.1f} ms"
    if round(ms / 1000, 1) < 60:
        s = ms / 1000
        return f"{sign}{s:.2f} s" if round(s, 2) < 10 else f"{sign}{s:.1f} s"
    seconds = round(ms / 1000)
    if seconds < 3600:
        return f"{sign}{seconds // 60} min {seconds % 60:02d} s"
    minutes = round(seconds / 60)
    if minutes < 24 * 60:
        return f"{sign}{minutes // 60} h {minutes % 60:02d} min"
    hours = round(minutes / 60)
    return f"{sign}{hours // 24} d {hours % 24:02d} h"


def clock(t_ms: float | None) -> str:
    """+22.0 ms, +1.50 s, +1:02.5, +1:02:03 (a position since the run's first decision)."""
    if t_ms is None:
        return ""
    sign = "-" if t_ms < 0 else "+"
    t = abs(t_ms)
    if round(t, 1) < 1000:
        return f"{sign}{t:.1f} ms"
    s = t / 1000
    if round(s, 2) < 60:
        return f"{sign}{s:.2f} s"
    tenths = round(s * 10)
    m, tenth = divmod(tenths, 600)
    if m < 60:
        return f"{sign}{m}:{tenth / 10:04.1f}"
    h, m = divmod(m, 60)
    return f"{sign}{h}:{m:02d}:{tenth // 10:02d}"


def number(value, digits: int | None = None) -> str:
    """12,345 and 1,234.57: thousands grouped; a whole float without decimals unless `digits`."""
    if value is None:
        return DASH
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if digits is not None:
        return f"{value:,.{digits}f}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,}"
    return f"{int(value):,}"


def inert(value) -> str:
    """A log string with its bidi controls shown as code points (the template still escapes it)."""
    return str(value).translate(BIDI)


def plot_text(value) -> str:
    """A log string made inert for plotly, which renders text as HTML: markup escaped, and bidi
    controls shown as their code points."""
    # Quotes stay as they are: plotly decodes only a few entities (&amp; &lt; &gt; and numeric
    # ones), so an escaped quote would show as "&quot;", and a quote starts no markup.
    return html.escape(str(value).translate(BIDI), quote=False)
