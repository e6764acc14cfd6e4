"""The diff of two DynoAI runs at each size, and how import, first view and diff grow with size.

Each diff runs in a process of its own (bench/worker.py, `diff`), so its peak RSS is its own: the
figure is the whole process's (Django and all), as for imports and exports. The pair is the
generator's seed 1 and the same with `--variant 0.05` (5% of decisions dropped, repeated, inserted or
nudged); run A is the import section's kept run where there is one.

Scaling: for each family, the time per decision at the biggest size beside the time per decision at
the smallest. The ratio is the usual "our speed as a fraction of the baseline's", here the speed per
decision at the big size as a fraction of the small one's: 1.0 is linear, below 1 worse than linear.
"""
from __future__ import annotations

import os

from .environment import generate
from .report import Figure

DIFF_MS = {100_000: 1_000, 1_000_000: 10_000}  # issue 19's targets by size (none for others)
DIFF_MB = 300  # peak RSS of the diff of two 1M runs
VARIANT = 0.05


def diff(bench) -> list[Figure]:
    figures = []
    bench.diff_seconds = {}
    for size in bench.sizes:
        figures += _diff(bench, size)
    return figures


def _pair(bench, size: int) -> tuple[int, int, str]:
    """Runs A and B of `size` decisions, visible to one user: (a, b, user)."""
    kept = bench.kept.get(("dynoai", size))
    if kept:
        a, user = kept["run_id"], kept["user"]
    else:
        user = f"bench-diff-{size}"
        res = bench.worker({"task": "ingest", "path": str(generate("dynoai", size, bench.inputs, seed=1)),
                            "kind": "dynoai", "user": user})
        if res["status"] != "imported":
            raise RuntimeError(f"diff input A did not import: {res}")
        a = res["run_id"]
    b_path = generate("dynoai", size, bench.inputs, seed=1, variant=VARIANT)
    res = bench.worker({"task": "ingest", "path": str(b_path), "kind": "dynoai", "user": user})
    if res["status"] != "imported":
        raise RuntimeError(f"diff input B did not import: {res}")
    return a, res["run_id"], user


def _diff(bench, size: int) -> list[Figure]:
    a, b, user = _pair(bench, size)
    label = f"{size:,}"
    bench.say(f"diff of two {label}-decision runs x{bench.repeat}")
    ours, base = [], []
    for r in range(bench.repeat):
        order = ("ours", "base") if r % 2 == 0 else ("base", "ours")  # load hits both alike
        for who in order:
            if who == "ours":
                ours.append(bench.worker({"task": "diff", "a": a, "b": b, "user": user}))
            else:
                base.append(bench.worker({"task": "diff_baseline", "a": a, "b": b}))
    name = f"diff of two {label} runs (seed 1 vs --variant {VARIANT:g})"
    if any(o["status"] != 200 for o in ours):
        status = next(o["status"] for o in ours if o["status"] != 200)
        return [Figure("diff", name, "ms", available=False, target_kind="max", target=DIFF_MS.get(size),
                       note=f"/diff/?a={a}&b={b} answered {status}")]
    bench.diff_seconds[size] = [o["seconds"] for o in ours]
    cpu = sorted(o["cpu"] for o in ours)[len(ours) // 2]
    base_cpu = sorted(b_["cpu"] for b_ in base)[len(base) // 2]
    note = (f"GET /diff/?a={a}&b={b} in a process of its own ({ours[-1]['bytes'] / 1e3:,.0f} KB); "
            f"CPU {cpu:.2f} s ours vs {base_cpu:.2f} s baseline; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return [
        Figure("diff", name, "ms", [o["seconds"] * 1000 for o in ours], "raw SQL reading both runs",
               [b_["seconds"] * 1000 for b_ in base], target_kind="max" if size in DIFF_MS else "",
               target=DIFF_MS.get(size), note=note),
        Figure("diff", f"diff of two {label} runs peak RSS", "MB", [o["maxrss_mb"] for o in ours],
               "raw SQL process", [b_["maxrss_mb"] for b_ in base], target_kind="max",
               target=DIFF_MB, note=f"the process before the request: {ours[-1]['rss_before_mb']:.0f} MB"),
    ]


# -- scaling ------------------------------------------------------------------------------------

FIRST_VIEW = ("run page", "facets", "stats", "chart")  # the run page and the fragments it opens


def scaling(bench) -> list[Figure]:
    """Time per decision at each size for import, the import job's warm-up, the first view (the
    run page and its fragments, first requests in a fresh process) and the diff."""
    sizes = sorted(s for (k, s) in bench.kept if k == "dynoai")
    per: dict[str, dict[int, float]] = {"import": {}, "warm-up after import": {}, "first view": {}, "diff": {}}
    if len(sizes) < 2:
        return []
    for size in sizes:
        per["import"][size] = _median(bench.import_seconds[("dynoai", size)])
        kept = bench.kept[("dynoai", size)]
        bench.say(f"scaling: warm-up and first view of the {size:,}-decision run")
        per["warm-up after import"][size] = bench.worker({"task": "warm", "run_id": kept["run_id"]})["seconds"]
        # Each process first opens another size's run as its user: its imports and templates are
        # then loaded, and the figure is this run's reads.
        other = bench.kept[("dynoai", next(s for s in sizes if s != size))]
        spec = {"task": "first_requests", "user": kept["user"], "faces": _faces(kept["run_id"]),
                "before_user": other["user"], "before": _faces(other["run_id"])}
        views = [sum(bench.worker(spec)["ms"].values()) for _ in range(bench.repeat)]
        per["first view"][size] = _median(views) / 1000
    for size, seconds in getattr(bench, "diff_seconds", {}).items():
        per["diff"][size] = _median(seconds)
    figures = []
    for family, by_size in per.items():
        if len(by_size) < 2:
            continue
        small, big = min(by_size), max(by_size)
        us = {s: by_size[s] / s * 1e6 for s in sorted(by_size)}
        steps = " → ".join(f"{s:,}: {by_size[s]:,.2f} s ({us[s]:,.1f} µs/decision)" for s in us)
        figures.append(Figure(
            "scaling", f"{family}, time per decision at {big:,} vs {small:,}", "µs/decision", [us[big]],
            f"at {small:,}", [us[small]],
            note=f"{steps}; ratio 1.0 is linear, below 1 worse than linear (dynoai runs)",
        ))
    return figures


def _faces(run_id: int) -> list:
    run = f"/runs/{run_id}/"
    return [(name, run, None if name == "run page" else {"HX-Request": "true", "HX-Target": name})
            for name in FIRST_VIEW]


def _median(values):
    import statistics

    return statistics.median(values)
