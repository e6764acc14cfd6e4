from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from viewer.models import ApiToken


class Command(BaseCommand):
    help = "Print a new API token for USER (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("user")
        parser.add_argument("--name", default="command line")

    def handle(self, *args, user, name, **options):
        try:
            owner = get_user_model().objects.get(username=user)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {user!r}") from None
        _, token = ApiToken.issue(owner, name=name)
        self.stdout.write(token)
