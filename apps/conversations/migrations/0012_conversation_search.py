"""The inbox search's index (issue 20): one row of words per conversation, a GIN index on (workspace,
words), and the indexer's cursor.

PostgreSQL only for the text search parts (SQLite, the embedded mode, searches the messages directly):
the extensions unaccent and btree_gin (both "trusted": a database owner may create them, no superuser
needed) and the configuration `chatbot_simple` (words as written, lower case, without accents).
The history is indexed afterwards by the indexer, newest first (`backfill_below`); until it is done the
search reads the messages as before, so nothing is missed in between."""

import django.contrib.postgres.search
import django.db.models.deletion
from django.db import migrations, models

from chatbot.migration_ops import postgresql_only

SEARCH_SETUP = """
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS btree_gin;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'chatbot_simple') THEN
        CREATE TEXT SEARCH CONFIGURATION chatbot_simple (COPY = simple);
        ALTER TEXT SEARCH CONFIGURATION chatbot_simple
            ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple;
    END IF;
END $$;
"""
SEARCH_INDEX = (
    "CREATE INDEX conv_search_workspace_doc ON conversations_conversationsearch "
    "USING gin (workspace_id, document)"
)


def start_cursor(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Messages stored from now on are indexed forwards; the ones before, backwards by the backfill.
    message = apps.get_model("conversations", "Message")
    newest = message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    apps.get_model("conversations", "SearchIndexCursor").objects.update_or_create(
        id=1, defaults={"last_message_id": newest, "backfill_below": newest + 1 if newest else 0}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_login_names_normalised"),
        ("conversations", "0011_conversation_handed_at"),
    ]

    operations = [
        migrations.RunPython(postgresql_only(SEARCH_SETUP), migrations.RunPython.noop),
        migrations.CreateModel(
            name="SearchIndexCursor",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("last_message_id", models.BigIntegerField(default=0)),
                ("backfill_below", models.BigIntegerField(default=0)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.CreateModel(
            name="ConversationSearch",
            fields=[
                (
                    "conversation",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="conversations.conversation",
                    ),
                ),
                ("document", django.contrib.postgres.search.SearchVectorField()),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "workspace",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.workspace",
                    ),
                ),
            ],
        ),
        migrations.RunPython(postgresql_only(SEARCH_INDEX), migrations.RunPython.noop),
        migrations.RunPython(start_cursor, migrations.RunPython.noop),
    ]
