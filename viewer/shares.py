"""Sharing a run (issue 20.3): with a user or a group, read-only or to annotate, and public links.

Plain functions for the share page, the API and tests; viewer/access.py says what each role may do.

A public link (ShareLink) is `/s/<token>/`: the token is the row's id signed with the site's key
(django.core.signing, its own salt), so it cannot be guessed or forged; the row says whether it
still holds (until `expires`, unless `revoked`), and is read again on every request the link opens
(viewer/middleware.LinkOrLoginRequiredMiddleware), so a revoke or an expiry takes effect at once.
"""
from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import signing
from django.db import transaction
from django.utils import timezone

from .models import Run, RunShare, ShareLink

LINK_SALT = "replayweb.sharelink"
MAX_LINK_DAYS = 90
DEFAULT_LINK_DAYS = 7
ACTIVE, EXPIRED, REVOKED = "active", "expired", "revoked"
GRANTS = "share_links"  # the session key: ids of the public links this visitor opened, newest first
MAX_GRANTS = 10


class ShareError(ValueError):
    """A share that cannot be made; the message says why, for a form or a 400."""


class LinkGone(Exception):
    """A link that no longer opens its run: `state` is expired or revoked."""

    def __init__(self, link: ShareLink, state: str):
        super().__init__(f"This link was {state}.")
        self.link, self.state = link, state


# -- users and groups ------------------------------------------------------------------------------


def share(run: Run, *, by, username: str = "", group: str = "", can_annotate: bool = False) -> RunShare:
    """Share `run` with the user or the group named (one of them), or change an existing share's
    `can_annotate`. The run's owner is `by`; sharing with yourself or someone unknown is refused."""
    username, group = username.strip(), group.strip()
    if bool(username) == bool(group):
        raise ShareError("Name a user or a group (one of them).")
    if username:
        target = get_user_model().objects.filter(username=username, is_active=True).first()
        if target is None:
            raise ShareError(f"No user is called {username!r}.")
        if target.pk == run.owner_id:
            raise ShareError("You own this run: there is no need to share it with yourself.")
        key = {"user": target}
    else:
        found = Group.objects.filter(name=group).first()
        if found is None:
            raise ShareError(f"No group is called {group!r}.")
        key = {"group": found}
    with transaction.atomic():
        row, _ = RunShare.objects.update_or_create(
            run=run, **key, defaults={"can_annotate": can_annotate}, create_defaults={
                "can_annotate": can_annotate, "created_by": by})
    return row


def unshare(run: Run, *, username: str = "", group: str = "") -> bool:
    """Stop sharing `run` with that user or group; False when it was not shared with them."""
    if username:
        rows = RunShare.objects.filter(run=run, user__username=username)
    else:
        rows = RunShare.objects.filter(run=run, group__name=group)
    return rows.delete()[0] > 0


def shares_of_run(run: Run) -> list[RunShare]:
    """Who the run is shared with: users by name, then groups by name."""
    rows = RunShare.objects.filter(run=run).select_related("user", "group", "created_by")
    return sorted(rows, key=lambda s: (s.user is None, str(s.user or s.group).lower()))


def shared_with(user, run: Run) -> dict | None:
    """For the run's pages: who shared `run` with `user` (directly or through a group) and whether
    they may annotate; None for the owner, a link holder or anyone it is not shared with."""
    if not getattr(user, "is_authenticated", False) or run.owner_id == user.pk:
        return None
    from .access import shares_of

    rows = list(RunShare.objects.filter(shares_of(user), run=run).select_related("group", "created_by"))
    if not rows:
        return None
    return {
        "by": run.owner.get_username(),
        "groups": sorted(r.group.name for r in rows if r.group_id),
        "can_annotate": any(r.can_annotate for r in rows),
    }


# -- public links ---------------------------------------------------------------------------------


def create_link(run: Run, *, by, scope: str = ShareLink.Scope.RUN, days: int = DEFAULT_LINK_DAYS) -> ShareLink:
    if scope not in ShareLink.Scope.values:
        raise ShareError(f"scope: use {' or '.join(ShareLink.Scope.values)}")
    if not 1 <= days <= MAX_LINK_DAYS:
        raise ShareError(f"A link lasts 1 to {MAX_LINK_DAYS} days.")
    return ShareLink.objects.create(run=run, scope=scope, expires=timezone.now() + dt.timedelta(days=days),
                                    created_by=by)


def token(link: ShareLink) -> str:
    """The link's token: its id and a signature of it (the same every time, so the page can list it)."""
    return signing.Signer(salt=LINK_SALT).sign(str(link.pk))


def link_path(link: ShareLink) -> str:
    return f"/s/{token(link)}/"


def link_state(link: ShareLink, now: dt.datetime | None = None) -> str:
    if link.revoked:
        return REVOKED
    return ACTIVE if (now or timezone.now()) < link.expires else EXPIRED


def open_link(signed: str) -> ShareLink:
    """The link a token names. ShareLink.DoesNotExist for a token that is forged, mangled or names
    no row; LinkGone for one expired or revoked."""
    try:
        pk = int(signing.Signer(salt=LINK_SALT).unsign(signed))
    except (signing.BadSignature, ValueError):
        raise ShareLink.DoesNotExist("No such link") from None
    return live_link(pk)


def live_link(pk: int) -> ShareLink:
    """The link row, read now (a grant in a session is checked again on every request)."""
    link = ShareLink.objects.select_related("run").get(pk=pk)
    state = link_state(link)
    if state != ACTIVE:
        raise LinkGone(link, state)
    return link


def target(link: ShareLink) -> str:
    """Where a link opens: the run page, or the audit trail (the HTML export)."""
    if link.scope == ShareLink.Scope.AUDIT:
        return f"/runs/{link.run_id}/export.html"
    return f"/runs/{link.run_id}/"


def granted(held: list[int], link: ShareLink) -> list[int]:
    """The session's link ids once `link` is opened: it first, the oldest dropped past MAX_GRANTS."""
    return [link.pk, *(pk for pk in held if pk != link.pk)][:MAX_GRANTS]


def revoke_link(link: ShareLink) -> None:
    if link.revoked is None:
        link.revoked = timezone.now()
        link.save(update_fields=["revoked"])


def links_of_run(run: Run) -> list[dict]:
    now = timezone.now()
    return [{"link": link, "path": link_path(link), "state": link_state(link, now)}
            for link in ShareLink.objects.filter(run=run)]
