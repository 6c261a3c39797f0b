"""Indexes for a large message table (issue 20, bench/growth.py): the prompt history by (conversation, id)
and the unprocessed inbound rows as a partial index, which replaces (direction, processed_at).

On PostgreSQL they are built and dropped CONCURRENTLY: a plain CREATE INDEX on a table of millions of
messages would block the webhook's inserts for as long as it takes (Meta retries, but replies wait)."""

from django.db import migrations, models

from chatbot.migration_ops import AddIndexOnline, RemoveIndexOnline


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
