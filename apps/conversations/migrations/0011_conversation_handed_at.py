"""Analytics (issue 14): when a conversation first went to a person, and an index of staff messages.

The column is nullable without a default (no table rewrite); the index is built CONCURRENTLY on
PostgreSQL, as the other indexes of the message table are (0008)."""

from django.db import migrations, models

from chatbot.migration_ops import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False  # CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("conversations", "0010_settings_plural"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="handed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        AddIndexOnline(
            model_name="message",
            index=models.Index(
                condition=models.Q(("author", "agent")),
                fields=["conversation", "created_at"],
                name="conv_msg_staff_idx",
            ),
        ),
    ]
