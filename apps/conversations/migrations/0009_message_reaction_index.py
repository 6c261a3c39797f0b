"""The reactions on a message, by the wamid they react to (issue 13); built CONCURRENTLY on PostgreSQL,
as 0008's indexes are, so a large message table keeps taking the webhook's inserts meanwhile."""

from django.db import migrations, models

from chatbot.migration_ops import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False  # CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("conversations", "0008_message_growth_indexes"),
    ]

    operations = [
        AddIndexOnline(
            model_name="message",
            index=models.Index(
                condition=models.Q(("handled_as", "reaction")),
                fields=["channel", "reply_to_wamid"],
                name="conv_msg_reaction_idx",
            ),
        ),
    ]
