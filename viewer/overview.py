"""What the run page shows of a run's filtered decisions as a whole: its facets, its summary (counts
and gaps per action), its timeline chart and the colours of its actions. Each is computed once per
run and filters (viewer/memo.py): the page and its fragments read them through here, and the import
job computes the unfiltered ones ahead (viewer/warm.py), so the keys are the same for both.
"""
from __future__ import annotations

from . import display
from .charts import POINTS_MAX, SEQ, TIME, bin_width, bins_figure, points_figure, seq_bin_width
from .facets import facets_for
from .filters import T_FROM, T_TO
from .memo import run_memo
from .selectors import (
    action_stats, chart_points, filtered_decisions, largest_gaps, run_actions, seq_bins, seq_range, time_bins,
    time_range,
)


def colours(run) -> display.Colours:
    """One colour per action of the run, whatever the filters."""
    return _remembered(run, "colours", {}, lambda: display.palette(run_actions(run=run)))


def facets(run, kind, filters: dict) -> list:
    """The kind's facets (value counts) over the filtered decisions."""
    return _remembered(run, "facets", filters,
                       lambda: facets_for(run=run, filters=filters, facets=kind.facets))


def stats(run, filters: dict) -> tuple:
    """(action_stats, largest_gaps) of the filtered decisions: the summary's rows and its gaps."""
    return _remembered(run, "stats", filters, lambda: (
        action_stats(run=run, **filters), largest_gaps(run=run, **filters)))


def default_axis(lanes, filters: dict) -> str:
    """The chart's axis without `axis=`: a kind with pipeline lanes on its own axis (DynoAI: seq),
    except that a time window (t_from/t_to) is read on the time axis; other kinds on time."""
    windowed = filters.get(T_FROM) is not None or filters.get(T_TO) is not None
    return TIME if windowed or not lanes else lanes.axis


def figure(run, kind, filters: dict, axis: str) -> dict:
    """The timeline chart's plotly figure on `axis`: every point, or bins on a big selection."""
    return _remembered(run, "chart:" + axis, filters,
                       lambda: _figure(run, filters, colours(run), axis, kind.timeline))


def matching(run, filters: dict) -> int:
    """How many decisions the filters keep (remembered on a big run: a text filter counts by a scan,
    and the matchline and the chart both ask)."""
    if not filters:
        return run.decision_count
    return _remembered(run, "count", filters, lambda: filtered_decisions(run=run, **filters).count())


def _remembered(run, what: str, filters: dict, compute):
    return run_memo(run, "run-page:" + what, filters, compute)


def _figure(run, filters, colours, axis=TIME, lanes=None) -> dict:
    total = matching(run, filters)
    window = (filters.get(T_FROM), filters.get(T_TO))
    if total <= POINTS_MAX:
        points = chart_points(run=run, limit=POINTS_MAX, **filters)
        return points_figure(points, colours=colours, window=window, axis=axis, lanes=lanes)
    if axis == SEQ:
        return _seq_bins_figure(run, filters, colours, total, lanes)
    low, high = window
    if low is None or high is None:
        found_low, found_high = time_range(run=run, **filters)
        low, high = found_low if low is None else low, found_high if high is None else high
    if low is None or high is None:
        return bins_figure([], start=0.0, width=1.0, total=total, undated=total, colours=colours,
                           window=window, lanes=lanes)
    width = bin_width(low, high)
    bins = time_bins(run=run, start=low, width=width, **filters)
    return bins_figure(bins, start=low, width=width, total=total,
                       undated=total - sum(n for _, _, n in bins), colours=colours, window=window,
                       lanes=lanes)


def _seq_bins_figure(run, filters, colours, total, lanes) -> dict:
    """Counts per bin of consecutive decisions per action (selectors.seq_bins), with each bin's time span."""
    low, high = seq_range(run=run, **filters)
    if low is None:
        return bins_figure([], start=0, width=1, total=total, colours=colours, axis=SEQ, lanes=lanes)
    width = seq_bin_width(low, high)
    rows = seq_bins(run=run, start=low, width=width, **filters)
    spans: dict[int, list] = {}
    for r in rows:
        span = spans.setdefault(r["b"], [low + r["b"] * width, low + (r["b"] + 1) * width - 1, None, None])
        if r["t_low"] is not None:
            span[2] = r["t_low"] if span[2] is None else min(span[2], r["t_low"])
            span[3] = r["t_high"] if span[3] is None else max(span[3], r["t_high"])
    bins = [(r["action"], r["b"], r["n"]) for r in rows]
    return bins_figure(bins, start=low, width=width, total=total, colours=colours, axis=SEQ, lanes=lanes,
                       spans=[s for s in spans.values() if s[2] is not None])
