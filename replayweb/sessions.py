"""Sessions kept in files (SESSION_FILE_PATH), so that logging out ends them on the server.

Django's file engine, plus `end_sessions_of(user)` for "log out everywhere": it reads each session
file and deletes those of the user. A site this size holds a few hundred session files at most
(`manage.py clearsessions` removes expired ones), so a scan is cheap and needs no index to keep.
"""
from __future__ import annotations

from pathlib import Path

from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import update_last_login
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.file import SessionStore as FileSessionStore

from viewer import db


class SessionStore(FileSessionStore):
    pass


# Logging in writes nothing that must wait for SQLite's lock: the session is a file, and
# last_login is written best-effort (Django's receiver would wait 30 s behind an import, then fail).
user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
user_logged_in.connect(db.update_last_login, dispatch_uid="replayweb_update_last_login")


def end_sessions_of(user) -> int:
    """Delete every session of `user` on this host; returns how many there were."""
    store = SessionStore()
    folder = Path(store.storage_path)
    ended = 0
    for path in folder.glob(f"{store.file_prefix}*"):
        try:
            data = store.decode(path.read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError):
            continue  # being written or removed by another request
        if str(data.get(SESSION_KEY)) == str(user.pk):
            path.unlink(missing_ok=True)
            ended += 1
    return ended
