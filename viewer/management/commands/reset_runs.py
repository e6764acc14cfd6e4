from django.core.management.base import BaseCommand, CommandError

from viewer.models import Run


class Command(BaseCommand):
    help = "Delete every run and its decisions."

    def add_arguments(self, parser):
        parser.add_argument("--yes", action="store_true", help="confirm the deletion")

    def handle(self, *args, yes, **options):
        if not yes:
            raise CommandError("this deletes every run: pass --yes to confirm")
        count = Run.objects.count()
        Run.objects.all().delete()
        self.stdout.write(f"deleted {count} run{'s' if count != 1 else ''}")
