"""Peers on the same file: jq and lnav (Debian packages, used only where installed) load the
biggest session JSONL and keep the `llm_call` events; beside them, our import of that file
plus the same filter through the selectors, and the filter alone once the run is imported.
"""
from __future__ import annotations

import shutil
import subprocess
import time

from .report import Figure

EVENT = "llm_call"
PEERS = {
    "jq": lambda path: ["jq", "-c", f'select(.event_type == "{EVENT}")', str(path)],
    "lnav": lambda path: ["lnav", "-n", "-c", f':filter-in "event_type": "{EVENT}"', str(path)],
}


def _ours_filter(run_id: int) -> tuple[float, int]:
    from viewer.filters import DecisionFilterForm
    from viewer.models import Run
    from viewer.selectors import filtered_decisions

    start = time.perf_counter()
    form = DecisionFilterForm({"action": EVENT})
    if not form.is_valid():
        raise RuntimeError(form.error_text())
    run = Run.objects.get(pk=run_id)
    n = sum(1 for _ in filtered_decisions(run=run, **form.filters()).values_list("raw", flat=True).iterator(2000))
    return time.perf_counter() - start, n


def _peer(cmd: list[str], out_path) -> tuple[float, int]:
    start = time.perf_counter()
    with open(out_path, "wb") as out:
        subprocess.run(cmd, stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=True)
    seconds = time.perf_counter() - start
    with open(out_path, "rb") as f:
        return seconds, sum(1 for line in f if line.strip())


def peers(bench) -> list[Figure]:
    found = bench.biggest("session")
    if not found:
        return []
    size, kept = found
    path = bench.inputs / f"session-{size}-s1" / "session.jsonl"
    imported = bench.import_seconds.get(("session", size), [])
    bench.say(f"peers on the {size:,}-event session JSONL x{bench.repeat}")
    ours = [_ours_filter(kept["run_id"]) for _ in range(bench.repeat)]
    filter_s = [s for s, _ in ours]
    ours_n = ours[-1][1]
    together = [i + f for i, f in zip(imported, filter_s)]
    figures = []
    for name, make in PEERS.items():
        label = f"keep {EVENT} of {size:,} session events"
        if not shutil.which(make(path)[0]):
            figures.append(Figure("peers", f"{name}: {label}", "s", available=False,
                                  note=f"not available: {name} is not installed (apt-get install {name})"))
            continue
        runs = [_peer(make(path), bench.tmp / f"{name}.out") for _ in range(bench.repeat)]
        peer_s = [s for s, _ in runs]
        counts = f"{name} kept {runs[-1][1]:,} lines, we kept {ours_n:,} decisions"
        figures.append(Figure("peers", f"import + filter vs {name}: {label}", "s", together, name, peer_s,
                              note=counts))
        figures.append(Figure("peers", f"filter only (imported) vs {name}: {label}", "s", filter_s, name, peer_s))
    return figures
