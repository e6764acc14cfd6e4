import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the local admin once and print how to log in (used by `make run`)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="where the app is served (make run's)")

    def handle(self, *args, url, **options):
        User = get_user_model()
        note = settings.VAR_DIR / "admin-login.txt"
        admin = User.objects.filter(is_superuser=True).order_by("pk").first()
        if admin is None:
            password = secrets.token_urlsafe(12)
            admin = User.objects.create_superuser("admin", "admin@localhost", password)
            settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
            note.write_text(f"username: admin\npassword: {password}\n")
            note.chmod(0o600)
        self.stdout.write(f"Log in at {url.rstrip('/')}/login/")
        if note.exists():
            self.stdout.write(note.read_text().rstrip())
        else:
            self.stdout.write(f"  as {admin.get_username()} (password as you set it)")
