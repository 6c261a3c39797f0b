"""Refresh the analytics roll-ups now (beat does it every 5 minutes): after an upgrade, or before the
first look at a large history, whose first count takes a while (bench/analytics.py times it)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.models import Workspace
from apps.analytics.services import rollup_refresh


class Command(BaseCommand):
    help = "Count messages, replies and conversations into the analytics roll-ups."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", help="Only this workspace (its slug); default: every one.")

    def handle(self, *args: Any, **options: Any) -> None:
        workspaces = Workspace.objects.order_by("pk")
        if options["workspace"]:
            workspaces = workspaces.filter(slug=options["workspace"])
            if not workspaces.exists():
                raise CommandError(f"No workspace {options['workspace']!r}.")
        for workspace in workspaces:
            state = rollup_refresh(workspace=workspace)
            self.stdout.write(f"{workspace.slug}: counted until {state.rolled_until:%Y-%m-%d %H:%M:%S} UTC")
