"""The JSON API: the router and its endpoints, one module per face."""
from . import cells, compare, diff, jobs, outputs, replay, runs, tokens  # noqa: F401  (each registers its endpoints)
from .base import AUTH, router  # noqa: F401
