from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Workspace
from apps.accounts.services import DEFAULT_WORKSPACE_SLUG
from apps.sandbox.demo import demo_seed


class Command(BaseCommand):
    help = "Idempotent: a demo bakery (profile, FAQs in Spanish and English, a sandbox number) in the default workspace."

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=DEFAULT_WORKSPACE_SLUG).first()
        if workspace is None:
            raise CommandError("No default workspace: run `python manage.py bootstrap` first.")
        for line in demo_seed(workspace=workspace).lines():
            self.stdout.write(line)
