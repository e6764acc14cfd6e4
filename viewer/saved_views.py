"""Saved views (issue 20.4): a page's filters under a name. A saved view is the page's own URL (its
path and query string), kept with the run it belongs to and listed there for whoever may see the
run; opening one is opening that URL, so it shows what the page shows now, to whoever opens it.

A view is saved from a run page (`/runs/<id>/`, its run), a diff (`/diff/?a=..&b=..`, run A) or a
compare (`/compare/?run=..`, its first run)."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.db.models import QuerySet

from .models import Run, SavedView

RUN_PAGE = re.compile(r"/runs/(\d+)/")
# The runs each saveable page shows, by the query parameter naming them.
RUNS_PARAM = {"/diff/": ("a", "b"), "/compare/": ("run",)}
PAGING = ("after", "start")  # a cursor into the results, not a filter: never saved
MAX_NAME = SavedView._meta.get_field("name").max_length
MAX_PATH = SavedView._meta.get_field("path").max_length


class SavedViewError(ValueError):
    """A view that cannot be saved; the message says why."""


def runs_in(url: str) -> tuple[str, str, list[int]]:
    """The path, the query string without paging, and the runs a saveable page's URL shows."""
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in PAGING]
    query = urlencode(pairs)
    match = RUN_PAGE.fullmatch(parts.path)
    if match:
        return parts.path, query, [int(match[1])]
    if parts.path in RUNS_PARAM:
        params = RUNS_PARAM[parts.path]
        return parts.path, query, [int(v) for k, v in pairs if k in params and v.isdigit()]
    raise SavedViewError("Only a run page, a diff or a compare can be saved as a view.")


def save(*, owner, run: Run, name: str, url: str) -> SavedView:
    """Save the page at `url` as `name` on `run` (which the page must show)."""
    name = name.strip()
    if not name:
        raise SavedViewError("Name the view.")
    if len(name) > MAX_NAME:
        raise SavedViewError(f"A view's name is at most {MAX_NAME} characters.")
    path, query, runs = runs_in(url)
    if run.pk not in runs:
        raise SavedViewError(f"That page does not show run {run.pk}.")
    if len(path) > MAX_PATH:
        raise SavedViewError("That page's address is too long to save.")
    return SavedView.objects.create(owner=owner, run=run, name=name, path=path, query=query)


def views_of(run: Run) -> QuerySet[SavedView]:
    """The run's saved views, by name, with who saved each."""
    return SavedView.objects.filter(run=run).select_related("owner").order_by("name", "id")


def delete(view: SavedView, user) -> bool:
    """Only whoever saved a view deletes it."""
    if view.owner_id != getattr(user, "pk", None):
        return False
    view.delete()
    return True
