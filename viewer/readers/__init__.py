from .base import Decision, Limits, ReadError, RunInfo  # noqa: F401
