"""Indexes for a large message table (issue 20, bench/growth.py): the prompt history by (conversation, id)
and the unprocessed inbound rows as a partial index, which replaces (direction, processed_at).

On PostgreSQL they are built and dropped CONCURRENTLY: a plain CREATE INDEX on a table of millions of
messages would block the webhook's inserts for as long as it takes (Meta retries, but replies wait)."""

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class _OnlineWherePossible:
    """The concurrent form on PostgreSQL; the plain one elsewhere (SQLite has no CONCURRENTLY)."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)  # type: ignore[misc]
        else:
            self.plain.database_forwards(app_label, schema_editor, from_state, to_state)  # type: ignore[attr-defined]

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)  # type: ignore[misc]
        else:
            self.plain.database_backwards(app_label, schema_editor, from_state, to_state)  # type: ignore[attr-defined]


class AddIndexOnline(_OnlineWherePossible, AddIndexConcurrently):
    @property
    def plain(self) -> migrations.AddIndex:
        return migrations.AddIndex(model_name=self.model_name, index=self.index)


class RemoveIndexOnline(_OnlineWherePossible, RemoveIndexConcurrently):
    @property
    def plain(self) -> migrations.RemoveIndex:
        return migrations.RemoveIndex(model_name=self.model_name, name=self.name)


class Migration(migrations.Migration):
    atomic = False  # CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("conversations", "0007_contact_attributes_consent"),
    ]

    operations = [
        AddIndexOnline(
            model_name="message",
            index=models.Index(fields=["conversation", "id"], name="conv_msg_conversation_id"),
        ),
        AddIndexOnline(
            model_name="message",
            index=models.Index(
                condition=models.Q(("direction", "in"), ("processed_at__isnull", True)),
                fields=["created_at"],
                name="conv_msg_inbound_unprocessed",
            ),
        ),
        RemoveIndexOnline(model_name="message", name="conversatio_directi_54b762_idx"),
    ]
