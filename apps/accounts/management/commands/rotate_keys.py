from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from chatbot.crypto import encrypted_fields


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key of FERNET_KEYS (run after adding a new key first)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for model, names in encrypted_fields():
            count = 0
            with transaction.atomic():
                for row in model._default_manager.select_for_update().iterator():
                    # Reading decrypts with any key; saving encrypts with the first one.
                    row.save(update_fields=names)
                    count += 1
            self.stdout.write(f"{model._meta.label}: {count} rows re-encrypted")
            total += count
        self.stdout.write(f"done: {total} rows")
