"""A new run's first view, computed by its import job before the run is shown (issue 15.3).

`warm(run, say)` calls the functions the pages call, with the filters of a page opened without any
(the run page's colours, facets, summary and chart on its default axis; the cells page's grid for
every metric it offers, on its default cylinder choice), so that they store what the first request
looks up (viewer/memo.py); then it builds the replay index of the unfiltered replay here and now.
What a kind offers comes from its profile: nothing here knows a kind.

`say(stage)` records progress and is the job's heartbeat: it is called before each aggregate
("aggregating") and as the replay index is built ("indexing"). What it raises (a cancelled job)
propagates.
"""
from __future__ import annotations

from collections.abc import Callable

from . import cells, cells_time, kinds, memo, overview, replay_store

FIRST_VIEW: dict = {}  # the filters of a page opened from the runs list: none


def warm(run, say: Callable[[str], None]) -> None:
    """Compute what the run's first view reads. A run too small for run_memo to keep anything
    gets only its replay index."""
    profile = kinds.profile(run)
    if memo.remembers(run):
        for compute in _run_page(run, profile):
            say("aggregating")
            compute()
        say("aggregating")
        for compute in _cells_page(run, profile):
            say("aggregating")
            compute()
    say("indexing")
    replay_store.build_now(run, FIRST_VIEW, heartbeat=lambda: say("indexing"))


def _run_page(run, profile) -> list[Callable]:
    axis = overview.default_axis(profile.timeline, FIRST_VIEW)
    return [
        lambda: overview.colours(run),
        lambda: overview.facets(run, profile, FIRST_VIEW),
        lambda: overview.stats(run, FIRST_VIEW),
        lambda: overview.figure(run, profile, FIRST_VIEW, axis),
    ]


def _cells_page(run, profile) -> list[Callable]:
    """The grid of each metric the cells page offers (its metric menu): the page opens on the first."""
    spec = profile.cells or cells_time.SPEC
    metrics = cells.available_metrics(spec=spec, run=run)
    return [
        lambda m=m: cells.remembered_grid(spec=spec, run=run, filters=FIRST_VIEW, metric=m.key,
                                          cylinder=cells.BOTH, metrics=metrics)
        for m in metrics
    ]
