"""Sharing a run (issue 20.3): the owner lists, adds and removes the users and groups it is shared with.

Everyone else gets a 404, as for a run they cannot see (a reader is told nothing more)."""
from __future__ import annotations

import datetime as dt

from ninja import Field, Schema, Status
from ninja.errors import HttpError

from .. import access, shares
from ..models import Run
from .base import ERRORS, _run, router


class ShareIn(Schema):
    user: str = Field("", description="a user name (or give group)")
    group: str = Field("", description="a group name (or give user)")
    can_annotate: bool = Field(False, description="they may add notes to its decisions, and edit their own")


class ShareOut(Schema):
    user: str | None
    group: str | None
    can_annotate: bool
    created: dt.datetime


def _owned(request, run_id: int) -> Run:
    run = _run(request, run_id)
    if not access.is_owner(request.auth, run):
        raise HttpError(404, "No such run")
    return run


def _out(share) -> dict:
    return {"user": share.user.get_username() if share.user_id else None,
            "group": share.group.name if share.group_id else None,
            "can_annotate": share.can_annotate, "created": share.created}


@router.get("/runs/{run_id}/shares", response={200: list[ShareOut], **ERRORS}, tags=["sharing"],
            summary="Who the run is shared with (owner only)")
def list_shares(request, run_id: int):
    return [_out(s) for s in shares.shares_of_run(_owned(request, run_id))]


@router.post("/runs/{run_id}/shares", response={201: ShareOut, **ERRORS}, tags=["sharing"],
             summary="Share the run with a user or a group (owner only)",
             description="Sharing again with the same user or group changes can_annotate. 400 for an unknown "
                         "user or group, or for yourself.")
def add_share(request, run_id: int, body: ShareIn = None):
    run = _owned(request, run_id)  # before the body: a run you do not own is a 404 whatever is sent
    if body is None:
        raise HttpError(400, 'send {"user": <user name>, "can_annotate": true|false} (or "group")')
    try:
        share = shares.share(run, by=request.auth, username=body.user, group=body.group,
                             can_annotate=body.can_annotate)
    except shares.ShareError as error:
        raise HttpError(400, str(error)) from None
    return Status(201, _out(share))


@router.delete("/runs/{run_id}/shares/{username}", response={204: None, **ERRORS}, tags=["sharing"],
               summary="Stop sharing the run with a user (owner only)")
def remove_share(request, run_id: int, username: str):
    if not shares.unshare(_owned(request, run_id), username=username):
        raise HttpError(404, f"The run is not shared with {username!r}.")
    return Status(204, None)


@router.delete("/runs/{run_id}/shares/groups/{group}", response={204: None, **ERRORS}, tags=["sharing"],
               summary="Stop sharing the run with a group (owner only)")
def remove_group_share(request, run_id: int, group: str):
    if not shares.unshare(_owned(request, run_id), group=group):
        raise HttpError(404, f"The run is not shared with the group {group!r}.")
    return Status(204, None)
