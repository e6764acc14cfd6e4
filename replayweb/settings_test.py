"""The test suite's settings: the app's own, with jobs run where they are enqueued (the immediate
backend), so a test that uploads sees its run at once. Tests of the real queue start worker
processes with REPLAYWEB_TASKS=database or redis themselves (tests/test_jobs_workers.py)."""
import os

os.environ.setdefault("REPLAYWEB_TASKS", "immediate")

from replayweb.settings import *  # noqa: E402,F401,F403
