"""`make bench`: every figure beside a baseline measured in the same run on the same machine.

Quick by default (10k and 100k decisions); BENCH_SIZES=10000,100000,1000000 for the full run.
BENCH_REPEAT (default 3) is how many times each measurement runs. Sections: import, reads,
diff, export, peers, runs, scaling (`--sections import,reads` or BENCH_SECTIONS to run fewer).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import report
from .environment import KINDS, ROOT, Database, fresh_database, generate
from .report import Figure

SECTIONS = ("import", "reads", "diff", "export", "peers", "runs", "scaling")
DEFAULT_SIZES = "10000,100000"
MB_TARGET = 300  # peak RSS of an import or an export at 1M decisions
IMPORT_RATIO = 1.0  # issue 19: as fast as the plain streaming script (0.5 before)
SMALL = 100_000


class Bench:
    def __init__(self, *, sizes, repeat, sections, kinds, tmp: Path, db: Database, verbose=True):
        self.sizes = sizes
        self.repeat = repeat
        self.sections = sections
        self.kinds = kinds
        self.tmp = tmp
        self.db = db
        self.verbose = verbose
        self.figures: list[Figure] = []
        self.kept: dict[tuple[str, int], dict] = {}  # (kind, size) -> the last import's worker result
        self.import_seconds: dict[tuple[str, int], list[float]] = {}
        self.inputs = tmp / "inputs"

    def say(self, text: str) -> None:
        if self.verbose:
            print(text, file=sys.stderr, flush=True)

    def worker(self, spec: dict) -> dict:
        env = dict(os.environ, **self.db.env)
        proc = subprocess.run(
            [sys.executable, "-m", "bench.worker", json.dumps(spec)], cwd=ROOT, env=env,
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"worker {spec['task']} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def run(self) -> list[Figure]:
        if "import" in self.sections or {"reads", "export", "peers", "scaling"} & set(self.sections):
            self.imports()
        if "reads" in self.sections:
            from .reads import reads

            self.figures += reads(self)
            self.settle()
        if "diff" in self.sections:
            from .diffs import diff

            self.figures += diff(self)
        if "scaling" in self.sections:
            from .diffs import scaling

            self.figures += scaling(self)
        if "export" in self.sections:
            self.export()
        if "peers" in self.sections:
            from .peers import peers

            self.figures += peers(self)
        if "runs" in self.sections:
            from .runs_list import runs_list

            self.figures += runs_list(self)
        return self.figures

    def settle(self, timeout: float = 300) -> None:
        """Let work that pages started in background threads (the replay index) finish before
        the next measurement, so it does not compete with it."""
        import threading

        deadline = time.monotonic() + timeout
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and thread.is_alive():
                self.say(f"  waiting for background thread {thread.name}")
                thread.join(max(0.0, deadline - time.monotonic()))

    # -- import ----------------------------------------------------------------------------

    def imports(self) -> None:
        from viewer.models import Run

        for size in self.sizes:
            for kind in self.kinds:
                path = generate(kind, size, self.inputs)
                # Small imports last a fraction of a second: more turns, so a burst of load elsewhere
                # on the machine does not decide the median.
                repeat = self.repeat * 3 if size < SMALL else self.repeat
                self.say(f"import {kind} {size:,} ({path.stat().st_size / 1e6:,.0f} MB) x{repeat}")
                ours, base, pg = [], [], []
                for r in range(repeat):
                    # Alternate who goes first, so a change in the machine's load hits both alike.
                    order = ("ours", "base") if r % 2 == 0 else ("base", "ours")
                    for who in order:
                        if who == "ours":
                            res = self.worker({"task": "ingest", "path": str(path), "kind": kind,
                                               "user": f"bench-{kind}-{size}-{r}"})
                            if res["status"] != "imported" or res["count"] != size:
                                raise RuntimeError(f"import of {path} gave {res}")
                            ours.append(res)
                            last = r == repeat - 1
                            if last:
                                self.kept[(kind, size)] = res | {"user": f"bench-{kind}-{size}-{r}"}
                            else:
                                _delete_run(Run, res["run_id"])
                        else:
                            base.append(self.worker({"task": "baseline", "target": "sqlite", "kind": kind,
                                                     "path": str(path), "db": str(self.tmp / "baseline.sqlite3")}))
                            if self.db.vendor == "postgresql":
                                pg.append(self.worker({"task": "baseline", "target": "postgresql", "kind": kind,
                                                       "path": str(path), "conninfo": self.db.conninfo}))
                self.import_seconds[(kind, size)] = [o["seconds"] for o in ours]
                self._import_figures(kind, size, ours, base, pg)

    def _import_figures(self, kind, size, ours, base, pg) -> None:
        name = f"{kind} {size:,}"
        rate = [size / o["seconds"] for o in ours]
        main_base, main_name = base, "sqlite3 executemany"
        if pg:
            main_base, main_name = pg, "psycopg COPY"
        cpu = _median([o["cpu"] for o in ours])
        base_cpu = _median([b["cpu"] for b in main_base])
        load = os.getloadavg()[0]
        note = (f"CPU {cpu:.2f} s ours vs {base_cpu:.2f} s baseline (CPU-time ratio {base_cpu / cpu:.2f}"
                + ("; the PostgreSQL server's CPU is in neither" if pg else "")
                + f"); load average {load:.1f} on {os.cpu_count()} cores")
        self.figures.append(Figure(
            "import", name, "decisions/s", rate, main_name, [size / b["seconds"] for b in main_base],
            target_kind="ratio", target=IMPORT_RATIO, note=note,
        ))
        if pg:
            self.figures.append(Figure("import", f"{name} vs SQLite", "decisions/s", rate, "sqlite3 executemany",
                                       [size / b["seconds"] for b in base]))
        self.figures.append(Figure(
            "import", f"{name} peak RSS", "MB", [o["maxrss_mb"] for o in ours], "baseline process",
            [b["maxrss_mb"] for b in main_base], target_kind="max", target=MB_TARGET,
        ))
        self.say(f"  ours {_median(rate):,.0f}/s, baseline {size / _median([b['seconds'] for b in main_base]):,.0f}/s")

    def biggest(self, kind: str) -> tuple[int, dict] | None:
        sizes = [s for (k, s) in self.kept if k == kind]
        if not sizes:
            return None
        size = max(sizes)
        return size, self.kept[(kind, size)]

    # -- export ----------------------------------------------------------------------------

    def export(self) -> None:
        found = self.biggest("dynoai") or self.biggest(self.kinds[0])
        if not found:
            return
        size, kept = found
        name = f"export.csv, {size:,} decisions"
        self.say(f"export {size:,} x{self.repeat}")
        ours, base = [], []
        for r in range(self.repeat):
            res = self.worker({"task": "export", "run_id": kept["run_id"], "user": kept["user"]})
            if res["status"] != 200:
                self.figures.append(Figure("export", name, "rows/s", available=False, target_kind="min",
                                           target=200_000, note=f"HTTP {res['status']}"))
                return
            ours.append(res)
            base.append(self.worker({"task": "export_baseline", "run_id": kept["run_id"]}))
        note = f"{ours[-1]['bytes'] / 1e6:,.0f} MB of CSV"
        if not ours[-1]["streaming"]:
            note += "; the response is not streamed (the whole CSV is built in memory)"
        self.figures.append(Figure(
            "export", name, "rows/s", [size / o["seconds"] for o in ours], "raw cursor → csv.writer",
            [b["rows"] / b["seconds"] for b in base], target_kind="min", target=200_000, note=note,
        ))
        self.figures.append(Figure(
            "export", f"{name} peak RSS", "MB", [o["maxrss_mb"] for o in ours], "raw cursor process",
            [b["maxrss_mb"] for b in base], target_kind="max", target=MB_TARGET,
        ))


def _delete_run(Run, run_id: int) -> None:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM viewer_decision WHERE run_id = %s", [run_id])
        Run.objects.filter(pk=run_id).delete()


def _median(values):
    import statistics

    return statistics.median(values)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", DEFAULT_SIZES),
                    help="comma-separated decision counts (env BENCH_SIZES; default %(default)s)")
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", 3)))
    ap.add_argument("--sections", default=os.environ.get("BENCH_SECTIONS", ",".join(SECTIONS)))
    ap.add_argument("--kinds", default=os.environ.get("BENCH_KINDS", ",".join(KINDS)))
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "latest.json")
    ap.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder and database")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    a.sizes = sorted({int(s.replace("_", "")) for s in a.sizes.split(",") if s.strip()})
    a.sections = [s for s in a.sections.split(",") if s]
    a.kinds = [k for k in a.kinds.split(",") if k]
    bad = set(a.sections) - set(SECTIONS) or set(a.kinds) - set(KINDS)
    if bad or not a.sizes or a.repeat < 1:
        ap.error(f"unknown section or kind: {', '.join(sorted(bad))}" if bad else "nothing to measure")
    return a


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    tmp = Path(tempfile.mkdtemp(prefix="replayweb-bench-"))
    db = fresh_database(tmp)
    os.environ.update(db.env)
    started = time.perf_counter()
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        bench = Bench(sizes=a.sizes, repeat=a.repeat, sections=a.sections, kinds=a.kinds, tmp=tmp, db=db,
                      verbose=not a.quiet)
        figures = bench.run()
        settings = {"sizes": a.sizes, "repeat": a.repeat, "sections": a.sections, "kinds": a.kinds,
                    "seconds": round(time.perf_counter() - started, 1)}
        report.write_json(a.out, figures, settings=settings, machine_info=report.machine(db.vendor))
        print(report.table(figures))
        if a.markdown:
            a.markdown.write_text(report.markdown(figures) + "\n")
        print(f"\nwritten to {a.out} ({settings['seconds']:.0f} s)")
    finally:
        from django.db import connections

        connections.close_all()
        if a.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            db.drop()
            shutil.rmtree(tmp, ignore_errors=True)
    return 0
