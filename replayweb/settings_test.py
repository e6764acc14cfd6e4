"""The test suite's settings: the app's own, with jobs run where they are enqueued (the immediate
backend), so a test that uploads sees its run at once. Tests of the real queue start worker
processes with REPLAYWEB_TASKS=database or redis themselves (tests/test_jobs_workers.py)."""
import os

os.environ.setdefault("REPLAYWEB_TASKS", "immediate")

from replayweb.settings import *  # noqa: E402,F401,F403

# Each test run its own session files: "log out everywhere" deletes every session file of a user id,
# and two runs on one host (a developer's and CI's, or two checkouts) share user ids 1, 2...
if "REPLAYWEB_SESSION_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    SESSION_FILE_PATH = Path(tempfile.mkdtemp(prefix="replayweb-test-sessions-"))
    atexit.register(shutil.rmtree, SESSION_FILE_PATH, True)
