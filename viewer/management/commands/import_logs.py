import contextlib
import signal
import sys
import threading
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from viewer import jobs
from viewer.follow import follow_file
from viewer.ingest import Source, run_ingest
from viewer.models import ImportJob

PATTERNS = ("*.json", "*.jsonl", "*.study.log", "*.study.log.gz")
QUIET_SECONDS = 60.0  # --follow stops once the file has not grown for this long
MANIFESTS = ("manifest.json", "*.manifest.json")  # a folder with one is a DynoAI output folder: every file counts


class Command(BaseCommand):
    help = ("Import log files and folders (recursively) as background jobs, showing their progress until "
            "they are done (a worker imports them: manage.py worker, or make run). --now imports in this "
            "process instead; --detach queues and returns. --follow FILE imports a log still being written, "
            "in this process, as it grows: the run is shown as live from its first decisions, new ones "
            "appear on its page about every second, and it ends (ready) when the log's end arrives (a "
            "session's session_end) or the file has not grown for --quiet seconds. Stopped early (quiet, "
            "Ctrl-C, the size limit) the run keeps what was stored, with a warning saying so; a line that "
            "cannot be read refuses the file and deletes the run, as any import does. Exit status 1 if any "
            "file failed.")

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--user", help="owner of the runs (default: the first superuser)")
        parser.add_argument("--keep-user-ids", action="store_true", help="keep real user ids in study logs")
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--now", action="store_true", help="import in this process, without a worker")
        how.add_argument("--detach", action="store_true", help="queue the jobs, print their ids and return")
        how.add_argument("--follow", action="store_true",
                         help="follow one log file while it is written (sessions, study logs), in this process")
        parser.add_argument("--quiet", type=float, metavar="SECONDS",
                            help="with --follow: stop once the file has not grown for this long (default 60)")

    def handle(self, *args, paths, user, keep_user_ids, now, detach, follow, quiet, **options):
        owner = self._owner(user)
        if follow:
            return self._follow(owner, paths, keep_user_ids, QUIET_SECONDS if quiet is None else quiet)
        if quiet is not None:
            raise CommandError("--quiet goes with --follow")
        groups = []  # one group per folder, so a manifest.json meets its session_replay.json
        named = {}  # files named one by one, grouped by their folder too
        for arg in paths:
            path = Path(arg)
            if path.is_dir():
                files = {p for pattern in PATTERNS for p in path.rglob(pattern) if p.is_file()}
                output_folders = {p.parent for pattern in MANIFESTS for p in path.rglob(pattern) if p.is_file()}
                files = sorted(files | {p for d in output_folders for p in d.iterdir() if p.is_file()})
                by_folder = {}
                for p in files:
                    by_folder.setdefault(p.parent, []).append(p)
                for folder, members in sorted(by_folder.items()):
                    groups.append(([Source(str(p.relative_to(path.parent)), path=p, group=str(folder)) for p in members], True))
            elif path.is_file():
                named.setdefault(path.parent, []).append(Source(path.name, path=path, group=str(path.parent)))
            else:
                raise CommandError(f"{arg}: no such file or folder")
        groups += [(sources, False) for sources in named.values()]
        failed = 0
        if now:
            for sources, walked in groups:
                bars = _Bars(self.stderr._out)
                for result in run_ingest(owner=owner, sources=sources, keep_user_ids=keep_user_ids,
                                         skip_unrecognised=walked, progress=bars.update):
                    failed += result.failed
                    self.stdout.write(self._line(jobs.line_of(result)))
                bars.close()
        else:
            failed = self._queue(owner, groups, keep_user_ids, detach)
        if failed:
            self.stderr.write(f"{failed} file{'s' if failed != 1 else ''} failed")
            sys.exit(1)

    def _follow(self, owner, paths, keep_user_ids, quiet) -> None:
        if len(paths) != 1 or not Path(paths[0]).is_file():
            raise CommandError("--follow takes one log file")
        if quiet <= 0:
            raise CommandError("--quiet takes a number of seconds above 0")
        path = Path(paths[0])
        live = _Live(self.stdout, self.stderr._out, path.name)
        with _sigterm_as_interrupt():
            result = follow_file(owner=owner, path=path, quiet=quiet, keep_user_ids=keep_user_ids,
                                 progress=live.update)
        live.close()
        self.stdout.write(self._line(jobs.line_of(result)))
        if result.failed:
            self.stderr.write("1 file failed")
            sys.exit(1)

    def _owner(self, name):
        User = get_user_model()
        if name:
            try:
                return User.objects.get(username=name)
            except User.DoesNotExist:
                raise CommandError(f"no user named {name!r}") from None
        owner = User.objects.filter(is_superuser=True).order_by("pk").first()
        if owner is None:
            raise CommandError("no user to own the runs: pass --user NAME or create a superuser first")
        return owner

    def _queue(self, owner, groups, keep_user_ids, detach) -> int:
        """Queue one job per log (per output folder), then follow them to the end with a bar each."""
        failed, queued = 0, []
        for sources, walked in groups:
            uploads = [jobs.Upload(name=s.name, path=s.path) for s in sources]
            made, refused = jobs.submit(owner, uploads, keep_user_ids=keep_user_ids, skip_unrecognised=walked,
                                        group=sources[0].group if sources else "cli")
            queued += made
            for r in refused:
                failed += 1
                self.stdout.write(self._line(jobs.line_of(r)))
        if detach:
            for job in queued:
                self.stdout.write(f"queued     {job.name}: job {job.pk} (GET /api/jobs/{job.pk})")
            return failed
        bars = {job.pk: _bar(self.stderr._out, job) for job in queued}
        waiting_since, hinted = time.monotonic(), False
        pending = [job.pk for job in queued]
        while pending:
            for job in ImportJob.objects.filter(pk__in=pending):
                bar = bars[job.pk]
                bar.n = job.bytes_read if job.status == ImportJob.Status.RUNNING else bar.n
                bar.set_postfix_str(f"{job.stage or job.status} · {job.decisions:,} decisions", refresh=False)
                bar.refresh()
                if not job.active:
                    bar.n = job.total_bytes if job.status == ImportJob.Status.DONE else bar.n
                    bar.close()
                    pending.remove(job.pk)
                    lines = job.results or [{"status": "error", "message": job.message, "name": job.name}]
                    for line in lines:
                        failed += line["status"] == "error"
                        self.stdout.write(self._line(line))
                    failed += job.status == ImportJob.Status.CANCELLED
            all_queued = ImportJob.objects.filter(pk__in=pending, status=ImportJob.Status.QUEUED).count() == len(pending)
            if pending and all_queued and not hinted and time.monotonic() - waiting_since > 5:
                self.stderr.write("waiting for a worker: start one with `manage.py worker` (make run starts one), "
                                  "or import with --now")
                hinted = True
            if pending:
                time.sleep(0.5)
        return failed

    def _line(self, r: dict) -> str:
        if r["status"] == "imported":
            line = f"imported   {r['name']}: {r['count']:,} decisions (run {r['run_id']}: {r['run_name']})"
            return line + "".join(f"\n  warning: {w}" for w in r.get("warnings", []))
        if r["status"] == "duplicate":
            return f"duplicate  {r['name']}: already imported as run {r['run_id']}"
        if r["status"] in ("skipped", "manifest", "output"):
            said = r["message"] if r["message"].startswith(r["name"] + ":") else f"{r['name']}: {r['message']}"
            return f"{r['status']:<10} {said}" + "".join(f"\n  warning: {w}" for w in r.get("warnings", []))
        return f"error      {r['message']}"


def _bar(stream, job) -> tqdm:
    """A terminal progress bar (tqdm) for one job, in bytes; silent when stderr is no terminal."""
    return tqdm(total=job.total_bytes, desc=job.name[-40:], unit="B", unit_scale=True, unit_divisor=1024,
                file=stream, disable=not stream.isatty(), leave=True, dynamic_ncols=True)


class _Bars:
    """--now: a bar per file while it imports in this process."""

    def __init__(self, stream):
        self.stream, self.bar, self.name = stream, None, None

    def update(self, p) -> None:
        if p.name != self.name:
            self.close()
            self.name = p.name
            self.bar = tqdm(total=p.total_bytes, desc=p.name[-40:], unit="B", unit_scale=True, unit_divisor=1024,
                            file=self.stream, disable=not self.stream.isatty(), leave=True, dynamic_ncols=True)
        self.bar.n = p.bytes_read
        self.bar.set_postfix_str(f"{p.stage} · {p.decisions:,} decisions", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _Live:
    """--follow: says where the live run is once it exists, and counts its decisions on a terminal."""

    def __init__(self, stdout, stream, name):
        self.stdout, self.name = stdout, name
        self.run_id = None
        self.bar = tqdm(desc=name[-40:], unit=" decisions", file=stream, disable=not stream.isatty(),
                        leave=True, dynamic_ncols=True)

    def update(self, p) -> None:
        if self.run_id is None:
            self.run_id = p.run_id
            self.stdout.write(f"live       {self.name}: run {p.run_id} (/runs/{p.run_id}/), following until it "
                              "ends or goes quiet; Ctrl-C stops and keeps it")
        self.bar.n = p.decisions
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While following, SIGTERM stops like Ctrl-C: the run keeps what was stored instead of staying live."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
