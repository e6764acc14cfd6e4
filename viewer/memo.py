"""Results over a run, remembered: a run never changes once imported, so an aggregate over
(run, parameters) stays true. Only big runs are worth it; small ones are computed each time."""
import hashlib

from django.core.cache import cache

BIG_RUN = 20_000  # decisions; below this every aggregate is a few ms
SECONDS = 3600


def run_memo(run, what: str, params: dict, compute):
    """compute(), cached per run (and its content hash) and parameters when the run is big."""
    if run.decision_count <= BIG_RUN:
        return compute()
    described = repr(sorted((str(k), repr(v)) for k, v in params.items()))
    key = f"run:{run.pk}:{run.sha256}:{what}:" + hashlib.sha256(described.encode()).hexdigest()
    return cache.get_or_set(key, compute, SECONDS)
