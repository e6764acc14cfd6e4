"""Results over a run, computed once: a run never changes once imported, so an aggregate over
(run, parameters) stays true. They are kept in the database (RunAggregate, deleted with their run),
so every web process and every worker shares them, and the import job computes a new run's first
view ahead (viewer/warm.py). Only big runs are worth it; small ones are computed each time.

Keeping one is best-effort: when the database will not take the write at once (SQLite while an
import holds its write lock, another process storing the same aggregate a moment earlier), the
reader gets its answer anyway and the next reader computes it again.
"""
import hashlib
import logging
import pickle

from .db import best_effort
from .filters import NOTE_FILTERS
from .models import Run, RunAggregate

log = logging.getLogger(__name__)

BIG_RUN = 20_000  # decisions; below this every aggregate is a few ms
# Part of every key: bump it when what an aggregate holds changes shape, so that rows written by
# older code are never read (they stay until their run is deleted).
VERSION = 1
# Each filter set a big run is viewed through adds a few; past this many a run's new ones are
# computed each time rather than kept (the first view's, kept first, stay).
MAX_PER_RUN = 500


def remembers(run) -> bool:
    """Whether run_memo keeps the run's aggregates: a big run that is not still growing."""
    return run.decision_count > BIG_RUN and run.status != Run.Status.LIVE


def aggregate_key(what: str, params: dict) -> str:
    described = repr(sorted((str(k), repr(v)) for k, v in params.items()))
    return hashlib.sha256(f"{VERSION}\n{what}\n{described}".encode()).hexdigest()


def run_memo(run, what: str, params: dict, compute):
    """compute(), stored per run and parameters when the run is big, and read back from then on.
    Notes change after the import: an aggregate filtered by them (label=, noted=) is never kept."""
    if not remembers(run) or any(name in params for name in NOTE_FILTERS):
        return compute()
    key = aggregate_key(what, params)
    stored = list(RunAggregate.objects.filter(run=run, key=key).values_list("value", flat=True)[:1])
    if stored:
        try:
            return pickle.loads(stored[0])
        except Exception:  # written by code whose classes have since changed: computed again, replaced
            log.warning("aggregate %s of run %s could not be read; computing it again", what, run.pk)
    value = compute()
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def keep():
        if stored:
            RunAggregate.objects.filter(run=run, key=key).delete()
        elif RunAggregate.objects.filter(run=run).count() >= MAX_PER_RUN:
            return
        RunAggregate.objects.create(run=run, key=key, what=what[:200], value=data)

    best_effort(keep, f"aggregate {what} of run {run.pk}")
    return value
