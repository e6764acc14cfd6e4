"""Who may do what to a run: one place decides it for every face (pages, fragments, exports, API).

- The owner does everything: sees, annotates, renames, tags, shares, deletes.
- A user the run is shared with (`RunShare`, directly or through a group) sees it; with
  `can_annotate` they also add notes and edit their own.
- Anyone else gets a 404, never a 403: a foreign run's existence is not revealed.
- Someone without an account holding a live public link (ShareLink) reads that run's faces, or
  its audit trail alone (`link_opens`); viewer/middleware lets them through, nothing else.

Reads go through `selectors.visible_runs` / `get_run_or_404` (which count shares); what changes a
run asks here.
"""
from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q
from django.http import Http404

from .models import Run, RunShare

OWNER, ANNOTATOR, READER = "owner", "annotator", "reader"


def shares_of(user) -> Q:
    """The RunShare rows that reach `user`: theirs, and their groups'."""
    return Q(user=user) | Q(group__in=user.groups.all())


def shared_run_ids(user):
    """A subquery of the ids of runs shared with `user` (directly or through a group)."""
    return RunShare.objects.filter(shares_of(user)).values("run_id")


def role(user, run: Run) -> str | None:
    """owner, annotator or reader of `run`, or None when the user may not see it."""
    if not getattr(user, "is_authenticated", False):
        return None
    if run.owner_id == user.pk:
        return OWNER
    shares = list(RunShare.objects.filter(shares_of(user), run=run).values_list("can_annotate", flat=True))
    if not shares:
        return None
    return ANNOTATOR if any(shares) else READER


def can_annotate(user, run: Run) -> bool:
    return role(user, run) in (OWNER, ANNOTATOR)


def is_owner(user, run: Run) -> bool:
    return getattr(user, "is_authenticated", False) and run.owner_id == user.pk


def owned_run_or_404(user, run_id) -> Run:
    """A run the user owns (to rename, tag, share or delete), or 404 (a reader is told nothing more)."""
    from .selectors import get_run_or_404

    run = get_run_or_404(user, run_id)
    if run.owner_id != user.pk:
        raise Http404("No such run")
    return run


# -- public links ---------------------------------------------------------------------------------

# What a public link opens (GET only), by URL name: a run link every read-only face of its run (not
# the diff or a compare, which show other runs), an audit link the audit trail alone. Any other URL,
# a new one included, is closed to a link holder until it is named here.
RUN_FACES = frozenset({
    "run", "decision", "run-cells", "run-cell-story", "run-tables", "run-replay", "run-replay-frames",
    "run-replay-document", "run-replay-writing", "run-llm", "run-state", "run-replay-kit", "run-trace",
    "run-export", "run-export-otlp", "run-output", "run-notes",
})
AUDIT_FORMATS = ("html", "pdf")
SAFE_METHODS = ("GET", "HEAD")


class LinkVisitor(AnonymousUser):
    """Someone without an account holding a live public link, for one request: `visible_runs` shows
    them that link's run, and nothing else changes (not logged in, no API, no POST)."""

    def __init__(self, link):
        self.link = link
        self.granted_run_id = link.run_id


def link_opens(link, method: str, url_name: str | None, kwargs: dict) -> bool:
    """Whether `link` lets its holder make this request (the URL resolved to `url_name`, `kwargs`)."""
    if method not in SAFE_METHODS or kwargs.get("run_id") != link.run_id:
        return False
    if link.scope == "audit":
        return url_name == "run-export" and kwargs.get("fmt") in AUDIT_FORMATS
    return url_name in RUN_FACES
