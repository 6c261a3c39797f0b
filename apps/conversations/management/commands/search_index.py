"""Index the inbox search now (beat does it every 5 seconds): after an upgrade, to index the history at
once rather than 20,000 messages per run, or `--rebuild` to forget every conversation's words and index
the whole message table again (for example after removing a message's text)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from apps.conversations.services.search_index import search_index_rebuild, search_index_update


class Command(BaseCommand):
    help = "Bring the inbox search's index up to date (PostgreSQL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rebuild", action="store_true", help="Forget the index and build it again.")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            self.stdout.write("Nothing to do: on SQLite the search reads the messages themselves.")
            return
        if options["rebuild"]:
            search_index_rebuild()
        messages = backfilled = written = 0
        while True:
            run = search_index_update(budget=60.0)
            messages += run.messages
            backfilled += run.backfilled_ids
            written += run.conversations_written
            if run.skipped or not run.behind:
                break
        state = "another run holds the index; try again" if run.skipped else "up to date"
        self.stdout.write(
            f"{messages:,} new messages and {backfilled:,} ids of history read, "
            f"{written:,} conversations written: {state}."
        )
