import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from viewer.ingest import Source, run_ingest

PATTERNS = ("*.json", "*.jsonl", "*.study.log", "*.study.log.gz")
MANIFESTS = ("manifest.json", "*.manifest.json")  # a folder with one is a DynoAI output folder: every file counts


class Command(BaseCommand):
    help = "Import log files and folders (recursively). Exit status 1 if any file failed."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--user", help="owner of the runs (default: the first superuser)")
        parser.add_argument("--keep-user-ids", action="store_true", help="keep real user ids in study logs")

    def handle(self, *args, paths, user, keep_user_ids, **options):
        owner = self._owner(user)
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
        progress = self._progress if self.stderr.isatty() else None
        for sources, walked in groups:
            for result in run_ingest(owner=owner, sources=sources, keep_user_ids=keep_user_ids,
                                     skip_unrecognised=walked, progress=progress):
                failed += result.failed
                self.stdout.write(self._line(result))
        if failed:
            self.stderr.write(f"{failed} file{'s' if failed != 1 else ''} failed")
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

    def _line(self, r):
        if r.status == "imported":
            line = f"imported   {r.name}: {r.count:,} decisions (run {r.run.pk}: {r.run.name})"
            return line + "".join(f"\n  warning: {w}" for w in r.warnings)
        if r.status == "duplicate":
            return f"duplicate  {r.name}: already imported as run {r.run.pk}"
        if r.status in ("skipped", "manifest", "output"):
            said = r.message if r.message.startswith(r.name + ":") else f"{r.name}: {r.message}"
            return f"{r.status:<10} {said}" + "".join(f"\n  warning: {w}" for w in r.warnings)
        return f"error      {r.message}"

    def _progress(self, name, done, total):
        if total > 10 * 1024**2:
            width = 30
            filled = int(width * done / total) if total else width
            self.stderr.write(f"\r  {name[-40:]} [{'#' * filled}{'.' * (width - filled)}] {done * 100 // max(total, 1):3d}%",
                              ending="\n" if done >= total else "")
            self.stderr.flush()
