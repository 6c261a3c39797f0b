from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from apps.accounts import services
from chatbot.exceptions import DomainError


class Command(BaseCommand):
    help = (
        "Idempotent first set-up: the default workspace and its owner `admin` (password from ADMIN_PASSWORD)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        password = settings.ADMIN_PASSWORD
        production = not settings.DEBUG
        if password and not production and (problems := services.password_is_weak(password)):
            self.stderr.write(
                f"warning: ADMIN_PASSWORD is weak ({' '.join(problems)}); production would refuse it"
            )
        try:
            result = services.bootstrap_run(admin_password=password, production=production)
        except DomainError as exc:
            details = exc.details.get("password", []) if isinstance(exc.details, dict) else []
            raise CommandError(" ".join([exc.message, *details])) from exc
        if result.admin_created:
            self.stdout.write(f"created user 'admin', owner of workspace '{result.workspace.slug}'")
        else:
            self.stdout.write(
                f"user 'admin' exists; owner of workspace '{result.workspace.slug}' (password unchanged)"
            )
        for step in settings.BOOTSTRAP_STEPS:
            message = import_string(step)(workspace=result.workspace)
            if message:
                self.stdout.write(message)
        if result.generated_password:
            # Development only, and only this once: there is no other way to learn it.
            self.stdout.write(
                self.style.WARNING(f"generated admin password (shown once): {result.generated_password}")
            )
