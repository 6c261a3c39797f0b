"""Migration operations shared by the apps' migrations."""

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations


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


def postgresql_only(*statements: str) -> Any:
    """A RunPython body that executes `statements` on PostgreSQL and does nothing elsewhere (the text
    search, trigram and extension parts of a migration, which SQLite has no equivalent for)."""

    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)

    return run
