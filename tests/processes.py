"""Helpers for tests that run the app in other processes (gunicorn, workers, manage.py) against a
database of their own: a fresh SQLite file in a temporary REPLAYWEB_VAR_DIR, or, when DATABASE_URL
is PostgreSQL, a fresh database on that server, dropped afterwards."""
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def own_database(tmp_path, prefix="replayweb_test"):
    """(environment for manage.py and servers, "sqlite" or "postgresql")."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(REPLAYWEB_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="replayweb.settings")
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield env, "sqlite"
        return
    import psycopg

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + name))
    try:
        yield env, "postgresql"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env, *args, input_text=None, timeout=300) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=input_text, capture_output=True,
        text=True, timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def start(env, *args, log=None) -> subprocess.Popen:
    """manage.py ARGS in the background, in a process group of its own (an RQ worker forks a child
    per job: killing the group kills both, as a lost machine would)."""
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=log or subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)


def descendants(pid: int) -> list[int]:
    """Every process below pid (an RQ worker's work horse leaves its parent's process group)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout=30) -> None:
    """Stop the process and its group; with SIGKILL, every descendant too, at once (a lost machine)."""
    if proc.poll() is not None:
        return
    below = descendants(proc.pid) if sig == signal.SIGKILL else []
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
