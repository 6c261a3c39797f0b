"""Indexes of the inbox search (issue 20), built CONCURRENTLY on PostgreSQL (see 0008):
- a workspace's messages by id (the search reads those after its index's cursor), in place of the
  foreign key's own index on the workspace alone, which it also serves;
- a contact's name, profile name and number, upper case without accents, by trigrams, so "lucia" or
  "5550" finds its contacts without reading every contact of the workspace (pg_trgm, a "trusted"
  extension). `chatbot_fold` is IMMUTABLE, as an index needs, by naming unaccent's dictionary."""

import django.db.models.deletion
from django.db import migrations, models

from chatbot.migration_ops import AddIndexOnline, postgresql_only

CONTACT_SEARCH = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE OR REPLACE FUNCTION chatbot_fold(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE "
    "AS $$ SELECT upper(public.unaccent('public.unaccent'::regdictionary, $1)) $$",
    "CREATE OR REPLACE FUNCTION chatbot_contact_key(text, text, text) RETURNS text LANGUAGE sql IMMUTABLE "
    "PARALLEL SAFE AS $$ SELECT public.chatbot_fold(coalesce($1, '') || ' ' || coalesce($2, '') || ' ' "
    "|| coalesce($3, '')) $$",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS conv_contact_search ON conversations_contact "
    "USING gin (workspace_id, chatbot_contact_key(name, profile_name, wa_id) gin_trgm_ops)",
]
CONTACT_SEARCH_DROP = [
    "DROP INDEX CONCURRENTLY IF EXISTS conv_contact_search",
    "DROP FUNCTION IF EXISTS chatbot_contact_key(text, text, text)",
    "DROP FUNCTION IF EXISTS chatbot_fold(text)",
]


class Migration(migrations.Migration):
    atomic = False  # CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("accounts", "0002_login_names_normalised"),
        ("conversations", "0012_conversation_search"),
    ]

    operations = [
        migrations.RunPython(postgresql_only(*CONTACT_SEARCH), postgresql_only(*CONTACT_SEARCH_DROP)),
        AddIndexOnline(
            model_name="message",
            index=models.Index(fields=["workspace", "id"], name="conv_msg_workspace_id"),
        ),
        migrations.AlterField(
            model_name="message",
            name="workspace",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="messages",
                to="accounts.workspace",
            ),
        ),
    ]
