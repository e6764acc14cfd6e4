"""Small writes beside a long import (issue 14.6).

On SQLite an import holds the one write lock for the whole file (a 1M-decision file: about 45 s),
and any other write waits for it, 30 s by default, then fails with "database is locked". Two
kinds of small write live with that:

- bookkeeping (a token's `last_used`, a user's `last_login`) is best-effort: it waits a moment and
  is skipped if the lock is taken; it is written again at the next use;
- a write the user asked for (a new token) waits for the import to end, up to
  REPLAYWEB_WRITE_WAIT_SECONDS, and is then reported as busy, never as a 500.

PostgreSQL locks rows, not the database: there these helpers only keep a failure from spoiling the
surrounding transaction.
"""
from __future__ import annotations

import contextlib
import logging

from django.conf import settings
from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)

BOOKKEEPING_WAIT_MS = 100


@contextlib.contextmanager
def lock_wait(ms: int):
    """While inside, SQLite waits at most `ms` for another writer's lock (elsewhere: no change)."""
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    default_ms = int(settings.DATABASES["default"].get("OPTIONS", {}).get("timeout", 5) * 1000)
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA busy_timeout = {int(ms)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {default_ms}")


def best_effort(write, what: str) -> bool:
    """Run `write()` if the database is free within a moment; skip it (logged) if not."""
    try:
        with lock_wait(BOOKKEEPING_WAIT_MS), transaction.atomic():
            write()
        return True
    except DatabaseError as exc:
        logger.info("skipped %s: %s", what, exc)
        return False


def patient(write):
    """Run `write()`, waiting up to REPLAYWEB_WRITE_WAIT_SECONDS for an import's lock.
    Raises DatabaseError if it is still taken then."""
    with lock_wait(settings.REPLAYWEB_WRITE_WAIT_SECONDS * 1000):
        return write()


def update_last_login(sender, user, **kwargs):
    """Django's own receiver, best-effort: logging in must not wait behind an import."""
    from django.contrib.auth.models import update_last_login as django_update_last_login

    best_effort(lambda: django_update_last_login(sender, user, **kwargs), f"last_login of user {user.pk}")
