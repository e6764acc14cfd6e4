import tempfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from viewer import demo
from viewer.ingest import Source, run_ingest
from viewer.models import Run


class Command(BaseCommand):
    help = "Generate and import demo runs of all three kinds (DynoAI pair, session and replay, study log)."

    def add_arguments(self, parser):
        parser.add_argument("--user", help="owner (default: the first superuser)")
        parser.add_argument("--once", action="store_true", help="do nothing if the owner already has demo runs")

    def handle(self, *args, user, once, **options):
        User = get_user_model()
        owner = (User.objects.filter(username=user) if user else User.objects.filter(is_superuser=True)).order_by("pk").first()
        if owner is None:
            raise CommandError("no user to own the demo runs: create one first (make run does)")
        if once and Run.objects.filter(owner=owner, source_name__startswith="demo/").exists():
            self.stdout.write("demo runs already loaded")
            return
        with tempfile.TemporaryDirectory() as tmp:
            for group in demo.write_all(Path(tmp)):
                sources = [Source("demo/" + str(p.relative_to(tmp)), path=p, group=str(p.parent)) for p in group]
                for r in run_ingest(owner=owner, sources=sources):
                    if r.status == "imported":
                        self.stdout.write(f"imported {r.name}: {r.count} decisions")
                    elif r.status in ("error", "duplicate"):
                        self.stdout.write(f"{r.status} {r.message}")
