"""The JSON API: the router and its endpoints, one module per face."""
from . import cells, compare, diff, jobs, notes, outputs, replay, runs, shares, tokens  # noqa: F401  (each registers its endpoints)
from .base import AUTH, router  # noqa: F401
