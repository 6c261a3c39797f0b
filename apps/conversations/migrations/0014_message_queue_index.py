"""The send queue's list and count from one partial index (issue 20): outbound rows that went through
the queue, per workspace, newest first. Built CONCURRENTLY on PostgreSQL (see 0008)."""

from django.db import migrations, models

from chatbot.migration_ops import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False  # CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("conversations", "0013_search_indexes"),
    ]

    operations = [
        AddIndexOnline(
            model_name="message",
            index=models.Index(
                condition=models.Q(("direction", "out"), models.Q(("send_state", ""), _negated=True)),
                fields=["workspace", "-created_at", "-id"],
                name="conv_msg_queue",
            ),
        ),
    ]
